"""Run a block function over the broadcast iteration space, block by block,
on a small thread pool.

The common case, every operand C-ordered (or every one Fortran-ordered)
with the full shape or a single element, runs on flat 1-D slices. Anything
else (broadcasting, strides, mixed orders) goes through a general layout:
axes ordered like the first output's strides, length-1 axes dropped,
neighbouring axes merged where every operand allows it (as NumPy's iterator
does), then the trailing axes that fit in a block are taken whole and the
axis before them is cut into ranges.

Blocks are independent, so large calls share them out to worker threads
(NumPy releases the GIL inside ufuncs), one block at a time; each worker
owns its scratch buffers.
"""
import contextvars
import itertools
import os
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided


def run_blocked(fn, slot_dtypes, operands, outs, shape, block, nthreads):
    """Call ``fn(*operand_blocks, *out_blocks, *scratch)`` over every block."""
    indexed = [a.size != 1 for a in operands]
    views = [a if ix else a.reshape(()) for a, ix in zip(operands, indexed)]
    order = _flat_order(views, indexed, outs, shape)
    if order is not None:
        views = [v.reshape(-1, order=order) if ix else v for v, ix in zip(views, indexed)]
        out_views = [o.reshape(-1, order=order) for o in outs]
        blocks = _flat_blocks(outs[0].size, block, nthreads)
    else:
        found = _leading_axis_layout(views, indexed, outs, shape, block)
        if found is not None:
            indexed, out_views, blocks = found
        else:
            views, out_views, blocks = _general_layout(views, indexed, outs, shape, block)
    nthreads = min(nthreads, len(blocks))
    task = (fn, slot_dtypes, views, indexed, out_views, blocks)
    if nthreads == 1:
        _work(task, iter(range(len(blocks))))
    else:
        _work_on_threads(task, nthreads)


def _flat_order(views, indexed, outs, shape):
    """``'C'`` or ``'F'`` when every indexed operand and output has the full
    shape and that memory order (they then run as flat 1-D slices), else
    ``None``."""
    full = [v for v, ix in zip(views, indexed) if ix] + list(outs)
    if all(v.shape == shape for v in full):
        return common_order(full)
    return None


def common_order(arrays):
    """``'C'`` or ``'F'`` when every array is contiguous in that order (C
    first), else ``None``."""
    if all(a.flags.c_contiguous for a in arrays):
        return "C"
    if all(a.flags.f_contiguous for a in arrays):
        return "F"
    return None


