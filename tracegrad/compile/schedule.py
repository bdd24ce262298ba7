"""The schedule: a ``FunctionGraph`` flattened into steps over a list storage.

Every variable gets a slot in a flat list: the explicit inputs first (slot
``i`` for input ``i``), then the shared variables, the constants, and the
nodes' outputs in run order. A call copies ``template`` (constants already in
place), fills the input and shared slots, and runs each ``Step``: one node's
implementation reading and writing slots. Nothing walks the graph at call
time.

This module also decides, once, the aliasing questions of a call (read from
the ops' ``view_map`` / ``destroy_map``):

- which outputs must be copied so that no result aliases an input, a
  constant, a shared buffer or another result (unless ``Out(borrow=True)``);
- which update values must be copied before any shared buffer is written
  (``{x: y, y: x}`` reads ``y`` after ``x`` was overwritten otherwise), and
  which ones must be copied when they replace a buffer instead of being
  written into it.
"""
from functools import partial

import numpy as np

from tracegrad.evaluate import reraise_with_context

# How an output leaves the call.
AS_IS, COPY, COPY_IF_READONLY = 0, 1, 2


class Step:
    """One node of the schedule: ``fn(*storage[ins]) -> storage[outs]``,
    then the slots in ``frees`` (read for the last time) are cleared."""

    __slots__ = ("node", "fn", "ins", "outs", "frees", "run")

    def __init__(self, node, fn, ins, outs, frees):
        self.node = node
        self.fn = fn
        self.ins = tuple(ins)
        self.outs = tuple(outs)
        self.frees = tuple(frees)
        self.run = None


class UpdatePlan:
    """How the new value in ``slot`` reaches ``shared``'s buffer."""

    __slots__ = ("shared", "container", "slot", "snapshot", "fresh")

    def __init__(self, shared, slot, snapshot, fresh):
        self.shared = shared
        self.container = shared.container
        self.slot = slot
        self.snapshot = snapshot  # copy before any buffer is written
        self.fresh = fresh        # may become the buffer itself when shapes differ


class Schedule:
    """Everything a call needs, computed once (see the module doc)."""

    def __init__(self, n_inputs, template, shared_reads, steps, outputs, updates):
        self.n_inputs = n_inputs
        self.template = template          # list: constants in place, None elsewhere
        self.shared_reads = shared_reads  # [(slot, container)]
        self.steps = steps                # [Step]
        self.outputs = outputs            # [(slot, AS_IS | COPY | COPY_IF_READONLY)]
        self.updates = updates            # [UpdatePlan]
        self.deferred = []                # fused update kernels (backend/inplace.py)


def impl_for(op, xp):
    """The callable ``f(*arrays)`` running ``op`` on ``xp``.

    An op may offer ``op.impl_for(xp)`` for a faster equivalent of
    ``partial(op.impl, xp)`` (e.g. the bare ufunc).
    """
    fast = getattr(op, "impl_for", None)
    if fast is not None:
        return fast(xp)
    return partial(op.impl, xp)


def build_schedule(fgraph, n_inputs, borrow, backend):
    """The ``Schedule`` of ``fgraph``; the first ``n_inputs`` inputs are the
    call's arguments, the rest shared variables; ``borrow[i]`` allows user
    output ``i`` to alias anything."""
    xp = backend.xp
    order = fgraph.toposort()
    slot = {}
    template = []

    def new_slot(var, value=None):
        slot[var] = len(template)
        template.append(value)

    for var in fgraph.inputs:
        new_slot(var)
    shared_reads = [(slot[v], v.container) for v in fgraph.inputs[n_inputs:]]
    for var in sorted(fgraph.constants(), key=_constant_order):
        new_slot(var, _constant_array(var, backend))
    for node in order:
        for out in node.outputs:
            new_slot(out)

    roots, is_view = _alias_roots(fgraph, order)
    protected = set(fgraph.inputs) | set(fgraph.constants())
    _check_destroyers(order, roots, protected, fgraph.outputs)

    last_reader = {}
    for k, node in enumerate(order):
        for inp in node.inputs:
            last_reader[inp] = k
    kept = set(fgraph.outputs)
    steps = []
    for k, node in enumerate(order):
        frees = {slot[v] for v in node.inputs if last_reader[v] == k and v not in kept}
        frees.update(slot[o] for o in node.outputs if o not in last_reader and o not in kept)
        step = Step(node, impl_for(node.op, xp), [slot[v] for v in node.inputs],
                    [slot[o] for o in node.outputs], sorted(frees))
        step.run = make_step_runner(step, backend)
        steps.append(step)

    outputs, claimed = _output_plan(fgraph, borrow, roots, is_view, protected, slot)
    updates = _update_plan(fgraph, roots, protected, claimed, slot)
    schedule = Schedule(n_inputs, template, shared_reads, steps, outputs, updates)
    if backend.fused_updates:
        from tracegrad.backend.inplace import defer_fused_updates
        defer_fused_updates(schedule, fgraph, order, roots, backend)
    return schedule


def _constant_order(var):
    return (str(var.type), str(var))


def _constant_array(var, backend):
    if not hasattr(var.type, "dtype"):
        return var.data
    array = backend.asarray(var.data, dtype=var.type.dtype)
    if getattr(getattr(array, "flags", None), "writeable", False):  # CuPy: no such flag
        # A read-only view: nothing may scribble on a constant between calls.
        array = array.view()
        array.flags.writeable = False
    return array


