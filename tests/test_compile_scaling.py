"""Compile stages scale (near) linearly in graph size.

Each scaling test runs one stage on a graph of n and of 4n nodes and checks
the growth of its *work*: Python lines executed plus function calls (Python
and built-in), counted by a tracer, so the figure does not depend on the
machine's load. Linear work gives about 4, the quadratic algorithms these
tests were written against about 16; the bound, 9, leaves room for
O(n log n). Work inside a C routine (``list.remove`` scanning a list) is one
call whatever it scans: the tests that guard such a scan make it visible
(readers whose comparisons are Python calls). Timings live in bench/.
"""
import functools
import gc
import sys
import types

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad import inplace_order
from tracegrad.clientlist import ClientList
from tracegrad.compile import pipeline
from tracegrad.compile.fgraph import FunctionGraph
from tracegrad.fuse import find_clusters, fuse_outputs
from tracegrad.backend.numpy import codegen
from tracegrad.backend.numpy import cpu_program
from tracegrad.backend.numpy.lower import lower
from tracegrad.rewrite import inplace, plan_inplace
from tracegrad.trace import Apply

LINEAR_BOUND = 9.0  # growth for 4x the nodes: ~4 linear, ~16 quadratic


def _work(run, state):
    """Work units of ``run(state)``: Python lines and calls, built-in calls."""
    count = [0]

    def on_line(frame, event, arg):
        count[0] += event == "line"
        return on_line

    def on_call(frame, event, arg):  # (a new Python frame)
        count[0] += 1
        return on_line

    def on_c_call(frame, event, arg):
        count[0] += event == "c_call"
    tracer, profiler = sys.gettrace(), sys.getprofile()
    sys.settrace(on_call)
    sys.setprofile(on_c_call)
    try:
        run(state)
    finally:
        sys.settrace(tracer)
        sys.setprofile(profiler)
    return count[0]


def _growth(setup, run, n):
    """How much more work ``run`` does on ``setup(4 n)`` than on ``setup(n)``
    (``setup`` is not counted)."""
    small = _work(run, setup(n))
    return _work(run, setup(4 * n)) / max(small, 1)


def _linear_toy(n):
    total = 0
    for i in range(n):
        total += i
    return total


def _quadratic_toy(n):
    return sum(_linear_toy(n) for _ in range(n))


def test_the_work_measure_tells_linear_from_quadratic_and_repeats_itself():
    # (the bound the scaling tests use, on functions known to be each)
    assert _growth(lambda n: n, _linear_toy, 300) < 4.1
    assert _growth(lambda n: n, _quadratic_toy, 300) > 1.5 * LINEAR_BOUND
    assert _work(_quadratic_toy, 200) == _work(_quadratic_toy, 200) > 200 ** 2


# ------------------------------------------------------------ clients
def test_client_list_keeps_list_order_and_behaviour():
    a, b, c = object(), object(), object()
    clients = ClientList([(a, 0), (b, 1)])
    clients.append((c, 0))
    clients.remove((b, 1))
    assert clients == [(a, 0), (c, 0)] and len(clients) == 2 and clients[0] == (a, 0)
    assert clients[-1] == (c, 0) and (c, 0) in clients and list(clients) == [(a, 0), (c, 0)]
    try:
        clients.remove((b, 1))
    except ValueError as exc:
        assert "not a client" in str(exc)
    else:
        raise AssertionError("removing an absent client must raise ValueError")


class _ComparedApply(Apply):
    """An ``Apply`` whose ``==`` and hash are Python calls (identity, as
    ``Apply``'s), so that a C-level scan of a list of readers, or a sort
    keyed by a dict of nodes, shows in the work count."""

    __slots__ = ()

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self) >> 4


def _fanout_graph(n):
    """A FunctionGraph where ``c`` is read by n nodes, each an output."""
    x = T.dvector("x")
    c = T.exp(x)
    outs = [T.sin(c) * float(i) for i in range(n)]
    fgraph = FunctionGraph([x], outs)
    c = fgraph.outputs[0].owner.inputs[0].owner.inputs[0]
    for reader, _ in fgraph.clients[c]:
        reader.__class__ = _ComparedApply
    return fgraph, c, list(fgraph.outputs)


