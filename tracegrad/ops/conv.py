"""2-D convolution and pooling with Theano's semantics: ``conv2d`` and
``pool_2d`` (``T.nnet.conv2d``, ``T.signal.pool.pool_2d``).

Both are im2col compositions of NumPy-style ops, so their gradients, jvps
and second derivatives come from those ops' rules:

- ``conv2d``: the input is padded (``border_mode``), every filter tap
  ``(i, j)`` takes one strided slice of it (stride ``subsample``, spacing
  ``filter_dilation``); the ``kh·kw`` slices stacked are the columns, and one
  ``tensordot`` with the filters (flipped when ``filter_flip``: a true
  convolution, Theano's default) is the GEMM;
- ``pool_2d``: the last two axes are padded (``pad`` each side; with
  ``ignore_border=False`` the partial windows at the end are completed) with
  ``-inf`` for max and zeros otherwise, so no cell outside the image counts
  (Theano's ``Pool`` excludes them too), every window offset takes one
  strided slice, and the slices' max / sum / mean is the result. Averages
  divide by the count of the window's cells inside the image
  (``average_exc_pad``) or inside the padded image (``average_inc_pad``).

Slices are written relative to both ends of the padded axes (``x[i : -(k-1-i)
: s]``), so no length needs to be known while the graph is built.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import alloc, ones_like
from tracegrad.ops.linalg import tensordot
from tracegrad.ops.reduce import max as _max, sum as _sum
from tracegrad.ops.shape import concatenate, reshape, stack, transpose
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["conv2d", "pool_2d", "get_conv_output_shape", "get_pool_output_shape"]


def _ints(value, n, name):
    """``value`` (an int, or ``n`` ints) as a tuple of ``n`` ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or {_n_ints(n)}, got {value!r}")
    return value


def _n_ints(n):
    return "a pair of ints" if n == 2 else f"{n} ints"


def _pair(value, name):
    return _ints(value, 2, name)


def _pads(border_mode, extents, who):
    """Zero padding per spatial axis of ``border_mode`` ('valid', 'full',
    'half', an int or one int per axis) for dilated filter ``extents``."""
    if border_mode == "valid":
        return (0,) * len(extents)
    if border_mode == "full":
        return tuple(e - 1 for e in extents)
    if border_mode == "half":
        return tuple(e // 2 for e in extents)
    if isinstance(border_mode, str):
        raise ValueError(f"{who}: border_mode must be 'valid', 'full', 'half', an int or "
                         f"{_n_ints(len(extents))}, got {border_mode!r}")
    return _ints(border_mode, len(extents), f"{who}: border_mode")


def _pad_axis(x, axis, before, after, fill):
    """``x`` with ``before``/``after`` entries of ``fill`` along ``axis``
    (``after`` may be a symbolic integer)."""
    if isinstance(after, (int, np.integer)) and not before and not after:
        return x
    parts = []
    for n in (before, after):
        shape = [x.shape[k] for k in range(x.ndim)]
        shape[axis] = n
        parts.append(alloc(np.asarray(fill, dtype=x.dtype), *shape))
    return concatenate([parts[0], x, parts[1]], axis)


def _taps(x, k, stride, dilation, axis):
    """The ``k`` strided slices of ``x`` along ``axis``, one per tap."""
    out = []
    for i in range(k):
        end = -(k - 1 - i) * dilation or None
        key = [slice(None)] * x.ndim
        key[axis] = slice(i * dilation, end, stride)
        out.append(x[tuple(key)])
    return out


# ------------------------------------------------------------------ conv2d
def _border_pads(border_mode, kh, kw, dh, dw):
    # (the dilated filter's extent per axis)
    return _pads(border_mode, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), "conv2d")


