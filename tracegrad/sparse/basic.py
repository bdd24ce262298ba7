"""Sparse ops (Theano's ``theano.sparse.basic``): conversions, the CSM
constructor and its properties, transpose, elementwise ``add``/``mul``, the
structured elementwise functions, row/column scaling and stacking.

Few primitives, many composites: every elementwise function that keeps the
sparsity pattern (``sqr``, ``sin``, ``structured_exp``, ``sp_ones_like``...)
is the dense op applied to the stored values, ``CSM(f(data), indices,
indptr, shape)`` of ``csm_properties(x)`` (Theano's ``structured_monoid``),
so its forward and gradient are the dense op's. Gradients are structured as
in Theano: the gradient of a sparse input has that input's pattern (only
stored positions), except ``add`` of two sparse matrices and the ops whose
Theano gradient is regular (``dot``, ``true_dot``, ``sp_sum(sparse_grad=False)``).
"""
from functools import partial

import numpy as np
import scipy.sparse as sp

import tracegrad.tensor as T
from tracegrad.sparse.type import (_SCIPY_CLASS, SparseType, as_format, as_sparse_variable,
                                   is_dense_variable, is_sparse_variable)
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op, Variable


# ------------------------------------------------------------ argument checks
def _describe(x):
    return f"{x} of type {x.type}" if isinstance(x, Variable) else type(x).__name__


def sparse_arg(x, where, k=0):
    """``x`` as a sparse variable, or ``TypeError`` naming ``where`` and the argument."""
    if sp.issparse(x):
        return as_sparse_variable(x)
    if not is_sparse_variable(x):
        raise TypeError(f"{where}: argument {k} must be sparse (a sparse variable or a "
                        f"scipy.sparse matrix), got {_describe(x)}; convert a dense one "
                        "with csr_from_dense or csc_from_dense")
    return x


def dense_arg(x, where, k=1, ndims=(2,)):
    """``x`` as a tensor variable of one of ``ndims``, or ``TypeError``."""
    if is_sparse_variable(x) or sp.issparse(x):
        raise TypeError(f"{where}: argument {k} must be dense, got the sparse {_describe(x)}")
    x = as_tensor_variable(x)
    if x.ndim not in ndims:
        raise TypeError(f"{where}: argument {k} must have ndim in {ndims}, got {x} with "
                        f"ndim {x.ndim}")
    return x


def same_format(x, y, where):
    if x.format != y.format:
        raise TypeError(f"{where}: both sparse arguments must have the same format, got "
                        f"{x.format} and {y.format}; convert one, e.g. "
                        "csr_from_dense(dense_from_sparse(x))")


def upcast(*dtypes):
    return np.result_type(*dtypes).name


def as_sparse_grad(g, format):
    """The gradient ``g`` of a sparse output as a sparse variable of ``format``."""
    if is_dense_variable(g):
        return SparseFromDense(format)(g)
    return g


class SparseOp(Op):
    """An op over sparse values: CPU only (scipy.sparse), and never
    constant-folded (the folding pass makes tensor constants of values)."""

    constant_foldable = False

    def impl_for(self, xp):
        # Refused when the function is compiled for a GPU, not at its first call.
        if xp is not np:
            raise TypeError(f"{self.name}: sparse matrices live on the CPU (scipy.sparse); "
                            "compile functions of sparse variables with device='cpu'")
        return partial(self.impl, xp)


# ------------------------------------------------------------ conversions
class DenseFromSparse(SparseOp):
    """The dense matrix of a sparse one. ``sparse_grad=True`` (Theano's
    default) gives the structured gradient: the output gradient at the
    input's stored positions only."""

    __props__ = ("sparse_grad",)

    def __init__(self, sparse_grad=True):
        self.sparse_grad = bool(sparse_grad)

    def make_node(self, x):
        x = sparse_arg(x, "dense_from_sparse")
        return Apply(self, [x], [TensorType(x.dtype, (None, None))()])

    def impl(self, xp, x):
        return x.toarray()

    def vjp(self, node, grads):
        x, = node.inputs
        g = dense_arg(grads[0], "dense_from_sparse gradient")
        if self.sparse_grad:
            return [mul(sp_ones_like(x), g)]
        return [SparseFromDense(x.format)(g)]


