"""Theano's ``pool_3d`` and ``max_pool_2d_same_size``
(``T.signal.pool``), written as ``pool_2d`` is (``ops/conv.py``): each
pooled axis padded to exactly its windows, one strided slice per window
offset, their max / sum / mean; gradients from those ops.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.conv import _pad_axis, _pool, pool_2d
from tracegrad.ops.shape import repeat, shape
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["pool_3d", "max_pool_2d_same_size"]


def _triple(value, name):
    if isinstance(value, (int, np.integer)):
        return (int(value),) * 3
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise ValueError(f"pool_3d: {name} must be an int or 3 ints, got {value!r}")
    return value


def pool_3d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0, 0), mode="max"):
    """Theano's ``pool_3d`` over the last three axes: windows ``ws``,
    strides ``stride`` (default ``ws``), zero padding ``pad`` (with
    ``ignore_border=True`` only); ``mode`` 'max', 'sum', 'average_inc_pad'
    or 'average_exc_pad' ('average' is the latter). ``ignore_border=False``
    keeps partial windows at the end, as ``pool_2d`` does."""
    ws = _triple(ws, "ws")
    stride = _triple(stride if stride is not None else ws, "stride")
    pad = _triple(pad, "pad")
    return _pool("pool_3d", input, ws, stride, pad, ignore_border, mode)


def max_pool_2d_same_size(input, patch_size):
    """Theano's ``max_pool_2d_same_size``: ``input`` with every value that is
    not the maximum of its (non-overlapping, ``patch_size``) patch set to
    zero; the rows and columns that fill no whole patch are zero too."""
    x = as_tensor_variable(input)
    ph, pw = (int(p) for p in patch_size)
    pooled = pool_2d(x, (ph, pw), ignore_border=True)
    up = repeat(repeat(pooled, ph, axis=x.ndim - 2), pw, axis=x.ndim - 1)
    h, w = shape(up)[x.ndim - 2], shape(up)[x.ndim - 1]
    kept = x[..., :h, :w]
    out = ew.switch(ew.eq(kept, up), up, 0)
    out = _pad_axis(out, x.ndim - 2, 0, shape(x)[x.ndim - 2] - h, 0)
    return _pad_axis(out, x.ndim - 1, 0, shape(x)[x.ndim - 1] - w, 0)
