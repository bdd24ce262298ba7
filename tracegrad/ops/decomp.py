"""``numpy.linalg`` decompositions: ``eigh``, ``eigvalsh``, ``eig``, ``eigvals``,
``svd``, ``qr`` (the rest of ``numpy.linalg`` is in ``decomp_solve.py``).

NumPy 2 semantics like ``nlinalg``: stacks (``..., M, N``), integer and
boolean inputs compute in float64, float16 is refused. ``eigh``, ``svd`` and
``qr`` return NumPy's named tuples (``EighResult``, ``SVDResult``,
``QRResult``). ``eig`` and ``eigvals`` always return complex arrays (like
JAX): NumPy returns real arrays for a real input whose eigenvalues all happen
to be real, a dtype that depends on the values.

Gradients, in the complex convention of docs/user-guide.md (``dL =
Re(sum(grad * dx))``; derived from the conjugating formulas of PyTorch's
``linalg`` backward by conjugating cotangents and results):

- ``eigh``: ``A_bar = conj(V) (diag(w_bar) + F o (M - M^H) / 2) V^T`` with
  ``M = V^T V_bar`` and ``F_ij = 1 / (w_j - w_i)`` off the diagonal. Like
  ``cholesky``, it is the gradient with respect to a symmetric (Hermitian)
  ``A``: NumPy reads only the ``UPLO`` triangle, so perturbing one entry of the
  other triangle is not what it measures (symmetrize inside the graph to
  differentiate a general matrix). ``eigvalsh``: ``conj(V) diag(w_bar) V^T``.
- ``eig``: ``A_bar = V^-T (diag(w_bar) + E o (M - V^T conj(V) Re(diag M))) V^T``
  with ``E_ij = 1 / (w_j - w_i)`` off the diagonal (eigenvectors of unit
  norm, as LAPACK returns them). ``eigvals``: ``V^-T diag(w_bar) V^T``.
- ``svd`` (reduced): Townsend's / PyTorch's rule with ``F_ij = 1 / (s_j^2 -
  s_i^2)``, the terms ``(I - U U^H) U_bar S^-1 V^H`` and ``U S^-1 Vh_bar (I -
  V V^H)`` of a non-square ``A``, and for complex ``A`` the imaginary diagonal
  term ``Im(diag(U^H U_bar)) / s``. ``full_matrices=True`` with a non-square
  matrix has no gradient (the extra columns of ``U`` or rows of ``Vh`` are not
  determined; JAX refuses it too): ``NotImplementedError`` when the graph is
  differentiated (shape known) or run (shape unknown).
- ``qr`` (``mode='reduced'`` with ``M >= N``, ``'complete'`` with ``M == N``,
  ``'r'``): ``A_bar = [Q (L(N) + R_bar R^T) + Q_bar - Q Q^T Q_bar] R^-T`` with
  ``N = Q^T Q_bar - R_bar R^T`` and ``L(N) = tril(N - N^H, -1) + i Im(diag N)``
  (conjugations as above). Wide matrices are refused like the full SVD.

Gauge. Eigenvectors and singular vectors are defined up to a sign (a phase for
complex ones) per column, chosen by LAPACK: a cost must not depend on that
choice (``|v|``, projectors ``v v^H``, ``u diag(s) vh``); otherwise the gradient
(like JAX's and PyTorch's) is that of an arbitrary smooth gauge and finite
differences disagree.

Singular cases. ``F``, ``E`` are set to 0 where two eigenvalues (singular
values) are exactly equal, and ``1/s`` to 0 where ``s == 0``, so costs of the
values alone (and costs invariant within a degenerate subspace) get finite,
correct gradients at repeated values. A cost that depends on one vector of a
degenerate subspace has no derivative there; near-degenerate values give large
gradients (``1 / gap``) as in JAX and PyTorch.
"""
from collections import namedtuple

import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.elemwise_numpy import where
from tracegrad.ops.linalg import Diagonal, DiagonalGrad, matmul
from tracegrad.ops.manip import tril
from tracegrad.ops.nlinalg import (LinAlgError, Solve, _as_inexact, _mT, _real_dtype,
                                   _square, _square_shape, svdvals)
