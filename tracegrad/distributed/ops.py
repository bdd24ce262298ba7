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
  ranks check that they agree (``checks.py``): a mismatch raises
  ``DistributedError`` on every rank (or ends the job with the reason)
  instead of corrupting memory or hanging.
- Result buffers are reused from call to call while nothing outside the op
  still holds the previous result (``buffers.scratch``: MPICH is 2-5x
  slower into a fresh buffer).
- Declared ``constant_foldable = False`` (a collective's value depends on
  the other ranks); no elementwise ``scalar_op``, so never fused.
"""
from operator import attrgetter

import numpy as np
from mpi4py import MPI

import tracegrad.tensor as T
from tracegrad.distributed.buffers import (_WIRE, Arena, _device, _host, device_unpack,
                                           on_device, pack, scratch, unpack)
from tracegrad.distributed.checks import (check_shapes, finish_check, start_check,
                                         verified)
from tracegrad.distributed.state import DistributedError, current
from tracegrad.ops.base import is_differentiable, match_gradient_dtype
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["allreduce", "broadcast", "reduce", "allgather", "reduce_scatter",
           "Collective", "Allreduce", "Broadcast", "Reduce", "Allgather", "ReduceScatter",
           "AllreduceBucket", "fill_arena"]

REDUCE_OPS = ("sum", "mean", "max", "min")
_MPI_OP = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
_SHAPE = attrgetter("shape")


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
    """``allreduce`` of several tensors of one dtype in **one** collective
    (Horovod's tensor fusion). On the host the tensors live in the bucket's
    ``Arena``: a flat buffer reduced in place, whose views are the outputs.
    Where the producers of the tensors wrote straight into the arena's
    views (``views.py``, gradient as bucket view) nothing is copied; else
    the tensors are packed into it first (one copy)."""

    __props__ = ("op", "comm_key")
    exact_outputs = True    # (views of the arena, or unpacked in the tensors' dtype)

    def __init__(self, op="sum", comm=None):
        if op not in ("sum", "mean"):
            raise ValueError(f"bucketed allreduce: op must be 'sum' or 'mean', got {op!r}")
        super().__init__(comm)
        self.op = op
        self.arena = Arena()

    def __setstate__(self, state):
        state.setdefault("arena", Arena())     # (pickled before the arena existed)
        super().__setstate__(state)

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
        if xp is np and xs[0].dtype not in _WIRE:
            return self._in_arena(xs)
        shapes = [x.shape for x in xs]
        gpu = on_device(self.comm, xp, xs[0].dtype, self.op)
        if gpu is not None:     # (packed on the device: one NCCL call)
            check_shapes(self.comm, shapes, str(self), self)
            flat = xp.concatenate([x.reshape(-1) for x in xs])
            return device_unpack(gpu.allreduce_flat(flat, self.op), shapes)
        return self._packed(xp, xs, shapes)

    def _in_arena(self, xs):
        """NumPy arrays in a dtype MPI carries: reduced in the arena
        (``fill_arena``) in place; its views are the results. Passed-in
        arrays of the layout the ranks verified: gathered and reduced by
        one C call (``Arena.gather_reduce``)."""
        arena = self.arena
        comm = self.comm
        if arena.holds(xs) or not (verified(comm, arena.shapes, self)
                                   and arena.gather_reduce(xs, comm)):
            comm.Allreduce(MPI.IN_PLACE, fill_arena(self, xs), op=MPI.SUM)
        if self.op == "mean":
            arena.flat /= comm.Get_size()
        views = arena.views
        return views if len(views) > 1 else views[0]

    def _packed(self, xp, xs, shapes):
        """Device arrays on the host path, and float16: pack into the
        reusable wire-dtype buffer, reduce, unpack (copies)."""
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


def fill_arena(op, xs):
    """Put the NumPy arrays ``xs`` (a dtype MPI carries) into ``op.arena``'s
    flat buffer and return it, the ranks' shapes checked when they changed
    (``checks.start_check``). The tensors are its views already (their
    producers wrote into them: ``views.py``), or are copied in by one C
    call when they fit its layout (``Arena.gather``; the shapes are those
    the ranks last agreed on), or else the layout is made for their shapes
    and they are packed with NumPy (the check's message overlaps that)."""
    arena = op.arena
    if arena.holds(xs) or arena.gather(xs):
        shapes = arena.shapes
        pending = start_check(op.comm, shapes, op)
    else:
        shapes = tuple(map(_SHAPE, xs))
        pending = start_check(op.comm, shapes, op)
        views = arena.layout(shapes, xs[0].dtype)
        if len(xs) == 1:
            views[0][...] = xs[0]
        else:
            np.concatenate(xs, axis=None, out=arena.flat)
        shapes = arena.shapes   # (equal; kept as the checked ones: compared by identity)
    if pending is not None:
        finish_check(pending, op.comm, shapes, str(op), op)
    return arena.flat


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
