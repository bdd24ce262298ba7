"""``FunctionGraph`` editing, the compile pipeline's stages, and the schedule's
handling of in-place (``destroy_map``) nodes."""
import numpy as np
import pytest

import tracegrad
import tracegrad.tensor as T
from tracegrad import function, shared
from tracegrad.compile import FunctionGraph, MissingInputError, pipeline
from tracegrad.compile.pipeline import resolve_mode
from tracegrad.config import config
from tracegrad.trace import Apply, Op


def test_clone_leaves_user_graph_alone_and_keeps_shared():
    x = T.dvector("x")
    s = shared(np.ones(2), name="s")
    y = x * s
    fg = FunctionGraph([x, s], [y + 1])
    assert fg.inputs[0] is not x and fg.inputs[0].name == "x"
    assert fg.inputs[1] is s
    assert all(node is not y.owner for node in fg.apply_nodes)
    assert len(fg.apply_nodes) == 2
    fg.check_integrity()


def test_clients_replace_and_prune():
    x = T.dvector("x")
    a = x * 2
    b = a + 1
    fg = FunctionGraph([x], [b, a], clone=False)
    assert fg.clients[a] == [(b.owner, 0), ("output", 1)]
    assert fg.clients[b] == [("output", 0)]
    events = []

    class Listener:
        def on_import(self, fgraph, node, reason):
            events.append(("import", node.op.name, reason))

        def on_prune(self, fgraph, node, reason):
            events.append(("prune", node.op.name, reason))

        def on_change_input(self, fgraph, node, i, old, new, reason):
            events.append(("change", i, reason))

    fg.attach_listener(Listener())
    c = x + x
    fg.replace(a, c, reason="test")
    assert fg.outputs[1] is c and b.owner.inputs[0] is c
    assert a not in fg.variables and a.owner not in fg.apply_nodes
    assert ("import", "add", "test") in events and ("prune", "mul", "test") in events
    fg.check_integrity()
    fg.replace(a, c)  # already gone: nothing to do
    with pytest.raises(ValueError, match="not in this graph"):
        fg.replace(T.dvector("other"), c)
    order = fg.toposort()
    assert order.index(c.owner) < order.index(b.owner)


def test_replace_checks_types():
    x = T.dvector("x")
    fg = FunctionGraph([x], [x * 2])
    out = fg.outputs[0]
    with pytest.raises(TypeError, match="cannot replace"):
        fg.replace(out, T.dmatrix("m"))
    with pytest.raises(TypeError, match="cannot replace"):
        fg.replace(out, fg.inputs[0].astype("float32"))
    precise = T.TensorType("float64", (3,))("p")
    with pytest.raises(MissingInputError):
        fg.replace(out, precise)  # type fits, but p is not an input
    fg.replace(out, fg.inputs[0] + 1)
    fg.check_integrity()


def test_update_bookkeeping():
    s = shared(0.0, name="s")
    x = T.dscalar("x")
    fg = FunctionGraph([x, s], [x * 2, s + x], update_targets=[s])
    assert fg.n_user_outputs == 1
    assert fg.user_outputs == fg.outputs[:1]
    (target, value), = fg.update_pairs()
    assert target is s and value is fg.outputs[1]
    assert "FunctionGraph(2 inputs, 2 outputs" in repr(fg)
    copy = fg.clone()
    assert copy.inputs[1] is s and copy.inputs[0] is not fg.inputs[0]
    copy.check_integrity()


def test_resolve_mode():
    assert resolve_mode(None) == config.optimizer
    assert resolve_mode("FAST_COMPILE") == "fast_compile"
    assert resolve_mode(None if False else "None") == "None"
    with pytest.raises(ValueError):
        resolve_mode("o3")


def test_rewrite_stage_gets_the_clone_and_the_mode(monkeypatch):
    seen = []

    def fake_optimize(fgraph, mode):
        seen.append((fgraph, mode))
        out = fgraph.outputs[0]
        fgraph.replace(out, fgraph.inputs[0] * 3)  # a "rewrite"

    monkeypatch.setattr(pipeline, "rewrite_graph", fake_optimize)
    x = T.dscalar("x")
    y = x * 2
    f = function([x], y, mode="fast_compile")
    (fgraph, mode), = seen
    assert mode == "fast_compile" and fgraph is f.maker.fgraph
    assert f(1.0) == 3.0
    assert y.owner.inputs[0] is x  # the user's graph is unchanged
    function([x], y)
    assert seen[-1][1] == config.optimizer


def test_fuse_and_inplace_stages_run_in_fast_run_only(monkeypatch):
    calls = []
    monkeypatch.setattr(pipeline, "fuse_graph", lambda fgraph, target=None: calls.append("fuse"))
    monkeypatch.setattr(pipeline, "plan_inplace_graph", lambda fgraph: calls.append("inplace"))
    x = T.dscalar("x")
    function([x], x * 2, mode="fast_compile")
    assert calls == []
    function([x], x * 2, mode="fast_run")
    assert calls == ["fuse", "inplace"]


class AddInplace(Op):
    """``a += b``, returning ``a``'s buffer."""

    destroy_map = {0: [0]}

    def make_node(self, a, b):
        return Apply(self, [a, b], [a.type()])

    def impl(self, xp, a, b):
        xp.add(a, b, out=a)
        return a


def _plan_add_inplace(fgraph):
    for node in fgraph.toposort():
        if node.op.name == "add" and node.inputs[0].owner is not None:
            fgraph.replace(node.outputs[0], AddInplace()(*node.inputs))


