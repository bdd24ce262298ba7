"""Stability rewrites: each rule with an input that breaks the naive form
(the original graph, run by the reference evaluator, is wrong there; the
rewritten one is right), gradients built before rewriting included, and the
logistic regression of the Theano tutorial on its own initialisation."""

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.rewrite import optimize_outputs
from rewritecheck import strict, keys, run, unguarded_keys  # noqa: F401 (strict: autouse)


def softplus(z):
    return np.logaddexp(0.0, z)


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def check_stable(out, values, exact, rtol=1e-15, atol=0.0, mode=None):
    """``out`` is wrong on ``values`` before rewriting and ``exact`` after;
    returns the rewritten variable."""
    naive = run([out], values)[0]
    assert not np.allclose(naive, exact, rtol=1e-6, atol=atol, equal_nan=False), \
        f"the input does not break the naive form ({naive} vs {exact})"
    (new,) = optimize_outputs([out], mode)
    assert new.dtype == out.dtype
    got = run([new], values)[0]
    np.testing.assert_allclose(got, exact, rtol=rtol, atol=atol)
    return new


@pytest.fixture
def x():
    return T.dvector("x")


# ------------------------------------------------------------ elementwise
@pytest.mark.parametrize("build", [lambda x: T.log(1 + x), lambda x: T.log(x + 1.0)])
def test_log_one_plus_x(x, build):
    new = check_stable(build(x), {x: np.array([1e-20, -1e-17])}, [1e-20, -1e-17])
    assert keys([new]) == ["log1p"]


def test_log_one_minus_x(x):
    new = check_stable(T.log(1 - x), {x: np.array([1e-20])}, [-1e-20])
    assert keys([new]) == ["neg", "log1p"]


def test_log_of_a_longer_sum_with_one(x):
    y = T.dvector("y")
    new = check_stable(T.log(x + 1 + y), {x: np.array([1e-20]), y: np.array([2e-20])},
                       [3e-20])
    assert keys([new]) == ["add", "log1p"]


def test_log_sigmoid(x):
    new = check_stable(T.log(T.sigmoid(x)), {x: np.array([-800.0, -40.0, 3.0])},
                       -softplus(-np.array([-800.0, -40.0, 3.0])))
    assert "log" not in keys([new]) and "softplus" in keys([new])


def test_log_one_minus_sigmoid(x):
    v = np.array([800.0, 40.0, -3.0])
    new = check_stable(T.log(1 - T.sigmoid(x)), {x: v}, -softplus(v))
    assert "log" not in keys([new]) and "sigmoid" not in keys([new])


def test_one_over_one_plus_exp_is_sigmoid(x):
    (new,) = optimize_outputs([1 / (1 + T.exp(-x))])
    assert keys([new]) == ["sigmoid"] and new.owner.inputs[0] is x
    v = np.array([-800.0, 0.5, 800.0])
    new = check_stable(T.log(1 / (1 + T.exp(-x))), {x: v}, -softplus(-v))
    assert "exp" not in keys([new])


def test_exp_over_one_plus_exp_is_sigmoid(x):
    v = np.array([800.0, 1.0, -800.0])
    new = check_stable(T.exp(x) / (1 + T.exp(x)), {x: v}, sigmoid(v))
    assert unguarded_keys([new]) == ["sigmoid", "mul"]  # (times its guard)
    new = check_stable(T.exp(x) / (1 + T.exp(x)), {x: v}, sigmoid(v), mode="fast_math")
    assert keys([new]) == ["sigmoid"]


@pytest.mark.parametrize("build, exact", [
    (lambda x: T.exp(x) - 1, np.expm1),
    (lambda x: 1 - T.exp(x), lambda v: -np.expm1(v)),
    (lambda x: T.exp(x) + (-1.0), np.expm1),
])
def test_expm1(x, build, exact):
    v = np.array([1e-20, -3e-18])
    new = check_stable(build(x), {x: v}, exact(v))
    assert "exp" not in keys([new]) and "expm1" in keys([new])


def test_one_minus_sigmoid(x):
    v = np.array([40.0, 50.0])
    new = check_stable(1 - T.sigmoid(x), {x: v}, sigmoid(-v), rtol=1e-14)
    assert keys([new]) == ["neg", "sigmoid"]


@pytest.mark.parametrize("build", [lambda x: T.log1p(T.exp(x)), lambda x: T.log(1 + T.exp(x))])
def test_softplus(x, build):
    v = np.array([800.0, -800.0, 0.25])
    new = check_stable(build(x), {x: v}, softplus(v), atol=1e-300)
    assert keys([new]) == ["softplus"]


