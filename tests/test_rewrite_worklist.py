"""The rewrite engine's worklist (``engine.WORKLIST``): skipping the rules a
node's token says leave it unchanged must not change what the rewrites do.

Each graph (and its gradient) is optimised twice, with the worklist and with
every rule run on every node in every pass, and the two results must be the
same graph: same ops, same wiring, same constants, in the same order.
"""
import collections
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.rewrite import engine, optimize_outputs
from tracegrad.testing import strategies as tgst
from tracegrad.trace import Constant, toposort

from tests.test_rewrite_hypothesis import rewritable


def _structure(outputs):
    """The graph of ``outputs`` as plain data (variables numbered in order)."""
    ids = {}

    def ident(var):
        if var not in ids:
            if isinstance(var, Constant):
                ids[var] = ("const", str(var.type), repr(var.signature()))
            else:
                ids[var] = ("var", len(ids), str(var.type))
        return ids[var]

    rows = [(repr(node.op), tuple(ident(v) for v in node.inputs))
            for node in toposort(outputs)]
    return rows, [ident(v) for v in outputs]


@contextmanager
def _worklist(on):
    saved = engine.WORKLIST
    engine.WORKLIST = on
    try:
        yield
    finally:
        engine.WORKLIST = saved


def _optimized(outputs, mode, worklist, stats=None):
    with _worklist(worklist):
        return _structure(optimize_outputs(outputs, mode, stats=stats))


def _assert_same(outputs, mode="fast_run"):
    with_list = _optimized(outputs, mode, True)
    every_node = _optimized(outputs, mode, False)
    assert with_list == every_node


def _with_grad(cost, wrt):
    return [cost] + list(tg.grad(cost, wrt, disconnected_inputs="ignore"))


def test_indexed_sum_and_its_gradient():
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(40))
    _assert_same(_with_grad(cost, [x]))


def test_chain_and_its_gradient():
    x = T.dvector("x")
    y = x
    for _ in range(60):
        y = T.sin(y) * 1.0001 + 0.1
    _assert_same(_with_grad(T.sum(y), [x]))


def test_scalar_inputs_and_their_gradients():
    x = T.dvector("x")
    ws = [T.dscalar(f"w{i}") for i in range(20)]
    cost = sum(T.sum(T.exp(w * x)) for w in ws)
    _assert_same(_with_grad(cost, ws))


def test_stability_forms_across_phases():
    # rules that depend on the active groups (the product rule distributes
    # and applies factor rules only under 'stabilize'), readers asked about
    # (softmax next to log_softmax, flat sums and products), cancellations
    x, y = T.dvector("x"), T.dvector("y")
    m = T.dmatrix("m")
    sm = T.nnet.softmax(m)
    outs = [T.log(1 + T.exp(x)), 1 - T.sigmoid(x) * 1.0, T.exp(x) - 1,
            T.log(T.sigmoid(x)) + T.log(1 - T.sigmoid(y)), x * x * 2.0 - x * x,
            T.log(sm), T.nnet.log_softmax(m) + sm,
            (x * 2.0) * (y / 2.0) + (x + 1.0) - 1.0, T.sqrt(T.sqr(x) + 1) ** 2]
    cost = sum(T.sum(o) for o in outs)
    for mode in ("fast_run", "fast_math", "fast_compile", ("canonicalize",)):
        _assert_same(_with_grad(cost, [x, y, m]), mode)


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
X, Y, M = T.dvector("x"), T.dvector("y"), T.dmatrix("m")


@SETTINGS
@given(rewritable([X, Y, M]))
def test_rewritable_graphs(out):
    _assert_same(_with_grad(T.sum(out), [X, Y, M]))


@SETTINGS
@given(tgst.expressions([X, Y, M], shapes=[(3,), (3,), (2, 3)], max_depth=3))
def test_random_expressions(out):
    _assert_same(_with_grad(T.sum(out), [X, Y, M]))


def test_the_worklist_skips_rules_already_run(monkeypatch):
    """On a chain and its gradient most nodes are left alone by the later
    passes and phases: the worklist runs far fewer rules (the guard for
    compile time, `python -m bench --only W7`)."""
    calls = collections.Counter()
    original = engine._visit

    def counting(graph, node, rules, ctx, stats):
        calls[engine.WORKLIST] += len(rules)
        return original(graph, node, rules, ctx, stats)

    monkeypatch.setattr(engine, "_visit", counting)
    x = T.dvector("x")
    y = x
    for _ in range(100):
        y = T.sin(y) * 1.0001 + 0.1
    outputs = _with_grad(T.sum(y), [x])
    stats = {True: {}, False: {}}
    results = [_optimized(outputs, "fast_run", w, stats[w]) for w in (True, False)]
    assert results[0] == results[1]
    assert {k: v for k, v in stats[True].items() if not k.startswith("time:")} == \
        {k: v for k, v in stats[False].items() if not k.startswith("time:")}
    assert calls[True] < 0.6 * calls[False], calls  # (0.55 when written)


