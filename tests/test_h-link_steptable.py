"""The schedule's ``StepTable``: when each value's storage is released (the
``frees`` column), and that the table's views and loop agree with the
straight-line runner."""
import numpy as np
import pytest

import tracegrad.tensor as T
from tracegrad import function
from tracegrad.compile import runtime, schedule
from tracegrad.trace import Apply, Op


class TwoOut(Op):
    """``(x + 1, x * 2)``: a step of two outputs (its own runner)."""

    def make_node(self, x):
        return Apply(self, [x], [x.type(), x.type()])

    def impl(self, xp, x):
        return x + 1, x * 2


class Keep(Op):
    """``x`` copied; no ``impl_for``: an ``impl`` row of the table."""

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        return x.copy()


def _function(outputs, x, **kwargs):
    return function([x], outputs, mode="fast_compile", **kwargs)


def _freed_at(table):
    """``{slot: k}``: the step that frees each freed slot."""
    freed = {}
    for k in range(len(table)):
        for i in table[k].frees:
            assert i not in freed, f"slot {i} freed twice"
            freed[i] = k
    return freed


def _check_frees(f):
    """Every value a step reads or makes (inputs and constants too: the
    storage is the call's own list) is freed once, by its last reader (by
    its own step when unread), unless it is an output of the function."""
    fgraph = f.maker.fgraph
    table = f.schedule.steps
    slot = table.slot
    freed = _freed_at(table)
    last = {}
    for k, node in enumerate(table.nodes):
        for v in node.outputs + node.inputs:
            last[v] = k
    kept = set(fgraph.outputs)
    assert not {slot[v] for v in kept} & set(freed)
    for v, k in last.items():
        if v not in kept:
            assert freed[slot[v]] == k, (v, freed[slot[v]], k)
    assert len(freed) == len(set(last) - kept)
    return table


def test_a_value_is_freed_by_its_last_reader_and_outputs_never():
    x = T.dvector("x")
    a = Keep()(x)
    b = Keep()(a) * 2.0
    c = T.exp(a)      # a's last reader
    out = Keep()(b) + c
    _check_frees(_function([out, b], x))
    _check_frees(function([x], [out, b]))   # fused, in place


def test_a_value_read_twice_by_one_node_is_freed_once_as_one_slot():
    x = T.dvector("x")
    a = Keep()(x)
    f = _function([Keep()(a * a)], x)
    table = _check_frees(f)
    k = next(k for k, node in enumerate(table.nodes)
             if len(node.inputs) == 2 and node.inputs[0] is node.inputs[1])
    i = table.slot[table.nodes[k].inputs[0]]
    assert table.frees[k] == i  # one slot: an int, not a tuple
    assert table[k].frees == (i,)


def test_an_unread_output_of_a_node_is_freed_by_that_node():
    x = T.dvector("x")
    a, unused = TwoOut()(x)
    f = _function([Keep()(a)], x)
    table = _check_frees(f)
    k = next(k for k, node in enumerate(table.nodes) if isinstance(node.op, TwoOut))
    assert table.kinds[k] == schedule.MULTI   # (two array outputs: run by the loop)
    outs = table.nodes[k].outputs
    assert table.slot[outs[1]] in table[k].frees
    assert table.slot[outs[0]] not in table[k].frees


def test_frees_of_two_slots_are_a_sorted_tuple():
    x = T.dvector("x")
    y = T.dvector("y")
    a, b = Keep()(x), Keep()(y)
    f = function([x, y], [Keep()(a + b)], mode="fast_compile")
    table = _check_frees(f)
    pairs = [fr for fr in table.frees if type(fr) is tuple]
    assert pairs and all(list(fr) == sorted(set(fr)) and len(fr) > 1 for fr in pairs)
    assert all(fr is None or type(fr) in (int, tuple) for fr in table.frees)


@pytest.mark.parametrize("runner", ["table", "lines"])
def test_after_a_call_exactly_the_freed_slots_are_empty(runner):
    x = T.dvector("x")
    a, unused = TwoOut()(T.exp(x))
    c = Keep()(a) * 3.0
    out = Keep()(c + a) + T.sin(x)
    f = _function([out, c], x)
    table = f.schedule.steps
    s = [x_value := np.linspace(0.0, 1.0, 5)] + list(f.schedule.template[1:])
    if runner == "table":
        runtime.run_table(s, table, np.ndarray)
    else:
        schedule.make_steps_runner(list(table), f.maker.backend)(s)
    freed = {i for k in range(len(table)) for i in table[k].frees}
    for k, node in enumerate(table.nodes):
        for o in node.outputs:
            i = table.slot[o]
            assert (s[i] is None) == (i in freed), (k, node, i)
    np.testing.assert_allclose(f(x_value)[0], s[f.schedule.outputs[0][0]])


