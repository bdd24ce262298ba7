"""Data-parallel training over MPI: collectives as graph ops.

    pip install 'tracegrad[mpi]'      # mpi4py and the mpich wheel (mpiexec)
    mpiexec -n 4 python train.py

Every process runs the same program (SPMD) on its own shard of the data;
the collectives (``allreduce``, ``broadcast``, ``reduce``, ``allgather``,
``reduce_scatter``) are ops in the graph, differentiated like any other
(the gradient of a rank's input is that of the global cost, the sum of the
ranks' costs). ``data_parallel(cost, params, lr)`` builds averaged-gradient
SGD updates with bucketed allreduces (``overlap=True``: non-blocking ones,
``overlap.py``); ``sync_shared`` gives every rank rank 0's initial values;
``shard`` takes this rank's part of a data set. Independent ``allreduce``s
written one by one are bucketed by a compile pass as well (``autobucket.py``).

``comm`` is the communicator (``MPI.COMM_WORLD`` until ``set_comm``);
``rank()`` and ``size()`` read it. Without ``mpiexec`` the program runs as
one process (``size() == 1``). Importing ``tracegrad`` never imports mpi4py;
importing this package does. Safety (graph agreement checked across ranks
when a function is compiled; ``MPI_Abort`` when a rank raises during a call)
is described in ``safety.py`` and docs/distributed.md.
"""
try:
    import mpi4py  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "tracegrad.distributed needs mpi4py and an MPI library: "
        "pip install 'tracegrad[mpi]' (mpi4py and the mpich wheel)") from exc

from tracegrad.distributed import autobucket, safety, views
from tracegrad.distributed.autobucket import auto_bucket_bytes, set_auto_bucket_bytes
from tracegrad.distributed.ops import (Allgather, Allreduce, AllreduceBucket, Broadcast,
                                       Collective, Reduce, ReduceScatter, allgather,
                                       allreduce, broadcast, reduce, reduce_scatter)
from tracegrad.distributed.state import (DistributedError, check_shapes_enabled,
                                         gpu_collectives, on_error, rank, set_check_shapes,
                                         set_comm, set_gpu_collectives, set_on_error, size)
from tracegrad.distributed.state import current as _current
from tracegrad.distributed.training import (BUCKET_BYTES, allreduce_many, averaged_gradients,
                                            data_parallel, shard, sync_shared)

__all__ = ["rank", "size", "comm", "set_comm", "allreduce", "broadcast", "reduce",
           "allgather", "reduce_scatter", "allreduce_many", "data_parallel",
           "averaged_gradients", "sync_shared", "shard", "BUCKET_BYTES", "DistributedError",
           "on_error", "set_on_error", "check_shapes_enabled", "set_check_shapes",
           "gpu_collectives", "set_gpu_collectives", "auto_bucket_bytes",
           "set_auto_bucket_bytes", "Collective", "Allreduce", "Broadcast",
           "Reduce", "Allgather", "ReduceScatter", "AllreduceBucket"]

safety.install()
autobucket.install()
views.install()      # (after autobucket: its buckets get views too)


def __getattr__(name):
    # ``comm`` follows ``set_comm`` (a plain global would be stale in
    # ``from tracegrad.distributed import comm`` users anyway; read it here).
    if name == "comm":
        return _current()
    raise AttributeError(f"module 'tracegrad.distributed' has no attribute {name!r}")
