"""Theano's old ``theano.tensor.nnet.conv`` path: ``conv2d`` always
convolves (flips the filters) and takes ``image_shape`` / ``filter_shape``
hints."""
from tracegrad.ops.conv import conv2d as _conv2d

__all__ = ["conv2d"]


def conv2d(input, filters, filter_shape=None, image_shape=None, border_mode="valid",
           subsample=(1, 1), **kwargs):
    """``theano.tensor.nnet.conv.conv2d``: a true convolution (flipped
    filters); ``border_mode`` 'valid' or 'full'."""
    if border_mode not in ("valid", "full"):
        raise ValueError(f"conv.conv2d: border_mode must be 'valid' or 'full', got "
                         f"{border_mode!r}")
    kwargs.pop("imshp", None)
    kwargs.pop("kshp", None)
    return _conv2d(input, filters, input_shape=image_shape, filter_shape=filter_shape,
                   border_mode=border_mode, subsample=subsample, filter_flip=True, **kwargs)
