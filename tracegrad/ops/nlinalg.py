"""``numpy.linalg``: ``matrix_inverse`` (``np.linalg.inv``), ``det``,
``slogdet``, ``solve``, ``cholesky``, ``norm`` (``vector_norm``,
``matrix_norm``), ``svdvals``, ``pinv``, ``matrix_power``.

Theano/PyTensor names (``tracegrad.tensor.nlinalg``); NumPy 2 semantics:
every matrix function works on stacks (``..., M, M``), integer and boolean
inputs compute in float64, float16 is refused like NumPy's LAPACK functions
refuse it. A matrix input with fewer than two axes or a known non-square
shape raises ``numpy.linalg.LinAlgError`` when the graph is built; a singular
or non-positive-definite value raises it when the graph runs (from NumPy).

Gradients are the standard matrix-calculus rules, in the complex convention
of ``elemwise`` (``dL = Re(sum(grad * dx))``, no conjugation of holomorphic
rules):

- ``inv``: ``-X^T g X^T`` with ``X = A^-1``;
- ``det``: ``g det(A) A^-T``. It goes through ``A^-1``, so at a singular
  ``A`` the gradient raises ``LinAlgError`` (the adjugate is not formed);
- ``slogdet``: ``sign`` has gradient 0, ``logabsdet`` has ``g A^-T``;
- ``solve``: ``b_bar = A^-T g``, ``A_bar = -b_bar x^T`` (summed over broadcast
  batch axes);
- ``cholesky``: the symmetric rule of Murray (2016) / JAX,
  ``A_bar = herm(L^-T phi(L^T g) conj(L^-1))`` with ``phi`` the lower triangle
  with halved diagonal and ``herm(S) = (S + S^H) / 2``. It is the gradient
  with respect to a symmetric (Hermitian) ``A``: perturbing only one triangle
  is not what it measures.
- ``svdvals``: ``U diag(g) V^H`` (conjugated for complex input), for distinct
  singular values; no second derivatives (the singular vectors have no
  gradient). ``norm`` with ord 2, -2, 'nuc' goes through it;
- ``pinv``: Golub & Pereyra's derivative (where the rank is locally constant);
- ``norm`` is composed from elementwise ops and reductions. The 2-norm
  (and Frobenius) has gradient 0 at ``x = 0`` (a guard, like JAX) instead of
  NaN.
"""
from collections import namedtuple

import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import zeros_like
from tracegrad.ops.base import cast, format_shape, is_differentiable, sum_to
from tracegrad.ops.elemwise_numpy import where
from tracegrad.ops.linalg import matmul
from tracegrad.ops.reduce import max as _max, min as _min, sum as _sum
from tracegrad.ops.shape import concatenate, dimshuffle, expand_dims
from tracegrad.ops.shape import reshape as _reshape
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, resolve_weak
from tracegrad.trace import Apply, Op

__all__ = ["matrix_inverse", "det", "slogdet", "solve", "cholesky", "norm",
           "matrix_power", "pinv", "svdvals", "vector_norm", "matrix_norm",
           "MatrixInverse", "Pinv", "SVDVals", "SVDFactor", "Det", "SlogDet", "Solve", "Cholesky",
           "TrilHalf"]

LinAlgError = np.linalg.LinAlgError


def _as_inexact(a, name, lapack=True):
    """``a`` as a float/complex variable: ints and bools in float64."""
    if lapack and a.dtype == "float16":
        raise TypeError(f"{name}: array type float16 is unsupported in linalg")
    return a if a.dtype[0] in "fc" else cast(a, "float64")


def _square(a, name):
    """The stacked square-matrix input of ``name``, checked and made inexact."""
    a = as_tensor_variable(a)
    if a.ndim < 2:
        raise LinAlgError(f"{name}: {a.ndim}-dimensional array given. Array must be "
                          "at least two-dimensional")
    m, n = a.type.shape[-2:]
    if m is not None and n is not None and m != n:
        raise LinAlgError(f"{name}: last 2 dimensions of the array must be square, got "
                          f"shape {format_shape(a.type.shape)}")
    return _as_inexact(a, name)


def _square_shape(a):
    m, n = a.type.shape[-2:]
    m = m if m is not None else n
    return a.type.shape[:-2] + (m, m)


def _real_dtype(dtype):
    return np.empty(0, dtype).real.dtype.name


def _mT(x):
    """The transpose of the last two axes."""
    return dimshuffle(x, list(range(x.ndim - 2)) + [x.ndim - 1, x.ndim - 2])


