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
from operator import itemgetter

import numpy as np

from tracegrad.backend.inplace import Deferred
from tracegrad.compile import warnpoint
from tracegrad.compile.targets import plan_out_targets
from tracegrad.evaluate import reraise_with_context
from tracegrad.trace import node_runner, uses_perform

# How an output leaves the call.
AS_IS, COPY, COPY_IF_READONLY = 0, 1, 2


class Step:
    """One node of the schedule: ``fn(*storage[ins]) -> storage[outs]``,
    then the slots in ``frees`` (read for the last time) are cleared.
    ``run(storage)`` does that for this step alone (made at first use: a
    call runs the whole schedule from ``make_steps_runner``'s function)."""

    __slots__ = ("node", "fn", "ins", "outs", "frees", "backend", "_run")

    def __init__(self, node, fn, ins, outs, frees, backend):
        self.node = node
        self.fn = fn
        self.ins = tuple(ins)
        self.outs = tuple(outs)
        self.frees = tuple(frees)
        self.backend = backend
        self._run = None

    @property
    def run(self):
        if self._run is None:
            self._run = make_step_runner(self, self.backend)
        return self._run

    @run.setter
    def run(self, fn):
        self._run = fn


class UpdatePlan:
    """How the new value in ``slot`` reaches ``shared``'s buffer."""

    __slots__ = ("shared", "container", "slot", "snapshot", "fresh", "external")

    def __init__(self, shared, slot, snapshot, fresh, external=False):
        self.shared = shared
        self.container = shared.container
        self.slot = slot
        self.snapshot = snapshot  # copy before any buffer is written
        self.fresh = fresh        # may become the buffer itself when shapes differ
        # May be (a view of) an argument, which may alias any shared buffer:
        # checked at each call (``publish._unalias``).
        self.external = external


class Schedule:
    """Everything a call needs, computed once (see the module doc)."""

    def __init__(self, n_inputs, template, shared_reads, steps, outputs, updates):
        self.n_inputs = n_inputs
        self.template = template          # list: constants in place, None elsewhere
        self.shared_reads = shared_reads  # [(slot, container)]
        self.steps = steps                # [Step]
        self.outputs = outputs            # [(slot, AS_IS | COPY | COPY_IF_READONLY)]
        self.updates = updates            # [UpdatePlan]
        self.deferred = []                # fused kernels with out= targets (compile/targets.py)


def impl_for(node, xp):
    """The callable ``f(*arrays)`` running ``node``'s op on ``xp``.

    An op may offer ``op.impl_for(xp)`` for a faster equivalent of
    ``partial(op.impl, xp)`` (e.g. the bare ufunc); an op written to
    Theano's protocol runs its ``perform`` (``trace.node_runner``).
    """
    op = node.op
    fast = getattr(op, "impl_for", None)
    if fast is not None:
        return fast(xp)
    if uses_perform(op):
        return node_runner(node, xp)
    return partial(op.impl, xp)


def build_schedule(fgraph, n_inputs, borrow, backend):
    """The ``Schedule`` of ``fgraph``; the first ``n_inputs`` inputs are the
    call's arguments, the rest shared variables; ``borrow[i]`` allows user
    output ``i`` to alias anything."""
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
    outputs, claimed = _output_plan(fgraph, borrow, roots, is_view, protected, slot)
    updates = _update_plan(fgraph, roots, protected, claimed, slot,
                           frozenset(fgraph.inputs[:n_inputs]))
    # The out= targets stage: fused nodes that write their updates straight
    # into the shared buffers run in the update phase (``Schedule.deferred``).
    targets = plan_out_targets(fgraph, order, roots, updates) if backend.fused_updates else {}
    steps = _steps(fgraph, order, slot, backend, targets)
    schedule = Schedule(n_inputs, template, shared_reads, steps, outputs, updates)
    if targets:
        moved = {id(p) for plans in targets.values() for p in plans}
        schedule.updates = [p for p in updates if id(p) not in moved]
        schedule.deferred = [Deferred(step.node, step, targets[step.node])
                             for step in steps if step.node in targets]
        schedule.steps = [step for step in steps if step.node not in targets]
    return schedule


def _steps(fgraph, order, slot, backend, targets):
    """One ``Step`` per node, in ``order``. A slot is freed by its last
    reader, except the slots that ``targets`` nodes (run in the update
    phase, after every step) read."""
    xp = backend.xp
    last_reader = {}
    for k, node in enumerate(order):
        for inp in node.inputs:
            last_reader[inp] = k
    kept = set(fgraph.outputs)
    for node in targets:
        kept.update(node.inputs)
    steps = []
    wrap = backend.step_wrapper   # (the CPU's: large calls of a lone ufunc -> the C tier)
    for k, node in enumerate(order):
        if node in targets:
            frees = ()
        else:
            frees = {slot[v] for v in node.inputs if last_reader[v] == k and v not in kept}
            frees.update(slot[o] for o in node.outputs
                         if o not in last_reader and o not in kept)
        fn = impl_for(node, xp)
        if wrap is not None:
            fn = wrap(node, fn)
        steps.append(Step(node, fn, [slot[v] for v in node.inputs],
                          [slot[o] for o in node.outputs], sorted(frees), backend))
    return steps


