"""Structural checks of the compile-time mechanisms that keep compiling
near-linear in graph size (issue 14). None is timed: each checks that a
cheaper mechanism gives what the straightforward one gave, and that the
data it keeps stays small."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile import schedule


def _sum_indexed(n):
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(n))
    return x, cost, tg.grad(cost, x)


def _full_closure(fgraph, order):
    """The alias sets as ``_alias_roots`` kept them before: every variable a
    value may be a view of, through each chain of views."""
    roots = {v: frozenset((v,)) for v in fgraph.variables if v.owner is None}
    for node in order:
        for k, out in enumerate(node.outputs):
            srcs = list(node.op.view_map.get(k, ())) + list(node.op.destroy_map.get(k, ()))
            r = {out}
            for j in srcs:
                r |= roots[node.inputs[j]]
            roots[out] = frozenset(r)
    return roots


def _view_graph():
    m = T.dmatrix("m")
    s = tg.shared(np.ones((3, 3)), name="s")
    t = T.exp(m)
    u = T.set_subtensor(t[0], 1.0)
    outs = [u.T * 2.0, (t + s)[1:], T.inc_subtensor(u[1:], 2.0), m.T, s[0] * 3.0]
    return tg.function([m], outs, updates={s: s * 2.0 + u})


# ------------------------------------------------------------ alias roots
def _set_chain(n):
    v = T.dvector("v")
    x = T.zeros((n + 5,))
    for i in range(n):
        x = T.set_subtensor(x[i], v[i] * 2.0)
    return v, x


def test_alias_roots_stay_small_on_a_chain_of_in_place_updates():
    v, x = _set_chain(60)
    f = tg.function([v], x)
    fgraph = f.maker.fgraph
    order = fgraph.toposort()
    assert sum(bool(n.op.destroy_map) for n in order) >= 59  # the chain is in place
    roots, _ = schedule._alias_roots(fgraph, order)
    assert max(len(r) for r in roots.values()) == 1
    assert max(len(r) for r in _full_closure(fgraph, order).values()) > 59
    np.testing.assert_allclose(f(np.arange(60.0)), np.r_[np.arange(60.0) * 2, np.zeros(5)])


def test_alias_roots_meet_exactly_where_the_full_alias_sets_did():
    v, x = _set_chain(12)
    for f in (_view_graph(), tg.function([v], x)):
        fgraph = f.maker.fgraph
        order = fgraph.toposort()
        roots, _ = schedule._alias_roots(fgraph, order)
        full = _full_closure(fgraph, order)
        variables = list(full)
        for a in variables:
            assert schedule._view_closure(a) == full[a]
            assert roots[a] <= full[a]
            for b in variables:
                assert bool(roots[a] & roots[b]) == bool(full[a] & full[b])


def test_view_graph_still_computes_what_mode_none_computes():
    m = np.arange(9.0).reshape(3, 3) / 10
    got = _view_graph()(m)
    s = tg.shared(np.ones((3, 3)), name="s")
    mm = T.dmatrix("m")
    t = T.exp(mm)
    u = T.set_subtensor(t[0], 1.0)
    ref = tg.function([mm], [u.T * 2.0, (t + s)[1:], T.inc_subtensor(u[1:], 2.0), mm.T,
                             s[0] * 3.0], mode="None")(m)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-14)


# ------------------------------------------------------------ rewriting in place
def _structure(fgraph):
    """The graph as text: nodes in run order, each with what it reads, and
    every variable's clients (their order too) by position."""
    from tracegrad.trace import Constant
    ids = {v: f"in{i}" for i, v in enumerate(fgraph.inputs)}
    lines = []
    for k, node in enumerate(fgraph.toposort()):
        for j, out in enumerate(node.outputs):
            ids[out] = f"n{k}.{j}"
        lines.append(f"{node.op} {[ids.get(i, str(i) if isinstance(i, Constant) else '?') for i in node.inputs]}")
    def client_ids(v):
        return [(c if c == "output" else ids[c.outputs[0]], i) for c, i in fgraph.clients[v]]
    for v in sorted((v for v in fgraph.variables if v in ids), key=lambda v: ids[v]):
        lines.append(f"{ids[v]}: {client_ids(v)}")
    # constants (no position of their own): as a multiset, by value and readers
    lines += sorted(f"{v.type} {np.asarray(v.data).tobytes().hex()}: {client_ids(v)}"
                    for v in fgraph.variables if v not in ids)
    lines.append(f"out {[ids.get(o, str(o)) for o in fgraph.outputs]}")
    return lines


