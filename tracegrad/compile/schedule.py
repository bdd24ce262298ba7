"""The schedule: a ``FunctionGraph`` flattened into steps over a list storage.

Every variable gets a slot in a flat list: the explicit inputs first (slot
``i`` for input ``i``), then the shared variables, the constants, and the
nodes' outputs in run order. A call copies ``template`` (constants already in
place), fills the input and shared slots, and runs the steps (a ``StepTable``:
one row per node, its implementation reading and writing slots). Nothing
walks the graph at call time.

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
from types import FunctionType

import numpy as np

from tracegrad.backend.inplace import Deferred
from tracegrad.compile import warnpoint
from tracegrad.compile.targets import plan_out_targets
from tracegrad.evaluate import reraise_with_context
from tracegrad.trace import class_uses_perform, node_runner, uses_perform

# How an output leaves the call.
AS_IS, COPY, COPY_IF_READONLY = 0, 1, 2


class Step:
    """One node of the schedule: ``fn(*storage[ins]) -> storage[outs]``,
    then the slots in ``frees`` (read for the last time) are cleared.
    ``run(storage)`` does that for this step alone (made at first use: a
    call runs the whole schedule from ``make_steps_runner``'s function or
    ``run_table``). A ``StepTable`` makes these on demand (``table[k]``);
    the schedule keeps whole ones only for its deferred nodes."""

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


def free_slots(frees):
    """The slots of a ``StepTable.frees`` entry, as a tuple."""
    return () if frees is None else (frees,) if type(frees) is int else frees


# ``StepTable.kinds``: how ``run_table`` calls a row's ``fn`` (``a``, ``b``:
# its input slots; ``op``: the node's op, for an op's own ``impl`` called
# without a ``partial`` bound to ``xp`` per node).
ONE, TWO, MANY, IMPL_ONE, IMPL_TWO, IMPL_MANY, MULTI, OWN_RUN = range(8)


class StepTable:
    """The steps of a schedule as columns, one entry per step in run order
    (a ``Step``, an ``itemgetter`` and tuples per node were ~10 tracked
    objects a node for the collector to walk; columns of ints are ~0):
    ``nodes``; ``fns``, the callables (``kinds`` says how each is called);
    ``a``, ``b``, the input slots (``a`` the first, or with ``MANY`` an
    ``itemgetter`` of all; ``b`` the second with ``TWO``, else ``None``);
    ``outs``, the output slot; ``dtypes``, its dtype (``MULTI``, several
    array outputs: ``a``, ``outs`` and ``dtypes`` are tuples; any other
    node, or one of no input, is ``OWN_RUN``: ``a`` is its ``Step``); ``frees``, the slots read for the last time (``None``, a
    slot or a tuple). ``table[k]`` is step ``k`` as a ``Step`` (made on
    demand, from ``slot``: variable -> slot); iterating gives them all."""

    __slots__ = ("nodes", "fns", "kinds", "a", "b", "outs", "dtypes", "frees",
                 "slot", "backend", "fixes", "dtype_of", "_steps")

    def __init__(self, slot, backend):
        self.nodes, self.fns, self.kinds, self.a, self.b = [], [], [], [], []
        self.outs, self.dtypes, self.frees = [], [], []
        self.slot = slot
        self.backend = backend
        self.fixes = {}     # dtype -> fix(result): ``result`` as an array of that dtype
        self.dtype_of = {}  # type's dtype name -> np.dtype (one ``np.dtype`` call each)
        self._steps = {}    # k -> the Step made for ``table[k]`` (kept: ``run`` is made once)

    def row(self, node, fn, kind, frees):
        """``node``'s row, a tuple of its columns' entries (``fill`` takes
        them all at once): ``fn`` called as ``kind`` says for one input
        (``ONE`` or ``IMPL_ONE``: the row gets the kind for its arity),
        ``frees`` as the ``frees`` column holds them."""
        slot, ins, outs = self.slot, node.inputs, node.outputs
        if len(outs) != 1 or not ins or not getattr(outs[0].type, "array_values", False):
            if kind >= IMPL_ONE:
                fn = partial(fn, node.op, self.backend.xp)
            if (ins and outs and not getattr(node.op, "exact_outputs", False)
                    and all(getattr(o.type, "array_values", False) for o in outs)):
                return (node, fn, MULTI, tuple([slot[v] for v in ins]), None,
                        tuple([slot[o] for o in outs]), tuple(map(self._dtype, outs)), frees)
            return node, fn, OWN_RUN, self.step(node, fn, frees), None, None, None, frees
        out = outs[0]
        dtype = self._dtype(out)
        n = len(ins)
        if n == 1:
            return node, fn, kind, slot[ins[0]], None, slot[out], dtype, frees
        if n == 2:
            return (node, fn, kind + (TWO - ONE), slot[ins[0]], slot[ins[1]], slot[out],
                    dtype, frees)
        return (node, fn, kind + (MANY - ONE), itemgetter(*[slot[v] for v in ins]), None,
                slot[out], dtype, frees)

    def step(self, node, fn, frees):
        """A ``Step`` running ``node`` with ``fn(*arrays)`` over this table's
        slots, then clearing the slots of ``frees`` (a ``frees`` entry)."""
        slot = self.slot
        return Step(node, fn, [slot[v] for v in node.inputs], [slot[o] for o in node.outputs],
                    free_slots(frees), self.backend)

    def _dtype(self, var):
        """``var``'s dtype (its fix-up made with it: ``run_table`` finds it in ``fixes``)."""
        dtype = self.dtype_of.get(var.type.dtype)
        if dtype is None:
            dtype = self.dtype_of[var.type.dtype] = np.dtype(var.type.dtype)
            self.fixes[dtype] = partial(_fix, self.backend.xp, self.backend.ndarray, dtype)
        return dtype

    def fill(self, rows):
        """Set the columns from ``rows`` (``row``'s tuples, in run order)."""
        if rows:
            (self.nodes, self.fns, self.kinds, self.a, self.b, self.outs, self.dtypes,
             self.frees) = map(list, zip(*rows))

    def __len__(self):
        return len(self.nodes)

    def __getitem__(self, k):
        if k < 0:
            k += len(self.nodes)
        step = self._steps.get(k)
        if step is None:
            if self.kinds[k] == OWN_RUN:
                step = self.a[k]
            else:
                node, fn = self.nodes[k], self.fns[k]
                if self.kinds[k] in (IMPL_ONE, IMPL_TWO, IMPL_MANY):  # (bound to xp)
                    fn = partial(fn, node.op, self.backend.xp)
                step = self.step(node, fn, self.frees[k])
            self._steps[k] = step
        return step

    def __iter__(self):
        return map(self.__getitem__, range(len(self.nodes)))


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
        self.steps = steps                # StepTable
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
    constants = sorted(fgraph.constants(), key=_constant_order)
    produced = [out for node in order for out in node.outputs]
    variables = fgraph.inputs + constants + produced
    # (one update: a variable listed twice keeps its later slot, as before)
    slot = dict(zip(variables, range(len(variables))))
    template = ([None] * len(fgraph.inputs) + [_constant_array(v, backend) for v in constants]
                + [None] * len(produced))
    shared_reads = [(slot[v], v.container) for v in fgraph.inputs[n_inputs:]]

    roots, is_view = _alias_roots(fgraph, order)
    protected = set(fgraph.inputs)
    protected.update(constants)
    _check_destroyers(order, roots, protected, fgraph.outputs)
    outputs, claimed = _output_plan(fgraph, borrow, roots, is_view, protected, slot)
    updates = _update_plan(fgraph, roots, protected, claimed, slot,
                           frozenset(fgraph.inputs[:n_inputs]))
    # The out= targets stage: fused nodes that write their updates straight
    # into the shared buffers run in the update phase (``Schedule.deferred``).
    targets = plan_out_targets(fgraph, order, roots, updates) if backend.fused_updates else {}
    steps, kept_apart = _steps(fgraph, order, slot, backend, targets)
    schedule = Schedule(n_inputs, template, shared_reads, steps, outputs, updates)
    if targets:
        moved = {id(p) for plans in targets.values() for p in plans}
        schedule.updates = [p for p in updates if id(p) not in moved]
        schedule.deferred = [Deferred(step.node, step, targets[step.node])
                             for step in kept_apart]
    return schedule