def _rewrite_two_phases(monkeypatch, worklist):
    """``exp(sin(cos(x)))``: phase 1 runs a rule on ``exp`` that looks two
    nodes up (for a ``tan``) without asking for readers; phase 2 also turns
    ``cos`` into ``tan``, a change above ``exp`` but not of its input."""
    from tracegrad.rewrite.engine import Rule
    from tracegrad.rewrite.graph import RewriteGraph
    from tracegrad.trace import clone_graph

    def exp_of_sin_of_tan(node, ctx):
        inner = node.inputs[0].owner
        top = inner.inputs[0].owner if inner is not None else None
        if top is not None and engine.op_key(top.op) == "tan":
            return T.cosh(node.inputs[0])
        return None

    monkeypatch.setitem(engine.GROUPS, "test_worklist_1",
                        [Rule("exp_of_sin_of_tan", ["exp"], exp_of_sin_of_tan)])
    monkeypatch.setitem(engine.GROUPS, "test_worklist_2",
                        [Rule("cos_to_tan", ["cos"], lambda node, ctx: T.tan(node.inputs[0]))])
    x = T.dvector("x")
    _, outputs, _ = clone_graph([T.exp(T.sin(T.cos(x)))])
    graph = RewriteGraph(outputs)
    with _worklist(worklist):
        engine.run_phase(graph, ("test_worklist_1",))
        engine.run_phase(graph, ("test_worklist_1", "test_worklist_2"))
    return [str(node.op) for node in toposort(graph.outputs)]


def test_a_change_above_a_node_reruns_its_rules(monkeypatch):
    ops = _rewrite_two_phases(monkeypatch, True)
    assert ops == _rewrite_two_phases(monkeypatch, False)
    assert ops == ["tan", "sin", "cosh"]


def test_rules_see_the_active_groups_as_a_set():
    groups = engine._Groups(frozenset({"canonicalize", "stabilize"}))
    assert "stabilize" in groups and "specialize" not in groups
    assert groups.asked == {("stabilize", True), ("specialize", False)}
    groups.asked = None
    assert groups | {"x"} == {"canonicalize", "stabilize", "x"}
    assert groups.issubset({"canonicalize", "stabilize", "specialize"})
    assert sorted(groups) == ["canonicalize", "stabilize"] and len(groups) == 2
    # a rule that read the whole set holds only under the same set
    assert groups.asked == {("*", frozenset({"canonicalize", "stabilize"}))}


def test_a_pass_after_a_clean_walk_skims_and_changes_nothing(monkeypatch):
    # A pass that follows a pass without an edit (the next phase's first
    # pass, mostly) starts from the latest changes that walk found
    # (``engine._skim``): it must leave the same graph, with the same rules
    # fired, as a pass that works them out again; and it must happen.
    x, y = T.dvector("x"), T.dvector("y")
    chain = x
    for _ in range(30):
        chain = T.sin(chain) * 1.0001 + 0.1
    costs = [T.sum(chain), sum(T.sin(x[i]) * i for i in range(30)),
             T.sum(T.log(1 + T.exp(x)) + T.log(T.sigmoid(y)) * x)]
    skim = engine._skim
    outcomes = collections.Counter()

    def counting(graph, plans, ctx, stats, order):
        result = skim(graph, plans, ctx, stats, order)
        if graph.walked is not None and graph.walked[0] == graph.epoch:
            outcomes["switched" if result[1] else "skimmed all"] += 1
        return result

    def full_walk(graph, plans, ctx, stats, order):
        return {}, collections.deque(order), 0, True
    for cost in costs:
        outputs = _with_grad(cost, [x, y])
        found = []
        for variant in (counting, full_walk):
            monkeypatch.setattr(engine, "_skim", variant)
            stats = {}
            found.append((_optimized(outputs, "fast_run", True, stats),
                          {k: v for k, v in stats.items() if not k.startswith("time:")}))
        assert found[0] == found[1]
    assert outcomes["skimmed all"] >= len(costs)


