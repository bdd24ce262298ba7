"""Collectives on CuPy arrays through NCCL (``cupy.cuda.nccl``).

With ``device='cuda'`` the collective ops hand their CuPy arrays to the
runner ``devices.runner(comm, xp)`` picks: an ``NcclRunner`` (this module)
when NCCL is usable (``set_gpu_collectives('auto'|'nccl')``), a
``cudampi.MpiCudaRunner`` for a CUDA-aware MPI, or ``None``: the ops copy
to the host and use mpi4py (``'host'``). The runner has one method per collective
with the ops' semantics (``allreduce``, ``broadcast``, ``reduce``,
``allgather``, ``reduce_scatter``, and ``allreduce_flat`` for a packed
bucket), each taking and returning device arrays: no host copy.

Set-up: NCCL needs one communicator per MPI communicator, made by every
rank from the same 128-byte unique id. Rank 0 draws it
(``nccl.get_unique_id``), ``comm.bcast`` gives it to the others, and each
builds ``nccl.NcclCommunicator(size, id, rank)`` (a collective call: every
rank reaches it at its first device collective on ``comm``, the graphs
being equal). One per ``(communicator, device)``, kept for the process.

Calls are enqueued on the current CuPy stream, so the kernels after them
on that stream see their results without a synchronisation; non-blocking
buckets (``overlap=True``) thus start at ``IallreduceStart`` and their
wait is the stream order. Dtypes NCCL lacks travel as others (complex as
pairs of reals for sums, bool as uint8 for max/min); those it cannot carry
(int16, complex max/min) go through the host path. MPI still carries the
small shape checks (``check_shapes``): a count mismatch in NCCL would hang
the device, not raise.
"""
import importlib

import numpy as np

__all__ = ["NcclRunner", "nccl_module", "runner"]

_RUNNERS = {}   # (comm handle, id(xp), device id) -> NcclRunner


