"""The scipy.special rows (``tracegrad/ops/special.py``) and
``tracegrad.scipy.special``: forward against SciPy per dtype and broadcasting
case, gradient and jvp against finite differences, special values, the three
ways to reach them (``T.<name>``, ``tracegrad.scipy.special``,
``scipy.special.<ufunc>(variable)``) and the refused gradients."""
import numpy as np
import pytest

sp = pytest.importorskip("scipy.special")

import tracegrad as tg  # noqa: E402
import tracegrad.scipy.special as tss  # noqa: E402
import tracegrad.tensor as T  # noqa: E402
from optable import OpCase, table_tests  # noqa: E402
from tracegrad.ops import special as special_rows  # noqa: E402
from tracegrad.ops.base import NotDifferentiableError  # noqa: E402

UNARY_SHAPES = [[(3, 4)], [()], [(0, 3)], [(5,)]]
BINARY_SHAPES = [[(3, 4), (3, 4)], [(3, 1), (1, 4)], [(4,), (3, 4)], [(), (2, 3)],
                 [(0, 4), (1, 4)]]
FLOATS = ("float64", "float32")
WITH_INT = ("float64", "float32", "int64")


def unary(name, domain, dtypes=FLOATS, **kw):
    return OpCase(name, getattr(tss, name), getattr(sp, name), UNARY_SHAPES, dtypes,
                  domain, **kw)


def uniform_pair(dom0, dom1):
    """Inputs of a binary row: the first drawn in ``dom0``, the second in ``dom1``."""
    def make(rng, dtype, shapes):
        return [rng.uniform(*dom0, size=shapes[0]).astype(dtype),
                rng.uniform(*dom1, size=shapes[1]).astype(dtype)]
    return make


def order_pair(orders, dom):
    """Inputs of an (integer order, x) row: orders in ``orders``, x in ``dom``."""
    def make(rng, dtype, shapes):
        return [rng.integers(orders[0], orders[1] + 1, size=shapes[0]).astype("int64"),
                rng.uniform(*dom, size=shapes[1]).astype(dtype)]
    return make


def binary(name, make, dtypes=FLOATS, **kw):
    base = name.split("[")[0]  # (a case "iv[real v]" checks iv)
    return OpCase(name, getattr(tss, base), getattr(sp, base), BINARY_SHAPES, dtypes,
                  make_inputs=make, **kw)


def fixed_first(name, value, domain):
    """``name(value, x)`` with a constant first argument: the gradient in x."""
    return OpCase(f"{name}[{value}]", lambda x: getattr(tss, name)(value, x),
                  lambda x: getattr(sp, name)(value, x), UNARY_SHAPES, FLOATS, domain)


CASES = [
    unary("erf", (-2, 2)), unary("erfc", (-2, 2)), unary("erfinv", (-0.9, 0.9)),
    unary("erfcinv", (0.1, 1.9)), unary("erfcx", (-2, 2), dtypes=WITH_INT),
    unary("gamma", (0.5, 3)), unary("gammaln", (0.5, 3)),
    unary("psi", (0.5, 3)), unary("digamma", (0.5, 3)),
    unary("expit", (-5, 5), tol=(1e-6, 1e-7)), unary("log_expit", (-5, 5), tol=(1e-6, 1e-7)),
    unary("logit", (0.1, 0.9)),
    unary("ndtr", (-3, 3), dtypes=WITH_INT), unary("ndtri", (0.05, 0.95)),
    unary("log_ndtr", (-6, 4)), unary("entr", (0.1, 3)),
    unary("i0", (-3, 3), dtypes=WITH_INT), unary("i1", (-3, 3)),
    unary("i0e", (-3, 3)), unary("i1e", (-3, 3)),
    unary("j0", (-5, 5), dtypes=WITH_INT), unary("j1", (-5, 5)),
    unary("y0", (0.5, 5)), unary("y1", (0.5, 5)),
    binary("polygamma", order_pair((0, 3), (0.5, 3))),
    binary("beta", uniform_pair((0.5, 3), (0.5, 3))),
    binary("betaln", uniform_pair((0.5, 3), (0.5, 3))),
    binary("xlogy", uniform_pair((-2, 2), (0.1, 3))),
    binary("xlog1py", uniform_pair((-2, 2), (-0.5, 3))),
    binary("rel_entr", uniform_pair((0.1, 3), (0.1, 3))),
    binary("iv", order_pair((0, 3), (0.2, 3))),
    binary("ive", order_pair((0, 3), (-3, 3))),
    binary("jn", order_pair((0, 3), (-5, 5))),
    binary("yn", order_pair((0, 3), (0.5, 5))),
    binary("jv", order_pair((0, 3), (-5, 5))),
    # real orders: forward only (no gradient in the order)
    binary("iv[real v]", uniform_pair((0, 3), (0.2, 3)), grad=False),
    binary("jn[real n]", uniform_pair((0, 3), (0.2, 5)), grad=False),
    # gammainc's shape a has no gradient: the forward takes both, the
    # gradient check a constant shape
    binary("gammainc", uniform_pair((0.5, 3), (0.1, 3)), grad=False),
    binary("gammaincc", uniform_pair((0.5, 3), (0.1, 3)), grad=False),
    fixed_first("gammainc", 1.7, (0.1, 3)), fixed_first("gammaincc", 0.6, (0.1, 3)),
    fixed_first("gammainc", 1.0, (0.1, 3)),
]


