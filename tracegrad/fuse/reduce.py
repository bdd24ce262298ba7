"""Sums of fused elementwise results, computed slab by slab (CPU).

A ``FusedElemwise`` node each of whose outputs is read only by a sum
(``sum(f(a, b, ...), axis)``, or ``SumTo`` over axes the static shapes
decide: a gradient undoing a broadcast) becomes one ``FusedSum`` node:
instead of writing ``f``'s whole results to memory, reading them back and
freeing them, the fused program runs over slabs of the iteration space into
scratch buffers of about ``SLAB_BYTES``, and each slab's sums are added into
the results. The contractive autoencoder's penalty
``sum((s[:, None, :] * W[None]) ** 2)`` is such a sum: its (20, 784, 500)
float64 tensor is 63 MB, a fresh allocation per call, where the slabs stay
in the cache (with a true division by the batch size, the penalty's
gradient adds two such tensors, each summed back to a broadcast operand's
shape by a ``SumTo``).

Only sums over non-empty axes, of programs without ``SUM_TO``
steps and with single-element constants are taken, so slicing the operands
slices the result. On other array modules the node computes the fused
result and sums it.
"""
import numpy as np

from tracegrad.config import SLAB_BYTES
from tracegrad.fuse.op import FusedElemwise
from tracegrad.fuse.spec import SUM_TO
from tracegrad.ops.base import SumTo
from tracegrad.ops.reduce import Reduce, _reduce_dtype
from tracegrad.trace import Apply, Op, toposort


class FusedSum(Op):
    """The sums of ``fused``'s outputs without materializing them (see the
    module doc): output ``j`` is ``Reduce('sum', *reductions[j])`` of the
    fused node's output ``j``, ``reductions[j] = (axes, keepdims, dtype)``."""

    __props__ = ("fused", "reductions")
    view_map = {}
    destroy_map = {}

    def __init__(self, fused, reductions):
        self.fused = fused
        self.reductions = tuple(tuple(r) for r in reductions)
        self.reduces = [Reduce("sum", *r) for r in self.reductions]

    @property
    def name(self):
        return f"sum{{{self.fused.name}}}"

    def __str__(self):
        return "{}{{{}}}".format(",".join(str(r) for r in self.reduces), self.fused.name)

    def make_node(self, *inputs, source=None):
        inner = self.fused.make_node(*inputs)
        outs = [r.make_node(o).outputs[0].type() for r, o in zip(self.reduces, inner.outputs)]
        return Apply(self, list(inner.inputs), outs, source)

    def _unfused(self, xp, arrays):
        results = self.fused.impl(xp, *arrays)
        results = results if isinstance(results, tuple) else (results,)
        return [r.impl(xp, v) for r, v in zip(self.reduces, results)]

    def impl(self, xp, *arrays):
        program = self.fused.program(xp)
        if program is None or program.direct is None or not all(
                type(a) is np.ndarray and a.dtype == dt
                for a, dt in zip(arrays, program.in_dtypes)):
            results = self._unfused(xp, arrays)
        else:
            ndim = self.fused.spec.ndim
            arrays = [a.reshape((1,) * (ndim - a.ndim) + a.shape) for a in arrays]
            shape = np.broadcast_shapes(*(a.shape for a in arrays))
            itemsize = max(np.dtype(d).itemsize for d in self.fused.spec.out_dtypes)
            axis, length = slab_axis(shape, max(1, SLAB_BYTES // itemsize))
            if axis is None or not self.fused.spec.output_shape_ok(
                    [a.shape for a in arrays], shape):  # small (one pass), or an
                results = self._unfused(xp, arrays)   # output smaller than the space
            else:
                results = self._sum_by_slabs(program, arrays, shape, axis, length)
        return results[0] if len(results) == 1 else tuple(results)

    def _sum_by_slabs(self, program, arrays, shape, axis, length):
        """The sums, running the fused block function (``CpuProgram.direct``,
        one thread) over each slab into scratch buffers kept for the call."""
        spec = self.fused.spec
        axes_of = [tuple(range(len(shape))) if axes is None else axes
                   for axes, _, _ in self.reductions]
        dtypes = [dtype for _, _, dtype in self.reductions]
        results = [np.zeros(tuple(1 if k in axes else n for k, n in enumerate(shape)),
                            _reduce_dtype("sum", np.dtype(dt).name, dtype))
                   for axes, dt, dtype in zip(axes_of, spec.out_dtypes, dtypes)]
        fn = program.direct.fn
        slab = (1,) * axis + (length,) + shape[axis + 1:]
        buffers = [np.empty(slab, dt) for dt in
                   tuple(spec.out_dtypes) + tuple(program.direct.slot_dtypes)]
        for cut in slabs(shape, axis, length):
            part = [b[(slice(None),) * axis + (slice(0, cut[-1].stop - cut[-1].start),)]
                    for b in buffers]
            fn(*[a[_cut_for(cut, a.shape)] for a in arrays], *part)
            for result, axes, values, dtype in zip(results, axes_of, part, dtypes):
                into = tuple(slice(0, 1) if k in axes else c for k, c in enumerate(cut))
                result[into] += values.sum(axis=axes, keepdims=True, dtype=dtype)
        return [r if keepdims else r.reshape([n for k, n in enumerate(r.shape) if k not in axes])
                for r, axes, (_, keepdims, _) in zip(results, axes_of, self.reductions)]

    def vjp(self, node, output_grads):
        from tracegrad.grad.reverse import backpropagate
        inner = self.fused.make_node(*node.inputs)
        summed = [r.make_node(o).outputs[0] for r, o in zip(self.reduces, inner.outputs)]
        seeds = {s: g for s, g in zip(summed, output_grads) if g is not None}
        grads = backpropagate(seeds, list(inner.inputs))
        return [grads.get(v) for v in inner.inputs]

    def __reduce__(self):
        return (FusedSum, (self.fused, self.reductions))


def slabs(shape, axis, length):
    """The index tuples of the slabs (see ``slab_axis``): a length-1 slice
    of each axis before ``axis``, ``length`` entries (fewer at the end) of
    ``axis``."""
    for where in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], length):
            yield tuple(slice(i, i + 1) for i in where) + (
                slice(start, min(start + length, shape[axis])),)