def _rewritten(outputs_of, in_place):
    from tracegrad.compile import pipeline
    from tracegrad.compile.fgraph import FunctionGraph
    inputs, outputs = outputs_of()
    fgraph = FunctionGraph(inputs, outputs, clone=True)
    if not in_place:
        fgraph._owns_nodes = False   # (the copy-and-replace path)
    assert fgraph.edits_in_place() is in_place
    pipeline.rewrite(fgraph, "fast_run")
    if in_place:
        # the rewriter hands over its nodes (the index waits): they must be
        # the nodes computing the outputs (``check_integrity`` would build
        # the index, and with it ``apply_nodes``, again)
        from tracegrad.trace import toposort
        assert "_deferred" in fgraph.__dict__
        assert fgraph.apply_nodes == set(toposort(fgraph.outputs, blockers=fgraph.inputs))
    fgraph.check_integrity()
    return fgraph


def _graphs():
    def summed():
        x, cost, g = _sum_indexed(20)
        return [x], [cost, g, cost]        # (an output listed twice)

    def mixed():
        x = T.dvector("x")
        y = T.dmatrix("y")
        e = T.exp(x) * 2.0
        return [x, y], [T.log(1 + T.exp(x)), (y * e).sum(axis=0), e, x, T.constant(3.0)]
    return [summed, mixed]


def test_rewriting_in_place_leaves_the_graph_the_copy_would():
    for outputs_of in _graphs():
        assert _structure(_rewritten(outputs_of, True)) == \
            _structure(_rewritten(outputs_of, False))


def test_a_graph_over_the_users_nodes_is_rewritten_on_a_copy():
    from tracegrad.compile import pipeline
    from tracegrad.compile.fgraph import FunctionGraph
    x = T.dvector("x")
    y = (x * 2.0) * 3.0
    node, inputs = y.owner, list(y.owner.inputs)
    fgraph = FunctionGraph([x], [y], clone=False)
    assert not fgraph.edits_in_place()
    pipeline.rewrite(fgraph, "fast_run")
    assert y.owner is node and node.inputs == inputs   # the user's graph is untouched
    assert fgraph.outputs[0] is not y
    fgraph.check_integrity()


def test_a_listener_gets_per_edit_events_so_the_graph_is_rewritten_on_a_copy():
    from tracegrad.compile import pipeline
    from tracegrad.compile.fgraph import FunctionGraph
    x = T.dvector("x")
    fgraph = FunctionGraph([x], [(x * 2.0) * 3.0 + 0.0])
    assert fgraph.clone().edits_in_place()
    events = []

    class Listener:
        def on_prune(self, fgraph, node, reason):
            events.append(reason)
    fgraph.attach_listener(Listener())
    assert not fgraph.edits_in_place()
    pipeline.rewrite(fgraph, "fast_run")
    assert "rewrite" in events


def test_reset_outputs_checks_what_it_is_given():
    from tracegrad.compile.fgraph import FunctionGraph
    x = T.dvector("x")
    fgraph = FunctionGraph([x], [T.exp(x)])
    with pytest.raises(ValueError, match="2 outputs for a graph of 1"):
        fgraph.reset_outputs([fgraph.inputs[0], fgraph.inputs[0]])
    with pytest.raises(TypeError, match="cannot replace"):
        fgraph.reset_outputs([T.constant(1.0)])
    old = fgraph.outputs[0]
    fgraph.reset_outputs([T.log(fgraph.inputs[0])])
    fgraph.check_integrity()
    assert old not in fgraph.variables and old.owner not in fgraph.apply_nodes
    fgraph.replace(old, fgraph.outputs[0])   # a removed variable: nothing to do


def test_every_op_table_graph_is_rewritten_in_place_as_on_a_copy():
    import warnings
    import test_op_declarations as tod
    rng = np.random.default_rng(0)
    n = 0
    for _, case in tod._cases():
        def outputs_of(case=case):
            xs, _, outs = tod._graphs(case, np.random.default_rng(0))
            return xs, outs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert _structure(_rewritten(outputs_of, True)) == \
                _structure(_rewritten(outputs_of, False)), case.name
        n += 1
    assert n > 400 and rng is not None


