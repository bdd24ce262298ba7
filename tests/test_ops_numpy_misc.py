"""Table-driven tests of ``ops/numpy_misc.py``: ranges with traced bounds,
``meshgrid``, ``broadcast_arrays``, ``ediff1d``, ``select``, ``polyval``,
``vander`` and the boolean tests (forward vs NumPy per dtype, 0-d and
0-length inputs; gradients and jvps vs finite differences), plus
refusals and NumPy dispatch."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
ALL = ("float64", "float32", "int32", "complex128")
CGRAD = {"grad_dtypes": ("float64", "complex128")}


def _stack(fn):
    """A case's graph from a tuple-returning function: its outputs stacked."""
    return lambda *xs: T.stack(list(fn(*xs)))


def _special(rng, dtype, shapes):
    vals = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 1.0 + 1e-9, 1e-300])
    a = np.resize(vals, shapes[0]).astype(dtype)
    b = np.resize(vals[::-1], shapes[1]).astype(dtype)
    return [a, b]


CASES = [
    OpCase("linspace[traced]", lambda a, b: T.linspace(a, b, 5), lambda a, b: np.linspace(a, b, 5),
           [[(), ()], [(3,), (3,)], [(2, 1), (3,)]], FLOATS + ("int32",)),
    OpCase("linspace[endpoint=False,axis=-1]",
           lambda a, b: T.linspace(a, b, 4, endpoint=False, axis=-1),
           lambda a, b: np.linspace(a, b, 4, endpoint=False, axis=-1), [[(3,), (3,)]], FLOATS),
    OpCase("linspace[num=1]", lambda a, b: T.linspace(a, b, 1),
           lambda a, b: np.linspace(a, b, 1), [[(), ()]], FLOATS),
    OpCase("linspace[num=0]", lambda a, b: T.linspace(a, b, 0),
           lambda a, b: np.linspace(a, b, 0), [[(2,), (2,)]], FLOATS, grad=False),
    OpCase("linspace[retstep]", lambda a, b: T.linspace(a, b, 6, retstep=True)[1],
           lambda a, b: np.linspace(a, b, 6, retstep=True)[1], [[(), ()], [(2,), (2,)]],
           FLOATS),
    OpCase("linspace[dtype=int64]", lambda a, b: T.linspace(a, b, 7, dtype="int64"),
           lambda a, b: np.linspace(a, b, 7, dtype="int64"), [[(), ()]], ("float64",),
           grad=False, domain=(-9, 9)),
    OpCase("logspace", lambda a, b: T.logspace(a, b, 4), lambda a, b: np.logspace(a, b, 4),
           [[(), ()], [(2,), (2,)]], FLOATS),
    OpCase("logspace[base,axis=1]", lambda a, b, c: T.logspace(a, b, 3, base=c, axis=1),
           lambda a, b, c: np.logspace(a, b, 3, base=c, axis=1), [[(2,), (2,), (2,)]],
           FLOATS, domain=(0.5, 2.0)),
    OpCase("geomspace", lambda a, b: T.geomspace(a, b, 5), lambda a, b: np.geomspace(a, b, 5),
           [[(), ()], [(3,), (3,)]], FLOATS, domain=(0.5, 3.0)),
    OpCase("geomspace[negative,endpoint=False]",
           lambda a, b: T.geomspace(-a, -b, 4, endpoint=False, axis=-1),
           lambda a, b: np.geomspace(-a, -b, 4, endpoint=False, axis=-1), [[(2,), (2,)]],
           FLOATS, domain=(0.5, 3.0)),
    OpCase("meshgrid[xy]", _stack(lambda a, b: T.meshgrid(a, b)),
           lambda a, b: np.stack(np.meshgrid(a, b)), [[(3,), (4,)], [(0,), (2,)]], ALL,
           **CGRAD),
    OpCase("meshgrid[ij,3]", _stack(lambda a, b, c: T.meshgrid(a, b, c, indexing="ij")),
           lambda a, b, c: np.stack(np.meshgrid(a, b, c, indexing="ij")),
           [[(2,), (3,), (2,)]], ALL),
    OpCase("meshgrid[sparse]", lambda a, b: T.meshgrid(a, b, sparse=True)[0] * 2,
           lambda a, b: np.meshgrid(a, b, sparse=True)[0] * 2, [[(3,), (4,)]], FLOATS),
    OpCase("broadcast_arrays", _stack(lambda a, b: T.broadcast_arrays(a, b)),
           lambda a, b: np.stack(np.broadcast_arrays(a, b)),
           [[(3, 1), (4,)], [(), (2, 3)], [(0, 1), (1, 5)], [(2, 3), (2, 3)]], ALL, **CGRAD),
    OpCase("ediff1d", lambda a: T.ediff1d(a), np.ediff1d, [[(5,)], [(2, 3)], [()]], ALL,
           **CGRAD),
    OpCase("ediff1d[to_begin,to_end]", lambda a, b, c: T.ediff1d(a, to_end=c, to_begin=b),
           lambda a, b, c: np.ediff1d(a, to_end=c, to_begin=b), [[(4,), (2,), ()]], FLOATS),
    OpCase("select", lambda c1, c2, a, b: T.select([c1, c2], [a, b], default=-1.0),
           lambda c1, c2, a, b: np.select([c1, c2], [a, b], default=-1.0),
           [[(3, 4), (3, 4), (3, 4), (3, 4)], [(4,), (3, 4), (), (4,)]], ALL,
           input_dtypes=("bool", "bool", None, None), **CGRAD),
    OpCase("polyval", lambda p, x: T.polyval(T.specify_shape(p, (4,)), x),
           lambda p, x: np.polyval(p, x), [[(4,), (5,)], [(4,), ()], [(4,), (2, 0)]], ALL,
           **CGRAD),
    OpCase("vander", lambda x: T.vander(x), np.vander, [[(4,)], [(0,)]], ALL, **CGRAD),
    OpCase("vander[N=3,increasing]", lambda x: T.vander(x, 3, increasing=True),
           lambda a: np.vander(a, 3, increasing=True), [[(5,)]], ALL + ("bool",), **CGRAD),
    OpCase("vander[N=0]", lambda x: T.vander(x, 0), lambda a: np.vander(a, 0), [[(3,)]],
           ("float64",), grad=False),
    OpCase("iscomplex", lambda x: T.iscomplex(x), np.iscomplex, [[(3, 4)], [()]],
           ALL, grad=False),
    OpCase("isreal", lambda x: T.isreal(x * 1), np.isreal, [[(3, 4)], [(0,)]], ALL, grad=False),
    OpCase("isclose", lambda a, b: T.isclose(a, b), np.isclose,
           [[(8,), (8,)], [(2, 8), (8,)]], FLOATS + ("complex128",), grad=False,
           make_inputs=_special),
    OpCase("isclose[equal_nan,tol]", lambda a, b: T.isclose(a, b, 1e-3, 0.5, True),
           lambda a, b: np.isclose(a, b, 1e-3, 0.5, True), [[(8,), (8,)]], FLOATS,
           grad=False, make_inputs=_special),
    OpCase("allclose", lambda a, b: T.allclose(a, b + 1e-9), lambda a, b: np.allclose(a, b + 1e-9),
           [[(3,), (3,)]], FLOATS, grad=False,
           make_inputs=lambda rng, dt, shapes: [np.arange(3.0, dtype=dt)] * 2),
    OpCase("real_if_close", lambda x: T.real_if_close(x), np.real_if_close, [[(3,)]],
           ("float64", "int32")),
]

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import numpy_misc
    assert uncovered_functions(numpy_misc.__all__, CASES) == []


