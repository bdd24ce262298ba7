"""IEEE semantics of the default rewrites (API.md: a NaN or inf coming from
an input reaches the outputs as NumPy's would; value-changing algebra only
with ``mode='FAST_MATH'``). Each test compiles with and without rewrites
and compares with NaN positions and inf signs as values."""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.testing.strategies import assert_same_ieee
from rewritecheck import strict, keys, unguarded_keys  # noqa: F401 (strict: autouse)

INF = np.inf
SPECIAL = np.array([INF, -INF, np.nan, 0.0, -0.0, 1.5, -2.0])


def same_as_numpy(inputs, out, values, mode="fast_run"):
    """``out`` compiled with ``mode`` equals it compiled without rewrites."""
    fast = tg.function(inputs, out, mode=mode, on_unused_input="ignore")
    ref = tg.function(inputs, out, mode="None", on_unused_input="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, expected = fast(*values), ref(*values)
    assert_same_ieee(got, expected)
    return fast


@pytest.fixture
def x():
    return T.dvector("x")


@pytest.mark.parametrize("build", [
    lambda x, y: x - x,
    lambda x, y: (x + y) - y,
    lambda x, y: (x + x) - x,
    lambda x, y: T.exp(x) - T.exp(x) + y,
    lambda x, y: T.exp(x) * y / T.exp(x),
    lambda x, y: x * y / x,
])
def test_cancellation_keeps_nan_and_inf_of_inputs(x, build):
    y = T.dvector("y")
    same_as_numpy([x, y], build(x, y), [SPECIAL, SPECIAL[::-1].copy()])


def test_cancellation_of_values_proven_finite(x):
    i = T.lvector("i")
    xi = T.exp(T.cast(i, "float64"))
    # integers are never inf or NaN: exp of them overflows at most
    assert "sub" not in keys(tg.function([i], xi - xi).maker.fgraph.outputs)
    assert "true_div" not in keys(tg.function([i, x], xi * x / xi).maker.fgraph.outputs)
    assert "sub" not in keys(tg.function([i], i - i).maker.fgraph.outputs)


def test_fast_math_cancels_whatever_the_input(x):
    for mode in ("FAST_MATH", "fast_math"):
        f = tg.function([x], x - x, mode=mode)
        np.testing.assert_array_equal(f(SPECIAL), np.zeros(len(SPECIAL)))
    g = tg.function([x], T.exp(x) / T.exp(x), mode="FAST_MATH")
    assert "true_div" not in keys(g.maker.fgraph.outputs)
    old = tg.config.optimizer
    try:
        tg.config.optimizer = "fast_math"
        assert tg.function([x], x - x)(np.array([INF]))[0] == 0
    finally:
        tg.config.optimizer = old


def test_theano_mode_objects_select_fast_math(x):
    from tracegrad.compile import Mode
    default = Mode(linker="cvm", optimizer="FAST_RUN")
    fast = default.including("fast_math")
    assert fast.optimizer == "fast_math" and fast.excluding("fast_math") == default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(tg.function([x], x - x, mode=default)(np.array([INF]))[0])
        assert tg.function([x], x - x, mode=fast)(np.array([INF]))[0] == 0
    with pytest.raises(ValueError, match="'fusion'"):
        default.including("fusion")
    with pytest.raises(ValueError, match="FAST_RUNN"):
        Mode(optimizer="FAST_RUNN")


def test_fast_math_fuses_like_fast_run(x):
    f = tg.function([x], T.tanh(x) * 2 + T.exp(x), mode="FAST_MATH")
    assert any("Fused" in type(n.op).__name__ for n in f.maker.fgraph.toposort())


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="fast_maths"):
        tg.function([], T.constant(1.0), mode="fast_maths")


@pytest.mark.parametrize("build, value", [
    (lambda x: x * 1e200 * 1e200, np.array([1e-300, 0.0, -1e-300])),
    (lambda x: x * 1e-200 * 1e-200, np.array([INF, 1e300, -INF])),
    (lambda x: (x + 1e308) + 1e308, np.array([-1e308, -INF, 0.0])),
    (lambda x: x / 1e-200 / 1e-200, np.array([1e-300, 0.0, INF])),
])
def test_constants_that_overflow_are_not_folded(x, build, value):
    same_as_numpy([x], build(x), [value])


