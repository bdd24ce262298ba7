"""The rewrite stage's fast paths give what the general paths give.

Each fast path answers a common case in a few checks (compile time of big
graphs, ``python -m bench --only W7``); here each graph is optimised with
the fast paths and with them turned off (patched to decline), and the two
results must be the same graph, the same rules having fired.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.rewrite import canonicalize, engine, optimize_outputs
from tracegrad.testing import strategies as tgst

from tests.test_rewrite_hypothesis import rewritable
from tests.test_rewrite_worklist import _structure

MODES = ("fast_run", "fast_math", ("canonicalize",))


def _optimized(outputs, mode):
    stats = {}
    result = _structure(optimize_outputs(outputs, mode, stats=stats))
    return result, {k: v for k, v in stats.items() if not k.startswith("time:")}


def _general(monkeypatch):
    """Turn the fast paths off: each declines, the general path runs."""
    monkeypatch.setattr(canonicalize, "_scaling_stays", lambda out, ctx: False)
    for group in engine.GROUPS.values():
        for rule in group:
            if isinstance(rule, engine.PatternRule):
                monkeypatch.setattr(rule, "names", None)  # (the matcher)


def _assert_same(outputs, monkeypatch, modes=MODES):
    for mode in modes:
        fast = _optimized(outputs, mode)
        with monkeypatch.context() as m:
            _general(m)
            general = _optimized(outputs, mode)
        assert fast == general, mode


def _with_grad(cost, wrt):
    return [cost] + list(tg.grad(cost, wrt, disconnected_inputs="ignore"))


X, Y, M = T.dvector("x"), T.dvector("y"), T.dmatrix("m")
F = T.fvector("f")

FACTORS = {
    "input": lambda: X, "sin": lambda: T.sin(X), "exp": lambda: T.exp(X),
    "sum": lambda: X + Y, "difference": lambda: X - Y, "product": lambda: X * Y,
    "quotient": lambda: X / Y, "negation": lambda: -X, "sigmoid": lambda: T.sigmoid(X),
    "guard": lambda: T.switch(T.isnan(X), np.nan, 1.0), "matrix row": lambda: M[0],
    "scatter": lambda: T.inc_subtensor(T.zeros_like(X)[1:], Y[1:]),
    "float32": lambda: T.cast(F, "float64"),
}
CONSTANTS = [2.0, 1.0, -1.0, 0.0, -0.0, np.nan, np.inf, -3.5,
             np.float32(2.0), np.float32(1.0), np.ones(3) * 2.0, np.full((1,), -1.0)]


@pytest.mark.parametrize("factor", sorted(FACTORS))
def test_scalings(factor, monkeypatch):
    x = FACTORS[factor]()
    outs = []
    for c in CONSTANTS:
        outs += [x * c, c * x, (x * c) * Y, T.exp(x * c) / (1 + T.exp(x * c))]
    _assert_same([T.sum(o) for o in outs], monkeypatch)
    _assert_same(_with_grad(sum(T.sum(o) for o in outs), [X, Y]), monkeypatch)


def test_name_only_patterns(monkeypatch):
    outs = [X * X, X * Y, Y * X, (X + 1) * (X + 1), T.cast(F, "float64") * T.cast(F, "float64"),
            T.sqr(X) * T.sqr(X), M * M, M[0] * M[0], X * X * X]
    _assert_same([T.sum(o) for o in outs], monkeypatch)


def test_indexed_sum_and_its_gradient(monkeypatch):
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(40))
    _assert_same(_with_grad(cost, [x]), monkeypatch)


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(rewritable([X, Y, M]))
def test_rewritable_graphs(monkeypatch, out):
    _assert_same(_with_grad(T.sum(out), [X, Y, M]), monkeypatch, ("fast_run",))


@SETTINGS
@given(tgst.expressions([X, Y, M], shapes=[(3,), (3,), (2, 3)], max_depth=3))
def test_random_expressions(monkeypatch, out):
    _assert_same(_with_grad(T.sum(out), [X, Y, M]), monkeypatch, ("fast_run",))
