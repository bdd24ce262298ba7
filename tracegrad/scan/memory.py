"""Keep only the last rows of scan buffers whose history nobody reads.

A rule of the rewrite engine (``tracegrad.rewrite``), on ``Scan`` nodes: when
every reader of an output buffer reads it from its end (``result[-1]``,
``result[-3:]``, the final value of a shared variable's update) or reads its
initial rows, the node is replaced by one whose ``keep`` for that buffer is
the number of final rows read. Such a buffer holds the initial rows followed
by the last ``keep`` step rows, so each of those readers sees what it saw on
the full buffer, and the loop itself only keeps a ring of the rows its taps
read back: a scan of 10^6 steps over a length-1000 vector whose ``[-1]`` is
used holds a few rows, not 10^6 x 1000 values.

It is registered in the ``constant_fold`` group, the one group every
optimizing mode runs (``fast_compile`` included), since memory is not an
optional speed-up. With ``optimizer='None'`` buffers are kept whole.
"""
from tracegrad.ops.index import Subtensor
from tracegrad.rewrite.engine import OUTPUT, Rule, register
from tracegrad.scan.axis import AxisSlice
from tracegrad.scan.op import Scan
from tracegrad.trace import Constant

FULL = None   # a reader needs the whole buffer


def _const_int(var):
    if isinstance(var, Constant) and getattr(var.data, "ndim", 1) == 0:
        return int(var.data)
    return None


def _subtensor_rows(op):
    """Final rows read by ``x[idx]`` through its first axis, or FULL."""
    if op.advanced or not op.idx:
        return FULL
    first = op.idx[0]
    if isinstance(first, int) and first < 0:
        return -first
    if isinstance(first, tuple):
        _, start, stop, step = first
        if isinstance(start, int) and start < 0 and stop is None and step in (None, 1):
            return -start
    return FULL


def _axis_slice_rows(node, head):
    """``(final rows read, is the steps view)`` for an AxisSlice reader."""
    op = node.op
    bounds = [_const_int(b) for b in node.inputs[1:]]
    if None in bounds:
        return FULL, False
    start = bounds[0] if op.has_start else 0
    stop = bounds[-1] if op.has_stop else None
    if op.squeeze:
        if start < 0:
            return -start, False
        return (0, False) if start < head else (FULL, False)
    if op.reverse:
        return FULL, False
    if stop is None and start < 0:
        return -start, False
    if stop is None and start == head and head > 0:
        return 0, True
    if 0 <= start and stop is not None and 0 <= stop <= head:
        return 0, False
    return FULL, False


def _rows_read(var, ctx, head):
    """How many final rows of ``var`` its readers need, or FULL."""
    need = 0
    for node, i in ctx.clients(var):
        if node == OUTPUT or i != 0:
            return FULL
        if isinstance(node.op, Subtensor):
            rows = _subtensor_rows(node.op)
        elif isinstance(node.op, AxisSlice):
            rows, steps_view = _axis_slice_rows(node, head)
            if steps_view:
                rows = _rows_read(node.outputs[0], ctx, 0)
        else:
            return FULL
        if rows is FULL:
            return FULL
        need = max(need, rows)
    return need


def keep_last_rows(node, ctx):
    """The rule: a copy of the Scan node that trims buffers read from the end."""
    spec = node.op.spec
    n_rec = len(spec.rec_taps)
    keep = list(spec.keep)
    changed = False
    for i, out in enumerate(node.outputs[:-1]):
        if keep[i] is not None:
            continue
        head = -min(spec.rec_taps[i]) if i < n_rec else 0
        rows = _rows_read(out, ctx, head)
        if rows is FULL:
            continue
        keep[i] = max(rows, 1)
        changed = True
    if not changed:
        return None
    return list(node.op.with_spec(keep=tuple(keep)).make_node(*node.inputs).outputs)


register("constant_fold", Rule("scan_keep_last_rows", (Scan,), keep_last_rows))
