"""Theano's ``theano.tensor.nnet.abstract_conv`` names: ``conv2d``,
``conv3d``, ``conv2d_grad_wrt_inputs``, ``conv2d_grad_wrt_weights``,
``conv2d_transpose``, ``get_conv_output_shape``.

The gradients of a convolution are what Theano defines them to be: the
vector-Jacobian products of ``conv2d`` (``tg.Lop`` of a convolution of
zeros of the given shape, a linear map), so every border mode, stride,
dilation, flip and group count of ``conv2d`` is supported, and their own
gradients are those of the ops they are built from.
"""
from tracegrad.grad import Lop
from tracegrad.ops.alloc import zeros
from tracegrad.ops.conv import conv2d, get_conv_output_shape  # noqa: F401
from tracegrad.ops.conv3d import conv3d  # noqa: F401
from tracegrad.ops.shape import shape
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["conv2d", "conv3d", "conv2d_grad_wrt_inputs", "conv2d_grad_wrt_weights",
           "conv2d_transpose", "get_conv_output_shape"]


def _known(entries, what):
    if any(e is None for e in entries):
        raise ValueError(f"{what}: the spatial lengths must be given (ints or symbolic "
                         f"integer scalars), got {tuple(entries)}")
    return list(entries)


def conv2d_grad_wrt_inputs(output_grad, filters, input_shape, filter_shape=None,
                           border_mode="valid", subsample=(1, 1), filter_flip=True,
                           filter_dilation=(1, 1), num_groups=1):
    """Theano's ``conv2d_grad_wrt_inputs``: the gradient with respect to
    the input of ``conv2d(input, filters, ...)`` (``input`` of shape
    ``input_shape``; its batch and channel lengths may be ``None``) given
    ``output_grad``, the gradient of its output — the transposed
    convolution."""
    g, w = as_tensor_variable(output_grad), as_tensor_variable(filters)
    n = shape(g)[0] if input_shape[0] is None else input_shape[0]
    c = shape(w)[1] * num_groups if input_shape[1] is None else input_shape[1]
    dims = [n, c] + _known(input_shape[2:], "conv2d_grad_wrt_inputs")
    x = zeros(dims, dtype=g.dtype)
    out = conv2d(x, w, filter_shape=filter_shape, border_mode=border_mode,
                 subsample=subsample, filter_flip=filter_flip,
                 filter_dilation=filter_dilation, num_groups=num_groups)
    return Lop(out, x, g)


def conv2d_grad_wrt_weights(input, output_grad, filter_shape, input_shape=None,
                            border_mode="valid", subsample=(1, 1), filter_flip=True,
                            filter_dilation=(1, 1), num_groups=1):
    """Theano's ``conv2d_grad_wrt_weights``: the gradient with respect to
    the filters (of shape ``filter_shape``) of ``conv2d(input, filters,
    ...)`` given ``output_grad``."""
    x, g = as_tensor_variable(input), as_tensor_variable(output_grad)
    dims = _known(filter_shape, "conv2d_grad_wrt_weights")
    w = zeros(dims, dtype=g.dtype)
    out = conv2d(x, w, filter_shape=filter_shape, border_mode=border_mode,
                 subsample=subsample, filter_flip=filter_flip,
                 filter_dilation=filter_dilation, num_groups=num_groups)
    return Lop(out, w, g)


def conv2d_transpose(input, filters, output_shape, filter_shape=None, border_mode="valid",
                     input_dilation=(1, 1), filter_flip=True, filter_dilation=(1, 1),
                     num_groups=1):
    """Theano's ``conv2d_transpose`` (a "deconvolution"): the transpose of
    ``conv2d`` with stride ``input_dilation``, mapping ``input`` (batch,
    n_filters, rows, cols) to ``output_shape`` (batch, channels, rows,
    cols); ``conv2d_grad_wrt_inputs`` under another name."""
    return conv2d_grad_wrt_inputs(input, filters, output_shape, filter_shape=filter_shape,
                                  border_mode=border_mode, subsample=input_dilation,
                                  filter_flip=filter_flip, filter_dilation=filter_dilation,
                                  num_groups=num_groups)