def _cut_for(cut, shape):
    """``cut`` for an operand of ``shape``: its length-1 axes taken whole."""
    return tuple(c if n != 1 else slice(None) for c, n in zip(cut, shape))


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


def sum_to_axes(node):
    """The axes a ``SumTo(g, like)`` node sums, when the static shapes
    decide them (same ndim; every length of the result known, or 1 in
    ``g``); else ``None``."""
    g, out = node.inputs[0], node.outputs[0]
    if g.ndim != out.ndim:
        return None
    axes = []
    for k, (n, m) in enumerate(zip(g.type.shape, out.type.shape)):
        if n == 1:
            continue
        if m is None or (m == 1 and n is None):
            return None  # (a length 1 known only at run time would sum)
        if m == 1:
            axes.append(k)
    return tuple(axes)


def _reduction(node):
    """``(axes, keepdims, dtype)`` of a node summing its first input over
    known, non-empty axes (``Reduce('sum')`` or ``SumTo``), else ``None``."""
    op = node.op
    if isinstance(op, Reduce):
        if op.kind == "sum" and op.axes != ():
            return (op.axes, op.keepdims, op.dtype)
        return None
    if isinstance(op, SumTo):
        axes = sum_to_axes(node)
        if axes and node.outputs[0].dtype == node.inputs[0].dtype:
            return (axes, True, None)
    return None


def _candidate(node, readers):
    """``(FusedSum op, reduction nodes)`` replacing the fused ``node`` when
    each of its outputs is read once, by a sum over known axes; else
    ``None``."""
    if type(node.op) is not FusedElemwise:
        return None
    spec = node.op.spec
    if (any(instr.row is SUM_TO for instr in spec.instrs)
            or any(c.size != 1 for c in spec.constants)):
        return None
    sums, reductions = [], []
    for out in node.outputs:
        found = readers.get(out, ())
        if len(found) != 1 or found[0] == "output" or found[0].inputs[0] is not out:
            return None
        reduction = _reduction(found[0])
        if reduction is None:
            return None
        sums.append(found[0])
        reductions.append(reduction)
    return FusedSum(node.op, reductions), sums


def may_sum_fused(units):
    """Whether ``fuse_sums`` may find something after fusing ``units`` (the
    clusters and lone nodes of ``fuse.cluster.cluster_order``): a fused
    node is replaced only when it is read by sums, and those are lone nodes
    (a ``Reduce`` or a ``SumTo``). One look at each unit spares the graph
    walk and readers index of ``fuse_sums`` (most graphs sum nothing they
    fuse)."""
    sums = (Reduce, SumTo)
    return any(isinstance(unit, Apply) and isinstance(unit.op, sums) for unit in units)


def fuse_sums(fgraph):
    """Replace, in a ``FunctionGraph`` after fusion, each fused node whose
    every output is read only by a sum with one ``FusedSum`` node computing
    the sums; returns how many. (``fgraph``: anything with ``outputs`` and
    ``replace(old, new)``.)"""
    order = toposort(list(fgraph.outputs))
    readers = {}  # variable -> the nodes (or "output") reading it, once per use
    for out in fgraph.outputs:
        readers.setdefault(out, []).append("output")
    for node in order:
        for inp in node.inputs:
            readers.setdefault(inp, []).append(node)
    count = 0
    for node in order:
        found = _candidate(node, readers)
        if found is None:
            continue
        op, sums = found
        new = op.make_node(*node.inputs, source=sums[-1].source)
        for old, var in zip(sums, new.outputs):
            var.name = old.outputs[0].name
            fgraph.replace(old.outputs[0], var, reason="fusion")
        count += 1
    return count
