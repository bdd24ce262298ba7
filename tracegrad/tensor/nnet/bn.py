"""Theano's ``theano.tensor.nnet.bn``: ``batch_normalization``,
``batch_normalization_train``, ``batch_normalization_test``
(``tracegrad/ops/nnet_extra.py``)."""
from tracegrad.ops.nnet_extra import (batch_normalization,  # noqa: F401
                                      batch_normalization_test, batch_normalization_train)

__all__ = ["batch_normalization", "batch_normalization_train", "batch_normalization_test"]
