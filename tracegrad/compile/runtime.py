"""``Function``: the callable a ``tg.function`` call returns.

A call binds its arguments to the inputs, casts them (``casting``), copies
the schedule's storage template (storage belongs to the call, so threads can
call one function at once), reads the shared buffers, runs the steps, copies
what must not alias, and only then writes the updates into the shared
buffers. If anything raises before that point no shared variable changes.
Calls with updates hold one lock for the whole call, so concurrent updating
calls take turns and read-modify-write updates are never lost. Calls without
updates take no lock: one that reads shared variables while another thread
writes its updates may see some buffers before and some after that write.
"""
import copy
import threading
from time import perf_counter

from tracegrad.backend.inplace import launch_deferred, prepare_deferred
from tracegrad.compile.casting import make_filter
from tracegrad.compile.inputs import Binder, describe_input
from tracegrad.compile.profile import ProfileStats
from tracegrad.compile.schedule import AS_IS, COPY, build_schedule, steps_source

# Reentrant: an op may itself call a compiled function with updates.
UPDATE_LOCK = threading.RLock()


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
        schedule = build_schedule(fgraph, n_inputs, [o.borrow for o in maker.outputs], backend)
        self.schedule = schedule
        self.profile = None
        if maker.profile:
            self.profile = ProfileStats(fname, [step.node for step in schedule.steps])
            self.profile.compile_time = maker.compile_time
        self._run = make_runner(schedule, filters, maker.single, backend, self.profile)

    def __call__(self, /, *args, **kwargs):
        if kwargs or len(args) != self._n_inputs:
            args = self._binder.bind(args, kwargs)
        return self._run(args)

    def __reduce__(self):
        return (Function, (self.maker,))

    def __repr__(self):
        return f"<tracegrad Function {self.maker.display_name}>"


def _own_default(filt, value):
    # The function keeps its own copy: later changes to the caller's array
    # must not change the default.
    array = filt(value)
    return copy_value(array) if array is value else array


def make_runner(schedule, filters, single, backend, profile=None):
    """The function ``run(args) -> results`` of a call (see the module doc),
    generated as straight-line code once per function: each input's filter,
    the shared reads, every step (``schedule.steps_source``), the output
    copies and the updates, with no loop or call per step."""
    env = dict(tail=schedule.template[schedule.n_inputs:], LOCK=UPDATE_LOCK,
               ndarray=backend.ndarray,
               finish=_finish, copy_value=copy_value, write_updates=write_updates,
               updates=schedule.updates, deferred=schedule.deferred,
               copyto=backend.xp.copyto, xp=backend.xp, profile=profile,
               run_profiled=_run_profiled, runs=None)
    body = ["s = [" + ", ".join(f"f{k}(args[{k}])" for k in range(len(filters))) + "]",
            "s += tail"]
    for k, f in enumerate(filters):
        env[f"f{k}"] = f
    for k, (slot, container) in enumerate(schedule.shared_reads):
        env[f"c{k}"] = container
        body.append(f"s[{slot}] = c{k}.value")
    locked = bool(schedule.updates or schedule.deferred)
    if profile is None:
        # (source line 1 is the ``def``, line 2 ``with LOCK:`` when locked)
        body += steps_source(schedule.steps, env, backend, len(body) + 2 + locked)
    else:
        env["runs"] = [step.run for step in schedule.steps]
        body.append("run_profiled(s, runs, profile)")
    results = []
    for m, (slot, mode) in enumerate(schedule.outputs):
        body.append(f"o{m} = s[{slot}]" if mode == AS_IS else f"o{m} = finish(s[{slot}], {mode})")
        results.append(f"o{m}")
    if locked:
        body.append("write_updates(s, updates, copyto, ndarray, deferred, xp)")
    body.append(f"return {results[0]}" if single else f"return [{', '.join(results)}]")
    if locked:
        body = ["with LOCK:"] + [f"    {line}" for line in body]
    source = "def run(args):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, "<tracegrad function>", "exec"), env)
    run = env["run"]
    if profile is not None:
        run = _timed(run, profile)
    return run


def _finish(value, mode):
    if mode == COPY or not getattr(getattr(value, "flags", None), "writeable", True):
        return copy_value(value)
    return value


def write_updates(s, plans, copyto, ndarray, deferred=(), xp=None):
    """Write each update's value into its shared buffer (or replace the
    buffer when the shape changed); every value is taken before any write.
    ``deferred`` fused kernels write their updates into the buffers
    themselves (``tracegrad.backend.inplace``)."""
    if deferred:
        ready, plans = prepare_deferred(s, deferred, plans, ndarray, xp.may_share_memory)
    values = [copy_value(s[p.slot]) if p.snapshot else s[p.slot] for p in plans]
    if deferred:
        launch_deferred(ready, xp)
    for plan, value in zip(plans, values):
        container = plan.container
        buffer = container.value
        if value is buffer:
            continue
        if (type(buffer) is ndarray and type(value) is ndarray
                and buffer.shape == value.shape
                and getattr(buffer.flags, "writeable", True)):
            copyto(buffer, value)
        elif plan.fresh and getattr(getattr(value, "flags", None), "writeable", True):
            container.value = value
        else:
            container.value = copy_value(value)


def copy_value(value):
    """An independent copy of a value (an array, or any other object)."""
    method = getattr(value, "copy", None)
    return method() if method is not None else copy.deepcopy(value)


def _run_profiled(s, runs, profile):
    times = [None] * len(runs)
    try:
        for k, run in enumerate(runs):
            t0 = perf_counter()
            run(s)
            times[k] = perf_counter() - t0
    finally:
        profile.record_nodes(times)


def _timed(run, profile):
    def run_timed(args):
        start = perf_counter()
        try:
            return run(args)
        finally:
            profile.record_call(perf_counter() - start)
    return run_timed
