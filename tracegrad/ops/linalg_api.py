"""The NumPy 2 array-API functions of ``numpy.linalg`` that differ from their
``numpy`` namesakes: ``cross`` (3-vectors only), ``diagonal`` and ``trace``
(of the last two axes), ``outer`` (1-d only), ``tensordot`` (keyword
``axes``), ``matrix_transpose``, ``vecdot`` (conjugating the first argument).

They are composed of existing ops (gradients through them). They live in
``T.nlinalg`` (``T.nlinalg.diagonal`` is ``np.linalg.diagonal``, ``T.diagonal``
stays ``np.diagonal``) and answer ``np.linalg.<name>`` on symbolic arrays;
they are not star-exported into ``T``.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.linalg import diagonal as _diagonal, outer as _outer, \
    tensordot as _tensordot, trace as _trace
from tracegrad.ops.manip import cross as _cross
from tracegrad.ops.reduce import sum as _sum
from tracegrad.ops.shape import dimshuffle
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["cross", "diagonal", "outer", "tensordot", "trace", "matrix_transpose",
           "vecdot"]


def cross(x1, x2, /, *, axis=-1):
    """``np.linalg.cross``: the cross product of 3-vectors along ``axis``."""
    x1, x2 = as_tensor_variable(x1), as_tensor_variable(x2)
    for name, x in (("x1", x1), ("x2", x2)):
        if x.ndim == 0:
            raise ValueError(f"linalg.cross: {name} must be at least 1-d")
        n = x.type.shape[normalize_axis(axis, x.ndim, "linalg.cross")[0]]
        if n is not None and n != 3:    # (an unknown length: cross says it must be static)
            raise ValueError(f"linalg.cross: both input arrays must be (arrays of) "
                             f"3-dimensional vectors, but {name} has length {n} along "
                             f"axis {axis}")
    return _cross(x1, x2, axis=axis)


def diagonal(x, /, *, offset=0):
    """``np.linalg.diagonal``: the ``offset`` diagonal of each matrix (last two axes)."""
    return _diagonal(x, offset, -2, -1)


def outer(x1, x2, /):
    """``np.linalg.outer``: the outer product of two 1-d arrays."""
    x1, x2 = as_tensor_variable(x1), as_tensor_variable(x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError(f"linalg.outer: input arrays must be one-dimensional, got "
                         f"{x1.ndim}-d and {x2.ndim}-d")
    return _outer(x1, x2)


def tensordot(x1, x2, /, *, axes=2):
    """``np.linalg.tensordot`` (``np.tensordot`` with keyword-only ``axes``)."""
    return _tensordot(x1, x2, axes)


def trace(x, /, *, offset=0, dtype=None):
    """``np.linalg.trace``: the sum of the ``offset`` diagonal of each matrix."""
    return _trace(x, offset, -2, -1, dtype)


def matrix_transpose(x, /):
    """``np.linalg.matrix_transpose``: swap the last two axes."""
    x = as_tensor_variable(x)
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: input array must be at least 2-dimensional, "
                         f"got {x.ndim}-d")
    return dimshuffle(x, list(range(x.ndim - 2)) + [x.ndim - 1, x.ndim - 2])


def vecdot(x1, x2, /, *, axis=-1):
    """``np.linalg.vecdot``: ``sum(conj(x1) * x2, axis)`` (broadcasting)."""
    x1, x2 = as_tensor_variable(x1), as_tensor_variable(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("linalg.vecdot: inputs must be at least 1-d")
    a = ew.conj(x1) if x1.dtype[0] == "c" else x1
    return _sum(ew.mul(a, x2), axis=axis)


implements(np.linalg.cross)(cross)
implements(np.linalg.diagonal)(diagonal)
implements(np.linalg.outer)(outer)
implements(np.linalg.tensordot)(tensordot)
implements(np.linalg.trace)(trace)
implements(np.linalg.matrix_transpose)(matrix_transpose)
implements(np.linalg.vecdot)(vecdot)
