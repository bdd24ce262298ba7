"""Theano's ``theano.tensor.nnet.neighbours``: ``images2neibs``,
``neibs2images`` (``tracegrad/ops/nnet_extra.py``)."""
from tracegrad.ops.nnet_extra import images2neibs, neibs2images  # noqa: F401

__all__ = ["images2neibs", "neibs2images"]
