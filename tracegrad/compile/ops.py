"""Theano's ``theano.compile.ops.as_op``: a Python function on NumPy
arrays used as an op.

    @as_op(itypes=[T.dmatrix, T.dmatrix], otypes=[T.dmatrix])
    def numpy_dot(a, b):
        return numpy.dot(a, b)

    y = numpy_dot(x1, x2)          # a graph node; runs numpy.dot when called

The op checks its inputs' dtypes and ndims against ``itypes``; its outputs
have the ``otypes`` (the function's results are cast to them). It runs on
the host (device arrays are copied) and has no gradient, as in Theano.
``infer_shape`` is accepted: output shapes come from ``otypes``.
"""
import importlib
import pickle

import numpy as np

from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["as_op", "FromFunctionOp", "load_back"]


class FromFunctionOp(Op):
    """The op ``as_op`` makes of ``fn`` (see the module doc)."""

    __props__ = ("fn", "itypes", "otypes")

    def __init__(self, fn, itypes, otypes, infer_shape=None):
        self.fn = fn
        self.itypes = tuple(itypes)
        self.otypes = tuple(otypes)
        self.infer_shape = infer_shape

    @property
    def name(self):
        return getattr(self.fn, "__name__", "FromFunctionOp")

    def make_node(self, *inputs):
        if len(inputs) != len(self.itypes):
            raise TypeError(f"{self.name} takes {len(self.itypes)} inputs, got {len(inputs)}")
        inputs = [as_tensor_variable(v) for v in inputs]
        for k, (var, itype) in enumerate(zip(inputs, self.itypes)):
            if var.type.dtype != itype.dtype or var.type.ndim != itype.ndim:
                raise TypeError(f"{self.name}: input {k} has type {var.type}, expected "
                                f"{itype} (as_op's itypes)")
        return Apply(self, inputs, [otype() for otype in self.otypes])

    def __reduce__(self):
        # As Theano's: the decorated name is the op, not the function, so the
        # op pickles by that module-level name.
        module, qualname = getattr(self.fn, "__module__", None), self.fn.__qualname__
        if module is None or load_back(module, qualname) is not self:
            raise pickle.PicklingError(
                f"as_op op {self.name} can be pickled only when it is the module-level "
                f"name {qualname} of its module (a decorated top-level function)")
        return (load_back, (module, qualname))

    def perform(self, node, inputs, output_storage):
        results = self.fn(*inputs)
        if len(self.otypes) == 1:
            results = [results]
        if len(results) != len(self.otypes):
            raise ValueError(f"{self.name} returned {len(results)} values for "
                             f"{len(self.otypes)} otypes")
        for cell, value, otype in zip(output_storage, results, self.otypes):
            cell[0] = np.asarray(value, dtype=otype.dtype)


def load_back(module, qualname):
    """The object named ``qualname`` in ``module`` (how ``as_op`` ops unpickle)."""
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def as_op(itypes, otypes, infer_shape=None):
    """Decorator: ``fn`` (NumPy arrays in, arrays out) as an op with input
    types ``itypes`` and output types ``otypes`` (lists of ``TensorType``,
    e.g. ``[T.dmatrix]``)."""
    itypes = list(itypes) if isinstance(itypes, (list, tuple)) else [itypes]
    otypes = list(otypes) if isinstance(otypes, (list, tuple)) else [otypes]
    for t in itypes + otypes:
        if not hasattr(t, "dtype") or not hasattr(t, "ndim") or not callable(t):
            raise TypeError(f"as_op: itypes and otypes must be tensor types such as "
                            f"T.dmatrix, got {t!r}")

    def decorator(fn):
        return FromFunctionOp(fn, itypes, otypes, infer_shape)
    return decorator