from tracegrad.ops.shape import dimshuffle
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["eigh", "eigvalsh", "eig", "eigvals", "svd", "qr",
           "Eigh", "EigvalsH", "Eig", "Eigvals", "SVD", "QR", "GradShapeCheck"]

EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
EigResult = namedtuple("EigResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


# ------------------------------------------------------------------ helpers
def _cplx(x):
    return x.dtype[0] == "c"


def _conj(x):
    return ew.conj(x) if _cplx(x) else x


def _mH(x):
    return _conj(_mT(x))


def _row(v):
    """``v[..., None, :]``."""
    return dimshuffle(v, list(range(v.ndim - 1)) + ["x", v.ndim - 1])


def _col(v):
    """``v[..., :, None]``."""
    return dimshuffle(v, list(range(v.ndim)) + ["x"])


def _diag(x):
    return Diagonal(0, x.ndim - 2, x.ndim - 1)(x)


def _diag_embed(v, like):
    """A matrix shaped like ``like`` with ``v`` on its diagonal, zeros elsewhere."""
    return DiagonalGrad(0, like.ndim - 2, like.ndim - 1)(v, like)


def _safe_recip(x):
    """``1 / x`` with 0 where ``x == 0`` (the where-guard of the singular cases)."""
    zero = ew.eq(x, 0)
    return where(zero, 0, ew.reciprocal(where(zero, 1, x)))


def _inv_gaps(d):
    """``F_ij = 1 / (d_j - d_i)``, 0 on the diagonal and where ``d_i == d_j``."""
    return _safe_recip(ew.sub(_row(d), _col(d)))


def _imag_part(x):
    """``i Im(x)`` in ``x``'s complex dtype."""
    return ew.mul(ew.sub(x, ew.conj(x)), 0.5)


def _complex_dtype(dtype):
    return np.result_type(dtype, np.complex64).name


def _host_linalg(xp, name, *arrays, numpy_only=False, **kw):
    """``xp.linalg.<name>(*arrays, **kw)``, through NumPy on the host where
    ``xp`` lacks the function (older CuPy has no general eigensolver) or, with
    ``numpy_only``, is not NumPy (keywords CuPy does not take)."""
    fn = getattr(xp.linalg, name, None)
    if fn is not None and (xp is np or not numpy_only):
        return fn(*arrays, **kw)
    host = [a.get() if hasattr(a, "get") else a for a in arrays]
    result = getattr(np.linalg, name)(*host, **kw)
    if isinstance(result, tuple):
        return tuple(xp.asarray(r) for r in result)
    return xp.asarray(result)


def check_finite(xp, name, *arrays):
    """Raise ``LinAlgError`` for an inf or NaN entry before LAPACK's SVD runs:
    NumPy's ``svd`` (with vectors), ``lstsq`` and ``pinv`` never return on an
    infinite entry. (NaN alone raises in NumPy too; only checked on NumPy.)"""
    if xp is np and not all(bool(np.isfinite(a).all()) for a in arrays):
        raise LinAlgError(f"{name}: array must not contain infs or NaNs")


class GradShapeCheck(Op):
    """``g`` unchanged, after checking at run time that the matrices of ``a``
    are square (``rule='square'``) or not wide (``'tall'``): the gradient of
    ``svd(full_matrices=True)`` and ``qr`` exists only there."""

    __props__ = ("opname", "rule")

    def __init__(self, opname, rule):
        self.opname = opname
        self.rule = rule

    def make_node(self, g, a):
        g, a = as_tensor_variable(g), as_tensor_variable(a)
        return Apply(self, [g, a], [g.type()])

    def impl(self, xp, g, a):
        _check_grad_shape(self.opname, self.rule, a.shape[-2], a.shape[-1])
        return g

    def vjp(self, node, output_grads):
        return [GradShapeCheck(self.opname, self.rule)(output_grads[0], node.inputs[1]), None]


def _check_grad_shape(opname, rule, m, n):
    if rule == "square" and m != n:
        raise NotImplementedError(
            f"{opname}: no gradient for a non-square ({m}, {n}) matrix with full_matrices="
            "True or mode='complete' (the extra vectors are not determined); use the "
            "reduced form")
    if rule == "tall" and m < n:
        raise NotImplementedError(
            f"{opname}: no gradient for a wide ({m}, {n}) matrix (M < N); differentiate "
            "the QR of the transpose or of the leading square block")


def _guard_shape(opname, rule, a, grad):
    """Check the shape rule now if ``a``'s shape is known, else when run."""
    m, n = a.type.shape[-2:]
    if m is not None and n is not None:
        _check_grad_shape(opname, rule, m, n)
        return grad
    return GradShapeCheck(opname, rule)(grad, a)


def _grad_for(g, a):
    return ew.match_gradient_dtype(g, a)


# ------------------------------------------------------------------ eigh
def _check_uplo(uplo):
    if uplo not in ("L", "U"):
        raise ValueError(f"eigh: UPLO argument must be 'L' or 'U', got {uplo!r}")
    return uplo


class Eigh(Op):
    """``np.linalg.eigh``: eigenvalues (ascending, real) and orthonormal
    eigenvectors of each Hermitian matrix, read from the ``UPLO`` triangle."""

    __props__ = ("UPLO",)

    def __init__(self, UPLO="L"):
        self.UPLO = _check_uplo(UPLO)

    def make_node(self, a):
        a = _square(a, "eigh")
        shape = _square_shape(a)
        w = TensorType(_real_dtype(a.dtype), shape[:-1])()
        return Apply(self, [a], [w, TensorType(a.dtype, shape)()])

    def impl(self, xp, a):
        w, v = xp.linalg.eigh(a, UPLO=self.UPLO)
        return w, v

    def vjp(self, node, output_grads):
        a, = node.inputs
        w, v = node.outputs
        gw, gv = output_grads
        vt = _mT(v)
        m = matmul(vt, gv)
        skew = ew.mul(ew.sub(m, _mH(m)), 0.5)
        inner = ew.add(ew.mul(_inv_gaps(w), skew), _diag_embed(gw, skew))
        return [_grad_for(matmul(matmul(_conj(v), inner), vt), a)]


class EigvalsH(Op):
    """``np.linalg.eigvalsh``: the eigenvalues alone (vjp ``conj(V) diag(g) V^T``,
    defined at repeated eigenvalues too)."""

    __props__ = ("UPLO",)

    def __init__(self, UPLO="L"):
        self.UPLO = _check_uplo(UPLO)

    def make_node(self, a):
        a = _square(a, "eigvalsh")
        w = TensorType(_real_dtype(a.dtype), _square_shape(a)[:-1])()
        return Apply(self, [a], [w])

    def impl(self, xp, a):
        return xp.linalg.eigvalsh(a, UPLO=self.UPLO)

    def vjp(self, node, output_grads):
        a, = node.inputs
        v = Eigh(self.UPLO)(a)[1]
        return [_grad_for(matmul(ew.mul(_conj(v), _row(output_grads[0])), _mT(v)), a)]


def eigh(a, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors (columns) of each Hermitian
    matrix of ``a`` (``np.linalg.eigh``; an ``EighResult``)."""
    return EighResult(*Eigh(UPLO)(a))


def eigvalsh(a, UPLO="L"):
    """The eigenvalues (ascending) of each Hermitian matrix of ``a``
    (``np.linalg.eigvalsh``)."""
    return EigvalsH(UPLO)(a)


# ------------------------------------------------------------------ eig
class Eig(Op):
    """``np.linalg.eig``: eigenvalues and unit-norm eigenvectors of each square
    matrix, always complex."""

    def make_node(self, a):
        a = _square(a, "eig")
        dtype = _complex_dtype(a.dtype)
        shape = _square_shape(a)
        return Apply(self, [a], [TensorType(dtype, shape[:-1])(), TensorType(dtype, shape)()])

    def impl(self, xp, a):
        w, v = _host_linalg(xp, "eig", a)
        dtype = _complex_dtype(a.dtype)
        return w.astype(dtype, copy=False), v.astype(dtype, copy=False)

    def vjp(self, node, output_grads):
        a, = node.inputs
        w, v = node.outputs
        gw, gv = output_grads
        vt = _mT(v)
        m = matmul(vt, gv)
        # keep the columns at unit norm: the component of V_bar along V itself
        norm_part = matmul(matmul(vt, ew.conj(v)), _diag_embed(ew.real(_diag(m)), m))
        inner = ew.add(ew.mul(_inv_gaps(w), ew.sub(m, norm_part)), _diag_embed(gw, m))
        return [_grad_for(Solve()(vt, matmul(inner, vt)), a)]


class Eigvals(Op):
    """``np.linalg.eigvals``: the eigenvalues alone, complex (vjp
    ``V^-T diag(g) V^T``; a defective matrix makes ``V`` singular)."""

    def make_node(self, a):
        a = _square(a, "eigvals")
        dtype = _complex_dtype(a.dtype)
        return Apply(self, [a], [TensorType(dtype, _square_shape(a)[:-1])()])

    def impl(self, xp, a):
        return _host_linalg(xp, "eigvals", a).astype(_complex_dtype(a.dtype), copy=False)

    def vjp(self, node, output_grads):
        a, = node.inputs
        vt = _mT(Eig()(a)[1])
        return [_grad_for(Solve()(vt, ew.mul(_col(output_grads[0]), vt)), a)]


def eig(a):
    """Eigenvalues and right eigenvectors (columns, unit norm) of each square
    matrix of ``a`` (``np.linalg.eig``; complex; an ``EigResult``)."""
    return EigResult(*Eig()(a))


def eigvals(a):
    """The eigenvalues of each square matrix of ``a`` (``np.linalg.eigvals``; complex)."""
    return Eigvals()(a)


# ------------------------------------------------------------------ svd
def _matrix_input(a, name):
    a = as_tensor_variable(a)
    if a.ndim < 2:
        raise LinAlgError(f"{name}: {a.ndim}-dimensional array given. Array must be at "
                          "least two-dimensional")
    return _as_inexact(a, name)


class SVD(Op):
    """``np.linalg.svd`` with ``compute_uv=True``: ``U``, ``S`` (descending),
    ``Vh`` of each matrix (reduced or full)."""

    __props__ = ("full_matrices", "hermitian")

    def __init__(self, full_matrices=True, hermitian=False):
        self.full_matrices = bool(full_matrices)
        self.hermitian = bool(hermitian)

    def make_node(self, a):
        a = _matrix_input(a, "svd")
        m, n = a.type.shape[-2:]
        k = None if m is None or n is None else min(m, n)
        batch = a.type.shape[:-2]
        ku, kv = (m, n) if self.full_matrices else (k, k)
        outs = [TensorType(a.dtype, batch + (m, ku))(),
                TensorType(_real_dtype(a.dtype), batch + (k,))(),
                TensorType(a.dtype, batch + (kv, n))()]
        return Apply(self, [a], outs)

    def impl(self, xp, a):
        check_finite(xp, "svd", a)
        kw = {"hermitian": True} if self.hermitian else {}
        u, s, vh = _host_linalg(xp, "svd", a, numpy_only=self.hermitian,
                                full_matrices=self.full_matrices, **kw)
        return u, s, vh

    def vjp(self, node, output_grads):
        a, = node.inputs
        u, s, vh = node.outputs
        gu, gs, gvh = output_grads
        if self.full_matrices:
            gu, gs, gvh = (_guard_shape("svd", "square", a, g) for g in output_grads)
        uc, vhc = _conj(u), _conj(vh)
        xc = matmul(_mT(u), gu)
        yc = matmul(vhc, _mH(gvh))
        f = _inv_gaps(ew.sqr(s))
        skew_x = ew.sub(xc, _mH(xc))
        inner = ew.add(ew.add(ew.mul(ew.mul(f, skew_x), _row(s)),
                              ew.mul(_col(s), ew.mul(f, ew.sub(yc, _mH(yc))))),
                       _diag_embed(gs, xc))
        sinv = _safe_recip(s)
        if _cplx(a):
            # the phase of a pair (u_i, v_i) moves Im(diag(U^H U_bar)) / s_i
            inner = ew.add(inner, _diag_embed(ew.mul(_diag(skew_x), ew.mul(sinv, 0.5)), xc))
        m, n = a.type.shape[-2:]
        known = m is not None and n is not None
        core = matmul(inner, vhc)
        if not known or n > m:      # V is not square: the part of Vh_bar off V
            off_v = ew.sub(gvh, matmul(matmul(gvh, _mT(vh)), vhc))
            core = ew.add(core, ew.mul(_col(sinv), off_v))
        grad = matmul(uc, core)
        if not known or m > n:      # U is not square: the part of U_bar off U
            off_u = ew.sub(gu, matmul(uc, xc))
            grad = ew.add(grad, matmul(ew.mul(off_u, _row(sinv)), vhc))
        return [_grad_for(grad, a)]


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """The singular value decomposition of each matrix of ``a``
    (``np.linalg.svd``): an ``SVDResult`` ``(U, S, Vh)``, or the singular values
    alone with ``compute_uv=False``."""
    if not compute_uv:
        return svdvals(a)
    return SVDResult(*SVD(full_matrices, hermitian)(a))


# ------------------------------------------------------------------ qr
_QR_MODES = ("reduced", "complete", "r", "raw")


class QR(Op):
    """``np.linalg.qr`` (``mode='reduced'`` or ``'complete'``): ``Q`` with
    orthonormal columns and upper-triangular ``R``."""

    __props__ = ("mode",)

    def __init__(self, mode="reduced"):
        if mode not in ("reduced", "complete"):
            raise ValueError(f"QR: mode must be 'reduced' or 'complete', got {mode!r}")
        self.mode = mode

    def make_node(self, a):
        a = _matrix_input(a, "qr")
        m, n = a.type.shape[-2:]
        k = None if m is None or n is None else min(m, n)
        kq = m if self.mode == "complete" else k
        batch = a.type.shape[:-2]
        return Apply(self, [a], [TensorType(a.dtype, batch + (m, kq))(),
                                 TensorType(a.dtype, batch + (kq, n))()])

    def impl(self, xp, a):
        q, r = xp.linalg.qr(a, mode=self.mode)
        return q, r

    def vjp(self, node, output_grads):
        a, = node.inputs
        q, r = node.outputs
        rule = "square" if self.mode == "complete" else "tall"
        gq, gr = (_guard_shape("qr", rule, a, g) for g in output_grads)
        qc, qt, rt = _conj(q), _mT(q), _mT(r)
        qtgq = matmul(qt, gq)
        gr_rt = matmul(gr, rt)
        nc = ew.sub(qtgq, gr_rt)
        low = tril(ew.sub(nc, _mH(nc)), -1)
        if _cplx(a):
            low = ew.add(low, _diag_embed(_imag_part(_diag(nc)), nc))
        x = ew.add(matmul(qc, ew.sub(ew.add(low, gr_rt), qtgq)), gq)
        grad = _mT(Solve()(r, _mT(x)))      # x R^-T
        return [_grad_for(grad, a)]


def qr(a, mode="reduced"):
    """The QR decomposition of each matrix of ``a`` (``np.linalg.qr``): a
    ``QRResult`` ``(Q, R)`` for ``mode='reduced'``/``'complete'``, ``R`` alone
    for ``'r'``. ``'raw'`` (LAPACK's Householder form) is not supported."""
    if mode not in _QR_MODES:
        raise ValueError(f"qr: unrecognized mode {mode!r}; expected one of "
                         f"'reduced', 'complete', 'r'")
    if mode == "raw":
        raise ValueError("qr: mode='raw' (Householder reflectors) is not supported by "
                         "tracegrad; use 'reduced', 'complete' or 'r'")
    if mode == "r":
        return QR("reduced")(a)[1]
    return QRResult(*QR(mode)(a))


# ------------------------------------------------------------------ NumPy dispatch
implements(np.linalg.eigh)(eigh)
implements(np.linalg.eigvalsh)(eigvalsh)
implements(np.linalg.eig)(eig)
implements(np.linalg.eigvals)(eigvals)
implements(np.linalg.svd)(svd)
implements(np.linalg.qr)(qr)