def _lse(**kw):
    return (lambda x, *b: tss.logsumexp(x, b=b[0] if b else None, **kw),
            lambda x, *b: sp.logsumexp(x, b=b[0] if b else None, **kw))


def _lse_case(name, shapes, **kw):
    sym, ref = _lse(**kw)
    # (weights b > 0: a negative sum is NaN without return_sign)
    return OpCase(name, sym, ref, shapes, FLOATS, (-3, 3),
                  make_inputs=lambda rng, dt, shapes: [
                      rng.uniform(-3, 3, size=shapes[0]).astype(dt),
                      *[rng.uniform(0.1, 2, size=s).astype(dt) for s in shapes[1:]]])


def _signed(part, **kw):
    return (lambda x, b: tss.logsumexp(x, b=b, return_sign=True, **kw)[part],
            lambda x, b: sp.logsumexp(x, b=b, return_sign=True, **kw)[part])


CASES += [
    # (SciPy 1.17 fails on a zero-size input with axis=None: 0-length axes
    # are checked with an axis)
    _lse_case("logsumexp", [[(3, 4)], [()], [(5,)]]),
    _lse_case("logsumexp[axis=1,keepdims]", [[(3, 4)], [(0, 3)]], axis=1, keepdims=True),
    _lse_case("logsumexp[axis=(0,-1)]", [[(2, 3, 4)]], axis=(0, -1)),
    _lse_case("logsumexp[b]", [[(3, 4), (3, 4)], [(3, 4), (4,)]], axis=0),
    _lse_case("logsumexp[b,all]", [[(3, 4), (3, 4)]]),
    OpCase("logsumexp[return_sign]", *_signed(0, axis=-1), [[(3, 4), (3, 4)], [(5,), (5,)]],
           FLOATS, make_inputs=uniform_pair((-3, 3), (-1, 1))),
    OpCase("logsumexp[sign]", *_signed(1, axis=-1), [[(3, 4), (3, 4)]], FLOATS,
           make_inputs=uniform_pair((-3, 3), (-1, 1)), grad=False),
    # (SciPy's softmax fails on zero-size inputs with axis=None: checked with an axis)
    OpCase("softmax", tss.softmax, sp.softmax, [[(3, 4)], [(5,)], [()]], FLOATS,
           tol=(1e-6, 1e-7)),
    OpCase("softmax[axis=1]", lambda x: tss.softmax(x, axis=1),
           lambda x: sp.softmax(x, axis=1), [[(3, 4)], [(0, 3)]], FLOATS, tol=(1e-6, 1e-7)),
    OpCase("log_softmax", tss.log_softmax, sp.log_softmax, [[(3, 4)], [(5,)], [()]],
           FLOATS, tol=(1e-6, 1e-7)),
    OpCase("log_softmax[axis=1]", lambda x: tss.log_softmax(x, axis=1),
           lambda x: sp.log_softmax(x, axis=1), [[(3, 4)], [(0, 3)]], FLOATS,
           tol=(1e-6, 1e-7)),
]

