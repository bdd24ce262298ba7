"""Non-blocking bucketed allreduce (``Iallreduce``): communication that may
overlap the rest of backprop (``allreduce_many(..., overlap=True)``).

A bucket becomes two nodes:

- ``IallreduceStart``: packs the bucket's tensors into its ``Arena``'s flat
  buffer (no copy where their producers wrote into its views: ``views.py``),
  starts ``comm.Iallreduce`` in place and returns that buffer (its values
  are not final yet; only a wait may read it). The request is kept in
  ``_PENDING`` under the buffer's ``id`` with the buffer itself, so neither
  is freed while MPI writes into it.
- ``IallreduceWait``: waits for the request of its first input and returns
  the bucket's tensors as views of the buffer (``view_map``): the arena's
  views, kept from call to call.

Every wait also takes the buffers of **all** the starts as extra inputs: a
schedule (a depth-first post-order, ``trace.toposort``) then runs every
start, each as soon as its bucket's gradients exist, before the first wait,
so the buckets of the last layers are in flight while the first layers'
gradients are computed. Whether the transfer progresses during that compute
is up to the MPI library: MPICH progresses a non-blocking collective inside
MPI calls, or all the time with ``MPIR_CVAR_ASYNC_PROGRESS=1`` (a progress
thread); docs/distributed.md.

These nodes have no gradient rule (they carry gradients to the update);
differentiate through ``overlap=False`` buckets instead.
"""
import numpy as np
from mpi4py import MPI

from tracegrad.distributed.buffers import (Arena, device_unpack, on_device, pack, unpack,
                                           wire_dtype)
from tracegrad.distributed.checks import check_shapes, finish_check, start_check
from tracegrad.distributed.ops import Collective, fill_arena
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply

__all__ = ["IallreduceStart", "IallreduceWait", "overlapped_buckets"]

_PENDING = {}   # id(buffer) -> (request, buffer)


class IallreduceStart(Collective):
    """Pack one bucket and start its non-blocking allreduce (sum)."""

    __props__ = ("comm_key",)

    def __str__(self):
        return "iallreduce_start"

    def make_node(self, *xs):
        xs = [as_tensor_variable(x) for x in xs]
        if not xs or len({x.dtype for x in xs}) != 1 or xs[0].dtype[0] not in "fciu":
            raise TypeError("iallreduce_start: needs numeric tensors of one dtype, got "
                            f"{[x.dtype for x in xs]}")
        return Apply(self, xs, [TensorType(xs[0].dtype, (None,))()])

    def __init__(self, comm=None, arena=None):
        super().__init__(comm)
        self.arena = Arena() if arena is None else arena

    def __setstate__(self, state):
        state.setdefault("arena", Arena())     # (pickled before the arena existed)
        super().__setstate__(state)

    def impl(self, xp, *xs):
        gpu = on_device(self.comm, xp, xs[0].dtype, "sum")
        if gpu is not None or xp is not np or wire_dtype(xs[0].dtype) != xs[0].dtype:
            return self._packed(xp, xs, gpu)
        flat = fill_arena(self, xs)     # (as a blocking bucket: see ops.fill_arena)
        _PENDING[id(flat)] = (self.comm.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM), flat)
        return flat

    def _packed(self, xp, xs, gpu):
        """Device arrays (NCCL, or packed for the host) and float16."""
        shapes = [x.shape for x in xs]
        if gpu is not None:
            check_shapes(self.comm, shapes, str(self), self)
            # (enqueued on the current stream: what reads it later waits for it)
            flat = gpu.allreduce_flat(xp.concatenate([x.reshape(-1) for x in xs]), "sum")
            _PENDING[id(flat)] = (None, flat)
            return flat
        pending = start_check(self.comm, shapes, self)
        flat = pack(self, xp, xs)
        finish_check(pending, self.comm, shapes, str(self), self)
        _PENDING[id(flat)] = (self.comm.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM), flat)
        return flat

    def vjp(self, node, output_grads):
        raise NotImplementedError("allreduce_many(overlap=True) has no gradient rule; "
                                  "use overlap=False to differentiate through it")


class IallreduceWait(Collective):
    """Wait for the bucket started into input 0 and unpack it (``mean``
    divides by the size); inputs 1.. are the other starts' buffers, read
    only to order every start before any wait."""

    __props__ = ("op", "shapes", "dtype", "comm_key")
    exact_outputs = True    # (the arena's views, or unpacked in ``dtype``)

    def __init__(self, op, shapes, dtype, comm=None, arena=None):
        super().__init__(comm)
        self.op = op
        self.shapes = tuple(tuple(s) for s in shapes)
        self.dtype = dtype
        self.view_map = {k: [0] for k in range(len(self.shapes))}
        self.arena = arena      # (its start's: the views of the buffer, made once)

    def __str__(self):
        return f"iallreduce_wait{{{self.op}, {len(self.shapes)} tensors}}"

    def make_node(self, buffer, *others):
        inputs = [as_tensor_variable(v) for v in (buffer,) + others]
        return Apply(self, inputs, [TensorType(self.dtype, s)() for s in self.shapes])

    def impl(self, xp, buffer, *others):
        request, flat = _PENDING.pop(id(buffer))
        if request is not None:
            request.Wait()
        if self.op == "mean":
            flat /= self.comm.Get_size()
        if request is None:
            return device_unpack(flat, self.shapes)
        arena = self.__dict__.get("arena")
        if arena is not None and flat is arena.flat:
            views = arena.views
            return views if len(views) > 1 else views[0]
        return unpack(xp, flat, self.shapes, self.dtype)

    def vjp(self, node, output_grads):
        raise NotImplementedError("allreduce_many(overlap=True) has no gradient rule; "
                                  "use overlap=False to differentiate through it")


def overlapped_buckets(xs, buckets, op, comm, shapes):
    """The reduced ``xs`` through one start and one wait per bucket
    (``shapes``: each tensor's run-time shape, known when it is packed)."""
    ops = [IallreduceStart(comm) for _ in buckets]
    starts = [start(*[xs[k] for k in b]) for start, b in zip(ops, buckets)]
    out = [None] * len(xs)
    for j, b in enumerate(buckets):
        others = starts[:j] + starts[j + 1:]
        wait = IallreduceWait(op, [shapes[k] for k in b], xs[b[0]].dtype, comm, ops[j].arena)
        res = wait(starts[j], *others)
        res = res if isinstance(res, (list, tuple)) else [res]
        for k, r in zip(b, res):
            out[k] = r
    return out
