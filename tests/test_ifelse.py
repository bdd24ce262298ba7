"""``tracegrad.ifelse.ifelse``: Theano's lazy conditional."""
import pickle

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.ifelse import ifelse
from tracegrad.printing import Print
from tracegrad.testing import verify_grad, verify_rop


def _counting(label, calls):
    return Print(label, global_fn=lambda op, v: calls.append(op.message))


def test_only_the_taken_branch_runs():
    calls = []
    a, b = T.dscalars("a", "b")
    x, y = T.dmatrices("x", "y")
    z = ifelse(T.lt(a, b), T.mean(_counting("then", calls)(x)),
               T.mean(_counting("else", calls)(y)))
    f = tg.function([a, b, x, y], z)
    ones, twos = np.ones((3, 2)), np.full((3, 2), 2.0)
    assert f(0.0, 1.0, ones, twos) == 1.0 and calls == ["then"]
    assert f(2.0, 1.0, ones, twos) == 2.0 and calls == ["then", "else"]
    # switch computes both sides, for comparison
    calls.clear()
    tg.function([a, b, x, y], T.switch(T.lt(a, b), T.mean(_counting("t", calls)(x)),
                                       T.mean(_counting("e", calls)(y))))(0.0, 1.0, ones, twos)
    assert sorted(calls) == ["e", "t"]


def test_lists_of_outputs_and_merged_static_shapes():
    a = T.dscalar("a")
    x = T.TensorType("float64", (2, 3))("x")
    y = T.TensorType("float64", (2, None))("y")
    out = ifelse(a > 0, [x, x.sum()], [y * 2, y.sum() * 0])
    assert isinstance(out, list) and out[0].type.shape == (2, None)
    f = tg.function([a, x, y], out)
    got = f(1.0, np.ones((2, 3)), np.ones((2, 3)))
    np.testing.assert_array_equal(got[0], np.ones((2, 3)))
    assert got[1] == 6.0
    got = f(-1.0, np.ones((2, 3)), np.ones((2, 3)))
    np.testing.assert_array_equal(got[0], np.full((2, 3), 2.0))
    assert got[1] == 0.0


@pytest.mark.parametrize("a", [-0.5, 0.7])
def test_gradient_follows_the_taken_branch(a):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3,)), rng.normal(size=(3,))

    def fn(av, xv, yv):
        return ifelse(av > 0, T.sin(xv) * av, T.exp(yv) * av ** 2)

    verify_grad(fn, [np.array(a), x, y], rng=rng)
    verify_rop(fn, [np.array(a), x, y], rng=rng)


def test_gradient_is_lazy_too():
    calls = []
    a = T.dscalar("a")
    x = T.dvector("x")
    cost = ifelse(a > 0, T.sum(_counting("then", calls)(x) ** 2), T.sum(T.exp(x)))
    g = tg.function([a, x], tg.grad(cost, x))
    np.testing.assert_allclose(g(-1.0, np.zeros(2)), np.ones(2))
    assert "then" not in calls
    np.testing.assert_allclose(g(1.0, np.array([1.0, 2.0])), [2.0, 4.0])
    assert "then" in calls


def test_shared_variables_and_updates_through_ifelse():
    w = tg.shared(np.array([1.0, 2.0]), name="w")
    c = T.dscalar("c")
    cost = ifelse(c > 0, T.sum(w ** 2), T.sum(w))
    step = tg.function([c], cost, updates=[(w, w - 0.5 * tg.grad(cost, w))])
    assert step(1.0) == 5.0
    np.testing.assert_allclose(w.get_value(), [0.0, 0.0])
    assert step(-1.0) == 0.0
    np.testing.assert_allclose(w.get_value(), [-0.5, -0.5])


def test_ifelse_inside_scan():
    x = T.dvector("x")
    out, _ = tg.scan(lambda v: ifelse(v > 0, v * 2, -v), sequences=x)
    np.testing.assert_array_equal(tg.function([x], out)([1.0, -2.0, 3.0]), [2.0, 2.0, 6.0])


def test_special_values_pass_through_the_taken_branch():
    a = T.dscalar("a")
    x = T.dvector("x")
    f = tg.function([a, x], ifelse(a > 0, x * 1.0, x * 0.0))
    v = np.array([np.nan, np.inf, -np.inf, -0.0])
    np.testing.assert_array_equal(f(1.0, v), v)
    assert np.signbit(f(1.0, v)[3])
    # a NaN condition is false, as in Python's bool(nan > 0)
    np.testing.assert_array_equal(f(np.nan, np.ones(4)), np.zeros(4))


def test_errors_name_the_problem():
    a = T.dscalar("a")
    with pytest.raises(TypeError, match="same dtype and number of dimensions"):
        ifelse(a > 0, T.dvector(), T.dmatrix())
    with pytest.raises(TypeError, match="same dtype"):
        ifelse(a > 0, T.dvector(), T.fvector())
    with pytest.raises(ValueError, match="1 outputs and the else branch 2"):
        ifelse(a > 0, [T.dvector()], [T.dvector(), T.dvector()])
    with pytest.raises(TypeError, match="condition must be a scalar"):
        ifelse(T.dvector() > 0, a, a)


def test_functions_with_ifelse_pickle():
    a = T.dscalar("a")
    x = T.dvector("x")
    f = tg.function([a, x], tg.grad(ifelse(a > 0, T.sum(x ** 2), T.sum(x)), x))
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g(1.0, np.array([1.0, 2.0])), [2.0, 4.0])
    np.testing.assert_array_equal(g(-1.0, np.array([1.0, 2.0])), [1.0, 1.0])