def _expand2(x):
    """``x[..., None, None]``."""
    return dimshuffle(x, list(range(x.ndim)) + ["x", "x"])


# ------------------------------------------------------------------ inv
class MatrixInverse(Op):
    """``np.linalg.inv`` of a stack of square matrices."""

    def make_node(self, a):
        a = _square(a, "inv")
        return Apply(self, [a], [TensorType(a.dtype, _square_shape(a))()])

    def impl(self, xp, a):
        return xp.linalg.inv(a)

    def vjp(self, node, output_grads):
        x_t = _mT(node.outputs[0])
        return [ew.neg(matmul(matmul(x_t, output_grads[0]), x_t))]


def matrix_inverse(a):
    """The inverse of each square matrix of ``a`` (``np.linalg.inv``)."""
    return MatrixInverse()(a)


# ------------------------------------------------------------------ det
class Det(Op):
    """``np.linalg.det`` of a stack of square matrices."""

    def make_node(self, a):
        a = _square(a, "det")
        return Apply(self, [a], [TensorType(a.dtype, a.type.shape[:-2])()])

    def impl(self, xp, a):
        return xp.asarray(xp.linalg.det(a))

    def vjp(self, node, output_grads):
        a, = node.inputs
        scale = _expand2(ew.mul(output_grads[0], node.outputs[0]))
        return [ew.mul(scale, _mT(matrix_inverse(a)))]


def det(a):
    """The determinant of each square matrix of ``a`` (``np.linalg.det``)."""
    return Det()(a)


# ------------------------------------------------------------------ slogdet
class SlogDet(Op):
    """One output of ``np.linalg.slogdet``: ``part`` is ``'sign'`` or
    ``'logabsdet'`` (two ops, so each output is an ordinary variable)."""

    __props__ = ("part",)

    def __init__(self, part):
        if part not in ("sign", "logabsdet"):
            raise ValueError(f"SlogDet: part must be 'sign' or 'logabsdet', got {part!r}")
        self.part = part

    def make_node(self, a):
        a = _square(a, "slogdet")
        dtype = a.dtype if self.part == "sign" else _real_dtype(a.dtype)
        return Apply(self, [a], [TensorType(dtype, a.type.shape[:-2])()])

    def impl(self, xp, a):
        sign, logabsdet = xp.linalg.slogdet(a)
        return xp.asarray(sign if self.part == "sign" else logabsdet)

    def vjp(self, node, output_grads):
        a, = node.inputs
        if self.part == "sign":
            return [zeros_like(a)]
        return [ew.mul(_expand2(output_grads[0]), _mT(matrix_inverse(a)))]


SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])


def slogdet(a):
    """``(sign, logabsdet)`` of each square matrix of ``a`` (``np.linalg.slogdet``;
    a named tuple like NumPy's)."""
    return SlogdetResult(SlogDet("sign")(a), SlogDet("logabsdet")(a))


# ------------------------------------------------------------------ solve
class Solve(Op):
    """``np.linalg.solve`` (NumPy 2: a 1-d ``b`` is one vector, shared by the
    stack; otherwise ``b`` is a stack of ``M x K`` matrices)."""

    def make_node(self, a, b):
        a = _square(a, "solve")
        b = _as_inexact(as_tensor_variable(b), "solve")
        a, b = resolve_weak([a, b])
        m = _square_shape(a)[-1]
        sb = b.type.shape
        if b.ndim == 0:
            raise LinAlgError("solve: b must be at least one-dimensional")
        mb = sb[0] if b.ndim == 1 else sb[-2]
        if m is not None and mb is not None and m != mb:
            raise ValueError(f"solve: a of shape {format_shape(a.type.shape)} and b of "
                             f"shape {format_shape(sb)} do not match ({m} != {mb})")
        m = m if m is not None else mb
        if b.ndim == 1:
            shape = a.type.shape[:-2] + (m,)
        else:
            batch = ew.broadcast_static([a.type.shape[:-2], sb[:-2]], "solve")
            shape = batch + (m, sb[-1])
        dtype = np.result_type(a.dtype, b.dtype).name
        return Apply(self, [a, b], [TensorType(dtype, shape)()])

    def impl(self, xp, a, b):
        return xp.linalg.solve(a, b)

    def vjp(self, node, output_grads):
        a, b = node.inputs
        x, = node.outputs
        g = output_grads[0]
        if b.ndim == 1:
            gb = Solve()(_mT(a), expand_dims(g, -1))          # (..., M, 1)
            ga = ew.neg(matmul(gb, expand_dims(x, -2)))
            gb = dimshuffle(gb, list(range(gb.ndim - 1)))
        else:
            gb = Solve()(_mT(a), g)
            ga = ew.neg(matmul(gb, _mT(x)))
        return [_grad_for(ga, a), _grad_for(gb, b)]


