"""Table-driven tests of ``numpy.fft`` (``T.fft``): forward against NumPy per
dtype, ``n``/``s``/``axes``/``norm`` combinations and batch shapes; gradients
(vjp, with complex finite differences for complex inputs) and jvps (``Rop``)
against finite differences; special values, dtypes, static shapes, errors and
NumPy dispatch."""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, symbolic_like, table_tests, uncovered_functions
from tracegrad.evaluate import evaluate

F = T.fft
C2C = ("float64", "float32", "complex128", "complex64", "int64")
REAL = ("float64", "float32", "int64")
CPLX = {"grad_dtypes": ("float64", "complex128")}


def _row(name, fn, ref, shapes, dtypes, grad_shapes=None, **kw):
    """A row whose ``sym``/``ref`` call ``fn``/``ref`` with the same keywords."""
    return OpCase(name, fn, ref, shapes, dtypes, grad_shapes=grad_shapes, **kw)


def _call(name, **kw):
    """``(tracegrad function, NumPy function)`` of ``name`` bound to ``kw``."""
    ours, theirs = getattr(F, name), getattr(np.fft, name)
    return (lambda x: ours(x, **kw)), (lambda x: theirs(x, **kw))


def _case(name, label, shapes, dtypes, grad_shapes=None, **kw):
    sym, ref = _call(name, **kw)
    extra = CPLX if "complex128" in dtypes else {}
    return _row(f"{name}[{label}]" if label else name, sym, ref, shapes, dtypes,
                grad_shapes, **extra)