# ------------------------------------------------------------ group questions
def _rule_runs(monkeypatch, graph_of):
    """``{phase: {rule name: runs}}`` while rewriting ``graph_of()``."""
    from tracegrad.compile import pipeline
    from tracegrad.compile.fgraph import FunctionGraph
    from tracegrad.rewrite import engine
    runs, phase = {}, [None]
    visit, run_phase = engine._visit, engine.run_phase

    def counting_visit(graph, node, rules, ctx, stats):
        for rule in rules:
            runs.setdefault(phase[0], {}).setdefault(rule.name, 0)
            runs[phase[0]][rule.name] += 1
        return visit(graph, node, rules, ctx, stats)

    def naming_run_phase(graph, groups, stats=None):
        phase[0] = groups[-1] if groups else "merge"
        return run_phase(graph, groups, stats)
    monkeypatch.setattr(engine, "_visit", counting_visit)
    monkeypatch.setattr(engine, "run_phase", naming_run_phase)
    inputs, outputs = graph_of()
    pipeline.rewrite(FunctionGraph(inputs, outputs), "fast_run")
    return runs


def test_products_and_sums_no_stabilize_rule_can_touch_are_not_visited_again(monkeypatch):
    def graph_of():
        x, cost, g = _sum_indexed(30)
        return [x], [cost, g]
    runs = _rule_runs(monkeypatch, graph_of)
    assert runs["canonicalize"]["product"] >= 60 and runs["canonicalize"]["sum"] >= 30
    assert "product" not in runs["stabilize"] and "sum" not in runs["stabilize"]


def test_products_and_sums_a_stabilize_rule_may_touch_are_visited_again(monkeypatch):
    def graph_of():
        x = T.dvector("x")
        y = T.dmatrix("y")
        e = T.exp(y)
        return [x, y], [T.exp(x) / (1 + T.exp(x)),                  # sigmoid
                        T.exp(x) - 1.0,                             # expm1
                        e / e.sum(axis=1, keepdims=True),           # softmax
                        (x + 1.0) * (2.0 / (x + 1.0))]              # distribution
    runs = _rule_runs(monkeypatch, graph_of)
    assert runs["stabilize"]["product"] >= 3 and runs["stabilize"]["sum"] >= 1


def _without_finds():
    from tracegrad.rewrite import canonicalize
    return [rule._replace(finds=None) for rule in canonicalize.FACTOR_RULES]


def test_every_op_table_graph_is_rewritten_as_without_the_factor_rules_prechecks(
        monkeypatch):
    import warnings
    import test_op_declarations as tod
    from tracegrad.rewrite import canonicalize
    assert all(rule.finds is not None for rule in canonicalize.FACTOR_RULES)
    with_finds = list(canonicalize.FACTOR_RULES)
    for _, case in tod._cases():
        def outputs_of(case=case):
            xs, _, outs = tod._graphs(case, np.random.default_rng(0))
            return xs, outs
        got = []
        for rules in (with_finds, _without_finds()):
            monkeypatch.setattr(canonicalize, "FACTOR_RULES", rules)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got.append(_structure(_rewritten(outputs_of, True)))
        assert got[0] == got[1], case.name


# ------------------------------------------------------------ threads
def _blocked_calls(monkeypatch, fn, args):
    """The ``nthreads`` of each ``run_blocked`` a call of ``fn`` makes
    (none: the kernels ran as one pass)."""
    from tracegrad.backend import numpy as cpu
    seen = []
    real = cpu.run_blocked

    def spy(fn, slot_dtypes, operands, outs, shape, block, nthreads):
        seen.append(nthreads)
        return real(fn, slot_dtypes, operands, outs, shape, block, nthreads)
    monkeypatch.setattr(cpu, "run_blocked", spy)
    monkeypatch.setattr(cpu, "THREAD_MIN_NS", 1)   # (any element work would pay)
    monkeypatch.setattr(tg.config, "num_threads", 2)
    result = fn(*args)
    fn(*args)
    return seen, result


