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

__all__ = ["EXTRAS", "LINALG_EXTRAS"]


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
    """A shape argument: a sequence of lengths, a shape vector or one length."""
    if isinstance(shape, (list, tuple)):
        return tuple(shape)
    if isinstance(shape, Variable) and shape.ndim == 1:
        return shape
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


# ------------------------------------------------------------ numpy.linalg
# The array-API names of numpy.linalg: the main namespace's functions over
# the last axes (NumPy defines them so), composed from the registered ones.
def linalg_outer(x1, x2, /):
    return FUNCTIONS[np.outer](x1, x2)


def linalg_tensordot(x1, x2, /, *, axes=2):
    return FUNCTIONS[np.tensordot](x1, x2, axes=axes)


def linalg_trace(x, /, *, offset=0, dtype=None):
    return FUNCTIONS[np.trace](x, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


def linalg_diagonal(x, /, *, offset=0):
    return FUNCTIONS[np.diagonal](x, offset=offset, axis1=-2, axis2=-1)


def linalg_cross(x1, x2, /, *, axis=-1):
    return FUNCTIONS[np.cross](x1, x2, axis=axis)


def matrix_transpose(x, /):
    """The last two axes swapped (``numpy.linalg.matrix_transpose``)."""
    x = as_tensor_variable(x)
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: the input must have at least 2 dimensions, "
                         f"got {x.ndim}")
    return FUNCTIONS[np.swapaxes](x, -1, -2)


def multi_dot(arrays, *, out=None):
    """``numpy.linalg.multi_dot``: the product of the matrices, left to right."""
    if out is not None:
        raise TypeError("multi_dot(..., out=) cannot write into a symbolic variable")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays")
    result = arrays[0]
    for a in arrays[1:]:
        result = FUNCTIONS[np.dot](result, a)
    return result


LINALG_EXTRAS = {
    "outer": linalg_outer, "tensordot": linalg_tensordot, "trace": linalg_trace,
    "diagonal": linalg_diagonal, "cross": linalg_cross,
    "matrix_transpose": matrix_transpose, "multi_dot": multi_dot,
}
EXTRAS["matrix_transpose"] = matrix_transpose
