"""A stand-in for ``cupy.cuda.nccl`` on the fake CuPy (fake_cupy.py).

``modules()`` gives fake CuPy modules with ``cupy.cuda.nccl`` set to this
fake, for ``fake_cupy.installed(modules=...)``. What it models of NCCL:

- ``get_unique_id()`` draws a fresh random id in each process, so ranks
  that do not share rank 0's id (broadcast over MPI) fail to form a
  communicator: ``NcclCommunicator(ndev, uid, rank)`` checks, over MPI, that
  every rank passed the same id, that ``ndev`` is the number of ranks and
  that the ranks are distinct, and raises ``NcclError`` otherwise;
- the collectives take raw device pointers (``array.data.ptr``), element
  counts, NCCL dtype codes, ops and a stream, as the real binding does, and
  read and write the memory behind the pointers (here NumPy storage),
  moving data between the ranks with mpi4py on ``MPI.COMM_WORLD`` (a
  duplicate of it), so values under ``mpiexec`` are real collectives;
- ``reduce`` writes the root's buffer only; in-place calls (send == recv)
  are allowed.

Every call is recorded in ``CALLS`` as ``(name, count, dtype code)`` so
tests can tell NCCL carried a collective (no host copy). Only
communicators spanning ``MPI.COMM_WORLD`` are modelled.
"""
import ctypes
import random

import numpy as np
from mpi4py import MPI

import fake_cupy

CALLS = []
NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = range(6)
NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = range(4)
_DTYPES = {NCCL_INT8: np.int8, NCCL_UINT8: np.uint8, NCCL_INT32: np.int32,
           NCCL_UINT32: np.uint32, NCCL_INT64: np.int64, NCCL_UINT64: np.uint64,
           NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}
_OPS = {NCCL_SUM: MPI.SUM, NCCL_PROD: MPI.PROD, NCCL_MAX: MPI.MAX, NCCL_MIN: MPI.MIN}


class NcclError(RuntimeError):
    pass


def get_unique_id():
    return tuple(random.randrange(256) for _ in range(128))


def _memory(ptr, count, code):
    """The ``count`` elements of dtype ``code`` at address ``ptr``."""
    dtype = np.dtype(_DTYPES[code])
    if count == 0:
        return np.empty(0, dtype)
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype, count=count)


def _wire(a):
    # (MPI has no float16: sum it as float32, as the real NCCL keeps float16)
    return a.astype(np.float32) if a.dtype == np.float16 else a.copy()


class NcclCommunicator:
    def __init__(self, ndev, commId, rank):
        self.mpi = MPI.COMM_WORLD.Dup()
        every = self.mpi.allgather((tuple(commId), ndev, rank))
        if len({e[0] for e in every}) != 1:
            raise NcclError("ncclCommInitRank: the ranks passed different unique ids "
                            "(every rank must use the one rank 0 drew)")
        if ndev != self.mpi.Get_size() or sorted(e[2] for e in every) != list(range(ndev)):
            raise NcclError(f"ncclCommInitRank: bad ndev/rank {every}")
        self._rank, self._size = rank, ndev
        CALLS.append(("init", ndev, rank))

    def rank_id(self):
        return self._rank

    def size(self):
        return self._size

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        CALLS.append(("allReduce", count, datatype))
        send = _wire(_memory(sendbuf, count, datatype))
        out = np.empty_like(send)
        self.mpi.Allreduce(send, out, op=_OPS[op])
        _memory(recvbuf, count, datatype)[...] = out

    def broadcast(self, sendbuf, recvbuf, count, datatype, root, stream):
        CALLS.append(("broadcast", count, datatype))
        buf = _memory(sendbuf, count, datatype).copy()
        self.mpi.Bcast(buf, root=root)
        _memory(recvbuf, count, datatype)[...] = buf

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        CALLS.append(("reduce", count, datatype))
        send = _wire(_memory(sendbuf, count, datatype))
        out = np.empty_like(send)
        self.mpi.Reduce(send, out, op=_OPS[op], root=root)
        if self._rank == root:
            _memory(recvbuf, count, datatype)[...] = out

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        CALLS.append(("allGather", count, datatype))
        out = np.empty(count * self._size, _DTYPES[datatype])
        self.mpi.Allgather(_memory(sendbuf, count, datatype).copy(), out)
        _memory(recvbuf, count * self._size, datatype)[...] = out

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        CALLS.append(("reduceScatter", recvcount, datatype))
        send = _wire(_memory(sendbuf, recvcount * self._size, datatype))
        out = np.empty(recvcount, send.dtype)
        self.mpi.Reduce_scatter_block(send, out, op=_OPS[op])
        _memory(recvbuf, recvcount, datatype)[...] = out

    def destroy(self):
        self.mpi.Free()


def modules(device_count=1):
    """Fake CuPy modules with this fake as ``cupy.cuda.nccl``."""
    import sys
    mods = fake_cupy.make_modules(device_count)
    this = sys.modules[__name__]
    mods["cupy.cuda"].nccl = this
    mods["cupy.cuda.nccl"] = this
    return mods
