"""Mode 'fast_math': a factor constant along a sum's axes moves out of the
sum (``rewrite/factor_sum.py``), structurally and numerically, and only in
that mode (IEEE values differ: see the module)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile.mode import Mode


def _shapes(inputs, outputs, mode):
    """Static output shapes of the nodes of the graph rewritten in ``mode``,
    before fusion (which would hide a product inside a fused sum)."""
    f = tg.function(inputs, outputs, on_unused_input="ignore",
                    mode=Mode(optimizer=mode).excluding("local_elemwise_fusion"))
    return [out.type.shape for node in f.maker.fgraph.toposort() for out in node.outputs]


def _both(inputs, outputs):
    return (tg.function(inputs, outputs, on_unused_input="ignore"),
            tg.function(inputs, outputs, mode="fast_math", on_unused_input="ignore"))


def _full_nodes_reading(var, inputs, outputs, mode, full):
    """Nodes of the graph rewritten in ``mode`` (before fusion) whose output
    has the static shape ``full`` and that depend on the input ``var``."""
    f = tg.function(inputs, outputs, on_unused_input="ignore",
                    mode=Mode(optimizer=mode).excluding("local_elemwise_fusion"))
    var = f.maker.fgraph.inputs[inputs.index(var)]  # (the compiled graph is a copy)
    reads = set()
    found = []
    for node in f.maker.fgraph.toposort():
        if any(i is var or i in reads for i in node.inputs):
            reads.update(node.outputs)
            found += [node for out in node.outputs if out.type.shape == full]
    return found


def _rand(shape, dtype="float64", seed=0):
    rng = np.random.RandomState(seed)
    value = rng.uniform(-1, 1, shape)
    if dtype.startswith("complex"):
        value = value + 1j * rng.uniform(-1, 1, shape)
    return value.astype(dtype)


CASES = [
    # (shape of a, shape of b, axis, keepdims): a is 1 along the summed axes
    ((5, 1, 7), (1, 6, 7), 1, False),
    ((5, 1, 7), (1, 6, 7), 1, True),
    ((5, 1, 1), (5, 6, 7), (1, 2), False),
    ((1, 1, 7), (5, 6, 7), (0, 1), True),
    ((7,), (5, 6, 7), (0, 1), False),  # a factor with fewer axes
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
@pytest.mark.parametrize("sa, sb, axis, keepdims", CASES)
def test_a_sum_of_a_broadcast_product_equals_the_reference(sa, sb, axis, keepdims, dtype):
    a = T.tensor(dtype=dtype, shape=sa, name="a")
    b = T.tensor(dtype=dtype, shape=sb, name="b")
    out = T.sum(a * b * b, axis=axis, keepdims=keepdims)
    ref, fast = _both([a, b], out)
    av, bv = _rand(sa, dtype, 1), _rand(sb, dtype, 2)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(fast(av, bv), ref(av, bv), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ref(av, bv), np.sum(av * bv * bv, axis=axis, keepdims=keepdims),
                               rtol=rtol, atol=rtol)
    # a enters the product over the full shape by default, not in 'fast_math'
    full = np.broadcast_shapes(sa, sb)
    assert _full_nodes_reading(a, [a, b], out, "fast_run", full)
    assert not _full_nodes_reading(a, [a, b], out, "fast_math", full)


def test_the_contractive_penalty_gradient_never_forms_the_jacobian():
    # the cA tutorial's sum(J ** 2) with J = h(1-h)[:, None, :] * W[None]
    h = T.matrix("h")
    w = T.matrix("w")
    jac = T.reshape(h * (1 - h), (4, 1, 5)) * T.reshape(w, (1, 6, 5))
    cost = T.sum(jac ** 2) / 4
    grads = tg.grad(cost, [h, w])
    ref, fast = _both([h, w], grads)
    hv, wv = np.random.RandomState(0).rand(4, 5), np.random.RandomState(1).rand(6, 5)
    for r, q in zip(ref(hv, wv), fast(hv, wv)):
        np.testing.assert_allclose(q, r, rtol=1e-12)
    assert (4, 6, 5) in _shapes([h, w], grads, "fast_run")
    assert (4, 6, 5) not in _shapes([h, w], grads, "fast_math")


def test_ieee_values_differ_which_is_why_only_fast_math_factors():
    # sum(inf * [0, 1]) is NaN term by term (NumPy); inf * sum([0, 1]) is inf
    a = T.tensor(dtype="float64", shape=(1,), name="a")
    b = T.tensor(dtype="float64", shape=(2,), name="b")
    ref, fast = _both([a, b], T.sum(a * b))
    av, bv = np.array([np.inf]), np.array([0.0, 1.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(np.sum(av * bv)) and np.isnan(ref(av, bv))
        assert fast(av, bv) == np.inf


@pytest.mark.parametrize("build", [
    # the outer factor's length along the axis is not known to be 1
    lambda a, b: T.sum(a * b, axis=1),
    # a max is not a sum
    lambda a, b: T.max(T.reshape(a, (5, 1, 7)) * b, axis=1),
    # every factor varies along the summed axis
    lambda a, b: T.sum(b * b, axis=1),
])
def test_no_factoring_where_it_does_not_hold(build):
    a = T.tensor(dtype="float64", shape=(5, None, 7), name="a")
    b = T.tensor(dtype="float64", shape=(5, 6, 7), name="b")
    ref, fast = _both([a, b], build(a, b))
    av, bv = _rand((5, 1, 7), seed=1), _rand((5, 6, 7), seed=2)
    np.testing.assert_array_equal(fast(av, bv), ref(av, bv))
    shapes = _shapes([a, b], build(a, b), "fast_math")
    assert (5, 6, 7) in shapes or (5, None, 7) in shapes


def test_an_integer_factor_or_an_accumulating_dtype_is_left_alone():
    a = T.tensor(dtype="int64", shape=(5, 1, 7), name="a")
    b = T.tensor(dtype="float64", shape=(5, 6, 7), name="b")
    ref, fast = _both([a, b], T.sum(a * b, axis=1))
    av, bv = np.arange(35).reshape(5, 1, 7), _rand((5, 6, 7))
    np.testing.assert_array_equal(fast(av, bv), ref(av, bv))
    c = T.tensor(dtype="float32", shape=(5, 1, 7), name="c")
    d = T.tensor(dtype="float32", shape=(5, 6, 7), name="d")
    ref, fast = _both([c, d], T.sum(c * d, axis=1, dtype="float64"))
    cv, dv = _rand((5, 1, 7), "float32"), _rand((5, 6, 7), "float32")
    np.testing.assert_array_equal(fast(cv, dv), ref(cv, dv))
    assert (5, 6, 7) in _shapes([c, d], T.sum(c * d, axis=1, dtype="float64"), "fast_math")


@pytest.mark.parametrize("axis", [None, (0, 1), (1, 2), (0, 1, 2)])
@pytest.mark.parametrize("square", [False, True])
def test_factors_constant_along_different_axes_split_the_sum(axis, square):
    # sum_{b,v,h} a[b,h] * w[v,h] = sum_h (sum_b a) (sum_v w): no factor is
    # constant along every summed axis, so the sum is split
    a = T.tensor(dtype="float64", shape=(5, 1, 7), name="a")
    b = T.tensor(dtype="float64", shape=(1, 6, 7), name="b")
    out = T.sum((a * b) ** 2 if square else a * b, axis=axis)
    ref, fast = _both([a, b], out)
    av, bv = _rand((5, 1, 7), seed=1), _rand((1, 6, 7), seed=2)
    np.testing.assert_allclose(fast(av, bv), ref(av, bv), rtol=1e-12, atol=1e-12)
    expected = np.sum((av * bv) ** 2 if square else av * bv, axis=axis)
    np.testing.assert_allclose(ref(av, bv), expected, rtol=1e-12, atol=1e-12)
    assert (5, 6, 7) in _shapes([a, b], out, "fast_run")
    assert (5, 6, 7) not in _shapes([a, b], out, "fast_math")


def test_the_square_of_a_product_of_full_arrays_is_left_alone():
    a = T.tensor(dtype="float64", shape=(5, 6), name="a")
    b = T.tensor(dtype="float64", shape=(5, 6), name="b")
    c = T.tensor(dtype="float64", shape=(1, 6), name="c")
    f = tg.function([a, b, c], T.sum(T.sqr(a * b) * c, axis=0), mode=Mode(
        optimizer="fast_math").excluding("local_elemwise_fusion"))
    sqr_inputs = [node.inputs[0] for node in f.maker.fgraph.toposort()
                  if getattr(node.op, "scalar_op", None) is not None
                  and node.op.scalar_op.key == "sqr"]
    assert len(sqr_inputs) == 1  # sqr(a * b), not sqr(a) * sqr(b)
    av, bv, cv = _rand((5, 6), seed=1), _rand((5, 6), seed=2), _rand((1, 6), seed=3)
    np.testing.assert_allclose(f(av, bv, cv), np.sum((av * bv) ** 2 * cv, axis=0), rtol=1e-12)