def test_log_exp(x):
    new = check_stable(T.log(T.exp(x)), {x: np.array([800.0, -800.0])}, [800.0, -800.0])
    assert new is x


def test_sqrt_sqr(x):
    new = check_stable(T.sqrt(T.sqr(x)), {x: np.array([1e200, -1e-200])}, [1e200, 1e-200])
    assert keys([new]) == ["abs"]


def test_float32_stays_float32():
    f = T.fvector("f")
    v = np.array([1e-10], dtype="float32")
    new = check_stable(T.log(1 + f), {f: v}, v, rtol=1e-7)
    assert new.dtype == "float32"


# ------------------------------------------------------------ softmax, logsumexp
@pytest.fixture
def m():
    return T.dmatrix("m")


BIG = np.array([[0.0, 1000.0, -1000.0], [5.0, 3.0, 1.0]])


def log_softmax_ref(v):
    shifted = v - v.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_log_softmax(m):
    new = check_stable(T.log(T.nnet.softmax(m)), {m: BIG}, log_softmax_ref(BIG), rtol=1e-14)
    assert "log" not in keys([new])


@pytest.mark.parametrize("build", [
    lambda m, y: T.log(T.nnet.softmax(m))[T.arange(m.shape[0]), y],
    lambda m, y: T.log(T.nnet.softmax(m)[T.arange(m.shape[0]), y]),
    lambda m, y: -T.nnet.categorical_crossentropy(T.nnet.softmax(m), y),
])
def test_indexed_log_softmax_and_its_gradient(m, build):
    y = T.lvector("y")
    values = {m: BIG, y: np.array([2, 0])}
    picked = build(m, y)
    exact = log_softmax_ref(BIG)[[0, 1], [2, 0]]
    new = check_stable(picked, values, exact, rtol=1e-15, atol=1e-12)
    assert "log" not in keys([new])
    cost = -picked.mean()
    g = tg.grad(cost, m)
    naive = run([g], values)[0]
    assert not np.isfinite(naive).all()
    (new_g,) = optimize_outputs([g])
    onehot = np.zeros_like(BIG)
    onehot[[0, 1], [2, 0]] = 1
    sm = np.exp(log_softmax_ref(BIG))
    np.testing.assert_allclose(run([new_g], values)[0], (sm - onehot) / 2,
                               rtol=1e-13, atol=1e-16)


def test_softmax_against_one_hot_targets_and_its_gradient(m):
    t = T.dmatrix("t")
    onehot = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    values = {m: BIG, t: onehot}
    cost = T.nnet.categorical_crossentropy(T.nnet.softmax(m), t).sum()
    check_stable(cost, values, -(onehot * log_softmax_ref(BIG)).sum())
    (g,) = optimize_outputs([tg.grad(cost, m)])
    np.testing.assert_allclose(run([g], values)[0], np.exp(log_softmax_ref(BIG)) - onehot,
                               rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("axis, keepdims", [(1, False), (1, True), (0, False), (None, False)])
def test_logsumexp(m, axis, keepdims):
    v = np.array([[1000.0, 1000.0], [-1000.0, 0.0]])
    out = T.log(T.sum(T.exp(m), axis=axis, keepdims=keepdims))
    exact = np.logaddexp.reduce(v, axis=axis, keepdims=keepdims) if axis is not None \
        else np.logaddexp.reduce(v.ravel())
    new = check_stable(out, {m: v}, exact)
    assert "exp" not in keys([new])


def test_gradient_of_logsumexp_is_a_stable_softmax(m):
    v = np.array([[1000.0, 1000.0], [-1000.0, 0.0]])
    g = tg.grad(T.log(T.sum(T.exp(m), axis=1)).sum(), m)
    new = check_stable(g, {m: v}, np.exp(log_softmax_ref(v)), atol=1e-300)
    assert "exp" not in keys([new])


def test_softmax_written_with_exp(m):
    for den in (T.exp(m).sum(axis=1, keepdims=True), T.exp(m).sum(axis=1).dimshuffle(0, "x")):
        new = check_stable(T.exp(m) / den, {m: BIG}, np.exp(log_softmax_ref(BIG)), atol=1e-300)
        assert "exp" not in keys([new])


# ------------------------------------------------------------ gradients
def test_gradient_of_log_sigmoid(x):
    v = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    g = tg.grad(T.log(T.sigmoid(x)).sum(), x)
    new = check_stable(g, {x: v}, sigmoid(-v))
    assert "true_div" not in unguarded_keys([new])


def test_gradient_of_log_one_minus_sigmoid(x):
    v = np.array([-800.0, 0.0, 40.0, 800.0])
    g = tg.grad(T.log(1 - T.sigmoid(x)).sum(), x)
    check_stable(g, {x: v}, -sigmoid(v))


def test_binary_crossentropy_and_its_gradient(x):
    t = T.dvector("t")
    v = np.array([-800.0, -800.0, 800.0, 800.0, 2.0])
    tv = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    values = {x: v, t: tv}
    cost = T.nnet.binary_crossentropy(T.sigmoid(x), t)
    check_stable(cost, values, tv * softplus(-v) + (1 - tv) * softplus(v))
    g = tg.grad(cost.sum(), x)
    check_stable(g, values, sigmoid(v) - tv, atol=1e-300)


# ------------------------------------------------------------ the tutorial
def tutorial(w_value, b_value=0.0):
    """The logistic regression of the Theano tutorial."""
    x, y = T.dmatrix("x"), T.dvector("y")
    w = tg.shared(w_value, name="w")
    b = tg.shared(b_value, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    return x, y, w, b, p_1, xent, gw, gb


def test_tutorial_xent_and_gradient_are_exact_at_logits_of_800():
    rng = np.random.default_rng(1)
    n, feats = 8, 5
    w_value = rng.standard_normal(feats)
    xv = rng.standard_normal((n, feats))
    logits = np.array([800.0, -800.0, 800.0, -800.0, 3.0, -30.0, 800.0, -800.0])
    xv *= (logits / (xv @ w_value))[:, None]
    yv = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0])
    x, y, w, b, _, xent, gw, gb = tutorial(w_value)
    values = {x: xv, y: yv}
    z = xv @ w_value
    dz = (sigmoid(z) - yv) / n
    exact = [yv * softplus(-z) + (1 - yv) * softplus(z), xv.T @ dz + 0.02 * w_value,
             dz.sum()]
    naive = run([xent, gw, gb], values)
    assert not all(np.isfinite(a).all() for a in naive)
    got = run(optimize_outputs([xent, gw, gb]), values)
    for a, e in zip(got, exact):
        np.testing.assert_allclose(a, e, rtol=1e-13)