ONE_D = [[(6,)], [(2, 5)], [(0, 4)], [(1,)], [(2, 1, 3)]]
CASES = [
    # ---- complex to complex, 1-d
    _case("fft", "", ONE_D, C2C + ("float16",)),
    _case("fft", "n=8", [[(5,)], [(2, 3)]], C2C, n=8),
    _case("fft", "n=3,axis=0", [[(5, 2)], [(4, 3, 2)]], C2C, n=3, axis=0),
    _case("fft", "ortho", [[(5,)], [(3, 4)]], C2C, norm="ortho"),
    _case("fft", "forward,axis=1", [[(2, 3, 4)], [(1, 5, 2)]], C2C, norm="forward", axis=1),
    _case("fft", "backward,n=1", [[(4,)], [(2, 3)]], C2C, norm="backward", n=1),
    _case("ifft", "", ONE_D, C2C),
    _case("ifft", "n=7,ortho", [[(5,)], [(2, 3)]], C2C, n=7, norm="ortho"),
    _case("ifft", "n=2,axis=-2,forward", [[(5, 2)], [(3, 4, 1)]], C2C, n=2, axis=-2,
          norm="forward"),
    # ---- real to half spectrum and back
    _case("rfft", "", ONE_D, REAL + ("float16",)),
    _case("rfft", "n=9", [[(6,)], [(2, 4)]], REAL, n=9),
    _case("rfft", "n=4,axis=0,ortho", [[(7, 2)], [(5, 3, 2)]], REAL, n=4, axis=0,
          norm="ortho"),
    _case("rfft", "forward,axis=1", [[(2, 5, 3)], [(1, 6, 2)]], REAL, norm="forward", axis=1),
    _case("irfft", "", [[(4,)], [(2, 5)], [(0, 3)], [(2, 1, 3)]], C2C + ("float16",)),
    _case("irfft", "n=7", [[(4,)], [(2, 3)]], C2C, n=7),
    _case("irfft", "n=4,ortho", [[(5,)], [(2, 6)]], C2C, n=4, norm="ortho"),
    _case("irfft", "n=12,axis=0,forward", [[(4, 2)], [(3, 2, 2)]], C2C, n=12, axis=0,
          norm="forward"),
    _case("irfft", "n=1", [[(3,)], [(2, 2)]], C2C, n=1),
    _case("irfft", "n=2", [[(3,)], [(2, 1)]], C2C, n=2),
    _case("hfft", "", [[(4,)], [(2, 5)], [(0, 3)]], C2C + ("float16",)),
    _case("hfft", "n=7,ortho", [[(4,)], [(2, 3)]], C2C, n=7, norm="ortho"),
    _case("hfft", "n=4,axis=0,forward", [[(5, 2)], [(2, 3)]], C2C, n=4, axis=0,
          norm="forward"),
    _case("ihfft", "", [[(6,)], [(2, 5)], [(0, 4)]], REAL),
    _case("ihfft", "n=8,ortho", [[(5,)], [(2, 3)]], REAL, n=8, norm="ortho"),
    _case("ihfft", "n=3,axis=0,forward", [[(5, 2)], [(4, 3)]], REAL, n=3, axis=0,
          norm="forward"),
    # ---- 2-d and n-d
    _case("fft2", "", [[(3, 4)], [(2, 3, 5)], [(0, 2, 3)]], C2C),
    _case("fft2", "s=(4,2),ortho", [[(3, 3)], [(2, 3, 5)]], C2C, s=(4, 2), norm="ortho"),
    _case("ifft2", "", [[(3, 4)], [(2, 3, 5)]], C2C),
    _case("ifft2", "axes=(0,2),forward", [[(2, 3, 4)], [(3, 1, 2)]], C2C, axes=(0, 2),
          norm="forward"),
    _case("fftn", "", [[(3, 4)], [(2, 3, 2)], [(5,)]], C2C),
    _case("fftn", "s=(5,-1),axes=(2,0)", [[(2, 3, 4)], [(3, 1, 2)]], C2C, s=(5, -1),
          axes=(2, 0)),
    _case("fftn", "axes=(0,0)", [[(3, 2)], [(4, 3)]], C2C, axes=(0, 0)),
    _case("fftn", "s=(2,6),axes=(1,1)", [[(3, 4)], [(2, 3)]], C2C, s=(2, 6), axes=(1, 1)),
    _case("ifftn", "", [[(3, 4)], [(2, 3, 2)]], C2C),
    _case("ifftn", "s=(3,3),axes=(-1,0),ortho", [[(2, 4)], [(4, 2, 5)]], C2C, s=(3, 3),
          axes=(-1, 0), norm="ortho"),
    _case("rfft2", "", [[(3, 4)], [(2, 3, 5)], [(0, 2, 3)]], REAL),
    _case("rfft2", "s=(2,5),forward", [[(3, 4)], [(2, 3, 3)]], REAL, s=(2, 5),
          norm="forward"),
    _case("irfft2", "", [[(3, 4)], [(2, 3, 5)]], C2C),
    _case("irfft2", "s=(4,5),ortho", [[(3, 4)], [(2, 3, 2)]], C2C, s=(4, 5), norm="ortho"),
    _case("rfftn", "", [[(3, 4)], [(2, 3, 2)], [(5,)]], REAL),
    _case("rfftn", "s=(3,-1),axes=(0,2)", [[(2, 3, 4)], [(4, 1, 3)]], REAL, s=(3, -1),
          axes=(0, 2)),
    _case("rfftn", "axes=(1,0),ortho", [[(3, 4)], [(2, 5, 2)]], REAL, axes=(1, 0),
          norm="ortho"),
    _case("irfftn", "", [[(3, 4)], [(2, 3, 2)], [(5,)]], C2C),
    _case("irfftn", "s=(3,-1),axes=(0,1)", [[(2, 5)], [(4, 3, 2)]], C2C, s=(3, -1),
          axes=(0, 1)),
    _case("irfftn", "s=(2,7),axes=(2,0),forward", [[(3, 2, 4)], [(2, 1, 3)]], C2C,
          s=(2, 7), axes=(2, 0), norm="forward"),
    # ---- shifts
    # (no 0-d rows: NumPy 2.4's fftshift of a 0-d array fails inside np.roll;
    # tracegrad returns the value, see test_shift_of_a_scalar)
    _case("fftshift", "", [[(5,)], [(4, 3)], [(0, 3)]], C2C),
    _case("fftshift", "axes=1", [[(4, 5)], [(2, 6, 1)]], C2C, axes=1),
    _case("fftshift", "axes=(0,0,2)", [[(5, 2, 3)], [(4, 3, 2)]], C2C, axes=(0, 0, 2)),
    _case("ifftshift", "", [[(5,)], [(4, 3)], [(0, 3)]], C2C),
    _case("ifftshift", "axes=(-1,)", [[(4, 5)], [(3, 7)]], C2C, axes=(-1,)),
    # ---- frequencies of a symbolic spacing d
    OpCase("fftfreq[d]", lambda d: F.fftfreq(7, d), lambda d: np.fft.fftfreq(7, d),
           [[()]], ("float64", "float32"), domain=(0.5, 2.0)),
    OpCase("rfftfreq[d]", lambda d: F.rfftfreq(8, d), lambda d: np.fft.rfftfreq(8, d),
           [[()]], ("float64", "float32"), domain=(0.5, 2.0)),
]
# (composites: a real cost of a complex output, and a round trip)
CASES += [
    OpCase("fft[abs2]", lambda x: abs(F.fft(x, n=6)) ** 2,
           lambda x: abs(np.fft.fft(x, n=6)) ** 2, [[(5,)], [(2, 4)]], C2C, **CPLX),
    OpCase("irfft[rfft]", lambda x: F.irfft(F.rfft(x) * (1 + 2j), 5),
           lambda x: np.fft.irfft(np.fft.rfft(x) * (1 + 2j), 5), [[(5,)], [(2, 5)]], REAL),
]

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from tracegrad.ops import fft
    missing = uncovered_functions(fft.__all__, CASES)
    assert not missing, f"fft functions without a table case: {missing}"