def _filter_extent(filters, filter_shape):
    if filter_shape is not None and all(s is not None for s in filter_shape[2:]):
        return int(filter_shape[2]), int(filter_shape[3])
    kh, kw = filters.type.shape[2:]
    if kh is None or kw is None:
        raise ValueError("conv2d: the filters' spatial size must be known while building the "
                         "graph: pass filter_shape=(n_filters, channels, rows, cols) or use "
                         "filters of static shape (a shared variable has one)")
    return kh, kw


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), filter_flip=True, image_shape=None, filter_dilation=(1, 1),
           num_groups=1, **kwargs):
    """Theano's ``conv2d``: ``input`` (batch, channels, rows, cols) with
    ``filters`` (n_filters, channels / num_groups, rows, cols) gives (batch,
    n_filters, out_rows, out_cols). ``border_mode``: 'valid', 'full', 'half',
    an int or a pair (zero padding); ``subsample``: strides;
    ``filter_flip=True`` flips the filters (a convolution; False: a
    correlation); ``filter_dilation``: spacing of the taps. ``input_shape``
    / ``image_shape`` are hints only."""
    if kwargs.pop("unshared", False):
        raise NotImplementedError("conv2d: unshared=True is not supported")
    if kwargs:
        raise TypeError(f"conv2d: unexpected arguments {sorted(kwargs)}")
    x, w = as_tensor_variable(input), as_tensor_variable(filters)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d: input and filters must be 4-d, got {x.ndim}-d and "
                         f"{w.ndim}-d")
    kh, kw = _filter_extent(w, filter_shape)
    (sh, sw), (dh, dw) = _pair(subsample, "subsample"), _pair(filter_dilation, "filter_dilation")
    ph, pw = _border_pads(border_mode, kh, kw, dh, dw)
    if filter_flip:
        w = w[:, :, ::-1, ::-1]
    x = _pad_axis(_pad_axis(x, 2, ph, ph, 0), 3, pw, pw, 0)
    if num_groups == 1:
        return _conv_columns(x, w, kh, kw, (sh, sw), (dh, dw))
    return _grouped(x, w, int(num_groups), kh, kw, (sh, sw), (dh, dw))


def _conv_columns(x, w, kh, kw, stride, dilation):
    rows = _taps(x, kh, stride[0], dilation[0], 2)
    cols = [c for r in rows for c in _taps(r, kw, stride[1], dilation[1], 3)]
    patches = stack(cols, axis=2)                 # (N, C, kh·kw, Ho, Wo)
    n, c = x.shape[0], x.shape[1]
    patches = reshape(patches, (n, c * (kh * kw), patches.shape[3], patches.shape[4]))
    w2 = reshape(w, (w.shape[0], -1))             # (F, C·kh·kw), same order
    out = tensordot(w2, patches, axes=[[1], [1]])  # (F, N, Ho, Wo)
    return transpose(out, (1, 0, 2, 3))


def _grouped(x, w, groups, kh, kw, stride, dilation):
    f, ci = w.type.shape[0], w.type.shape[1]
    if f is None or ci is None:
        raise ValueError("conv2d: num_groups > 1 needs the filters' first two lengths known "
                         "while building the graph (filters of static shape, or "
                         "T.specify_shape)")
    if f % groups:
        raise ValueError(f"conv2d: {f} filters cannot be split in {groups} groups")
    c_in = x.type.shape[1]
    if c_in is not None and c_in != ci * groups:
        raise ValueError(f"conv2d: {c_in} input channels, but {groups} groups of filters "
                         f"with {ci} channels each")
    fo = f // groups
    outs = [_conv_columns(x[:, g * ci:(g + 1) * ci], w[g * fo:(g + 1) * fo], kh, kw,
                          stride, dilation) for g in range(groups)]
    return concatenate(outs, 1)


def get_conv_output_shape(image_shape, kernel_shape, border_mode, subsample,
                          filter_dilation=(1, 1)):
    """Theano's helper: the output shape (None where unknown)."""
    n, _, h, w_ = image_shape
    f, _, kh, kw = kernel_shape
    (sh, sw), (dh, dw) = _pair(subsample, "subsample"), _pair(filter_dilation, "filter_dilation")
    ph, pw = _border_pads(border_mode, kh, kw, dh, dw)

    def length(size, k, p, s, d):
        return None if size is None else (size + 2 * p - (k - 1) * d - 1) // s + 1
    return (n, f, length(h, kh, ph, sh, dh), length(w_, kw, pw, sw, dw))


