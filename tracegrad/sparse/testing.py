"""Theano's ``theano.sparse.verify_grad_sparse``: ``verify_grad`` for a
function of sparse matrices, through dense (or structured) stand-ins."""
import numpy as np
import scipy.sparse as sp

from tracegrad.sparse.basic import CSM, csc_from_dense, csr_from_dense, dense_from_sparse
from tracegrad.sparse.type import SparseVariable
from tracegrad.testing.gradcheck import verify_grad


def _format(m):
    return "csc" if sp.isspmatrix_csc(m) or getattr(m, "format", "") == "csc" else "csr"


def verify_grad_sparse(op, pt, structured=False, *args, **kwargs):
    """Check the gradient of ``op`` (called with sparse variables where
    ``pt`` holds ``scipy.sparse`` matrices) by finite differences: each
    sparse point is checked as a dense matrix (every entry varies) or, with
    ``structured=True``, as its stored values (the pattern fixed). A sparse
    output is made dense. Other arguments go to ``verify_grad``."""
    pt = list(pt)
    sparse_at = {k: (_format(p), p) for k, p in enumerate(pt) if sp.issparse(p)}
    points = []
    for k, p in enumerate(pt):
        if k not in sparse_at:
            points.append(np.asarray(p))
        elif structured:
            points.append(_stored(sparse_at[k]).data.copy())
        else:
            points.append(np.asarray(p.toarray()))

    def dense_fn(*inputs):
        args_ = []
        for k, v in enumerate(inputs):
            if k not in sparse_at:
                args_.append(v)
                continue
            fmt, matrix = sparse_at[k]
            if structured:
                m = _stored(sparse_at[k])
                args_.append(CSM(fmt)(v, np.asarray(m.indices, "int64"),
                                      np.asarray(m.indptr, "int64"),
                                      np.asarray(m.shape, "int64")))
            else:
                args_.append((csr_from_dense if fmt == "csr" else csc_from_dense)(v))
        out = op(*args_)
        return dense_from_sparse(out) if isinstance(out, SparseVariable) else out

    return verify_grad(dense_fn, points, *args, **kwargs)


def _stored(entry):
    fmt, matrix = entry
    m = sp.csr_matrix(matrix) if fmt == "csr" else sp.csc_matrix(matrix)
    m.sort_indices()
    return m
