"""Collective ops: ``allreduce``, ``broadcast``, ``reduce``, ``allgather``,
``reduce_scatter`` and the bucketed ``AllreduceBucket``.

Each is an ``Op`` in the graph, so it is differentiated, scheduled and
hashed like any other. Conventions:

- Values are SPMD: every rank runs the same graph on its own inputs. The
  gradient of a rank's input is the derivative of the **global cost**, the
  sum over ranks of each rank's cost; so ``allreduce``-sum's vjp is
  ``allreduce``-sum of the cotangents, ``broadcast``'s is the sum of the
  cotangents on the root (zero elsewhere: ``reduce``), ``allgather``'s is
  ``reduce_scatter`` and back. Forward mode (``Rop``) is built from these.
- ``allreduce(x, 'max'|'min')``: the gradient goes to the ranks holding the
  extreme; tied ranks share it equally (the total is preserved, as for
  ``T.max``: ops/reduce.py).
- Run on contiguous NumPy buffers with mpi4py's buffer calls (upper-case
  ``Allreduce``, ``Bcast``, ...: no pickling); float16 travels as float32.
  CuPy arrays (``device='cuda'``) go through NCCL where it is available
  (``nccl.py``; ``set_gpu_collectives``), else are copied to the host and
  back.
- When a collective's shapes changed since it last verified them, the
  ranks check that they agree (one tiny ``Iallreduce``, ``start_check``):
  a mismatch raises ``DistributedError`` on every rank (or ends the job
  with the reason) instead of corrupting memory or hanging.
- Result buffers are reused from call to call (``scratch``) while nothing
  outside the op still holds the previous result: MPICH reduces into a
  freshly allocated buffer 2-3x slower than into one it has used before
  (first-touch page faults and its shared-memory path's per-buffer setup;
  measured in bench/distributed.py), which made the bucketed path far
  slower than a raw ``Allreduce`` on a reused buffer.
- Declared ``constant_foldable = False`` (a collective's value depends on
  the other ranks); no elementwise ``scalar_op``, so never fused.
"""
import math
import sys

import numpy as np
from mpi4py import MPI

import tracegrad.tensor as T
from tracegrad.distributed import nccl
from tracegrad.distributed.state import (CHECK_TIMEOUT_S, DistributedError,
                                         check_shapes_enabled, current, wait_or_abort)
from tracegrad.ops.base import is_differentiable, match_gradient_dtype
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["allreduce", "broadcast", "reduce", "allgather", "reduce_scatter",
           "Collective", "Allreduce", "Broadcast", "Reduce", "Allgather", "ReduceScatter",
           "AllreduceBucket"]

REDUCE_OPS = ("sum", "mean", "max", "min")
_MPI_OP = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}


# ------------------------------------------------------------ buffers
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


# Shape checks travel on a duplicate of each communicator (made at its
# first check, which every rank reaches together), so that a check message
# can never be matched with a data collective (see ``start_check``).
_CHECK_COMMS = {}
CHECKS_SENT = [0]   # (a counter the tests read)


def _check_comm(comm):
    dup = _CHECK_COMMS.get(comm.py2f())
    if dup is None:
        dup = _CHECK_COMMS[comm.py2f()] = comm.Dup()
    return dup


def check_shapes(comm, shapes, what, owner=None):
    """Every rank holds ``shapes`` (a list of tuples of the same ranks on
    every rank, the graphs being equal); else ``DistributedError`` on all
    (``start_check`` for when a message is sent). Skipped after
    ``set_check_shapes(False)``."""
    finish_check(start_check(comm, shapes, owner), comm, shapes, what, owner)


def start_check(comm, shapes, owner=None):
    """Start ``check_shapes``: an ``Iallreduce`` of the shapes on the
    check communicator, whose latency then overlaps what the caller does
    before ``finish_check`` (a bucket's packing). ``None``: no message.

    No message either when ``owner`` (the op) last verified these very
    shapes: in a correct program every rank's shapes are equal at every
    call, so every rank sees the same "changed since last time" and all
    check, or none does; training with fixed shapes then pays no message
    after the first step. A rank whose shapes changed alone (the others'
    did not: they now differ) checks while the others go on to the data
    collective on the other communicator; it waits ``CHECK_TIMEOUT_S``,
    says so and aborts the job (``finish_check``)."""
    if comm.Get_size() == 1 or not check_shapes_enabled():
        return None
    if owner is not None and owner.__dict__.get("_checked") == shapes:
        return None
    mine = np.array([n for s in shapes for n in s], dtype=np.int64)
    if mine.size == 0:      # (0-d tensors only: nothing can differ)
        return None
    both = np.concatenate([mine, -mine])     # (max of both: equal iff all equal)
    out = np.empty_like(both)
    CHECKS_SENT[0] += 1
    return _check_comm(comm).Iallreduce(both, out, op=MPI.MAX), both, out


