"""Theano's ``tensor.nlinalg`` path: ``matrix_inverse``, ``det``, ``slogdet``,
``solve``, ``cholesky``, ``norm``, ``pinv``, ``matrix_power`` (the ops live in
``tracegrad/ops/nlinalg.py``)."""
from tracegrad.ops.nlinalg import *  # noqa: F401,F403
from tracegrad.ops.nlinalg import __all__  # noqa: F401
# numpy.linalg decompositions and the rest of numpy.linalg (ops/decomp*.py)
from tracegrad.ops.decomp import *  # noqa: F401,F403,E402
from tracegrad.ops.decomp_solve import *  # noqa: F401,F403,E402
from tracegrad.ops.linalg_api import *  # noqa: F401,F403,E402
from tracegrad.ops import decomp as _decomp, decomp_solve as _decomp_solve  # noqa: E402
from tracegrad.ops import linalg_api as _linalg_api  # noqa: E402
__all__ = list(__all__) + _decomp.__all__ + _decomp_solve.__all__ + _linalg_api.__all__
# Theano's nlinalg names written with other ops, and T.diag at this path too
from tracegrad.ops.theano_extra import alloc_diag, extract_diag, matrix_dot  # noqa: F401,E402
from tracegrad.ops.linalg import diag  # noqa: F401,E402
__all__ += ["alloc_diag", "extract_diag", "matrix_dot", "diag"]
