"""Lone elementwise nodes on the compiled CPU tier.

An elementwise node that joined no cluster (``T.exp(x)`` alone) runs its
NumPy ufunc. When the compiled tier is installed (``backend.numpy.NATIVE``) and can
run the node, its large calls (an operand of ``NATIVE_MIN_SIZE`` elements
or more) may go through the program of a one-node ``FusedElemwise``
instead: libmvec's vector math and the tier's threads, the same path as a
cluster's (background compile, NumPy's warnings, the NumPy program
meanwhile), where it measures faster than the bare ufunc (a ``TierChoice``
per size class: W4's ``(1024, 10) + (10,)`` bias took 85 us through the
program's short-row path, 24 us as ``np.add``). Small calls keep the bare
ufunc: a foreign call costs more than it saves there.
An in-place node (``destroy_map``) becomes the one-node
``InplaceFusedElemwise`` writing into the same input.
"""
import math
from time import perf_counter_ns

import numpy as np

from tracegrad.config import NATIVE_MIN_SIZE, config
from tracegrad.backend import numpy as numpy_backend
from tracegrad.fuse.cluster import Cluster, is_fusable
from tracegrad.fuse.op import FusedElemwise, InplaceFusedElemwise
from tracegrad.fuse.spec import spec_from_cluster
from tracegrad.ops.elemwise import Elemwise


def lone_runner(node, base):
    """``base`` (the node's own ``f(*arrays)``), wrapped to send large
    calls to the compiled tier when that can pay: ``base`` itself when the
    tier is not installed, cannot run the node, or the node's static shape
    is known to be small."""
    tier = numpy_backend.NATIVE[0]
    if tier is None or not isinstance(node.op, Elemwise) or not is_fusable(node, "cpu"):
        return base
    shape = node.outputs[0].type.shape
    if None not in shape and math.prod(shape) < NATIVE_MIN_SIZE:
        return base
    found = []   # [(f, picks) or None], made at the first large call
    choices = {}  # size.bit_length() -> TierChoice

    def large(*arrays):
        """A call with an operand of ``NATIVE_MIN_SIZE`` elements or more:
        the fused program or the bare ufunc, whichever its ``TierChoice``
        measures faster for calls of its size class."""
        if config.cpu_codegen != "numpy":
            if not found:
                found.append(_fused_runner(node, tier))
            if found[0] is not None:
                fn, picks = found[0]
                size = max(getattr(a, "size", 1) for a in arrays)
                key = size.bit_length()
                choice = choices.get(key)
                if choice is None:
                    choice = choices[key] = tier.TierChoice()
                fused = choice.threaded()
                start = perf_counter_ns()
                result = fn(*[arrays[p] for p in picks]) if fused else base(*arrays)
                choice.record(fused, (perf_counter_ns() - start) / size)
                return result
        return base(*arrays)
    return _size_switch(len(node.inputs), base, large)


def _size_switch(nin, small, large):
    """``f(*arrays)``: ``small`` unless an operand has ``NATIVE_MIN_SIZE``
    elements or more. Written out for one and two operands: this runs at
    every call of the node, beside a ufunc call of ~1 us."""
    ndarray = np.ndarray
    n = NATIVE_MIN_SIZE
    if nin == 1:
        def run(a):
            if type(a) is ndarray and a.size >= n:
                return large(a)
            return small(a)
    elif nin == 2:
        def run(a, b):
            if (type(a) is ndarray and a.size >= n) or (type(b) is ndarray and b.size >= n):
                return large(a, b)
            return small(a, b)
    else:
        def run(*arrays):
            for a in arrays:
                if type(a) is ndarray and a.size >= n:
                    return large(*arrays)
            return small(*arrays)
    return run


def _fused_runner(node, tier):
    """``(f, picks)``: the one-node fused op's runner and, per operand of
    its spec, the position in ``node.inputs`` it comes from (constants are
    part of the spec); ``None`` when the tier cannot run the spec."""
    spec, inputs, sources = spec_from_cluster(Cluster([node], None, list(node.outputs)))
    if not inputs or not tier.can_run(spec):
        return None
    picks = [node.inputs.index(v) for v in inputs]
    destroyed = [i for targets in node.op.destroy_map.values() for i in targets]
    if destroyed:
        op = InplaceFusedElemwise(spec, sources, inputs.index(node.inputs[destroyed[0]]))
    else:
        op = FusedElemwise(spec, sources)
    return op.impl_for(np), picks


def install():
    """Wrap the CPU schedule's steps of ``Elemwise`` ops with
    ``lone_runner`` (idempotent; ``compile`` calls it at import)."""
    from tracegrad.backend import CPU
    CPU.step_wrapper = lone_runner
    CPU.wrapped_ops = (Elemwise,)