test_forward, test_grad = table_tests(CASES)


def test_every_function_has_a_case():
    covered = {c.name.split("[")[0] for c in CASES}
    missing = [n for n in tss.__all__ if n[:1].islower() and n not in covered]
    assert not missing, f"tracegrad.scipy.special functions without a case: {missing}"
    assert set(special_rows.ROW_NAMES) <= covered


# ------------------------------------------------------------ special values
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300,
                     -40.0, 40.0])


def _same_as_scipy(got, expected, what):
    assert got.dtype == expected.dtype, what
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=0, equal_nan=True,
                               err_msg=what)
    zero = expected == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(expected[zero]),
                                  err_msg=f"{what}: sign of zero")


UNARY = ["erfcinv", "erfcx", "logit", "ndtr", "ndtri", "log_ndtr", "entr", "i0", "i1", "i0e",
         "i1e", "j0", "j1", "y0", "y1", "expit", "log_expit", "digamma"]
BINARY = ["polygamma", "beta", "betaln", "xlogy", "xlog1py", "rel_entr", "iv", "ive", "jn",
          "yn", "gammainc", "gammaincc", "jv"]


@pytest.mark.parametrize("name", UNARY)
def test_special_values_unary(name):
    x = T.dvector("x")
    with np.errstate(all="ignore"):
        expected = getattr(sp, name)(SPECIALS)
        got = getattr(tss, name)(x).eval({x: SPECIALS})
    _same_as_scipy(got, expected, name)


@pytest.mark.parametrize("name", BINARY)
def test_special_values_binary(name):
    a, b = np.meshgrid(SPECIALS, SPECIALS)
    if name in ("polygamma", "yn"):  # (integer orders; SciPy warns on truncation)
        a = np.repeat(np.array([[0.0], [1.0], [2.0], [3.0]]), len(SPECIALS), axis=1)
        b = b[:4]
    x, y = T.dmatrix("x"), T.dmatrix("y")
    with np.errstate(all="ignore"):
        expected = getattr(sp, name)(a, b)
        got = getattr(tss, name)(x, y).eval({x: a, y: b})
    _same_as_scipy(got, expected, name)


# ------------------------------------------------------------ gradients at edges
def test_xlogy_gradient_finite_at_zero():
    # xlogy(0, y) == 0 for every y: d/dy is 0 there, not 0 / 0 at y == 0
    x, y = T.dvector("x"), T.dvector("y")
    logs = T.sum(tss.xlogy(x, y) + tss.xlog1py(x, y - 1))
    gy = tg.grad(logs + T.sum(tss.rel_entr(x, y)), y)
    gx = tg.grad(logs, x)
    xs, ys = np.array([0.0, 0.0, 2.0]), np.array([0.0, 1.5, 0.5])
    with np.errstate(divide="ignore"):  # (log(0) in the x-slope at y == 0: its true value)
        np.testing.assert_array_equal(gy.eval({x: xs, y: ys})[:2], [0.0, 0.0])
        np.testing.assert_allclose(gy.eval({x: xs, y: ys})[2], 2 / 0.5 + 2 / 0.5 - 2 / 0.5)
        np.testing.assert_allclose(gx.eval({x: xs, y: ys})[1:],
                                   [2 * np.log(1.5), 2 * np.log(0.5)], rtol=1e-14)


def test_log_ndtr_gradient_stable_far_left():
    x = T.dvector("x")
    g = tg.grad(T.sum(tss.log_ndtr(x)), x)
    xs = np.array([-50.0, -200.0, -1e4, 30.0])
    got = g.eval({x: xs})
    assert np.isfinite(got).all()
    # pdf / cdf -> -x - 1/x for x -> -inf (Mills ratio), pdf(x) far right (cdf = 1)
    np.testing.assert_allclose(got[:3], -xs[:3] - 1 / xs[:3], rtol=1e-3)
    np.testing.assert_allclose(got[3], np.exp(-450) / np.sqrt(2 * np.pi), rtol=1e-12)