def _flat_blocks(size, block, nthreads):
    """Equal blocks of a flat iteration space, their count a multiple of the
    thread count."""
    count = -(-size // block)
    count = -(-count // nthreads) * nthreads
    step = -(-size // count)
    return [(slice(a, min(a + step, size)), min(step, size - a), None)
            for a in range(0, size, step)]


def _work_on_threads(task, nthreads):
    """``_work`` on this thread and ``nthreads - 1`` pool workers; returns
    when all are done, raising the first error any of them raised."""
    # Blocks are handed out one at a time from a shared counter (next() on
    # itertools.count is atomic): a worker that the OS does not schedule
    # (a busy machine) leaves its share to the others instead of holding
    # the call back.
    counter = itertools.count()
    pool = _executor(nthreads - 1)
    futures = [pool.submit(contextvars.copy_context().run, _work, task, counter)
               for _ in range(nthreads - 1)]
    error = None
    try:
        _work(task, counter)
    except BaseException as exc:  # still wait for the workers below
        error = exc
    for fut in futures:
        # Until each worker is done, even when the wait itself is
        # interrupted (Ctrl-C): the workers write into ``outs``.
        while True:
            try:
                fut.result()
                break
            except BaseException as exc:
                error = error or exc
                if fut.done():
                    break
    if error is not None:
        raise error


def _work(task, indices):
    fn, slot_dtypes, views, indexed, out_views, blocks = task
    slots = None
    n_blocks = len(blocks)
    for i in indices:
        if i >= n_blocks:
            break
        index, n, bshape = blocks[i]
        if slots is None:
            bufsize = max(b[1] for b in blocks)
            slots = [np.empty(bufsize, dt) for dt in slot_dtypes]
        ins = [v[index] if ix else v for v, ix in zip(views, indexed)]
        outs = [v[index] for v in out_views]
        if bshape is None:
            scratch = [s[:n] for s in slots]
        else:
            scratch = [s[:n].reshape(bshape) for s in slots]
        fn(*ins, *outs, *scratch)


def _leading_axis_layout(views, indexed, outs, shape, block):
    """Blocks of whole rows (ranges of axis 0) when every output is
    C-contiguous with the full shape and every operand either has the full
    length along axis 0 (it is cut like the outputs) or does not vary along
    it (fewer axes, e.g. a bias row, or length 1 there: passed whole, NumPy
    broadcasts it into each block). No strided views to build: much cheaper
    than ``_general_layout`` for the usual ``x @ w + b``. ``None`` when the
    layout does not fit."""
    if len(shape) < 2 or shape[0] < 2:
        return None
    for o in outs:
        if not o.flags.c_contiguous:
            return None
    cut = []
    for v, ix in zip(views, indexed):
        if not ix or v.ndim < len(shape) or v.shape[0] == 1:
            cut.append(False)
        elif v.shape[0] == shape[0]:
            cut.append(True)
        else:
            return None
    inner = 1
    for n in shape[1:]:
        inner *= n
    rows = max(1, block // inner)
    tail = shape[1:]
    blocks = [(slice(a, min(a + rows, shape[0])), (min(a + rows, shape[0]) - a) * inner,
               (min(a + rows, shape[0]) - a,) + tail) for a in range(0, shape[0], rows)]
    return cut, list(outs), blocks


def _general_layout(views, indexed, outs, shape, block):
    full = [np.broadcast_to(v, shape) if ix else v for v, ix in zip(views, indexed)]
    operands = [v for v, ix in zip(full, indexed) if ix] + list(outs)
    cshape, merged = _merged_axes(operands, outs[0], shape)
    new_views = []
    k = 0
    for v, ix in zip(full, indexed):
        if ix:
            new_views.append(as_strided(v, cshape, tuple(merged[k]), writeable=False))
            k += 1
        else:
            new_views.append(v)
    out_views = []
    for o in outs:
        out_views.append(as_strided(o, cshape, tuple(merged[k])))
        k += 1
    return new_views, out_views, _strided_blocks(cshape, block)


def _merged_axes(operands, first_out, shape):
    """The iteration shape walked like ``first_out``'s memory (C, Fortran or
    anything; length-1 axes dropped), neighbouring axes merged where every
    operand allows it, and each operand's strides over it."""
    axes = sorted((ax for ax, n in enumerate(shape) if n != 1),
                  key=lambda ax: -abs(first_out.strides[ax]))
    dims = [shape[ax] for ax in axes]
    strides = [[op.strides[ax] for ax in axes] for op in operands]
    merged_dims = [dims[0]]
    merged = [[s[0]] for s in strides]
    for d in range(1, len(dims)):
        if all(s[d - 1] == s[d] * dims[d] for s in strides):
            merged_dims[-1] *= dims[d]
            for ms, s in zip(merged, strides):
                ms[-1] = s[d]
        else:
            merged_dims.append(dims[d])
            for ms, s in zip(merged, strides):
                ms.append(s[d])
    return tuple(merged_dims), merged


def _strided_blocks(cshape, block):
    """Blocks of ``cshape``: the trailing axes that fit in a block whole,
    the axis before them cut into ranges."""
    inner = 1
    k = len(cshape) - 1
    while k >= 0 and inner * cshape[k] <= block:
        inner *= cshape[k]
        k -= 1
    if k < 0:  # everything fits in one block
        return [((), inner, cshape)]
    rows = max(1, block // inner)
    tail = cshape[k + 1:]
    blocks = []
    for outer in np.ndindex(*cshape[:k]):
        for a in range(0, cshape[k], rows):
            b = min(a + rows, cshape[k])
            blocks.append((outer + (slice(a, b),), (b - a) * inner, (b - a,) + tail))
    return blocks


# ------------------------------------------------------------------ threads
_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(workers):
    """A pool of at least ``workers`` threads. A smaller pool is replaced
    but never shut down: another calling thread may still be submitting to
    it. Its idle workers exit once nothing references it any more (the
    executor's weakref callback wakes them)."""
    global _pool, _pool_size
    # Imported here: concurrent.futures (and the logging it pulls in) costs
    # milliseconds at start-up, and small programs never need threads.
    from concurrent.futures import ThreadPoolExecutor
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers,
                                       thread_name_prefix="tracegrad-fuse")
            _pool_size = workers
        return _pool


def _reset_after_fork():
    global _pool, _pool_size, _pool_lock
    _pool = None
    _pool_size = 0
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
