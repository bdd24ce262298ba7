"""Differential tests: random graphs (and their gradients) compiled with and
without rewrites agree.

Two sources of graphs: ``tracegrad.testing.strategies.expressions`` (general
expressions with reductions, indexing and broadcasting) and ``rewritable``
below, which favours what the rewrites act on: sums and products with
constants, cancellations, negations, divisions by positive values, powers,
and the forms the stability rules look for.
"""
import math
import warnings

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.testing import strategies as tgst

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT = 10.0

# name -> (build(a), bound after(bound of a))
UNARY = {
    "neg": (lambda a: -a, lambda b: b),
    "neg_neg": (lambda a: -(-a), lambda b: b),
    "sigmoid": (T.sigmoid, lambda b: 1.0),
    "one_minus_sigmoid": (lambda a: 1 - T.sigmoid(a), lambda b: 1.0),
    "log_sigmoid": (lambda a: T.log(T.sigmoid(a)), lambda b: b + 1.0),
    "log_one_minus_sigmoid": (lambda a: T.log(1 - T.sigmoid(a)), lambda b: b + 1.0),
    "log_one_plus_sqr": (lambda a: T.log(1 + T.sqr(a)), lambda b: math.log1p(b * b)),
    "softplus_by_hand": (lambda a: T.log(1 + T.exp(a)), lambda b: b + 1.0),
    "sigmoid_by_hand": (lambda a: 1 / (1 + T.exp(-a)), lambda b: 1.0),
    "expm1_by_hand": (lambda a: T.exp(T.tanh(a)) - 1, lambda b: math.e),
    "square": (lambda a: a ** 2, lambda b: b * b),
    "root": (lambda a: (1 + T.sqr(a)) ** 0.5, lambda b: math.sqrt(1 + b * b)),
    "reciprocal": (lambda a: (2 + T.tanh(a)) ** -1, lambda b: 1.0),
    "plus_consts": (lambda a: (a + 1.5) - 0.5, lambda b: b + 2.0),
    "times_consts": (lambda a: (a * 2.0) * -0.25, lambda b: b / 2),
    "self_minus": (lambda a: a - a + T.tanh(a), lambda b: 1.0),
    "exp_ratio": (lambda a: T.exp(a) / T.exp(a), lambda b: 1.0),
    "center": (lambda a: a - T.mean(a, axis=-1, keepdims=True), lambda b: 2 * b),
    "normalize": (lambda a: a / (1 + T.sqr(a).sum(axis=-1, keepdims=True)), lambda b: b),
    "softmax_by_hand": (lambda a: T.exp(T.tanh(a)) / T.exp(T.tanh(a)).sum(axis=-1,
                                                                           keepdims=True),
                        lambda b: 1.0),
    "log_softmax": (lambda a: T.log(T.nnet.softmax(a)), lambda b: 2 * b + 3),
    "softmax_of_exp": (lambda a: T.exp(a) / T.exp(a).sum(axis=-1, keepdims=True),
                       lambda b: 1.0),
    "logsumexp_by_hand": (lambda a: T.log(T.exp(a).sum(axis=-1, keepdims=True)),
                          lambda b: b + 2.0),
    # (its gradient divides by the picked softmax: scatter_cancel)
    "log_softmax_pick": (lambda a: T.log(T.nnet.softmax(a)[..., :1]), lambda b: 2 * b + 3),
}

# name -> (build(a, b), bound after(ba, bb))
BINARY = {
    "add": (lambda a, b: a + b, lambda x, y: x + y),
    "sub": (lambda a, b: a - b, lambda x, y: x + y),
    "mul": (lambda a, b: a * b, lambda x, y: x * y),
    "div_positive": (lambda a, b: a / (1 + T.sqr(b)), lambda x, y: x),
    "div_sigmoid": (lambda a, b: a * T.sigmoid(b) / T.sigmoid(b), lambda x, y: x),
    "cancel_other": (lambda a, b: (a + b) - b, lambda x, y: x + 2 * y),
    "maximum": (lambda a, b: T.maximum(a, b), max),
    # (logit a, target b; its gradient is what sigmoid_pair rewrites. tanh
    # bounds it: a huge value times a huge target overflows in K * y, where
    # products are rebuilt numerators first; see ARCHITECTURE.md)
    "binary_xent": (lambda a, b: T.tanh(-b * T.log(T.sigmoid(a))
                                        - (1 - b) * T.log(1 - T.sigmoid(a))),
                    lambda x, y: 1.0),
}


def _squash(var, bound):
    if bound <= LIMIT:
        return var, bound
    return var * (LIMIT / bound), LIMIT


@st.composite
def rewritable(draw, inputs, max_steps=6):
    pool = [(v, 3.0) for v in inputs]
    result = None
    for _ in range(draw(st.integers(1, max_steps))):
        a, ba = draw(st.sampled_from(pool))
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(UNARY)))
            build, bound = UNARY[name]
            new = (build(a), bound(ba))
        else:
            b, bb = draw(st.sampled_from(pool))
            name = draw(st.sampled_from(sorted(BINARY)))
            build, bound = BINARY[name]
            new = (build(a, b), bound(ba, bb))
        new = _squash(*new)
        pool.append(new)
        result = new[0]
    return result


def _compile_both(inputs, outputs):
    fast = tg.function(inputs, outputs, mode="fast_run", on_unused_input="ignore")
    ref = tg.function(inputs, outputs, mode="None", on_unused_input="ignore")
    return fast, ref