# ------------------------------------------------------------------ jvp (Rop)
JVP = [("fft", dict(n=7, norm="ortho"), (2, 5), True),
       ("ifft", dict(n=3, axis=0), (5, 2), True),
       ("rfft", dict(n=7), (2, 6), False),
       ("irfft", dict(n=5, norm="forward"), (2, 4), True),
       ("irfft", dict(), (4,), True),
       ("hfft", dict(n=6), (3,), True),
       ("ihfft", dict(norm="ortho"), (5,), False),
       ("fft2", dict(s=(3, 4)), (2, 3, 3), True),
       ("ifft2", dict(), (3, 4), True),
       ("fftn", dict(axes=(0, 0)), (3, 2), True),
       ("ifftn", dict(s=(2, -1), axes=(1, 0)), (3, 4), True),
       ("rfft2", dict(), (3, 4), False),
       ("irfft2", dict(s=(2, 5)), (3, 3), True),
       ("rfftn", dict(axes=(0, 1)), (2, 5), False),
       ("irfftn", dict(s=(4, 3), axes=(1, 0)), (3, 4), True),
       ("fftshift", dict(), (3, 4), True),
       ("ifftshift", dict(axes=0), (5, 2), False)]


@pytest.mark.parametrize("name,kw,shp,cplx", JVP, ids=[f"{j[0]}-{i}" for i, j in enumerate(JVP)])
def test_rop_matches_central_differences(name, kw, shp, cplx):
    """``tg.Rop`` of each transform (built from the vjps: the double-vjp trick)
    against NumPy's central differences along a random tangent."""
    rng = np.random.default_rng(5)
    draw = (lambda: rng.normal(size=shp) + 1j * rng.normal(size=shp)) if cplx \
        else (lambda: rng.normal(size=shp))
    xv, uv = draw(), draw()
    ours, theirs = _call(name, **kw)
    x, u = symbolic_like(xv, "x"), symbolic_like(uv, "u")
    jvp = evaluate([T.Rop(ours(x), x, u)], {x: xv, u: uv})[0]
    eps = 1e-6
    expected = (theirs(xv + eps * uv) - theirs(xv - eps * uv)) / (2 * eps)
    np.testing.assert_allclose(jvp, expected, rtol=1e-6, atol=1e-8)


def test_rop_of_frequencies_in_d():
    d, u = T.dscalar("d"), T.dscalar("u")
    got = evaluate([T.Rop(F.fftfreq(6, d), d, u)], {d: 0.5, u: 1.0})[0]
    np.testing.assert_allclose(got, -np.fft.fftfreq(6, 0.5) / 0.5, rtol=1e-12)


# ------------------------------------------------------------------ closed forms
def test_vjps_are_the_plain_transposes():
    """With ``dL = Re(sum(g * dy))`` the vjp of ``fft`` is ``fft(g)`` (the DFT
    matrix is symmetric), of ``irfft`` ``w * conj(rfft(g))`` (w = 2 on the
    bins standing for two), of ``rfft`` ``real(fft(pad(g)))``."""
    rng = np.random.default_rng(0)
    z, x = T.cvector("z"), T.dvector("x")
    zv = rng.normal(size=6) + 1j * rng.normal(size=6)
    xv, w = rng.normal(size=6), rng.normal(size=6) + 1j * rng.normal(size=6)
    grad = T.grad(T.real(T.sum(F.fft(z) * w)), z).eval({z: zv})
    np.testing.assert_allclose(grad, np.fft.fft(w), rtol=1e-12)
    grad = T.grad(T.real(T.sum(F.ifft(z, norm="ortho") * w)), z).eval({z: zv})
    np.testing.assert_allclose(grad, np.fft.ifft(w, norm="ortho"), rtol=1e-12)
    grad = T.grad(T.real(T.sum(F.rfft(x) * w[:4])), x).eval({x: xv})
    np.testing.assert_allclose(grad, np.fft.fft(np.r_[w[:4], 0, 0]).real, rtol=1e-12)
    for n in (6, 7):
        g = rng.normal(size=n)
        grad = T.grad(T.sum(F.irfft(z[:4], n) * g), z).eval({z: zv})
        weights = np.where((np.arange(4) >= 1) & (2 * np.arange(4) < n), 2.0, 1.0)
        want = weights * np.conj(np.fft.rfft(g)) / n
        np.testing.assert_allclose(grad[:4], want, rtol=1e-12, atol=1e-15)