class SparseFromDense(SparseOp):
    """The sparse matrix of ``format`` holding a dense matrix's nonzeros."""

    __props__ = ("format",)

    def __init__(self, format):
        self.format = format

    def make_node(self, x):
        x = dense_arg(x, f"{self.format}_from_dense", 0)
        return Apply(self, [x], [SparseType(self.format, x.dtype)()])

    def impl(self, xp, x):
        return as_format(_SCIPY_CLASS[self.format](x), self.format, x.dtype.name)

    def vjp(self, node, grads):
        g = grads[0]
        return [dense_from_sparse(g) if is_sparse_variable(g) else g]


dense_from_sparse = DenseFromSparse()
todense = dense_from_sparse
csr_from_dense = SparseFromDense("csr")
csc_from_dense = SparseFromDense("csc")


# ------------------------------------------------------------ CSM
def _positions(format, indices, indptr):
    """Row and column of every stored entry, in storage order."""
    major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return (major, indices) if format == "csr" else (indices, major)


def _values_at(x, rows, cols):
    """The values of sparse ``x`` at the positions ``rows``, ``cols``."""
    if len(rows) == 0:   # (scipy's fancy indexing returns a matrix then)
        return np.zeros(0, x.dtype)
    return np.asarray(x.tocsr()[rows, cols]).ravel()


class CSM(SparseOp):
    """A sparse matrix from its ``data``, ``indices``, ``indptr`` and ``shape``
    (the scipy.sparse storage of ``format``; duplicates are summed). Its
    gradient (data only) is the output gradient at the stored positions."""

    __props__ = ("format",)

    def __init__(self, format):
        if format not in _SCIPY_CLASS:
            raise ValueError(f"CSM: format must be 'csc' or 'csr', got {format!r}")
        self.format = format

    def make_node(self, data, indices, indptr, shape):
        data = dense_arg(data, "CSM", 0, (1,))
        indices, indptr, shape = (dense_arg(v, "CSM", k, (1,))
                                  for k, v in ((1, indices), (2, indptr), (3, shape)))
        for k, v in ((1, indices), (2, indptr), (3, shape)):
            if v.dtype[:3] not in ("int", "uin"):
                raise TypeError(f"CSM: argument {k} must be integers, got dtype {v.dtype}")
        return Apply(self, [data, indices, indptr, shape],
                     [SparseType(self.format, data.dtype)()])

    def impl(self, xp, data, indices, indptr, shape):
        # (copies: the matrix must not share the buffers of its inputs)
        value = _SCIPY_CLASS[self.format]((data.copy(), indices.copy(), indptr.copy()),
                                          shape=tuple(int(s) for s in shape))
        return as_format(value, self.format, data.dtype.name)

    def vjp(self, node, grads):
        data, indices, indptr, _ = node.inputs
        return [CSMGrad(self.format)(indices, indptr, grads[0], data), None, None, None]


class CSMGrad(SparseOp):
    """The values of ``g`` (sparse or dense) at the positions ``indices``,
    ``indptr`` of ``format`` describe, in storage order, as ``like``'s dtype."""

    __props__ = ("format",)

    def __init__(self, format):
        self.format = format

    def make_node(self, indices, indptr, g, like):
        if not is_sparse_variable(g):
            g = as_tensor_variable(g)
        return Apply(self, [indices, indptr, g, like], [TensorType(like.dtype, (None,))()])

    def impl(self, xp, indices, indptr, g, like):
        rows, cols = _positions(self.format, indices, indptr)
        if sp.issparse(g):
            return _values_at(g, rows, cols).astype(like.dtype)
        return g[rows, cols].astype(like.dtype)

    def vjp(self, node, grads):
        # Linear in ``g``: its transpose puts the values back at the positions.
        indices, indptr, g, _ = node.inputs
        if is_sparse_variable(g):
            shape = csm_shape(g)
            back = CSM(self.format)(T.cast(grads[0], g.dtype), indices, indptr, shape)
            return [None, None, back, None]
        back = CSM(self.format)(T.cast(grads[0], g.dtype), indices, indptr, g.shape)
        return [None, None, dense_from_sparse(back), None]


