"""Bucketing as a compile pass: independent ``allreduce``s become buckets.

``allreduce_many`` buckets the tensors it is given. A program that writes
one ``allreduce(g, 'mean')`` per gradient (or whose gradient graph holds
several: the vjp of an ``allreduce`` is one) gets the same fusion from this
pass, which ``tg.function`` runs after the rewrites (``compile/pipeline.py``
``GRAPH_PASSES``; modes ``'fast_run'`` and ``'fast_math'``):

- Candidates: ``Allreduce`` nodes with ``op`` ``'sum'`` or ``'mean'`` of a
  numeric dtype, not built with ``bucketable=False`` (``allreduce_many(...,
  bucket_bytes=0)`` builds those, to keep one collective per tensor).
- Two candidates may share a bucket only when neither depends on the other
  (else the bucket would wait for its own output). Each node gets a
  *level*: the largest number of candidates on a path from the inputs to
  it. A candidate reading the output of another has a higher level than
  it, so candidates of one level are independent, and buckets made of
  lower levels never read a higher level's outputs: no cycle.
- Candidates of one level, communicator, ``op`` and dtype are bucketed in
  run order by ``training._buckets`` (at most ``auto_bucket_bytes()`` each;
  a size unknown from the static shapes counts as 0) into
  ``AllreduceBucket`` nodes; a bucket of one stays a plain ``allreduce``.

Values are unchanged (the same elements summed in the same rank order).
The pass is deterministic (the schedule's order), so every rank makes the
same graph and the graph-agreement check still holds.
"""
from tracegrad.compile.pipeline import GRAPH_PASSES
from tracegrad.distributed.ops import Allreduce, AllreduceBucket
from tracegrad.distributed.training import BUCKET_BYTES, _buckets, _nbytes

__all__ = ["auto_bucket_bytes", "set_auto_bucket_bytes", "bucket_pass", "install"]

_STATE = {"bytes": BUCKET_BYTES}


def auto_bucket_bytes():
    """The pass's bucket size in bytes (0: the pass is off)."""
    return _STATE["bytes"]


def set_auto_bucket_bytes(nbytes):
    """Buckets of at most ``nbytes`` for the compile pass (default
    ``BUCKET_BYTES``, 25 MiB); ``0`` turns the pass off."""
    if nbytes < 0:
        raise ValueError(f"set_auto_bucket_bytes: nbytes must be >= 0, got {nbytes}")
    _STATE["bytes"] = int(nbytes)


def _candidate(node):
    op = node.op
    return (isinstance(op, Allreduce) and op.bucketable and op.op in ("sum", "mean")
            and node.inputs[0].dtype[0] in "fciu")


def _groups(order):
    """Candidates by ``(level, communicator, op, dtype)``, in run order."""
    level = {}
    groups = {}
    for node in order:
        depth = max((level.get(v, 0) for v in node.inputs), default=0)
        if _candidate(node):
            key = (depth, node.op.comm_key, node.op.op, node.inputs[0].dtype)
            groups.setdefault(key, []).append(node)
            depth += 1
        for out in node.outputs:
            level[out] = depth
    return groups


def bucket_pass(fgraph, mode, device=None):
    """``GRAPH_PASSES`` entry: merge independent allreduces (module doc)."""
    limit = auto_bucket_bytes()
    if not limit or mode not in ("fast_run", "fast_math"):
        return
    for nodes in _groups(fgraph.toposort()).values():
        if len(nodes) < 2:
            continue
        xs = [n.inputs[0] for n in nodes]
        for bucket in _buckets(xs, [_nbytes(x) for x in xs], limit):
            if len(bucket) < 2:
                continue
            members = [nodes[k] for k in bucket]
            first = members[0].op
            outs = AllreduceBucket(first.op, first.comm)(*[m.inputs[0] for m in members])
            fgraph.replace_all([(m.outputs[0], o) for m, o in zip(members, outs)],
                               reason="distributed.autobucket")


def install():
    """Register ``bucket_pass`` with the compile pipeline (once)."""
    if bucket_pass not in GRAPH_PASSES:
        GRAPH_PASSES.append(bucket_pass)
