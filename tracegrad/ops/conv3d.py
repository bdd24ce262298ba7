"""Theano's ``T.nnet.conv3d`` (``abstract_conv.conv3d``): 3-D convolution
written as ``conv2d`` is (``ops/conv.py``): the padded input's taps (one
strided slice per filter offset ``(i, j, k)``) stacked into columns and one
``tensordot`` with the (flipped) filters; gradients from those ops.
"""
from tracegrad.ops.conv import _ints, _pad_axis, _pads, _taps
from tracegrad.ops.linalg import tensordot
from tracegrad.ops.shape import reshape, stack, transpose
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["conv3d"]


def _triple(value, name):
    return _ints(value, 3, f"conv3d: {name}")


def _kernel(w, filter_shape):
    if filter_shape is not None and all(s is not None for s in filter_shape[2:]):
        return tuple(int(s) for s in filter_shape[2:])
    ks = w.type.shape[2:]
    if any(k is None for k in ks):
        raise ValueError("conv3d: the filters' spatial size must be known while building the "
                         "graph: pass filter_shape=(n_filters, channels, depth, rows, cols) "
                         "or use filters of static shape")
    return ks


def conv3d(input, filters, input_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1, 1), filter_flip=True, filter_dilation=(1, 1, 1), num_groups=1):
    """Theano's ``conv3d``: ``input`` (batch, channels, depth, rows, cols)
    with ``filters`` (n_filters, channels, depth, rows, cols) gives (batch,
    n_filters, out_depth, out_rows, out_cols). ``border_mode``: 'valid',
    'full', 'half', an int or 3 ints; ``subsample``: strides;
    ``filter_flip=True`` flips the filters (a convolution);
    ``filter_dilation``: spacing of the taps. ``input_shape`` is a hint."""
    if num_groups != 1:
        raise NotImplementedError("conv3d: num_groups > 1 is not supported")
    x, w = as_tensor_variable(input), as_tensor_variable(filters)
    if x.ndim != 5 or w.ndim != 5:
        raise ValueError(f"conv3d: input and filters must be 5-d, got {x.ndim}-d and "
                         f"{w.ndim}-d")
    ks = _kernel(w, filter_shape)
    stride, dil = _triple(subsample, "subsample"), _triple(filter_dilation, "filter_dilation")
    pads = _pads(border_mode, [(k - 1) * d + 1 for k, d in zip(ks, dil)], "conv3d")
    if filter_flip:
        w = w[:, :, ::-1, ::-1, ::-1]
    for axis, p in zip((2, 3, 4), pads):
        x = _pad_axis(x, axis, p, p, 0)
    cols = [x]
    for axis in (2, 3, 4):
        k = axis - 2
        cols = [t for c in cols for t in _taps(c, ks[k], stride[k], dil[k], axis)]
    patches = stack(cols, axis=2)                    # (N, C, kd·kh·kw, Do, Ho, Wo)
    s = patches.shape
    patches = reshape(patches, (s[0], s[1] * s[2], s[3], s[4], s[5]))
    w2 = reshape(w, (w.shape[0], -1))                # (F, C·kd·kh·kw), same order
    out = tensordot(w2, patches, axes=[[1], [1]])    # (F, N, Do, Ho, Wo)
    return transpose(out, (1, 0, 2, 3, 4))