def _prune_all_readers(state):
    fgraph, c, outs = state
    for out in reversed(outs):  # each replace prunes ``c``'s last reader
        fgraph.replace(out, c, reason="test")


def test_pruning_the_readers_of_one_variable_is_linear():
    # Removing a reader from a plain list of n readers scanned the list.
    assert _growth(_fanout_graph, _prune_all_readers, 500) < LINEAR_BOUND


def test_pruning_through_a_plain_list_of_readers_shows_as_quadratic(monkeypatch):
    # (the measure sees the scan the test above guards against: ~14 at
    # these sizes, 16 in the limit)
    def scanning_remove(self, pair):
        pairs = list(self)
        pairs.remove(pair)
        self.clear()
        self.update(dict.fromkeys(pairs))
    monkeypatch.setattr(ClientList, "remove", scanning_remove)
    assert _growth(_fanout_graph, _prune_all_readers, 500) > LINEAR_BOUND


# ------------------------------------------------------------ in-place planning
def _gradient_of_indexed_sum(n):
    """The graph of ``grad(sum(sin(x[i]) * i))``: n ``IncSubtensor`` nodes
    reading one buffer of zeros, before in-place planning."""
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(n))
    fgraph = pipeline.clone([x], [tg.grad(cost, x)])
    pipeline.rewrite(fgraph, "fast_run")
    return fgraph


def _plan_and_order(fgraph):
    plan_inplace(fgraph)
    fgraph.toposort()


def test_inplace_planning_of_a_chain_of_increments_is_linear():
    # (``fast_run`` chains the gradient's IncSubtensors: the zeros has one
    # reader and the order needs no re-sort. The graph below has the many
    # readers; this one catches work per question growing with n.)
    assert _growth(_gradient_of_indexed_sum, _plan_and_order, 200) < LINEAR_BOUND


def _many_readers_then_overwrite(n):
    """A FunctionGraph where ``d = exp(x)`` is read by n ``sin`` nodes (each
    an in-place candidate whose planning asks who else reads ``d``) and by
    ``add{inplace}``, which overwrites ``d``. That node is the first output,
    so the data order puts it before the readers it must follow: the order
    of in-place nodes re-sorts (Kahn), with n readers ready at once."""
    x = T.dvector("x")
    d = T.exp(x)
    plus_one = (d + 1.0).owner
    overwrite = plus_one.op.inplace_version(0)(d, plus_one.inputs[1])
    fgraph = FunctionGraph([x], [overwrite] + [T.sin(d) * float(i) for i in range(n)])
    for node in fgraph.apply_nodes:
        node.__class__ = _ComparedApply
    return fgraph


def test_inplace_planning_of_many_readers_of_one_buffer_is_linear():
    # Each candidate rescanned every reader of the shared buffer (O(n^2)),
    # and ordering the destroyers re-sorted the ready list at every step.
    assert _growth(_many_readers_then_overwrite, _plan_and_order, 300) < LINEAR_BOUND
    # (the graph reaches both: no sin may overwrite ``d``, each mul may
    # overwrite its sin; the overwrite of ``d`` runs after every reader)
    fgraph, stats = _many_readers_then_overwrite(20), {}
    plan_inplace(fgraph, stats)
    assert [str(node.op) for node in stats["inplace_nodes"]] == ["mul{inplace}"] * 20
    ops = [str(node.op) for node in fgraph.toposort()]
    assert ops.count("sin") == 20 and ops.count("add{inplace}") == 1
    assert ops.index("add{inplace}") > max(k for k, op in enumerate(ops) if op == "sin")


_CACHED_LAST_READER = inplace._Readers.last_reader


def _uncached_last_reader(self, var):
    self._last.pop(var, None)  # (every question scans the readers again)
    return _CACHED_LAST_READER(self, var)


def _kahn_with_a_sorted_ready_list(order, before):
    """``inplace_order._stable_kahn`` as it was: the ready list re-sorted
    after each push."""
    position, after, pending = inplace_order.kahn_setup(order, before)
    ready = sorted((n for n in order if not pending[n]), key=position.get, reverse=True)
    result = []
    while ready:
        node = ready.pop()
        result.append(node)
        for nxt in after[node]:
            pending[nxt] -= 1
            if not pending[nxt]:
                ready.append(nxt)
                ready.sort(key=position.get, reverse=True)
    return result


