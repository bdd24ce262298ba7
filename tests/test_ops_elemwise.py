"""Table-driven tests of the elementwise ops: forward vs NumPy per dtype and
broadcasting case; gradients vs finite differences."""
import math

import numpy as np
import pytest

import tracegrad.tensor as T
from optable import OpCase, table_tests

try:
    import scipy.special as sp
except ImportError:  # pragma: no cover
    sp = None

UNARY_SHAPES = [[(3, 4)], [()], [(0, 3)], [(5,)]]
BINARY_SHAPES = [[(3, 4), (3, 4)], [(3, 1), (1, 4)], [(4,), (3, 4)], [(), (2, 3)],
                 [(0, 4), (1, 4)]]
FLOATS = ("float64", "float32")
WITH_INTS = ("float64", "float32", "int32", "int64")
# Rows defined on complex numbers: forward and gradient checked for complex128
# too (complex finite differences, docs/user-guide.md "Complex gradients").
COMPLEX = {"dtypes": FLOATS + ("complex128",), "grad_dtypes": ("float64", "complex128")}


def unary(name, ref, domain=(-2.0, 2.0), dtypes=FLOATS, grad=True, fn=None, **kw):
    return OpCase(name, fn or getattr(T, name), ref, UNARY_SHAPES, dtypes, domain, grad, **kw)


def binary(name, ref, domain=(-2.0, 2.0), dtypes=FLOATS, grad=True, fn=None, **kw):
    return OpCase(name, fn or getattr(T, name), ref, BINARY_SHAPES, dtypes, domain, grad, **kw)


def _special(name, fallback):
    return getattr(sp, name) if sp is not None else fallback


