"""The communicator the collectives use, and the error policy.

Kept apart from ``__init__`` so the ops, the safety checks and the training
helpers all read one place. ``comm`` is ``MPI.COMM_WORLD`` until
``set_comm`` replaces it; an op captures the communicator current when it is
built (``allreduce(x)`` records ``current()`` in the op), so swapping it
later changes new graphs, never compiled functions.
"""
import os
import sys
import time

from mpi4py import MPI

_STATE = {"comm": MPI.COMM_WORLD, "on_error": "abort", "check_shapes": True, "gpu": "auto"}
ON_ERROR = ("abort", "raise")
GPU_COLLECTIVES = ("auto", "nccl", "mpi", "host")


class DistributedError(RuntimeError):
    """Raised on every rank at once (ranks disagree on a graph or a shape):
    no rank is left waiting, so a call raising it does not abort the job."""


def current():
    """The communicator new collectives use."""
    return _STATE["comm"]


def set_comm(comm):
    """Use ``comm`` (an ``mpi4py`` intra-communicator, e.g. from
    ``MPI.COMM_WORLD.Split``) for collectives built from now on."""
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"set_comm: expected an mpi4py intra-communicator "
                        f"(MPI.COMM_WORLD or one split from it), got {type(comm).__name__}")
    _STATE["comm"] = comm


def rank():
    """This process's rank in ``comm`` (0 in a single process)."""
    return _STATE["comm"].Get_rank()


def size():
    """The number of processes in ``comm`` (1 in a single process)."""
    return _STATE["comm"].Get_size()


def on_error():
    """What a rank does when a call with collectives raises: ``'abort'``."""
    return _STATE["on_error"]


def set_on_error(policy):
    """``'abort'`` (default): a rank whose call of a function with
    collectives raises prints its rank and exception and calls
    ``MPI_Abort``, ending every rank (the others would otherwise wait in a
    collective forever). ``'raise'``: the exception propagates as usual and
    the caller is responsible for the other ranks."""
    if policy not in ON_ERROR:
        raise ValueError(f"set_on_error: policy must be one of {ON_ERROR}, got {policy!r}")
    _STATE["on_error"] = policy


def check_shapes_enabled():
    """Whether collectives compare the ranks' shapes before each call."""
    return _STATE["check_shapes"]


def set_check_shapes(enabled):
    """``True`` (default): when a collective's input shapes differ from
    those it last verified, the ranks compare them (one small message), so
    that different shapes raise ``DistributedError`` on every rank, or end
    the job with the reason (``checks.start_check``); ``False``: never, at the
    price of MPI's behaviour on mismatched counts (an error, a hang or
    corrupt values). Static shapes are compared anyway, at compile time,
    with the graph."""
    _STATE["check_shapes"] = bool(enabled)


def gpu_collectives():
    """How collectives move CuPy arrays: ``'auto'``, ``'nccl'``, ``'mpi'`` or ``'host'``."""
    return _STATE["gpu"]


def set_gpu_collectives(mode):
    """``'auto'`` (default): collectives on CuPy arrays (``device='cuda'``)
    run through NCCL (``cupy.cuda.nccl``, ``distributed/nccl.py``) when it is
    available, else through a CUDA-aware MPI when the library is one
    (``distributed/cudampi.py``: ``MPI.Query_cuda_support()`` or
    ``TRACEGRAD_CUDA_AWARE_MPI=1``), else through the host; ``'nccl'`` /
    ``'mpi'``: that one or an error; ``'host'``: copy to the host and use
    mpi4py (any MPI). Dtypes the chosen one cannot reduce take the host
    path in every mode."""
    if mode not in GPU_COLLECTIVES:
        raise ValueError(f"set_gpu_collectives: mode must be one of {GPU_COLLECTIVES}, "
                         f"got {mode!r}")
    _STATE["gpu"] = mode


# Seconds the aborting rank waits after writing its message: mpiexec
# forwards a rank's stderr through a pipe, and MPI_Abort kills the job,
# pipes included, at once; without the wait the message was lost in about
# one run in ten (seen in the test suite). Not tuned further.
ABORT_GRACE_S = 0.3


def hard_abort(comm):
    """Flush stderr, wait ``ABORT_GRACE_S``, ``MPI_Abort`` the job; never returns."""
    try:
        os.fsync(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    time.sleep(ABORT_GRACE_S)
    comm.Abort(1)
    # (MPICH's MPI_Abort may return once it has told mpiexec; never go on)
    os._exit(1)


# ``MPI_Test`` calls before ``wait_or_abort`` starts sleeping between them.
SPIN_TESTS = 1000

# Seconds a rank waits for the others' shapes when its own changed
# (``checks.finish_check``); environment variable ``TRACEGRAD_CHECK_TIMEOUT``.
CHECK_TIMEOUT_S = float(os.environ.get("TRACEGRAD_CHECK_TIMEOUT", "300"))


def wait_or_abort(request, timeout, message):
    """Wait for the MPI ``request`` at most ``timeout`` seconds; past that,
    write ``message()`` on stderr and abort the job (a collective cannot
    be cancelled, so there is no way back)."""
    for _ in range(SPIN_TESTS):     # (the usual case: the others are there)
        if request.Test():
            return
    deadline = time.monotonic() + timeout
    pause = 1e-5
    while not request.Test():
        if time.monotonic() > deadline:
            sys.stderr.write(message())
            sys.stderr.flush()
            hard_abort(MPI.COMM_WORLD)
        time.sleep(pause)
        pause = min(2 * pause, 0.01)