def _grad_for(g, x):
    if not is_differentiable(x):
        return None
    return ew.match_gradient_dtype(sum_to(g, x), x)


def solve(a, b):
    """The solution ``x`` of ``a @ x = b`` for each square ``a`` (``np.linalg.solve``)."""
    return Solve()(a, b)


# ------------------------------------------------------------------ cholesky
class TrilHalf(Op):
    """The lower triangle of each matrix with its diagonal halved (linear and
    self-adjoint: the ``phi`` of the Cholesky gradient)."""

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)()])

    def impl(self, xp, x):
        n = x.shape[-1]
        mask = xp.tril(xp.ones((x.shape[-2], n), dtype=x.real.dtype))
        mask = mask - 0.5 * xp.eye(x.shape[-2], n, dtype=x.real.dtype)
        return x * mask

    def vjp(self, node, output_grads):
        return [TrilHalf()(output_grads[0])]


class Cholesky(Op):
    """``np.linalg.cholesky`` (the lower factor ``L``, ``A = L L^H``)."""

    def make_node(self, a):
        a = _square(a, "cholesky")
        return Apply(self, [a], [TensorType(a.dtype, _square_shape(a))()])

    def impl(self, xp, a):
        return xp.linalg.cholesky(a)

    def vjp(self, node, output_grads):
        # the transpose (in the pairing Re(sum(g * dx))) of JAX's jvp
        # dL = L phi(L^-1 sym(dA) L^-H)
        low, = node.outputs
        inv_low = matrix_inverse(low)
        inv_low_bar = ew.conj(inv_low) if low.dtype[0] == "c" else inv_low
        s = matmul(matmul(_mT(inv_low), TrilHalf()(matmul(_mT(low), output_grads[0]))),
                   inv_low_bar)
        s_h = ew.conj(_mT(s)) if s.dtype[0] == "c" else _mT(s)
        return [ew.mul(0.5, ew.add(s, s_h))]


def cholesky(a, upper=False):
    """The Cholesky factor of each Hermitian positive-definite matrix of ``a``:
    lower ``L`` (``a = L L^H``), or ``L^H`` with ``upper=True``."""
    low = Cholesky()(a)
    if not upper:
        return low
    return ew.conj(_mT(low)) if low.dtype[0] == "c" else _mT(low)


# ------------------------------------------------------------------ svdvals
class SVDFactor(Op):
    """``U`` (``part='u'``) or ``V^H`` (``'vh'``) of the reduced SVD; used by the
    gradient of ``svdvals`` and not differentiable itself."""

    __props__ = ("part",)

    def __init__(self, part):
        if part not in ("u", "vh"):
            raise ValueError(f"SVDFactor: part must be 'u' or 'vh', got {part!r}")
        self.part = part

    def make_node(self, a):
        a = as_tensor_variable(a)
        m, n = a.type.shape[-2:]
        k = None if m is None or n is None else min(m, n)
        shape = a.type.shape[:-2] + ((m, k) if self.part == "u" else (k, n))
        return Apply(self, [a], [TensorType(a.dtype, shape)()])

    def impl(self, xp, a):
        u, _, vh = xp.linalg.svd(a, full_matrices=False)
        return u if self.part == "u" else vh

    def vjp(self, node, output_grads):
        raise NotImplementedError("the singular vectors (second derivatives of svdvals, "
                                  "norm ord=2/-2/'nuc') have no gradient in tracegrad")


class SVDVals(Op):
    """``np.linalg.svdvals``: the singular values of each matrix, descending.
    vjp ``U diag(g) V^H`` (conjugated for complex input), for distinct values."""

    def make_node(self, a):
        a = as_tensor_variable(a)
        if a.ndim < 2:
            raise LinAlgError(f"svdvals: {a.ndim}-dimensional array given. Array must "
                              "be at least two-dimensional")
        a = _as_inexact(a, "svdvals")
        m, n = a.type.shape[-2:]
        k = None if m is None or n is None else min(m, n)
        out = TensorType(_real_dtype(a.dtype), a.type.shape[:-2] + (k,))
        return Apply(self, [a], [out()])

    def impl(self, xp, a):
        return xp.linalg.svd(a, compute_uv=False)

    def vjp(self, node, output_grads):
        a, = node.inputs
        u, vh = SVDFactor("u")(a), SVDFactor("vh")(a)
        g = dimshuffle(output_grads[0], list(range(output_grads[0].ndim - 1)) +
                       ["x", output_grads[0].ndim - 1])
        grad = matmul(ew.mul(u, g), vh)
        return [ew.conj(grad) if grad.dtype[0] == "c" else grad]


