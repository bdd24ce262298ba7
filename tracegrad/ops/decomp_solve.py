"""The rest of ``numpy.linalg``: ``lstsq``, ``matrix_rank``, ``multi_dot``,
``tensorsolve``, ``tensorinv``, ``cond``.

- ``lstsq`` returns NumPy's ``(x, residuals, rank, s)``. ``x`` is one op whose
  vjp is that of ``pinv(a) @ b`` (Golub & Pereyra's derivative of the
  pseudo-inverse: exact where the rank is locally constant, in particular for
  full-rank ``a``); ``s`` is ``svdvals(a)`` (differentiable); ``rank`` is an
  integer; ``residuals`` (an empty array unless ``a`` has full column rank and
  more rows than columns, a length known only when it runs) has the gradient
  of ``sum(abs(b - a @ x)**2, axis=0)`` (0 where it is empty). Each output is
  its own node, so asking for several runs LAPACK more than once.
- ``matrix_rank``: an integer, no gradient.
- ``multi_dot``, ``tensorsolve``, ``tensorinv``, ``cond`` are composed of
  ``matmul``, ``solve``, ``inv``, ``svdvals``, ``norm`` and reshapes, and
  differentiate through them. ``cond`` with ``p`` other than None/2/-2 inverts
  ``x``, so a singular ``x`` raises ``LinAlgError`` where NumPy returns inf.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.base import format_shape, is_differentiable, sum_to
from tracegrad.ops.decomp import _host_linalg, check_finite
from tracegrad.ops.elemwise_numpy import where
from tracegrad.ops.linalg import matmul
from tracegrad.ops.nlinalg import (LinAlgError, Pinv, _as_inexact, _mT, _real_dtype,
                                   matrix_inverse, norm, solve, svdvals)
from tracegrad.ops.reduce import any as _any, max as _max, min as _min
from tracegrad.ops.shape import dimshuffle, reshape as _reshape
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, resolve_weak
from tracegrad.trace import Apply, Op

__all__ = ["lstsq", "matrix_rank", "multi_dot", "tensorsolve", "tensorinv", "cond",
           "LstsqSolve", "LstsqAux", "FillEmpty", "DropIfEmpty", "MatrixRank"]


# ------------------------------------------------------------------ lstsq
def _lstsq_inputs(a, b):
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim != 2:
        raise LinAlgError(f"lstsq: {a.ndim}-dimensional array given for a. Array must "
                          "be two-dimensional")
    if b.ndim not in (1, 2):
        raise LinAlgError(f"lstsq: b must be 1- or 2-dimensional, got shape "
                          f"{format_shape(b.type.shape)}")
    a, b = resolve_weak([_as_inexact(a, "lstsq"), _as_inexact(b, "lstsq")])
    m, mb = a.type.shape[0], b.type.shape[0]
    if m is not None and mb is not None and m != mb:
        raise LinAlgError(f"lstsq: incompatible dimensions: a of shape "
                          f"{format_shape(a.type.shape)}, b of shape "
                          f"{format_shape(b.type.shape)}")
    dtype = np.result_type(a.dtype, b.dtype).name
    return ew.cast(a, dtype) if a.dtype != dtype else a, \
        ew.cast(b, dtype) if b.dtype != dtype else b


class LstsqSolve(Op):
    """``x`` of ``np.linalg.lstsq(a, b, rcond)``; vjp that of ``pinv(a) @ b``."""

    __props__ = ("rcond",)

    def __init__(self, rcond=None):
        self.rcond = None if rcond is None else float(rcond)

    def make_node(self, a, b):
        a, b = _lstsq_inputs(a, b)
        shape = (a.type.shape[1],) + b.type.shape[1:]
        return Apply(self, [a, b], [TensorType(a.dtype, shape)()])

    def impl(self, xp, a, b):
        check_finite(xp, "lstsq", a, b)
        return xp.linalg.lstsq(a, b, rcond=self.rcond)[0]

    def vjp(self, node, output_grads):
        a, b = node.inputs
        g = output_grads[0]
        p = Pinv(self.rcond)(a)          # pinv's cutoff is lstsq's: rcond * max(s)
        g2, b2 = (g, b) if b.ndim == 2 else (dimshuffle(g, [0, "x"]), dimshuffle(b, [0, "x"]))
        ga = p.owner.op.vjp(p.owner, [matmul(g2, _mT(b2))])[0]
        gb = matmul(_mT(p), g)
        return [_grad(ga, a), _grad(gb, b)]


def _grad(g, x):
    if not is_differentiable(x):
        return None
    return ew.match_gradient_dtype(sum_to(g, x), x)


class LstsqAux(Op):
    """``residuals`` or ``rank`` of ``np.linalg.lstsq`` (no gradient)."""

    __props__ = ("part", "rcond")

    def __init__(self, part, rcond=None):
        if part not in ("residuals", "rank"):
            raise ValueError(f"LstsqAux: part must be 'residuals' or 'rank', got {part!r}")
        self.part = part
        self.rcond = None if rcond is None else float(rcond)

    def make_node(self, a, b):
        a, b = _lstsq_inputs(a, b)
        if self.part == "rank":
            # (LAPACK's integer, like NumPy's)
            return Apply(self, [a, b], [TensorType("int32", ())()])
        return Apply(self, [a, b], [TensorType(_real_dtype(a.dtype), (None,))()])

    def impl(self, xp, a, b):
        check_finite(xp, "lstsq", a, b)
        _, resid, rank, _ = _host_linalg(xp, "lstsq", a, b, numpy_only=True,
                                         rcond=self.rcond)
        if self.part == "rank":
            return xp.asarray(rank, dtype="int32")
        return resid

    def vjp(self, node, output_grads):
        if self.part == "rank":
            return [None, None]
        # residuals_k = sum_i |r_ik|^2 with r = b - a x: x is stationary, so
        # b_bar = 2 conj(r) g and a_bar = -2 conj(r) g x^T. The residuals are
        # empty (and g too) unless a has full column rank and M > N: 0 then.
        a, b = node.inputs
        x = LstsqSolve(self.rcond)(a, b)
        r = ew.sub(b, matmul(a, x))
        g = FillEmpty()(output_grads[0], r)
        gr = ew.mul(ew.conj(r) if r.dtype[0] == "c" else r, ew.mul(g, 2.0))
        if b.ndim == 1:
            ga = ew.neg(matmul(dimshuffle(gr, [0, "x"]), dimshuffle(x, ["x", 0])))
        else:
            ga = ew.neg(matmul(gr, _mT(x)))
        return [_grad(ga, a), _grad(gr, b)]


class FillEmpty(Op):
    """``g``, or zeros of length ``r.shape[-1]`` (1 for a 1-d ``r``) where ``g``
    is empty: the gradient of ``lstsq``'s residuals, whose length is 0 or K
    depending on the rank. Linear in ``g``; its vjp is ``DropIfEmpty``."""

    def make_node(self, g, r):
        g, r = as_tensor_variable(g), as_tensor_variable(r)
        return Apply(self, [g, r], [TensorType(g.dtype, (None,))()])

    def impl(self, xp, g, r):
        if g.size:
            return g
        return xp.zeros(r.shape[-1] if r.ndim == 2 else 1, dtype=g.dtype)

    def vjp(self, node, output_grads):
        return [DropIfEmpty()(output_grads[0], node.inputs[0]), None]


class DropIfEmpty(Op):
    """``h``, or ``h[:0]`` where ``like`` is empty (the adjoint of ``FillEmpty``)."""

    def make_node(self, h, like):
        h, like = as_tensor_variable(h), as_tensor_variable(like)
        return Apply(self, [h, like], [TensorType(h.dtype, (None,))()])

    def impl(self, xp, h, like):
        return h if like.size else h[:0].copy()

    def vjp(self, node, output_grads):
        return [FillEmpty()(output_grads[0], node.inputs[0]), None]


def lstsq(a, b, rcond=None):
    """The least-squares solution of ``a @ x = b`` (``np.linalg.lstsq``):
    ``(x, residuals, rank, s)``; singular values below ``rcond * max(s)``
    (default ``eps * max(M, N)``) count as zero."""
    a, b = _lstsq_inputs(a, b)
    return (LstsqSolve(rcond)(a, b), LstsqAux("residuals", rcond)(a, b),
            LstsqAux("rank", rcond)(a, b), svdvals(a))


# ------------------------------------------------------------------ matrix_rank
class MatrixRank(Op):
    """``np.linalg.matrix_rank``: the number of singular values above the
    tolerance, per matrix (int64; no gradient)."""

    __props__ = ("tol", "hermitian", "rtol")

    def __init__(self, tol=None, hermitian=False, rtol=None):
        self.tol = None if tol is None else float(tol)
        self.hermitian = bool(hermitian)
        self.rtol = None if rtol is None else float(rtol)

    def make_node(self, a):
        a = as_tensor_variable(a)
        if a.dtype == "float16":
            raise TypeError("matrix_rank: array type float16 is unsupported in linalg")
        shape = a.type.shape[:-2] if a.ndim >= 2 else ()
        return Apply(self, [a], [TensorType("int64", shape)()])

    def impl(self, xp, a):
        if a.ndim < 2:
            return xp.asarray(int(not bool((a == 0).all())), dtype="int64")
        kw = {"hermitian": self.hermitian}
        if self.rtol is not None:
            kw["rtol"] = self.rtol
        # (on the host for CuPy, whose matrix_rank takes neither keyword)
        rank = _host_linalg(xp, "matrix_rank", a, numpy_only=True, tol=self.tol, **kw)
        return xp.asarray(rank, dtype="int64")

    def vjp(self, node, output_grads):
        return [None]


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """The rank of each matrix of ``A`` by SVD (``np.linalg.matrix_rank``;
    ``tol`` an absolute, ``rtol`` a relative cutoff, Python numbers)."""
    for name, value in (("tol", tol), ("rtol", rtol)):
        if value is not None and not isinstance(value, (int, float, np.number)):
            raise TypeError(f"matrix_rank: {name} must be a number or None in tracegrad, "
                            f"got {type(value).__name__}")
    return MatrixRank(tol, hermitian, rtol)(A)


# ------------------------------------------------------------------ multi_dot
def _cost3(a, b, c):
    """NumPy's choice for three matrices: ``(a b) c`` unless ``a (b c)`` is cheaper."""
    (p0, p1), p2, p3 = a, b[1], c[1]
    if None in (p0, p1, p2, p3):
        return True
    return p0 * p1 * p2 + p0 * p2 * p3 <= p1 * p2 * p3 + p0 * p1 * p3


