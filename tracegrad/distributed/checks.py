"""The run-time shape check of the collective ops (``set_check_shapes``).

MPI collectives given different counts on different ranks fail in MPI's
own ways (an error, a hang, corrupt values); the ops compare the ranks'
shapes first, but only when an op's shapes changed since it last verified
them (``start_check``), so fixed-shape training pays one message per op.
"""
import numpy as np
from mpi4py import MPI

from tracegrad.distributed.state import (CHECK_TIMEOUT_S, DistributedError,
                                         check_shapes_enabled, wait_or_abort)

__all__ = ["check_shapes", "start_check", "finish_check", "verified", "CHECKS_SENT"]


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
    if owner is not None and owner.__dict__.get("_checked") == tuple(shapes):
        return None
    mine = np.array([n for s in shapes for n in s], dtype=np.int64)
    if mine.size == 0:      # (0-d tensors only: nothing can differ)
        return None
    both = np.concatenate([mine, -mine])     # (max of both: equal iff all equal)
    out = np.empty_like(both)
    CHECKS_SENT[0] += 1
    return _check_comm(comm).Iallreduce(both, out, op=MPI.MAX), both, out


def verified(comm, shapes, owner):
    """``start_check(comm, shapes, owner)`` would send no message: ``owner``
    last verified this very tuple ``shapes`` (identity: a bucket's layout's),
    or there is nothing to check. Asked before a call that gathers and
    reduces at once (``Arena.gather_reduce``), which leaves no time for
    a check between them."""
    return (owner.__dict__.get("_checked") is shapes or comm.Get_size() == 1
            or not check_shapes_enabled())


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
            # (a tuple: the bucket passes its layout's, then compared by identity)
            owner.__dict__["_checked"] = tuple(shapes)
        return
    every = _check_comm(comm).allgather(shapes)     # (the error path only: pickled)
    listed = "; ".join(f"rank {r}: {', '.join(map(str, s))}" for r, s in enumerate(every))
    raise DistributedError(f"{what}: the ranks' shapes differ ({listed}); every rank "
                           "must pass arrays of the same shape")