@pytest.mark.parametrize("target, name, scan", [
    (inplace._Readers, "last_reader", _uncached_last_reader),
    (inplace_order, "_stable_kahn", _kahn_with_a_sorted_ready_list)])
def test_inplace_planning_with_a_rescan_shows_as_quadratic(monkeypatch, target, name, scan):
    # (the graph above reaches each scan the test guards against: ~12-13 at
    # these sizes, 16 in the limit)
    monkeypatch.setattr(target, name, scan)
    assert _growth(_many_readers_then_overwrite, _plan_and_order, 300) > LINEAR_BOUND


def _reference_dead_after(readers, node, i):
    """The planner's rule by its definition: scan every reader each time."""
    fgraph, position = readers.fgraph, readers.position
    aliases = {node.inputs[i]}
    stack = [node.inputs[i]]
    while stack:
        v = stack.pop()
        for client, j in fgraph.clients.get(v, ()):
            if client != "output":
                for k, srcs in client.op.view_map.items():
                    if j in srcs and client.outputs[k] not in aliases:
                        aliases.add(client.outputs[k])
                        stack.append(client.outputs[k])
    if any(j != i and inp in aliases for j, inp in enumerate(node.inputs)):
        return False
    return all(client != "output" and (client is node or position.get(client, 1e99)
                                       <= position[node])
               for var in aliases for client, _ in fgraph.clients[var])


def test_inplace_planning_result_is_unchanged(monkeypatch):
    stats = {}
    plan_inplace(_gradient_of_indexed_sum(30), stats)
    monkeypatch.setattr(inplace._Readers, "dead_after", _reference_dead_after)
    reference = {}
    plan_inplace(_gradient_of_indexed_sum(30), reference)
    assert stats["inplace"] == reference["inplace"] > 0
    assert [str(n.op) for n in stats["inplace_nodes"]] == \
        [str(n.op) for n in reference["inplace_nodes"]]


# ------------------------------------------------------------ fusion
@functools.lru_cache(maxsize=4)
def _chain_and_backward(n):
    """A chain ``y_{k+1} = sin(y_k)`` of n/2 ops on a vector, then its
    derivative ``prod cos(y_k)`` accumulated backwards: one fusable cluster
    of about 1.5 n nodes keeping n/2 values alive (the shape of a chain and
    its gradient). Not mutated by the tests: cached."""
    ys = [T.dvector("x")]
    for _ in range(n // 2):
        ys.append(T.sin(ys[-1]))
    g = T.cos(ys[-2])
    for y in reversed(ys[:-2]):
        g = g * T.cos(y)
    return [g]


def test_cluster_search_on_a_long_chain_is_linear():
    # A group grown one node at a time copied its member list and re-pointed
    # every member at each step (O(n^2)).
    assert _growth(_chain_and_backward, find_clusters, 4000) < LINEAR_BOUND


@functools.lru_cache(maxsize=4)
def _long_kernel(n):
    """The lowered spec of the biggest fused kernel of ``_chain_and_backward``."""
    fused = fuse_outputs(_chain_and_backward(n), target="cpu")
    nodes = [v.owner for v in fused if hasattr(v.owner.op, "spec")]
    return lower(max(nodes, key=lambda node: len(node.op.spec.instrs)).op.spec)


def test_code_generation_of_a_long_kernel_is_linear():
    # Every step scanned every free scratch slot; the kernel keeps n/2
    # values alive, so n/2 slots.
    assert _growth(_long_kernel, codegen.generate, 3000) < LINEAR_BOUND


def test_clusters_differing_in_constants_share_one_compilation(monkeypatch):
    calls = []

    def counting_compile(*args):
        calls.append(args[0])
        return compile(*args)
    monkeypatch.setattr(codegen, "compile", counting_compile, raising=False)
    x = T.dvector("x")
    # Constants unlikely to have been used by another test (the cache is global).
    outs = fuse_outputs([T.cos(T.sin(x) * (7919.5 + i)) for i in range(12)])
    programs = [cpu_program(o.owner.op.spec) for o in outs]
    assert len({id(p) for p in programs}) == 12  # one program per constant...
    assert len(calls) <= 1  # ...but at most one compilation of their source
    xs = np.linspace(0.0, 1.0, 5)
    for i, p in enumerate(programs):
        (got,) = p.run([xs])
        np.testing.assert_allclose(got, np.cos(np.sin(xs) * (7919.5 + i)), rtol=1e-14)


# ------------------------------------------------------------ garbage collector
def test_function_pauses_the_garbage_collector_while_optimizing(monkeypatch):
    seen = []
    real = pipeline.optimize_graph

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline, "optimize_graph", spy)
    x = T.dvector("x")
    assert gc.isenabled()
    tg.function([x], T.exp(x) + 1)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:  # a collector the user turned off stays off
        tg.function([x], T.exp(x) + 2)
        assert seen == [False, False] and not gc.isenabled()
    finally:
        gc.enable()