def finish_check(pending, comm, shapes, what, owner=None):
    """Wait for ``start_check``'s message; ``DistributedError`` on every
    rank when the shapes differ."""
    if pending is None:
        return
    request, both, out = pending
    wait_or_abort(request, CHECK_TIMEOUT_S, lambda: (
        f"tracegrad.distributed: rank {comm.Get_rank()} of {comm.Get_size()}: the shapes "
        f"of {what} changed at this call ({', '.join(map(str, shapes))}) and the other "
        f"ranks did not come to compare theirs within {CHECK_TIMEOUT_S:g} s: theirs did "
        "not change, so the ranks' shapes differ now (or a rank is stuck). Calling "
        "MPI_Abort (TRACEGRAD_CHECK_TIMEOUT sets the wait)\n"))
    if np.array_equal(out, both):
        if owner is not None:
            owner.__dict__["_checked"] = list(shapes)
        return
    every = _check_comm(comm).allgather(shapes)     # (the error path only: pickled)
    listed = "; ".join(f"rank {r}: {', '.join(map(str, s))}" for r, s in enumerate(every))
    raise DistributedError(f"{what}: the ranks' shapes differ ({listed}); every rank "
                           "must pass arrays of the same shape")


class Collective(Op):
    """Base of the collective ops: the communicator (not hashable, so its
    Fortran handle ``comm_key`` stands in the props), no constant folding."""

    constant_foldable = False

    def __init__(self, comm=None):
        self.comm = current() if comm is None else comm
        self.comm_key = self.comm.py2f()

    def __getstate__(self):
        # A communicator cannot be pickled: an unpickled op uses ``comm`` then.
        return {k: v for k, v in self.__dict__.items()
                if k not in ("comm", "comm_key", "_scratch", "_checked")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.comm = current()
        self.comm_key = self.comm.py2f()

    def _one(self, x, dtype=None, shape=None):
        x = as_tensor_variable(x)
        out = TensorType(dtype or x.dtype, x.type.shape if shape is None else shape)()
        return Apply(self, [x], [out])


class Allreduce(Collective):
    """Every rank gets the elementwise ``op`` (sum, mean, max, min) over ranks.
    ``bucketable=False``: never merged into a bucket by the compile pass
    (``autobucket.py``)."""

    __props__ = ("op", "comm_key", "bucketable")

    def __init__(self, op="sum", comm=None, bucketable=True):
        if op not in REDUCE_OPS:
            raise ValueError(f"allreduce: op must be one of {REDUCE_OPS}, got {op!r}")
        super().__init__(comm)
        self.op = op
        self.bucketable = bool(bucketable)

    def __setstate__(self, state):
        state.setdefault("bucketable", True)     # (pickled before the flag existed)
        super().__setstate__(state)

    def __str__(self):
        return f"allreduce{{{self.op}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        kind = x.dtype[0]
        if self.op in ("sum", "mean") and kind == "b":
            raise TypeError(f"allreduce(op={self.op!r}): cast the bool tensor {x} first")
        if self.op == "mean" and kind not in "fc":
            raise TypeError(f"allreduce(op='mean') needs a float or complex tensor, got {x.dtype}")
        if self.op in ("max", "min") and kind == "c":
            raise TypeError(f"allreduce(op={self.op!r}): complex numbers are not ordered")
        return self._one(x)

    def impl(self, xp, x):
        check_shapes(self.comm, [x.shape], str(self), self)
        gpu = on_device(self.comm, xp, x.dtype, self.op)
        if gpu is not None:
            return gpu.allreduce(x, self.op)
        a = _host(xp, x)
        out = scratch(self, "out", a.shape, a.dtype)
        self.comm.Allreduce(a, out, op=_MPI_OP[self.op])
        if self.op == "mean":
            out /= self.comm.Get_size()
        return _device(xp, out, x.dtype)

    def vjp(self, node, output_grads):
        x, = node.inputs
        g = output_grads[0]
        if not is_differentiable(x):
            return [None]
        if self.op in ("sum", "mean"):
            return [match_gradient_dtype(Allreduce(self.op, self.comm)(g), x)]
        # max/min: to the ranks holding the extreme, shared among ties.
        held = T.cast(T.eq(x, node.outputs[0]), x.dtype)
        count = Allreduce("sum", self.comm)(held)
        total = Allreduce("sum", self.comm)(g)
        return [match_gradient_dtype(total * held / T.maximum(count, 1), x)]


class Broadcast(Collective):
    """Every rank gets the root's value (the others' inputs give only the shape)."""

    __props__ = ("root", "comm_key")

    def __init__(self, root=0, comm=None):
        super().__init__(comm)
        if not 0 <= int(root) < self.comm.Get_size():
            raise ValueError(f"broadcast: root {root} is not a rank of a communicator "
                             f"of size {self.comm.Get_size()}")
        self.root = int(root)

    def __str__(self):
        return f"broadcast{{root={self.root}}}"

    def make_node(self, x):
        return self._one(x)

    def impl(self, xp, x):
        check_shapes(self.comm, [x.shape], str(self), self)
        gpu = on_device(self.comm, xp, x.dtype)
        if gpu is not None:
            return gpu.broadcast(x, self.root)
        a = _host(xp, x)
        buf = scratch(self, "out", a.shape, a.dtype)
        buf[...] = a
        self.comm.Bcast(buf, root=self.root)
        return _device(xp, buf, x.dtype)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        return [match_gradient_dtype(Reduce(self.root, self.comm)(output_grads[0]), x)]


class Reduce(Collective):
    """The sum over ranks on ``root``; zeros on the other ranks (the vjp of
    ``broadcast``, and its own is ``broadcast``)."""

    __props__ = ("root", "comm_key")

    def __init__(self, root=0, comm=None):
        super().__init__(comm)
        self.root = int(root)

    def __str__(self):
        return f"reduce{{root={self.root}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.dtype[0] == "b":
            raise TypeError(f"reduce: cast the bool tensor {x} first")
        return self._one(x)

    def impl(self, xp, x):
        check_shapes(self.comm, [x.shape], str(self), self)
        gpu = on_device(self.comm, xp, x.dtype, "sum")
        if gpu is not None:
            return gpu.reduce(x, self.root)
        a = _host(xp, x)
        out = scratch(self, "out", a.shape, a.dtype)
        if self.comm.Get_rank() != self.root:
            out[...] = 0        # (MPI writes the root's buffer only)
        self.comm.Reduce(a, out, op=MPI.SUM, root=self.root)
        return _device(xp, out, x.dtype)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        return [match_gradient_dtype(Broadcast(self.root, self.comm)(output_grads[0]), x)]


def _scaled(n, factor, divide=False):
    if n is None:
        return None
    return n // factor if divide else n * factor


class Allgather(Collective):
    """The ranks' arrays concatenated along ``axis`` in rank order (every
    rank's array must have the same shape)."""

    __props__ = ("axis", "comm_key")

    def __init__(self, axis=0, comm=None):
        super().__init__(comm)
        self.axis = int(axis)

    def __str__(self):
        return f"allgather{{axis={self.axis}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim:
            raise ValueError(f"allgather: axis {self.axis} is out of range for {x} "
                             f"of {x.ndim} dimensions")
        shape = list(x.type.shape)
        shape[self.axis] = _scaled(shape[self.axis], self.comm.Get_size())
        return self._one(x, shape=tuple(shape))

    def impl(self, xp, x):
        check_shapes(self.comm, [x.shape], str(self), self)
        gpu = on_device(self.comm, xp, x.dtype)
        if gpu is not None:
            return gpu.allgather(x, self.axis)
        a = _host(xp, x)
        send = np.ascontiguousarray(np.moveaxis(a, self.axis, 0))
        out = scratch(self, "out", (self.comm.Get_size() * send.shape[0],) + send.shape[1:],
                      send.dtype)
        self.comm.Allgather(send, out)
        return _device(xp, np.ascontiguousarray(np.moveaxis(out, 0, self.axis)), x.dtype)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        return [match_gradient_dtype(ReduceScatter(self.axis, self.comm)(output_grads[0]), x)]


class ReduceScatter(Collective):
    """The sum over ranks, split along ``axis`` into ``size()`` equal
    chunks; rank ``r`` gets chunk ``r`` (``x.shape[axis]`` must divide)."""

    __props__ = ("axis", "comm_key")

    def __init__(self, axis=0, comm=None):
        super().__init__(comm)
        self.axis = int(axis)

    def __str__(self):
        return f"reduce_scatter{{axis={self.axis}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim:
            raise ValueError(f"reduce_scatter: axis {self.axis} is out of range for {x} "
                             f"of {x.ndim} dimensions")
        if x.dtype[0] == "b":
            raise TypeError(f"reduce_scatter: cast the bool tensor {x} first")
        p = self.comm.Get_size()
        shape = list(x.type.shape)
        if shape[self.axis] is not None and shape[self.axis] % p:
            raise ValueError(f"reduce_scatter: length {shape[self.axis]} of axis {self.axis} "
                             f"does not split into {p} equal chunks")
        shape[self.axis] = _scaled(shape[self.axis], p, divide=True)
        return self._one(x, shape=tuple(shape))

    def impl(self, xp, x):
        p = self.comm.Get_size()
        if x.shape[self.axis] % p:
            raise DistributedError(f"{self}: length {x.shape[self.axis]} of axis {self.axis} "
                                   f"does not split into {p} equal chunks")
        check_shapes(self.comm, [x.shape], str(self), self)
        gpu = on_device(self.comm, xp, x.dtype, "sum")
        if gpu is not None:
            return gpu.reduce_scatter(x, self.axis)
        a = _host(xp, x)
        send = np.ascontiguousarray(np.moveaxis(a, self.axis, 0))
        out = scratch(self, "out", (send.shape[0] // p,) + send.shape[1:], send.dtype)
        self.comm.Reduce_scatter_block(send, out, op=MPI.SUM)
        return _device(xp, np.ascontiguousarray(np.moveaxis(out, 0, self.axis)), x.dtype)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        return [match_gradient_dtype(Allgather(self.axis, self.comm)(output_grads[0]), x)]


class AllreduceBucket(Collective):
    """``allreduce`` of several tensors of one dtype in **one** collective:
    they are packed into one flat buffer, reduced in place and unpacked
    (Horovod's tensor fusion). Outputs are views of that fresh buffer."""

    __props__ = ("op", "comm_key")

    def __init__(self, op="sum", comm=None):
        if op not in ("sum", "mean"):
            raise ValueError(f"bucketed allreduce: op must be 'sum' or 'mean', got {op!r}")
        super().__init__(comm)
        self.op = op

    def __str__(self):
        return f"allreduce_bucket{{{self.op}}}"

    def make_node(self, *xs):
        xs = [as_tensor_variable(x) for x in xs]
        if not xs or len({x.dtype for x in xs}) != 1 or xs[0].dtype[0] not in "fciu":
            raise TypeError("bucketed allreduce: needs one or more numeric tensors of one "
                            f"dtype, got {[x.dtype for x in xs]}")
        if self.op == "mean" and xs[0].dtype[0] not in "fc":
            raise TypeError(f"bucketed allreduce(op='mean') needs floats, got {xs[0].dtype}")
        return Apply(self, xs, [TensorType(x.dtype, x.type.shape)() for x in xs])

    def impl(self, xp, *xs):
        shapes = [x.shape for x in xs]
        gpu = on_device(self.comm, xp, xs[0].dtype, self.op)
        if gpu is not None:     # (packed on the device: one NCCL call)
            check_shapes(self.comm, shapes, str(self), self)
            flat = xp.concatenate([x.reshape(-1) for x in xs])
            return device_unpack(gpu.allreduce_flat(flat, self.op), shapes)
        if len(xs) == 1:        # (nothing to pack: reduce straight into the output)
            check_shapes(self.comm, shapes, str(self), self)
            a = _host(xp, xs[0])
            out = scratch(self, "out", a.shape, a.dtype)
            self.comm.Allreduce(a, out, op=MPI.SUM)
            if self.op == "mean":
                out /= self.comm.Get_size()
            return _device(xp, out, xs[0].dtype)
        # (pack + in-place reduce costs what a raw out-of-place Allreduce
        # does: MPICH copies the send buffer into the receive buffer first)
        pending = start_check(self.comm, shapes, self)
        flat = pack(self, xp, xs)
        finish_check(pending, self.comm, shapes, str(self), self)
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        if self.op == "mean":
            flat /= self.comm.Get_size()
        return unpack(xp, flat, shapes, xs[0].dtype)

    def vjp(self, node, output_grads):
        gs = [T.zeros_like(o) if g is None else g for g, o in zip(output_grads, node.outputs)]
        out = AllreduceBucket(self.op, self.comm)(*gs)
        out = out if isinstance(out, (list, tuple)) else [out]
        return [match_gradient_dtype(g, x) if is_differentiable(x) else None
                for g, x in zip(out, node.inputs)]


# ------------------------------------------------------------ functions
def allreduce(x, op="sum"):
    """The elementwise ``op`` (``'sum'``, ``'mean'``, ``'max'``, ``'min'``)
    of ``x`` over every rank of ``comm``, on every rank."""
    return Allreduce(op)(x)


def broadcast(x, root=0):
    """``root``'s ``x`` on every rank (all ranks pass the same shape)."""
    return Broadcast(root)(x)


def reduce(x, root=0):
    """The sum of ``x`` over ranks on ``root``, zeros elsewhere."""
    return Reduce(root)(x)


def allgather(x, axis=0):
    """Every rank's ``x`` concatenated along ``axis`` in rank order."""
    return Allgather(axis)(x)


def reduce_scatter(x, axis=0):
    """The sum of ``x`` over ranks, cut along ``axis`` into ``size()`` equal
    chunks: rank ``r`` gets chunk ``r``."""
    return ReduceScatter(axis)(x)
