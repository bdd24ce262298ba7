"""Buffers of the collective ops: host copies, reused result buffers,
bucket packing, and the hand-over of device arrays to NCCL.

Result and pack buffers are reused from call to call (``scratch``) while
nothing outside the op still holds the previous result: MPICH reduces into
a freshly allocated buffer 2-5x slower than into one it has used before
(first-touch page faults and its shared-memory path's per-buffer setup;
docs/distributed.md, "Measured"), which made the bucketed path far slower
than a raw ``Allreduce`` on a reused buffer.
"""
import math
import sys

import numpy as np

from tracegrad.distributed import nccl

__all__ = ["scratch", "wire_dtype", "pack", "unpack", "on_device", "device_unpack"]


def _host(xp, x):
    """``x`` as a C-contiguous NumPy array in a dtype MPI carries."""
    a = x if xp is np else xp.asnumpy(x)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8)
    # (not ``np.ascontiguousarray``: it makes a 0-d array 1-d)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _device(xp, a, dtype):
    a = a.astype(dtype, copy=False)
    return a if xp is np else xp.asarray(a)


def _calibrate():
    holder = {"buf": np.empty(1)}
    buf = holder["buf"]
    return sys.getrefcount(buf)


# References to a cached buffer that nothing else holds, as counted in
# ``scratch`` (the cache's, the local name's, getrefcount's argument's).
_UNSHARED_REFS = _calibrate()


def scratch(owner, key, shape, dtype):
    """A C-contiguous NumPy buffer of ``shape`` and ``dtype``, the same one
    as at ``owner``'s previous call with this ``key`` when nothing else
    (a result, a view of one, an MPI request) still references it; else a
    new one, cached for the next call. Its contents are undefined."""
    cache = owner.__dict__.setdefault("_scratch", {})
    buf = cache.get(key)
    if (buf is not None and sys.getrefcount(buf) <= _UNSHARED_REFS
            and buf.shape == shape and buf.dtype == dtype):
        return buf
    buf = cache[key] = np.empty(shape, dtype)
    return buf


def wire_dtype(dtype):
    """The dtype ``dtype`` travels as (MPI has no float16 nor bool)."""
    dtype = np.dtype(dtype)
    return _WIRE.get(dtype, dtype)


_WIRE = {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.bool_): np.dtype(np.uint8)}


def pack(owner, xp, xs):
    """``xs`` (arrays of one dtype, any layout) laid end to end, in C
    order, in ``owner``'s reusable flat host buffer (``scratch``): one copy
    in one NumPy call (CuPy arrays: joined on the device, one transfer)."""
    flat = scratch(owner, "flat", (sum(x.size for x in xs),), wire_dtype(xs[0].dtype))
    if xp is np:
        np.concatenate(xs, axis=None, out=flat)
    else:
        flat[...] = xp.asnumpy(xp.concatenate([x.reshape(-1) for x in xs]))
    return flat


def unpack(xp, flat, shapes, dtype):
    """Views of ``flat`` with ``shapes`` (on the device for CuPy): one
    array, or a tuple of them for several."""
    out, at = [], 0
    for shape in shapes:
        n = math.prod(shape)    # (np.prod costs ~4 us a call: 64 tensors, 0.25 ms)
        view = flat[at:at + n].reshape(shape)
        out.append(view if xp is np and view.dtype == dtype else _device(xp, view, dtype))
        at += n
    return tuple(out) if len(out) > 1 else out[0]


def on_device(comm, xp, dtype, op=None):
    """The NCCL runner to use for device arrays of ``dtype`` reduced with
    ``op`` (``None``: data that only moves), or ``None``: the host path."""
    if xp is np:
        return None
    run = nccl.runner(comm, xp)
    if run is None or (op is not None and not run.carries(dtype, op)):
        return None
    return run


def device_unpack(flat, shapes):
    """Views of the device buffer ``flat`` with ``shapes``."""
    out, at = [], 0
    for shape in shapes:
        n = math.prod(shape)
        out.append(flat[at:at + n].reshape(shape))
        at += n
    return tuple(out) if len(out) > 1 else out[0]
