"""Theano's ``theano.tensor.signal.pool``: ``pool_2d`` (see
``tracegrad.ops.conv``)."""
from tracegrad.ops.conv import get_pool_output_shape, pool_2d  # noqa: F401

__all__ = ["pool_2d", "get_pool_output_shape"]
