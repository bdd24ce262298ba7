"""The ``Scan`` op: a loop whose body is an inner graph, compiled once.

Outer inputs, in order: ``n_steps`` (when given), the sequences, the initial
values of the recurrent outputs, the non-sequences. The inner graph's inputs
are, in order: one slice per (sequence, offset) -- ``x[t + offset]`` at step
``t`` --, one previous value per (recurrent output, tap) -- the value ``tap``
steps back --, then the non-sequences. Its outputs: the new value of each
recurrent output, each output without recurrence ("nit"), and, with
``until``, the stop condition.

Outer outputs: per recurrent output its *buffer*: the ``L`` initial rows
(``L = -min(taps)``) followed by one row per step; per nit output one row per
step; finally the number of steps run (``until`` may stop early). A ``keep``
entry ``K`` (set by the memory rewrite, or for internal outputs whose history
nobody reads) keeps only a ring of rows while looping and returns the initial
rows followed by the last ``K`` step rows, so that reads from the end
(``buffer[-1]``) and of the initial rows see what the full buffer holds.
"""
import threading
from collections import namedtuple

import numpy as np

from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

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

    def __init__(self, inputs, outputs):
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self._init_cache()

    def __repr__(self):
        from tracegrad.trace import toposort
        n_nodes = len(toposort(self.outputs, blockers=self.inputs))
        return f"body({len(self.inputs)} inputs, {n_nodes} nodes, {len(self.outputs)} outputs)"

    def _init_cache(self):
        self._compiled = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"inputs": self.inputs, "outputs": self.outputs}

    def __setstate__(self, state):
        self.inputs = state["inputs"]
        self.outputs = state["outputs"]
        self._init_cache()

    def function(self, xp):
        """A callable ``f(*arrays) -> list of arrays`` for the device of ``xp``."""
        device = "cpu" if xp is np else "cuda"
        fn = self._compiled.get(device)
        if fn is None:
            with self._lock:
                fn = self._compiled.get(device)
                if fn is None:
                    fn = self._compiled[device] = _compile(self.inputs, self.outputs, device, xp)
        return fn


def _compile(inputs, outputs, device, xp):
    """Compile the body with ``tg.function`` (so it is rewritten and fused like
    any graph); the reference evaluator stands in where that is unavailable."""
    try:
        from tracegrad.compile import function
        fn = function(list(inputs), list(outputs), on_unused_input="ignore", device=device)
    except NotImplementedError:
        from tracegrad.evaluate import evaluate

        def run(*values):
            return evaluate(list(outputs), dict(zip(inputs, values)), xp)
        return run
    return fn


def merge_shapes(a, b, what):
    """Static shape agreeing with both ``a`` and ``b`` (known lengths win)."""
    if len(a) != len(b):
        raise TypeError(f"{what}: ndim {len(a)} vs {len(b)}")
    out = []
    for x, y in zip(a, b):
        if x is not None and y is not None and x != y:
            raise TypeError(f"{what}: static shapes {a} and {b} disagree")
        out.append(x if x is not None else y)
    return tuple(out)


class Scan(Op):
    """A loop over an inner graph (see the module docstring for the layout)."""

    __props__ = ("inner", "spec")
    # Folding would run the whole loop while compiling.
    constant_foldable = False
    pp_name = "scan"

    def __init__(self, inner, spec):
        self.inner = inner
        self.spec = spec

    @property
    def name(self):
        return f"Scan{{{self.spec.name}}}" if self.spec.name else "Scan"

    # ------------------------------------------------------------ layout
    @property
    def n_rec(self):
        return len(self.spec.rec_taps)

    def split_outer(self, inputs):
        """``(n_steps or None, seqs, inits, nonseqs)`` from the outer inputs."""
        spec = self.spec
        inputs = list(inputs)
        n_steps = inputs.pop(0) if spec.has_n_steps else None
        n_seq, n_rec = len(spec.seq_offsets), len(spec.rec_taps)
        seqs = inputs[:n_seq]
        inits = inputs[n_seq:n_seq + n_rec]
        nonseqs = inputs[n_seq + n_rec:]
        return n_steps, seqs, inits, nonseqs

    def split_inner_inputs(self):
        """``(per-sequence slice lists, per-recurrent tap lists, nonseqs)``."""
        spec = self.spec
        it = iter(self.inner.inputs)
        seq_slices = [[next(it) for _ in offs] for offs in spec.seq_offsets]
        prev = [[next(it) for _ in taps] for taps in spec.rec_taps]
        nonseqs = list(it)
        return seq_slices, prev, nonseqs

    def with_spec(self, **changes):
        """The same loop with some spec fields changed (same inner graph)."""
        return Scan(self.inner, self.spec._replace(**changes))

    # ------------------------------------------------------------ graph
    def make_node(self, *inputs):
        spec = self.spec
        inputs = [as_tensor_variable(i) for i in inputs]
        expected = (int(spec.has_n_steps) + len(spec.seq_offsets) + len(spec.rec_taps)
                    + spec.n_nonseq)
        if len(inputs) != expected:
            raise TypeError(f"{self.name}: expected {expected} inputs, got {len(inputs)}")
        n_steps, seqs, inits, nonseqs = self.split_outer(inputs)
        if n_steps is not None and (n_steps.ndim != 0 or n_steps.dtype[0] not in "iu"):
            raise TypeError(f"{self.name}: n_steps must be an integer scalar, got {n_steps.type}")
        seq_slices, prev, inner_nonseqs = self.split_inner_inputs()
        for x, slices in zip(seqs, seq_slices):
            for s in slices:
                _check_type(self, "sequence", x, s.type.dtype, s.type.ndim + 1)
        for init, taps, stacked in zip(inits, prev, spec.rec_stacked):
            _check_type(self, "initial value", init, taps[0].type.dtype,
                        taps[0].type.ndim + int(stacked))
        for outer, inner in zip(nonseqs, inner_nonseqs):
            _check_type(self, "non-sequence", outer, inner.type.dtype, inner.type.ndim)
        outs = self.inner.outputs
        types = []
        for i, (init, stacked) in enumerate(zip(inits, spec.rec_stacked)):
            row = init.type.shape[1:] if stacked else init.type.shape
            row = merge_shapes(row, outs[i].type.shape,
                               f"{self.name}: output {i} and its initial value")
            types.append(TensorType(init.dtype, (None,) + row))
        for out in outs[self.n_rec:self.n_rec + spec.n_nit]:
            types.append(TensorType(out.dtype, (None,) + out.type.shape))
        types.append(TensorType("int64", ()))
        return Apply(self, inputs, [t() for t in types])

    # ------------------------------------------------------------ run
    def impl(self, xp, *arrays):
        from tracegrad.scan.loop import run_loop
        return run_loop(self, xp, arrays)

    def vjp(self, node, output_grads):
        from tracegrad.scan.grad import scan_vjp
        return scan_vjp(node, output_grads)


def _check_type(op, what, outer, dtype, ndim):
    if outer.dtype != dtype or outer.ndim != ndim:
        raise TypeError(f"{op.name}: {what} {outer} has type {outer.type}; the loop "
                        f"body expects dtype {dtype} with ndim {ndim}")
