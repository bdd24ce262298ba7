"""Data-parallel training helpers: gradient buckets, averaged-gradient SGD,
initial-value sync, data sharding.

Bucketing (Horovod's tensor fusion, DDP's buckets): ``allreduce_many`` packs
consecutive tensors of one dtype into buckets of at most ``bucket_bytes``
(a tensor larger than that is a bucket of its own) and reduces each bucket
with one ``AllreduceBucket`` collective, so a model with many small
gradients pays the per-message latency once per bucket instead of once per
tensor. The values equal one ``allreduce`` per tensor exactly: the same
elements are summed in the same rank order; only the packing differs.
"""
import numpy as np

from tracegrad.distributed.ops import Allreduce, AllreduceBucket
from tracegrad.distributed.overlap import overlapped_buckets
from tracegrad.distributed.state import current
from tracegrad.grad import grad
from tracegrad.shared import SharedVariable

__all__ = ["BUCKET_BYTES", "allreduce_many", "data_parallel", "averaged_gradients",
           "sync_shared", "shard"]

# Horovod's and PyTorch DDP's default fusion buffer: large enough that a
# bucket's bandwidth term dwarfs its latency on 10-100 Gb/s links
# (docs/distributed.md), small enough to overlap with backprop.
BUCKET_BYTES = 25 * 2**20


def _nbytes(x):
    """Bytes of ``x`` if its static shape is known, else ``None``."""
    if any(n is None for n in x.type.shape):
        return None
    return int(np.prod(x.type.shape, dtype=np.int64)) * np.dtype(x.dtype).itemsize


def _buckets(xs, nbytes, bucket_bytes):
    """Lists of indices of ``xs``: consecutive per dtype, each at most
    ``bucket_bytes`` (a tensor of unknown size counts as 0 bytes)."""
    open_, done = {}, []
    for k, (x, n) in enumerate(zip(xs, nbytes)):
        n = n or 0
        if n >= bucket_bytes:
            done.append([k])
            continue
        cur = open_.get(x.dtype)
        if cur is not None and cur[1] + n > bucket_bytes:
            done.append(cur[0])
            cur = None
        if cur is None:
            cur = open_[x.dtype] = [[], 0]
        cur[0].append(k)
        cur[1] += n
    done.extend(c[0] for c in open_.values())
    return sorted(done, key=lambda bucket: bucket[0])


def allreduce_many(xs, op="sum", bucket_bytes=BUCKET_BYTES, nbytes=None, overlap=False,
                   shapes=None):
    """``[allreduce(x, op) for x in xs]`` with one collective per bucket of
    at most ``bucket_bytes`` (see the module doc). ``op``: ``'sum'`` or
    ``'mean'``; ``nbytes``: each tensor's size in bytes where the static
    shapes do not say (e.g. from the parameters' values; a size neither
    gives counts as 0, so such tensors share a bucket); ``bucket_bytes=0``
    gives one ``allreduce`` per tensor (kept apart by the compile-time
    bucketing pass too: ``autobucket.py``). ``overlap=True``: each bucket is a
    non-blocking ``Iallreduce`` started as soon as its tensors exist and
    waited for where its results are read (``overlap.py``; no gradient rule),
    which needs every tensor's shape: static, or given in ``shapes``."""
    xs = list(xs)
    if op not in ("sum", "mean"):
        raise ValueError(f"allreduce_many: op must be 'sum' or 'mean', got {op!r}")
    if bucket_bytes < 0:
        raise ValueError(f"allreduce_many: bucket_bytes must be >= 0, got {bucket_bytes}")
    sizes = [_nbytes(x) for x in xs] if nbytes is None else list(nbytes)
    if len(sizes) != len(xs):
        raise ValueError(f"allreduce_many: {len(sizes)} sizes for {len(xs)} tensors")
    comm = current()
    if overlap:
        return _overlapped(xs, op, bucket_bytes, sizes, shapes, comm)
    if bucket_bytes == 0:
        return [Allreduce(op, comm, bucketable=False)(x) for x in xs]
    out = [None] * len(xs)
    for bucket in _buckets(xs, sizes, bucket_bytes):
        res = AllreduceBucket(op, comm)(*[xs[k] for k in bucket])
        res = res if isinstance(res, (list, tuple)) else [res]
        for k, r in zip(bucket, res):
            out[k] = r
    return out


