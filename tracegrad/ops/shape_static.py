"""Build-time shape machinery: shape vectors and what is known of them.

Shape arguments (``reshape``, ``zeros``, ``broadcast_to``...) travel as one
int64 vector input (``shape_vector``). What is known of them while building
the graph is read by ``static_entries``, which sees through ``shape(x)`` of a
statically shaped ``x`` and through small integer arithmetic on it
(``static_value``), so ``x.reshape((x.shape[0] * 2, -1))`` keeps static
lengths. Also the small helpers shared by the shape, alloc and index ops.
"""
import numpy as np

from tracegrad.evaluate import run_node
from tracegrad.ops.elemwise import Elemwise, cast, is_differentiable, match_gradient_dtype
from tracegrad.ops.reduce import normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable, constant
from tracegrad.trace import Apply, Constant, Op

__all__ = ["shape", "make_vector"]


def _axis(axis, ndim, opname):
    """One axis, negative allowed, as a non-negative int (AxisError if out of range)."""
    return normalize_axis(axis, ndim, opname)[0]


def _ints(vector):
    """A 1-d integer array (NumPy or CuPy) as a tuple of Python ints."""
    return tuple(int(v) for v in vector.tolist())


def _grad_for(x, g):
    """``g`` as the gradient of input ``x``: ``None`` where none flows, else in x's dtype."""
    if g is None or not is_differentiable(x):
        return None
    return match_gradient_dtype(g, x)


def _is_int(var):
    return var.dtype[0] in "iu"


def scatter_add(xp, out, index, values):
    """``out[index] += values`` with repeated indices accumulating (``np.add.at``)."""
    if hasattr(xp.add, "at"):
        xp.add.at(out, index, values)
    else:  # CuPy without ufunc.at
        import cupyx
        cupyx.scatter_add(out, index, values)


# ------------------------------------------------------------ static values
_FOLD_MAX_NODES = 32
_FOLD_MAX_SIZE = 64


def static_value(var):
    """``var``'s value (a NumPy array) when it is known while building the graph.

    Known are constants, outputs of ops that answer ``static_output(node)``
    from static types alone (``shape(x)`` of a fully shaped ``x``), and small
    computations on those by ops marked ``foldable`` (elementwise, indexing,
    ``MakeVector``...). Anything else gives ``None``; the walk is iterative and
    bounded, so asking is cheap.
    """
    values = {}
    stack = [(var, False)]
    budget = _FOLD_MAX_NODES
    while stack:
        v, ready = stack.pop()
        if v in values:
            continue
        if isinstance(v, Constant):
            values[v] = np.asarray(v.data)
            continue
        node = v.owner
        if ready:  # its inputs are known now
            arrays = [values[i] for i in node.inputs]
            if any(a.size > _FOLD_MAX_SIZE for a in arrays):
                return None
            try:
                values.update(zip(node.outputs, run_node(node, arrays)))
            except Exception:
                return None
            continue
        if node is None:
            return None
        hook = getattr(node.op, "static_output", None)
        known = hook(node) if hook is not None else None
        if known is not None:
            values.update(zip(node.outputs, known))
            continue
        if not (isinstance(node.op, Elemwise) or getattr(node.op, "foldable", False)):
            return None
        budget -= 1
        if budget < 0:
            return None
        stack.append((v, True))
        stack.extend((i, False) for i in node.inputs if i not in values)
    return values[var]


def static_int(var):
    """The value of the integer scalar ``var`` if known while building, else None."""
    value = static_value(var)
    return None if value is None else int(value)


def static_entries(vec, depth=8):
    """What is known of the entries of the 1-d ``vec``: a list with an int or
    ``None`` per entry, or ``None`` when its length is unknown.

    Ops that build shape vectors answer ``static_entries(node)`` (``shape``,
    ``MakeVector``, ``concatenate``, slicing), so partly known shapes stay
    partly known.
    """
    value = static_value(vec)
    if value is not None:
        return [int(v) for v in value]
    node = vec.owner
    hook = getattr(node.op, "static_entries", None) if node is not None else None
    if hook is not None and depth > 0:
        entries = hook(node, depth - 1)
        if entries is not None:
            return entries
    n = vec.type.shape[0]
    return None if n is None else [None] * n


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


def _check_shape_input(vec, ndim, fname):
    if vec.ndim != 1 or not _is_int(vec):
        raise TypeError(f"{fname}: the shape must be an integer vector, got {vec.type}")
    if vec.type.shape[0] not in (None, ndim):
        raise ValueError(f"{fname}: expected a shape of length {ndim}, got {vec.type}")
    return static_entries(vec) or [None] * ndim


def _check_runtime_length(shape, ndim, fname):
    if len(shape) != ndim:
        raise ValueError(f"{fname}: expected a shape of length {ndim}, got {shape}")


# ------------------------------------------------------------ shape
class Shape(Op):
    """The shape of ``x`` as an int64 vector."""

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim,))()])

    def impl(self, xp, x):
        return xp.asarray(x.shape, dtype="int64")

    def vjp(self, node, output_grads):
        return [None]

    def static_output(self, node):
        shape = node.inputs[0].type.shape
        return None if None in shape else [np.array(shape, dtype="int64")]

    def static_entries(self, node, depth):
        return list(node.inputs[0].type.shape)


_shape = Shape()


def shape(x):
    """``x``'s shape as a symbolic int64 vector (``x.shape``)."""
    return _shape(as_tensor_variable(x))


implements(np.shape)(shape)
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
