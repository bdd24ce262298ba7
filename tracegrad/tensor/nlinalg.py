"""Theano's ``tensor.nlinalg`` path: ``matrix_inverse``, ``det``, ``slogdet``,
``solve``, ``cholesky``, ``norm``, ``pinv``, ``matrix_power`` (the ops live in
``tracegrad/ops/nlinalg.py``)."""
from tracegrad.ops.nlinalg import *  # noqa: F401,F403
from tracegrad.ops.nlinalg import __all__  # noqa: F401