def _overlapped(xs, op, bucket_bytes, sizes, shapes, comm):
    if shapes is None:
        shapes = [x.type.shape for x in xs]
    shapes = [tuple(s) for s in shapes]
    if len(shapes) != len(xs) or any(n is None for s in shapes for n in s):
        raise ValueError("allreduce_many(overlap=True) needs every tensor's shape "
                         "(static, or shapes=[...]); got " + str(shapes))
    for x in xs:
        if x.dtype[0] not in "fciu" or (op == "mean" and x.dtype[0] not in "fc"):
            raise TypeError(f"allreduce_many(op={op!r}, overlap=True): cannot reduce {x.dtype}")
    sizes = [int(np.prod(s, dtype=np.int64)) * np.dtype(x.dtype).itemsize
             for s, x in zip(shapes, xs)]
    buckets = _buckets(xs, sizes, max(bucket_bytes, 1))
    return overlapped_buckets(xs, buckets, op, comm, shapes)


def averaged_gradients(cost, params, bucket_bytes=BUCKET_BYTES, overlap=False):
    """``tg.grad(cost, params)`` averaged over ranks (bucketed). With
    ``cost`` each rank's mean loss over an equal-sized shard, this is the
    gradient of the mean loss over the global batch."""
    params = list(params)
    grads = grad(cost, params)
    values = [p.get_value(borrow=True) if isinstance(p, SharedVariable) else None
              for p in params]
    nbytes = [None if v is None else v.nbytes for v in values]
    shapes = None
    if overlap:
        # (the last layers' gradients are ready first: bucket them first)
        grads, values = grads[::-1], values[::-1]
        shapes = [np.shape(v) if v is not None else g.type.shape
                  for v, g in zip(values, grads)]
        out = allreduce_many(grads, "mean", bucket_bytes, nbytes[::-1], True, shapes)
        return out[::-1]
    return allreduce_many(grads, "mean", bucket_bytes, nbytes)


def data_parallel(cost, params, lr=0.01, bucket_bytes=BUCKET_BYTES, overlap=False):
    """Updates ``[(p, p - lr * g)]`` for ``tg.function(..., updates=...)``
    with ``g`` the rank-averaged gradient (``averaged_gradients``): every
    rank applies the same step, so parameters that start equal
    (``sync_shared``) stay equal. ``overlap=True``: non-blocking buckets
    (``allreduce_many``), the last layers' first."""
    params = list(params)
    for p in params:
        if not isinstance(p, SharedVariable):
            raise TypeError(f"data_parallel: parameters must be shared variables, got {p!r}")
    grads = averaged_gradients(cost, params, bucket_bytes, overlap)
    return [(p, p - np.asarray(lr, p.dtype) * g) for p, g in zip(params, grads)]


def sync_shared(params, root=0):
    """Give every rank ``root``'s values of the shared variables ``params``
    (``comm.Bcast`` of each buffer, then ``set_value``). Call once after
    initialising, so that ranks seeded differently start equal."""
    comm = current()
    params = list(params)
    values = [np.ascontiguousarray(p.get_value()) for p in params]
    # (setup only: the shapes and dtypes travel pickled, to check them)
    meta = [(v.shape, v.dtype.str) for v in values]
    root_meta = comm.bcast(meta, root=root)
    if root_meta != meta:
        raise ValueError(f"sync_shared: rank {comm.Get_rank()} holds shapes/dtypes {meta} "
                         f"but rank {root} holds {root_meta}")
    for p, v in zip(params, values):
        comm.Bcast(v, root=root)
        p.set_value(v)


def shard(array, axis=0):
    """This rank's part of ``array`` along ``axis`` (``np.array_split``:
    the first ``len % size()`` ranks get one more row). A view."""
    comm = current()
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError("shard: cannot split a 0-d array")
    n = array.shape[axis]
    p, r = comm.Get_size(), comm.Get_rank()
    base, extra = divmod(n, p)
    start = r * base + min(r, extra)
    stop = start + base + (r < extra)
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, stop)
    return array[tuple(index)]