CASES = [
    unary("neg", np.negative, dtypes=WITH_INTS + ("complex128",),
          grad_dtypes=COMPLEX["grad_dtypes"]),
    unary("abs", np.abs, dtypes=WITH_INTS + ("complex128",), grad_dtypes=COMPLEX["grad_dtypes"]),
    unary("sign", np.sign, dtypes=WITH_INTS),
    unary("sqr", np.square, **COMPLEX),
    unary("square", np.square, dtypes=FLOATS),
    unary("exp", np.exp, dtypes=WITH_INTS + ("complex128",),
          grad_dtypes=COMPLEX["grad_dtypes"]),
    unary("exp2", np.exp2),
    unary("expm1", np.expm1, **COMPLEX),
    unary("log", np.log, domain=(0.1, 3.0), dtypes=WITH_INTS[:2] + ("int64", "complex128"),
          grad_dtypes=COMPLEX["grad_dtypes"]),
    unary("log2", np.log2, domain=(0.1, 3.0)),
    unary("log10", np.log10, domain=(0.1, 3.0)),
    unary("log1p", np.log1p, domain=(-0.5, 3.0), **COMPLEX),
    unary("sqrt", np.sqrt, domain=(0.1, 3.0), **COMPLEX),
    unary("sin", np.sin, **COMPLEX), unary("cos", np.cos, **COMPLEX),
    unary("tan", np.tan, domain=(-1.2, 1.2)),
    unary("arcsin", np.arcsin, domain=(-0.9, 0.9)),
    unary("arccos", np.arccos, domain=(-0.9, 0.9)),
    unary("arctan", np.arctan),
    unary("sinh", np.sinh, **COMPLEX), unary("cosh", np.cosh, **COMPLEX),
    unary("tanh", np.tanh, domain=(-1.0, 1.0), **COMPLEX),
    unary("arcsinh", np.arcsinh),
    unary("arccosh", np.arccosh, domain=(1.1, 3.0)),
    unary("arctanh", np.arctanh, domain=(-0.9, 0.9)),
    unary("floor", np.floor, grad=False), unary("ceil", np.ceil, grad=False),
    unary("rint", np.rint, grad=False), unary("trunc", np.trunc, grad=False),
    unary("logical_not", np.logical_not, dtypes=("bool", "float64"), grad=False),
    unary("round", np.round, grad=False, dtypes=WITH_INTS),
    unary("round_2", lambda x: np.round(x, 2), fn=lambda x: T.round(x, 2), grad=False),
    unary("erf", _special("erf", None)), unary("erfc", _special("erfc", None)),
    unary("erfinv", _special("erfinv", None), domain=(-0.9, 0.9)),
    unary("gamma", _special("gamma", None), domain=(0.5, 3.0)),
    unary("gammaln", _special("gammaln", None), domain=(0.5, 3.0)),
    unary("psi", _special("psi", None), domain=(0.5, 3.0)),
    unary("sigmoid", lambda x: 1 / (1 + np.exp(-x)), domain=(-5, 5), tol=(1e-6, 1e-7)),
    unary("softplus", lambda x: np.log1p(np.exp(x)), domain=(-5, 5), tol=(1e-6, 1e-7)),
    unary("isnan", np.isnan, grad=False), unary("isinf", np.isinf, grad=False),
    unary("invert", np.invert, dtypes=("int32", "int64", "bool"), grad=False),
    unary("real", np.real, **COMPLEX), unary("imag", np.imag, **COMPLEX),
    unary("conj", np.conj, **COMPLEX),
    unary("angle", np.angle, domain=(0.2, 2.0), **COMPLEX),
    unary("cast_f32", lambda x: x.astype("float32"), fn=lambda x: T.cast(x, "float32"),
          dtypes=("float64", "int32")),
    unary("astype_i64", lambda x: x.astype("int64"), fn=lambda x: x.astype("int64"),
          grad=False),
    binary("add", np.add, dtypes=WITH_INTS + ("complex128",),
           grad_dtypes=COMPLEX["grad_dtypes"]),
    binary("sub", np.subtract, dtypes=WITH_INTS + ("complex128",),
           grad_dtypes=COMPLEX["grad_dtypes"]),
    binary("mul", np.multiply, dtypes=WITH_INTS + ("complex128",),
           grad_dtypes=COMPLEX["grad_dtypes"]),
    binary("true_div", np.true_divide, domain=(1.0, 3.0), dtypes=WITH_INTS + ("complex128",),
           grad_dtypes=COMPLEX["grad_dtypes"]),
    # A real operand of a complex product gets the real part of its gradient.
    binary("mul[real,complex]", np.multiply, fn=T.mul, dtypes=("float64",),
           input_dtypes=(None, "complex128")),
    binary("true_div[complex,real]", np.true_divide, fn=T.true_div, domain=(1.0, 3.0),
           dtypes=("float64",), input_dtypes=("complex128", None)),
    binary("floor_div", np.floor_divide, domain=(1, 5), dtypes=WITH_INTS, grad=False),
    binary("mod", np.mod, domain=(1, 5), dtypes=WITH_INTS, grad=False),
    binary("pow", np.power, domain=(0.5, 2.0), **COMPLEX),
    binary("arctan2", np.arctan2, domain=(0.2, 2.0)),
    binary("maximum", np.maximum, dtypes=WITH_INTS),
    binary("minimum", np.minimum, dtypes=WITH_INTS),
    unary("deg2rad", np.deg2rad, dtypes=WITH_INTS), unary("rad2deg", np.rad2deg, dtypes=WITH_INTS),
    unary("radians", np.radians), unary("degrees", np.degrees),
    unary("fabs", np.fabs, dtypes=WITH_INTS),
    unary("reciprocal", np.reciprocal, domain=(1.0, 3.0), dtypes=WITH_INTS + ("complex128",),
          grad_dtypes=COMPLEX["grad_dtypes"]),
    unary("reciprocal[neg]", np.reciprocal, fn=T.reciprocal, domain=(-2.0, -0.5)),
    unary("sinc", np.sinc, dtypes=WITH_INTS + ("complex128",), grad_dtypes=COMPLEX["grad_dtypes"]),
    # sinc at 0 (1) and its gradient there (0), with integers on the grid.
    OpCase("sinc[special]", T.sinc, np.sinc, [[(7,)]], FLOATS,
           make_inputs=lambda rng, dt, shapes: [np.array([0, 1, -1, 0.5, 2, -3, 1e-9], dt)]),
    OpCase("nan_to_num", T.nan_to_num, np.nan_to_num, UNARY_SHAPES, WITH_INTS, grad=False,
           make_inputs=lambda rng, dt, shapes: [_with_specials(rng, dt, shapes[0])]),
    OpCase("nan_to_num[complex]", T.nan_to_num, np.nan_to_num, UNARY_SHAPES[:1],
           ("complex128", "complex64"), grad=False,
           make_inputs=lambda rng, dt, shapes: [_complex_specials(rng, dt, shapes[0])]),
    OpCase("nan_to_num[kw]", lambda x: T.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0),
           lambda x: np.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0), UNARY_SHAPES[:1],
           FLOATS, grad=False, make_inputs=lambda rng, dt, shapes: [
               _with_specials(rng, dt, shapes[0])]),
    unary("nan_to_num[grad]", np.nan_to_num, fn=T.nan_to_num),
    binary("fmax", np.fmax, dtypes=WITH_INTS), binary("fmin", np.fmin, dtypes=WITH_INTS),
    # NaN is ignored: the other input is chosen (and gets the gradient).
    OpCase("fmax[nan]", T.fmax, np.fmax, [[(4,), (4,)]], FLOATS, grad=False,
           make_inputs=lambda rng, dt, shapes: [np.array([np.nan, 1, np.nan, 2], dt),
                                                np.array([3, np.nan, np.nan, -1], dt)]),
    OpCase("fmin[nan]", T.fmin, np.fmin, [[(4,), (4,)]], FLOATS, grad=False,
           make_inputs=lambda rng, dt, shapes: [np.array([np.nan, 1, np.nan, 2], dt),
                                                np.array([3, np.nan, np.nan, -1], dt)]),
    binary("hypot", np.hypot, dtypes=WITH_INTS),
    binary("logaddexp", np.logaddexp, dtypes=WITH_INTS),
    binary("logaddexp2", np.logaddexp2, dtypes=WITH_INTS),
    # Large and infinite operands: NumPy's stable forward.
    OpCase("logaddexp[large]", T.logaddexp, np.logaddexp, [[(5,), (5,)]], FLOATS, grad=False,
           make_inputs=lambda rng, dt, shapes: [np.array([1e30, -1e30, np.inf, -np.inf, 5], dt),
                                                np.array([1e30, 3, 1, -np.inf, -7], dt)]),
    OpCase("logaddexp2[large]", T.logaddexp2, np.logaddexp2, [[(5,), (5,)]], FLOATS,
           grad=False,
           make_inputs=lambda rng, dt, shapes: [np.array([1e30, -1e30, np.inf, -np.inf, 5], dt),
                                                np.array([1e30, 3, 1, -np.inf, -7], dt)]),
    binary("eq", np.equal, dtypes=("int32",) + FLOATS, grad=False),
    binary("neq", np.not_equal, dtypes=("int32",), grad=False),
    binary("lt", np.less, grad=False), binary("le", np.less_equal, grad=False),
    binary("gt", np.greater, grad=False), binary("ge", np.greater_equal, grad=False),
    binary("and_", np.bitwise_and, dtypes=("int32", "bool"), grad=False),
    binary("or_", np.bitwise_or, dtypes=("int32", "bool"), grad=False),
    binary("xor", np.bitwise_xor, dtypes=("int64", "bool"), grad=False),
    binary("logical_and", np.logical_and, dtypes=("bool", "float64"), grad=False),
    binary("logical_or", np.logical_or, dtypes=("bool", "int32"), grad=False),
    binary("logical_xor", np.logical_xor, dtypes=("bool", "float32"), grad=False),
    OpCase("switch", T.switch, lambda c, a, b: np.where(c, a, b),
           [[(3, 4), (3, 4), (3, 4)], [(3, 1), (4,), ()]], FLOATS,
           input_dtypes=("bool", None, None)),
    OpCase("where", T.where, np.where, [[(3, 4), (3, 4), (1, 4)]], FLOATS,
           input_dtypes=("bool", None, None)),
    OpCase("clip", T.clip, np.clip, [[(3, 4), (), ()], [(5,), (5,), ()]], FLOATS,
           make_inputs=lambda rng, dt, shapes: [
               rng.uniform(-2, 2, shapes[0]).astype(dt),
               (rng.uniform(-1.5, -0.5, shapes[1])).astype(dt),
               (rng.uniform(0.5, 1.5, shapes[2])).astype(dt)]),
    OpCase("clip_const", lambda x: T.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7),
           UNARY_SHAPES, FLOATS),
    OpCase("clip_lo_only", lambda x: T.clip(x, -0.5, None), lambda x: np.clip(x, -0.5, None),
           UNARY_SHAPES[:1], FLOATS),
    OpCase("weak_scalar_mul", lambda x: x * 2.5, lambda x: x * 2.5, UNARY_SHAPES, WITH_INTS),
    OpCase("weak_scalar_radd", lambda x: 1 + x, lambda x: 1 + x, UNARY_SHAPES, WITH_INTS),
]
CASES = [c for c in CASES if c.ref is not None]