def test_bessel_slopes_at_zero():
    x = T.dvector("x")
    zero = np.array([0.0])
    for name, slope in (("i1", 0.5), ("i1e", 0.5), ("j1", 0.5), ("j0", 0.0), ("i0", 0.0)):
        g = tg.grad(T.sum(getattr(tss, name)(x)), x).eval({x: zero})
        np.testing.assert_allclose(g, [slope], atol=1e-15, err_msg=name)


def test_gammainc_slope_at_zero_shape_one():
    # gammainc(1, x) = 1 - exp(-x): slope 1 at x = 0 (not 0 * log(0))
    x = T.dvector("x")
    g = tg.grad(T.sum(tss.gammainc(1.0, x)), x).eval({x: np.array([0.0, 1.0])})
    np.testing.assert_allclose(g, [1.0, np.exp(-1.0)], rtol=1e-14)


def test_second_derivative_of_polygamma():
    x = T.dvector("x")
    h = tg.grad(T.sum(tg.grad(T.sum(tss.polygamma(1, x)), x)), x)
    xs = np.array([0.7, 2.0])
    np.testing.assert_allclose(h.eval({x: xs}), sp.polygamma(3, xs), rtol=1e-12)


def test_hessian_of_gammaln():
    # gammaln'' = trigamma (the tri_gamma row), whose slope is polygamma(2, x)
    x = T.dvector("x")
    h = tg.grad(T.sum(tg.grad(T.sum(tg.grad(T.sum(T.gammaln(x)), x)), x)), x)
    xs = np.array([0.7, 2.0, 9.5])
    np.testing.assert_allclose(h.eval({x: xs}), sp.polygamma(2, xs), rtol=1e-12)
    rows = tg.jacobian(tg.grad(T.sum(T.psi(x)), x), x)
    np.testing.assert_allclose(rows.eval({x: xs}), np.diag(sp.polygamma(2, xs)), rtol=1e-12)


# ------------------------------------------------------------ refusals
@pytest.mark.parametrize("name,arg", [("polygamma", "order n"), ("jn", "order n"),
                                      ("yn", "order n"), ("iv", "order v"),
                                      ("ive", "order v"), ("gammainc", "shape a"),
                                      ("gammaincc", "shape a")])
def test_order_and_shape_gradients_refused(name, arg):
    n, x = T.dvector("n"), T.dvector("x")
    out = T.sum(getattr(tss, name)(n, x))
    with pytest.raises(NotDifferentiableError, match=f"{name}: no gradient with respect "
                       f"to the {arg}"):
        tg.grad(out, n)
    # the other argument's gradient is unaffected by a variable order
    ns, xs = np.array([1.0, 2.0]), np.array([0.7, 1.3])
    g = tg.grad(out, x).eval({n: ns, x: xs})
    eps = 1e-6
    f = getattr(sp, name)
    np.testing.assert_allclose(g, (f(ns, xs + eps) - f(ns, xs - eps)) / (2 * eps), rtol=1e-6)


def test_refusal_reaches_through_other_ops():
    s = T.dscalar("s")
    x = T.dvector("x")
    with pytest.raises(NotDifferentiableError, match="jn"):
        tg.grad(T.sum(tss.jn(s * 2 + 1, x)), s)


# ------------------------------------------------------------ the three ways in
def test_scipy_ufuncs_dispatch_on_variables():
    x, y = T.dvector("x"), T.dvector("y")
    xs, ys = np.array([0.2, 0.5, 1.5]), np.array([0.3, 1.0, 2.0])
    outs = [sp.erf(x), sp.gammaln(x), sp.xlogy(x, y), sp.jv(1, x), sp.i0e(x), sp.ndtr(x),
            sp.gammainc(y, x), sp.expit(x), sp.log_expit(x), sp.digamma(x), np.i0(x)]
    assert all(isinstance(o, T.TensorVariable) for o in outs)
    f = tg.function([x, y], outs)
    expected = [sp.erf(xs), sp.gammaln(xs), sp.xlogy(xs, ys), sp.jv(1, xs), sp.i0e(xs),
                sp.ndtr(xs), sp.gammainc(ys, xs), sp.expit(xs), sp.log_expit(xs),
                sp.digamma(xs), np.i0(xs)]
    for got, want in zip(f(xs, ys), expected):
        np.testing.assert_allclose(got, want, rtol=1e-14)
    g = tg.function([x], tg.grad(T.sum(sp.erf(x)), x))(xs)
    np.testing.assert_allclose(g, 2 / np.sqrt(np.pi) * np.exp(-xs ** 2), rtol=1e-14)