def svdvals(x):
    """The singular values of each matrix of ``x`` (``np.linalg.svdvals``)."""
    return SVDVals()(x)


# ------------------------------------------------------------------ norm
def _abs2(x):
    return ew.sqr(x) if x.dtype[0] != "c" else ew.sqr(ew.abs(x))


def _l2(x, axis, keepdims):
    """``sqrt(sum(|x|^2))`` with gradient 0 (not NaN) where the sum is 0."""
    s = _sum(_abs2(x), axis=axis, keepdims=keepdims)
    zero = ew.eq(s, 0)
    return where(zero, 0, ew.sqrt(where(zero, 1, s)))


def _max0(x, axis, keepdims=False):
    """``max(x, axis, initial=0)`` for ``x >= 0`` (NumPy's norms of 0 elements
    are 0): a zero slice (a sum times 0) is appended along ``axis``."""
    ax = axis[0] if isinstance(axis, (tuple, list)) else axis
    zero = ew.mul(_sum(x, axis=ax, keepdims=True), 0)
    return _max(concatenate([x, zero], axis=ax), axis=ax, keepdims=keepdims)


def _vector_norm(x, ord, axis, keepdims):
    if ord is None or ord == 2:
        return _l2(x, axis, keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    absx = ew.abs(x)
    if ord == np.inf:
        return _max0(absx, axis, keepdims)
    if ord == -np.inf:
        return _min(absx, axis=axis, keepdims=keepdims)
    if ord == 0:
        return _sum(cast(ew.neq(x, 0), absx.dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return _sum(absx, axis=axis, keepdims=keepdims)
    p = float(ord)
    return ew.pow(_sum(ew.pow(absx, p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    if ord is None or ord in ("fro", "f"):
        ret = _l2(x, axes, False)
    elif ord in (1, -1):
        reduce = _max0 if ord == 1 else _min
        ret = reduce(_sum(ew.abs(x), axis=row), axis=col - 1 if col > row else col)
    elif ord in (np.inf, -np.inf):
        reduce = _max0 if ord == np.inf else _min
        ret = reduce(_sum(ew.abs(x), axis=col), axis=row - 1 if row > col else row)
    elif ord in (2, -2, "nuc"):
        rest = [i for i in range(x.ndim) if i not in axes]
        sv = svdvals(dimshuffle(x, rest + [row, col]))
        reduce = {2: _max, -2: _min, "nuc": _sum}[ord]
        ret = reduce(sv, axis=-1)
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    return expand_dims(ret, sorted(axes)) if keepdims else ret


def norm(x, ord=None, axis=None, keepdims=False):
    """``np.linalg.norm``: vector norms (``ord`` None/2, 1, inf, -inf, 0, p)
    over one axis, matrix norms (None/'fro', 1, -1, inf, -inf) over two."""
    x = _as_inexact(as_tensor_variable(x), "norm", lapack=False)
    if axis is None:
        if ord is None:
            return _l2(x, None, keepdims)
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: improper number of dimensions to norm "
                             f"({x.ndim}) with ord={ord!r} and axis=None")
        axis = tuple(range(x.ndim))
    items = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    axes = tuple(normalize_axis(a, x.ndim, "norm")[0] for a in items)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError(f"norm: duplicate axes given: axis={axis!r}")
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"norm: improper number of dimensions to norm (axis={axis!r})")


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """``np.linalg.vector_norm``: a vector norm over ``axis`` (all axes, flattened,
    when None)."""
    x = _as_inexact(as_tensor_variable(x), "vector_norm", lapack=False)
    if axis is None:
        axis = tuple(range(x.ndim))
    axes = normalize_axis(axis, x.ndim, "vector_norm")
    if len(axes) == 1 or ord in (None, 2):
        return _vector_norm(x, ord, axes, keepdims)
    rest = [i for i in range(x.ndim) if i not in axes]
    flat = _reshape(dimshuffle(x, rest + list(axes)), [x.shape[i] for i in rest] + [-1])
    ret = _vector_norm(flat, ord, (len(rest),), False)
    return expand_dims(ret, list(axes)) if keepdims else ret


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """``np.linalg.matrix_norm``: a matrix norm over the last two axes."""
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


# ------------------------------------------------------------------ pinv
class Pinv(Op):
    """``np.linalg.pinv`` of a stack of (rectangular) matrices. Its vjp is the
    derivative of Golub & Pereyra (1973), valid where the rank is locally
    constant."""

    __props__ = ("rcond", "hermitian", "rtol")

    def __init__(self, rcond=None, hermitian=False, rtol=None):
        self.rcond = None if rcond is None else float(rcond)
        self.hermitian = bool(hermitian)
        self.rtol = None if rtol is None else float(rtol)

    def make_node(self, a):
        a = as_tensor_variable(a)
        if a.ndim < 2:
            raise LinAlgError(f"pinv: {a.ndim}-dimensional array given. Array must be "
                              "at least two-dimensional")
        a = _as_inexact(a, "pinv")
        shape = a.type.shape[:-2] + (a.type.shape[-1], a.type.shape[-2])
        return Apply(self, [a], [TensorType(a.dtype, shape)()])

    def impl(self, xp, a):
        kw = {"hermitian": self.hermitian}
        if self.rtol is not None:
            kw["rtol"] = self.rtol
        elif self.rcond is not None:
            kw["rcond"] = self.rcond
        return xp.linalg.pinv(a, **kw)

    def vjp(self, node, output_grads):
        a, = node.inputs
        x, = node.outputs
        g_t, x_t = _mT(output_grads[0]), _mT(x)
        cplx = x.dtype[0] == "c"
        x_h = ew.conj(x_t) if cplx else x_t
        # -X^T G X^T + conj((I - A X) G^T X X^H) + conj(X^H X G^T (I - X A))
        y = matmul(g_t, matmul(x, x_h))
        z = matmul(matmul(x_h, x), g_t)
        first = ew.neg(matmul(matmul(x_t, output_grads[0]), x_t))
        rest = ew.add(ew.sub(y, matmul(a, matmul(x, y))), ew.sub(z, matmul(matmul(z, x), a)))
        return [ew.add(first, ew.conj(rest) if cplx else rest)]


def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    """The Moore-Penrose pseudo-inverse of each matrix of ``a``
    (``np.linalg.pinv``; ``rcond``/``rtol`` cut small singular values)."""
    if rcond is not None and rtol is not None:
        raise ValueError("pinv: `rtol` and `rcond` can't be both set.")
    return Pinv(rcond, hermitian, rtol)(a)


# ------------------------------------------------------------------ matrix_power
def matrix_power(a, n):
    """``a`` raised to the integer power ``n`` by repeated squaring
    (``np.linalg.matrix_power``; ``n < 0`` inverts first)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"matrix_power: exponent n must be an integer, got {n!r}")
    a = as_tensor_variable(a)
    if a.ndim < 2:
        raise LinAlgError(f"matrix_power: {a.ndim}-dimensional array given. Array must "
                          "be at least two-dimensional")
    if n < 0:
        a, n = matrix_inverse(a), -int(n)
    else:
        _square(a, "matrix_power")
    if n == 0:
        return _identity_like(a)
    result, power = None, a
    while n:
        if n & 1:
            result = power if result is None else matmul(result, power)
        n >>= 1
        if n:
            power = matmul(power, power)
    return result


def _identity_like(a):
    """Identity matrices of ``a``'s shape and dtype: with ``H = TrilHalf(ones)``
    (strict lower 1, diagonal 1/2), ``4 (H - TrilHalf(H))`` is the identity."""
    dtype = a.dtype if a.dtype[0] in "fc" else "float64"
    half = TrilHalf()(ew.add(zeros_like(a, dtype=dtype), 1))
    eye = ew.mul(ew.sub(half, TrilHalf()(half)), 4)
    return eye if eye.dtype == a.dtype else cast(eye, a.dtype)


# ------------------------------------------------------------------ NumPy dispatch
implements(np.linalg.inv)(matrix_inverse)
implements(np.linalg.det)(det)
implements(np.linalg.slogdet)(slogdet)
implements(np.linalg.solve)(solve)
implements(np.linalg.cholesky)(cholesky)
implements(np.linalg.norm)(norm)
implements(np.linalg.matrix_power)(matrix_power)
implements(np.linalg.pinv)(pinv)
implements(np.linalg.svdvals)(svdvals)
implements(np.linalg.vector_norm)(vector_norm)
implements(np.linalg.matrix_norm)(matrix_norm)