def nccl_module():
    """``cupy.cuda.nccl``, or ``None`` where CuPy or its NCCL binding is absent."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return None
    try:
        return importlib.import_module("cupy.cuda.nccl")
    except ImportError:
        # (a stand-in ``cupy`` that is a plain module: the attribute)
        return getattr(getattr(cupy, "cuda", None), "nccl", None)


def runner(comm, xp):
    """The ``NcclRunner`` for ``comm`` on the current device, or ``None``
    where ``cupy.cuda.nccl`` is absent (``devices.runner`` picks between
    NCCL, CUDA-aware MPI and the host: ``set_gpu_collectives``)."""
    nccl = nccl_module()
    if nccl is None:
        return None
    # (``id(xp)``: one CuPy module in a process, but tests swap in stand-ins)
    key = (comm.py2f(), id(xp), xp.cuda.runtime.getDevice())
    found = _RUNNERS.get(key)
    if found is None:
        found = _RUNNERS[key] = NcclRunner(comm, nccl, xp)
    return found


def _tables(nccl):
    dtypes = {}
    for name in ("float16", "float32", "float64", "int8", "uint8", "int32", "uint32",
                 "int64", "uint64"):
        code = getattr(nccl, f"NCCL_{name.upper()}", None)
        if code is not None:
            dtypes[np.dtype(name)] = code
    ops = {"sum": nccl.NCCL_SUM, "mean": nccl.NCCL_SUM, "max": nccl.NCCL_MAX,
           "min": nccl.NCCL_MIN}
    return dtypes, ops


class NcclRunner:
    """The collectives of one MPI communicator, on CuPy arrays, by NCCL."""

    def __init__(self, comm, nccl, xp):
        self.mpi = comm
        self.xp = xp
        self.size = comm.Get_size()
        self.rank = comm.Get_rank()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = comm.bcast(uid, root=0)       # (128 bytes, once: pickled)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.dtypes, self.ops = _tables(nccl)

    # ------------------------------------------------------------ helpers
    def _wire(self, x, op="sum"):
        """``(array NCCL reduces, its NCCL dtype, how to get x's dtype
        back)``, or ``None`` when NCCL cannot carry ``x`` for ``op``."""
        x = x if x.flags.c_contiguous else x.copy()
        dtype = np.dtype(x.dtype)
        if dtype in self.dtypes:
            return x, self.dtypes[dtype], None
        if dtype.kind == "c" and op in ("sum", "mean"):
            real = np.dtype(f"f{dtype.itemsize // 2}")
            return x.reshape(-1).view(real), self.dtypes[real], dtype
        if dtype == np.bool_ and op in ("max", "min"):
            return x.astype(np.uint8), self.dtypes[np.dtype(np.uint8)], dtype
        return None

    @staticmethod
    def _back(out, shape, dtype):
        if dtype is None:
            return out.reshape(shape)
        if dtype.kind == "c":
            return out.view(dtype).reshape(shape)
        return out.astype(dtype).reshape(shape)

    def _stream(self):
        return self.xp.cuda.get_current_stream().ptr

    def carries(self, dtype, op="sum"):
        """Whether NCCL reduces ``dtype`` with ``op`` (else the host path;
        ``broadcast`` and ``allgather`` carry every dtype)."""
        dtype = np.dtype(dtype)
        return dtype in self.dtypes or (dtype.kind == "c" and op in ("sum", "mean")) \
            or (dtype == np.bool_ and op in ("max", "min"))

    # ------------------------------------------------------------ collectives
    def allreduce(self, x, op):
        """``allreduce(x, op)`` of the ops, on the device."""
        send, code, back = self._wire(x, op)
        out = self.xp.empty_like(send)
        self.comm.allReduce(send.data.ptr, out.data.ptr, send.size, code, self.ops[op],
                            self._stream())
        if op == "mean":
            out /= self.size
        return self._back(out, x.shape, back)

    def allreduce_flat(self, flat, op):
        """Reduce the packed bucket ``flat`` (contiguous, 1-d) in place."""
        send, code, back = self._wire(flat, op)
        self.comm.allReduce(send.data.ptr, send.data.ptr, send.size, code, self.ops[op],
                            self._stream())
        if op == "mean":
            send /= self.size
        return self._back(send, flat.shape, back)

    def _bytes(self, x):
        """``x`` (C-contiguous) as its bytes: data that only moves needs no
        NCCL dtype of its own."""
        return x.reshape(-1).view(np.uint8), self.dtypes[np.dtype(np.uint8)]

    def broadcast(self, x, root):
        buf = x.copy()
        raw, code = self._bytes(buf)
        self.comm.broadcast(raw.data.ptr, raw.data.ptr, raw.size, code, root, self._stream())
        return buf

    def reduce(self, x, root):
        send, code, back = self._wire(x, "sum")
        # (NCCL writes the root's buffer only; the others return zeros)
        out = self.xp.zeros_like(send)
        self.comm.reduce(send.data.ptr, out.data.ptr, send.size, code, self.ops["sum"], root,
                         self._stream())
        return self._back(out, x.shape, back)

    def allgather(self, x, axis):
        xp = self.xp
        send = xp.ascontiguousarray(xp.moveaxis(x, axis, 0))
        out = xp.empty((self.size * send.shape[0],) + send.shape[1:], send.dtype)
        raw, code = self._bytes(send)
        self.comm.allGather(raw.data.ptr, self._bytes(out)[0].data.ptr, raw.size, code,
                            self._stream())
        return xp.ascontiguousarray(xp.moveaxis(out, 0, axis))

    def reduce_scatter(self, x, axis):
        xp = self.xp
        send = xp.ascontiguousarray(xp.moveaxis(x, axis, 0))
        shape = (send.shape[0] // self.size,) + send.shape[1:]
        send, code, back = self._wire(send, "sum")
        out = xp.empty((send.size // self.size,), send.dtype)
        self.comm.reduceScatter(send.data.ptr, out.data.ptr, out.size, code, self.ops["sum"],
                                self._stream())
        return xp.ascontiguousarray(xp.moveaxis(self._back(out, shape, back), 0, axis))