class CSMProperties(SparseOp):
    """``(data, indices, indptr, shape)`` of a sparse matrix; the gradient of
    ``data`` goes back as the sparse matrix with the input's pattern."""

    # The three arrays are the input's own buffers.
    view_map = {0: [0], 1: [0], 2: [0]}

    def make_node(self, x):
        x = sparse_arg(x, "csm_properties")
        return Apply(self, [x], [TensorType(x.dtype, (None,))(), TensorType("int32", (None,))(),
                                 TensorType("int32", (None,))(), TensorType("int64", (2,))()])

    def impl(self, xp, x):
        n = x.indptr[-1]
        return x.data[:n], x.indices[:n], x.indptr, np.array(x.shape, dtype="int64")

    def vjp(self, node, grads):
        x, = node.inputs
        g = grads[0]
        if g is None:
            return [None]
        _, indices, indptr, shape = csm_properties(x)
        return [CSM(x.format)(g, indices, indptr, shape)]


csm_properties = CSMProperties()
CSC = CSM("csc")
CSR = CSM("csr")


def csm_data(x):
    """The stored values of ``x`` (storage order)."""
    return csm_properties(x)[0]


def csm_indices(x):
    return csm_properties(x)[1]


def csm_indptr(x):
    return csm_properties(x)[2]


def csm_shape(x):
    return csm_properties(x)[3]


# ------------------------------------------------------------ transpose
class Transpose(SparseOp):
    """The transpose: a csr matrix becomes csc and the other way round (no copy
    of the values in scipy, as Theano)."""

    def make_node(self, x):
        x = sparse_arg(x, "transpose")
        fmt = "csc" if x.format == "csr" else "csr"
        return Apply(self, [x], [SparseType(fmt, x.dtype)()])

    def impl(self, xp, x):
        fmt = "csc" if x.format == "csr" else "csr"
        return as_format(x.T, fmt, x.dtype.name)

    def vjp(self, node, grads):
        return [transpose(as_sparse_grad(grads[0], node.outputs[0].format))]


transpose = Transpose()


# ------------------------------------------------------------ add and mul
class AddSS(SparseOp):
    """Sparse + sparse (same format): sparse, the union of the patterns."""

    def make_node(self, x, y):
        same_format(x, y, "add")
        return Apply(self, [x, y], [SparseType(x.format, upcast(x.dtype, y.dtype))()])

    def impl(self, xp, x, y):
        # The union of the patterns whatever the values (scipy's ``x + y``
        # drops entries that cancel, and with them their gradient).
        dtype = np.result_type(x.dtype, y.dtype)
        a, b = x.tocoo(), y.tocoo()
        out = sp.coo_matrix((np.concatenate([a.data.astype(dtype), b.data.astype(dtype)]),
                             (np.concatenate([a.row, b.row]), np.concatenate([a.col, b.col]))),
                            shape=x.shape)
        return as_format(out, x.format, dtype.name)

    def vjp(self, node, grads):
        g = as_sparse_grad(grads[0], node.outputs[0].format)
        return [g, g]


class AddSD(SparseOp):
    """Sparse + dense (same shape): dense. The sparse input's gradient is structured."""

    def make_node(self, x, y):
        return Apply(self, [x, y], [TensorType(upcast(x.dtype, y.dtype), (None, None))()])

    def impl(self, xp, x, y):
        if x.shape != y.shape:
            raise ValueError(f"add: shapes {x.shape} (sparse) and {y.shape} (dense) differ")
        return np.asarray(x + y)

    def vjp(self, node, grads):
        x, _ = node.inputs
        g = grads[0]
        return [mul(sp_ones_like(x), g), g]


