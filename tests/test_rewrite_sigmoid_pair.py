"""The ``sigmoid_pair`` stabilize rule: ``K*y*sigmoid(u) -
K*(1-y)*sigmoid(-u) -> K*y - K*sigmoid(-u)`` in a sum, also through the
``sum_to`` factors of the tutorial cross-entropy's gradient."""

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.ops.elemwise import SumTo
from tracegrad.rewrite import algebra as al, optimize_outputs
from tracegrad.rewrite.pattern import op_key
from tracegrad.trace import toposort
from rewritecheck import strict, keys, run, unguarded_keys  # noqa: F401 (strict: autouse)


def rewritten(outputs):
    stats = {}
    new = optimize_outputs(list(outputs), stats=stats)
    return new, stats


def check_same(outputs, inputs, values, rtol):
    """Rewritten outputs equal the reference evaluator on the original graph
    and a ``mode='None'`` function."""
    new, stats = rewritten(outputs)
    want = run(outputs, dict(zip(inputs, values)))
    got = run(new, dict(zip(inputs, values)))
    plain = tg.function(inputs, list(outputs), mode="None")(*values)
    fast = tg.function(inputs, list(outputs))(*values)
    for a, b, c, d, o in zip(got, want, plain, fast, outputs):
        assert a.dtype == b.dtype == np.dtype(o.dtype) == d.dtype
        assert a.shape == b.shape == d.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(c, b, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(d, b, rtol=rtol, atol=rtol)
    return new, stats


def tutorial(dtype="float64"):
    x = T.matrix("x", dtype=dtype)
    y = T.vector("y", dtype=dtype)
    w = T.vector("w", dtype=dtype)
    b = T.scalar("b", dtype=dtype)
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = tg.grad(cost, [w, b])
    return [x, y, w, b], [xent, gw, gb]


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_tutorial_gradient_has_one_sigmoid(dtype, rtol):
    rng = np.random.default_rng(0)
    inputs, outputs = tutorial(dtype)
    values = [rng.standard_normal((40, 7)).astype(dtype),
              rng.integers(0, 2, 40).astype(dtype),
              rng.standard_normal(7).astype(dtype), np.asarray(0.3, dtype)]
    new, stats = check_same(outputs, inputs, values, rtol)
    assert stats.get("sigmoid_pair") == 1
    grads = new[1:]
    # sigma(z) - y: one sigmoid, and no ``1 - y`` left in the gradients
    assert unguarded_keys(grads).count("sigmoid") == 1
    # what is summed to the logits' shape is K and K*y, never K*(1-y)
    y = inputs[1]
    summed = [n.inputs[0] for n in toposort(grads) if isinstance(n.op, SumTo)
              and n.inputs[1].owner is not None and op_key(n.inputs[1].owner.op) != "sub"]
    assert len(summed) == 2
    factors = [al.collect_factors(v) for v in summed]
    assert sorted(len(f.num) for f in factors) == [1, 2]
    assert any(any(v is y for v in f.num) for f in factors)
    assert all(al.key_of(v) != "sub" for f in factors for v in f.num)

def test_tutorial_gradient_broadcasting_one_example_against_many_targets():
    # x has one row, y five: z broadcasts against y and sum_to sums.
    rng = np.random.default_rng(1)
    inputs, outputs = tutorial()
    values = [rng.standard_normal((1, 4)), rng.integers(0, 2, 5).astype(float),
              rng.standard_normal(4), np.asarray(-0.2)]
    check_same(outputs, inputs, values, 1e-12)


def test_tutorial_gradient_exact_at_logits_of_800():
    inputs, outputs = tutorial()
    xv = np.array([[800.0], [-800.0], [800.0], [-800.0], [3.0]])
    yv = np.array([1.0, 1.0, 0.0, 0.0, 0.5])
    new, stats = rewritten(outputs)
    assert stats.get("sigmoid_pair") == 1
    got = run(new, dict(zip(inputs, [xv, yv, np.ones(1), np.asarray(0.0)])))
    sig = np.exp(-np.logaddexp(0.0, -xv[:, 0]))
    dz = (sig - yv) / 5
    np.testing.assert_allclose(got[1], xv.T @ dz + 0.02, rtol=1e-14)
    np.testing.assert_allclose(got[2], dz.sum(), rtol=1e-14)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-13), ("float32", 1e-5)])
def test_pair_without_sum_to_with_broadcasting(dtype, rtol):
    k = T.matrix("k", dtype=dtype)
    y = T.matrix("y", dtype=dtype)
    u = T.row("u", dtype=dtype) if hasattr(T, "row") else T.matrix("u", dtype=dtype)
    out = 2 * k * y * T.sigmoid(u) - (1 - y) * T.sigmoid(-u) * k * 2 + k
    rng = np.random.default_rng(2)
    values = [rng.standard_normal((3, 4)).astype(dtype),
              rng.random((3, 4)).astype(dtype),
              (rng.standard_normal((1, 4)) * 30).astype(dtype)]
    new, stats = check_same([out], [k, y, u], values, rtol)
    assert stats.get("sigmoid_pair") == 1
    assert keys(new).count("sigmoid") == 1


def test_same_signs_are_left_alone():
    k, y, u = T.dvector("k"), T.dvector("y"), T.dvector("u")
    out = k * y * T.sigmoid(u) + k * (1 - y) * T.sigmoid(-u)
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(6), rng.random(6), rng.standard_normal(6)]
    new, stats = check_same([out], [k, y, u], values, 1e-13)
    assert "sigmoid_pair" not in stats
    assert keys(new).count("sigmoid") == 2


def test_different_factors_are_left_alone():
    k, j, y, u = T.dvector("k"), T.dvector("j"), T.dvector("y"), T.dvector("u")
    out = k * y * T.sigmoid(u) - j * (1 - y) * T.sigmoid(-u)
    rng = np.random.default_rng(4)
    values = [rng.standard_normal(6) for _ in range(4)]
    _, stats = check_same([out], [k, j, y, u], values, 1e-13)
    assert "sigmoid_pair" not in stats