def _canonicalize_runs(monkeypatch, outputs):
    """The rules run in each canonicalize pass (a Counter per pass) while
    ``outputs`` are optimised with the worklist, and the result."""
    passes = []
    visit, one_pass = engine._visit, engine._pass

    def counting_pass(graph, plans, ctx, stats, budget):
        passes.append((sorted(ctx.active), collections.Counter()))
        return one_pass(graph, plans, ctx, stats, budget)

    def counting_visit(graph, node, rules, ctx, stats):
        passes[-1][1].update(rule.name for rule in rules)
        return visit(graph, node, rules, ctx, stats)
    monkeypatch.setattr(engine, "_pass", counting_pass)
    monkeypatch.setattr(engine, "_visit", counting_visit)
    optimized = _optimized(outputs, "fast_run", True)
    monkeypatch.setattr(engine, "_pass", one_pass)
    monkeypatch.setattr(engine, "_visit", visit)
    return [runs for groups, runs in passes if groups == ["canonicalize", "constant_fold"]], \
        optimized


def _chain_gradient():
    x = T.dvector("x")
    y = x
    for _ in range(20):
        y = T.sin(y) * 1.0001 + 0.1
    return _with_grad(T.sum(y), [x])


def test_a_change_of_readers_reruns_only_the_rules_that_asked_for_them(monkeypatch):
    # On a chain's gradient the canonicalize phase removes ``SumTo`` nodes
    # that read forward values for their shape. A rule that asked for those
    # values' readers and cannot tell what it read of them (here the product
    # and sum rules with their ``Rule.readers`` taken away) runs again in the
    # next pass; the rules that did not ask (constant folding) keep their
    # place in the node's token and do not.
    from tracegrad.rewrite import canonicalize
    outputs = _chain_gradient()
    for rule in engine.GROUPS["canonicalize"]:
        if rule.fn in (canonicalize.simplify_product, canonicalize.simplify_sum):
            monkeypatch.setattr(rule, "readers", None)
    canonicalize_passes, optimized = _canonicalize_runs(monkeypatch, outputs)
    assert len(canonicalize_passes) == 2
    again = canonicalize_passes[1]
    assert again["product"] > 0 and again["sum"] > 0 and again["constant_fold"] == 0
    monkeypatch.undo()
    assert optimized == _optimized(outputs, "fast_run", False)


def test_rules_that_tell_what_they_read_of_readers_do_not_run_again(monkeypatch):
    # With ``Rule.readers`` the product and sum rules are asked, once the
    # ``SumTo`` removal is over, whether they would still stop where they
    # did (a product now part of a larger one; a sum whose readers still
    # make it a root and whose tree counts are unchanged): they would, so
    # canonicalize ends after one pass, every rule run once per node, and
    # the graph is the one the full walk makes.
    outputs = _chain_gradient()
    canonicalize_passes, optimized = _canonicalize_runs(monkeypatch, outputs)
    assert len(canonicalize_passes) == 1
    assert canonicalize_passes[0]["product"] > 0 and canonicalize_passes[0]["sum"] > 0
    assert optimized == _optimized(outputs, "fast_run", False)


def test_a_rule_runs_again_when_what_it_read_of_readers_changes():
    from tracegrad.rewrite.graph import RewriteGraph
    x = T.dvector("x")
    out = T.exp(x) * 2.0
    graph = RewriteGraph([out])
    node = out.owner
    answer = {"now": True}
    rule = engine.Rule("fake", ["mul"], lambda n, c: None,
                       readers=lambda n, c: c.clients(n.outputs[0]) and answer["now"])
    ctx = engine.Context(graph, ["canonicalize"])

    def run_and_change(recorded, now, counted=False):
        """The rule's run recorded ``recorded`` and watched the readers of
        ``x`` (counted or not); they change; ``readers`` now says ``now``.
        Whether the token still holds the rule after the recheck."""
        ctx.node, ctx.rule = node, rule
        ctx.answer(recorded)
        if counted:
            ctx.n_clients(x)
        else:
            ctx.clients(x)
        graph.tokens[node] = (frozenset({rule}), graph.epoch, None)
        graph._readers_changed(x)
        answer["now"] = now
        graph.recheck(ctx)
        return rule in graph.tokens[node][0]

    assert run_and_change(True, True)  # same answer: the run would find the same
    assert not run_and_change(False, True)  # e.g. became the root of its tree
    assert run_and_change(True, None)  # None: it returns at once
    assert not run_and_change(True, True, counted=True)  # a count inside the tree changed
