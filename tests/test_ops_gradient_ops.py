"""Theano's ``theano.gradient`` ops (tracegrad/ops/gradient_ops.py): the
identity forward (table rows), and the gradients each one stands for
(checked against their definitions, not finite differences, which they
deliberately differ from); ``subgraph_grad`` and ``numeric_grad``."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad import gradient as G
from tracegrad.ops.base import NotDifferentiableError
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
SHAPES = [[(3, 4)], [()], [(0, 2)]]

CASES = [
    OpCase("zero_grad", lambda x: G.zero_grad(x) * 2, lambda x: x * 2, SHAPES, FLOATS,
           grad=False),
    OpCase("consider_constant", lambda x: G.consider_constant(x) + 1, lambda x: x + 1, SHAPES,
           FLOATS, grad=False),
    OpCase("disconnected_grad", lambda x: G.disconnected_grad(x) ** 2, lambda x: x ** 2,
           SHAPES, FLOATS, grad=False),
    OpCase("undefined_grad", lambda x: G.undefined_grad(x) - 1, lambda x: x - 1, SHAPES,
           FLOATS, grad=False),
    OpCase("grad_clip", lambda x: G.grad_clip(x, -0.5, 0.5) * 3, lambda x: x * 3, SHAPES,
           FLOATS, grad=False),
    OpCase("grad_scale", lambda x: G.grad_scale(x, 0.25) / 2, lambda x: x / 2, SHAPES,
           FLOATS, grad=False),
]

test_forward, test_grad = table_tests(CASES)

X = np.array([[-2.0, 0.5], [3.0, -0.1]])


def _grad_of(build):
    x = T.dmatrix("x")
    return tg.grad(T.sum(build(x)), x).eval({x: X})


@pytest.mark.parametrize("build,want", [
    (lambda x: G.zero_grad(x) * x, X),                        # d(c x)/dx with c = x held
    (lambda x: G.consider_constant(x ** 2) * x, X ** 2),
    (lambda x: G.disconnected_grad(x) * x + x, X + 1),
    (lambda x: G.grad_clip(x, -1.0, 2.0) ** 2, np.clip(2 * X, -1, 2)),
    (lambda x: G.grad_scale(x, -0.5) ** 3, -0.5 * 3 * X ** 2),
    (lambda x: G.grad_scale(x ** 2, 2.0), 4 * X),
])
def test_the_gradient_each_op_defines(build, want):
    np.testing.assert_allclose(_grad_of(build), want)


def test_symbolic_scale_disconnected_and_undefined():
    x, s = T.dscalar("x"), T.dscalar("s")
    assert tg.grad(G.grad_scale(x, s) ** 2, x).eval({x: 3.0, s: 2.0}) == 12.0
    # (a zero gradient: tracegrad reports disconnection by structure only)
    assert tg.grad(G.disconnected_grad(x) * 2, x).eval({x: 1.0}) == 0.0
    with pytest.raises(NotDifferentiableError, match="undefined_grad"):
        tg.grad(G.undefined_grad(x) * x, x)
    with pytest.raises(ValueError, match="lower_bound"):
        G.grad_clip(x, 1.0, -1.0)


def test_subgraph_grad_matches_the_whole_gradient():
    """Theano's documented example: two subgraphs, gradients passed along."""
    rng = np.random.default_rng(0)
    x, t = T.dvector("x"), T.dvector("t")
    w1 = tg.shared(rng.standard_normal((3, 4)), name="w1")
    w2 = tg.shared(rng.standard_normal((4, 2)), name="w2")
    a1 = T.tanh(T.dot(x, w1))
    a2 = T.tanh(T.dot(a1, w2))
    cost2 = T.sqr(a2 - t).sum() + T.sqr(w2.sum())
    cost1 = T.sqr(w1.sum())
    params, costs, ends = [[w2], [w1]], [cost2, cost1], [[a1], [x]]
    next_grad, param_grads = None, []
    for i in range(2):
        param_grad, next_grad = tg.gradient.subgraph_grad(
            wrt=params[i], end=ends[i], start=next_grad, cost=costs[i])
        next_grad = dict(zip(ends[i], next_grad))
        param_grads.extend(param_grad)
    whole = tg.grad(cost1 + cost2, [w2, w1])
    f = tg.function([x, t], param_grads + whole)
    got = f(rng.standard_normal(3), rng.standard_normal(2))
    np.testing.assert_allclose(got[0], got[2])
    np.testing.assert_allclose(got[1], got[3])
    _, _, from_start, from_cost = tg.gradient.subgraph_grad(
        [w1], [x], start={a1: T.ones_like(a1)}, cost=cost1, details=True)
    assert len(from_start) == 2 and len(from_cost) == 2


def test_numeric_grad():
    def f(a, b):
        return float(np.sum(a ** 2 * b))
    a, b = np.array([1.0, -2.0]), np.array([[0.5], [3.0]])
    ng = tg.gradient.numeric_grad(f, [a, b])
    want = [2 * a * b.sum(0), (a ** 2).sum() * np.ones_like(b)]
    for got, w in zip(ng.gf, want):
        np.testing.assert_allclose(got, w, rtol=1e-5)
    idx, pos, abs_err, rel_err = ng.max_err(want, 1e-4, 1e-4)
    assert abs_err < 1e-4 and rel_err < 1e-4
    single = tg.gradient.numeric_grad(lambda v: float(np.sum(np.sin(v))), np.array([0.3]))
    np.testing.assert_allclose(single.gf, np.cos([0.3]), rtol=1e-5)
    assert tg.gradient.numeric_grad.type_eps["float32"] == 3e-4
