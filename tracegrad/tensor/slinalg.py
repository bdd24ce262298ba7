"""Theano's ``theano.tensor.slinalg`` path (``tracegrad/ops/slinalg.py``)."""
from tracegrad.ops.slinalg import *  # noqa: F401,F403
from tracegrad.ops.slinalg import __all__  # noqa: F401
