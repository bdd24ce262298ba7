"""NumPy functions that NumPy itself never hands to tracegrad (they take no
array that could dispatch, or build one from a list), answered on traced
arguments for ``tracegrad.numpy``: array construction, conversion,
constructors with traced lengths, and questions about dtype and shape.

Each is used only when an argument holds a traced value; the dispatch
registry (``tracegrad.tensor.dispatch.FUNCTIONS``) wins where it has an entry.
"""
import numpy as np

from tracegrad.ops import api as _api
from tracegrad.tensor.dispatch import FUNCTIONS
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable

__all__ = ["EXTRAS"]


def _dtype_name(dtype):
    return None if dtype is None else np.dtype(dtype).name


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    """``np.array`` of a traced value or a (nested) list/tuple holding some:
    the stacked tensor. Symbolic values are never written to, so ``copy``
    and ``order`` change nothing."""
    x = as_tensor_variable(object)
    dtype = _dtype_name(dtype)
    if dtype is not None and x.dtype != dtype:
        x = _api.cast(x, dtype)
    if ndmin > x.ndim:
        x = _api.reshape(x, (1,) * (ndmin - x.ndim) + tuple(x.shape))
    return x


def asarray(a, dtype=None, order=None, **kwargs):
    """``np.asarray`` (and ``asanyarray``, ``ascontiguousarray``...) of traced values."""
    return array(a, dtype)


def copy(a, order="K", subok=False):
    """A symbolic value is never modified in place: its copy is itself."""
    return as_tensor_variable(a)


def astype(x, dtype, /, *, copy=True, device=None):
    return _api.cast(as_tensor_variable(x), _dtype_name(dtype))


def _shape_tensor(shape):
    if isinstance(shape, (list, tuple)):
        return tuple(shape)
    return (shape,)


def zeros(shape, dtype=float, order="C", **kwargs):
    """``np.zeros`` with traced lengths."""
    return _api.zeros(_shape_tensor(shape), dtype=_dtype_name(dtype))


def ones(shape, dtype=None, order="C", **kwargs):
    return _api.ones(_shape_tensor(shape), dtype=_dtype_name(dtype) or "float64")


def full(shape, fill_value, dtype=None, order="C", **kwargs):
    """``np.full``: ``fill_value`` (traced or not) broadcast to ``shape``."""
    value = as_tensor_variable(fill_value)
    if dtype is None and getattr(value, "weak", False):
        dtype = np.asarray(value.data).dtype  # NumPy: a Python number's own dtype
    if dtype is not None:
        value = _api.cast(value, _dtype_name(dtype))
    return _api.broadcast_to(value, _shape_tensor(shape))


def arange(start, stop=None, step=None, dtype=None, **kwargs):
    return _api.arange(start, stop, 1 if step is None else step, dtype=_dtype_name(dtype))


def eye(N, M=None, k=0, dtype=float, **kwargs):
    return _api.eye(N, M, k, dtype=_dtype_name(dtype))


def identity(n, dtype=None, **kwargs):
    return _api.eye(n, dtype=_dtype_name(dtype) or "float64")


def size(a, axis=None):
    """The number of elements (along ``axis``): an int where known."""
    x = as_tensor_variable(a)
    return x.size if axis is None else x.shape[axis]


def result_type(*arrays_and_dtypes):
    """``np.result_type`` with traced values read as their dtypes."""
    return np.result_type(*[np.dtype(a.dtype) if isinstance(a, Variable) else a
                            for a in arrays_and_dtypes])


def iscomplexobj(x):
    return np.dtype(as_tensor_variable(x).dtype).kind == "c"


def isrealobj(x):
    return not iscomplexobj(x)


def isscalar(element):
    """False, as for NumPy arrays (a 0-d array is not a scalar)."""
    return False


def row_stack(tup, **kwargs):
    """``np.row_stack``: NumPy's old name of ``np.vstack``."""
    return FUNCTIONS[np.vstack](tup, **kwargs)


EXTRAS = {
    "array": array, "asarray": asarray, "asanyarray": asarray,
    "ascontiguousarray": asarray, "asfortranarray": asarray, "copy": copy,
    "astype": astype, "zeros": zeros, "empty": zeros, "ones": ones, "full": full,
    "arange": arange, "eye": eye, "identity": identity, "size": size,
    "result_type": result_type, "iscomplexobj": iscomplexobj,
    "isrealobj": isrealobj, "isscalar": isscalar, "row_stack": row_stack,
}