def test_tracegrad_scipy_special_traced_and_plain():
    @tg.jit
    def f(x):
        return tss.logsumexp(tss.xlogy(x, x + 1), axis=0) + tss.ndtri(tss.expit(x)).sum()

    xs = np.array([0.1, 0.4, 2.0])
    want = sp.logsumexp(sp.xlogy(xs, xs + 1), axis=0) + sp.ndtri(sp.expit(xs)).sum()
    np.testing.assert_allclose(f(xs), want, rtol=1e-13)
    # plain arrays fall through to SciPy itself (same values, keywords allowed)
    np.testing.assert_array_equal(tss.erf(xs), sp.erf(xs))
    np.testing.assert_array_equal(tss.logsumexp(xs, b=-xs, return_sign=True),
                                  sp.logsumexp(xs, b=-xs, return_sign=True))
    assert tss.softmax(xs).shape == (3,)


def test_names_in_tensor_namespace():
    for name in special_rows.__all__:
        assert getattr(T, name) is getattr(special_rows, name)
    # T.softmax keeps Theano's semantics; the SciPy one is tracegrad.scipy.special's
    assert T.softmax is not tss.softmax and T.logsumexp is not tss.logsumexp


def test_keywords_refused_on_traced_values():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        tss.erf(x, out=None)
    with pytest.raises(TypeError, match="cannot write into a symbolic variable"):
        sp.erf(x, out=np.empty(3))


def test_numpy_fallbacks_without_scipy(monkeypatch):
    from tracegrad.ops import special_math as sm
    xs = np.array([0.0, 0.3, 2.0, np.nan, -1.0])
    ys = np.array([0.0, 1.5, 0.5, 1.0, np.nan])
    expected = {"xlogy": sp.xlogy(xs, ys), "xlog1py": sp.xlog1py(xs, ys),
                "rel_entr": sp.rel_entr(xs, ys), "entr": sp.entr(xs), "logit": sp.logit(ys),
                "ndtr": sp.ndtr(xs)}
    monkeypatch.setattr(sm, "_special", lambda xp: None)
    with np.errstate(all="ignore"):
        got = {"xlogy": special_rows.xlogy.op.impl(np, xs, ys),
               "xlog1py": special_rows.xlog1py.op.impl(np, xs, ys),
               "rel_entr": special_rows.rel_entr.op.impl(np, xs, ys),
               "entr": special_rows.entr.op.impl(np, xs),
               "logit": special_rows.logit.op.impl(np, ys),
               "ndtr": special_rows.ndtr.op.impl(np, xs)}
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-14, atol=1e-300,
                                   equal_nan=True, err_msg=name)
    with pytest.raises(ImportError, match="scipy.special.i0e: install SciPy"):
        special_rows.i0e.op.impl(np, xs)


def test_python_numbers_take_scipy_loops():
    # NumPy 2 with SciPy's loops: gammainc has 'dd->d' first (a Python float
    # with float32 gives float64), jv 'ff->f' first (float32)
    x = T.fvector("x")
    xs = np.array([0.5, 2.0], "float32")
    for name in ("gammainc", "jn", "xlogy", "iv"):
        out = getattr(tss, name)(1.5, x)
        want = getattr(sp, name)(1.5, xs)
        assert out.dtype == want.dtype.name, name
        np.testing.assert_array_equal(out.eval({x: xs}), want)


def test_rows_pickle_by_name():
    import pickle
    x = T.dvector("x")
    y = tss.iv(2, x) + tss.xlogy(x, 3.0)
    f = tg.function([x], y)
    g = pickle.loads(pickle.dumps(f))
    xs = np.array([0.5, 2.0])
    np.testing.assert_allclose(g(xs), sp.iv(2, xs) + sp.xlogy(xs, 3.0), rtol=1e-14)
