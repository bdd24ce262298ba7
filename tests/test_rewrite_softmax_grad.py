"""The softmax cross-entropy gradient as one ``CrossentropySoftmax1HotWithBiasDx``
node (rewrite/softmax_grad.py): where it fires, its values against the
unoptimized graph (NaN positions included) and against the exact gradient."""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.testing.strategies import assert_same_ieee
from rewritecheck import strict, keys  # noqa: F401 (strict: autouse)

INF = np.inf
DX = "CrossentropySoftmax1HotWithBiasDx"


def _np_softmax(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


COSTS = {
    "mean": lambda m, t: T.nnet.categorical_crossentropy(T.nnet.softmax(m), t).mean(),
    "sum": lambda m, t: T.nnet.categorical_crossentropy(T.nnet.softmax(m), t).sum(),
    "weighted": lambda m, t: (T.nnet.categorical_crossentropy(T.nnet.softmax(m), t)
                              * T.arange(1.0, 9.0)[:m.shape[0]]).sum(),
    "1hot": lambda m, t: T.nnet.crossentropy_softmax_1hot(m, t)[0].sum(),
    # Theano's indexing forms: inc_subtensor scatters
    "log_softmax[arange]": lambda m, t: -T.nnet.log_softmax(m)[T.arange(m.shape[0]), t].sum(),
    "log(softmax[arange])": lambda m, t: -T.log(T.nnet.softmax(m)[T.arange(m.shape[0]), t]).mean(),
}
WEIGHTS = {"mean": lambda n: np.full(n, 1.0 / n), "sum": np.ones,
           "weighted": lambda n: np.arange(1.0, n + 1), "1hot": np.ones,
           "log_softmax[arange]": np.ones, "log(softmax[arange])": lambda n: np.full(n, 1.0 / n)}


def _specials():
    v = np.zeros((8, 3))
    v[0, 0], v[1, 0], v[2, 0] = -INF, INF, np.nan   # at the target (0)
    v[3, 1], v[4, 1], v[5, 1] = -INF, INF, np.nan   # beside it
    v[6] = -INF
    v[7] = [-800.0, 800.0, 0.0]                     # softmax[target] underflows
    return v


@pytest.mark.parametrize("name", sorted(COSTS))
def test_gradient_is_one_node_and_exact(name):
    m, t = T.dmatrix("m"), T.lvector("t")
    g = tg.grad(COSTS[name](m, t), m)
    f = tg.function([m, t], g)
    ops = [type(n.op).__name__ for n in f.maker.fgraph.toposort()]
    assert DX in ops and "PutAlongLastAxis" not in ops, ops
    rng = np.random.default_rng(0)
    v, tv = rng.normal(size=(6, 4)) * 3, np.array([0, 3, 1, 2, -1, 0])
    onehot = np.eye(4)[tv]
    expected = WEIGHTS[name](6)[:, None] * (_np_softmax(v) - onehot)
    np.testing.assert_allclose(f(v, tv), expected, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("name", sorted(COSTS))
def test_same_as_numpy_at_non_finite_logits(name):
    m, t = T.dmatrix("m"), T.lvector("t")
    g = tg.grad(COSTS[name](m, t), m)
    fast = tg.function([m, t], g)
    ref = tg.function([m, t], g, mode="None")
    v, tv = _specials(), np.zeros(8, dtype="int64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, expected = fast(v, tv), ref(v, tv)
    # the reference is 0 * inf = NaN where only softmax's underflow made a 0
    # (the log_softmax form never divides: finite there too)
    assert np.isfinite(got[7]).all()
    assert np.isnan(expected[7]).all() or np.isfinite(expected[7]).all()
    assert_same_ieee(got[:7], expected[:7])
    np.testing.assert_allclose(got[7], WEIGHTS[name](8)[7] * np.array([-1.0, 1.0, 0.0]),
                               atol=1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no 0 / 0 on the way)
        fast(v[7:], tv[7:])


def test_infinite_and_nan_upstream_gradient_as_numpy():
    m, t, w = T.dmatrix("m"), T.lvector("t"), T.dvector("w")
    g = tg.grad((T.nnet.categorical_crossentropy(T.nnet.softmax(m), t) * w).sum(), m)
    fast = tg.function([m, t, w], g)
    assert DX in [type(n.op).__name__ for n in fast.maker.fgraph.toposort()]
    ref = tg.function([m, t, w], g, mode="None")
    v = np.array([[1.0, 2.0, 3.0], [1.0, -800.0, 3.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    args = v, np.array([0, 2, 1, 2]), np.array([INF, -INF, np.nan, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_ieee(fast(*args), ref(*args))


def test_out_of_range_target_raises():
    m, t = T.dmatrix("m"), T.lvector("t")
    f = tg.function([m, t], tg.grad(COSTS["sum"](m, t), m))
    with pytest.raises(IndexError):
        f(np.zeros((2, 3)), np.array([0, 3]))


def test_float32_training_step_graph():
    # W4's loss: the gradient in the logits no longer scatters, guards and sums
    x, t = T.fmatrix("x"), T.lvector("t")
    w = tg.shared(np.ones((4, 3), dtype="float32"), name="w")
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(T.dot(x, w)), t).mean()
    f = tg.function([x, t], loss, updates=[(w, w - 0.1 * tg.grad(loss, w))])
    names = [type(n.op).__name__ for n in f.maker.fgraph.toposort()]
    assert names.count(DX) == 1 and "PutAlongLastAxis" not in names, names
    xv = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    f(xv, np.array([1, 2]))
    sm = _np_softmax(xv @ np.ones((4, 3), dtype="float32"))
    grad_w = xv.T @ ((sm - np.eye(3)[[1, 2]]) / 2)
    np.testing.assert_allclose(w.get_value(), 1 - 0.1 * grad_w, rtol=1e-6)


def test_other_softmax_products_are_left_alone():
    # k - s * sum(k) with s not a softmax of the scattered shape: no rewrite
    m, t = T.dmatrix("m"), T.lvector("t")
    k = T.nnet.PutAlongLastAxis()(T.ones_like(t, dtype="float64"), t, m)
    out = k - T.exp(m) * k.sum(axis=-1, keepdims=True)
    f = tg.function([m, t], out)
    assert DX not in [type(n.op).__name__ for n in f.maker.fgraph.toposort()]


def test_op_with_logits_gives_nan_rows_at_minus_inf_targets():
    from tracegrad.tensor.nnet import crossentropy_softmax_1hot_with_bias_dx as dx
    dy, sm, y, x = T.dvector("dy"), T.dmatrix("sm"), T.lvector("y"), T.dmatrix("x")
    f = tg.function([dy, sm, y, x], dx(dy, sm, y, x))
    xv = np.array([[-INF, 0.0, 1.0], [0.0, -INF, 1.0], [1.0, 2.0, -INF], [np.nan, 0.0, 0.0]])
    smv = _np_softmax(np.zeros((4, 3)))
    yv = np.array([0, 0, -1, 0])
    got = f(np.array([1.0, 2.0, 3.0, 4.0]), smv, yv, xv)
    expected = np.array([1.0, 2.0, 3.0, 4.0])[:, None] * (smv - np.eye(3)[[0, 0, 2, 0]])
    expected[[0, 2]] = np.nan  # (target logit -inf; a NaN logit chooses nothing)
    assert_same_ieee(got, expected)
    # the logits have no gradient (they only choose NaN rows); dy and sm have theirs
    cost = (dx(dy, sm, y, x) * np.arange(12.0).reshape(4, 3)).sum()
    gdy, gsm = tg.grad(cost, [dy, sm])
    vals = np.ones(4), smv, np.array([0, 1, 2, 0]), np.zeros((4, 3))
    out = tg.function([dy, sm, y, x], [gdy, gsm], on_unused_input="ignore")(*vals)
    w = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(out[0], (w * smv).sum(1) - w[np.arange(4), [0, 1, 2, 0]])
    np.testing.assert_allclose(out[1], w)


@pytest.mark.parametrize("name", ["log_softmax[arange]", "log(softmax[arange])"])
def test_indexing_forms_broadcast_one_target_as_numpy(name):
    # m[arange(n), t] with one target broadcasts it over the rows
    m, t = T.dmatrix("m"), T.lvector("t")
    g = tg.grad(COSTS[name](m, t), m)
    fast = tg.function([m, t], g)
    assert DX in [type(n.op).__name__ for n in fast.maker.fgraph.toposort()]
    v = np.arange(12.0).reshape(4, 3) / 5
    for tv in (np.array([2]), np.array([0, 1, 2, -1])):
        np.testing.assert_allclose(fast(v, tv), tg.function([m, t], g, mode="None")(v, tv),
                                   rtol=1e-14, atol=1e-16)
    with pytest.raises((ValueError, IndexError)):
        fast(v, np.array([0, 1]))
