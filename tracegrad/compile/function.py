"""``tg.function``: check the arguments, build and optimize the graph, link.

The steps: normalize inputs / outputs / updates / givens; substitute the
givens (new nodes, the user's graph is never modified); add the shared
variables' default updates; judge unused inputs on that graph; then the
pipeline (``pipeline.py``) clones it into a ``FunctionGraph``, rewrites,
fuses and plans in-place work, and ``runtime.Function`` links the schedule.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping, Sequence, Union
from time import perf_counter

from tracegrad.backend import c as c_tier
from tracegrad.backend import lone
from tracegrad.backend import numpy as numpy_backend
from tracegrad.backend.cupy import kernel as cupy_kernels
from tracegrad.backend import check_devices, get_backend
from tracegrad.collector import paused as gc_paused
from tracegrad.compile import pipeline
from tracegrad.compile.inputs import In, Out, input_label, normalize_inputs, normalize_outputs
from tracegrad.compile.debugmode import DebugMode, is_debug_mode_name
from tracegrad.compile.runtime import Function
from tracegrad.compile.fgraph import graph_state, rebuild_graph
from tracegrad.compile.updates import (apply_givens, default_updates, normalize_givens,
                                       normalize_updates)
from tracegrad.progress import begin as compile_progress
from tracegrad.shared import SharedVariable
from tracegrad.trace import Variable, user_source_location

_UNUSED_MODES = ("raise", "warn", "ignore")


class UnusedInputError(ValueError):
    """An explicit input does not take part in computing the outputs."""


# The backends register with fusion (``fuse.targets``): fused clusters on
# NumPy arrays run the NumPy backend's programs, whose large calls may run
# compiled kernels (issue 18), on CuPy arrays one CUDA kernel; lone
# elementwise nodes' large calls reach the compiled tier (``backend.lone``).
numpy_backend.install()
c_tier.install()
cupy_kernels.install()
lone.install()


# The public signature's argument types (the checks below accept exactly these).
# (Mapping's key type is invariant: a dict keyed by SharedVariable must fit too.)
_Pairs = Union[Mapping[Any, Any], Iterable[tuple[Variable, Any]]]


def function(inputs: Sequence[Variable | In],
             outputs: Variable | Out | Sequence[Variable | Out] | None = None,
             updates: _Pairs | None = None, givens: _Pairs | None = None,
             no_default_updates: bool | Iterable[SharedVariable] = False,
             on_unused_input: str = "raise", allow_input_downcast: bool | None = None,
             name: str | None = None, device: str | None = None, profile: bool = False,
             mode: Any = None) -> Function:
    """Compile a callable computing ``outputs`` from ``inputs``.

    ``inputs``: a list of variables or ``In``; ``outputs``: a variable (the
    call returns one array), a list (a list), or ``None`` (``[]``);
    ``updates``: ``(shared, expression)`` pairs or a dict, applied together
    after each call; ``givens``: pairs or a dict substituting variables;
    ``no_default_updates``: ``True`` or a list of shared variables whose
    ``default_update`` is not applied; ``on_unused_input``: ``'raise'``,
    ``'warn'`` or ``'ignore'``; ``allow_input_downcast``: cast arguments even
    when precision is lost; ``device``: ``'cpu'`` or ``'cuda'`` (default
    ``tg.config.device``); ``profile``: collect time per node in ``f.profile``;
    ``mode``: the optimizer (``'fast_run'``, ``'fast_compile'``, ``'None'``,
    or ``'fast_math'``: fast_run plus algebra that may change a NaN/inf
    result, such as ``x - x -> 0``; default ``tg.config.optimizer``; the
    upper-case Theano names are accepted).
    """
    start = perf_counter()
    if on_unused_input not in _UNUSED_MODES:
        raise ValueError(f"on_unused_input must be one of {_UNUSED_MODES}, "
                         f"got {on_unused_input!r}")
    mode = DebugMode() if is_debug_mode_name(mode) else mode    # Theano's mode='DebugMode'
    requested_mode = mode          # (Function.copy compiles with it again, hooks included)
    monitor = getattr(mode, "monitor", None)        # MonitorMode / NanGuardMode / DebugMode
    skipped = getattr(mode, "excluded", frozenset())  # Mode(...).excluding('inplace')
    mode = pipeline.resolve_mode(mode)
    backend = get_backend(device)
    display_name = _display_name(name)

    in_specs = normalize_inputs(inputs)
    out_specs, single = normalize_outputs(outputs)
    update_pairs = normalize_updates(updates)
    given_pairs = normalize_givens(givens)
    in_vars = [spec.variable for spec in in_specs]

    n_out = len(out_specs)
    rebuilt = apply_givens([o.variable for o in out_specs] + [v for _, v in update_pairs],
                           given_pairs)
    user_outputs = rebuilt[:n_out]
    update_pairs = list(zip([s for s, _ in update_pairs], rebuilt[n_out:]))
    defaults, used, shared_inputs = default_updates(
        rebuilt, [s for s, _ in update_pairs], no_default_updates, given_pairs,
        blockers=in_vars)
    update_pairs += defaults
    all_outputs = user_outputs + [v for _, v in update_pairs]   # (``used`` walked these)

    _check_unused(in_specs, set(used), on_unused_input, display_name)
    check_devices(backend, shared_inputs + [s for s, _ in update_pairs],
                  f"tg.function {display_name}")

    progress = compile_progress(display_name)  # (a line on stderr if slow)
    try:
        # (The collector paused for linking too: building the schedule of
        # 10^4 nodes allocates as much as a rewrite pass.)
        with gc_paused():
            progress.stage("clone")
            fgraph = pipeline.clone(in_vars + shared_inputs, all_outputs,
                                    [s for s, _ in update_pairs])
            if skipped:
                _optimize_without(fgraph, mode, backend.name, skipped)
            else:
                pipeline.optimize_graph(fgraph, mode, backend.name)

            maker = FunctionMaker(
                fgraph, [_In_on(spec, var) for spec, var in zip(in_specs, fgraph.inputs)],
                [o.borrow for o in out_specs], single, mode=mode, name=name,
                display_name=display_name, backend=backend, profile=profile,
                allow_input_downcast=allow_input_downcast)
            maker.compile_time = perf_counter() - start
            maker.monitor = monitor
            maker.spec = FunctionSpec(inputs, outputs, updates, givens, no_default_updates,
                                      on_unused_input, allow_input_downcast, name, device,
                                      profile, requested_mode)
            progress.stage("schedule", len(fgraph.apply_nodes))
            fn = _link(maker, requested_mode, in_vars, all_outputs, n_out, update_pairs)
            fgraph.release_removed()
    finally:
        progress.close()
    if fn.profile is not None:
        fn.profile.compile_time = perf_counter() - start
    return fn


class FunctionSpec:
    """The arguments a function was compiled from (``Function.copy``
    compiles them again, with shared variables swapped or no updates)."""

    def __init__(self, inputs, outputs, updates, givens, no_default_updates,
                 on_unused_input, allow_input_downcast, name, device, profile, mode):
        self.args = dict(inputs=inputs, outputs=outputs, updates=updates, givens=givens,
                         no_default_updates=no_default_updates,
                         on_unused_input=on_unused_input,
                         allow_input_downcast=allow_input_downcast, name=name,
                         device=device, profile=profile, mode=mode)

    def __getstate__(self):
        args = dict(self.args)
        if getattr(args["mode"], "monitor", None) is not None:
            args["mode"] = args["mode"].optimizer   # (its hooks are the user's functions)
        return {"args": args}

    def rebuild(self, swap, delete_updates, name=None):
        args = dict(self.args)
        for old, new in swap.items():
            if not isinstance(old, SharedVariable) or not isinstance(new, SharedVariable):
                raise TypeError("copy(swap=...): keys and values must be shared variables")
            if old.type != new.type:
                raise TypeError(f"copy(swap=...): {old} has type {old.type} but {new} has "
                                f"type {new.type}")
        if delete_updates:
            args["updates"] = None
            args["no_default_updates"] = True
            # The inputs were checked when the original was compiled; one
            # used only by the deleted updates stays a (now ignored) input,
            # as in Theano (its tutorial's ``null_accumulator(9000)``).
            args["on_unused_input"] = "ignore"
        elif swap:
            args["updates"] = [(swap.get(s, s), v) for s, v in normalize_updates(args["updates"])]
        if swap:
            args["givens"] = normalize_givens(args["givens"]) + list(swap.items())
        if name is not None:
            args["name"] = name
        return function(**args)


def _link(maker, mode, in_vars, all_outputs, n_out, update_pairs):
    """The ``Function`` of ``maker``; with ``DebugMode``, a ``DebugFunction``
    holding the graph before rewriting, which each call is checked against."""
    if not isinstance(mode, DebugMode):
        return Function(maker)
    labels = [f"output {k}" for k in range(n_out)] + \
        [f"the update of {s}" for s, _ in update_pairs]
    maker.debug_reference = (mode, in_vars, all_outputs, labels, [s for s, _ in update_pairs])
    return DebugFunction(maker)


class DebugFunction(Function):
    """A function compiled with ``DebugMode``: each call also compares its
    outputs and updates with the graph before rewriting (``BadOptimization``)."""

    def __call__(self, /, *args, **kwargs):
        if kwargs or len(args) != self._n_inputs:
            args = self._binder.bind(args, kwargs)
        debug, in_vars, outputs, labels, updated = self.maker.debug_reference
        expected = debug.reference(in_vars, outputs, args)
        result = self._run(args)
        got = [result] if self.maker.single else list(result)
        got += [s.get_value(borrow=True) for s in updated]
        debug.compare(labels, got, expected)
        return result


def _optimize_without(fgraph, mode, device, skipped):
    """``pipeline.optimize_graph`` without the stages in ``skipped``."""
    pipeline.rewrite(fgraph, mode, device)
    pipeline.graph_passes(fgraph, mode, device)
    if "fusion" not in skipped:
        pipeline.fuse(fgraph, mode, device)
    if "inplace" not in skipped:
        pipeline.plan_inplace(fgraph, mode, device)


def _display_name(name):
    if name is not None:
        return repr(name)
    where = user_source_location()
    if where is None:
        return "<unnamed>"
    filename = where.filename.rsplit("/", 1)[-1]
    return f"<unnamed, compiled at {filename}:{where.lineno}>"


def _In_on(spec, var):
    """A copy of ``spec`` about the graph's own input ``var``."""
    return In(var, name=spec.name, value=spec.value, strict=spec.strict,
              allow_downcast=spec.allow_downcast)