def test_programs_differing_in_constants_share_one_generation(monkeypatch):
    # Each of the n kernels of ``sum(cos(x[i]) * i)`` built its own program
    # (lowering, slot allocation, source): now the first is rebound.
    from tracegrad.backend import numpy as cpu
    calls = []
    real = cpu.generate
    monkeypatch.setattr(cpu, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = T.dmatrix("x")
    row = T.constant(np.array([1.0, -2.0, 3.0, 0.5]))
    # sigmoid's lowering appends constants of its own after the spec's;
    # ``row`` (4 elements) is an operand of the block function, not a binding.
    outs = fuse_outputs([T.sigmoid(T.sin(x) * (0.6421 + i)) + T.cos(x * row) * (i - 3.0)
                         for i in range(6)])
    programs = [cpu_program(o.owner.op.spec) for o in outs]
    assert len({id(p) for p in programs}) == 6 and len(calls) == 1
    small = np.linspace(-2.0, 2.0, 8).reshape(2, 4)
    large = np.resize(small, (200_000, 4))  # the blocked path, not ``fast``
    for i, (p, o) in enumerate(zip(programs, outs)):
        for xs in (small, large):
            expect = 1 / (1 + np.exp(-np.sin(xs) * (0.6421 + i))) + \
                np.cos(xs * row.data) * (i - 3.0)
            assert o.owner.inputs == [x]
            (got,) = p.run([xs])
            np.testing.assert_allclose(got, expect, rtol=1e-14)


def test_a_call_taking_the_fast_path_compiles_only_the_fast_path(monkeypatch, numpy_tier):
    # The block function and ``fast`` were compiled together: a first call
    # of a long kernel (one source line per op, twice) paid for both.
    sources = []

    def counting_compile(source, *args):
        sources.append(source)
        return compile(source, *args)
    monkeypatch.setattr(codegen, "compile", counting_compile, raising=False)
    x = T.dvector("x")
    y = x
    for i in range(40):  # (a structure no other test builds: nothing cached)
        y = T.tanh(y) * 1.0001 + 0.125 * (i % 3)
    (out,) = fuse_outputs([y])
    program = cpu_program(out.owner.op.spec)
    small, large = np.linspace(-1.0, 1.0, 7), np.linspace(-1.0, 1.0, 300_000)
    expect = small
    for i in range(40):
        expect = np.tanh(expect) * 1.0001 + 0.125 * (i % 3)
    np.testing.assert_allclose(program.run([small])[0], expect, rtol=1e-14)
    assert [s.startswith("def fast") for s in sources] == [True]
    (got,) = program.run([large])  # the blocked path needs the block function
    assert [s.split("(")[0] for s in sources] == ["def fast", "def block"]
    assert got.shape == large.shape and np.isfinite(got).all()


def test_a_long_kernel_compiles_its_fast_path_at_its_first_small_call(monkeypatch, numpy_tier):
    # A long kernel's fast path takes only calls of a few elements, so most
    # first calls never need it: it was compiled (as long as the block
    # function, ~30 us a line) all the same.
    sources = []

    def counting_compile(source, *args):
        sources.append(source.split("(")[0])
        return compile(source, *args)
    monkeypatch.setattr(codegen, "compile", counting_compile, raising=False)
    monkeypatch.setattr(codegen, "EAGER_FAST_LINES", 20)
    x = T.dvector("x")
    y = x
    for i in range(30):  # (a structure no other test builds: nothing cached)
        y = T.arctan(y) * 0.9999 - 0.0625 * (i % 4)
    (out,) = fuse_outputs([y])
    program = cpu_program(out.owner.op.spec)
    assert sources == [] and program.fast is not None
    xs = np.linspace(-1.0, 1.0, 50_000)
    expect = xs
    for i in range(30):
        expect = np.arctan(expect) * 0.9999 - 0.0625 * (i % 4)
    np.testing.assert_allclose(program.run([xs])[0], expect, rtol=1e-14)
    assert sources == ["def block"]  # (too many elements for the fast path)
    np.testing.assert_allclose(program.run([xs[:3]])[0], expect[:3], rtol=1e-14)
    assert sources == ["def block", "def fast"]
    np.testing.assert_allclose(program.run([xs[3:6]])[0], expect[3:6], rtol=1e-14)
    assert sources == ["def block", "def fast"]  # compiled once


# ------------------------------------------------------------ rewrites
def _chain_graph(n):
    """A FunctionGraph of an n-op elementwise chain and its gradient."""
    x = T.dvector("x")
    y = x
    for _ in range(n // 3):
        y = T.sin(y) * 1.0001 + 0.1
    return pipeline.clone([x], [T.sum(y), tg.grad(T.sum(y), x)])


def test_rewriting_a_chain_is_linear():
    assert _growth(_chain_graph, lambda fg: pipeline.rewrite(fg, "fast_run"), 600) \
        < LINEAR_BOUND


def test_rules_run_per_node_stay_bounded(monkeypatch):
    # The worklist runs a rule on a node again only where a rewrite reached
    # it: the number of rule runs is linear in the nodes (a fixed number per
    # node, not one per pass and phase).
    from tracegrad.rewrite import engine
    calls = [0]
    original = engine._visit

    def counting(graph, node, rules, ctx, stats):
        calls[0] += len(rules)
        return original(graph, node, rules, ctx, stats)

    monkeypatch.setattr(engine, "_visit", counting)
    per_node = []
    for n in (300, 1200):
        fgraph = _chain_graph(n)
        nodes = len(fgraph.apply_nodes)
        calls[0] = 0
        pipeline.rewrite(fgraph, "fast_run")
        per_node.append(calls[0] / nodes)
    assert per_node[1] < 1.1 * per_node[0] and per_node[1] < 10, per_node


def test_static_values_of_a_graph_reading_each_value_twice_are_linear(monkeypatch):
    # ``x[0]`` asks for the entries of ``x`` while ``static_value`` walks the
    # graph: each question used to start a fresh walk, so y = sum(y) * y + y[0]
    # repeated n times asked 2^n questions (n = 20 took seconds to compile,
    # n = 400 never finished). Nested questions share the outer walk now.
    from tracegrad.ops import index
    calls = [0]
    original = index.Subtensor.static_output

    def counting(self, node):
        calls[0] += 1
        return original(self, node)

    monkeypatch.setattr(index.Subtensor, "static_output", counting)
    per_layer = []
    for n in (8, 16):
        x = T.dvector("x")
        y = x
        for _ in range(n):
            y = T.sum(y) * y + y[0]
        calls[0] = 0
        f = tg.function([x], [T.sum(y), tg.grad(T.sum(y), x)])
        per_layer.append(calls[0] / n)
    assert per_layer[1] < 2 * per_layer[0] + 5, per_layer   # (2^n: ~256x)
    value = np.linspace(0.0, 1.0, 5) * 1e-3
    reference = tg.function([x], [T.sum(y), tg.grad(T.sum(y), x)], mode="fast_compile")
    for got, want in zip(f(value), reference(value)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_compiled_function_keeps_only_its_own_graph():
    # The passes replace most nodes; the function must not keep them alive
    # (FunctionGraph.release_removed): the nodes reachable from it are its
    # final graph's and the user's graph (kept for Function.copy).
    import weakref
    from tracegrad.trace import Apply, toposort
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(40))
    grad = tg.grad(cost, x)
    f = tg.function([x], [cost, grad])
    fgraph = f.maker.fgraph
    assert not fgraph._removed
    users = {id(node) for node in toposort([cost, grad])}
    # (not through modules: their caches hold other functions' programs)
    module_dicts = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen, stack, kept = set(), [f], 0
    while stack:   # (every object reachable from the function)
        obj = stack.pop()
        if id(obj) in seen or id(obj) in module_dicts or \
                isinstance(obj, (type, weakref.ref, types.ModuleType)):
            continue
        seen.add(id(obj))
        kept += isinstance(obj, Apply) and id(obj) not in users
        stack.extend(gc.get_referents(obj))
    assert kept <= len(fgraph.apply_nodes), (kept, len(fgraph.apply_nodes))
    np.testing.assert_allclose(f(np.linspace(0, 1, 40))[1],
                               np.cos(np.linspace(0, 1, 40)) * np.arange(40), rtol=1e-13)


def test_the_first_call_runs_with_the_collector_paused(monkeypatch):
    from tracegrad.compile import runtime
    seen = []
    x = T.dvector("x")
    f = tg.function([x], T.exp(x) + 1)
    inner = f._run.__wrapped__

    def spy(args):
        seen.append(gc.isenabled())
        return inner(args)
    monkeypatch.setattr(f, "_run", f._first_call(spy))
    f(np.ones(3))
    f(np.ones(3))   # (later calls run the runner itself: no pause)
    assert seen == [False, True] and gc.isenabled()
    assert runtime is not None


def test_equal_clusters_share_one_spec_object():
    from tracegrad.fuse import FusedElemwise
    x = T.dvector("x")
    outs = [T.exp(x[i] * 2.0) + 1.0 for i in range(3)]
    f = tg.function([x], outs)
    specs = {id(node.op.spec) for node in f.maker.fgraph.apply_nodes
             if isinstance(node.op, FusedElemwise)}
    assert len(specs) == 1


def _can_compile_per_argument(spec):
    """``csource.can_compile`` as it was: every argument's and instruction's
    dtypes worked out again at each step (the reference for the memoized
    one)."""
    from tracegrad.backend import csource
    from tracegrad.backend.emit import arg_dtype, instruction_type
    from tracegrad.fuse.spec import SUM_TO
    if any(dt not in csource.DTYPES for dt, _ in spec.in_types) or \
            any(c.dtype.name not in csource.DTYPES for c in spec.constants):
        return False
    for instr in spec.instrs:
        if instr.dtype not in csource.DTYPES:
            return False
        if instr.row is SUM_TO:
            continue
        c = instr.row.c
        if c is None or any(u in c for u in csource.UNAVAILABLE):
            return False
        dtypes = [arg_dtype(spec, ref) for ref in instr.args]
        if np.dtype(instruction_type(dtypes, instr.dtype)).kind != "f":
            return False
    return True


def test_c_tier_check_of_a_long_kernel_asks_each_dtype_combination_once(monkeypatch):
    # The check asked NumPy for the compute type of every step and rebuilt
    # the constants' dtype names for every argument (dtype.name is slow):
    # 2.7 of the 3.4 s first call of the W7 50k-op chain.
    from tracegrad.backend import csource
    x = T.dvector("x")
    y = x
    for k in range(300):
        y = T.sin(y) * (1.0 + k * 1e-4) + 0.1
    mixed = T.cast(T.ivector("i"), "int32") * 2 + x  # int32 and float64 steps
    specs = []
    for outputs in ([y], [mixed]):
        fused = fuse_outputs(outputs, target="cpu")
        specs += [v.owner.op.spec for v in fused if hasattr(v.owner.op, "spec")]
    assert max(len(s.instrs) for s in specs) >= 900
    calls = []
    real = csource.instruction_type
    monkeypatch.setattr(csource, "instruction_type",
                        lambda *a: calls.append(a) or real(*a))
    answers = []
    for spec in specs:
        calls.clear()
        answers.append(csource.can_compile(spec))
        assert answers[-1] == _can_compile_per_argument(spec)
        assert len(calls) == len(set(calls)) <= 4
    assert True in answers and False in answers
