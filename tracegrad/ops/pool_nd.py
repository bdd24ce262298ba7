"""Theano's ``pool_3d`` and ``max_pool_2d_same_size``
(``T.signal.pool``), written as ``pool_2d`` is (``ops/conv.py``): each
pooled axis padded to exactly its windows, one strided slice per window
offset, their max / sum / mean; gradients from those ops.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import ones_like
from tracegrad.ops.conv import _MODES, _pad_axis, _pool_axis, _pool_rows, _taps, pool_2d
from tracegrad.ops.reduce import max as _max, sum as _sum
from tracegrad.ops.shape import repeat, shape, stack
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["pool_3d", "max_pool_2d_same_size"]


def _triple(value, name):
    if isinstance(value, (int, np.integer)):
        return (int(value),) * 3
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise ValueError(f"pool_3d: {name} must be an int or 3 ints, got {value!r}")
    return value


def _windows(x, ws, st):
    """The windows' cells, stacked on a new first axis."""
    cols = [x]
    first = x.ndim - len(ws)
    for k in range(len(ws)):
        cols = [t for c in cols for t in _taps(c, ws[k], st[k], 1, first + k)]
    return stack(cols, axis=0)


def _counts(x, ws, stride, pad, ignore_border, include_pad):
    """How many cells each window averages (the pooled sum of a mask)."""
    mask = ones_like(x)
    for k in range(len(ws)):
        axis = x.ndim - len(ws) + k
        mask = _pad_axis(mask, axis, pad[k], pad[k], 1 if include_pad else 0)
        n = _pool_rows(mask.shape[axis] - 2 * pad[k], ws[k], stride[k], pad[k], ignore_border)
        needed = (n - 1) * stride[k] + ws[k]
        if ignore_border:
            key = [slice(None)] * mask.ndim
            key[axis] = slice(0, needed)
            mask = mask[tuple(key)]
        else:
            mask = _pad_axis(mask, axis, 0, needed - mask.shape[axis], 0)
    return _sum(_windows(mask, ws, stride), axis=0)


def pool_3d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0, 0), mode="max"):
    """Theano's ``pool_3d`` over the last three axes: windows ``ws``,
    strides ``stride`` (default ``ws``), zero padding ``pad`` (with
    ``ignore_border=True`` only); ``mode`` 'max', 'sum', 'average_inc_pad'
    or 'average_exc_pad' ('average' is the latter). ``ignore_border=False``
    keeps partial windows at the end, as ``pool_2d`` does."""
    ws = _triple(ws, "ws")
    stride = _triple(stride if stride is not None else ws, "stride")
    pad = _triple(pad, "pad")
    mode = "average_exc_pad" if mode == "average" else mode
    if mode not in _MODES:
        raise ValueError(f"pool_3d: mode must be one of {_MODES}, got {mode!r}")
    ignore_border = bool(ignore_border)
    if any(pad) and not ignore_border:
        raise NotImplementedError("pool_3d: padding works only with ignore_border=True "
                                  "(as in Theano)")
    if any(p >= w for p, w in zip(pad, ws)):
        raise ValueError(f"pool_3d: pad {pad} must be smaller than the window {ws}")
    x = as_tensor_variable(input)
    if x.ndim < 3:
        raise ValueError(f"pool_3d: the input needs at least 3 dimensions, got {x.ndim}")
    fill = -np.inf if mode == "max" else 0
    padded = x
    for k in range(3):
        padded = _pool_axis(padded, x.ndim - 3 + k, ws[k], stride[k], pad[k], ignore_border,
                            fill)
    windows = _windows(padded, ws, stride)
    if mode == "max":
        return _max(windows, axis=0)
    total = _sum(windows, axis=0)
    if mode == "sum":
        return total
    return total / _counts(x, ws, stride, pad, ignore_border, mode == "average_inc_pad")


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
