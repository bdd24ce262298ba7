"""``FusedElemwise``: a fused cluster as one graph op.

Its node replaces the cluster's nodes in a graph; ``impl(xp, *inputs)`` runs
the blocked NumPy program (or, with CuPy arrays, the generated CUDA kernel),
so any scheduler runs it like any other op. ``run(xp, inputs, outs=...)``
additionally writes into given output buffers (a shared variable's buffer).
Gradients expand the cluster back into its elementwise nodes.
"""
import numpy as np

from tracegrad.fuse import cache
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op


class FusedElemwise(Op):
    """Several elementwise nodes computed in one pass (see ``FusionSpec``)."""

    __props__ = ("spec",)
    view_map = {}
    destroy_map = {}

    def __init__(self, spec, sources=None):
        self.spec = spec
        # Where user code built each fused node (for error messages only:
        # not part of the op's identity).
        self.sources = sources
        self._program = None

    @property
    def name(self):
        return self.spec.name

    def make_node(self, *inputs):
        spec = self.spec
        if len(inputs) != len(spec.in_types):
            raise TypeError(f"{self.name} takes {len(spec.in_types)} inputs, "
                            f"got {len(inputs)}")
        inputs = [as_tensor_variable(i) for i in inputs]
        for k, (var, (dtype, ndim)) in enumerate(zip(inputs, spec.in_types)):
            if var.type.dtype != dtype or var.type.ndim != ndim:
                raise TypeError(f"{self.name}: input {k} must be {dtype} with ndim "
                                f"{ndim}, got {var.type}")
        shapes = spec.output_shapes([v.type.shape for v in inputs])
        outputs = [TensorType(dt, shape)() for dt, shape in zip(spec.out_dtypes, shapes)]
        return Apply(self, inputs, outputs)

    def impl(self, xp, *arrays):
        if xp is np:
            program = self._program
            if program is None:
                program = self._program = cache.cpu_program(self.spec)
            fast = program.fast
            results = fast(*arrays) if fast is not None else None
            if results is None:
                results = program.run(arrays, None, self.sources)
        else:
            results = self.run(xp, arrays)
        return results[0] if len(results) == 1 else tuple(results)

    def run(self, xp, arrays, outs=None):
        """The outputs as a list; written into ``outs`` when given."""
        if xp is np:
            program = self._program
            if program is None:
                program = self._program = cache.cpu_program(self.spec)
            return program.run(arrays, outs, self.sources)
        from tracegrad.fuse.cuda import launch
        return launch(self.spec, arrays, xp, outs=outs, sources=self.sources)

    def vjp(self, node, output_grads):
        from tracegrad.grad.reverse import backpropagate
        outputs = self.spec.build(node.inputs)
        seeds = {}
        for out, g in zip(outputs, output_grads):
            if g is not None:
                seeds[out] = g
        grads = backpropagate(seeds, list(node.inputs))
        return [grads.get(i) for i in node.inputs]

    def __reduce__(self):
        return (FusedElemwise, (self.spec, self.sources))


def expand(node):
    """The unfused graph of a ``FusedElemwise`` node: its output variables
    rebuilt from elementwise ops over the node's inputs."""
    return node.op.spec.build(node.inputs)