def multi_dot(arrays, *, out=None):
    """``np.linalg.multi_dot``: the product of a chain of matrices (the first
    may be a row vector, the last a column vector, both 1-d)."""
    if out is not None:
        raise TypeError("multi_dot(..., out=) cannot write into a symbolic variable")
    arrays = [as_tensor_variable(a) for a in arrays]
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays")
    first, last = arrays[0].ndim == 1, arrays[-1].ndim == 1
    if first:
        arrays[0] = dimshuffle(arrays[0], ["x", 0])
    if last:
        arrays[-1] = dimshuffle(arrays[-1], [0, "x"])
    for i, a in enumerate(arrays):
        if a.ndim != 2:
            raise LinAlgError(f"multi_dot: array {i} is {a.ndim}-dimensional; the inner "
                              "arrays must be two-dimensional, the ends 1- or 2-d")
    if len(arrays) == 3 and not _cost3(*(x.type.shape for x in arrays)):
        result = matmul(arrays[0], matmul(arrays[1], arrays[2]))
    else:
        result = arrays[0]
        for a in arrays[1:]:
            result = matmul(result, a)
    if first and last:
        return dimshuffle(result, [])
    if first:
        return dimshuffle(result, [1])
    if last:
        return dimshuffle(result, [0])
    return result