def add(x, y):
    """``x + y`` with at least one sparse argument: sparse + sparse is sparse
    (both of one format), sparse + dense is dense."""
    if sp.issparse(x) or is_sparse_variable(x):
        x = sparse_arg(x, "add")
        if sp.issparse(y) or is_sparse_variable(y):
            return AddSS()(x, sparse_arg(y, "add", 1))
        return AddSD()(x, dense_arg(y, "add"))
    if sp.issparse(y) or is_sparse_variable(y):
        return AddSD()(sparse_arg(y, "add", 1), dense_arg(x, "add", 0))
    raise TypeError(f"sparse.add needs a sparse argument, got {_describe(x)} and "
                    f"{_describe(y)}")


def sub(x, y):
    """``x - y`` (``add(x, -y)``)."""
    return add(x, neg(y) if is_sparse_variable(y) or sp.issparse(y)
               else -as_tensor_variable(y))


def _pattern(x):
    """``x`` with every stored value 1 (stored zeros included)."""
    return x.__class__((np.ones(x.indptr[-1]), x.indices, x.indptr), shape=x.shape)




class MulSS(SparseOp):
    """Elementwise sparse * sparse (same format): sparse, the intersection."""

    def make_node(self, x, y):
        same_format(x, y, "mul")
        return Apply(self, [x, y], [SparseType(x.format, upcast(x.dtype, y.dtype))()])

    def impl(self, xp, x, y):
        if x.shape != y.shape:
            raise ValueError(f"mul: sparse shapes {x.shape} and {y.shape} differ")
        # The intersection of the patterns whatever the values (scipy's
        # ``multiply`` drops zero products, and with them their gradient).
        both = sp.coo_matrix(_pattern(x).multiply(_pattern(y)))
        rows, cols = both.row, both.col
        both.data = _values_at(x, rows, cols) * _values_at(y, rows, cols)
        return as_format(both, x.format, np.result_type(x.dtype, y.dtype).name)

    def vjp(self, node, grads):
        x, y = node.inputs
        g = as_sparse_grad(grads[0], x.format)
        return [mul(y, g), mul(x, g)]


class MulSD(SparseOp):
    """Elementwise sparse * dense: sparse with ``x``'s pattern. ``y`` is a
    scalar or a matrix broadcasting to ``x``'s shape (``row_scale``,
    ``col_scale``). Both gradients are structured."""

    def make_node(self, x, y):
        return Apply(self, [x, y], [SparseType(x.format, upcast(x.dtype, y.dtype))()])

    def impl(self, xp, x, y):
        dtype = np.result_type(x.dtype, y.dtype).name
        if y.ndim == 0:
            return as_format(x * y, x.format, dtype)
        if any(a not in (b, 1) for a, b in zip(y.shape, x.shape)):
            raise ValueError(f"mul: the dense shape {y.shape} does not broadcast to the "
                             f"sparse shape {x.shape}")
        # x's pattern exactly, even where y is 0 (the gradient of y needs it)
        out = x.copy()
        rows, cols = _positions(x.format, x.indices, x.indptr)
        y = np.broadcast_to(y, x.shape)
        out.data = x.data[:len(rows)] * y[rows, cols]
        return as_format(out, x.format, dtype)

    def vjp(self, node, grads):
        x, y = node.inputs
        g = as_sparse_grad(grads[0], x.format)
        gy = dense_from_sparse(mul(x, g))
        if y.ndim == 0:
            gy = gy.sum()
        else:
            axes = [k for k, b in enumerate(y.broadcastable) if b]
            if axes:
                gy = gy.sum(axis=axes, keepdims=True)
        return [mul(g, y), gy]


