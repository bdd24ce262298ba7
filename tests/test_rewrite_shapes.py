"""Shape facts and the rewrites that follow from them, and the softmax pair:
each structurally (the optimized graph has the expected form) and
numerically (it equals the original, evaluated by the reference evaluator)."""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.ops import nnet
from tracegrad.ops.elemwise import SumTo
from tracegrad.ops.shape import BroadcastTo
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import optimize_outputs
from tracegrad.trace import toposort
from rewritecheck import strict  # noqa: F401 (strict: autouse fixture)


def optimize(outputs, values, rtol=1e-13):
    """The optimized ``outputs``, checked against the originals on ``values``."""
    new = optimize_outputs(list(outputs), "fast_run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = evaluate(list(outputs), values)
        got = evaluate(new, values)
    for e, g in zip(expected, got):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=rtol, atol=1e-300)
    return new


def ops_of(outputs, cls):
    return [n for n in toposort(list(outputs)) if isinstance(n.op, cls)]


# ------------------------------------------------------------ shape tokens
def test_broadcast_of_the_same_operands_is_one_shape():
    y, z = T.dvectors("y", "z")
    a = y * T.exp(z)
    b = T.sin(z) - y * 2.0
    c = T.exp(z)
    memo = {}
    assert al.same_shape(a, b, memo)          # both broadcast {y, z}
    assert not al.same_shape(a, c, memo)      # y may widen a
    assert al.same_shape(a, T.exp(y) + c, memo)


def test_sum_to_between_broadcasts_of_the_same_operands_is_removed():
    # The gradient of mean(y * softplus(-z) + (1 - y) * softplus(z)) wrt the
    # product: SumTo(broadcast_to(1/n, shape(xent)), y * softplus(-z)).
    y, z = T.dvectors("y", "z")
    xent = y * T.softplus(-z) + (1 - y) * T.softplus(z)
    g = tg.grad(xent.mean(), z)
    rng = np.random.default_rng(0)
    values = {y: rng.integers(0, 2, 6).astype(float), z: rng.standard_normal(6)}
    (new,) = optimize([g], values)
    # Two SumTo remain (y might broadcast z), both summing to z itself.
    sum_tos = ops_of([new], SumTo)
    assert len(sum_tos) == 2 and all(n.inputs[1] is sum_tos[0].inputs[1] for n in sum_tos)
    assert sum_tos[0].inputs[1].owner is None  # ``like`` is z, not a product


def test_sum_to_reads_the_shape_root_not_an_intermediate():
    x, y = T.dvectors("x", "y")
    a = T.tanh(x)
    out = SumTo()(a * y, T.exp(a)) + a
    rng = np.random.default_rng(1)
    values = {x: rng.standard_normal(5), y: rng.standard_normal(5)}
    (new,) = optimize([out], values)
    (node,) = ops_of([new], SumTo)
    assert node.inputs[1].owner is None and node.inputs[1].name == "x"
    # and it still sums when y broadcasts x
    values = {x: rng.standard_normal(1), y: rng.standard_normal(5)}
    optimize([out], values)


def test_a_gathered_mean_reads_its_count_from_the_targets():
    # TakeAlongLastAxis has its targets' shape: the mean's count (and the
    # gradient's 1/n) read y, so W4's step gathers the loss rows once
    from tracegrad.ops.reduce import ReductionCount
    x = T.dmatrix("x")
    y = T.lvector("y")
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean()
    rng = np.random.default_rng(0)
    values = {x: rng.standard_normal((5, 4)), y: rng.integers(0, 4, 5)}
    outs = optimize([loss, tg.grad(loss, x)], values)
    counts = ops_of(outs, ReductionCount)
    assert counts and all(n.inputs == [y] for n in counts)
    assert len(ops_of(outs, nnet.TakeAlongLastAxis)) == 1


def test_sum_to_shape_root_keeps_static_shapes():
    x = T.tensor("float64", (3, None), "x")
    y = T.dmatrix("y")
    out = SumTo()(T.exp(x) * y, T.exp(x))
    (new,) = optimize([out], {x: np.ones((3, 2)), y: np.full((3, 2), 2.0)})
    assert new.type.shape == (3, None)


# ------------------------------------------------------------ softmax pair
def test_softmax_and_log_softmax_of_one_input_share_one_node():
    x = T.fmatrix("x")
    labels = T.lvector("labels")
    p = T.nnet.softmax(x)
    loss = T.nnet.categorical_crossentropy(p, labels).mean()
    g = tg.grad(loss, x)
    rng = np.random.default_rng(2)
    values = {x: (rng.standard_normal((7, 10)) * 3).astype("float32"),
              labels: rng.integers(0, 10, 7)}
    new = optimize([loss, g], values, rtol=2e-6)
    pairs = ops_of(new, nnet.SoftmaxAndLog)
    assert len(pairs) == 1
    assert not ops_of(new, nnet.Softmax) and not ops_of(new, nnet.LogSoftmax)
    # Still stable where the softmax underflows (the naive graph gives inf).
    values[x] = values[x] * 30
    loss_value, g_value = evaluate(new, values)
    assert np.isfinite(loss_value) and np.isfinite(g_value).all()


def test_softmax_pair_values_equal_the_single_ops_and_its_gradient():
    x = T.dmatrix("x")
    pair = nnet.SoftmaxAndLog((1,))(x)
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((4, 5)) * 50
    sm, lsm = evaluate(list(pair), {x: xv})
    np.testing.assert_array_equal(sm, evaluate([T.nnet.softmax(x)], {x: xv})[0])
    np.testing.assert_array_equal(lsm, evaluate([T.nnet.log_softmax(x)], {x: xv})[0])
    from tracegrad.testing.gradcheck import verify_grad
    weights = rng.standard_normal((4, 5))
    verify_grad(lambda v: nnet.SoftmaxAndLog((1,))(v)[0] * 3.0
                + nnet.SoftmaxAndLog((1,))(v)[1] * T.constant(weights),
                [rng.standard_normal((4, 5))], rng=rng)
    verify_grad(lambda v: nnet.SoftmaxAndLog((1,))(v)[1], [rng.standard_normal((3, 4))], rng=rng)


def test_softmax_pair_needs_the_same_axes():
    x = T.dtensor3("x")
    out = T.nnet.softmax(x, axis=1) + T.nnet.log_softmax(x, axis=2)
    new = optimize([out], {x: np.random.default_rng(4).standard_normal((2, 3, 4))})
    assert not ops_of(new, nnet.SoftmaxAndLog)


@pytest.mark.parametrize("shape", [(200, 10), (3, 7, 16), (100, 17), (5, 10)])
def test_short_last_axis_max_matches_numpy(shape):
    x = np.random.default_rng(5).standard_normal(shape).astype("float32")
    x[1, 2] = np.nan
    got = nnet._max_keepdims(np, x, (x.ndim - 1,))
    np.testing.assert_array_equal(got, np.max(x, axis=-1, keepdims=True))


# ------------------------------------------------------------ broadcast_to
@pytest.mark.parametrize("value", [np.array([2.5]), np.array(1.5, "float32"),
                                   np.ones((1, 1), "int32")])
def test_broadcast_to_of_one_value_is_a_read_only_view(value):
    op = BroadcastTo(2)
    got = op.impl(np, value, np.array([3, 4]))
    expected = np.broadcast_to(value, (3, 4))
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert not got.flags.writeable and np.shares_memory(got, value)
    assert op.impl(np, value, np.array([0, 4])).shape == (0, 4)
    with pytest.raises(ValueError):
        BroadcastTo(1).impl(np, np.ones((1, 1)), np.array([3]))