def _alias_roots(fgraph, order):
    """``roots[v]``: the variables whose buffers ``v``'s value may share
    memory with (itself included); ``is_view[v]``: whether it may be a view."""
    roots = {v: frozenset((v,)) for v in fgraph.variables if v.owner is None}
    is_view = {}
    for node in order:
        op = node.op
        for k, out in enumerate(node.outputs):
            srcs = list(op.view_map.get(k, ())) + list(op.destroy_map.get(k, ()))
            r = {out}
            for j in srcs:
                r |= roots[node.inputs[j]]
            roots[out] = frozenset(r)
            is_view[out] = bool(srcs)
    return roots, is_view


def _check_destroyers(order, roots, protected, outputs):
    """Refuse plans that overwrite a buffer the caller or a later call can
    see: inputs, constants, shared buffers, or another output's value."""
    for node in order:
        for srcs in node.op.destroy_map.values():
            for j in srcs:
                destroyed = roots[node.inputs[j]]
                hit = destroyed & protected
                if not hit:
                    hit = {o for o in outputs if roots[o] & destroyed
                           and not roots[o] & set(node.outputs)}
                if hit:
                    raise ValueError(
                        f"{node.op.name} would overwrite the buffer of "
                        f"{sorted(map(str, hit))}, an input, constant, shared variable or "
                        "output of the function; an in-place plan may only overwrite "
                        "intermediate results")


def _output_plan(fgraph, borrow, roots, is_view, protected, slot):
    claimed = set()
    plan = []
    for i, out in enumerate(fgraph.user_outputs):
        r = roots[out]
        if borrow[i]:
            mode = AS_IS
        elif r & protected or r & claimed:
            mode = COPY
        elif is_view.get(out):
            mode = COPY_IF_READONLY
        else:
            mode = AS_IS
        if mode != COPY:
            claimed |= r
        plan.append((slot[out], mode))
    return plan, claimed


def _update_plan(fgraph, roots, protected, claimed, slot):
    pairs = fgraph.update_pairs()
    written = {shared for shared, value in pairs if value is not shared}
    plans = []
    for k, (shared, value) in enumerate(pairs):
        if value is shared:
            continue  # {s: s} changes nothing
        r = roots[value]
        others = set()
        for j, (_, other) in enumerate(pairs):
            if j != k:
                others |= roots[other]
        snapshot = bool(r & (written - {shared}))
        fresh = not (r & protected or r & claimed or r & others)
        plans.append(UpdatePlan(shared, slot[value], snapshot, fresh))
    return plans


# ------------------------------------------------------------ step runners
def _fail(node, ins, storage, exc):
    reraise_with_context(node, [storage[i] for i in ins], exc)


def make_step_runner(step, backend):
    """A closure ``run(storage)`` executing ``step`` (specialised by arity:
    this is the inner loop of every call)."""
    node, fn, ins, outs, frees = step.node, step.fn, step.ins, step.outs, step.frees
    xp = backend.xp
    ndarray = backend.ndarray
    dtypes = [np.dtype(o.type.dtype) if hasattr(o.type, "dtype") else None
              for o in node.outputs]

    def fix(result, dtype):
        if dtype is None:  # not an array type: stored as the op returned it
            return result
        if type(result) is not ndarray:
            result = xp.asarray(result)
        if result.dtype != dtype:
            result = result.astype(dtype)
        return result

    if len(outs) != 1:
        n_out = len(outs)

        def run_multi(s):
            try:
                results = fn(*[s[i] for i in ins])
                if len(results) != n_out:
                    raise ValueError(f"{node.op.name} returned {len(results)} "
                                     f"results for {n_out} outputs")
            except Exception as exc:
                _fail(node, ins, s, exc)
            for o, dtype, r in zip(outs, dtypes, results):
                s[o] = fix(r, dtype)
            for i in frees:
                s[i] = None
        return run_multi

    o, = outs
    dt = dtypes[0]
    if dt is None:
        def run_raw(s):
            try:
                r = fn(*[s[i] for i in ins])
            except Exception as exc:
                _fail(node, ins, s, exc)
            s[o] = r
            for i in frees:
                s[i] = None
        return run_raw
    if len(ins) == 1:
        a, = ins

        def run1(s):
            try:
                r = fn(s[a])
            except Exception as exc:
                _fail(node, ins, s, exc)
            if type(r) is not ndarray or r.dtype is not dt:
                r = fix(r, dt)
            s[o] = r
            for i in frees:
                s[i] = None
        return run1
    if len(ins) == 2:
        a, b = ins

        def run2(s):
            try:
                r = fn(s[a], s[b])
            except Exception as exc:
                _fail(node, ins, s, exc)
            if type(r) is not ndarray or r.dtype is not dt:
                r = fix(r, dt)
            s[o] = r
            for i in frees:
                s[i] = None
        return run2

    def run_n(s):
        try:
            r = fn(*[s[i] for i in ins])
        except Exception as exc:
            _fail(node, ins, s, exc)
        if type(r) is not ndarray or r.dtype is not dt:
            r = fix(r, dt)
        s[o] = r
        for i in frees:
            s[i] = None
    return run_n
