"""Theano's ``theano.tensor.signal.pool``: ``pool_2d`` (see
``tracegrad.ops.conv``), ``pool_3d`` and ``max_pool_2d_same_size``
(``tracegrad.ops.pool_nd``)."""
from tracegrad.ops.conv import get_pool_output_shape, pool_2d  # noqa: F401
from tracegrad.ops.pool_nd import max_pool_2d_same_size, pool_3d  # noqa: F401

__all__ = ["pool_2d", "pool_3d", "max_pool_2d_same_size", "get_pool_output_shape"]
