"""Sums of fused elementwise results, computed slab by slab (CPU).

``sum(f(a, b, ...))``, where ``f`` is a single-output ``FusedElemwise`` node
that nothing else reads, becomes one ``FusedSum`` node: instead of writing
``f``'s whole result to memory, reading it back and freeing it, the fused
program runs over slabs of the iteration space into one scratch buffer of
about ``SLAB_BYTES``, and each slab's sum is added into the result. The
contractive autoencoder's penalty ``sum((s[:, None, :] * W[None]) ** 2)``
is such a sum: its (20, 784, 500) float64 tensor is 63 MB, a fresh
allocation per call, where the slabs stay in the cache.

Only sums (``Reduce('sum')``, any axes) over programs without ``SUM_TO``
steps and with single-element constants are taken, so slicing the operands
slices the result. On other array modules the node computes the fused
result and sums it.
"""
import numpy as np

from tracegrad.config import SLAB_BYTES
from tracegrad.fuse.op import FusedElemwise
from tracegrad.fuse.spec import SUM_TO
from tracegrad.ops.reduce import Reduce, _reduce_dtype
from tracegrad.trace import Apply, Op, toposort


class FusedSum(Op):
    """``Reduce('sum', axes, keepdims, dtype)`` of ``fused``'s only output,
    without materializing it (see the module doc)."""

    __props__ = ("fused", "axes", "keepdims", "dtype")
    view_map = {}
    destroy_map = {}

    def __init__(self, fused, axes, keepdims=False, dtype=None):
        self.fused = fused
        self.axes = axes
        self.keepdims = keepdims
        self.dtype = dtype
        self.reduce = Reduce("sum", axes, keepdims, dtype)

    @property
    def name(self):
        return f"sum{{{self.fused.name}}}"

    def __str__(self):
        return f"{self.reduce}{{{self.fused.name}}}"

    def make_node(self, *inputs, source=None):
        inner = self.fused.make_node(*inputs)
        out = self.reduce.make_node(inner.outputs[0]).outputs[0]
        return Apply(self, list(inner.inputs), [out.type()], source)

    def impl(self, xp, *arrays):
        if xp is not np or not all(type(a) is np.ndarray and a.dtype == dt for a, dt in
                                   zip(arrays, self.fused.cpu_program().in_dtypes)):
            return self.reduce.impl(xp, self.fused.impl(xp, *arrays))
        ndim = self.fused.spec.ndim
        arrays = [a.reshape((1,) * (ndim - a.ndim) + a.shape) for a in arrays]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        dtype = np.dtype(self.fused.spec.out_dtypes[0])
        axis, length = slab_axis(shape, max(1, SLAB_BYTES // dtype.itemsize))
        if axis is None:  # small: one pass
            return self.reduce.impl(xp, self.fused.impl(xp, *arrays))
        return self._sum_by_slabs(arrays, shape, dtype, axis, length)

    def _sum_by_slabs(self, arrays, shape, dtype, axis, length):
        """The sum, running the fused block function (``CpuProgram.direct``,
        one thread) over each slab into one scratch buffer."""
        axes = tuple(range(len(shape))) if self.axes is None else self.axes
        kept = tuple(1 if k in axes else n for k, n in enumerate(shape))
        result = np.zeros(kept, _reduce_dtype("sum", dtype.name, self.dtype))
        program = self.fused.cpu_program()
        fn = program.direct.fn
        slab = (1,) * axis + (length,) + shape[axis + 1:]
        buffers = [np.empty(slab, dt) for dt in (dtype,) + tuple(program.direct.slot_dtypes)]
        for where in np.ndindex(*shape[:axis]):
            for start in range(0, shape[axis], length):
                stop = min(start + length, shape[axis])
                cut = tuple(slice(i, i + 1) for i in where) + (slice(start, stop),)
                operands = [a[tuple(c if n != 1 else slice(None)
                                    for c, n in zip(cut, a.shape))] for a in arrays]
                part = [b[(slice(None),) * axis + (slice(0, stop - start),)] for b in buffers]
                fn(*operands, *part)
                into = tuple(slice(0, 1) if k in axes else c for k, c in enumerate(cut))
                result[into] += part[0].sum(axis=axes, keepdims=True, dtype=self.dtype)
        if not self.keepdims:
            result = result.reshape(tuple(n for k, n in enumerate(shape) if k not in axes))
        return result

    def vjp(self, node, output_grads):
        inner = self.fused.make_node(*node.inputs)
        summed = self.reduce.make_node(inner.outputs[0])
        return _vjp_through(summed, inner, output_grads)

    def __reduce__(self):
        return (FusedSum, (self.fused, self.axes, self.keepdims, self.dtype))


def _vjp_through(summed, inner, output_grads):
    from tracegrad.grad.reverse import backpropagate
    seeds = {summed.outputs[0]: output_grads[0]}
    grads = backpropagate(seeds, list(inner.inputs))
    return [grads.get(v) for v in inner.inputs]


def slab_axis(shape, elements):
    """``(axis, length)``: slabs of ``shape`` fixing the axes before
    ``axis`` and taking ``length`` entries of ``axis`` (and all of the axes
    after it) hold about ``elements`` entries; ``(None, None)`` when the
    whole of ``shape`` is at most two slabs."""
    size = int(np.prod(shape, dtype=np.int64))
    if size <= 2 * elements or not shape:
        return None, None
    inner = 1
    for axis in range(len(shape) - 1, -1, -1):
        if inner * shape[axis] > elements:
            return axis, max(1, elements // inner)
        inner *= shape[axis]
    return None, None


def _candidate(node, readers):
    """The ``FusedSum`` op replacing ``node`` (a sum), or ``None``."""
    op = node.op
    if not isinstance(op, Reduce) or op.kind != "sum":
        return None
    x = node.inputs[0]
    owner = x.owner
    if owner is None or type(owner.op) is not FusedElemwise:
        return None
    spec = owner.op.spec
    if (len(spec.outputs) != 1 or readers.get(x, 0) != 1
            or any(instr.row is SUM_TO for instr in spec.instrs)
            or any(c.size != 1 for c in spec.constants)):
        return None
    return FusedSum(owner.op, op.axes, op.keepdims, op.dtype)


def fuse_sums(fgraph):
    """Replace, in a ``FunctionGraph`` after fusion, each sum of a fused
    result read by nothing else with a ``FusedSum`` node; returns how many.
    (``fgraph``: anything with ``outputs`` and ``replace(old, new)``.)"""
    order = toposort(list(fgraph.outputs))
    readers = {}  # variable -> how many inputs and outputs read it
    for var in list(fgraph.outputs) + [i for node in order for i in node.inputs]:
        readers[var] = readers.get(var, 0) + 1
    count = 0
    for node in order:
        op = _candidate(node, readers)
        if op is None:
            continue
        inner = node.inputs[0].owner
        new = op.make_node(*inner.inputs, source=node.source).outputs[0]
        new.name = node.outputs[0].name
        fgraph.replace(node.outputs[0], new, reason="fusion")
        count += 1
    return count