def test_second_derivative_through_a_transform():
    x = T.dvector("x")
    xv = np.random.default_rng(1).normal(size=5)
    cost = T.sum(abs(F.rfft(x)) ** 4)
    hess = tg.function([x], T.hessian(cost, x))(xv)
    eps, basis = 1e-5, np.eye(5)
    g = tg.function([x], T.grad(cost, x))
    numeric = np.stack([(g(xv + eps * e) - g(xv - eps * e)) / (2 * eps) for e in basis])
    np.testing.assert_allclose(hess, numeric, rtol=1e-6, atol=1e-6)


def test_compiled_with_rewrites_and_gradient():
    """Through ``tg.function`` (every rewrite phase), not only ``evaluate``."""
    x = T.dmatrix("x")
    xv = np.random.default_rng(2).normal(size=(3, 8))
    y = F.irfft(F.rfft(x, axis=1) * np.exp(-np.arange(5.0)), 8, axis=1)
    f = tg.function([x], [y, T.grad(T.sum(y ** 2), x)])
    got, grad = f(xv)
    want = np.fft.irfft(np.fft.rfft(xv, axis=1) * np.exp(-np.arange(5.0)), 8, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert grad.shape == xv.shape and grad.dtype == np.float64


# ------------------------------------------------------------------ special values
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 2.0, -3.0]


@pytest.mark.parametrize("name,kw", [("fft", {}), ("ifft", {"n": 10}), ("rfft", {}),
                                     ("irfft", {}), ("hfft", {"norm": "ortho"}),
                                     ("ihfft", {}), ("fft2", {}), ("rfftn", {}),
                                     ("irfft2", {}), ("fftshift", {}), ("ifftshift", {})])
def test_special_values_like_numpy(name, kw):
    """NaN and infinities spread along the transformed axes exactly as in NumPy
    (NaN positions included); signed zeros go through."""
    rows = np.array([SPECIAL, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], np.zeros(8)])
    ours, theirs = _call(name, **kw)
    cplx = rows.astype(complex)
    cplx.imag = rows[::-1]
    for arr in (rows, cplx):
        if name in ("rfft", "ihfft", "rfftn") and arr.dtype.kind == "c":
            continue
        x = symbolic_like(arr, "x")
        with np.errstate(all="ignore"):
            got = evaluate([ours(x)], {x: arr})[0]
            want = theirs(arr)
        assert got.dtype == want.dtype
        for part in (np.real, np.imag):
            np.testing.assert_array_equal(np.isnan(part(got)), np.isnan(part(want)))
            np.testing.assert_allclose(part(got), part(want), rtol=1e-12, atol=1e-12,
                                       equal_nan=True)


# ------------------------------------------------------------------ dtypes, shapes
def test_dtypes_follow_numpy_2():
    f32, f16 = T.tensor("float32", shape=(None,)), T.tensor("float16", shape=(None,))
    assert F.fft(f32).dtype == "complex64" and F.fft(T.lvector()).dtype == "complex128"
    assert F.rfft(f16).dtype == "complex64" and F.irfft(f16).dtype == "float16"
    assert F.irfft(T.cvector()).dtype == "float64" and F.hfft(f32).dtype == "float32"
    assert F.ihfft(T.bvector()).dtype == "complex128"
    assert F.fftn(T.dscalar()).dtype == "float64"       # no axis: the input itself
    assert F.fftshift(T.lvector()).dtype == "int64"