def mul(x, y):
    """Elementwise ``x * y`` with at least one sparse argument: the result
    is sparse (sparse * sparse needs one format; a dense argument is a
    scalar or a matrix broadcasting to the sparse one's shape)."""
    if sp.issparse(x) or is_sparse_variable(x):
        x = sparse_arg(x, "mul")
        if sp.issparse(y) or is_sparse_variable(y):
            return MulSS()(x, sparse_arg(y, "mul", 1))
        return MulSD()(x, dense_arg(y, "mul", 1, (0, 2)))
    if sp.issparse(y) or is_sparse_variable(y):
        return MulSD()(sparse_arg(y, "mul", 1), dense_arg(x, "mul", 0, (0, 2)))
    raise TypeError(f"sparse.mul needs a sparse argument, got {_describe(x)} and "
                    f"{_describe(y)}")


def row_scale(x, s):
    """Row ``i`` of sparse ``x`` times ``s[i]`` (``s`` a dense vector)."""
    return mul(sparse_arg(x, "row_scale"), dense_arg(s, "row_scale", 1, (1,))[:, None])


def col_scale(x, s):
    """Column ``j`` of sparse ``x`` times ``s[j]`` (``s`` a dense vector)."""
    return mul(sparse_arg(x, "col_scale"), dense_arg(s, "col_scale", 1, (1,))[None, :])


# ------------------------------------------------------------ structured elementwise
def structured_monoid(dense_fn, name):
    """``f(x, *args)``: ``dense_fn`` applied to the stored values of sparse
    ``x`` only (Theano's ``structured_monoid``); the pattern is kept."""
    def fn(x, *args):
        x = sparse_arg(x, name)
        data, indices, indptr, shape = csm_properties(x)
        return CSM(x.format)(dense_fn(data, *args), indices, indptr, shape)
    fn.__name__ = name
    fn.__doc__ = (f"``{dense_fn.__name__}`` of the stored values of a sparse matrix "
                  "(the sparsity pattern is kept).")
    return fn


# Each of these maps 0 to 0, so the result is the dense function's, exactly.
sqr = structured_monoid(T.sqr, "sqr")
sqrt = structured_monoid(T.sqrt, "sqrt")
abs_ = structured_monoid(T.abs, "abs_")
neg = structured_monoid(T.neg, "neg")
sin = structured_monoid(T.sin, "sin")
tan = structured_monoid(T.tan, "tan")
arcsin = structured_monoid(T.arcsin, "arcsin")
arctan = structured_monoid(T.arctan, "arctan")
sinh = structured_monoid(T.sinh, "sinh")
tanh = structured_monoid(T.tanh, "tanh")
arcsinh = structured_monoid(T.arcsinh, "arcsinh")
arctanh = structured_monoid(T.arctanh, "arctanh")
expm1 = structured_monoid(T.expm1, "expm1")
log1p = structured_monoid(T.log1p, "log1p")
deg2rad = structured_monoid(T.deg2rad, "deg2rad")
rad2deg = structured_monoid(T.rad2deg, "rad2deg")
floor = structured_monoid(T.floor, "floor")
ceil = structured_monoid(T.ceil, "ceil")
trunc = structured_monoid(T.trunc, "trunc")
rint = structured_monoid(T.rint, "rint")
sgn = structured_monoid(T.sign, "sgn")
abs = abs_  # noqa: A001 (Theano's name too)

# Applied to the stored values only (f(0) may not be 0): Theano's structured_*.
structured_sigmoid = structured_monoid(T.sigmoid, "structured_sigmoid")
structured_exp = structured_monoid(T.exp, "structured_exp")
structured_log = structured_monoid(T.log, "structured_log")
structured_pow = structured_monoid(T.pow, "structured_pow")
structured_minimum = structured_monoid(T.minimum, "structured_minimum")
structured_maximum = structured_monoid(T.maximum, "structured_maximum")
structured_add = structured_monoid(T.add, "structured_add")
sp_ones_like = structured_monoid(T.ones_like, "sp_ones_like")