def test_destroyer_runs_after_other_readers(monkeypatch):
    monkeypatch.setattr(pipeline, "fuse_graph", lambda fgraph, target=None: None)
    monkeypatch.setattr(pipeline, "plan_inplace_graph", _plan_add_inplace)
    x, y = T.dvectors("x", "y")
    t = x * 2
    v = t + y   # becomes AddInplace(t, y): overwrites t
    u = t * 3   # must read t before that
    f = function([x, y], [v, u], mode="fast_run")
    order = f.maker.fgraph.toposort()
    names = [node.op.name for node in order]
    assert "AddInplace" in names
    reader = next(n for n in order if n.op.name == "mul" and n.inputs[0].owner is not None)
    assert names.index("AddInplace") > order.index(reader)
    got_v, got_u = f(np.ones(2), np.full(2, 10.0))
    np.testing.assert_array_equal(got_v, [12.0, 12.0])
    np.testing.assert_array_equal(got_u, [6.0, 6.0])


def test_destroying_an_input_or_shared_buffer_is_refused(monkeypatch):
    def plan_everything(fgraph):
        for node in fgraph.toposort():
            if node.op.name == "add":
                fgraph.replace(node.outputs[0], AddInplace()(*node.inputs))

    monkeypatch.setattr(pipeline, "fuse_graph", lambda fgraph, target=None: None)
    monkeypatch.setattr(pipeline, "plan_inplace_graph", plan_everything)
    x, y = T.dvectors("x", "y")
    with pytest.raises(ValueError, match="overwrite the buffer"):
        function([x, y], x + y, mode="fast_run")
    s = shared(np.zeros(2))
    with pytest.raises(ValueError, match="overwrite the buffer"):
        function([y], [], updates=[(s, s + y)], mode="fast_run")


def test_destroying_an_output_is_refused(monkeypatch):
    monkeypatch.setattr(pipeline, "fuse_graph", lambda fgraph, target=None: None)
    monkeypatch.setattr(pipeline, "plan_inplace_graph", _plan_add_inplace)
    x, y = T.dvectors("x", "y")
    t = x * 2
    with pytest.raises(ValueError, match="overwrite the buffer"):
        function([x, y], [t, t + y], mode="fast_run")


def _index_snapshot(fg):
    """The graph's index in a comparable form: nodes in run order (op
    names and input positions), and each variable's readers in order."""
    order = fg.toposort()
    number = {}
    for k, node in enumerate(order):
        for j, out in enumerate(node.outputs):
            number[out] = ("node", k, j)
    for i, var in enumerate(fg.inputs):
        number[var] = ("input", i)

    def name(var):
        return number.get(var, ("leaf", str(var)))

    def reader(client):
        node, i = client
        return ("output", i) if node == "output" else (order.index(node), i)
    nodes = [(node.op.name, [name(v) for v in node.inputs]) for node in order]
    clients = sorted((name(v), [reader(c) for c in fg.clients[v]]) for v in fg.variables)
    return nodes, clients, [name(v) for v in fg.outputs], len(fg.apply_nodes)


def _compile_graphs():
    x, y = T.dvector("x"), T.dvector("y")
    s = shared(np.ones(3), name="s")
    terms = sum(T.sin(x[i]) * i for i in range(6))
    yield [x], [terms, tracegrad.grad(terms, x)], None
    z = T.exp(x) * y + T.log1p(T.exp(x)) - x / x
    yield [x, y], [z, z, (z * 2).sum(), x], None
    yield [x], [T.tanh(x * s).sum()], [(s, s - 0.1 * tracegrad.grad(T.tanh(x * s).sum(), s))]


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile", "None"])
def test_a_deferred_index_is_the_one_an_eager_walk_builds(monkeypatch, mode):
    # The clone, the rewriter and fusion hand their nodes to the graph,
    # which indexes them only when asked (``FunctionGraph._defer_index``):
    # the compiled graph, the order of every client list included, must be
    # the one indexing at once gives.
    from tracegrad.trace import toposort
    graphs = []
    eager_reset = FunctionGraph.reset_outputs
    handed = []

    def checked_reset(fg, outputs, reason=None, nodes=None, order=None):
        # what a pass hands over must be the nodes computing its outputs
        if nodes is not None:
            handed.append(reason)
            assert set(nodes) == set(toposort(outputs, blockers=fg.inputs)), reason
        if order is not None:
            assert list(order) == toposort(outputs, blockers=fg.inputs), reason
        return eager_reset(fg, outputs, reason, nodes, order)
    for defer in (True, False):
        if defer:
            monkeypatch.setattr(FunctionGraph, "reset_outputs", checked_reset)
        else:
            monkeypatch.setattr(FunctionGraph, "reset_outputs",
                                lambda fg, outputs, reason=None, nodes=None, order=None:
                                eager_reset(fg, outputs, reason))
            monkeypatch.setattr(FunctionGraph, "_defer_index",
                                lambda fg, nodes, kept, groups, reason:
                                fg._index_from(kept, groups, reason))
        found = []
        for inputs, outputs, updates in _compile_graphs():
            f = function(inputs, outputs, updates=updates, mode=mode)
            fg = f.maker.fgraph
            fg.check_integrity()
            found.append(_index_snapshot(fg))
        graphs.append(found)
    assert graphs[0] == graphs[1]
    if mode == "fast_run":
        assert "rewrite" in handed and "fusion" in handed


def test_a_missing_input_is_found_by_the_clone():
    x, y = T.dvector("x"), T.dvector("y")
    with pytest.raises(MissingInputError, match="needs y"):
        FunctionGraph([x], [x * 2 + y])
    with pytest.raises(MissingInputError, match="needs y"):
        FunctionGraph([x], [x * 2, y])