def _check_unused(in_specs, used, on_unused_input, display_name):
    unused = [(k, spec) for k, spec in enumerate(in_specs) if spec.variable not in used]
    if not unused or on_unused_input == "ignore":
        return
    names = ", ".join(input_label(spec, k) for k, spec in unused)
    message = (f"tg.function {display_name}: {names} "
               f"{'is' if len(unused) == 1 else 'are'} not used to compute the outputs "
               "or updates; pass on_unused_input='ignore' (or 'warn') to allow this")
    if on_unused_input == "raise":
        raise UnusedInputError(message)
    warnings.warn(message, stacklevel=3)


class FunctionMaker:
    """What a compiled function was made from: ``fgraph`` (the optimized
    ``FunctionGraph``), ``inputs`` (``In`` specs over ``fgraph.inputs``),
    ``outputs`` (``Out`` specs over ``fgraph``'s user outputs), ``mode``."""

    def __init__(self, fgraph, inputs, borrow, single, mode, name, display_name, backend,
                 profile=False, allow_input_downcast=None):
        self.fgraph = fgraph
        self.inputs = inputs
        self.outputs = [Out(var, b) for var, b in zip(fgraph.user_outputs, borrow)]
        self.single = single
        self.mode = mode
        self.name = name
        self.display_name = display_name
        self.backend = backend
        self.profile = bool(profile)
        self.allow_input_downcast = allow_input_downcast
        self.compile_time = 0.0

    @property
    def updates(self):
        """``[(shared variable, new value variable)]`` in the optimized graph."""
        return self.fgraph.update_pairs()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["fgraph"] = graph_state(self.fgraph)
        state["inputs"] = [(spec.name, spec.value, spec.strict, spec.allow_downcast)
                           for spec in self.inputs]
        state["outputs"] = [o.borrow for o in self.outputs]
        # A monitor's hooks are the user's functions (often lambdas): the
        # unpickled function runs without them.
        state["monitor"] = None
        state.pop("debug_reference", None)    # (DebugMode's checks are not pickled either)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.fgraph = rebuild_graph(state["fgraph"])
        self.inputs = [In(var, name=name, value=value, strict=strict, allow_downcast=allow)
                       for var, (name, value, strict, allow)
                       in zip(self.fgraph.inputs, state["inputs"])]
        self.outputs = [Out(var, b) for var, b in zip(self.fgraph.user_outputs,
                                                       state["outputs"])]
