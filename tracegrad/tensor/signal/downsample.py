"""Theano's old ``theano.tensor.signal.downsample`` path: ``max_pool_2d``."""
from tracegrad.ops.conv import pool_2d

__all__ = ["max_pool_2d"]


def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
    """``downsample.max_pool_2d``: ``pool_2d`` with the old argument names."""
    return pool_2d(input, ws=ds, ignore_border=ignore_border, stride=st, pad=padding,
                   mode=mode)
