"""``Function``: the callable a ``tg.function`` call returns.

A call binds its arguments to the inputs, casts them (``casting``), copies
the schedule's storage template (storage belongs to the call, so threads can
call one function at once), reads the shared buffers, runs the steps, copies
what must not alias, and only then writes the updates into the shared
buffers (``publish``): if anything raises before that point no shared
variable changes, and the writes themselves cannot be interrupted halfway.
Calls with updates hold one lock for the whole call, so concurrent updating
calls take turns and read-modify-write updates are never lost. Calls that
only read shared variables take no lock but register as readers for their
whole compute; an update is written only when no other thread's reader is
registered, so every call sees each shared value wholly before or wholly
after another call's updates (``publish``'s module doc).
"""
import threading
from time import perf_counter
from typing import Any

import numpy as np

from tracegrad.compile.casting import make_filter
from tracegrad.compile.inputs import Binder, batch_filter, describe_input
from tracegrad.compile.mode import NodeStorage
from tracegrad.collector import paused as gc_paused
from tracegrad.compile.profile import ProfileStats
from tracegrad.compile.publish import (PUBLISH, READERS, UPDATE_LOCK, copy_value,
                                       wait_turn, write_updates)
from tracegrad.compile import warnpoint
from tracegrad.compile.schedule import (AS_IS, COPY, STRAIGHT_LINE_STEPS, build_schedule,
                                        fail_at, free_slots, steps_source, wrong_count)
from tracegrad.printing import update_kinds



class Function:
    """A compiled function; call it with values for its inputs.

    ``f.maker.fgraph`` is the optimized graph; ``f.profile`` the
    ``ProfileStats`` when compiled with ``profile=True`` (else ``None``).
    """

    def __init__(self, maker):
        self.maker = maker
        self.name = maker.name
        self._link()

    def _link(self):
        maker = self.maker
        fgraph = maker.fgraph
        backend = maker.backend
        fname = maker.display_name
        n_inputs = len(maker.inputs)
        filters = []
        defaults = []
        for k, spec in enumerate(maker.inputs):
            ttype = fgraph.inputs[k].type
            what = describe_input(spec, k, fname)
            allow = maker.allow_input_downcast if spec.allow_downcast is None \
                else spec.allow_downcast
            filt = make_filter(ttype, what, allow, backend, spec.strict)
            filters.append(filt)
            defaults.append(_own_default(filt, spec.value) if spec.has_default else None)
        self._binder = Binder(maker.inputs, defaults, fname)
        self._n_inputs = n_inputs
        self._filters = filters
        self._trust_input = False
        schedule = build_schedule(fgraph, n_inputs, [o.borrow for o in maker.outputs], backend)
        self.schedule = schedule
        self.profile = None
        if maker.profile:
            self.profile = ProfileStats(fname, [step.node for step in schedule.steps])
            self.profile.compile_time = maker.compile_time
        self._run = self._first_call(make_runner(schedule, filters, maker.single, backend,
                                                 self.profile, getattr(maker, "monitor", None)))

    def _first_call(self, run):
        """``run`` for the first call, which makes the fused programs (for a
        graph of 10^4 clusters, ~10^5 objects that all survive): made with
        the collector paused, as the compile was, instead of paying the
        collector's full passes over the compiled graph on the way. Later
        calls run ``run`` itself."""
        def first(args):
            self._run = run
            with gc_paused():
                return run(args)
        first.__wrapped__ = run
        return first

    @property
    def trust_input(self):
        """Theano's ``trust_input``: when ``True``, an argument that already
        is an array of the input's exact type (array class, dtype, ndim and
        static lengths) is used without the checks and casts of a call;
        anything else is still checked and cast, so a wrong argument is
        never used as is."""
        return self._trust_input

    @trust_input.setter
    def trust_input(self, value):
        self._trust_input = bool(value)
        filters = self._filters
        if self._trust_input:
            filters = [trusting_filter(f, var.type, self.maker.backend.ndarray)
                       for f, var in zip(filters, self.maker.fgraph.inputs)]
        self._run = make_runner(self.schedule, filters, self.maker.single, self.maker.backend,
                                self.profile, getattr(self.maker, "monitor", None))

    def copy(self, share_memory=False, swap=None, delete_updates=False, name=None):
        """Theano's ``Function.copy``: the same function compiled again,
        with the shared variables of ``swap`` (``{old: new}``, same types)
        used in place of the old ones, and without updates when
        ``delete_updates``. ``share_memory`` is accepted for Theano's
        signature: each call already has its own intermediate storage."""
        spec = getattr(self.maker, "spec", None)
        if spec is None:
            raise TypeError(f"{self!r}.copy(): this function was unpickled from an older "
                            "tracegrad without its source graph; compile it again")
        return spec.rebuild(swap or {}, delete_updates, name)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        """Run the function: one array for a single output, a list for a
        list of outputs; arguments by position or by input name."""
        if kwargs or len(args) != self._n_inputs:
            args = self._binder.bind(args, kwargs)
        return self._run(args)

    def __reduce__(self):
        return (Function, (self.maker,))

    def __repr__(self):
        """``Function('step', inputs=[x: float64 (None, 784)], outputs=[float64 ()],
        updates=[W (copied)])``: the name when given, each input's and
        output's name (when it has one), dtype and static shape, and the
        shared variables the call updates, and how (``printing.update_kinds``)."""
        fgraph = self.maker.fgraph
        parts = [] if self.maker.name is None else [repr(self.maker.name)]
        inputs = [_typed_label(spec.name or var.name, var)
                  for spec, var in zip(self.maker.inputs, fgraph.inputs)]
        outputs = [_typed_label(var.name, var) for var in fgraph.user_outputs]
        parts.append(f"inputs=[{', '.join(inputs)}]")
        parts.append(f"outputs=[{', '.join(outputs)}]")
        updates = update_kinds(self)
        if updates:
            parts.append(f"updates=[{', '.join(f'{s} ({how})' for s, how in updates)}]")
        return f"Function({', '.join(parts)})"


