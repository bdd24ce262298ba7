"""One graph from the clone to the schedule (issue 18): the rewriter edits
the ``FunctionGraph`` itself (its outputs, nodes and ``clients``, one
encoding of an output's reader), and the in-place order is worked out from
the data order the graph already knows."""
import warnings

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile import pipeline
from tracegrad.fgraph import OUTPUT, FunctionGraph
from tracegrad.inplace_order import _must_run_after, _stable_kahn, _view_roots
from tracegrad.rewrite import engine
from tracegrad.rewrite.engine import Rule
from tracegrad.rewrite.graph import RewriteGraph
from tracegrad.trace import toposort


def _graph():
    x, y = T.dvector("x"), T.dvector("y")
    e = T.exp(x) * 2.0
    return [x, y], [T.log(1 + T.exp(x)), (y * e).sum(), e, x, e]


def test_the_rewriter_edits_the_function_graphs_own_index():
    inputs, outputs = _graph()
    fg = FunctionGraph(inputs, outputs)
    clone_nodes = set(fg.apply_nodes)
    graph = engine.build_graph(order=fg.known_order(), graph=fg)
    # the same objects, not copies: one graph
    assert graph.graph is fg
    assert graph.clients is fg.clients and graph.nodes is fg.apply_nodes
    assert graph.outputs is fg.outputs
    readers = fg.clients[fg.outputs[2]]
    assert [c for c in readers if c[0] == OUTPUT] == [(OUTPUT, 2), (OUTPUT, 4)]
    assert len(readers) == 3   # (and the product reading it)
    assert set(fg.variables) == set(fg.clients)
    assert all(v in fg.clients for v in fg.inputs)   # (read or not)
    engine.optimize_graph(graph, "fast_run")
    assert fg.apply_nodes == set(toposort(fg.outputs, blockers=fg.inputs))
    assert graph.finish() is fg
    fg.check_integrity()
    # the nodes the rewrite took out are the removed ones
    gone = clone_nodes - fg.apply_nodes
    assert gone and all(out in fg._removed for node in gone for out in node.outputs)


def test_bare_outputs_are_rewritten_over_a_function_graph():
    x = T.dvector("x")
    out = T.exp(x) * 1.0
    graph = RewriteGraph([out, out])
    assert isinstance(graph.graph, FunctionGraph) and graph.graph.inputs == []
    assert graph.clients is graph.graph.clients
    assert list(graph.client_list(graph.outputs[0])) == [(OUTPUT, 0), (OUTPUT, 1)]
    engine.optimize_graph(graph, "fast_run")
    assert [engine.op_key(n.op) for n in toposort(graph.outputs)] == ["exp"]


def test_rules_read_an_outputs_reader_as_output(monkeypatch):
    seen = []

    def look(node, ctx):
        seen.append(list(ctx.clients(node.outputs[0])))
        return None
    monkeypatch.setitem(engine.GROUPS, "test_one_graph", [Rule("look", ["exp"], look)])
    x = T.dvector("x")
    fg = FunctionGraph([x], [T.exp(x)])
    graph = engine.build_graph(graph=fg)
    engine.run_phase(graph, ("test_one_graph",))
    graph.finish()
    assert seen == [[(OUTPUT, 0)]]


def _kahn(fg):
    plain = toposort(fg.outputs, blockers=fg.inputs)
    return _stable_kahn(plain, _must_run_after(plain, _view_roots(plain)))


def test_the_in_place_order_is_kahns_order_of_the_data_order():
    # ``toposort`` after ``plan_inplace`` starts from the data order it
    # kept, and keeps it when it already runs every overwrite last:
    # Kahn's algorithm over the run-after sets gives the same order.
    x, y = T.dvector("x"), T.dvector("y")
    m = T.dmatrix("m")
    s = tg.shared(np.ones(3), name="s")
    terms = sum(T.sin(x[i]) * i for i in range(5))
    cases = [([x], [terms, tg.grad(terms, x)], None),
             ([x, y], [T.exp(x) * y + 1.0, (x * 2.0).sum(), T.tanh(y) * x], None),
             ([m], [T.nnet.softmax(m), T.dot(m, m.T) + 1.0], None),
             ([x], [T.tanh(x * s).sum()], [(s, s - 0.1 * tg.grad(T.tanh(x * s).sum(), s))])]
    swapped = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for inputs, outputs, updates in cases:
            fg = tg.function(inputs, outputs, updates=updates, mode="fast_run").maker.fgraph
            order = fg.toposort()
            swapped += sum(bool(node.op.destroy_map) for node in order)
            assert order == _kahn(fg)
    assert swapped > 0


def test_an_in_place_swap_keeps_the_data_order(monkeypatch):
    walks = []
    real = FunctionGraph.toposort

    def counting(fg):
        walks.append(fg._plain is None)
        return real(fg)
    monkeypatch.setattr(FunctionGraph, "toposort", counting)
    x = T.dvector("x")
    terms = sum(T.sin(x[i]) * i for i in range(5))
    fg = FunctionGraph([x], [terms, tg.grad(terms, x)])
    pipeline.optimize_graph(fg, "fast_run")
    order = fg.toposort()
    assert any(node.op.destroy_map for node in order)   # (plan_inplace swapped)
    assert walks[-1] is False   # the schedule's order: no second walk
    assert order == _kahn(fg)


def test_a_rewrite_that_raises_still_hands_the_graph_back(monkeypatch):
    import pytest

    def broken(node, ctx):
        raise RuntimeError("a broken rule")
    monkeypatch.setattr(engine, "STRICT", True)
    monkeypatch.setitem(engine.GROUPS, "test_one_graph_broken", [Rule("broken", ["sin"], broken)])
    monkeypatch.setitem(engine.PHASES, "test_one_graph_broken", ("test_one_graph_broken",))
    x = T.dvector("x")
    fg = FunctionGraph([x], [T.sin(T.exp(x) * 1.0)])
    from tracegrad.rewrite import optimize
    with pytest.raises(RuntimeError, match="a broken rule"):
        optimize(fg, ("constant_fold", "canonicalize", "test_one_graph_broken"))
    # handed back: the product by 1.0 the rewrite removed counts as removed
    # (``release_removed`` cuts it), the index is the one a walk builds
    assert any(v.owner is not None and engine.op_key(v.owner.op) == "mul"
               for v in fg._removed)
    fg.check_integrity()
    assert [engine.op_key(n.op) for n in fg.toposort()] == ["exp", "sin"]