def _with_specials(rng, dtype, shape):
    """Values in (-2, 2) with NaN, +inf and -inf among them (floats)."""
    values = rng.uniform(-2, 2, size=shape)
    if np.dtype(dtype).kind != "f":
        return rng.integers(-2, 3, size=shape).astype(dtype)
    flat = values.reshape(-1)
    flat[:3] = [np.nan, np.inf, -np.inf][:flat.size]
    return values.astype(dtype)


def _complex_specials(rng, dtype, shape):
    out = np.empty(shape, dtype)
    out.real = _with_specials(rng, "float64", shape)
    out.imag = _with_specials(rng, "float64", shape)[::-1]
    return out


test_forward, test_grad = table_tests(CASES)


def test_every_row_has_a_case():
    from tracegrad.ops.elemwise import ROWS
    covered = {c.name for c in CASES}
    # clip_ is clip's three-input row (cases "clip*"); tri_gamma is psi's
    # derivative, checked against finite differences of psi below.
    internal = {"clip_", "tri_gamma"}
    # the scipy.special rows have their own table: tests/test_ops_special.py
    from tracegrad.ops.special import ROW_NAMES as SPECIAL_ROWS
    internal |= set(SPECIAL_ROWS)
    if sp is None:
        # their reference values come from SciPy: without it these cases are
        # not built (test_special_fallbacks_without_scipy checks the rows)
        internal |= {"erf", "erfc", "erfinv", "gamma", "gammaln", "psi"}
    missing = [r.name for r in ROWS() if r.name not in covered | internal
               and not r.name.startswith("cast_")]
    assert not missing, f"elementwise rows without a table case: {missing}"


