"""Collectives on CuPy arrays through a CUDA-aware MPI library.

An MPI library built with CUDA support (Open MPI with UCX, MVAPICH2-GDR,
MPICH with ``--with-cuda``, Cray MPICH) takes device pointers in its
buffer arguments and moves the data itself (GPUDirect RDMA where the
network offers it). mpi4py hands it a CuPy array through
``__cuda_array_interface__``, so ``comm.Allreduce(x, out)`` on two CuPy
arrays is one device-to-device collective, with no host copy.

Whether the library is CUDA-aware (``cuda_aware``): the environment
variable ``TRACEGRAD_CUDA_AWARE_MPI`` (``1``/``0``) when set, else
``MPI.Query_cuda_support()`` where mpi4py offers it (MPICH and Open MPI's
``MPIX_Query_cuda_support``), else no. A library that is not CUDA-aware
would read device pointers as host memory (a crash or garbage), so an
unknown answer is "no".

MPI does not know CuPy's streams: before each call the runner waits for
the current stream (the kernels writing the send buffer), and MPI's
blocking call has finished writing the receive buffer when it returns.
Dtypes MPI lacks (float16, and bool, which MPI cannot compare) take the
host path; data that only moves (``broadcast``, ``allgather``) travels
as bytes, so every dtype.
"""
import os

import numpy as np
from mpi4py import MPI

__all__ = ["MpiCudaRunner", "cuda_aware", "runner"]

_OPS = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
_RUNNERS = {}   # (comm handle, id(xp), device id) -> MpiCudaRunner


def cuda_aware():
    """Whether the MPI library takes device buffers (module doc)."""
    env = os.environ.get("TRACEGRAD_CUDA_AWARE_MPI")
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes")
    query = getattr(MPI, "Query_cuda_support", None)
    if query is None:
        return False
    try:
        return bool(query())
    except (MPI.Exception, NotImplementedError):
        return False


def runner(comm, xp):
    """The ``MpiCudaRunner`` of ``comm`` on the current device."""
    key = (comm.py2f(), id(xp), xp.cuda.runtime.getDevice())
    found = _RUNNERS.get(key)
    if found is None:
        found = _RUNNERS[key] = MpiCudaRunner(comm, xp)
    return found


class MpiCudaRunner:
    """The collectives of one MPI communicator on CuPy arrays, by MPI on
    their device buffers (the interface of ``nccl.NcclRunner``)."""

    def __init__(self, comm, xp):
        self.mpi = comm
        self.xp = xp
        self.size = comm.Get_size()

    def carries(self, dtype, op="sum"):
        """Whether MPI reduces ``dtype`` (else the host path)."""
        dtype = np.dtype(dtype)
        return dtype.kind in "fciu" and dtype != np.float16

    def _ready(self, x):
        """``x`` C-contiguous, with the kernels writing it finished."""
        x = x if x.flags.c_contiguous else x.copy()
        self.xp.cuda.get_current_stream().synchronize()
        return x

    @staticmethod
    def _bytes(x):
        return x.reshape(-1).view(np.uint8)

    def allreduce(self, x, op):
        """``allreduce(x, op)`` of the ops, device to device."""
        send = self._ready(x)
        out = self.xp.empty_like(send)
        self.mpi.Allreduce(send, out, op=_OPS[op])
        if op == "mean":
            out /= self.size
        return out

    def allreduce_flat(self, flat, op):
        """Reduce the packed bucket ``flat`` (contiguous, 1-d) in place."""
        flat = self._ready(flat)
        self.mpi.Allreduce(MPI.IN_PLACE, flat, op=_OPS[op])
        if op == "mean":
            flat /= self.size
        return flat

    def broadcast(self, x, root):
        buf = x.copy()
        self._ready(buf)
        self.mpi.Bcast(self._bytes(buf), root=root)
        return buf

    def reduce(self, x, root):
        send = self._ready(x)
        out = self.xp.zeros_like(send)     # (MPI writes the root's buffer only)
        self.mpi.Reduce(send, out, op=MPI.SUM, root=root)
        return out

    def allgather(self, x, axis):
        xp = self.xp
        send = self._ready(xp.ascontiguousarray(xp.moveaxis(x, axis, 0)))
        out = xp.empty((self.size * send.shape[0],) + send.shape[1:], send.dtype)
        self.mpi.Allgather(self._bytes(send), self._bytes(out))
        return xp.ascontiguousarray(xp.moveaxis(out, 0, axis))

    def reduce_scatter(self, x, axis):
        xp = self.xp
        send = self._ready(xp.ascontiguousarray(xp.moveaxis(x, axis, 0)))
        out = xp.empty((send.shape[0] // self.size,) + send.shape[1:], send.dtype)
        self.mpi.Reduce_scatter_block(send, out, op=MPI.SUM)
        return xp.ascontiguousarray(xp.moveaxis(out, 0, axis))
