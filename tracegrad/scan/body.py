"""The loop body of ``Scan``: its static layout (``ScanSpec``), the inner
graph compiled once per device (``InnerGraph``), and ``cut_body``, which
splits a traced body into what runs per step and what is computed once.

Both the op (``scan/op.py``) and its gradient (``scan/grad.py``) build on
these; neither imports the other's module for them.
"""
import threading
from collections import namedtuple

import numpy as np

from tracegrad.evaluate import evaluate
from tracegrad.trace import Constant, clone_replace, toposort

_ScanSpecFields = namedtuple("ScanSpecFields", [
    "seq_offsets",     # per sequence: offsets (>= 0) read at step t as x[t + offset]
    "seq_spans",       # per sequence: rows beyond the step index a step may use (Theano's
                       # max(max tap, 0) - min(min tap, 0)); steps = len - span
    "rec_taps",        # per recurrent output: taps, negative, increasing
    "rec_stacked",     # per recurrent output: False when the initial value has no leading axis
    "n_nit",           # number of outputs without recurrence
    "n_nonseq",        # number of non-sequences
    "has_n_steps",     # whether the first outer input is n_steps
    "has_until",       # whether the inner graph's last output is a stop condition
    "keep",            # per buffer (recurrent, then nit): None = all rows, K = last K rows
    "truncate_gradient",
    "name",
])


class ScanSpec(_ScanSpecFields):
    """The static layout of a loop (hashable; see the field comments)."""

    __slots__ = ()

    def __repr__(self):
        parts = [f"seqs={len(self.seq_offsets)}"]
        if any(offs != (0,) for offs in self.seq_offsets):
            parts.append(f"seq_offsets={list(map(list, self.seq_offsets))}")
        if self.rec_taps:
            parts.append(f"taps={list(map(list, self.rec_taps))}")
        if self.n_nit:
            parts.append(f"nit={self.n_nit}")
        if any(k is not None for k in self.keep):
            parts.append(f"keep={list(self.keep)}")
        if self.has_until:
            parts.append("until")
        if self.truncate_gradient > 0:
            parts.append(f"truncate_gradient={self.truncate_gradient}")
        return ", ".join(parts)


class InnerGraph:
    """The loop body: placeholder inputs, output variables and the compiled
    function for each device (built on first use, then reused every step)."""

    def __init__(self, inputs, outputs, mode=None):
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        # ``scan(mode=...)``: how the body is compiled (None: tg.config.optimizer);
        # a MonitorMode / DebugMode here watches the body's nodes every step.
        self.mode = mode
        self._init_cache()

    def __repr__(self):
        n_nodes = len(toposort(self.outputs, blockers=self.inputs))
        return f"body({len(self.inputs)} inputs, {n_nodes} nodes, {len(self.outputs)} outputs)"

    def _init_cache(self):
        self._compiled = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        # (a mode object's hooks are the user's functions: pickled as its optimizer)
        mode = self.mode if self.mode is None or isinstance(self.mode, str) \
            else getattr(self.mode, "optimizer", None)
        return {"inputs": self.inputs, "outputs": self.outputs, "mode": mode}

    def __setstate__(self, state):
        self.inputs = state["inputs"]
        self.outputs = state["outputs"]
        self.mode = state.get("mode")
        self._init_cache()

    def function(self, xp):
        """A callable ``f(*arrays) -> list of arrays`` for the device of ``xp``."""
        device = "cpu" if xp is np else "cuda"
        fn = self._compiled.get(device)
        if fn is None:
            with self._lock:
                fn = self._compiled.get(device)
                if fn is None:
                    fn = self._compiled[device] = _compile(self.inputs, self.outputs,
                                                           device, xp, self.mode)
        return fn


# How loop bodies are compiled: ``tg.function``. ``tracegrad.compile`` sits
# above ``scan`` (it compiles graphs holding scans), so it hands its
# ``function`` over when imported (``import tracegrad`` does, before any
# graph runs) rather than being imported here.
_compile_function = None


def set_body_compiler(function):
    """Compile loop bodies with ``function`` (``tracegrad.compile.function``)."""
    global _compile_function
    _compile_function = function


def _compile(inputs, outputs, device, xp, mode=None):
    """Compile the body with ``tg.function`` (so it is rewritten and fused like
    any graph); the reference evaluator stands in where that is unavailable."""
    if _compile_function is None:
        raise RuntimeError("scan bodies are compiled by tracegrad.compile: import tracegrad")
    try:
        fn = _compile_function(list(inputs), list(outputs), on_unused_input="ignore",
                               device=device, mode=mode)
    except NotImplementedError:
        def run(*values):
            return evaluate(list(outputs), dict(zip(inputs, values)), xp)
        return run
    return fn


def cut_body(outputs, placeholders, blockers, outer_of=None):
    """Split the traced body into the loop body and what is computed once.

    Returns ``(outer, inner, outputs)``: the loop-invariant variables consumed
    by per-step computations (the largest sub-expressions of the body that
    depend on no per-step ``placeholders``; constants stay inside), fresh
    placeholders standing for them inside the body, and the body's outputs
    rebuilt on those placeholders. ``outer_of`` maps invariant roots of the
    body to the outer variables they stand for (empty when the roots are outer
    variables already).
    """
    variant = set(placeholders)
    hoisted = []
    marked = set()

    def hoist(var):
        if var not in variant and not isinstance(var, Constant) and var not in marked:
            marked.add(var)
            hoisted.append(var)

    for node in toposort(outputs, blockers=set(placeholders) | set(blockers)):
        if any(i in variant for i in node.inputs):
            variant.update(node.outputs)
            for i in node.inputs:
                hoist(i)
    for out in outputs:
        hoist(out)
    inner = []
    for h in hoisted:
        ph = h.type()
        ph.name = h.name
        inner.append(ph)
    outputs, _ = clone_replace(outputs, dict(zip(hoisted, inner)), blockers=hoisted)
    if outer_of:
        hoisted, _ = clone_replace(hoisted, outer_of)
    return hoisted, inner, outputs