def test_gradient_of_log_sigmoid_keeps_numpy_at_infinities(x):
    g = tg.grad(T.log(T.sigmoid(x)).sum(), x)
    f = same_as_numpy([x], g, [SPECIAL])
    # still the stable form: exact and silent where the naive one is 0 / 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(f(np.array([-800.0, 0.0, 800.0])), [1.0, 0.5, 0.0],
                                   rtol=1e-15)
    assert "true_div" not in unguarded_keys(f.maker.fgraph.outputs)


def test_exp_over_one_plus_exp_keeps_nan_at_inf(x):
    f = same_as_numpy([x], T.exp(x) / (1 + T.exp(x)), [SPECIAL])
    np.testing.assert_array_equal(f(np.array([INF, -INF]))[0], np.nan)
    np.testing.assert_allclose(f(np.array([800.0])), [1.0])


def test_tutorial_gradient_keeps_numpy_at_infinite_logits():
    from test_rewrite_sigmoid_pair import tutorial
    inputs, outputs = tutorial()
    xv = np.array([[INF], [-INF], [np.nan], [INF], [-INF], [3.0]])
    yv = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.5])
    for out in outputs:
        f = same_as_numpy(inputs, out, [xv, yv, np.ones(1), np.asarray(0.0)])
        # (logits of 800 overflow inside the naive form only: right values)
        assert np.isfinite(f(np.array([[800.0], [-800.0]]), np.array([0.0, 1.0]),
                             np.ones(1), np.asarray(0.0))).all()


def test_factor_out_of_sum_to_keeps_nan():
    # sum(m * s) is NaN where a row of m holds 0 and s is inf; s * sum(m) is not
    m = T.dmatrix("m")
    s = m.sum(axis=1, keepdims=True)
    out = T.sum_to(m * s, s)
    mv = np.array([[0.0, INF], [1.0, 2.0], [0.0, -0.0]])
    same_as_numpy([m], out, [mv])
    # FAST_MATH factors s out: inf * sum(m) = inf where NumPy's sum is NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tg.function([m], out, mode="FAST_MATH")(mv)[0, 0] == INF


@pytest.mark.parametrize("build", [
    lambda m: T.exp(m) / T.exp(m).sum(axis=1, keepdims=True),
    lambda m: T.log(T.exp(m) / T.exp(m).sum(axis=1, keepdims=True)),
    lambda m: tg.grad(T.log(T.exp(m).sum(axis=1)).sum(), m),
])
def test_softmax_written_with_exp_keeps_numpy_beside_inf(build):
    # NumPy: [inf, 1] -> [nan, 0]; the softmax op alone gives [nan, nan]
    m = T.dmatrix("m")
    v = np.array([[INF, 1.0], [-INF, -INF], [-INF, 2.0], [-INF, INF], [np.nan, INF]])
    f = same_as_numpy([m], build(m), [v])
    assert np.isfinite(f(np.array([[1000.0, 0.0]]))).all()  # still stable