def _constant_order(var):
    return (str(var.type), str(var))


def _constant_array(var, backend):
    if not getattr(var.type, "array_values", False):
        return var.data
    array = backend.asarray(var.data, dtype=var.type.dtype)
    if getattr(getattr(array, "flags", None), "writeable", False):  # CuPy: no such flag
        # A read-only view: nothing may scribble on a constant between calls.
        array = array.view()
        array.flags.writeable = False
    return array


def _alias_roots(fgraph, order):
    """``roots[v]``: the buffers ``v``'s value may share memory with, as the
    variables that made them (inputs, constants, outputs of nodes that are
    no view: ``v`` itself unless it is a view); ``is_view[v]``: whether it
    may be a view.

    Only the variables that made a buffer are kept, not every view between
    (a chain of n in-place nodes would hold O(n^2) of those): two values
    share memory when their roots meet, and whatever ``roots`` is compared
    with (inputs, constants, shared variables, other roots) is made of such
    variables too. ``_view_closure`` gives the views as well."""
    roots = {v: frozenset((v,)) for v in fgraph.variables if v.owner is None}
    is_view = {}
    for node in order:
        op = node.op
        view_map, destroy_map = op.view_map, op.destroy_map
        for k, out in enumerate(node.outputs):
            srcs = list(view_map.get(k, ())) + list(destroy_map.get(k, ()))
            if not srcs:
                roots[out] = frozenset((out,))
            elif len(srcs) == 1:
                roots[out] = roots[node.inputs[srcs[0]]]
            else:
                roots[out] = frozenset().union(*(roots[node.inputs[j]] for j in srcs))
            is_view[out] = bool(srcs)
    return roots, is_view


def _view_closure(var):
    """``var`` and every variable it may be a view of, through any chain of
    views (what ``_alias_roots`` leaves out)."""
    seen = {var}
    stack = [var]
    while stack:
        v = stack.pop()
        node = v.owner
        if node is None:
            continue
        k = node.outputs.index(v)
        for j in list(node.op.view_map.get(k, ())) + list(node.op.destroy_map.get(k, ())):
            src = node.inputs[j]
            if src not in seen:
                seen.add(src)
                stack.append(src)
    return seen


def _check_destroyers(order, roots, protected, outputs):
    """Refuse plans that overwrite a buffer the caller or a later call can
    see: inputs, constants, shared buffers, or another output's value."""
    closures = {}
    for node in order:
        for srcs in node.op.destroy_map.values():
            for j in srcs:
                destroyed = roots[node.inputs[j]]
                hit = destroyed & protected
                if not hit:
                    hit = set()
                    for o in outputs:
                        if not roots[o] & destroyed:
                            continue
                        if o not in closures:
                            closures[o] = _view_closure(o)
                        if closures[o].isdisjoint(node.outputs):
                            hit.add(o)
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


def _update_plan(fgraph, roots, protected, claimed, slot, arguments):
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
        plans.append(UpdatePlan(shared, slot[value], snapshot, fresh, bool(r & arguments)))
    return plans


# ------------------------------------------------------------ step runners
def _fail(steps, k, storage, exc):
    step = steps[k]
    reraise_with_context(step.node, [storage[i] for i in step.ins], exc)


def _wrong_count(node, results, n_out):
    raise ValueError(f"{node.op.name} returned {len(results)} results for {n_out} outputs")


def _fix(xp, ndarray, dtype, result):
    """``result`` as an array of ``dtype`` (ops may return scalars or
    another dtype)."""
    if type(result) is not ndarray:
        result = xp.asarray(result)
    if result.dtype != dtype:
        result = result.astype(dtype)
    return result


def _dtype_names(env, backend):
    """``name(dtype)``: the global name bound in ``env`` to ``dtype`` (and
    ``"fix" + name`` to the function making a result that dtype), one per
    distinct dtype. (One name per step output made ``compile`` of a big
    runner ~40 % slower: every distinct global name costs the compiler.)"""
    names = {}

    def name(dtype):
        found = names.get(dtype)
        if found is None:
            found = names[dtype] = f"dt{len(names)}"
            env[found] = dtype
            env["fix" + found] = partial(_fix, backend.xp, backend.ndarray, dtype)
        return found
    return name


