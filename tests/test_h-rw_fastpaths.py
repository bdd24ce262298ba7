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
from tracegrad.rewrite.graph import RewriteGraph
from tracegrad.testing import strategies as tgst
from tracegrad.trace import toposort

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


@pytest.fixture
def walked_orders(monkeypatch):
    """Every order the rewrite graph gives (kept, or filtered after a
    ``replace`` that only dropped a node) checked against a fresh walk;
    the number of orders it gave without walking."""
    original = RewriteGraph.toposort
    kept = []

    def checking(self):
        known = self._order is not None
        order = original(self)
        assert order == toposort(self.outputs)
        kept.append(known)
        return order

    monkeypatch.setattr(RewriteGraph, "toposort", checking)
    return kept


def test_kept_orders_are_the_walk(walked_orders):
    x, y = T.dvector("x"), T.dvector("y")
    cost = sum(T.sin(x[i]) * i for i in range(30)) + T.sum(x * 1.0 * y + (y - y) * 2.0)
    outs = _with_grad(cost, [x, y]) + [x * 1.0, T.exp(x) * -1.0, T.sum(x * 1.0 + x)]
    for mode in MODES:
        optimize_outputs(outs, mode)
    assert sum(walked_orders) > 0


def _replaced(outputs, pick):
    """A rewrite graph over ``outputs`` after ``replace(old, new)``,
    ``(old, new) = pick(graph)``, its order asked before and after."""
    graph = RewriteGraph(outputs)
    graph.toposort()
    graph.replace(*pick(graph))
    return graph


def test_orders_after_a_replace(walked_orders):
    x = T.dvector("x")
    s, c = T.sin(x), T.cos(x)
    one = s * 1.0
    # ``s * 1 -> s``: the order without the product's node, not walked again
    graph = _replaced([T.exp(one), c * 2.0], lambda g: (g.outputs[0].owner.inputs[0], s))
    assert one.owner not in graph.toposort() and walked_orders[-1]
    # ``s * c`` replaced by ``s`` (the order's logic, not a rewrite):
    # ``c``'s node was reached through the pruned product first and is read
    # later, so the order changes beyond the pruned node
    graph = _replaced([T.exp(s * c), c * 2.0], lambda g: (g.outputs[0].owner.inputs[0], s))
    graph.toposort()
    assert not walked_orders[-1]


@SETTINGS
@given(rewritable([X, Y, M]))
def test_kept_orders_of_rewritable_graphs(walked_orders, out):
    optimize_outputs(_with_grad(T.sum(out), [X, Y, M]), "fast_run")