def test_linspace_gradient_of_the_bounds():
    a, b = T.dscalar("a"), T.dscalar("b")
    y = T.sum(T.linspace(a, b, 5) * np.arange(5.0))
    ga, gb = tg.grad(y, [a, b])
    w = np.linspace(1.0, 0.0, 5)        # d y_k / d a = 1 - k / 4
    np.testing.assert_allclose(ga.eval({a: 0.0, b: 1.0}), np.dot(w, np.arange(5.0)))
    np.testing.assert_allclose(gb.eval({a: 0.0, b: 1.0}), np.dot(1 - w, np.arange(5.0)))


def test_numpy_dispatch():
    x, y = T.dvector("x"), T.dvector("y")
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.5, 1.0])
    feed = {x: a, y: b}
    np.testing.assert_allclose(np.linspace(x, 2 * x, 3).eval({x: a}), np.linspace(a, 2 * a, 3))
    for got, want in zip(np.meshgrid(x, y), np.meshgrid(a, b)):
        np.testing.assert_array_equal(got.eval(feed), want)
    np.testing.assert_array_equal(np.isclose(x, x).eval({x: a}), [True] * 3)
    assert np.allclose(x, x).eval({x: a}) == np.True_
    np.testing.assert_array_equal(np.vander(x).eval({x: a}), np.vander(a))
    np.testing.assert_allclose(np.polyval(b, x).eval({x: a}), np.polyval(b, a))


@pytest.mark.parametrize("call,error,message", [
    (lambda x: T.linspace(0, x, 2.5), TypeError, "num must be a Python int"),
    (lambda x: T.linspace(0, x, -1), ValueError, "non-negative"),
    (lambda x: T.geomspace(1j, x, 3), NotImplementedError, "complex"),
    (lambda x: T.select([x > 0], []), ValueError, "same length"),
    (lambda x: T.select([x], [x]), TypeError, "boolean"),
    (lambda x: T.polyval(x, x), ValueError, "length known"),
    (lambda x: T.vander(T.dmatrix()), ValueError, "one-dimensional"),
    (lambda x: T.real_if_close(T.cast(x, "complex128")), TypeError, "dtype would depend"),
    (lambda x: T.meshgrid(x, indexing="xx"), ValueError, "indexing"),
    (lambda x: T.ediff1d(x, to_end=np.array([1.5j])), TypeError, "to_end"),
])
def test_refusals_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(T.dvector("x"))
