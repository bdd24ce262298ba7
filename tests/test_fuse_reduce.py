"""Sums of fused elementwise results (``tracegrad/fuse/reduce.py``): the
compiled graph sums slab by slab without the full-size intermediate, and
gives the unfused graph's values for every axis choice, dtype, broadcast and
slab cut."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.fuse import reduce as fuse_reduce
from tracegrad.fuse.op import FusedElemwise
from tracegrad.fuse.reduce import FusedSum, slab_axis

TOL = {"float32": 1e-5, "float64": 1e-12}


def nodes_of(f):
    return f.maker.fgraph.toposort()


def _compiled_and_reference(inputs, output, values):
    f = tg.function(inputs, output)
    got = f(*values)
    ref = evaluate([output], dict(zip(inputs, values)))[0]
    return f, np.asarray(got), np.asarray(ref)


def test_penalty_of_the_contractive_autoencoder_is_one_node_without_the_big_tensor():
    # sum((s[:, None, :] * W[None]) ** 2): no (batch, visible, hidden) variable left.
    s = T.dmatrix("s")
    w = T.dmatrix("w")
    out = T.sum((T.reshape(s, (20, 1, 50)) * T.reshape(w, (1, 78, 50))) ** 2)
    rng = np.random.default_rng(0)
    values = [rng.random((20, 50)), rng.random((78, 50))]
    f, got, ref = _compiled_and_reference([s, w], out, values)
    nodes = nodes_of(f)
    summed = [n for n in nodes if isinstance(n.op, FusedSum)]
    assert len(summed) == 1 and summed[0].op.fused.name == "Fused{mul,sqr}"
    assert not any(isinstance(n.op, FusedElemwise) for n in nodes)
    big = [o.type.shape for n in nodes for o in n.outputs if o.ndim == 3]
    assert sorted(big) == [(1, 78, 50), (20, 1, 50)]  # the two reshapes only
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got.dtype == ref.dtype and got.shape == ()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (2, False),
                                           ((0, 2), False), ((0, 1), True), ((1, 2), False)])
def test_slab_sums_equal_the_unfused_sum(monkeypatch, dtype, axis, keepdims):
    # Slabs of 1000 bytes: cuts inside axis 1 with a shorter last slab.
    monkeypatch.setattr(fuse_reduce, "SLAB_BYTES", 1000)
    a = T.tensor(dtype, (None, 1, None), "a")
    b = T.tensor(dtype, (None,), "b")
    c = T.tensor(dtype, (None, None, None), "c")
    out = T.sum(T.exp(a * b) - c * 2, axis=axis, keepdims=keepdims)
    rng = np.random.default_rng(1)
    values = [rng.random(s).astype(dtype) for s in [(3, 1, 7), (7,), (3, 37, 7)]]
    f, got, ref = _compiled_and_reference([a, b, c], out, values)
    assert any(isinstance(n.op, FusedSum) for n in nodes_of(f))
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=TOL[dtype], atol=TOL[dtype] * 10)


def test_sum_with_a_wider_dtype_accumulates_in_it(monkeypatch):
    monkeypatch.setattr(fuse_reduce, "SLAB_BYTES", 256)
    x = T.fmatrix("x")
    out = T.sum(x * 3 + 1, dtype="float64")
    value = np.random.default_rng(2).random((50, 40)).astype("float32")
    f, got, ref = _compiled_and_reference([x], out, [value])
    assert any(isinstance(n.op, FusedSum) for n in nodes_of(f))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_a_fused_result_read_elsewhere_is_computed_once_and_summed():
    x = T.dmatrix("x")
    y = T.exp(x) * 2
    f = tg.function([x], [y.sum(), y])
    assert not any(isinstance(n.op, FusedSum) for n in nodes_of(f))
    value = np.ones((300, 300))
    total, full = f(value)
    np.testing.assert_allclose(total, full.sum(), rtol=1e-12)


def test_gradient_through_a_fused_sum_node():
    x = T.dmatrix("x")
    f = tg.function([x], T.sum(T.exp(x) * x))
    node, = [n for n in nodes_of(f) if isinstance(n.op, FusedSum)]
    g = T.grad(node.op(x), x)
    value = np.random.default_rng(3).random((4, 5))
    np.testing.assert_allclose(tg.function([x], g)(value), np.exp(value) * (value + 1),
                               rtol=1e-12)


def test_slab_axis():
    assert slab_axis((20, 784, 500), 1 << 17) == (1, 262)
    assert slab_axis((20, 784, 500), 100) == (2, 100)
    assert slab_axis((2, 10), 100) == (None, None)  # one pass
    assert slab_axis((1000, 10), 10) == (0, 1)
    assert slab_axis((), 10) == (None, None)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_true_penalty_and_its_gradient_are_one_node_of_three_sums(monkeypatch, dtype):
    # sum(J ** 2) / batch with J = s[:, None, :] * W[None]: its gradient sums
    # 2 J g W over the visible axis and 2 J g s over the batch (SumTo); the
    # three (batch, visible, hidden) results are sums of one fused node.
    monkeypatch.setattr(fuse_reduce, "SLAB_BYTES", 4000)
    s = T.matrix("s", dtype=dtype)
    w = T.matrix("w", dtype=dtype)
    cost = T.sum((T.reshape(s, (20, 1, 50)) * T.reshape(w, (1, 78, 50))) ** 2) / 20
    outputs = [cost] + T.grad(cost, [s, w])
    f = tg.function([s, w], outputs)
    nodes = nodes_of(f)
    summed = [n for n in nodes if isinstance(n.op, FusedSum)]
    assert len(summed) == 1 and len(summed[0].outputs) == 3
    assert not any(isinstance(n.op, FusedElemwise) and n.outputs[0].ndim == 3 for n in nodes)
    assert all(o.type.shape != (20, 78, 50) for n in nodes for o in n.outputs)
    rng = np.random.default_rng(4)
    values = [rng.random((20, 50)).astype(dtype), rng.random((78, 50)).astype(dtype)]
    reference = evaluate(outputs, dict(zip([s, w], values)))
    for got, ref in zip(f(*values), reference):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=TOL[dtype] * 10)


def test_sums_of_two_outputs_over_different_axes(monkeypatch):
    monkeypatch.setattr(fuse_reduce, "SLAB_BYTES", 800)
    a = T.dtensor3("a")
    b = T.dvector("b")
    y = T.exp(a * b)
    outputs = [T.sum(y, axis=1), T.sum(y * a - 1, axis=(0, 2), keepdims=True)]
    f = tg.function([a, b], outputs)
    node, = [n for n in nodes_of(f) if isinstance(n.op, FusedSum)]
    assert len(node.outputs) == 2
    rng = np.random.default_rng(5)
    values = [rng.random((4, 33, 6)), rng.random(6)]
    for got, ref in zip(f(*values), evaluate(outputs, dict(zip([a, b], values)))):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_sum_to_axes_only_where_static_shapes_decide():
    from tracegrad.ops.base import sum_to
    from tracegrad.fuse.reduce import sum_to_axes
    g = T.tensor("float64", (20, 78, 50))
    assert sum_to_axes(sum_to(g, T.tensor("float64", (1, 78, 50))).owner) == (0,)
    assert sum_to_axes(sum_to(g, T.tensor("float64", (20, 1, 1))).owner) == (1, 2)
    # a length known only at run time may or may not be summed
    assert sum_to_axes(sum_to(g, T.tensor("float64", (None, 78, 50))).owner) is None
    loose = T.tensor("float64", (None, 78, 50))
    assert sum_to_axes(sum_to(loose, T.tensor("float64", (1, 78, 50))).owner) is None
