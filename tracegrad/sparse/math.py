"""Sparse products and sums (Theano's ``theano.sparse.basic`` and
``sandbox``): ``structured_dot``, ``sampling_dot``, ``dot``, ``true_dot``
and ``sp_sum``.

Gradients as in Theano: ``structured_dot``'s and ``sampling_dot``'s are
structured (a sparse input's gradient has its pattern); ``dot``'s and
``true_dot``'s are regular (a sparse input's gradient holds every position,
dense for ``dot``); ``sp_sum``'s is structured with ``sparse_grad=True``.
"""
import numpy as np
import scipy.sparse as sp

import tracegrad.tensor as T
from tracegrad.sparse.basic import (SparseOp, as_sparse_grad, col_scale, dense_arg,
                                    dense_from_sparse, mul, row_scale,
                                    sp_ones_like, sparse_arg, transpose, upcast)
from tracegrad.sparse.type import SparseType, as_format, is_sparse_variable
from tracegrad.tensor.type import TensorType
from tracegrad.trace import Apply


def _is_sparse(x):
    return is_sparse_variable(x) or sp.issparse(x)


def _check_inner(x, y, where):
    if x.shape[1] != y.shape[0]:
        raise ValueError(f"{where}: shapes {x.shape} and {y.shape} are not aligned")


class StructuredDot(SparseOp):
    """Sparse ``a`` (m, n) times dense ``b`` (n, k): dense (m, k); times a
    sparse ``b``: sparse of ``a``'s format. ``a``'s gradient is structured."""

    def make_node(self, a, b):
        dtype = upcast(a.dtype, b.dtype)
        out = SparseType(a.format, dtype) if is_sparse_variable(b) else \
            TensorType(dtype, (None, None))
        return Apply(self, [a, b], [out()])

    def impl(self, xp, a, b):
        _check_inner(a, b, "structured_dot")
        dtype = np.result_type(a.dtype, b.dtype).name
        if sp.issparse(b):
            return as_format(a @ b, a.format, dtype)
        return np.asarray(a @ b, dtype=dtype)

    def vjp(self, node, grads):
        a, b = node.inputs
        if is_sparse_variable(b):
            raise NotImplementedError(
                "structured_dot of two sparse matrices has no gradient (as in Theano); "
                "use true_dot, or make the second argument dense")
        g = grads[0]
        return [sampling_dot(g, b, sp_ones_like(a)), structured_dot(transpose(a), g)]


def structured_dot(x, y):
    """The matrix product with at least one sparse argument; the sparse
    argument's gradient is structured (its stored positions only). Sparse
    times dense and dense times sparse are dense."""
    if _is_sparse(x):
        x = sparse_arg(x, "structured_dot")
        y = sparse_arg(y, "structured_dot", 1) if _is_sparse(y) else \
            dense_arg(y, "structured_dot")
        return StructuredDot()(x, y)
    if _is_sparse(y):
        x = dense_arg(x, "structured_dot", 0)
        return StructuredDot()(transpose(sparse_arg(y, "structured_dot", 1)), x.T).T
    raise TypeError("structured_dot needs at least one sparse argument, got "
                    f"{x} and {y}")


class SamplingDot(SparseOp):
    """``p * (x @ y.T)`` for dense ``x`` (m, k), ``y`` (n, k) and sparse ``p``
    (m, n), computed at ``p``'s stored positions only: sparse with ``p``'s
    pattern and format."""

    def make_node(self, x, y, p):
        x = dense_arg(x, "sampling_dot", 0)
        y = dense_arg(y, "sampling_dot", 1)
        p = sparse_arg(p, "sampling_dot", 2)
        return Apply(self, [x, y, p], [SparseType(p.format, upcast(x.dtype, y.dtype,
                                                                   p.dtype))()])

    def impl(self, xp, x, y, p):
        if x.shape[0] != p.shape[0] or y.shape[0] != p.shape[1] or x.shape[1] != y.shape[1]:
            raise ValueError(f"sampling_dot: shapes {x.shape}, {y.shape} and {p.shape} "
                             "do not fit x @ y.T of p's shape")
        dtype = np.result_type(x.dtype, y.dtype, p.dtype)
        major = np.repeat(np.arange(len(p.indptr) - 1), np.diff(p.indptr))
        rows, cols = (major, p.indices) if p.format == "csr" else (p.indices, major)
        values = np.einsum("ij,ij->i", x[rows], y[cols]) * p.data
        out = type(p)((values.astype(dtype), p.indices.copy(), p.indptr.copy()), shape=p.shape)
        return as_format(out, p.format, dtype.name)

    def vjp(self, node, grads):
        x, y, p = node.inputs
        g = as_sparse_grad(grads[0], p.format)
        pg = mul(p, g)
        return [structured_dot(pg, y), structured_dot(transpose(pg), x),
                sampling_dot(x, y, g)]


