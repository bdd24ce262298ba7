"""Table-driven tests of ``ops/numpy_ufuncs.py`` (``copysign``,
``heaviside``, ``nextafter``, ``ldexp``, ``frexp``, ``signbit``): forward vs
NumPy per dtype with broadcasting, 0-d and 0-length inputs and special
values; gradients and jvps vs finite differences; refusals and dispatch."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
SHAPES = [[(3, 4), (3, 4)], [(3, 1), (4,)], [(), (2, 3)], [(0, 3), (3,)]]


def _away_from_zero(rng, dtype, shapes):
    out = []
    for shape in shapes:
        a = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        out.append(a.astype(dtype))
    return out


def _special(rng, dtype, shapes):
    vals = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -2.5, 1e-300])
    return [np.resize(vals, shapes[0]).astype(dtype),
            np.resize(vals[::-1], shapes[1]).astype(dtype)]


def _heaviside_inputs(rng, dtype, shapes):
    x = rng.choice([-1.5, 0.0, 0.7], size=shapes[0]).astype(dtype)
    return [x, rng.uniform(-2, 2, shapes[1]).astype(dtype)]


def _ldexp_inputs(rng, dtype, shapes):
    return [rng.uniform(-2, 2, shapes[0]).astype(dtype),
            rng.integers(-5, 6, shapes[1]).astype("int32")]


CASES = [
    OpCase("copysign", T.copysign, np.copysign, SHAPES, FLOATS + ("int32",),
           make_inputs=_away_from_zero),
    OpCase("copysign[special]", T.copysign, np.copysign, [[(8,), (8,)]], FLOATS,
           make_inputs=_special, grad=False),
    OpCase("heaviside", T.heaviside, np.heaviside, SHAPES, FLOATS,
           make_inputs=_heaviside_inputs, grad=False),
    # (x through rint: exact zeros that finite differences of x do not move,
    # so the gradient of h where x == 0 is checked)
    OpCase("heaviside[rint]", lambda x, h: T.heaviside(T.rint(x), h),
           lambda a, h: np.heaviside(np.rint(a), h), SHAPES, FLOATS,
           make_inputs=_heaviside_inputs),
    OpCase("heaviside[special]", T.heaviside, np.heaviside, [[(8,), (8,)]], FLOATS,
           make_inputs=_special, grad=False),
    OpCase("nextafter", T.nextafter, np.nextafter, SHAPES + [[(8,), (8,)]], FLOATS,
           grad=False),
    OpCase("nextafter[special]", T.nextafter, np.nextafter, [[(8,), (8,)]], FLOATS,
           make_inputs=_special, grad=False),
    OpCase("ldexp", T.ldexp, np.ldexp, SHAPES, FLOATS, make_inputs=_ldexp_inputs),
    OpCase("frexp[mantissa]", lambda x: T.frexp(x)[0], lambda a: np.frexp(a)[0],
           [[(3, 4)], [()], [(0,)]], FLOATS),
    OpCase("frexp[exponent]", lambda x: T.frexp(x)[1], lambda a: np.frexp(a)[1],
           [[(3, 4)], [()]], FLOATS, grad=False),
    OpCase("frexp[special]", lambda x: T.frexp(x)[0], lambda a: np.frexp(a)[0], [[(8,)]],
           FLOATS, grad=False, make_inputs=lambda rng, dt, s: _special(rng, dt, s * 2)[:1]),
    OpCase("signbit", T.signbit, np.signbit, [[(8,)], [()]], FLOATS + ("int32",), grad=False,
           make_inputs=lambda rng, dt, s: [np.resize(np.array(
               [0.0, -0.0, np.inf, -np.inf, 1.0, -2.0, 3.0, -1e-300]), s[0]).astype(dt)]),
]

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import numpy_ufuncs
    assert uncovered_functions(numpy_ufuncs.__all__, CASES) == []


def test_numpy_dispatch_and_weak_scalars():
    x = T.fvector("x")
    a = np.array([1.5, -2.0, 0.0], "float32")
    for fn in (lambda v: np.copysign(v, -1.0), lambda v: np.heaviside(v, 0.5),
               lambda v: np.nextafter(v, np.float32(3)), lambda v: np.ldexp(v, 3),
               lambda v: np.frexp(v)[0], np.signbit):
        got, want = fn(x).eval({x: a}), fn(a)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_gradients_at_the_kinks():
    x, h = T.dvector("x"), T.dvector("h")
    a = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(tg.grad(T.sum(T.copysign(x, -1.0)), x).eval({x: a}),
                                  [1.0, 0.0, -1.0])
    np.testing.assert_array_equal(
        tg.grad(T.sum(T.heaviside(x, h)), h).eval({x: a, h: np.ones(3)}), [0.0, 1.0, 0.0])


def test_no_gradient_is_refused_by_name():
    x = T.dvector("x")
    with pytest.raises(NotImplementedError, match="nextafter has no gradient"):
        tg.grad(T.sum(T.nextafter(x, 1.0)), x)
    with pytest.raises(TypeError, match="ldexp: not supported"):
        T.ldexp(x, x)