def test_views_agree_with_the_columns():
    x = T.dvector("x")
    y = T.dvector("y")
    outs = [Keep()(x) * y + 1.0, T.exp(x)[1:], TwoOut()(y)[0]]
    f = function([x, y], outs, mode="fast_compile")
    table = f.schedule.steps
    assert len(list(table)) == len(table) and table[-1] is table[len(table) - 1]
    for k, step in enumerate(table):
        assert step is table[k] and step.node is table.nodes[k]
        assert step.ins == tuple(table.slot[v] for v in step.node.inputs)
        assert step.outs == tuple(table.slot[o] for o in step.node.outputs)
        kind = table.kinds[k]
        if kind == schedule.MULTI:
            assert (table.a[k], table.outs[k]) == (step.ins, step.outs)
            continue
        if kind == schedule.OWN_RUN:
            continue
        assert step.outs == (table.outs[k],)
        ins = [table.a[k]] + ([table.b[k]] if table.b[k] is not None else [])
        if kind in (schedule.MANY, schedule.IMPL_MANY):
            assert table.a[k](list(range(100))) == step.ins
        else:
            assert tuple(ins) == step.ins
        if kind in (schedule.IMPL_ONE, schedule.IMPL_TWO, schedule.IMPL_MANY):
            assert table.fns[k] is type(step.node.op).impl
    assert any(kind == schedule.IMPL_ONE for kind in table.kinds)


def test_the_kinds_are_the_numbers_run_table_compares_with():
    # (run_table writes them as literals)
    assert (schedule.ONE, schedule.TWO, schedule.MANY, schedule.IMPL_ONE, schedule.IMPL_TWO,
            schedule.IMPL_MANY, schedule.MULTI, schedule.OWN_RUN) == tuple(range(8))


# ------------------------------------------------------------ collector.paused
def _collections_of_block(monkeypatch, full_due):
    """The generations collected at the end of a paused block making ~5000
    tracked objects (over a ``MANY_NEW_OBJECTS`` of 1000)."""
    import gc
    from tracegrad import collector
    monkeypatch.setattr(collector, "MANY_NEW_OBJECTS", 1000)
    monkeypatch.setattr(collector, "_full_due", lambda new: full_due)
    seen = []

    def callback(phase, info):
        if phase == "start":
            seen.append(info["generation"])
    was = gc.isenabled()
    gc.enable()
    gc.collect()
    gc.callbacks.append(callback)
    try:
        with collector.paused():
            kept = [[i] for i in range(5000)]
    finally:
        gc.callbacks.remove(callback)
        if not was:
            gc.disable()
    assert len(kept) == 5000
    return seen


@pytest.mark.parametrize("full_due, generation", [(False, 1), (True, 2)])
def test_a_big_paused_block_ends_with_one_collection(monkeypatch, full_due, generation):
    assert _collections_of_block(monkeypatch, full_due)[:1] == [generation]


def test_a_full_collection_is_due_only_past_the_oldest_threshold():
    import gc
    from tracegrad import collector
    gc.collect()   # (no middle collection since: the oldest's count is 0)
    assert not collector._full_due(10 ** 9)
    old = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 0)   # the oldest's threshold passed
        assert collector._full_due(10 ** 9)
        assert not collector._full_due(1)
        gc.set_threshold(0, 10, 0)     # automatic collection off: never due
        assert not collector._full_due(10 ** 9)
    finally:
        gc.set_threshold(*old)


class WrongCount(Op):
    """Says two outputs, returns three."""

    def make_node(self, x):
        return Apply(self, [x], [x.type(), x.type()])

    def impl(self, xp, x):
        return x, x, x


@pytest.mark.parametrize("limit", [0, 10 ** 6])
def test_a_step_of_several_outputs_runs_in_the_loop_as_in_the_lines(monkeypatch, limit):
    from tracegrad.compile import runtime
    monkeypatch.setattr(runtime, "STRAIGHT_LINE_STEPS", limit)
    x = T.dvector("x")
    a, b = TwoOut()(T.exp(x))
    f = _function([a * b, Keep()(b)], x)
    assert schedule.MULTI in f.schedule.steps.kinds
    arg = np.linspace(0.0, 1.0, 4)
    e = np.exp(arg)
    for got, want in zip(f(arg), [(e + 1) * (e * 2), e * 2]):
        np.testing.assert_allclose(got, want)
    wrong = _function([WrongCount()(x)[0] + 1.0], x)
    with pytest.raises(ValueError, match="returned 3 results for 2 outputs"):
        wrong(arg)
