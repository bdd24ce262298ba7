"""``SparseType`` and the sparse variables (Theano's ``theano.sparse.type``).

A ``SparseType`` is a format (``'csc'`` or ``'csr'``) and a dtype; its values
are ``scipy.sparse`` matrices of that format and dtype, with sorted indices.
Every sparse value is 2-d and its shape is known only when the graph runs.
Values are not arrays (``Type.array_values`` is false): the runtime keeps
what the sparse ops return, elementwise fusion never sees them (it only
fuses elementwise tensor ops), and inputs are checked by ``filter``.
"""
import numpy as np
import scipy.sparse as sp

from tracegrad.evaluate import evaluate
from tracegrad.shared import SHARED_CONSTRUCTORS, Container, SharedVariable
from tracegrad.shared_access import UPDATE_LOCK, read_shared
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.trace import Constant, Type, Variable

FORMATS = ("csc", "csr")
_SCIPY_CLASS = {"csc": sp.csc_matrix, "csr": sp.csr_matrix}


class SparseType(Type):
    """The type of a 2-d ``scipy.sparse`` matrix of ``format`` and ``dtype``:
    ``SparseType('csr', 'float64')`` (Theano's argument order)."""

    ndim = 2
    broadcastable = (False, False)

    def __init__(self, format, dtype=None, name=None):
        if format not in FORMATS:
            raise ValueError(f"SparseType: format must be one of {FORMATS}, got {format!r}")
        self.format = format
        self.dtype = canonical_dtype(dtype)
        if self.dtype == "float16":
            raise TypeError("SparseType: scipy.sparse has no float16 matrices")
        self.name = name

    def clone(self, format=None, dtype=None):
        return SparseType(format or self.format, dtype or self.dtype)

    def __eq__(self, other):
        return (isinstance(other, SparseType) and self.format == other.format
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((SparseType, self.format, self.dtype))

    def is_super(self, other):
        """True when every value of ``other`` is also a value of ``self``."""
        return self == other

    def __str__(self):
        return f"SparseType({self.format}, {self.dtype})"

    __repr__ = __str__

    def value_matches(self, value):
        """Cheap check that ``value`` already is a value of this type."""
        return (sp.issparse(value) and value.format == self.format
                and value.dtype.name == self.dtype)

    def filter(self, value, strict=False, allow_downcast=None, what=None):
        """``value`` as a scipy.sparse matrix of this type, or ``TypeError``.

        Another sparse format is converted (not when ``strict``); another
        dtype is cast when that loses nothing (NumPy promotion gives this
        dtype) or ``allow_downcast`` is true. Dense values are refused: a
        sparse input takes only sparse matrices."""
        what = what or f"a value of type {self}"
        if isinstance(value, Variable):
            raise TypeError(f"{what} expects a value, got the symbolic variable {value}")
        if not sp.issparse(value):
            raise TypeError(
                f"{what} takes a scipy.sparse matrix, got {type(value).__name__}; convert "
                f"a dense array with scipy.sparse.{self.format}_matrix(value)")
        if value.ndim != 2:
            raise TypeError(f"{what} takes a 2-d sparse matrix, got ndim {value.ndim}")
        if strict and (value.format != self.format or value.dtype.name != self.dtype):
            raise TypeError(f"{what} is strict: it takes only {self.format} matrices of "
                            f"dtype {self.dtype}, got {value.format} of dtype {value.dtype}")
        if value.dtype.name != self.dtype:
            if not allow_downcast and np.promote_types(value.dtype, self.dtype) != self.dtype:
                raise TypeError(
                    f"{what} has type {self} and cannot take a sparse matrix of dtype "
                    f"{value.dtype} without loss of precision; cast it first "
                    "(value.astype(...)) or pass allow_input_downcast=True")
        return as_format(value, self.format, self.dtype)


def as_format(value, format, dtype):
    """``value`` (any scipy.sparse matrix) as a ``scipy.sparse`` *matrix* of
    ``format`` and ``dtype`` with sorted indices and no duplicates (the form
    every op expects and returns); the same object when it already is one."""
    cls = _SCIPY_CLASS[format]
    if type(value) is not cls or value.format != format:
        value = cls(value)
    if value.dtype.name != dtype:
        value = value.astype(dtype)
    if not value.has_canonical_format:
        value = value.copy()
        value.sum_duplicates()   # (sorts the indices too)
    return value


# The op functions the operators below call; ``tracegrad.sparse.basic`` hands
# itself over at import (it builds on this module).
_ops = None


class _SparseMixin:
    """Operators and attributes of sparse variables (Theano's ``_sparse_py_operators``)."""

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def format(self):
        return self.type.format

    @property
    def ndim(self):
        return 2

    @property
    def broadcastable(self):
        return (False, False)

    @property
    def shape(self):
        """The symbolic shape, an int64 vector of length 2."""
        return _ops.csm_shape(self)

    @property
    def T(self):
        return _ops.transpose(self)

    def toarray(self):
        """The dense matrix (``dense_from_sparse``)."""
        return _ops.dense_from_sparse(self)

    def eval(self, inputs_to_values=None):
        """Evaluate with the reference evaluator: ``x.eval({x: matrix})``."""
        return evaluate([self], inputs_to_values or {})[0]

    def sum(self, axis=None, sparse_grad=False):
        """``sp_sum(self, axis, sparse_grad)``: dense."""
        return _ops.sp_sum(self, axis=axis, sparse_grad=sparse_grad)

    def zeros_like(self):
        return _ops.sp_zeros_like(self)

    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __abs__(self): return _ops.abs_(self)
    def __pos__(self): return self
    def __matmul__(self, other): return _ops.dot(self, other)
    def __rmatmul__(self, other): return _ops.dot(other, self)

    def __bool__(self):
        raise TypeError(f"the truth value of the sparse variable {self} is not known "
                        "until the graph runs")

    # Variables are dictionary keys all over the graph code: identity hash.
    __hash__ = object.__hash__


class SparseVariable(_SparseMixin, Variable):
    """A symbolic sparse matrix."""

    __slots__ = ()


SparseType.variable_class = SparseVariable


class SparseConstant(_SparseMixin, Constant):
    """A constant ``scipy.sparse`` matrix in a graph."""

    __slots__ = ()

    def signature(self):
        d = self.data
        return (self.type, d.shape, d.data.tobytes(), d.indices.tobytes(), d.indptr.tobytes())

    def __str__(self):
        if self.name is not None:
            return self.name
        return f"SparseConstant{{{self.format}, {self.data.shape}, nnz={self.data.nnz}}}"


class SparseSharedVariable(_SparseMixin, SharedVariable):
    """A shared variable holding a ``scipy.sparse`` matrix (CPU only)."""

    def get_value(self, borrow=False, return_internal_type=False):
        """The matrix: a copy, or the stored one itself with ``borrow=True``."""
        if borrow:
            return self.container.value
        return read_shared(lambda: self.container.value.copy())

    def set_value(self, value, borrow=False):
        """Replace the matrix (any shape; converted to this variable's format;
        the dtype is cast only when nothing is lost, else ``TypeError``)."""
        label = f"shared variable {self.name!r}" if self.name else "a shared variable"
        new = self.type.filter(value, what=f"set_value: {label}")
        if new is value and not borrow:
            new = new.copy()
        with UPDATE_LOCK:
            self.container.value = new


def _shared_sparse(value, name=None, borrow=False, device=None):
    """The ``tg.shared`` constructor of scipy.sparse matrices (``None`` for
    other values): csc and csr keep their format, others become csr."""
    if not sp.issparse(value):
        return None
    if device not in (None, "cpu"):
        raise TypeError("shared(): sparse matrices live on the CPU only (device='cpu')")
    fmt = value.format if value.format in FORMATS else "csr"
    stype = SparseType(fmt, value.dtype)
    matrix = stype.filter(value, what="the value given to shared()")
    if matrix is value and not borrow:
        matrix = matrix.copy()
    return SparseSharedVariable(stype, matrix, name=name, device="cpu",
                                container=Container(matrix))


SHARED_CONSTRUCTORS.append(_shared_sparse)


def shared(value, name=None, strict=False, allow_downcast=None, borrow=False, format=None):
    """A sparse shared variable (Theano's ``theano.sparse.shared``);
    ``format`` converts the matrix first."""
    if not sp.issparse(value):
        raise TypeError(f"sparse.shared takes a scipy.sparse matrix, got "
                        f"{type(value).__name__}")
    if format is not None:
        value = as_format(value, format, value.dtype.name)
    return _shared_sparse(value, name, borrow)


# ------------------------------------------------------------ constructors
def _matrix_constructor(format):
    def make(name=None, dtype=None):
        return SparseType(format, dtype)(name)
    make.__name__ = f"{format}_matrix"
    make.__doc__ = (f"A symbolic {format} sparse matrix: ``{format}_matrix('x', "
                    "dtype='float32')`` (default ``config.floatX``).")
    return make


csc_matrix = _matrix_constructor("csc")
csr_matrix = _matrix_constructor("csr")
csc_dmatrix = SparseType("csc", "float64")
csr_dmatrix = SparseType("csr", "float64")
csc_fmatrix = SparseType("csc", "float32")
csr_fmatrix = SparseType("csr", "float32")
csc_imatrix = SparseType("csc", "int32")
csr_imatrix = SparseType("csr", "int32")
csc_lmatrix = SparseType("csc", "int64")
csr_lmatrix = SparseType("csr", "int64")


def is_sparse_variable(x):
    return isinstance(x, Variable) and isinstance(x.type, SparseType)


def is_dense_variable(x):
    return isinstance(x, Variable) and isinstance(x.type, TensorType)


def as_sparse_variable(x, name=None):
    """A sparse variable from a sparse variable (itself) or a scipy.sparse
    matrix (a constant; csc and csr keep their format, others become csr).
    Dense values and tensors are refused."""
    if isinstance(x, Variable):
        if isinstance(x.type, SparseType):
            return x
        raise TypeError(f"{x} of type {x.type} is not sparse; convert it with "
                        "csr_from_dense or csc_from_dense")
    if not sp.issparse(x):
        raise TypeError(f"as_sparse_variable takes a scipy.sparse matrix or a sparse "
                        f"variable, got {type(x).__name__}")
    fmt = x.format if x.format in FORMATS else "csr"
    stype = SparseType(fmt, x.dtype)
    return SparseConstant(stype, stype.filter(x).copy(), name)


as_sparse = as_sparse_variable


def as_sparse_or_tensor_variable(x, name=None):
    """A sparse variable for sparse input, a tensor variable for anything else."""
    if is_sparse_variable(x) or sp.issparse(x):
        return as_sparse_variable(x, name)
    return _ops.as_tensor_variable(x, name)
