"""Theano's ``theano.tensor.signal.conv.conv2d``: 2-D convolution of
images (``(rows, cols)`` or ``(batch, rows, cols)``) with filters
(``(rows, cols)`` or ``(n_filters, rows, cols)``), written with
``T.nnet.conv2d`` (one channel)."""
from tracegrad.ops.conv import conv2d as _conv2d
from tracegrad.ops.shape import dimshuffle, reshape, shape
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["conv2d"]


def conv2d(input, filters, image_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), **kargs):
    """The convolution of each image with each filter: the result has the
    batch axis when ``input`` has one, then the filter axis when
    ``filters`` has one, then the rows and columns (``border_mode``
    'valid' or 'full'; ``subsample``: strides)."""
    x, w = as_tensor_variable(input), as_tensor_variable(filters)
    if x.ndim not in (2, 3) or w.ndim not in (2, 3):
        raise ValueError(f"signal.conv.conv2d: input and filters must be 2-d or 3-d, got "
                         f"{x.ndim}-d and {w.ndim}-d")
    x4 = reshape(x, (-1, 1, shape(x)[-2], shape(x)[-1]))
    w4 = dimshuffle(w, [0, "x", 1, 2]) if w.ndim == 3 else dimshuffle(w, ["x", "x", 0, 1])
    fshape = None
    if filter_shape is not None:
        fshape = (None, 1) + tuple(filter_shape)[-2:]
    out = _conv2d(x4, w4, filter_shape=fshape, border_mode=border_mode, subsample=subsample,
                  **kargs)
    if x.ndim == 2:
        out = out[0]                                # no batch axis
    return out if w.ndim == 3 else out[..., 0, :, :]   # no filter axis