def _steps(fgraph, order, slot, backend, targets):
    """``(table, apart)``: the ``StepTable`` of the nodes in ``order`` but
    ``targets``, and a ``Step`` for each of those (run in the update phase,
    after every step). A slot is freed by its last reader, except the
    outputs' and those that ``targets`` nodes read. (Loops, not
    comprehensions, per node: each comprehension is a call in Python 3.11.)"""
    last_reader = {}
    for k, node in enumerate(order):
        for inp in node.inputs:
            last_reader[inp] = k
    # (-1: read by no step index, so never freed; nor freed as unread)
    last_reader.update(dict.fromkeys(fgraph.outputs, -1))
    for node in targets:
        last_reader.update(dict.fromkeys(node.inputs, -1))
    table = StepTable(slot, backend)
    rows, apart = [], []
    row, row_fn = table.row, _RowFns(backend)
    for k, node in enumerate(order):
        if targets and node in targets:
            fn = row_fn.callable(node)
            apart.append(table.step(node, fn, None))
            continue
        frees = None
        for v in node.inputs:
            if last_reader[v] == k:
                frees = slot[v] if frees is None else _add_free(frees, slot[v])
        for o in node.outputs:
            if o not in last_reader:
                frees = slot[o] if frees is None else _add_free(frees, slot[o])
        rows.append(row(node, *row_fn(node), frees))
    table.fill(rows)
    return table, apart


def _add_free(frees, i):
    """A ``frees`` entry (one slot or a sorted tuple) with slot ``i`` added."""
    both = sorted({i, frees} if type(frees) is int else {i, *frees})
    return both[0] if len(both) == 1 else tuple(both)