# ------------------------------------------------------------------ pooling
_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def _pool_rows(size, ws, st, pad, ignore_border):
    """Number of windows along an axis of ``size`` (an int or a symbolic int)."""
    r = size + 2 * pad
    if ignore_border:
        return (r - ws) // st + 1
    if st >= ws:
        return (r - 1) // st + 1
    return ew.maximum(0, (r - 1 - ws + st) // st) + 1 if not isinstance(r, int) \
        else max(0, (r - 1 - ws + st) // st) + 1


def get_pool_output_shape(imgshape, ws, ignore_border=False, stride=None, pad=(0, 0)):
    """Theano's ``Pool.out_shape`` for the last two axes of ``imgshape``."""
    ws, stride = _pair(ws, "ws"), _pair(stride or ws, "stride")
    pad = _pair(pad, "pad")
    tail = tuple(_pool_rows(imgshape[-2 + k], ws[k], stride[k], pad[k], ignore_border)
                 for k in range(2))
    return tuple(imgshape[:-2]) + tail


def _pool_axis(x, axis, ws, st, pad, ignore_border, fill):
    """Pad axis ``axis`` so its windows are exactly the output's: ``pad``
    entries each side, then more (or a crop) to ``(n - 1)·st + ws``, all
    ``fill`` (no cell outside the image counts in a max or a sum)."""
    x = _pad_axis(x, axis, pad, pad, fill)
    n = _pool_rows(x.shape[axis] - 2 * pad, ws, st, pad, ignore_border)
    needed = (n - 1) * st + ws
    if ignore_border:
        key = [slice(None)] * x.ndim
        key[axis] = slice(0, needed)
        return x[tuple(key)]
    return _pad_axis(x, axis, 0, needed - x.shape[axis], fill)


def _windows(x, ws, st):
    """The windows' cells over the last ``len(ws)`` axes, stacked on a new
    first axis (``pool_2d``, ``pool_3d``)."""
    cols = [x]
    first = x.ndim - len(ws)
    for k in range(len(ws)):
        cols = [t for c in cols for t in _taps(c, ws[k], st[k], 1, first + k)]
    return stack(cols, axis=0)


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode="max",
            ds=None, st=None, padding=None):
    """Theano's ``pool_2d`` over the last two axes: windows ``ws``, strides
    ``stride`` (default ``ws``), zero padding ``pad``; ``mode`` 'max',
    'sum', 'average_inc_pad' or 'average_exc_pad' ('average' is the latter).
    ``ignore_border=False`` (Theano's default) keeps partial windows at the
    end. ``ds``, ``st``, ``padding`` are Theano's older names."""
    ws = _pair(ws if ws is not None else ds, "pool_2d: ws")
    stride = _pair(stride if stride is not None else (st if st is not None else ws),
                   "pool_2d: stride")
    pad = _pair(padding if padding is not None else pad, "pool_2d: pad")
    return _pool("pool_2d", input, ws, stride, pad, ignore_border, mode)


def _pool(name, input, ws, stride, pad, ignore_border, mode):
    """``pool_2d`` / ``pool_3d`` (``name``) over the last ``len(ws)`` axes,
    their window, stride and pad already tuples of ints."""
    mode = "average_exc_pad" if mode == "average" else mode
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be one of {_MODES}, got {mode!r}")
    ignore_border = bool(ignore_border)
    if any(pad) and not ignore_border:
        raise NotImplementedError(f"{name}: padding works only with ignore_border=True "
                                  "(as in Theano)")
    if any(p >= w for p, w in zip(pad, ws)):
        raise ValueError(f"{name}: pad {pad} must be smaller than the window {ws}")
    x = as_tensor_variable(input)
    nd = len(ws)
    if x.ndim < nd:
        raise ValueError(f"{name}: the input needs at least {nd} dimensions, got {x.ndim}")
    fill = -np.inf if mode == "max" else 0
    padded = x
    for k in range(nd):
        padded = _pool_axis(padded, x.ndim - nd + k, ws[k], stride[k], pad[k], ignore_border,
                            fill)
    windows = _windows(padded, ws, stride)
    if mode == "max":
        return _max(windows, axis=0)
    total = _sum(windows, axis=0)
    if mode == "sum":
        return total
    return total / _window_counts(x, ws, stride, pad, ignore_border, mode == "average_inc_pad")


def _window_counts(x, ws, stride, pad, ignore_border, include_pad):
    """How many cells each window averages: the same pooling applied to a
    mask of ones (zeros on the explicit padding unless ``include_pad``)."""
    mask = ones_like(x)
    for k in range(len(ws)):
        axis = x.ndim - len(ws) + k
        p = pad[k]
        mask = _pad_axis(mask, axis, p, p, 1 if include_pad else 0)
        n = _pool_rows(mask.shape[axis] - 2 * p, ws[k], stride[k], p, ignore_border)
        needed = (n - 1) * stride[k] + ws[k]
        if ignore_border:
            key = [slice(None)] * mask.ndim
            key[axis] = slice(0, needed)
            mask = mask[tuple(key)]
        else:
            mask = _pad_axis(mask, axis, 0, needed - mask.shape[axis], 0)
    return _sum(_windows(mask, ws, stride), axis=0)
