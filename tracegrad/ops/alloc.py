"""Array constructors: ``broadcast_to``, ``alloc`` and its ``zeros``/``ones``
family, ``arange`` and ``eye``.

Shapes travel as an int64 vector input (``shape_vector``); what is known of
them while building the graph gives the static output shape.
"""
import math

import numpy as np

# ``BroadcastTo`` is ``SumTo``'s vjp (and the reverse): both live in ``ops.base``.
from tracegrad.ops.base import BroadcastTo, _broadcast_target, _ToShape  # noqa: F401
from tracegrad.ops.shape_static import (_check_runtime_length, _ints, _is_int,
                                        _vector_length, shape, shape_vector, static_int,
                                        static_value)
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable, constant, resolve_weak
from tracegrad.trace import Apply, Constant, Op

__all__ = ["broadcast_to", "alloc", "fill", "zeros_like", "ones_like", "zeros", "ones",
           "arange", "eye"]


# ------------------------------------------------------------ broadcast / alloc
def broadcast_to(x, shape):
    """``np.broadcast_to``; ``shape`` may be symbolic (e.g. ``T.shape(y)``)."""
    x = as_tensor_variable(x)
    vec = shape_vector(shape, "broadcast_to")
    return BroadcastTo(_vector_length(vec, None, "broadcast_to"))(x, vec)


@implements(np.broadcast_to)
def _np_broadcast_to(array, shape, subok=False):
    return broadcast_to(array, shape)


class Alloc(_ToShape):
    """A new array of shape ``shape`` filled with ``value`` (broadcast)."""

    fname = "alloc"

    def impl(self, xp, value, shp):
        shp = _ints(shp)
        _check_runtime_length(shp, self.ndim, "alloc")
        out = xp.empty(shp, dtype=value.dtype)
        out[...] = value
        return out


def _alloc(value, shp):
    vec = shape_vector(shp, "alloc")
    return Alloc(_vector_length(vec, None, "alloc"))(value, vec)


def alloc(value, *shape):
    """Theano's alloc: ``value`` broadcast to a new array of ``shape``
    (ints and integer scalars). A Python float becomes ``floatX``."""
    value = as_tensor_variable(value)
    if getattr(value, "weak", False):
        dtype = canonical_dtype("floatX") if value.dtype[0] == "f" else value.dtype
        value = constant(value.data, dtype=dtype)
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return _alloc(value, list(shape))


def fill(model, value):
    """Theano's fill: an array shaped like ``model`` filled with ``value``
    (a Python number takes ``model``'s dtype where NumPy's rules allow)."""
    model = as_tensor_variable(model)
    value = resolve_weak([model, as_tensor_variable(value)])[1]
    return _alloc(value, shape(model))


def _full_like(x, fill_value, dtype):
    x = as_tensor_variable(x)
    dtype = x.dtype if dtype is None else canonical_dtype(dtype)
    return _alloc(constant(np.array(fill_value, dtype=dtype)), shape(x))


def is_zeros_alloc(x):
    """Whether ``x`` is ``alloc(c, ...)`` of a constant number ``c`` equal to
    zero (``zeros_like``; NaN and bool fills are not numbers equal to 0)."""
    owner = x.owner
    if owner is None or not isinstance(owner.op, Alloc):
        return False
    fill = owner.inputs[0]
    if not isinstance(fill, Constant):
        return False
    data = np.asarray(fill.data)
    return data.size >= 1 and data.dtype.kind in "iufc" and not data.any()


def zeros_like(x, dtype=None):
    """Zeros with ``x``'s shape and (by default) dtype."""
    return _full_like(x, 0, dtype)


def ones_like(x, dtype=None):
    """Ones with ``x``'s shape and (by default) dtype."""
    return _full_like(x, 1, dtype)


def zeros(shape, dtype=None):
    """Zeros of ``shape`` (ints, integer scalars or a vector); dtype floatX by default."""
    return _alloc(constant(np.zeros((), dtype=canonical_dtype(dtype))), shape)


def ones(shape, dtype=None):
    """Ones of ``shape``; dtype floatX by default."""
    return _alloc(constant(np.ones((), dtype=canonical_dtype(dtype))), shape)


def _np_full_like(fill_value):
    def like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
        a = as_tensor_variable(a)
        if shape is None:
            return _full_like(a, fill_value, dtype)
        dtype = a.dtype if dtype is None else dtype
        return (zeros if fill_value == 0 else ones)(shape, dtype)
    return like


implements(np.zeros_like)(_np_full_like(0))
implements(np.ones_like)(_np_full_like(1))


# ------------------------------------------------------------ arange / eye
def _scalar_input(v, fname):
    v = as_tensor_variable(v)
    if v.ndim != 0:
        raise TypeError(f"{fname}: expected a scalar, got {v.type}")
    return v


class ARange(Op):
    """``np.arange(start, stop, step, dtype)`` for scalar inputs."""

    __props__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    def make_node(self, start, stop, step):
        inputs = [_scalar_input(v, "arange") for v in (start, stop, step)]
        values = [static_value(v) for v in inputs]
        length = None
        if all(v is not None for v in values):
            a, b, c = (v.item() for v in values)
            if c == 0:
                raise ValueError("arange: step must not be zero")
            if all(isinstance(v, int) for v in (a, b, c)):
                length = max(0, -((a - b) // c))
            else:
                length = max(0, math.ceil((b - a) / c))
        return Apply(self, inputs, [TensorType(self.dtype, (length,))()])

    def impl(self, xp, start, stop, step):
        return xp.arange(start.item(), stop.item(), step.item(), dtype=self.dtype)

    def vjp(self, node, output_grads):
        return [None, None, None]


def arange(start, stop=None, step=1, dtype=None):
    """``np.arange``; the bounds may be symbolic scalars. The default dtype is
    NumPy's: int64 for integers, float64 if any bound is a float."""
    if stop is None:
        start, stop = 0, start
    inputs = [_scalar_input(v, "arange") for v in (start, stop, step)]
    if dtype is None:
        kinds = {v.dtype[0] for v in inputs}
        dtype = "complex128" if "c" in kinds else "float64" if "f" in kinds else "int64"
    return ARange(canonical_dtype(dtype))(*inputs)


class Eye(Op):
    """``np.eye(n, m, k, dtype)`` for integer scalar inputs."""

    __props__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    def make_node(self, n, m, k):
        inputs = [_scalar_input(v, "eye") for v in (n, m, k)]
        if not all(_is_int(v) for v in inputs):
            raise TypeError(f"eye: n, m and k must be integers, got "
                            f"{[v.dtype for v in inputs]}")
        shape_ = tuple(static_int(v) for v in inputs[:2])
        return Apply(self, inputs, [TensorType(self.dtype, shape_)()])

    def impl(self, xp, n, m, k):
        return xp.eye(int(n), int(m), k=int(k), dtype=self.dtype)

    def vjp(self, node, output_grads):
        return [None, None, None]


def eye(n, m=None, k=0, dtype=None):
    """``np.eye``: ones on the ``k``-th diagonal; dtype floatX by default."""
    return Eye(canonical_dtype(dtype))(n, n if m is None else m, k)