def _typed_label(name, var):
    """``x: float64 (None, 784)``, or the type alone for an unnamed variable."""
    t = var.type
    shape = getattr(t, "shape", None)
    text = f"{t.dtype} {shape!r}" if hasattr(t, "dtype") and isinstance(shape, tuple) \
        else str(t)
    return text if name is None else f"{name}: {text}"


def trusting_filter(filt, ttype, ndarray):
    """``filt`` skipped for arrays already of exactly ``ttype``."""
    dtype, ndim = np.dtype(ttype.dtype), ttype.ndim
    known = [(k, n) for k, n in enumerate(ttype.shape) if n is not None]

    def trusted(a):
        if (type(a) is ndarray and a.dtype == dtype and a.ndim == ndim
                and all(a.shape[k] == n for k, n in known)):
            return a
        return filt(a)
    return trusted


def _own_default(filt, value):
    # The function keeps its own copy: later changes to the caller's array
    # must not change the default.
    array = filt(value)
    return copy_value(array) if array is value else array


# ``hook(schedule, run) -> run``, applied in order to every call function
# made (at link time, and again when ``trust_input`` changes): a package
# above the compile layer may check the schedule or wrap the call
# (tracegrad.distributed: ranks agree on the graph; abort on error).
RUN_HOOKS = []


def make_runner(schedule, filters, single, backend, profile=None, monitor=None):
    """The function ``run(args) -> results`` of a call (see the module doc),
    generated as straight-line code once per function: each input's filter,
    the shared reads, every step (``schedule.steps_source``), the output
    copies and the updates, with no loop or call per step (a schedule of
    more than ``STRAIGHT_LINE_STEPS`` steps runs them as one loop over a
    table instead, ``run_table``: compiling its lines would cost
    more than the loop ever does)."""
    env = dict(tail=schedule.template[schedule.n_inputs:], LOCK=UPDATE_LOCK,
               R=READERS, P=PUBLISH, ident=threading.get_ident, wait_turn=wait_turn,
               backend=backend, finish=_finish, write_updates=write_updates,
               updates=schedule.updates, deferred=schedule.deferred,
               profile=profile, run_profiled=_run_profiled, runs=None)
    for k, f in enumerate(filters):
        env[f"f{k}"] = f
    head = ["s = [" + ", ".join(f"f{k}(args[{k}])" for k in range(len(filters))) + "]",
            "s += tail"]
    check = batch_filter(filters, backend.ndarray)  # (many inputs: one pass)
    if check is not None:
        env["check"] = check
        head[0] = "s = check(args)"
    reads = []
    for k, (slot, container) in enumerate(schedule.shared_reads):
        env[f"c{k}"] = container
        reads.append(f"s[{slot}] = c{k}.value")
    locked = bool(schedule.updates or schedule.deferred)
    # A call that only reads shared buffers is a registered reader from
    # before its first read until its outputs are copied (``publish``).
    reader = bool(reads) and not locked
    if locked:
        prefix = ["with LOCK:"] + _indent(head + reads)
    elif reader:
        prefix = head + ["k = id(s)", "try:"] + _indent(
            ["R[k] = ident()", "if P.locked(): wait_turn(k)"] + reads)
    else:
        prefix = head + reads
    inner = _step_lines(schedule, env, backend, profile, monitor, len(prefix) + 2)
    results = []
    for m, (slot, mode) in enumerate(schedule.outputs):
        inner.append(f"o{m} = s[{slot}]" if mode == AS_IS else f"o{m} = finish(s[{slot}], {mode})")
        results.append(f"o{m}")
    if locked:
        inner.append("write_updates(s, updates, deferred, backend)")
    ret = f"return {results[0]}" if single else f"return [{', '.join(results)}]"
    if locked:
        body = prefix + _indent(inner + [ret])
    elif reader:
        body = prefix + _indent(inner) + ["finally:", "    R.pop(k, None)", ret]
    else:
        body = prefix + inner + [ret]
    source = "def run(args):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, "<tracegrad function>", "exec"), env)
    run = env["run"]
    if profile is not None:
        run = _timed(run, profile)
    for hook in RUN_HOOKS:
        run = hook(schedule, run)
    return run


