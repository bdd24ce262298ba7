"""Theano's ``theano.tensor.signal``: ``pool`` and the older ``downsample``."""
from tracegrad.tensor.signal import downsample, pool  # noqa: F401