def sampling_dot(x, y, p):
    """``p * (x @ y.T)`` at ``p``'s stored positions only (dense ``x``, ``y``;
    sparse ``p``): sparse, with ``p``'s pattern and format."""
    return SamplingDot()(x, y, p)


class Dot(SparseOp):
    """The matrix product of two matrices, at least one sparse: dense. Its
    gradient is regular (Theano's ``Dot``): dense, every position."""

    def make_node(self, x, y):
        return Apply(self, [x, y], [TensorType(upcast(x.dtype, y.dtype), (None, None))()])

    def impl(self, xp, x, y):
        _check_inner(x, y, "dot")
        out = x @ y
        if sp.issparse(out):
            out = out.toarray()
        return np.asarray(out, dtype=np.result_type(x.dtype, y.dtype))

    def vjp(self, node, grads):
        x, y = node.inputs
        g = grads[0]
        gx = dot(g, transpose(y)) if is_sparse_variable(y) else T.dot(g, y.T)
        gy = dot(transpose(x), g) if is_sparse_variable(x) else T.dot(x.T, g)
        return [gx, gy]


def _either(x, y, where):
    if not (_is_sparse(x) or _is_sparse(y)):
        raise TypeError(f"{where} needs at least one sparse argument, got {x} and {y}")
    x = sparse_arg(x, where, 0) if _is_sparse(x) else dense_arg(x, where, 0)
    y = sparse_arg(y, where, 1) if _is_sparse(y) else dense_arg(y, where, 1)
    return x, y


def dot(x, y):
    """The matrix product with at least one sparse argument (sparse x dense,
    dense x sparse, sparse x sparse): a dense matrix; regular gradient."""
    return Dot()(*_either(x, y, "dot"))


class TrueDot(SparseOp):
    """Sparse ``x`` times sparse or dense ``y``: sparse of ``x``'s format.
    Regular gradient; with ``grad_preserves_dense`` a dense ``y``'s gradient
    is dense."""

    __props__ = ("grad_preserves_dense",)

    def __init__(self, grad_preserves_dense=True):
        self.grad_preserves_dense = bool(grad_preserves_dense)

    def make_node(self, x, y):
        return Apply(self, [x, y], [SparseType(x.format, upcast(x.dtype, y.dtype))()])

    def impl(self, xp, x, y):
        _check_inner(x, y, "true_dot")
        out = x @ y
        if not sp.issparse(out):
            out = np.asarray(out)
        return as_format(sp.csr_matrix(out) if not sp.issparse(out) else out, x.format,
                         np.result_type(x.dtype, y.dtype).name)

    def vjp(self, node, grads):
        x, y = node.inputs
        g = as_sparse_grad(grads[0], x.format)
        gx = true_dot(g, transpose(y) if is_sparse_variable(y) else y.T)
        gy = true_dot(transpose(x), g)
        if not is_sparse_variable(y) and self.grad_preserves_dense:
            gy = dense_from_sparse(gy)
        return [gx, gy]


def true_dot(x, y, grad_preserves_dense=True):
    """The matrix product with at least one sparse argument, as a sparse
    matrix (regular gradient)."""
    x, y = _either(x, y, "true_dot")
    op = TrueDot(grad_preserves_dense)
    if is_sparse_variable(x):
        return op(x, y)
    return transpose(op(transpose(y), x.T))


class SpSum(SparseOp):
    """The sum of a sparse matrix's values: all (``axis=None``, a scalar) or
    along ``axis`` 0 or 1 (a vector); dense. ``sparse_grad=True`` gives the
    structured gradient (stored positions only)."""

    __props__ = ("axis", "sparse_grad")

    def __init__(self, axis=None, sparse_grad=False):
        if axis not in (None, 0, 1):
            raise ValueError(f"sp_sum: axis must be None, 0 or 1, got {axis!r}")
        self.axis, self.sparse_grad = axis, bool(sparse_grad)

    def make_node(self, x):
        x = sparse_arg(x, "sp_sum")
        shape = () if self.axis is None else (None,)
        return Apply(self, [x], [TensorType(x.dtype, shape)()])

    def impl(self, xp, x):
        if self.axis is None:
            return np.asarray(x.sum(), dtype=x.dtype)
        return np.asarray(x.sum(axis=self.axis), dtype=x.dtype).ravel()

    def vjp(self, node, grads):
        x, = node.inputs
        g = grads[0]
        if self.sparse_grad:
            ones = sp_ones_like(x)
            if self.axis is None:
                return [mul(ones, g)]
            return [col_scale(ones, g) if self.axis == 0 else row_scale(ones, g)]
        full = T.ones_like(dense_from_sparse(x))
        if self.axis is None:
            return [full * g]
        return [full * (g[None, :] if self.axis == 0 else g[:, None])]


def sp_sum(x, axis=None, sparse_grad=False):
    """The sum of sparse ``x`` (all values, or along ``axis``), dense."""
    return SpSum(axis, sparse_grad)(x)

