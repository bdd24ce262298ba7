"""No deadlocks: ranks agree on every graph, and a failing rank ends the job.

Two failure modes turn an MPI program into a silent hang; this module turns
each into an error message.

1. **Different graphs.** When a function whose schedule holds collectives is
   linked (``tg.function``; ``compile/runtime.py``'s ``RUN_HOOKS``), every
   rank hashes its schedule (each step's op and input types, in run order)
   and the ranks ``Allgather`` the 32-byte digests. If they differ, the
   ranks exchange the step lists and every rank raises ``DistributedError``
   naming the first step that differs and what each rank has there. (The
   ranks must compile their functions in the same order, as any SPMD
   program must; a rank compiling an extra function meets the others'
   next compile, whose digest differs, and the error names it.)

2. **A rank raising during a call.** The other ranks would wait in the
   next collective forever. With ``on_error() == 'abort'`` (the default,
   ``set_on_error``) a call of such a function that raises prints
   ``tracegrad.distributed: rank R of P raised ...`` with the traceback on
   stderr and calls ``MPI_Abort`` on ``MPI.COMM_WORLD``, which ends every
   rank (``mpiexec`` exits non-zero within a second or so). Errors raised
   on every rank together (``DistributedError``: shapes that differ) are
   re-raised instead, since no rank is left waiting. An exception nobody
   catches outside a call ends the job the same way (``sys.excepthook``,
   installed when there is more than one rank), as ``python -m mpi4py``
   does.

**Inner graphs** (a ``scan`` body, the branches of an ``ifelse``) are part
of the check: the schedule's steps are listed with, after each step that
has inner graphs, the steps of those graphs (recursively, labelled ``step
k of <graph> of step j``), so a rank whose scan body differs gets the error
at compile time, and a function whose collectives all sit inside a scan
body is checked and guarded like any other. (The body, compiled when the
loop first runs, checks itself again then: one more ``Allgather``, once.)

A rank that never reaches the check (its graph has no collective at all,
e.g. its scan body lacks the one the others have, or it compiles functions
in another order) would leave the others waiting: the check waits for the
digests at most ``GRAPH_CHECK_TIMEOUT_S`` seconds (environment variable
``TRACEGRAD_GRAPH_CHECK_TIMEOUT``, default 300), then prints which rank
waited and why that happens and calls ``MPI_Abort``.
"""
import hashlib
import os
import sys
import traceback

import numpy as np
from mpi4py import MPI

from tracegrad.compile.runtime import RUN_HOOKS
from tracegrad.distributed.ops import Collective
from tracegrad.distributed.state import DistributedError, hard_abort, on_error, wait_or_abort
from tracegrad.scan.body import InnerGraph
from tracegrad.trace import toposort

# Generous: ranks legitimately reach a compile at different times (one
# loads data longer); a deadlock would wait forever.
GRAPH_CHECK_TIMEOUT_S = float(os.environ.get("TRACEGRAD_GRAPH_CHECK_TIMEOUT", "300"))


def step_signature(node):
    """What must be equal on every rank for a step: the op and input types."""
    return f"{node.op}({', '.join(str(i.type) for i in node.inputs)})"


def _where(node):
    src = node.source
    return f" (built at {src.filename}:{src.lineno})" if src is not None else ""


def inner_graphs(op):
    """``(attribute name, InnerGraph)`` of ``op`` (a scan's body ``inner``,
    an ifelse's ``then_graph`` and ``else_graph``), in name order."""
    return sorted(((k, v) for k, v in vars(op).items() if isinstance(v, InnerGraph)),
                  key=lambda item: item[0])


def flat_steps(nodes):
    """``(label, node)`` for ``nodes`` (in run order) and, after each node
    with inner graphs, for those graphs' nodes (nested ones too; an explicit
    stack, no recursion)."""
    out = []
    stack = [(iter(enumerate(nodes)), "")]
    while stack:
        steps, within = stack[-1]
        item = next(steps, None)
        if item is None:
            stack.pop()
            continue
        k, node = item
        label = f"step {k}{within}"
        out.append((label, node))
        for name, graph in reversed(inner_graphs(node.op)):   # (the first on top)
            inner = toposort(list(graph.outputs), blockers=list(graph.inputs))
            stack.append((iter(enumerate(inner)), f" of {name} of {label}"))
    return out


