"""Fused kernels that write updates straight into shared buffers: the call
side of the ``out=`` targets that the compile stage ``compile/targets.py``
decided (``Schedule.deferred``).

Each call, after every other step has run and before anything is written
(``prepare_deferred``): a deferred node whose buffers do not fit this call
(``set_value`` changed a shape, broadcasting needs a bigger buffer, an input
overlaps a target), or that the backend cannot run into the buffers without
risking a half-written update (``Backend.direct_updates_ok``), runs the
ordinary way instead and its update is written like any other; an error it
raises leaves every shared variable unchanged. Then the remaining update
values are snapshotted as usual, and only then the deferred kernels write
into their buffers (``launch_deferred``), before the other updates are
written: all-or-nothing and "updates read the values from before the call"
both hold.
"""
import numpy as np

from tracegrad.evaluate import reraise_with_context


class Deferred:
    """A fused node whose kernel writes into shared buffers."""

    __slots__ = ("node", "op", "step", "plans", "containers", "ins", "dtypes",
                 "out_deps", "const_shapes")

    def __init__(self, node, step, plans):
        self.node = node
        self.op = node.op
        self.step = step
        self.plans = plans
        self.containers = [plan.container for plan in plans]
        self.ins = step.ins
        self.dtypes = [np.dtype(o.type.dtype) for o in node.outputs]
        spec = node.op.spec
        self.out_deps = spec.output_deps
        self.const_shapes = [c.shape for c in spec.constants if c.ndim]

    def fits(self, arrays, buffers, ndarray, may_share):
        """Whether the buffers can take this call's outputs directly."""
        for b, dt in zip(buffers, self.dtypes):
            if (type(b) is not ndarray or b.dtype != dt
                    or not getattr(b.flags, "writeable", True)):
                return False
        try:
            shape = np.broadcast_shapes(*[a.shape for a in arrays], *self.const_shapes)
            for deps in self.out_deps:
                if deps is not None and np.broadcast_shapes(
                        *[arrays[k].shape for k in deps[0]], *deps[1]) != shape:
                    return False
        except ValueError:
            return False  # the ordinary run raises the error, naming the node
        for k, b in enumerate(buffers):
            if b.shape != shape:
                return False
            for other in buffers[k + 1:]:
                if other is b or may_share(other, b):
                    return False
            for a in arrays:
                if a is not b and may_share(a, b):
                    return False
        return True


def prepare_deferred(s, deferred, plans, ndarray, may_share):
    """Before any write: the deferred kernels that will write into their
    buffers (``[(deferred, arrays, buffers)]``) and the update plans, with
    those of the deferred nodes that had to run the ordinary way added."""
    ready = []
    extra = []
    for d in deferred:
        arrays = [s[i] for i in d.ins]
        buffers = [c.value for c in d.containers]
        if d.fits(arrays, buffers, ndarray, may_share):
            ready.append((d, arrays, buffers))
        else:
            d.step.run(s)
            extra.extend(d.plans)
    return ready, (plans + extra if extra else plans)


def launch_deferred(ready, xp):
    """Run the deferred kernels into the shared buffers."""
    for d, arrays, buffers in ready:
        try:
            d.op.run(xp, arrays, outs=buffers)
        except Exception as exc:
            reraise_with_context(d.node, arrays, exc)