def test_guards_run_in_cuda_kernels(x):
    # (the fake CuPy runs the generated CUDA C with C semantics)
    import fake_cupy
    v = np.append(SPECIAL, -800.0)
    outs = [tg.grad(T.log(T.sigmoid(x)).sum(), x), T.exp(x) / (1 + T.exp(x))]
    refs = [tg.function([x], o, mode="None") for o in outs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [r(v) for r in refs]
        with fake_cupy.installed():
            got = [tg.function([x], o, device="cuda")(v).get() for o in outs]
    # NumPy's at the special values; the stable value at -800
    assert_same_ieee(got[0][:-1], expected[0][:-1])
    assert got[0][-1] == 1.0 and np.isnan(expected[0][-1])
    assert_same_ieee(got[1], expected[1])


def _logits_with_specials():
    # rows: -inf / +inf / NaN at the target, at another entry, both, none
    v = np.zeros((8, 3))
    v[0, 0], v[1, 0], v[2, 0] = -INF, INF, np.nan
    v[3, 1], v[4, 1], v[5, 1] = -INF, INF, np.nan
    v[6] = -INF
    v[7] = [1.0, -INF, INF]
    return v


@pytest.mark.parametrize("build, quiet", [
    (lambda m, t: T.log(T.nnet.softmax(m)[T.arange(m.shape[0]), t]), True),
    (lambda m, t: T.nnet.categorical_crossentropy(T.nnet.softmax(m), t), True),
    # (exp(m) itself is still computed, for the shape of the zeros: it warns)
    (lambda m, t: T.log(T.exp(m)[T.arange(m.shape[0]), t]), False),
    (lambda m, t: T.log(T.nnet.sigmoid(m)[T.arange(m.shape[0]), t]), True),
])
def test_scatter_cancel_keeps_numpy_at_non_finite_logits(build, quiet):
    # the gradient of an indexed log(softmax): softmax / softmax[t] cancelled
    m, t = T.dmatrix("m"), T.lvector("t")
    cost = (build(m, t) * T.arange(1.0, 9.0)[:m.shape[0]]).sum()
    g = tg.grad(cost, m)
    f = same_as_numpy([m, t], g, [_logits_with_specials(), np.zeros(8, dtype="int64")])
    with warnings.catch_warnings():
        warnings.simplefilter("error" if quiet else "ignore")
        got = f(np.array([[-800.0, 800.0, 0.0]]), np.zeros(1, dtype="int64"))
    assert np.isfinite(got).all()  # stable where the naive form is 0 / 0


@pytest.mark.parametrize("yv, uv", [
    (np.array([INF, INF, -INF, -INF, INF, -INF, np.nan, 0.5, 2.0, INF]),
     np.array([INF, -INF, INF, -INF, 3.0, 3.0, INF, -INF, INF, np.nan])),
])
def test_sigmoid_pair_keeps_numpy_at_infinite_targets(yv, uv):
    y, u, k = T.dvector("y"), T.dvector("u"), T.dvector("k")
    out = k * y * T.nnet.sigmoid(u) - k * (1 - y) * T.nnet.sigmoid(-u)
    kv = np.array([2.0, -1.0, 0.5, 3.0, 1.0, -2.0, 1.0, 1.0, 1.0, 1.0])
    f = same_as_numpy([y, u, k], out, [yv, uv, kv])
    assert unguarded_keys(f.maker.fgraph.outputs).count("sigmoid") <= 1
    # finite logits far out: y - sigmoid(-u), and the guard raises no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(f(np.array([0.25, 0.75]), np.array([800.0, -800.0]),
                                     np.ones(2)), [0.25, -0.25])


def test_cancelled_softmax_keeps_nan_of_its_whole_row():
    # softmax of a row with +inf or NaN is NaN at its finite entries too
    m, y = T.dmatrix("m"), T.dmatrix("y")
    out = T.nnet.softmax(m) * y / T.nnet.softmax(m)
    v = np.array([[INF, 1.0], [np.nan, 1.0], [-INF, 1.0], [1.0, 2.0], [-800.0, 800.0]])
    f = same_as_numpy([m, y], out[:4], [v, np.full((5, 2), 3.0)])
    assert "true_div" not in unguarded_keys(f.maker.fgraph.outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the naive form is 0 / 0 at -800)
        got = tg.function([m, y], out)(v[3:], np.full((2, 2), 3.0))
    np.testing.assert_array_equal(got, np.full((2, 2), 3.0))


@pytest.mark.parametrize("build, exact", [
    (lambda x: x + 0, False), (lambda x: 0.0 + x, False), (lambda x: (x + 1.5) - 1.5, False),
    (lambda x: x * 2.0 + 0.0, False), (lambda x: x - 0, True), (lambda x: x + (-0.0), True),
    (lambda x: -(-x), True),
])
def test_sums_with_a_zero_keep_the_sign_of_zero(x, build, exact):
    # NumPy: -0.0 + 0.0 is 0.0, -0.0 - 0.0 is -0.0
    v = np.array([-0.0, 0.0, -1.0, INF])
    f = tg.function([x], build(x))
    ref = tg.function([x], build(x), mode="None")
    np.testing.assert_array_equal(np.signbit(f(v)), np.signbit(ref(v)))
    assert ("add" in keys(f.maker.fgraph.outputs) or any(
        "add" in str(n.op) for n in f.maker.fgraph.toposort())) != exact


def test_scatter_guards_run_in_cuda_kernels():
    import fake_cupy
    m, t = T.dmatrix("m"), T.lvector("t")
    g = tg.grad(T.nnet.categorical_crossentropy(T.nnet.softmax(m), t).sum(), m)
    v, tv = _logits_with_specials(), np.zeros(8, dtype="int64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = tg.function([m, t], g, mode="None")(v, tv)
        with fake_cupy.installed():
            got = tg.function([m, t], g, device="cuda")(v, tv).get()
    assert_same_ieee(got, expected)