def test_tutorial_on_its_own_initialisation_stays_finite():
    rng = np.random.default_rng(0)
    n, feats = 400, 784
    data = (rng.standard_normal((n, feats)), rng.integers(0, 2, size=n).astype("float64"))
    x, y, w, b, p_1, xent, gw, gb = tutorial(rng.standard_normal(feats))
    values = {x: data[0], y: data[1]}
    naive = run([xent, gw, gb], values)
    assert np.mean(~np.isfinite(naive[0])) > 0.02  # the naive graph breaks here
    new = run(optimize_outputs([xent, gw, gb]), values)
    assert all(np.isfinite(a).all() for a in new)
    train = tg.function([x, y], [p_1 > 0.5, xent],
                        updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
    for _ in range(10):
        _, xent_value = train(*data)
        assert np.isfinite(xent_value).all()
    assert np.isfinite(w.get_value()).all() and np.isfinite(b.get_value())


def test_log_softmax_written_by_hand_and_its_gradient(m):
    t = T.dmatrix("t")
    onehot = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    values = {m: BIG, t: onehot}
    out = m - T.log(T.sum(T.exp(m), axis=1)).dimshuffle(0, "x")
    new = check_stable(out, values, log_softmax_ref(BIG), rtol=1e-14)
    assert "exp" not in keys([new])
    g = tg.grad((t * out).sum(), m)
    check_stable(g, values, onehot - np.exp(log_softmax_ref(BIG)), rtol=1e-14, atol=1e-300)


def test_softmax_written_with_exp_indexed_and_its_gradient(m):
    y = T.lvector("y")
    values = {m: BIG, y: np.array([2, 0])}
    sm = T.exp(m) / T.exp(m).sum(axis=1, keepdims=True)
    picked = T.log(sm[T.arange(m.shape[0]), y])
    check_stable(picked, values, log_softmax_ref(BIG)[[0, 1], [2, 0]], rtol=1e-14)
    onehot = np.zeros_like(BIG)
    onehot[[0, 1], [2, 0]] = 1
    g = tg.grad(-picked.sum(), m)
    # (the gradient needs sum_to(g / s, s) -> sum_to(g, s) / s, which is
    # IEEE-exact only for s proven finite: mode 'fast_math')
    check_stable(g, values, np.exp(log_softmax_ref(BIG)) - onehot, rtol=1e-14, atol=1e-300,
                 mode="fast_math")