def _agree(inputs, out, values):
    note(f"expression: {tg.pp(out)}")
    cost = (out * T.cos(0.7 * out + 0.1)).sum()
    wrt = [v for v in inputs if v.dtype[0] == "f"]
    grads = tg.grad(cost, wrt, disconnected_inputs="ignore")
    fast, ref = _compile_both(inputs, [out] + list(grads))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fast(*values)
        expected = ref(*values)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        tol = 1e-4 if g.dtype == np.float32 else 1e-9
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


X, Y, M = T.dvector("x"), T.dvector("y"), T.dmatrix("m")


def _values(rng, y_length):
    return [rng.uniform(-3, 3, size=3), rng.uniform(-3, 3, size=y_length),
            rng.uniform(-3, 3, size=(2, 3))]


@SETTINGS
@given(rewritable([X, Y, M]), st.integers(0, 2 ** 32 - 1), st.sampled_from([1, 3]))
def test_rewritable_graphs_agree(out, seed, y_length):
    rng = np.random.default_rng(seed)
    _agree([X, Y, M], out, _values(rng, y_length))


@SETTINGS
@given(tgst.expressions([X, Y, M], shapes=[(3,), (3,), (2, 3)], max_depth=3),
       st.integers(0, 2 ** 32 - 1))
def test_random_expressions_agree(out, seed):
    rng = np.random.default_rng(seed)
    _agree([X, Y, M], out, _values(rng, 3))


# ------------------------------------------------------------ IEEE special values
# Default rewrites keep what a NaN or inf input gives (API.md): NaN positions,
# inf positions and signs are compared as values. A rewrite may replace an
# intermediate overflow or underflow with the right value, which the naive
# reference gets wrong even where it stays finite (maximum(m, log(1 -
# sigmoid(1e307))) is m there: log(0) = -inf), so where an input is huge
# (finite, > 1e100) the rewritten graph must only be finite wherever the
# reference is (folding x * 1e200 * 1e200 into x * inf is not).
SPECIAL_SETTINGS = settings(max_examples=100, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.data_too_large])


def _special_values(data, y_length):
    # One kind of special value per example. Huge values: less is compared.
    # Tiny ones not next to inf: a rewrite computing a tiny value more
    # accurately (expm1(5e-324) against exp(5e-324) - 1 = 0) rightly turns
    # NumPy's inf * 0 = NaN into inf.
    kind = data.draw(st.sampled_from(tgst.SPECIAL_KINDS))
    elements = tgst.special_floats(kinds=[kind])
    shapes = [(3,), (y_length,), (2, 3)]
    return [data.draw(tgst.arrays("float64", shape, elements=elements)) for shape in shapes]


def _reads(out, keys, reductions=()):
    """Whether the graph of ``out`` has an op of key in ``keys`` or a
    reduction of kind in ``reductions``."""
    from tracegrad.ops.reduce import Reduce
    from tracegrad.rewrite.pattern import op_key
    from tracegrad.trace import toposort
    return any(op_key(n.op) in keys or isinstance(n.op, Reduce) and n.op.kind in reductions
               for n in toposort([out]))


def _agree_ieee(inputs, out, values):
    note(f"expression: {tg.pp(out)}")
    note(f"values: {values}")
    huge = any(bool(np.any(np.isfinite(v) & (np.abs(v) > 1e100))) for v in values)
    # (at the exact ties special values make, 0 against a tiny value a more
    # accurate rewrite computes instead of 0, kinks rightly differ in slope)
    kinks = _reads(out, ("abs", "maximum", "minimum"), ("max", "min"))
    cost = out.sum() if huge else (out * T.cos(0.7 * out + 0.1)).sum()
    grads = [] if kinks else tg.grad(cost, inputs, disconnected_inputs="ignore")
    fast, ref = _compile_both(inputs, [out] + list(grads))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fast(*values)
        expected = ref(*values)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape
        what = "output" if k == 0 else f"gradient {k - 1}"
        if not huge:
            tgst.assert_same_ieee(g, e, err_msg=what)
            continue
        finite = np.isfinite(e)
        assert np.isfinite(g[finite]).all(), f"{what}: {g} where the reference is {e}"


@SPECIAL_SETTINGS
@given(rewritable([X, Y, M]), st.data(), st.sampled_from([1, 3]))
def test_rewritable_graphs_keep_special_values(out, data, y_length):
    _agree_ieee([X, Y, M], out, _special_values(data, y_length))


@SPECIAL_SETTINGS
@given(tgst.expressions([X, Y, M], shapes=[(3,), (3,), (2, 3)], max_depth=3), st.data())
def test_random_expressions_keep_special_values(out, data):
    _agree_ieee([X, Y, M], out, _special_values(data, 3))


# The stability rules over gradients (sigmoid_pair, scatter_cancel) see a
# special value only when it meets a rare graph above, and then mostly
# behind a NaN of the forward value: these draw gradients themselves.
def _xent(a, b):
    return -b * T.log(T.sigmoid(a)) - (1 - b) * T.log(1 - T.sigmoid(a))


STABILITY = {
    "binary_xent": lambda x, y, m: tg.grad(_xent(x, y).sum(), x),
    "binary_xent_rows": lambda x, y, m: tg.grad((_xent(m, y) * x).sum(), m),
    "log_softmax_pick": lambda x, y, m: tg.grad(
        (UNARY["log_softmax_pick"][0](m) * y[:1]).sum(), m),
    "log_softmax_pick_vector": lambda x, y, m: tg.grad(
        UNARY["log_softmax_pick"][0](x).sum() * y[0], x),
}


@SPECIAL_SETTINGS
@given(st.sampled_from(sorted(STABILITY)), st.data(), st.sampled_from([1, 3]))
def test_stability_gradients_keep_special_values(name, data, y_length):
    _agree_ieee([X, Y, M], STABILITY[name](X, Y, M), _special_values(data, y_length))
