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
from tracegrad.scan.body import InnerGraph, ScanSpec  # noqa: F401  (old pickles name them here)
from tracegrad.scan.grad import scan_vjp
from tracegrad.scan.loop import run_loop
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

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
        return run_loop(self, xp, arrays)

    def vjp(self, node, output_grads):
        return scan_vjp(node, output_grads)


def _check_type(op, what, outer, dtype, ndim):
    if outer.dtype != dtype or outer.ndim != ndim:
        raise TypeError(f"{op.name}: {what} {outer} has type {outer.type}; the loop "
                        f"body expects dtype {dtype} with ndim {ndim}")