def _indent(lines):
    return [f"    {line}" for line in lines]


def _finish(value, mode):
    if mode == COPY or not getattr(getattr(value, "flags", None), "writeable", True):
        return copy_value(value)
    return value


def _step_lines(schedule, env, backend, profile, monitor, first_line):
    """The lines of the generated function that run the steps (``env``
    gets what they name); ``first_line``: the source line they start at."""
    if monitor is not None:
        # (MonitorMode / NanGuardMode: the user's functions around every node)
        env.update(steps=schedule.steps, monitor=monitor, run_monitored=_run_monitored)
        return ["run_monitored(s, steps, monitor)"]
    if profile is not None:
        env.update(runs=[step.run for step in schedule.steps], steps=schedule.steps)
        return ["run_profiled(s, steps, runs, profile)"]
    if len(schedule.steps) > STRAIGHT_LINE_STEPS:
        # (a big schedule: a loop, compiled once, not a line per step)
        env.update(steps=schedule.steps, run_table=run_table, ndarray=backend.ndarray)
        return ["run_table(s, steps, ndarray)"]
    # (source line 1 is the ``def``)
    return list(steps_source(schedule.steps, env, backend, first_line))


def _run_monitored(s, steps, monitor):
    for i, step in enumerate(steps):
        cells = NodeStorage([[s[k]] for k in step.ins], [[None] for _ in step.outs])
        if monitor.pre is not None:
            monitor.pre(i, step.node, cells)
        step.run(s)
        for cell, k in zip(cells.outputs, step.outs):
            cell[0] = s[k]
        if monitor.post is not None:
            monitor.post(i, step.node, cells)


def _run_profiled(s, steps, runs, profile):
    times = [None] * len(runs)
    try:
        for k, run in enumerate(runs):
            t0 = perf_counter()
            run(s)
            times[k] = perf_counter() - t0
    finally:
        profile.record_nodes(times)


def run_table(s, steps, ndarray):
    """Run the ``StepTable`` ``steps`` over the storage ``s`` (what the
    generated lines of ``schedule.steps_source`` do, as a loop). (The kinds are
    written as numbers: comparing with a literal is cheaper than with a
    global name, 12k times a call.)"""
    xp, fixes = steps.backend.xp, steps.fixes
    k = 0
    try:
        for node, fn, kind, a, b, o, dt, frees in zip(
                steps.nodes, steps.fns, steps.kinds, steps.a, steps.b, steps.outs,
                steps.dtypes, steps.frees):
            if kind == 0:       # ONE
                r = fn(s[a])
            elif kind == 1:     # TWO
                r = fn(s[a], s[b])
            elif kind == 3:     # IMPL_ONE
                r = fn(node.op, xp, s[a])
            elif kind == 4:     # IMPL_TWO
                r = fn(node.op, xp, s[a], s[b])
            elif kind == 2:     # MANY
                r = fn(*a(s))
            elif kind == 5:     # IMPL_MANY
                r = fn(node.op, xp, *a(s))
            elif kind == 6:     # MULTI
                _run_multi(s, node, fn, a, o, dt, frees, fixes, ndarray)
                k += 1
                continue
            else:               # OWN_RUN
                a.run(s)
                k += 1
                continue
            s[o] = r if type(r) is ndarray and r.dtype is dt else fixes[dt](r)
            if frees is not None:
                if type(frees) is int:
                    s[frees] = None
                else:
                    for i in frees:
                        s[i] = None
            k += 1
    except Exception as exc:
        fail_at(steps, k, s, exc)


def _run_multi(s, node, fn, ins, outs, dtypes, frees, fixes, ndarray):
    """A ``MULTI`` row of ``run_table``: as ``schedule._step_line`` writes a
    step of several array outputs."""
    results = fn(*[s[i] for i in ins])
    if len(results) != len(outs):
        wrong_count(node, results, len(outs))
    for o, dt, r in zip(outs, dtypes, results):
        s[o] = r if type(r) is ndarray and r.dtype is dt else fixes[dt](r)
    for i in free_slots(frees):
        s[i] = None


warnpoint.LOOPS[run_table.__code__] = lambda frame: step_in_locals(frame, "k")


def step_in_locals(frame, index):
    """The node of ``steps[<index>]`` in a loop's frame, or ``None``."""
    local = frame.f_locals
    steps, k = local.get("steps"), local.get(index)
    return steps[k].node if steps is not None and k is not None and k < len(steps) else None


# (which step runs: for NumPy's warnings, ``warnpoint``)
warnpoint.LOOPS[_run_monitored.__code__] = lambda frame: frame.f_locals["step"].node
warnpoint.LOOPS[_run_profiled.__code__] = lambda frame: step_in_locals(frame, "k")


def _timed(run, profile):
    def run_timed(args):
        start = perf_counter()
        try:
            return run(args)
        finally:
            profile.record_call(perf_counter() - start)
    return run_timed