def sp_zeros_like(x):
    """A sparse matrix of ``x``'s shape, format and dtype with nothing stored."""
    x = sparse_arg(x, "sp_zeros_like")
    data, indices, indptr, shape = csm_properties(x)
    return CSM(x.format)(data[:0], indices[:0], T.zeros_like(indptr), shape)


# ------------------------------------------------------------ stacking
class Stack(SparseOp):
    """Sparse blocks side by side (``axis=1``, ``hstack``) or one above the
    other (``axis=0``, ``vstack``), as a sparse matrix of ``format``."""

    __props__ = ("axis", "format", "dtype")

    def __init__(self, axis, format, dtype):
        self.axis, self.format, self.dtype = axis, format, dtype

    def make_node(self, *blocks):
        return Apply(self, list(blocks), [SparseType(self.format, self.dtype)()])

    def impl(self, xp, *blocks):
        join = sp.hstack if self.axis == 1 else sp.vstack
        return as_format(join(blocks, format=self.format), self.format, self.dtype)

    def vjp(self, node, grads):
        g = as_sparse_grad(grads[0], self.format)
        parts = StackGrad(self.axis)(g, *node.inputs)
        return list(parts) if len(node.inputs) > 1 else [parts]


class StackGrad(SparseOp):
    """The pieces of ``g`` matching each block of a ``Stack`` (same format
    and dtype as each block)."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, g, *blocks):
        return Apply(self, [g, *blocks], [b.type() for b in blocks])

    def impl(self, xp, g, *blocks):
        g = g.tocsc() if self.axis == 1 else g.tocsr()
        out, start = [], 0
        for b in blocks:
            stop = start + b.shape[self.axis]
            piece = g[:, start:stop] if self.axis == 1 else g[start:stop, :]
            out.append(as_format(piece, b.format, b.dtype.name))
            start = stop
        return tuple(out)


def _stack(blocks, axis, format, dtype, where):
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise TypeError(f"{where} takes a non-empty list of sparse matrices")
    blocks = [sparse_arg(b, where, k) for k, b in enumerate(blocks)]
    if format not in (None, "csc", "csr"):
        raise ValueError(f"{where}: format must be 'csc', 'csr' or None, got {format!r}")
    dtype = upcast(*[b.dtype for b in blocks]) if dtype is None else dtype
    return Stack(axis, format or ("csc" if axis == 1 else "csr"), dtype)(*blocks)


def hstack(blocks, format=None, dtype=None):
    """The sparse blocks side by side (default format csc)."""
    return _stack(blocks, 1, format, dtype, "hstack")


def vstack(blocks, format=None, dtype=None):
    """The sparse blocks one above the other (default format csr)."""
    return _stack(blocks, 0, format, dtype, "vstack")


__all__ = [
    "DenseFromSparse", "SparseFromDense", "dense_from_sparse", "todense", "csr_from_dense",
    "csc_from_dense", "CSM", "CSMGrad", "CSMProperties", "csm_properties", "CSC", "CSR",
    "csm_data", "csm_indices", "csm_indptr", "csm_shape", "Transpose", "transpose",
    "AddSS", "AddSD", "add", "sub", "MulSS", "MulSD", "mul", "row_scale", "col_scale",
    "structured_monoid", "sqr", "sqrt", "abs_", "neg", "sin", "tan", "arcsin", "arctan",
    "sinh", "tanh", "arcsinh", "arctanh", "expm1", "log1p", "deg2rad", "rad2deg", "floor",
    "ceil", "trunc", "rint", "sgn", "structured_sigmoid", "structured_exp", "structured_log",
    "structured_pow", "structured_minimum", "structured_maximum", "structured_add",
    "sp_ones_like", "sp_zeros_like", "Stack", "StackGrad", "hstack", "vstack",
]
