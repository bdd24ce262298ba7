"""Theano's ``tensor.nlinalg`` path: ``matrix_inverse``, ``det``, ``slogdet``,
``solve``, ``cholesky``, ``norm``, ``pinv``, ``matrix_power`` (the ops live in
``tracegrad/ops/nlinalg.py``)."""
from tracegrad.ops.nlinalg import *  # noqa: F401,F403
from tracegrad.ops.nlinalg import __all__  # noqa: F401
# numpy.linalg decompositions and the rest of numpy.linalg (ops/decomp*.py)
from tracegrad.ops.decomp import *  # noqa: F401,F403,E402
from tracegrad.ops import decomp as _decomp  # noqa: E402
__all__ = list(__all__) + list(_decomp.__all__)
