"""The graph walks and copies made cheaper per node keep their results:
postorder's order, the clone's copies, the deferred index's variables,
the in-place planner's order and the used-variables walk of tg.function."""
import random

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile import pipeline
from tracegrad.compile.updates import default_updates
from tracegrad.inplace_order import order_destroyers
from tracegrad.postorder import postorder
from tracegrad.rewrite import plan_inplace
from tracegrad.trace import ancestors, clone_graph, toposort


class _Var:
    def __init__(self, owner=None):
        self.owner = owner


class _Node:
    def __init__(self, inputs):
        self.inputs = inputs
        self.outputs = [_Var(self)]


def _recursive_postorder(outputs, blockers, stop):
    order, done = [], set()

    def visit(node):
        if node in done:
            return
        done.add(node)
        if stop is not None and stop(node):
            return
        for inp in node.inputs:
            if inp.owner is not None and inp not in blockers:
                visit(inp.owner)
        order.append(node)

    for out in outputs:
        if out.owner is not None and out not in blockers:
            visit(out.owner)
    return order


def test_postorder_is_the_recursive_walk():
    for seed in range(300):
        rng = random.Random(seed)
        pool = [_Var() for _ in range(rng.randint(1, 3))]
        for _ in range(rng.randint(0, 25)):
            pool += _Node([rng.choice(pool) for _ in range(rng.randint(0, 3))]).outputs
        outputs = [rng.choice(pool) for _ in range(rng.randint(1, 3))]
        blockers = {rng.choice(pool) for _ in range(rng.randint(0, 2))}
        stopped = {v.owner for v in pool if v.owner is not None and rng.random() < 0.2}
        stop = stopped.__contains__ if seed % 2 else None
        assert postorder(outputs, blockers, stop) == \
            _recursive_postorder(outputs, blockers, stop), seed


def _graph(n=30):
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(n))
    return [x], [cost] + list(tg.grad(cost, [x]))


def test_clone_copies_every_node_and_keeps_types_names_and_sources():
    inputs, outputs = _graph()
    _, copies, memo = clone_graph(outputs)
    old, new = toposort(outputs), toposort(copies)
    assert len(old) == len(new) and not set(old) & set(new)
    for a, b in zip(old, new):
        assert a.op is b.op and a.source is b.source
        assert [memo.get(v, v) for v in a.inputs] == b.inputs
        for k, (u, v) in enumerate(zip(a.outputs, b.outputs)):
            assert (v.owner, v.index, v.type, v.name, v._tag, type(v)) == \
                (b, k, u.type, u.name, u._tag, type(u))


def test_deferred_variables_are_the_index_keys_in_order():
    inputs, outputs = _graph()
    fgraph = pipeline.clone(inputs, outputs)
    for stage in (None, pipeline.rewrite, pipeline.fuse):
        if stage is not None:
            stage(fgraph, "fast_run", "cpu")
        assert "_deferred" in fgraph.__dict__
        found = list(fgraph.variables)
        assert found == list(fgraph.clients)   # (builds the index)


def test_the_planner_keeps_the_order_the_schedule_would_find():
    inputs, outputs = _graph()
    fgraph = pipeline.clone(inputs, outputs)
    pipeline.rewrite(fgraph, "fast_run")
    pipeline.fuse(fgraph, "fast_run", "cpu")
    assert plan_inplace(fgraph) > 0
    kept = fgraph.toposort()
    plain = toposort(fgraph.outputs, blockers=fgraph.inputs)
    assert kept == plain == order_destroyers(plain)


def test_default_updates_walk_is_the_used_variables_walk():
    x = T.dvector("x")
    counter = tg.shared(np.zeros(()), name="counter")
    counter.default_update = counter + 1
    other = tg.shared(np.ones(3), name="other")
    out = T.sum(x * other) + counter
    pairs, used, shared = default_updates([out], [], False, [], blockers=[x])
    assert [s for s, _ in pairs] == [counter]
    expected = ancestors([out] + [v for _, v in pairs], blockers=[x])
    assert used == expected
    assert shared == [v for v in expected if isinstance(v, tg.SharedVariable)]
    assert set(shared) == {counter, other}
    none, used_none, _ = default_updates([out], [], True, [], blockers=[x])
    assert none == [] and used_none == ancestors([out], blockers=[x])
    f = tg.function([x], out)
    f(np.ones(3))
    assert counter.get_value() == 1
