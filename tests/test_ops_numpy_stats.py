"""Table-driven tests of the NumPy statistics (``ops/numpy_stats.py``):
``average``, ``ptp``, ``median``/``percentile``/``quantile``, ``cov``,
``corrcoef``, the NaN reductions and ``cumulative_sum``/``cumulative_prod``
(forward vs NumPy per dtype, 0-d and 0-length inputs where NumPy defines
them; gradients and jvps vs finite differences), plus refusals and dispatch."""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
REAL = ("float64", "float32", "int32")
ALL = ("float64", "float32", "int32", "complex128")
CGRAD = {"grad_dtypes": ("float64", "complex128")}


def _distinct(rng, dtype, shapes):
    # Distinct values (no ties: sort-based gradients are smooth there).
    out = []
    for shape in shapes:
        size = int(np.prod(shape))
        a = (rng.permutation(size).reshape(shape) * 0.37 - 1.0)
        a = a + rng.uniform(-0.1, 0.1, size=shape)
        out.append(a.astype(dtype) if np.dtype(dtype).kind != "i" else
                   rng.permutation(size).reshape(shape).astype(dtype))
    return out


def _nan_mask(all_nan_row):
    def make(rng, dtype, shapes):
        (shape,) = shapes
        a = rng.uniform(-2, 2, size=shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.uniform(-2, 2, size=shape)
        a = a.astype(dtype) if np.dtype(dtype).kind != "i" else \
            rng.integers(-3, 4, size=shape).astype(dtype)
        mask = (np.arange(int(np.prod(shape))).reshape(shape) % 3) == 1
        if all_nan_row and len(shape) == 2 and shape[0] >= 5:
            mask[0] = True
        return [a, mask]
    return make


def _nan_case(name, fn, ref, axis, shapes, dtypes, all_nan=True, **kw):
    def sym(x, m):
        return fn(T.where(m, np.nan, x) if x.dtype[0] in "fc" else x, axis=axis)

    def numpy_ref(a, m):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ref(np.where(m, np.nan, a) if a.dtype.kind in "fc" else a, axis=axis)
    # (a first row all NaN in the (5, 4) forward inputs only: its gradient
    # through NaN is not finite-differenced)
    return OpCase(f"{name}[axis={axis}]", sym, numpy_ref, shapes, dtypes,
                  make_inputs=_nan_mask(all_nan), grad_shapes=[[(4, 5)]], **kw)


def _nan_cases(name, fn, ref, dtypes, all_nan=True, **kw):
    return [_nan_case(name, fn, ref, axis, shapes, dtypes, all_nan=all_nan, **kw)
            for axis, shapes in [(None, [[(5, 4)], [(0,)]]), (0, [[(5, 4)], [(6,)]]),
                                 (1, [[(5, 4)], [(3, 0)]])]]


Q_AXES = [(None, [[(7,)], [(4, 5)], [()]]), (0, [[(5, 3)]]), (-1, [[(3, 6)]]),
          ((0, 2), [[(3, 2, 4)]])]


def _q_cases(name, fn, ref, extra=""):
    return [OpCase(f"{name}[{extra}axis={axis}]", lambda x, axis=axis: fn(x, axis=axis),
                   lambda a, axis=axis: ref(a, axis=axis), shapes, REAL,
                   make_inputs=_distinct) for axis, shapes in Q_AXES]


CASES = (
    [OpCase(f"average[axis={ax}]", lambda x, ax=ax: T.average(x, axis=ax),
            lambda a, ax=ax: np.average(a, axis=ax), shapes, ALL, **CGRAD)
     for ax, shapes in [(None, [[(3, 4)], [()]]), (0, [[(3, 4)], [(5,)]]), (1, [[(3, 4)]])]]
    + [
        OpCase("average[weights]", lambda x, w: T.average(x, axis=1, weights=w),
               lambda a, w: np.average(a, axis=1, weights=w), [[(3, 4), (3, 4)]], ALL,
               domain=(0.5, 2.0), **CGRAD),
        OpCase("average[weights-1d]", lambda x, w: T.average(x, axis=0, weights=w),
               lambda a, w: np.average(a, axis=0, weights=w), [[(3, 4), (3,)]], FLOATS,
               domain=(0.5, 2.0)),
        OpCase("average[int-weights]", lambda x, w: T.average(x, weights=w, keepdims=True),
               lambda a, w: np.average(a, weights=w, keepdims=True), [[(3, 4), (3, 4)]],
               FLOATS, input_dtypes=(None, "int64"), domain=(1, 3)),
        OpCase("average[returned]", lambda x, w: T.stack(T.average(x, 0, w, returned=True)),
               lambda a, w: np.stack(np.average(a, 0, w, returned=True)),
               [[(3, 4), (3, 4)]], FLOATS, domain=(0.5, 2.0)),
        OpCase("ptp[axis=None]", lambda x: T.ptp(x), np.ptp, [[(3, 4)], [()]], REAL,
               make_inputs=_distinct),
        OpCase("ptp[axis=1,keepdims]", lambda x: T.ptp(x, 1, keepdims=True),
               lambda a: np.ptp(a, 1, keepdims=True), [[(3, 4)], [(0, 4)]], REAL,
               make_inputs=_distinct, grad_shapes=[[(3, 4)]]),
    ]
    + _q_cases("median", T.median, np.median)
    + _q_cases("quantile", lambda x, axis: T.quantile(x, 0.3, axis=axis),
               lambda a, axis: np.quantile(a, 0.3, axis=axis), "q=0.3,")
    + _q_cases("percentile", lambda x, axis: T.percentile(x, [0, 10, 50, 100], axis=axis),
               lambda a, axis: np.percentile(a, [0, 10, 50, 100], axis=axis), "q=list,")
    + [OpCase(f"quantile[method={m}]",
              lambda x, m=m: T.quantile(x, [0.2, 0.25, 0.5, 0.75, 0.9], axis=1, method=m),
              lambda a, m=m: np.quantile(a, [0.2, 0.25, 0.5, 0.75, 0.9], axis=1, method=m),
              [[(3, 9)], [(2, 4)]], REAL, make_inputs=_distinct)
       for m in ("lower", "higher", "nearest", "midpoint")]
    + [
        OpCase("median[keepdims]", lambda x: T.median(x, axis=(0, 2), keepdims=True),
               lambda a: np.median(a, axis=(0, 2), keepdims=True), [[(3, 2, 4)]], REAL,
               make_inputs=_distinct),
        OpCase("percentile[keepdims,q=list]",
               lambda x: T.percentile(x, [25, 60], axis=1, keepdims=True),
               lambda a: np.percentile(a, [25, 60], axis=1, keepdims=True), [[(3, 5)]],
               REAL, make_inputs=_distinct),
        OpCase("quantile[traced-q]", lambda x, q: T.quantile(x, q, axis=-1),
               lambda a, q: np.quantile(a, q, axis=-1),
               [[(3, 7), (2,)], [(6,), ()]], FLOATS,
               make_inputs=lambda rng, dt, shapes: _distinct(rng, dt, shapes[:1])
               + [np.asarray(rng.uniform(0.05, 0.95, shapes[1]), dt)]),
        OpCase("cov", lambda x: T.cov(x), np.cov, [[(3, 6)], [(6,)]], ALL, **CGRAD),
        OpCase("cov[y,rowvar=False]", lambda x, y: T.cov(x, y, rowvar=False),
               lambda a, b: np.cov(a, b, rowvar=False), [[(6, 2), (6, 3)]], ALL, **CGRAD),
        OpCase("cov[bias]", lambda x: T.cov(x, bias=True), lambda a: np.cov(a, bias=True),
               [[(2, 5)]], FLOATS),
        OpCase("cov[ddof=2]", lambda x: T.cov(x, ddof=2), lambda a: np.cov(a, ddof=2),
               [[(2, 5)]], FLOATS),
        OpCase("cov[weights]", lambda x, f, a: T.cov(x, fweights=f, aweights=a),
               lambda x, f, a: np.cov(x, fweights=f, aweights=a),
               [[(3, 5), (5,), (5,)]], FLOATS, input_dtypes=(None, "int64", None),
               domain=(1, 3)),
        OpCase("cov[aweights,ddof=0]", lambda x, a: T.cov(x, ddof=0, aweights=a),
               lambda x, a: np.cov(x, ddof=0, aweights=a), [[(3, 5), (5,)]], FLOATS,
               domain=(0.5, 2)),
        OpCase("corrcoef", lambda x: T.corrcoef(x), np.corrcoef, [[(3, 6)], [(6,)]], ALL,
               **CGRAD),
        OpCase("corrcoef[y]", lambda x, y: T.corrcoef(x, y), np.corrcoef,
               [[(6,), (6,)]], FLOATS),
    ]
    + _nan_cases("nansum", T.nansum, np.nansum, ALL, **CGRAD)
    + _nan_cases("nanprod", T.nanprod, np.nanprod, ALL, domain=(-1.5, 1.5), **CGRAD)
    + _nan_cases("nanmean", T.nanmean, np.nanmean, ALL, **CGRAD)
    + _nan_cases("nanvar", T.nanvar, np.nanvar, ALL, **CGRAD)
    + _nan_cases("nanstd", T.nanstd, np.nanstd, ALL)
    + [_nan_case(name, fn, ref, axis, [[(5, 4)], [shape]], REAL)
       for name, fn, ref in [("nanmax", T.nanmax, np.nanmax), ("nanmin", T.nanmin, np.nanmin)]
       for axis, shape in ((0, (3, 0)), (1, (0, 3)))]
    + [
        OpCase("nanstd[ddof=1,keepdims]",
               lambda x, m: T.nanstd(T.where(m, np.nan, x), 1, ddof=1, keepdims=True),
               lambda a, m: np.nanstd(np.where(m, np.nan, a), 1, ddof=1, keepdims=True),
               [[(4, 5)]], FLOATS, make_inputs=_nan_mask(False)),
        OpCase("cumulative_sum[axis=None]", lambda x: T.cumulative_sum(x),
               np.cumulative_sum, [[(5,)], [(0,)]], ALL, **CGRAD),
        OpCase("cumulative_sum[axis=1,include_initial]",
               lambda x: T.cumulative_sum(x, axis=1, include_initial=True),
               lambda a: np.cumulative_sum(a, axis=1, include_initial=True),
               [[(3, 4)], [(3, 0)]], ALL, **CGRAD),
        OpCase("cumulative_prod[axis=0,include_initial]",
               lambda x: T.cumulative_prod(x, axis=0, include_initial=True),
               lambda a: np.cumulative_prod(a, axis=0, include_initial=True),
               [[(3, 4)], [(0, 2)]], ALL, **CGRAD),
    ]
)

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import numpy_stats
    assert uncovered_functions(numpy_stats.__all__, CASES) == []


def test_special_values():
    x = T.dvector("x")
    a = np.array([1.0, np.nan, 3.0, -np.inf])
    for f, ref in [(T.median, np.median), (lambda v: T.percentile(v, 30), lambda v:
                   np.percentile(v, 30))]:
        np.testing.assert_array_equal(f(x).eval({x: a}), ref(a))
    b = np.array([np.inf, 1.0, -0.0, -np.inf, 2.0])
    np.testing.assert_array_equal(T.median(x).eval({x: b}), np.median(b))
    np.testing.assert_array_equal(T.nanmax(x).eval({x: a}), np.nanmax(a))
    np.testing.assert_array_equal(T.ptp(x).eval({x: b}), np.ptp(b))


def test_median_gradient_goes_to_the_middle_entries():
    x = T.dvector("x")
    g = tg.grad(T.median(x), x)
    np.testing.assert_array_equal(g.eval({x: np.array([5.0, 1.0, 4.0, 2.0])}),
                                  [0, 0, 0.5, 0.5])
    np.testing.assert_array_equal(g.eval({x: np.array([5.0, 1.0, 2.0])}), [0, 0, 1])


def test_numpy_dispatch():
    x = T.dmatrix("x")
    a = np.arange(12.0).reshape(3, 4) ** 1.5
    for fn, kw in [(np.median, {"axis": 0}), (np.cov, {}), (np.corrcoef, {}),
                   (np.nanmean, {}), (np.ptp, {"axis": 1}), (np.average, {"axis": 1}),
                   (np.percentile, {"q": 40}), (np.quantile, {"q": [0.1, 0.7]}),
                   (np.cumulative_sum, {"axis": 0}), (np.nanvar, {"ddof": 1})]:
        np.testing.assert_allclose(fn(x, **kw).eval({x: a}), fn(a, **kw), rtol=1e-12)


@pytest.mark.parametrize("call,error,message", [
    (lambda x: T.quantile(x, 0.5, method="weibull"), NotImplementedError, "weibull"),
    (lambda x: T.quantile(x, 1.5), ValueError, r"within \[0, 1\]"),
    (lambda x: T.percentile(x, 101), ValueError, r"within \[0, 100\]"),
    (lambda x: T.quantile(x, 0.5, weights=np.ones(3)), NotImplementedError, "weights"),
    (lambda x: T.median(T.cast(x, "complex128")), TypeError, "complex"),
    (lambda x: T.nansum(x, where=np.ones(3, bool)), NotImplementedError, "where"),
    (lambda x: T.average(x, weights=np.ones(3)), TypeError, "axis must be given"),
    (lambda x: T.cumulative_sum(x), ValueError, "axis must be given"),
    (lambda x: T.median(x, out=np.empty(3)), TypeError, "out="),
    (lambda x: T.cov(T.tensor3()), ValueError, "more than 2"),
])
def test_refusals_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(T.dmatrix("x"))
