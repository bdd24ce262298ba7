"""``tracegrad.sparse``: Theano's ``theano.sparse`` over ``scipy.sparse``.

    import tracegrad.sparse as sparse
    x = sparse.csc_matrix('x', dtype='float64')
    y = sparse.structured_dot(x, T.dmatrix('w'))

Sparse matrices (csc or csr, 2-d) as graph values: inputs and outputs of
``tg.function`` are ``scipy.sparse`` matrices, ``tg.shared`` of one is a
sparse shared variable. scipy is an optional dependency: this package
needs it (``pip install tracegrad[scipy]``); nothing else in tracegrad
imports scipy when loaded. Sparse values live on the CPU.
"""
try:
    import scipy.sparse  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tracegrad.sparse needs scipy: pip install tracegrad[scipy]") from exc

import sys

from tracegrad.sparse import basic, math  # noqa: F401 (Theano's sparse.basic.hstack)
from tracegrad.sparse import type as _type
from tracegrad.sparse.basic import *  # noqa: F401,F403
from tracegrad.sparse.basic import (CSC, CSM, CSR, abs_, add, col_scale,  # noqa: F401
                                    csm_properties, dense_from_sparse, mul, neg,
                                    row_scale, sp_ones_like, sp_zeros_like, sub)
from tracegrad.sparse.math import (dot, sampling_dot, sp_sum, structured_dot,  # noqa: F401
                                   true_dot)
from tracegrad.sparse.type import (SparseConstant, SparseSharedVariable,  # noqa: F401
                                   SparseType, SparseVariable, as_sparse,
                                   as_sparse_or_tensor_variable, as_sparse_variable,
                                   csc_dmatrix, csc_fmatrix, csc_imatrix, csc_lmatrix,
                                   csc_matrix, csr_dmatrix, csr_fmatrix, csr_imatrix,
                                   csr_lmatrix, csr_matrix, shared)
from tracegrad.tensor.variable import as_tensor_variable  # noqa: F401
from tracegrad.sparse.testing import verify_grad_sparse  # noqa: F401

# Sparse variables' operators (``x + y``, ``x.T``, ``x.shape``) call this
# namespace's functions (``sparse.type`` sits below ``basic``).
_type._ops = sys.modules[__name__]
