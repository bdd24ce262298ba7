"""Gradient as bucket view: the producers of a bucket's tensors write
straight into the bucket's flat buffer (PyTorch DDP's
``gradient_as_bucket_view``), so the bucket reduces that buffer in place
with no pack copy, and its outputs are views of it (no unpack copy).

A compile pass (``GRAPH_PASSES``, after ``autobucket``'s; host functions
in modes ``'fast_run'`` and ``'fast_math'``) looks at every
``AllreduceBucket`` and ``IallreduceStart`` (``overlap=True``) node of two
or more tensors. A tensor becomes a view of
the bucket's ``Arena`` when:

- its producer's op declares ``impl_into`` (``trace.Op``: write the one
  result into a given ``out``; ``TensorDot`` as ``dot``, ``SumTo``, float
  ``Reduce('sum')``, which make the weight and bias gradients of dense
  layers), and has one output;
- the bucket is its only reader, and it is no output of the function (the
  bucket overwrites it with the reduced value).

Such a producer is wrapped in ``IntoBucket(op, arena, k)``: at run time it
asks the arena for slot ``k``'s view and calls ``op.impl_into`` on it; when
there is no view yet (the first call: the layout comes from the shapes the
bucket packed) or it does not fit (``impl_into`` returns ``None``: another
shape), it runs ``op.impl`` as before. The bucket uses its tensors in place
only if every one is the view the arena handed out in this call
(``Arena.holds``); otherwise it packs them, so a fallback costs one copy,
never a wrong value. The arena's buffer is reused only while nothing but
the arena holds it or a view (reference counts): a result the caller keeps
is never written over, and shared variables are written only after the
whole call succeeded, as before (the buffer is private to the call).

Every rank makes the same graph (the pass is deterministic), and the
layout depends only on the shapes, which the ranks check agree.
"""
import itertools
from functools import partial

import numpy as np

from tracegrad.compile.pipeline import GRAPH_PASSES
from tracegrad.distributed.buffers import wire_dtype
from tracegrad.distributed.ops import AllreduceBucket
from tracegrad.distributed.overlap import IallreduceStart
from tracegrad.trace import Apply, Op

__all__ = ["IntoBucket", "bucket_view_pass", "install", "set_bucket_views"]

_KEYS = itertools.count()
_STATE = {"on": True}


def set_bucket_views(enabled):
    """``True`` (default): the pass below runs; ``False``: bucketed tensors
    are packed (for comparisons)."""
    _STATE["on"] = bool(enabled)


class IntoBucket(Op):
    """``op``'s result written into slot ``k`` of a bucket's ``Arena``
    (``op.impl`` where the slot has no fitting view: module doc)."""

    __props__ = ("op", "k", "key")
    constant_foldable = False   # (writes into the arena)
    arity = None                # (pickled before it was kept: the general closure)

    def __init__(self, op, arena, k, arity=None):
        self.op = op
        self.arena = arena
        self.k = int(k)
        self.arity = arity      # (the number of inputs, when known: ``impl_for``)
        self.key = next(_KEYS)  # (one per wrapped node: never merged)
        # (``op.impl``, the fallback, may return a view of an input, as
        # ``SumTo`` does: the in-place planner must know it)
        self.view_map = dict(op.view_map)

    def __str__(self):
        return f"{self.op}->bucket[{self.k}]"

    def make_node(self, *inputs):
        node = self.op.make_node(*inputs)
        return Apply(self, node.inputs, [o.type() for o in node.outputs])

    def impl(self, xp, *arrays):
        if xp is np:
            out = self.arena.view_for(self.k)
            if out is not None:
                got = self.op.impl_into(np, out, *arrays)
                if got is not None:
                    return got
        return self.op.impl(xp, *arrays)

    def impl_for(self, xp):
        """``impl`` as one closure (the schedule calls it 64 times for a
        bucket of 64 tensors): a slot not yet handed out in this call is
        taken without ``view_for``; the op's ``into_for`` writer where it
        has one (else ``impl_into``); one argument passed as such, not as
        ``*arrays`` (most producers of gradients are sums of one array)."""
        if xp is not np:
            return partial(self.op.impl, xp)
        arena, k, impl = self.arena, self.k, partial(self.op.impl, np)
        into_for = self.op.into_for
        write = into_for(np) if into_for is not None else None
        if write is None:
            write = partial(self.op.impl_into, np)

        def run(*arrays):
            handed = arena.handed
            if arena.flat is not None and not handed[k]:
                handed[k] = True
                out = arena.views[k]
            else:
                out = arena.view_for(k)
            if out is not None:
                got = write(out, *arrays)
                if got is not None:
                    return got
            return impl(*arrays)

        def run_one(x):     # (run for one input, without the tuple)
            handed = arena.handed
            if arena.flat is not None and not handed[k]:
                handed[k] = True
                out = arena.views[k]
            else:
                out = arena.view_for(k)
            if out is not None:
                got = write(out, x)
                if got is not None:
                    return got
            return impl(x)
        return run_one if self.arity == 1 else run

    def vjp(self, node, output_grads):
        return self.op.vjp(node, output_grads)


def _into(fgraph, node, k, x):
    """Whether input ``k`` (``x``) of the bucket ``node`` may be a view."""
    producer = x.owner
    return (producer is not None and producer.op.impl_into is not None
            and not producer.op.destroy_map
            and not isinstance(producer.op, IntoBucket) and len(producer.outputs) == 1
            and list(fgraph.clients.get(x, ())) == [(node, k)])


def bucket_view_pass(fgraph, mode, device=None):
    """``GRAPH_PASSES`` entry: wrap the producers of bucketed tensors (module doc)."""
    if not _STATE["on"] or mode not in ("fast_run", "fast_math") \
            or str(device).startswith("cuda"):
        return      # (device arrays: NCCL's bucket packs on the device)
    for node in fgraph.toposort():
        op = node.op
        if not isinstance(op, (AllreduceBucket, IallreduceStart)) or len(node.inputs) < 2:
            continue
        dtype = np.dtype(node.inputs[0].dtype)
        if wire_dtype(dtype) != dtype:
            continue
        for k, x in enumerate(node.inputs):
            if _into(fgraph, node, k, x):
                new = IntoBucket(x.owner.op, op.arena, k, len(x.owner.inputs))(
                    *x.owner.inputs)
                fgraph.replace(x, new, reason="distributed.bucket_view")


def install():
    """Register ``bucket_view_pass`` with the compile pipeline (once)."""
    if bucket_view_pass not in GRAPH_PASSES:
        GRAPH_PASSES.append(bucket_view_pass)