def test_a_long_kernel_on_few_elements_runs_as_one_pass(monkeypatch):
    x = T.dvector("x")
    y = x
    for _ in range(150):
        y = T.sin(y) * 1.0001 + 0.1
    f = tg.function([x], [T.sum(y), tg.grad(T.sum(y), x)])
    from tracegrad.fuse.op import FusedElemwise
    kernels = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedElemwise)]
    assert max(len(n.op.spec.instrs) for n in kernels) > 500
    xs = np.linspace(0.0, 1.0, 16)
    seen, got = _blocked_calls(monkeypatch, f, [xs])
    assert seen == []
    # without the Python time of the steps in the count, it went to threads
    from tracegrad.backend import numpy as cpu
    monkeypatch.setattr(cpu, "STEP_DISPATCH_NS", 0)
    seen, blocked = _blocked_calls(monkeypatch, f, [xs])
    assert seen and all(n == 2 for n in seen)
    for a, b in zip(got, blocked):   # (the same ufunc calls: the same bits)
        np.testing.assert_array_equal(a, b)


def test_a_short_kernel_on_many_elements_still_uses_threads(monkeypatch, numpy_tier):
    x = T.dvector("x")
    f = tg.function([x], T.exp(x) * 2.0 + 1.0)
    xs = np.linspace(0.0, 1.0, 1 << 20)
    seen, got = _blocked_calls(monkeypatch, f, [xs])
    assert seen and all(n == 2 for n in seen)
    np.testing.assert_array_equal(got, np.exp(xs) * 2.0 + 1.0)


def test_a_merge_cascade_keeps_the_node_it_merges_into():
    # shape(sign(x)) -> shape(x) makes the outer alloc of
    # zeros_like(zeros_like(sign(x))) equal to the inner one just as the
    # inner one loses its last reader: the cascade merges into it, so it
    # must not be pruned (it was, leaving the outputs computed by nodes the
    # rewrite graph no longer held: a wrong node set handed to the graph)
    from tracegrad.rewrite import engine
    from tracegrad.trace import toposort
    x = T.dmatrix("x")
    y = T.zeros_like(T.zeros_like(T.sign(x)))
    graph = engine.build_graph([y])
    engine.optimize_graph(graph, "fast_run")
    assert graph.nodes == set(toposort(graph.outputs)) and len(graph.nodes) == 2
    f = tg.function([x], y)
    assert np.array_equal(f(np.ones((2, 3))), np.zeros((2, 3)))


def test_fills_applied_in_place_leave_the_graph_replacing_would(monkeypatch):
    # Fusion on a graph that owns its nodes re-points the readers of the
    # broadcasts it turns into ``second`` fills itself (no index of readers
    # built for it); ``fgraph.replace`` one fill at a time must leave the
    # same fused graph, readers' order included. The graphs need fills:
    # gradients of sums broadcast their seed.
    from tracegrad.compile import pipeline
    from tracegrad.compile.fgraph import FunctionGraph
    from tracegrad.fuse import rewrite as fuse_rewrite
    x, y = T.dvector("x"), T.dmatrix("y")
    cost = T.tanh(x * 2.0).sum() + (T.exp(y) * x).mean() + T.sqr(x).mean()
    other = (y * T.sin(x)).sum() + (y * x).sum()
    graphs = [([x, y], [cost] + list(tg.grad(cost, [x, y]))),
              ([x, y], [other, T.exp(x) * 2.0] + list(tg.grad(other, [x, y])))]
    apply_fills = fuse_rewrite._apply_fills
    seen = []

    def by_replace(fgraph, fills, order, in_place):
        seen.append((len(fills), in_place, "_deferred" in fgraph.__dict__))
        return apply_fills(fgraph, fills, order, False)
    for inputs, outputs in graphs:
        found = []
        for replacing in (False, True):
            if replacing:
                monkeypatch.setattr(fuse_rewrite, "_apply_fills", by_replace)
            fgraph = FunctionGraph(inputs, outputs, clone=True)
            pipeline.rewrite(fgraph, "fast_run")
            pipeline.fuse(fgraph, "fast_run", "cpu")
            fgraph.check_integrity()
            found.append(_structure(fgraph))
            monkeypatch.undo()
        assert found[0] == found[1]
    # (each graph had fills, on a graph owning its nodes with its index deferred)
    assert len(seen) == len(graphs) and all(n and p and d for n, p, d in seen)