class _RowFns:
    """``row_fn(node) -> (fn, kind)``: ``(f, ONE)``, the node's
    ``f(*arrays)`` (``impl_for``, wrapped by ``backend.step_wrapper`` when
    it asks for the op), or ``(impl, IMPL_ONE)``: an op's own plain ``impl``,
    called ``impl(op, xp, *arrays)`` (no ``partial`` per node). What depends
    on the op's class alone is found once per class."""

    def __init__(self, backend):
        self.backend = backend
        self.by_class = {}   # op class -> (wrapped, its plain impl or None)

    def __call__(self, node):
        op = node.op
        found = self.by_class.get(type(op))
        if found is None:
            found = self.by_class[type(op)] = self._class_facts(type(op))
        wrapped, impl = found
        if wrapped:
            return self.backend.step_wrapper(node, impl_for(node, self.backend.xp)), ONE
        # (``op.impl`` is that function bound, unless the op was given its
        # own: the bound method is made to ask, and dropped)
        if (impl is not None and getattr(op, "impl_for", None) is None
                and getattr(op.impl, "__func__", None) is impl):
            return impl, IMPL_ONE
        return impl_for(node, self.backend.xp), ONE

    def _class_facts(self, cls):
        backend = self.backend
        if backend.step_wrapper is not None and issubclass(cls, backend.wrapped_ops):
            return True, None
        impl = getattr(cls, "impl", None)
        if type(impl) is not FunctionType or class_uses_perform(cls):
            impl = None   # (not a plain function, or a Theano-protocol op)
        return False, impl

    def callable(self, node):
        """The node's ``f(*arrays)``."""
        fn, kind = self(node)
        return partial(fn, node.op, self.backend.xp) if kind == IMPL_ONE else fn


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
    """``(roots, views)``: ``roots[v]``, the buffers ``v``'s value may share
    memory with, as the variables that made them (inputs, constants,
    outputs of nodes that are no view: ``v`` itself unless it is a view);
    ``views``: the variables asked so far that may be views.

    Only the variables that made a buffer are kept, not every view between
    (a chain of n in-place nodes would hold O(n^2) of those): two values
    share memory when their roots meet, and whatever ``roots`` is compared
    with (inputs, constants, shared variables, other roots) is made of such
    variables too. ``_view_closure`` gives the views as well. ``roots`` is
    worked out at first ask, through the views above the variable only (a
    frozenset per node output of a 12k-node graph cost ~0.03 s); its
    ``values()`` asks for every variable of ``order``."""
    roots = _AliasRoots(order)
    return roots, roots.views


class _AliasRoots(dict):
    """``_alias_roots``' mapping: a variable's roots made by ``__missing__``."""

    def __init__(self, order):
        super().__init__()
        self.order = order
        self.views = set()

    def __missing__(self, var):
        # (iterative: a chain of 10^4 in-place nodes is as deep; each
        # entry with its sources, found once)
        stack = [(var, _view_sources(var))]
        while stack:
            v, srcs = stack[-1]
            missing = [s for s in srcs if s not in self]
            if missing:
                stack += [(s, _view_sources(s)) for s in missing]
                continue
            stack.pop()
            if v in self:   # (reached twice)
                continue
            if not srcs:
                self[v] = frozenset((v,))
                continue
            self.views.add(v)
            self[v] = (self[srcs[0]] if len(srcs) == 1
                       else frozenset().union(*(self[s] for s in srcs)))
        return self[var]

    def values(self):
        for node in self.order:
            for out in node.outputs:
                self[out]
        return super().values()


def _view_sources(var):
    """The inputs of ``var``'s node that ``var`` may be a view of (view or
    destroyed), or ``()``."""
    node = var.owner
    if node is None:
        return ()
    op = node.op
    view_map, destroy_map = op.view_map, op.destroy_map
    if not view_map and not destroy_map:
        return ()
    k = 0 if len(node.outputs) == 1 else node.outputs.index(var)
    return [node.inputs[j] for j in list(view_map.get(k, ())) + list(destroy_map.get(k, ()))]


def _view_closure(var):
    """``var`` and every variable it may be a view of, through any chain of
    views (what ``_alias_roots`` leaves out)."""
    seen = {var}
    stack = [var]
    while stack:
        v = stack.pop()
        for src in _view_sources(v):
            if src not in seen:
                seen.add(src)
                stack.append(src)
    return seen


def _check_destroyers(order, roots, protected, outputs):
    """Refuse plans that overwrite a buffer the caller or a later call can
    see: inputs, constants, shared buffers, or another output's value.
    (``isdisjoint`` first: no set made per destroyer unless it hits.)"""
    closures = {}
    for node in order:
        destroy_map = node.op.destroy_map
        if not destroy_map:
            continue
        for srcs in destroy_map.values():
            for j in srcs:
                destroyed = roots[node.inputs[j]]
                if not destroyed.isdisjoint(protected):
                    hit = destroyed & protected
                else:
                    hit = set()
                    for o in outputs:
                        if roots[o].isdisjoint(destroyed):
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
        elif out in is_view:
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
def fail_at(steps, k, storage, exc):
    step = steps[k]
    reraise_with_context(step.node, [storage[i] for i in step.ins], exc)


def wrong_count(node, results, n_out):
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
    env.update(ndarray=backend.ndarray, fail=fail_at, wrong_count=wrong_count, steps=steps)
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