def _step_line(k, step, env, dtype_name):
    """One line running ``step`` (named ``k`` in ``env``, which receives
    what it reads) over the storage ``s``: call the op, make each array
    result its output's dtype, free the dead slots."""
    node, outs = step.node, step.outs
    env[f"fn{k}"] = step.fn
    parts = [f"r = fn{k}({', '.join(f's[{i}]' for i in step.ins)})"]
    if len(outs) != 1:
        env[f"node{k}"] = node
        parts.append(f"len(r) == {len(outs)} or wrong_count(node{k}, r, {len(outs)})")
        if node.op.exact_outputs:   # (``Op.exact_outputs``: stored as returned)
            parts.append(f"{', '.join(f's[{o}]' for o in outs)} = r")
            parts += [f"s[{i}] = None" for i in step.frees]
            return "; ".join(parts)
    for m, (o, var) in enumerate(zip(outs, node.outputs)):
        value = "r" if len(outs) == 1 else f"r[{m}]"
        if not getattr(var.type, "array_values", False):  # stored as returned
            parts.append(f"s[{o}] = {value}")
            continue
        dt = dtype_name(np.dtype(var.type.dtype))
        if len(outs) == 1:  # the common case: test inline, call only to fix
            parts.append(f"s[{o}] = r if type(r) is ndarray and r.dtype is {dt} "
                         f"else fix{dt}(r)")
        else:
            parts.append(f"s[{o}] = fix{dt}({value})")
    parts += [f"s[{i}] = None" for i in step.frees]
    return "; ".join(parts)


def steps_source(steps, env, backend, first_line):
    """Lines running ``steps`` in order over the storage ``s``: ``try:`` at
    line ``first_line`` of the generated source, then one line per step; an
    error is reraised naming the node of the line it came from."""
    env.update(ndarray=backend.ndarray, fail=_fail, wrong_count=_wrong_count, steps=steps)
    if not steps:
        return []
    # (which step a frame of this code runs: for NumPy's warnings, ``warnpoint``)
    env[warnpoint.STEPS_AT] = partial(_step_at, steps, first_line + 1)
    dtype_name = _dtype_names(env, backend)
    return (["try:"] + [f"    {_step_line(k, step, env, dtype_name)}"
                        for k, step in enumerate(steps)]
            + ["except Exception as exc:",
               f"    fail(steps, exc.__traceback__.tb_lineno - {first_line + 1}, s, exc)"])


def _step_at(steps, first, frame):
    """The node of the step on ``frame``'s current line, or ``None``."""
    k = frame.f_lineno - first
    return steps[k].node if 0 <= k < len(steps) else None


# Schedules of more steps than this run as a loop over a table of steps
# (the tunable and its reason are in tracegrad/config.py).
from tracegrad.config import STRAIGHT_LINE_STEPS  # noqa: E402,F401


def steps_table(steps, backend):
    """The rows ``run_table`` runs, one per step: ``(fn, get, arity, out,
    dtype, fix, frees)``; a step of other than one array output (rare) is
    run by its own ``step.run`` (``arity`` -1)."""
    rows = []
    fixes = {}
    for step in steps:
        var = step.node.outputs[0] if len(step.outs) == 1 else None
        if var is None or not getattr(var.type, "array_values", False) or not step.ins:
            rows.append((step.run, None, -1, None, None, None, ()))
            continue
        dtype = np.dtype(var.type.dtype)
        fix = fixes.get(dtype)
        if fix is None:
            fix = fixes[dtype] = partial(_fix, backend.xp, backend.ndarray, dtype)
        rows.append((step.fn, itemgetter(*step.ins), len(step.ins), step.outs[0], dtype,
                     fix, step.frees))
    return rows


def run_table(s, rows, steps, ndarray):
    """Run the ``steps_table`` ``rows`` over the storage ``s`` (what the
    generated lines of ``steps_source`` do, as a loop)."""
    k = 0
    try:
        for fn, get, arity, o, dt, fix, frees in rows:
            if arity == 1:
                r = fn(get(s))
            elif arity > 1:
                r = fn(*get(s))
            else:
                fn(s)
                k += 1
                continue
            s[o] = r if type(r) is ndarray and r.dtype is dt else fix(r)
            for i in frees:
                s[i] = None
            k += 1
    except Exception as exc:
        _fail(steps, k, s, exc)


warnpoint.LOOPS[run_table.__code__] = lambda frame: step_in_locals(frame, "k")


def step_in_locals(frame, index):
    """The node of ``steps[<index>]`` in a loop's frame, or ``None``."""
    local = frame.f_locals
    steps, k = local.get("steps"), local.get(index)
    return steps[k].node if steps is not None and k is not None and k < len(steps) else None


def make_steps_runner(steps, backend):
    """``run(storage)`` executing ``steps`` in order: straight-line code
    generated once (no call or loop per step: this is the inner loop of
    every call)."""
    env = {}
    lines = steps_source(steps, env, backend, 2) or ["pass"]
    source = "def run(s):\n" + "".join(f"    {line}\n" for line in lines)
    exec(compile(source, "<tracegrad schedule>", "exec"), env)
    return env["run"]


def make_step_runner(step, backend):
    """A function ``run(storage)`` executing ``step`` alone."""
    return make_steps_runner([step], backend)