def test_static_shapes():
    x = T.tensor("float64", shape=(2, 6))
    assert F.rfft(x).type.shape == (2, 4) and F.rfft(x, n=9, axis=0).type.shape == (5, 6)
    assert F.irfft(x).type.shape == (2, 10) and F.irfft(x, 7).type.shape == (2, 7)
    assert F.fft(x, 3).type.shape == (2, 3) and F.fft2(x, s=(4, 1)).type.shape == (4, 1)
    assert F.rfftn(x).type.shape == (2, 4) and F.irfftn(x, s=(3, -1), axes=(0, 1)).type.shape == (3, 6)
    assert F.fftshift(x).type.shape == (2, 6)
    y = T.dmatrix()
    assert F.irfft(y, 7).type.shape == (None, 7) and F.fft(y, 5, axis=0).type.shape == (5, None)


def test_shift_of_a_scalar():
    x = T.dscalar("x")
    assert F.fftshift(x).eval({x: 2.5}) == 2.5 and F.ifftshift(x).eval({x: -1.0}) == -1.0


def test_frequencies_are_numpy_arrays():
    for n, d in ((8, 1.0), (7, 0.1), (1, 2.0)):
        got = F.fftfreq(n, d)
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, np.fft.fftfreq(n, d))
        np.testing.assert_array_equal(F.rfftfreq(n, d), np.fft.rfftfreq(n, d))
    np.testing.assert_array_equal(F.fftfreq(T.constant(5)), np.fft.fftfreq(5))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("build,error,match", [
    (lambda: F.fft(T.dvector(), n=0), ValueError, r"fft: invalid number of FFT data points \(0\)"),
    (lambda: F.ifft(T.dvector(), n=-2), ValueError, r"ifft: .*\(-2\)"),
    (lambda: F.rfft(T.dvector(), n=2.5), TypeError, "rfft: n must be an integer"),
    (lambda: F.fft(T.dvector(), n=True), TypeError, "fft: n must be an integer"),
    (lambda: F.fft(T.dvector(), axis=1), np.exceptions.AxisError, "axis 1"),
    (lambda: F.fft(T.dmatrix(), axis=(0,)), TypeError, "fft: axis must be an integer"),
    (lambda: F.fft(T.dscalar()), IndexError, "axis -1"),
    (lambda: F.fft2(T.dvector()), IndexError, "axis -2"),
    (lambda: F.fft(T.dvector(), norm="bad"), ValueError, "fft: invalid norm value 'bad'"),
    (lambda: F.irfftn(T.dmatrix(), norm="Ortho"), ValueError, "irfftn: invalid norm"),
    (lambda: F.fft(T.dvector(), out=np.zeros(3, complex)), TypeError, "fft: out="),
    (lambda: F.rfftn(T.dmatrix(), out=np.zeros(3)), TypeError, "rfftn: out="),
    (lambda: F.rfft(T.cvector()), TypeError, "rfft: the input must be real"),
    (lambda: F.ihfft(T.cvector()), TypeError, "ihfft: the input must be real"),
    (lambda: F.fftn(T.dmatrix(), s=(2, 3), axes=(0,)), ValueError, "different lengths"),
    (lambda: F.fftn(T.dmatrix(), axes=0), TypeError, "axes must be a sequence"),
    (lambda: F.fftn(T.dmatrix(), s=3, axes=(0,)), TypeError, "s must be a sequence"),
    (lambda: F.rfftn(T.dmatrix(), axes=()), IndexError, "rfftn: at least one axis"),
    (lambda: F.irfftn(T.dmatrix(), axes=[]), IndexError, "irfftn: at least one axis"),
    (lambda: F.fft(T.tensor("float64", shape=(3, 0))), ValueError, r"\(0\).*empty"),
    (lambda: F.irfft(T.tensor("complex128", shape=(1,))), ValueError, r"irfft: .*\(0\)"),
    (lambda: F.fftn(T.dmatrix(), s=(2, -3), axes=(0, 1)), ValueError, r"\(-3\)"),
    (lambda: F.fftshift(T.dmatrix(), axes=2), np.exceptions.AxisError, "axis 2"),
    (lambda: F.fftfreq(2.5), TypeError, "fftfreq: n must be an integer"),
    (lambda: F.rfftfreq(T.lscalar()), TypeError, "rfftfreq: n must be known"),
    (lambda: F.fftfreq(4, device="cuda"), ValueError, "fftfreq: device"),
])
def test_bad_arguments_raise_naming_the_function(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_empty_axis_raises_when_run_like_numpy():
    x = T.dmatrix("x")
    for build in (F.fft, F.rfft, F.irfft, F.ifft2):
        with pytest.raises(ValueError, match="FFT data points"):
            getattr(np.fft, build.__name__)(np.zeros((3, 0)))
        with pytest.raises(ValueError, match="FFT data points"):
            tg.function([x], build(x))(np.zeros((3, 0)))


def test_deprecated_s_without_axes_warns_and_follows_numpy():
    x, xv = T.dtensor3("x"), np.random.default_rng(3).normal(size=(2, 3, 4))
    with pytest.warns(DeprecationWarning, match="axes"):
        y = F.fftn(x, s=(2, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        want = np.fft.fftn(xv, s=(2, 5))
    np.testing.assert_allclose(y.eval({x: xv}), want, rtol=1e-12)
    with pytest.warns(DeprecationWarning, match="None"):
        y = F.irfftn(x, s=(None, 3), axes=(0, 2))
    np.testing.assert_allclose(y.eval({x: xv}), np.fft.irfftn(xv, s=(2, 3), axes=(0, 2)),
                               rtol=1e-12)


# ------------------------------------------------------------------ dispatch, names
def test_numpy_dispatch():
    x = T.dmatrix("x")
    xv = np.random.default_rng(4).normal(size=(3, 4))
    for name in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2",
                 "irfft2", "fftn", "ifftn", "rfftn", "irfftn", "fftshift", "ifftshift"):
        got = getattr(np.fft, name)(x)
        assert isinstance(got, T.TensorVariable), name
        np.testing.assert_allclose(got.eval({x: xv}), getattr(np.fft, name)(xv), rtol=1e-12,
                                   atol=1e-14, err_msg=name)
    y = np.fft.rfft(x, n=6, axis=0, norm="ortho")
    np.testing.assert_allclose(y.eval({x: xv}), np.fft.rfft(xv, n=6, axis=0, norm="ortho"))
    with pytest.raises(TypeError, match="out="):
        np.fft.fft(x, out=np.zeros((3, 4), complex))


def test_namespace():
    import tracegrad.ops.fft as ops_fft
    import tracegrad.tensor.fft as tensor_fft
    assert T.fft is tensor_fft and T.fft.rfft is ops_fft.rfft
    assert sorted(tensor_fft.__all__) == sorted(ops_fft.__all__)
    assert set(ops_fft.__all__) <= set(np.fft.__all__) | {"fftfreq", "rfftfreq"}


# ------------------------------------------------------------------ GPU
@pytest.mark.gpu
@pytest.mark.parametrize("name,kw", [("fft", {"n": 8}), ("rfft", {"norm": "ortho"}),
                                     ("irfft", {"n": 7}), ("fft2", {}), ("irfftn", {}),
                                     ("fftshift", {})])
def test_cuda_matches_numpy(name, kw):
    """The CuPy backend (``cupy.fft``), forward and gradient."""
    import cupy
    rng = np.random.default_rng(6)
    xv = rng.normal(size=(3, 6)) + (0 if name == "rfft" else 1j * rng.normal(size=(3, 6)))
    ours, theirs = _call(name, **kw)
    x = symbolic_like(xv, "x")
    out = ours(x)
    cost = T.sum(abs(out) ** 2)
    f = tg.function([x], [out, T.grad(cost, x)], device="cuda")
    got, grad = (cupy.asnumpy(v) for v in f(xv))
    ref = tg.function([x], [out, T.grad(cost, x)])
    want, want_grad = ref(xv)
    assert got.dtype == theirs(xv).dtype
    np.testing.assert_allclose(got, theirs(xv), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12)


def test_lengths_may_be_numpy_integers_constants_or_symbolic():
    x = T.dvector("x")
    xv = np.arange(5.0)
    n = T.lscalar("n")
    np.testing.assert_allclose(F.fft(x, np.int64(7)).eval({x: xv}), np.fft.fft(xv, 7))
    assert F.rfft(x, T.constant(6)).type.shape == (4,)
    with pytest.raises(ValueError, match=r"\(0\)"):
        F.fft(x, T.constant(0))
    y = F.irfft(F.rfft(x), n)   # a symbolic length: the output length is known when run
    np.testing.assert_allclose(y.eval({x: xv, n: 5}), xv, atol=1e-12)
    got = F.fftn(x, s=np.array([8]), axes=np.array([0])).eval({x: xv})
    np.testing.assert_allclose(got, np.fft.fftn(xv, s=[8], axes=[0]))
    with pytest.raises(TypeError, match="fft: n must be an integer"):
        F.fft(x, T.dscalar())
