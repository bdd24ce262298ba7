"""Theano's import path for ``RandomStreams`` (same class as ``tracegrad.random``)."""
from tracegrad.random import RandomStreams  # noqa: F401
