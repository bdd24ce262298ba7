"""Table-driven tests of ``ops/numpy_signal.py`` (``trapezoid``,
``gradient``, ``interp``, ``searchsorted``, ``unwrap``, ``convolve``,
``correlate``) and ``ops/numpy_pad.py`` (every ``np.pad`` mode): forward vs
NumPy per dtype, 0-d and 0-length inputs where NumPy defines them; gradients
and jvps vs finite differences; refusals and NumPy dispatch."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
ALL = ("float64", "float32", "int32", "complex128")
CGRAD = {"grad_dtypes": ("float64", "complex128")}


def _sorted_xp(rng, dtype, shapes):
    # x anywhere (outside the range too), xp strictly increasing, fp any;
    # x kept away from the knots (the derivative in x jumps there).
    xs, xps, fps = shapes
    xp = np.cumsum(rng.uniform(0.5, 1.5, xps)) - 2.0
    x = rng.uniform(-3.5, 4.0, xs)
    near = np.min(np.abs(x[..., None] - xp), axis=-1) < 0.05 if x.size else x
    x = np.where(near, x + 0.1, x)
    fp = rng.uniform(-2, 2, fps)
    if np.dtype(dtype).kind == "c":
        fp = fp + 1j * rng.uniform(-2, 2, fps)
    return [x.astype(dtype if dtype != "complex128" else "float64"),
            xp.astype(dtype if dtype != "complex128" else "float64"), fp.astype(dtype)]


def _phases(rng, dtype, shapes):
    (shape,) = shapes
    steps = rng.choice([-4.0, -0.5, 0.3, 4.5], size=shape) + rng.uniform(-0.2, 0.2, shape)
    return [np.cumsum(steps, axis=-1).astype(dtype)]


SIGNAL = [
    OpCase("trapezoid", lambda y: T.trapezoid(y), np.trapezoid, [[(5,)], [(3, 4)], [(2, 0)]],
           ALL, **CGRAD),
    OpCase("trapz[x,axis=0]", lambda y, x: T.trapz(y, x, axis=0),
           lambda y, x: np.trapezoid(y, x, axis=0), [[(4, 3), (4,)], [(4, 3), (4, 3)]],
           FLOATS + ("complex128",), **CGRAD),
    OpCase("trapezoid[dx]", lambda y, d: T.trapezoid(y, dx=d), lambda y, d: np.trapezoid(y, dx=d),
           [[(3, 5), ()]], FLOATS),
    OpCase("gradient", lambda f: T.gradient(f), np.gradient, [[(5,)], [(2,)]], ALL, **CGRAD),
    OpCase("gradient[2d]", lambda f: T.stack(T.gradient(f)), lambda f: np.stack(np.gradient(f)),
           [[(4, 4)], [(3, 3)]], ALL, **CGRAD),
    OpCase("gradient[edge_order=2,axis=1,dx]", lambda f, h: T.gradient(f, h, axis=1,
                                                                       edge_order=2),
           lambda f, h: np.gradient(f, h, axis=1, edge_order=2), [[(3, 5), ()], [(2, 3), ()]],
           FLOATS, domain=(0.5, 2.0)),
    OpCase("gradient[coords]", lambda f, x: T.gradient(f, x, axis=0),
           lambda f, x: np.gradient(f, x, axis=0), [[(5, 2), (5,)]], FLOATS,
           make_inputs=lambda rng, dt, s: [rng.uniform(-2, 2, s[0]).astype(dt),
                                           np.cumsum(rng.uniform(0.5, 1.5, s[1])).astype(dt)]),
    OpCase("gradient[coords,edge_order=2]",
           lambda f, x, y: T.stack(T.gradient(f, x, y, edge_order=2)),
           lambda f, x, y: np.stack(np.gradient(f, x, y, edge_order=2)),
           [[(4, 4), (4,), (4,)]], FLOATS,
           make_inputs=lambda rng, dt, s: [rng.uniform(-2, 2, s[0]).astype(dt)]
           + [np.cumsum(rng.uniform(0.5, 1.5, n)).astype(dt) for n in s[1:]]),
    OpCase("interp", lambda x, xp, fp: T.interp(x, xp, fp), np.interp,
           [[(9,), (5,), (5,)], [(2, 3), (4,), (4,)], [(), (3,), (3,)], [(0,), (2,), (2,)]],
           ("float64", "float32", "complex128"), make_inputs=_sorted_xp, **CGRAD),
    OpCase("interp[left,right]", lambda x, xp, fp: T.interp(x, xp, fp, left=-7.0, right=9.0),
           lambda x, xp, fp: np.interp(x, xp, fp, left=-7.0, right=9.0),
           [[(9,), (5,), (5,)]], ("float64",), make_inputs=_sorted_xp),
    OpCase("interp[period]", lambda x, xp, fp: T.interp(x, xp, fp, period=3.0),
           lambda x, xp, fp: np.interp(x, xp, fp, period=3.0), [[(9,), (5,), (5,)]],
           ("float64",), make_inputs=lambda rng, dt, s: [
               rng.uniform(-4, 4, s[0]), rng.permutation(np.arange(5) * 0.55 + 0.1),
               rng.uniform(-2, 2, s[2])]),
    OpCase("searchsorted", lambda a, v: T.searchsorted(a, v),
           lambda a, v: np.searchsorted(a, v), [[(5,), (7,)]], ("float64", "int32"),
           grad=False, make_inputs=lambda rng, dt, s: [np.arange(5).astype(dt),
                                                       rng.integers(-1, 7, s[1]).astype(dt)]),
    OpCase("searchsorted[right,sorter]", lambda a, v, s: T.searchsorted(a, v, "right", s),
           lambda a, v, s: np.searchsorted(a, v, "right", s), [[(5,), (7,), (5,)]],
           ("float64",), grad=False,
           make_inputs=lambda rng, dt, s: [np.array([3.0, 1, 4, 0, 2]),
                                           rng.integers(-1, 7, s[1]).astype(dt),
                                           np.array([3, 1, 4, 0, 2])]),
    OpCase("unwrap", lambda p: T.unwrap(p), np.unwrap, [[(8,)], [(3, 6)], [(0,)]], FLOATS,
           make_inputs=_phases),
    OpCase("unwrap[int,period=6,axis=0]", lambda p: T.unwrap(p, axis=0, period=6),
           lambda p: np.unwrap(p, axis=0, period=6), [[(7, 2)]], ("int32", "int64"),
           grad=False, make_inputs=lambda rng, dt, s: [rng.integers(-9, 9, s[0]).astype(dt)]),
] + [
    OpCase(f"{name}[{mode}]", lambda a, v, f=fn, m=mode: f(a, v, m),
           lambda a, v, f=ref, m=mode: f(a, v, m),
           [[(6,), (3,)], [(3,), (6,)], [(5,), (4,)], [(4,), (5,)], [(1,), (1,)]], ALL, **CGRAD)
    for name, fn, ref in (("convolve", T.convolve, np.convolve),
                          ("correlate", T.correlate, np.correlate))
    for mode in ("full", "same", "valid")
]

PAD_MODES = [
    ("constant", {}), ("constant", {"constant_values": ((1, 2), (3, -4))}),
    ("empty", {}), ("edge", {}), ("wrap", {}), ("reflect", {}), ("symmetric", {}),
    ("reflect", {"reflect_type": "odd"}), ("symmetric", {"reflect_type": "odd"}),
    ("linear_ramp", {"end_values": (5, -1)}), ("maximum", {}), ("minimum", {"stat_length": 2}),
    ("mean", {"stat_length": ((1, 2), (2, 3))}), ("median", {}),
]
PAD_WIDTHS = [1, ((0, 7), (9, 1)), ((4, 5), (0, 0))]


def _pad_inputs(rng, dtype, shapes):
    # (distinct values: max/min/median gradients away from ties)
    (shape,) = shapes
    size = int(np.prod(shape))
    a = rng.permutation(size).reshape(shape) * 0.7 - 2.0 + rng.uniform(-0.1, 0.1, shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.uniform(-1, 1, shape)
    return [a.astype(dtype)]


def _pad_case(mode, kw, width, shapes, dtypes, **extra):
    def sym(x):
        return T.pad(x, width, mode, **kw)

    def ref(a):
        out = np.pad(a, width, mode, **kw)
        return np.where(out != out, 0, out) if mode == "empty" else out
    label = ",".join(f"{k}={v}" for k, v in kw.items())
    if mode == "empty":
        # (NumPy leaves the pad uninitialized: compare the kept region only)
        def sym(x):
            return T.pad(x, width, "empty")[_inner(width, 2)]

        def ref(a):
            return a
    return OpCase(f"pad[{mode}{',' if label else ''}{label},{width}]", sym, ref, shapes, dtypes,
                  make_inputs=_pad_inputs, **extra)


def _inner(width, ndim):
    pairs = np.broadcast_to(np.asarray(width), (ndim, 2))
    return tuple(slice(int(b), int(b) + n) for (b, _), n in zip(pairs, (3, 4)))


PAD = [
    _pad_case(mode, kw, width, [[(3, 4)]],
              ALL if mode not in ("maximum", "minimum", "median") else ("float64", "float32",
                                                                        "int32"),
              **({} if mode in ("maximum", "minimum", "median", "linear_ramp") else CGRAD))
    for mode, kw in PAD_MODES for width in PAD_WIDTHS
] + [
    OpCase("pad[reflect,1d,length-1]", lambda x: T.pad(x, (2, 3), "reflect"),
           lambda a: np.pad(a, (2, 3), "reflect"), [[(1,)]], FLOATS),
    OpCase("pad[constant,0-d]", lambda x: T.pad(x, 2), lambda a: np.pad(a, 2), [[()]], FLOATS),
    OpCase("pad[constant,zero-size]", lambda x: T.pad(x, 1, constant_values=7),
           lambda a: np.pad(a, 1, constant_values=7), [[(0, 2)]], ALL, grad=False),
    OpCase("pad[constant,traced value]", lambda x, c: T.pad(x, ((1, 0), (2, 1)),
                                                            constant_values=c),
           lambda a, c: np.pad(a, ((1, 0), (2, 1)), constant_values=c), [[(2, 3), ()]], FLOATS),
    OpCase("pad[linear_ramp,3d,axis-only]", lambda x: T.pad(x, ((0, 0), (2, 3), (1, 0)),
                                                            "linear_ramp", end_values=2),
           lambda a: np.pad(a, ((0, 0), (2, 3), (1, 0)), "linear_ramp", end_values=2),
           [[(2, 3, 2)]], ALL),
]

CASES = SIGNAL + PAD

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import numpy_pad, numpy_signal
    assert uncovered_functions(numpy_signal.__all__ + numpy_pad.__all__, CASES) == []


def test_special_values():
    x = T.dvector("x")
    a = np.array([0.0, np.nan, 2.0, np.inf, -0.0])
    for fn in (np.gradient, np.trapezoid, lambda v: np.convolve(v, v),
               lambda v: np.pad(v, 2, "reflect")):
        np.testing.assert_array_equal(fn(x).eval({x: a}), fn(a))
    np.testing.assert_array_equal(T.interp(x, np.array([0.0, 1.0]), np.array([1.0, 3.0])).eval(
        {x: np.array([np.nan, -np.inf, np.inf, 0.5])}),
        np.interp([np.nan, -np.inf, np.inf, 0.5], [0.0, 1.0], [1.0, 3.0]))


def test_interp_gradients():
    x, fp = T.dvector("x"), T.dvector("fp")
    xp = np.array([0.0, 1.0, 3.0])
    y = T.sum(T.interp(x, xp, fp))
    gx, gfp = tg.grad(y, [x, fp])
    feed = {x: np.array([0.5, 2.0, 5.0]), fp: np.array([0.0, 2.0, 3.0])}
    np.testing.assert_allclose(gx.eval(feed), [2.0, 0.5, 0.0])   # slopes, 0 outside
    np.testing.assert_allclose(gfp.eval(feed), [0.5, 0.5 + 0.5, 0.5 + 1.0])


def test_numpy_dispatch():
    x = T.dvector("x")
    a = np.array([1.0, 2.0, 4.0, 7.0])
    for fn in (np.gradient, np.trapezoid, np.unwrap, lambda v: np.pad(v, 1, "wrap"),
               lambda v: np.convolve(v, v, "same"), lambda v: np.correlate(v, v[:2]),
               lambda v: np.interp(v, v, v), lambda v: np.searchsorted(v, v)):
        np.testing.assert_allclose(fn(x).eval({x: a}), fn(a))


@pytest.mark.parametrize("call,error,message", [
    (lambda x: T.pad(x, 1, lambda *a: None), NotImplementedError, "callable"),
    (lambda x: T.pad(x, 1, "bogus"), ValueError, "mode 'bogus'"),
    (lambda x: T.pad(x, 1, "edge", constant_values=1), ValueError, "unsupported keyword"),
    (lambda x: T.pad(x, -1), ValueError, "negative"),
    (lambda x: T.pad(x, T.iscalar()), TypeError, "Python ints"),
    (lambda x: T.pad(x, 1, "reflect", reflect_type="weird"), ValueError, "reflect_type"),
    (lambda x: T.pad(x, 1, "mean", stat_length=0), ValueError, "stat_length of 0"),
    (lambda x: T.pad(T.specify_shape(x, (0,)), 1, "edge"), ValueError, "empty axis"),
    (lambda x: T.convolve(x, T.dmatrix()), ValueError, "1-d"),
    (lambda x: T.convolve(x, x, "middle"), ValueError, "mode"),
    (lambda x: T.gradient(x, edge_order=3), ValueError, "edge_order"),
    (lambda x: T.gradient(x[0]), ValueError, "0-d"),
    (lambda x: T.gradient(T.specify_shape(x, (2,)), edge_order=2), ValueError, "too small"),
    (lambda x: T.interp(x, T.dmatrix(), x), ValueError, "1-d"),
    (lambda x: T.interp(x, x, x, period=0), ValueError, "period"),
    (lambda x: T.searchsorted(x, x, side="middle"), ValueError, "side"),
])
def test_refusals_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(T.dvector("x"))
