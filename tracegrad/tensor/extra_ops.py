"""Theano's ``theano.tensor.extra_ops`` path (the ops live in
``tracegrad/ops/extra_ops.py``, ``ops/cumulative.py``, ``ops/manip.py``,
``ops/shape.py`` and ``ops/numpy_signal.py``; all are in ``T`` too)."""
from tracegrad.ops.api import (bartlett, bincount, compress, cumprod, cumsum,  # noqa: F401
                               diff, fill_diagonal, fill_diagonal_offset, ravel_multi_index,
                               repeat, searchsorted, squeeze, to_one_hot, unique,
                               unravel_index)
from tracegrad.ops.extra_ops import Unique  # noqa: F401

__all__ = ["cumsum", "cumprod", "diff", "bincount", "squeeze", "repeat", "bartlett",
           "fill_diagonal", "fill_diagonal_offset", "to_one_hot", "Unique", "unique",
           "ravel_multi_index", "unravel_index", "searchsorted", "compress"]