# ------------------------------------------------------------------ tensor solve/inverse
def _size(shape_entries):
    size = 1
    for s in shape_entries:
        size = s if isinstance(size, int) and size == 1 else size * s
    return size


def tensorsolve(a, b, axes=None):
    """``np.linalg.tensorsolve``: ``x`` with ``tensordot(a, x, x.ndim) == b``
    (``axes``: axes of ``a`` moved to the end first)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    an = a.ndim
    if axes is not None:
        order = [i for i in range(an) if i not in [ax % an for ax in axes]]
        a = dimshuffle(a, order + [ax % an for ax in axes])
    k = an - b.ndim
    if k < 0:
        raise LinAlgError(f"tensorsolve: a has fewer dimensions ({an}) than b ({b.ndim})")
    trailing = list(range(an - k, an)) if k else list(range(an))
    static = [a.type.shape[i] for i in trailing]
    if None not in a.type.shape:
        prod = int(np.prod(static))
        if int(np.prod(a.type.shape)) != prod ** 2:
            raise LinAlgError(f"tensorsolve: a of shape {format_shape(a.type.shape)} "
                              f"(axes moved) is not square over its last {k} axes")
    old = [a.shape[i] if s is None else s for i, s in zip(trailing, static)]
    x = solve(_reshape(a, [-1, _size(old)]), _reshape(b, [-1]))
    return _reshape(x, old)


def tensorinv(a, ind=2):
    """``np.linalg.tensorinv``: the inverse of ``a`` seen as a matrix whose rows
    are its first ``ind`` axes."""
    a = as_tensor_variable(a)
    if not isinstance(ind, (int, np.integer)) or ind <= 0:
        raise ValueError(f"tensorinv: invalid ind argument {ind!r} (must be a positive int)")
    if ind > a.ndim:
        raise ValueError(f"tensorinv: ind={ind} exceeds the {a.ndim} axes of a")
    shape = [a.shape[i] if s is None else s for i, s in enumerate(a.type.shape)]
    inv = matrix_inverse(_reshape(a, [_size(shape[ind:]), -1]))
    return _reshape(inv, shape[ind:] + shape[:ind])


# ------------------------------------------------------------------ cond
def cond(x, p=None):
    """``np.linalg.cond``: the condition number of each matrix in the norm
    ``p`` (None/2/-2: by singular values; 'fro', 'nuc', 1, -1, inf, -inf:
    ``norm(x) * norm(inv(x))``). NaN results become inf, as in NumPy."""
    x = _as_inexact(as_tensor_variable(x), "cond")
    if x.ndim < 2:
        raise LinAlgError(f"cond: {x.ndim}-dimensional array given. Array must be at "
                          "least two-dimensional")
    m, n = x.type.shape[-2:]
    if 0 in (m, n):
        raise LinAlgError("cond is not defined on empty arrays")
    if p is None or (not isinstance(p, str) and p in (2, -2)):
        s = svdvals(x)
        big, small = _max(s, axis=-1), _min(s, axis=-1)
        num, den = (small, big) if p == -2 else (big, small)
        # x / 0 is inf (0 / 0 too, below), without NumPy's division warning
        zero = ew.eq(den, 0)
        r = where(zero, np.inf, ew.true_div(num, where(zero, 1, den)))
    else:
        if m is not None and n is not None and m != n:
            raise LinAlgError(f"cond: last 2 dimensions of the array must be square for "
                              f"p={p!r}, got shape {format_shape(x.type.shape)}")
        r = ew.mul(norm(x, p, axis=(-2, -1)), norm(matrix_inverse(x), p, axis=(-2, -1)))
    # NumPy: a NaN condition number of a NaN-free matrix is inf (0 / 0 of a zero matrix)
    nan_free = ew.logical_not(_any(ew.isnan(x), axis=(-2, -1)))
    return where(ew.logical_and(ew.isnan(r), nan_free), np.inf, r)


# ------------------------------------------------------------------ NumPy dispatch
implements(np.linalg.lstsq)(lstsq)
implements(np.linalg.matrix_rank)(matrix_rank)
implements(np.linalg.multi_dot)(multi_dot)
implements(np.linalg.tensorsolve)(tensorsolve)
implements(np.linalg.tensorinv)(tensorinv)
implements(np.linalg.cond)(cond)