def _gather_digests(comm, digest):
    """Every rank's digest (``Iallgather``), waiting at most
    ``GRAPH_CHECK_TIMEOUT_S`` (then the job is aborted: module doc)."""
    every = np.empty((comm.Get_size(), digest.size), np.uint8)
    wait_or_abort(comm.Iallgather(digest, every), GRAPH_CHECK_TIMEOUT_S, lambda: (
        f"tracegrad.distributed: rank {comm.Get_rank()} of {comm.Get_size()} waited "
        f"{GRAPH_CHECK_TIMEOUT_S:g} s for the other ranks at the compile-time graph check of "
        "a function with collectives; a rank that never gets there compiled this function "
        "without any collective (e.g. its scan body or ifelse branch lacks the collective "
        "the others have), compiles functions in another order, or is stuck. Calling "
        "MPI_Abort (TRACEGRAD_GRAPH_CHECK_TIMEOUT sets the wait)\n"))
    return every


def check_same_graph(comm, nodes):
    """Raise ``DistributedError`` on every rank of ``comm`` unless all ranks
    hold the same ``nodes`` (the schedule, in run order), inner graphs
    included (``flat_steps``)."""
    if comm.Get_size() == 1:
        return
    steps = flat_steps(nodes)
    sigs = [f"{label}: {step_signature(node)}" for label, node in steps]
    digest = np.frombuffer(hashlib.sha256("\n".join(sigs).encode()).digest(), np.uint8)
    every = _gather_digests(comm, digest)
    if (every == digest).all():
        return
    lists = comm.allgather(sigs)    # (the error path only: pickled)
    first = next((k for k in range(max(map(len, lists)))
                  if len({ls[k] if k < len(ls) else "<end of graph>" for ls in lists}) > 1))
    mine = _where(steps[first][1]) if first < len(steps) else ""
    per_rank = "; ".join(
        f"rank {r}: {ls[first] if first < len(ls) else '<end of graph>'}"
        for r, ls in enumerate(lists))
    label = next(ls[first].split(": ", 1)[0] for ls in lists if first < len(ls))
    raise DistributedError(
        f"tracegrad.distributed: the ranks compiled different graphs for a function with "
        f"collectives (running it would deadlock). First difference at {label}: "
        f"{per_rank}. This rank's step{mine}")


def _abort(exc):
    comm = MPI.COMM_WORLD
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(
        f"{text}tracegrad.distributed: rank {comm.Get_rank()} of {comm.Get_size()} raised "
        f"{type(exc).__name__}: {exc}\n  during a call of a function with collectives; "
        "calling MPI_Abort so that the other ranks do not wait for it forever "
        "(tracegrad.distributed.set_on_error('raise') to handle it yourself)\n")
    sys.stderr.flush()
    hard_abort(comm)


def guard(run):
    """``run`` aborting the job (``MPI_Abort``) when it raises on this rank
    alone (see the module doc)."""
    def guarded(args):
        try:
            return run(args)
        except DistributedError:
            raise
        except BaseException as exc:
            if on_error() == "abort":
                _abort(exc)
            raise
    return guarded


def link_hook(schedule, run):
    """``RUN_HOOKS`` entry: check agreement on every communicator the
    schedule's collectives use, and guard the call when there are peers."""
    nodes = [step.node for step in schedule.steps]
    comms = {}
    for _, node in flat_steps(nodes):
        if isinstance(node.op, Collective):
            comms.setdefault(node.op.comm_key, node.op.comm)
    if not comms:
        return run
    for comm in comms.values():
        check_same_graph(comm, nodes)
    if any(c.Get_size() > 1 for c in comms.values()):
        return guard(run)
    return run


def _excepthook(kind, value, tb):
    _previous_hook(kind, value, tb)
    comm = MPI.COMM_WORLD
    sys.stderr.write(f"tracegrad.distributed: rank {comm.Get_rank()} of {comm.Get_size()} "
                     f"ended with an uncaught {kind.__name__}; calling MPI_Abort\n")
    sys.stderr.flush()
    hard_abort(comm)


_previous_hook = sys.excepthook


def install():
    """Add ``link_hook`` to the runtime and, with more than one rank, the
    aborting ``sys.excepthook`` (both once)."""
    global _previous_hook
    if link_hook not in RUN_HOOKS:
        RUN_HOOKS.append(link_hook)
    if MPI.COMM_WORLD.Get_size() > 1 and sys.excepthook is not _excepthook:
        _previous_hook = sys.excepthook
        sys.excepthook = _excepthook
