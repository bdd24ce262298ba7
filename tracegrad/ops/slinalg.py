"""Theano's ``tensor.slinalg`` (SciPy's ``linalg`` names): ``cholesky``
(``lower=``), ``solve``, ``solve_triangular``, ``solve_lower_triangular``,
``solve_upper_triangular``, ``solve_symmetric``, ``eigvalsh`` (with the
generalized problem ``a v = w b v``), ``expm``, ``kron``.

All but ``expm`` are compositions of the ``numpy.linalg`` ops
(``ops/nlinalg.py``, ``ops/decomp.py``), so their gradients come from
those ops' rules:

- a triangular solve is ``solve`` of the triangle (``tril``/``triu``, the
  unit diagonal put in): the gradient reaches only the triangle read, as
  Theano's ``SolveGrad`` masks it;
- ``eigvalsh(a, b)`` reads one triangle of each (``lower``), reduces to
  ``eigvalsh(L^-1 a L^-T)`` with ``L = cholesky(b)``;
- ``expm`` is an op (SciPy's ``expm``; a Padé approximant with scaling and
  squaring without SciPy) whose gradient is the block-matrix identity
  ``expm([[A^T, G], [0, A^T]])[:n, n:]`` (the adjoint Fréchet derivative),
  itself an ``expm``, so it has higher derivatives too.

These names are not in ``T`` (``T.solve``, ``T.cholesky``, ``T.eigvalsh``
keep NumPy's signatures); ``T.slinalg`` is their namespace.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import eye, zeros_like
from tracegrad.ops.decomp import eigvalsh as _eigvalsh
from tracegrad.ops.manip import kron, tril, triu
from tracegrad.ops.nlinalg import Cholesky, Solve, _mT, _square, _square_shape
from tracegrad.ops.shape import concatenate, shape
from tracegrad.tensor.type import TensorType
from tracegrad.trace import Apply, Op

__all__ = ["cholesky", "solve", "solve_triangular", "solve_lower_triangular",
           "solve_upper_triangular", "solve_symmetric", "eigvalsh", "expm", "kron",
           "Expm"]


def cholesky(x, lower=True):
    """Theano's ``slinalg.cholesky``: the lower factor ``L`` (``x = L L^T``),
    or the upper ``L^T`` with ``lower=False``."""
    low = Cholesky()(x)
    return low if lower else _mT(low)


def solve(a, b):
    """Theano's ``slinalg.solve``: ``x`` with ``a @ x = b`` (a general ``a``)."""
    return Solve()(a, b)


def _triangle(a, lower, unit_diagonal):
    a = _square(a, "solve_triangular")
    part = tril(a, -1 if unit_diagonal else 0) if lower else triu(a, 1 if unit_diagonal else 0)
    if unit_diagonal:
        part = part + eye(shape(a)[-1], dtype=a.dtype)
    return part


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False):
    """SciPy's ``solve_triangular``: ``x`` with ``op(a) @ x = b``, reading
    only the lower (``lower=True``) or upper triangle of ``a`` (its
    diagonal taken as ones with ``unit_diagonal``); ``trans``: 0/'N'
    (``a``), 1/'T' (``a^T``), 2/'C' (``a^H``)."""
    trans = {"N": 0, "T": 1, "C": 2}.get(trans, trans)
    if trans not in (0, 1, 2):
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', "
                         f"got {trans!r}")
    tri = _triangle(a, lower, unit_diagonal)
    if trans:
        tri = _mT(tri)
        tri = ew.conj(tri) if trans == 2 and tri.dtype[0] == "c" else tri
    return Solve()(tri, b)


def solve_lower_triangular(a, b):
    """Theano's ``solve_lower_triangular``: ``solve`` with the lower triangle of ``a``."""
    return solve_triangular(a, b, lower=True)


def solve_upper_triangular(a, b):
    """Theano's ``solve_upper_triangular``: ``solve`` with the upper triangle of ``a``."""
    return solve_triangular(a, b, lower=False)


def solve_symmetric(a, b):
    """Theano's ``solve_symmetric``: ``solve`` for a symmetric ``a`` (the
    general solve gives the same answer; Theano's gradient is the general one)."""
    return Solve()(a, b)


def _symmetric(a, lower):
    """The symmetric matrix of ``a``'s lower (upper) triangle."""
    return tril(a) + _mT(tril(a, -1)) if lower else triu(a) + _mT(triu(a, 1))


def eigvalsh(a, b=None, lower=True):
    """Theano's ``slinalg.eigvalsh(a, b, lower=True)``: the ascending
    eigenvalues ``w`` of ``a v = w b v`` (``b`` symmetric positive definite;
    ``b=None``: the ordinary problem), reading the lower (or upper)
    triangle of each."""
    if b is None:
        return _eigvalsh(a, "L" if lower else "U")
    low = Cholesky()(_symmetric(b, lower))
    half = Solve()(low, _symmetric(a, lower))        # L^-1 a
    c = Solve()(low, _mT(half))                      # L^-1 (L^-1 a)^T = L^-1 a L^-T
    return _eigvalsh(c, "L")


# ------------------------------------------------------------------ expm
def _expm_pade(a):
    """``expm`` of one matrix without SciPy: a [6/6] Padé approximant on
    ``a / 2^s`` (norm below 1/2), squared ``s`` times."""
    norm = np.linalg.norm(a, 1)
    s = max(0, int(np.ceil(np.log2(norm / 0.5)))) if norm > 0.5 else 0
    a = a / 2.0 ** s
    c = [1.0, 1 / 2, 5 / 44, 1 / 66, 1 / 792, 1 / 15840, 1 / 665280]
    eye_ = np.eye(a.shape[0], dtype=a.dtype)
    power, num, den = eye_, c[0] * eye_, c[0] * eye_
    for k in range(1, 7):
        power = power @ a
        num = num + c[k] * power
        den = den + (-1) ** k * c[k] * power
    out = np.linalg.solve(den, num)
    for _ in range(s):
        out = out @ out
    return out


def _expm_host(a):
    try:
        from scipy.linalg import expm as scipy_expm
    except ImportError:
        scipy_expm = None
    if scipy_expm is not None:
        return scipy_expm(a)
    return _expm_pade(a)


class Expm(Op):
    """The matrix exponential of a square matrix (Theano's ``Expm``)."""

    def make_node(self, a):
        a = _square(a, "expm")
        if a.ndim != 2:
            raise ValueError(f"expm: a must be a matrix, got ndim {a.ndim}")
        return Apply(self, [a], [TensorType(a.dtype, _square_shape(a))()])

    def impl(self, xp, a):
        if xp is np:
            return np.asarray(_expm_host(a), dtype=a.dtype)
        from cupyx.scipy.linalg import expm as cupy_expm  # (only with CuPy arrays)
        return cupy_expm(a).astype(a.dtype, copy=False)

    def vjp(self, node, output_grads):
        a, = node.inputs
        g, = output_grads
        at = _mT(a)      # (no conjugate: the holomorphic convention of ops/nlinalg.py)
        top = concatenate([at, g], axis=1)
        bottom = concatenate([zeros_like(at), at], axis=1)
        block = Expm()(concatenate([top, bottom], axis=0))
        n = shape(a)[0]
        return [block[:n, n:]]


def expm(a):
    """Theano's ``slinalg.expm``: the matrix exponential of ``a``."""
    return Expm()(a)
