"""Fused outputs read only for their shape (issue 18): a ``SumTo(g, like)``
whose ``like`` a cluster computes reads instead an operand of ``g``'s node
of provably the same shape (``fuse.rewrite.like_replacements``), so the
cluster stores no output that nobody reads as data. Structure and values
(NaN and inf positions included) against the unfused graph."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.fuse import fuse_outputs
from tracegrad.fuse.op import FusedElemwise
from tracegrad.fuse.rewrite import like_replacements
from tracegrad.ops.elemwise import SumTo
from tracegrad.trace import toposort


def _mlp_layer(dtype):
    """``tanh(x @ w + b)`` and the gradients of a loss of it in w and b (the
    W4 hidden layer: the gradient sums ``g * (1 - h**2)`` to the shape of
    ``x @ w + b``)."""
    x = T.matrix("x", dtype=dtype)
    w = T.matrix("w", dtype=dtype)
    b = T.vector("b", dtype=dtype)
    v = T.matrix("v", dtype=dtype)
    h = T.tanh(T.dot(x, w) + b)
    loss = T.sum(T.dot(h, v) ** 2)
    gw, gb = tg.grad(loss, [w, b])
    return [x, w, b, v], [loss, gw, gb]


def _values(dtype, special=False):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 5)), rng.standard_normal((5, 4))
    b, v = rng.standard_normal(4), rng.standard_normal((4, 3))
    if special:
        x[1, 2], x[3, 0], w[4, 1] = np.nan, np.inf, -np.inf
    return [a.astype(dtype) for a in (x, w, b, v)]


def _shape_only_outputs(nodes):
    """Fused outputs whose every reader reads them as a ``SumTo``'s shape."""
    readers = {}
    for node in nodes:
        for k, inp in enumerate(node.inputs):
            readers.setdefault(inp, []).append((node, k))
    return [out for node in nodes if isinstance(node.op, FusedElemwise)
            for out in node.outputs
            if readers.get(out) and all(isinstance(r.op, SumTo) and k == 1
                                        for r, k in readers[out])]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("special", [False, True])
def test_mlp_gradient_stores_no_output_read_only_for_its_shape(dtype, special):
    inputs, outputs = _mlp_layer(dtype)
    f = tg.function(inputs, outputs)
    nodes = f.maker.fgraph.toposort()
    assert _shape_only_outputs(nodes) == []
    forward = [n for n in nodes if isinstance(n.op, FusedElemwise)
               and n.op.spec.instrs[0].row.name == "add"
               and any(i.row.name == "tanh" for i in n.op.spec.instrs)]
    # (before: the sum x @ w + b was a third output, read by a SumTo only)
    assert len(forward) == 1 and len(forward[0].outputs) == 2
    values = _values(dtype, special)
    got = f(*values)
    ref = evaluate(outputs, dict(zip(inputs, values)))
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for g, r in zip(got, ref):
        g, r = np.asarray(g), np.asarray(r)
        assert g.dtype == r.dtype and g.shape == r.shape
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol)


def _sum_to_graph():
    """``SumTo(tanh(a + b) @ m * tanh(a + b), a + b)``: ``tanh(a + b)``
    has ``a + b``'s shape; the product (after a dot) is a cluster of its own."""
    a = T.dmatrix("a")
    b = T.dvector("b")
    m = T.dmatrix("m")
    s = a + b
    t = T.tanh(s)
    g = T.dot(t, m) * t
    return [a, b, m], s, t, g, SumTo()(g, s)


def test_sum_to_reads_the_operand_of_like_s_shape():
    inputs, s, t, g, out = _sum_to_graph()
    total = T.sum(out) + T.sum(t)
    found = like_replacements([total])
    assert list(found) == [out]
    new = found[out].owner
    assert isinstance(new.op, SumTo) and new.inputs[0] is g and new.inputs[1] is t


def test_graph_outputs_and_unprovable_shapes_are_left_alone():
    inputs, s, t, g, out = _sum_to_graph()
    assert like_replacements([out]) == {}  # a graph output keeps its node
    a, b, m = inputs
    d = T.dmatrix("d")  # (d * a's shape is not provably s's)
    other = SumTo()(d * (a * 2.0), s)
    assert like_replacements([T.sum(other)]) == {}


@pytest.mark.parametrize("special", [False, True])
def test_fuse_outputs_gives_the_unfused_values(special):
    inputs, s, t, g, out = _sum_to_graph()
    total = [out * 2.0, T.sum(t, axis=0)]
    fused = fuse_outputs(total, target="cpu")
    nodes = toposort(fused)
    assert _shape_only_outputs(nodes) == []
    first = [n for n in nodes if isinstance(n.op, FusedElemwise) and n.op.name == "Fused{add,tanh}"]
    assert len(first) == 1 and len(first[0].outputs) == 1  # (a + b stays inside)
    rng = np.random.default_rng(1)
    values = [rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((3, 3))]
    if special:
        values[0][1, 1], values[2][0, 2], values[1][0] = np.nan, np.inf, -np.inf
    got = evaluate(fused, dict(zip(inputs, values)))
    ref = evaluate(total, dict(zip(inputs, values)))
    for g_, r in zip(got, ref):
        np.testing.assert_array_equal(np.isnan(g_), np.isnan(r))
        np.testing.assert_allclose(g_, r, rtol=1e-12)
