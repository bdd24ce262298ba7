"""Buffers of the collective ops: host copies, reused result buffers,
bucket packing, and the hand-over of device arrays to NCCL.

Result and pack buffers are reused from call to call (``scratch``) while
nothing outside the op still holds the previous result: MPICH reduces into
a freshly allocated buffer 2-5x slower than into one it has used before
(first-touch page faults and its shared-memory path's per-buffer setup;
docs/distributed.md, "Measured"), which made the bucketed path far slower
than a raw ``Allreduce`` on a reused buffer.
"""
import ctypes
import math
import operator
import sys

import numpy as np

from tracegrad.distributed import devices
from tracegrad.distributed.gather import Reduction, gatherer, reducer

__all__ = ["scratch", "wire_dtype", "pack", "unpack", "on_device", "device_unpack", "Arena"]


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


_UNMADE = object()


class Arena:
    """A bucket's flat host buffer and its views, one per tensor (its
    *layout*), kept from call to call: a bucket reduces the flat buffer in
    place and returns the views, and the producers of its tensors may write
    straight into them (``views.py``: gradient as bucket view), so neither a
    pack nor an unpack copy is made, nor 64 views per call.

    The buffer and the views are reused while nothing outside the arena
    holds the buffer or any view (``free``: reference counts, as
    ``scratch``); a result the caller keeps is thus never written over. A
    call's first writer recognises a new call by finding its slot already
    handed out (``view_for``), so a call that raised halfway leaves nothing
    behind that matters: the bucket uses its tensors in place only when
    every one is the view of this layout (``holds``), else it packs them."""

    def __init__(self):
        self.flat = None
        self.shapes = None
        self.views = ()
        self.handed = []
        self.packs = 0      # (calls that packed: the tests and the bench read it)
        self._gather = _UNMADE  # (``gather``'s arguments for this layout; None: no C)
        self._reduction = None  # (``gather_reduce``'s: communicator, its handle, arguments)

    def __reduce__(self):
        return (Arena, ())  # (buffers are per process: made again at the first call)

    def _refs(self):
        """``(references to flat beyond the views', most references to a view)``."""
        flat = self.flat
        most = max(map(sys.getrefcount, self.views), default=0)
        return sys.getrefcount(flat) - len(self.views), most

    def free(self):
        """Nothing but the arena holds the buffer or a view."""
        return self.flat is not None and self._refs() <= _ARENA_REFS

    def layout(self, shapes, dtype):
        """The views for ``shapes`` (tuples) of ``dtype``: the current ones
        when they fit and are ``free``, else views of a new flat buffer.
        Marks every slot handed out. Equal shapes keep the current tuple:
        the ranks verified that very object (``checks.verified``)."""
        if self.shapes == shapes:
            shapes = self.shapes
        if self.shapes is not shapes or self.flat.dtype != dtype or not self.free():
            self._new(shapes, dtype)
        self.handed = [True] * len(shapes)
        self.packs += 1
        return self.views

    def _new(self, shapes, dtype):
        self.flat = flat = np.empty(sum(map(math.prod, shapes)), dtype)
        views, at = [], 0
        for shape in shapes:
            n = math.prod(shape)
            views.append(flat[at:at + n].reshape(shape))
            at += n
        self.shapes, self.views = shapes, tuple(views)
        self._gather = _UNMADE  # (made at the first ``gather``: it may compile)
        self._reduction = None

    def _gather_args(self):
        """``tg_gather`` and its arguments for this layout (the ctypes
        values made once), or ``None`` without a compiler."""
        fn = gatherer()
        if fn is None:
            return None
        flat = self.flat
        # (per tensor: ndim, then its lengths)
        words = np.array([w for s in self.shapes for w in (len(s),) + s], np.intp)
        return (fn, words, ctypes.c_void_p(words.ctypes.data), flat.dtype, flat.itemsize,
                ctypes.c_void_p(flat.ctypes.data), flat.nbytes)

    def gather(self, xs):
        """Copy ``xs`` (a tuple of arrays) into the current layout in one C
        call (``gather.py``) when they have its shapes and dtype, are
        C-contiguous and the buffer is ``free``: ``True``, every slot
        handed out, as ``layout``. Else ``False``, and the buffer's contents
        are undefined (the caller lays out and packs with NumPy)."""
        args = self._gather
        if args is _UNMADE:
            if self.flat is None:   # (no layout yet)
                return False
            args = self._gather = self._gather_args()
        if args is None or not self.free():
            return False
        fn, _, words, dtype, itemsize, dst, nbytes = args
        if fn(xs, words, np.ndarray, dtype, itemsize, dst, nbytes) < 0:
            return False
        self.handed = [True] * len(xs)
        self.packs += 1
        return True

    def gather_reduce(self, xs, comm):
        """``gather`` and an in-place sum ``Allreduce`` of the flat buffer
        on ``comm`` in one C call (``gather.py``'s ``tg_gather_allreduce``):
        ``True`` when done, every slot handed out. ``False`` with nothing
        sent when ``gather`` would refuse (or without a compiler): the
        caller goes the Python way. Raises ``MPI.Exception`` when MPI
        fails. Only for a layout whose shapes the ranks have verified
        (the caller's ``checks.verified``): no shape check is sent."""
        made = self._reduction
        # (the Fortran handle: a communicator freed since changes it)
        if made is None or made[0] is not comm or made[1] != comm.py2f():
            if self.flat is None:
                return False
            made = self._reduction = (comm, comm.py2f(), self._reduce_args(comm))
        args = made[2]
        if not args:
            return False
        fn, pointer = args[0], args[1]
        err = fn(xs, self.views, pointer)
        if err < 0:
            return False
        if err:
            from mpi4py import MPI
            raise MPI.Exception(err)
        self.handed = [True] * len(xs)
        self.packs += 1
        return True

    def _reduce_args(self, comm):
        """``(tg_gather_allreduce, its tg_reduction's address, what that
        points to)`` for this layout on ``comm``, or ``()`` where the C
        call cannot serve (no compiler, a dtype or count MPI's C call
        does not take as mpi4py would, views not of the flat buffer, a
        freed communicator: mpi4py's call raises then)."""
        from mpi4py import MPI
        built, gather_args = reducer(), self._gather_args()
        flat, views = self.flat, self.views
        if built is None or comm == MPI.COMM_NULL:
            return ()
        mpi_type = MPI._typedict.get(flat.dtype.char)
        if (gather_args is None or mpi_type is None
                or flat.size >= 2**31 or any(v.base is not flat for v in views)):
            return ()
        fn, allreduce, in_place = built
        _, words, _, dtype, itemsize, dst, nbytes = gather_args
        # (free: the flat buffer held by ``self.flat`` and by each view as
        # its base; each view by ``self.views`` alone)
        record = Reduction(words.ctypes.data, id(np.ndarray), id(dtype), itemsize, dst.value,
                           nbytes, id(flat), 1 + len(views), 1, allreduce, in_place,
                           flat.size, MPI._handleof(mpi_type), MPI._handleof(MPI.SUM),
                           MPI._handleof(comm))
        # (the record points into ``words`` and at ``dtype``: kept alive with it)
        return fn, ctypes.c_void_p(ctypes.addressof(record)), record, words, dtype

    def view_for(self, k):
        """Slot ``k``'s view for a producer to write into, or ``None``
        before the first layout. Slot ``k`` already handed out means a new
        call: the buffer is renewed unless ``free``."""
        if self.flat is None:
            return None
        if self.handed[k]:
            if not self.free():
                self._new(self.shapes, self.flat.dtype)
            self.handed = [False] * len(self.shapes)
        self.handed[k] = True
        return self.views[k]

    def holds(self, xs):
        """``xs`` are this layout's views, all handed out in this call."""
        views = self.views
        return len(xs) == len(views) and all(map(operator.is_, xs, views)) \
            and all(self.handed)


def _calibrate_arena():
    arena = Arena()
    arena._new(((2,), (3,)), np.float64)
    return arena._refs()


# ``Arena._refs()`` of an arena whose buffer and views nothing else holds.
_ARENA_REFS = _calibrate_arena()


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
    """The device runner (NCCL or CUDA-aware MPI: ``devices.runner``) for
    device arrays of ``dtype`` reduced with ``op`` (``None``: data that
    only moves), or ``None``: the host path."""
    if xp is np:
        return None
    run = devices.runner(comm, xp)
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