def test_trigamma_matches_finite_difference_of_psi():
    x = T.dvector("x")
    values = np.array([0.5, 1.0, 2.5, 7.0])
    h = 1e-5
    fd = (T.psi(x + h) - T.psi(x - h)) / (2 * h)
    np.testing.assert_allclose(T.tri_gamma(x).eval({x: values}), fd.eval({x: values}),
                               rtol=1e-5)


def test_special_fallbacks_without_scipy(monkeypatch):
    from tracegrad.ops import special_math as sm
    monkeypatch.setattr(sm, "_special", lambda xp: None)
    x = np.array([-0.7, 0.1, 0.5, 0.95])
    np.testing.assert_allclose(sm.erf(np, x), [math.erf(v) for v in x], rtol=1e-15)
    np.testing.assert_allclose(sm.erf(np, sm.erfinv(np, x)), x, rtol=1e-12)
    pos = np.array([0.3, 1.0, 2.5, 10.0, 40.0])
    np.testing.assert_allclose(sm.gammaln(np, pos), [math.lgamma(v) for v in pos], rtol=1e-14)
    np.testing.assert_allclose(sm.gamma(np, pos), [math.gamma(v) for v in pos], rtol=1e-14)
    if sp is not None:
        grid = np.array([-2.5, -0.3, 0.2, 1.0, 3.7, 12.0, 100.0])
        np.testing.assert_allclose(sm.psi(np, grid), sp.psi(grid), rtol=1e-10)
        np.testing.assert_allclose(sm.tri_gamma(np, grid), sp.polygamma(1, grid), rtol=1e-9)
    assert np.isnan(sm.psi(np, np.array([-2.0])))[0]


def test_build_time_broadcast_error_names_both_shapes():
    a = T.tensor("float64", shape=(3,))
    b = T.tensor("float64", shape=(4,))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        a + b


def test_static_shape_propagates():
    a = T.tensor("float64", shape=(3, 1))
    b = T.tensor("float64", shape=(None, 5))
    assert (a * b).type.shape == (3, 5)
    assert (T.dmatrix() + T.drow()).type.shape == (None, None)
    assert (T.drow() + T.drow()).type.shape == (1, None)


def test_python_numbers_do_not_upcast():
    assert (T.fvector() * 2).dtype == "float32"
    assert (T.fvector() * 2.5).dtype == "float32"
    assert (T.iscalar() + 1.5).dtype == "float64"
    assert (T.iscalar() + 1).dtype == "int32"
    assert (T.bvector() + True).dtype == "int8"
    assert (T.fvector() * 1j).dtype == "complex64"
    assert (T.dvector() + T.fvector()).dtype == "float64"
    with pytest.raises(OverflowError, match="300"):
        T.bvector() + 300


def test_unsupported_numpy_ufunc_names_it():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="spacing"):
        np.spacing(x)


