"""Build-time shape machinery: shape vectors and what is known of them.

Shape arguments (``reshape``, ``zeros``, ``broadcast_to``...) travel as one
int64 vector input (``shape_vector``). What is known of them while building
the graph is read by ``static_entries``, which sees through ``shape(x)`` of a
statically shaped ``x`` and through small integer arithmetic on it
(``static_value``), so ``x.reshape((x.shape[0] * 2, -1))`` keeps static
lengths. Also the small helpers shared by the shape, alloc and index ops.
"""
import numpy as np

# ``Shape``, ``_grad_for`` (``ops.base``) and the build-time knowledge of
# values (``ops.static``) sit below every op module; re-exported here.
from tracegrad.ops import batching
from tracegrad.ops.base import Shape, _grad_for, _shape, cast, shape  # noqa: F401
from tracegrad.ops.static import (_FOLD_MAX_NODES, _FOLD_MAX_SIZE, _axis,  # noqa: F401
                                  _check_runtime_length, _check_shape_input, _ints,
                                  _is_int, static_entries, static_int, static_value)
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable, constant
from tracegrad.trace import Apply, Op

__all__ = ["shape", "make_vector"]


def scatter_add(xp, out, index, values):
    """``out[index] += values`` with repeated indices accumulating (``np.add.at``)."""
    if hasattr(xp.add, "at"):
        xp.add.at(out, index, values)
    else:  # CuPy without ufunc.at
        import cupyx
        cupyx.scatter_add(out, index, values)


# ------------------------------------------------------------ shape vectors
def _shape_entry(s, fname):
    if isinstance(s, (bool, np.bool_)):
        raise TypeError(f"{fname}: shape entries must be integers, got {s!r}")
    if isinstance(s, (int, np.integer)):
        return int(s)
    v = as_tensor_variable(s)
    if v.ndim != 0 or not _is_int(v):
        raise TypeError(f"{fname}: shape entries must be integers or integer scalars, "
                        f"got {v} of type {v.type}")
    known = static_value(v)
    return int(known) if known is not None else cast(v, "int64")


def shape_vector(shape, fname="reshape"):
    """``shape`` (an int, a sequence of ints and integer scalars, or an integer
    vector) as an int64 vector variable."""
    if isinstance(shape, (list, tuple)):
        entries = [_shape_entry(s, fname) for s in shape]
        if all(isinstance(e, int) for e in entries):
            return constant(np.array(entries, dtype="int64"))
        return make_vector(*entries, dtype="int64")
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        return shape_vector([shape], fname)
    vec = as_tensor_variable(shape)
    if vec.ndim == 0:
        return shape_vector([vec], fname)
    if vec.ndim != 1 or not _is_int(vec):
        raise TypeError(f"{fname}: a shape must be an int, a sequence of ints or an "
                        f"integer vector, got {vec} of type {vec.type}")
    return cast(vec, "int64")


def _vector_length(vec, ndim, fname):
    n = vec.type.shape[0]
    if n is None and ndim is None:
        raise TypeError(f"{fname}: the length of the shape vector {vec} is not known "
                        "while building the graph; pass ndim=")
    if n is not None and ndim is not None and n != ndim:
        raise ValueError(f"{fname}: ndim={ndim} but the shape vector has length {n}")
    return int(n if n is not None else ndim)


# ------------------------------------------------------------ shape
# np.shape(x) is x.shape: a tuple (ints where known), as NumPy's; T.shape(x)
# stays Theano's int64 vector.
implements(np.shape)(lambda a: as_tensor_variable(a).shape)
implements(np.ndim)(lambda a: as_tensor_variable(a).ndim)


class MakeVector(Op):
    """A vector of ``dtype`` from 0-d inputs (``stack`` of scalars)."""

    __props__ = ("dtype",)
    foldable = True

    def __init__(self, dtype):
        self.dtype = dtype

    def make_node(self, *scalars):
        scalars = [as_tensor_variable(s) for s in scalars]
        for s in scalars:
            if s.ndim != 0 or s.dtype != self.dtype:
                raise TypeError(f"MakeVector({self.dtype}): got {s.type}")
        return Apply(self, scalars, [TensorType(self.dtype, (len(scalars),))()])

    def impl(self, xp, *scalars):
        if not scalars:
            return xp.zeros((0,), dtype=self.dtype)
        return xp.stack(scalars)

    def vmap_rule(self, node, inputs, batch_axes):
        """Each example's scalars side by side: a (batch, n) matrix."""
        args, _ = batching.front_all(inputs, batch_axes)
        return [batching.stack_columns(args)], [0]

    def vjp(self, node, output_grads):
        g = output_grads[0]
        return [_grad_for(s, g[i]) for i, s in enumerate(node.inputs)]

    def static_entries(self, node, depth):
        return [static_int(s) for s in node.inputs]


def make_vector(*values, dtype=None):
    """A vector from scalars (ints, symbolic scalars); dtype as ``np.stack``'s."""
    values = [as_tensor_variable(v) for v in values]
    for v in values:
        if v.ndim != 0:
            raise TypeError(f"make_vector: expected scalars, got {v.type}")
    if dtype is None:
        dtype = np.result_type(*[v.dtype for v in values]).name if values else "int64"
    dtype = canonical_dtype(dtype)
    return MakeVector(dtype)(*[cast(v, dtype) for v in values])
