"""Theano's ``theano.tensor.nnet.abstract_conv`` names."""
from tracegrad.ops.conv import conv2d, get_conv_output_shape  # noqa: F401

__all__ = ["conv2d", "get_conv_output_shape"]