def test_numpy_ufunc_dispatch_builds_graph():
    x = T.dvector("x")
    y = np.exp(x) + np.maximum(x, 0) * np.sin(x)
    assert y.owner is not None
    v = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(y.eval({x: v}), np.exp(v) + np.maximum(v, 0) * np.sin(v))
    z = np.array([1.0, 2.0, 3.0]) * x
    assert isinstance(z, T.TensorVariable)


def test_ufunc_out_argument_is_rejected():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="out="):
        np.exp(x, out=np.zeros(3))


def test_variable_has_no_truth_value():
    with pytest.raises(TypeError, match="truth value"):
        bool(T.dscalar() > 0)


def test_every_numpy_name_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import elemwise, elemwise_numpy
    # Aliases (``multiply``) are the row functions themselves, covered by
    # their rows' cases.
    aliases = {n for n in elemwise_numpy.__all__
               if getattr(elemwise, getattr(elemwise_numpy, n).__name__, None)
               is getattr(elemwise_numpy, n)}
    missing = set(uncovered_functions(elemwise_numpy.__all__, CASES)) - aliases
    assert not missing, f"no table case for {sorted(missing)}"


def test_numpy_names_of_the_new_rows_dispatch():
    x, y = T.dvector("x"), T.dvector("y")
    a, b = np.array([0.25, 0.5, -2.0, 30.0]), np.array([1.0, -0.5, 4.0, 1.0])
    for f in (np.deg2rad, np.radians, np.rad2deg, np.degrees, np.fabs, np.reciprocal,
              np.sinc, np.nan_to_num):
        out = f(x)
        assert isinstance(out, T.TensorVariable), f
        np.testing.assert_allclose(out.eval({x: a}), f(a), rtol=1e-15, err_msg=str(f))
    for f in (np.fmax, np.fmin, np.hypot, np.logaddexp, np.logaddexp2):
        np.testing.assert_allclose(f(x, y).eval({x: a, y: b}), f(a, b), rtol=1e-15,
                                   err_msg=str(f))
    assert np.radians(x).owner.op == T.deg2rad(x).owner.op
    assert np.degrees(x).owner.op == T.rad2deg(x).owner.op


def test_fabs_refuses_complex_naming_the_dtype():
    with pytest.raises(TypeError, match="fabs.*complex128"):
        np.fabs(T.tensor("complex128", (None,)))


def test_fmax_fmin_gradient_goes_to_the_non_nan_input():
    import tracegrad as tg
    x, y = T.dvector("x"), T.dvector("y")
    a, b = np.array([np.nan, 1.0, 2.0, 3.0]), np.array([5.0, np.nan, 2.0, 1.0])
    for f, first in ((T.fmax, [0, 1, 1, 1]), (T.fmin, [0, 1, 1, 0])):
        gx, gy = tg.grad(T.sum(f(x, y)), [x, y])
        np.testing.assert_array_equal(gx.eval({x: a, y: b}), first)
        np.testing.assert_array_equal(gy.eval({x: a, y: b}), 1 - np.array(first))


def test_logaddexp_gradients_are_finite_for_large_inputs():
    import tracegrad as tg
    x, y = T.dvector("x"), T.dvector("y")
    a, b = np.array([1e300, -1e300, 800.0, 1.0]), np.array([1e300, 5.0, 799.0, 2.0])
    for f, scale in ((T.logaddexp, 1.0), (T.logaddexp2, math.log(2.0))):
        gx, gy = (g.eval({x: a, y: b}) for g in tg.grad(T.sum(f(x, y)), [x, y]))
        expected = 1 / (1 + np.exp(-(np.array([0.0, -np.inf, 1.0, -1.0]) * scale)))
        np.testing.assert_allclose(gx, expected, rtol=1e-15)
        np.testing.assert_allclose(gx + gy, 1.0, rtol=1e-15)


def test_sinc_and_nan_to_num_gradients_at_special_points():
    import tracegrad as tg
    x = T.dvector("x")
    np.testing.assert_array_equal(tg.grad(T.sum(T.sinc(x)), x).eval({x: np.zeros(2)}), [0, 0])
    v = np.array([np.nan, np.inf, -np.inf, 1.5])
    np.testing.assert_array_equal(tg.grad(T.sum(T.nan_to_num(x)), x).eval({x: v}),
                                  [0, 0, 0, 1])
    with pytest.raises(TypeError, match="posinf"):
        T.nan_to_num(x, posinf="big")
