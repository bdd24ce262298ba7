"""Theano's ``theano.tensor.signal``: ``pool`` and the older ``downsample``."""
from tracegrad.tensor.signal import conv, downsample, pool  # noqa: F401
