"""``scipy.special``'s ufuncs as elementwise rows (issue 16, "NumPy drop-in").

Each function is a row of the elementwise table (``row``, as in
``ops/elemwise.py``): the forward calls ``scipy.special`` (``cupyx.scipy.special``
on the GPU) through ``special_math._special``, with a NumPy fallback where one
is a line or two (``xlogy``, ``logit``, ``ndtr``...); the others need SciPy and
say so when a graph uses them without it. The rows already in the table
(``erf``, ``erfc``, ``erfinv``, ``gamma``, ``gammaln``, ``psi``, ``sigmoid``)
are reused; ``digamma``, ``expit`` and ``log_expit`` are names over them.

Gradients are built from rows, so every rule is differentiable again (the jvp
is the double vjp, ``grad/forward.py``). Arguments without a derivative in
closed form or at all are refused with ``NotDifferentiableError`` when a
gradient is asked through them (``NoGradient``, ``ops/base.py``): the
integer order ``n``/``v`` of ``polygamma``, ``jn``, ``yn``, ``iv``, ``ive``
and the shape ``a`` of ``gammainc``/``gammaincc``.

``scipy.special.<name>(variable)`` reaches these rows through
``__array_ufunc__``: ``register_ufunc_by_name`` binds SciPy's ufunc once
``scipy.special`` has been imported (SciPy stays optional). The ``scipy.special``
functions that are not ufuncs (``logsumexp``, ``softmax``, ``log_softmax``)
are compositions in ``tracegrad.scipy.special``.
"""
import math

import numpy as np

from tracegrad.ops import special_math as sm
from tracegrad.ops.base import NoGradient, ScalarOp, row, row_by_name
from tracegrad.ops import elemwise as _elemwise
from tracegrad.ops.elemwise import (eq, exp, gammaln, log, log1p, neg, psi, sigmoid, sign,
                                    softplus, sqr, switch, true_div)
from tracegrad.tensor.dispatch import implements, register_ufunc_by_name

_SQRT_2PI = math.sqrt(2 * math.pi)


def _scipy_impl(name, fallback=None):
    """``impl`` calling ``scipy.special.<name>`` (or ``fallback(xp, *arrays)``
    without SciPy; without either, an ``ImportError`` naming the function)."""
    def impl(xp, *arrays):
        sp = sm._special(xp)
        if sp is not None and hasattr(sp, name):
            return getattr(sp, name)(*arrays)
        if fallback is not None:
            return fallback(xp, *arrays)
        raise ImportError(f"tracegrad's {name} computes scipy.special.{name}: install SciPy "
                          "(pip install scipy, or the extra tracegrad[scipy])")
    impl.__name__ = f"scipy_{name}"
    return impl


def _order_refused(fname, arg):
    return NoGradient(f"{fname}: no gradient with respect to {arg} (an order, not "
                      "differentiable in tracegrad); pass it as a constant or an integer")


# ------------------------------------------------------------ NumPy fallbacks
def _xlogy_np(xp, x, y, log_fn="log"):
    with np.errstate(divide="ignore", invalid="ignore"):
        value = x * getattr(xp, log_fn)(y)
    # scipy: 0 where x == 0, unless y is NaN
    return xp.where((x == 0) & ~xp.isnan(y), xp.zeros_like(value), value)


def _logit_np(xp, p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.log(p / (1 - p))


def _ndtr_np(xp, x):
    x = xp.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype("float64")
    return (0.5 * sm.erfc(xp, -x.astype(dt) / math.sqrt(2))).astype(dt, copy=False)


def _entr_np(xp, x):
    with np.errstate(divide="ignore", invalid="ignore"):
        v = -x * xp.log(x)
    v = xp.where(x == 0, xp.zeros_like(v), v)
    return xp.where(x < 0, -xp.inf, v)


def _rel_entr_np(xp, x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        v = x * xp.log(x / y)
    v = xp.where((x == 0) & (y >= 0), xp.zeros_like(v), v)
    bad = (x < 0) | (y < 0) | ((x > 0) & (y == 0))
    return xp.where(bad & ~(xp.isnan(x) | xp.isnan(y)), xp.inf, v)


# ------------------------------------------------------------ the rows
# No row has a C expression (``c=None``): the fused CPU C++ tier
# (``backend/csource.py``) and CUDA read the same template, and the C++
# library lacks these functions or (POSIX ``j0``...) differs from SciPy far
# out; the rows run through ``impl`` and are left out of compiled kernels.
# (x,), out, gz -> [dx]
erfcinv = row("erfcinv", 1, _scipy_impl("erfcinv"), None,
    lambda i, o, gz: [gz * (-math.sqrt(math.pi) / 2) * exp(sqr(o))])
# erfcx = exp(x^2) erfc(x): d/dx = 2 x erfcx(x) - 2 / sqrt(pi)
erfcx = row("erfcx", 1, _scipy_impl("erfcx"), None,
    lambda i, o, gz: [gz * (i[0] * o * 2 - 2 / math.sqrt(math.pi))],
    positive=True, finite_if_inputs=True)
logit = row("logit", 1, _scipy_impl("logit", _logit_np), None,
    lambda i, o, gz: [gz / (i[0] * (1 - i[0]))])
ndtr = row("ndtr", 1, _scipy_impl("ndtr", _ndtr_np), None,
    lambda i, o, gz: [gz * exp(sqr(i[0]) * -0.5) * (1 / _SQRT_2PI)],
    positive=True, bounded=True, finite_if_inputs=True)
ndtri = row("ndtri", 1, _scipy_impl("ndtri"), None,
    lambda i, o, gz: [gz * _SQRT_2PI * exp(sqr(o) * 0.5)])
# d log_ndtr/dx = pdf(x) / ndtr(x) = exp(-x^2/2 - log_ndtr(x)) / sqrt(2 pi):
# one exp of a moderate number, where pdf and ndtr both underflow (x < -38).
log_ndtr = row("log_ndtr", 1, _scipy_impl("log_ndtr"), None,
    lambda i, o, gz: [gz * exp(sqr(i[0]) * -0.5 - o) * (1 / _SQRT_2PI)],
    finite_if_inputs=True)
# entr = -x log x: d/dx = -(log x + 1) (+inf at 0, the true slope)
entr = row("entr", 1, _scipy_impl("entr", _entr_np), None,
    lambda i, o, gz: [neg(gz * (log(i[0]) + 1))])
i0 = row("i0", 1, _scipy_impl("i0"), None,
    lambda i, o, gz: [gz * i1(i[0])], positive=True, finite_if_inputs=True)
i1 = row("i1", 1, _scipy_impl("i1"), None,
    lambda i, o, gz: [gz * _bessel1_slope(i[0], i0(i[0]), o)],
    positive_if_inputs=True, finite_if_inputs=True)
# i0e = exp(-|x|) i0: d/dx = i1e - sign(x) i0e
i0e = row("i0e", 1, _scipy_impl("i0e"), None,
    lambda i, o, gz: [gz * (i1e(i[0]) - sign(i[0]) * o)],
    positive=True, bounded=True, finite_if_inputs=True)
i1e = row("i1e", 1, _scipy_impl("i1e"), None,
    lambda i, o, gz: [gz * (_bessel1_slope(i[0], i0e(i[0]), o) - sign(i[0]) * o)],
    bounded=True, finite_if_inputs=True)
j0 = row("j0", 1, _scipy_impl("j0"), None,
    lambda i, o, gz: [neg(gz * j1(i[0]))], bounded=True, finite_if_inputs=True)
# j1' = (j0 - j2) / 2 (finite at 0, unlike j0 - j1 / x)
j1 = row("j1", 1, _scipy_impl("j1"), None,
    lambda i, o, gz: [gz * (j0(i[0]) - jn(2, i[0])) * 0.5],
    bounded=True, finite_if_inputs=True)
y0 = row("y0", 1, _scipy_impl("y0"), None,
    lambda i, o, gz: [neg(gz * y1(i[0]))])
y1 = row("y1", 1, _scipy_impl("y1"), None,
    lambda i, o, gz: [gz * (y0(i[0]) - yn(2, i[0])) * 0.5])

# (a, x) / (x, y), out, gz -> [da, dx]
# (beta, betaln: symmetric mathematically, but SciPy's values at the poles,
# negative integers, are not, so neither declares ``commutative``.)
# d polygamma(n, x)/dx = polygamma(n + 1, x)
polygamma = row("polygamma", 2, _scipy_impl("polygamma"), None,
    lambda i, o, gz: [_order_refused("polygamma", "the order n"),
                      gz * polygamma(i[0] + 1, i[1])])
beta = row("beta", 2, _scipy_impl("beta"), None,
    lambda i, o, gz: [gz * o * (psi(i[0]) - psi(i[0] + i[1])),
                      gz * o * (psi(i[1]) - psi(i[0] + i[1]))])
betaln = row("betaln", 2, _scipy_impl("betaln"), None,
    lambda i, o, gz: [gz * (psi(i[0]) - psi(i[0] + i[1])),
                      gz * (psi(i[1]) - psi(i[0] + i[1]))])
xlogy = row("xlogy", 2, _scipy_impl("xlogy", _xlogy_np), None,
    lambda i, o, gz: [gz * log(i[1]), gz * _x_over(i[0], i[1])])
xlog1py = row("xlog1py", 2, _scipy_impl("xlog1py", lambda xp, x, y: _xlogy_np(xp, x, y, "log1p")),
    None, lambda i, o, gz: [gz * log1p(i[1]), gz * _x_over(i[0], i[1] + 1)])
# rel_entr = x log(x / y): d/dx = log(x / y) + 1, d/dy = -x / y (0 where x == 0)
rel_entr = row("rel_entr", 2, _scipy_impl("rel_entr", _rel_entr_np), None,
    lambda i, o, gz: [gz * (log(true_div(i[0], i[1])) + 1), neg(gz * _x_over(i[0], i[1]))])
# iv' = (iv(v - 1) + iv(v + 1)) / 2; ive = exp(-|x|) iv: minus sign(x) ive
iv = row("iv", 2, _scipy_impl("iv"), None,
    lambda i, o, gz: [_order_refused("iv", "the order v"),
                      gz * (iv(i[0] - 1, i[1]) + iv(i[0] + 1, i[1])) * 0.5])
ive = row("ive", 2, _scipy_impl("ive"), None,
    lambda i, o, gz: [_order_refused("ive", "the order v"),
                      gz * ((ive(i[0] - 1, i[1]) + ive(i[0] + 1, i[1])) * 0.5
                            - sign(i[1]) * o)])
# scipy.special.jn is jv (any real order); yn truncates the order to an integer.
jn = row("jn", 2, _scipy_impl("jn"), None,
    lambda i, o, gz: [_order_refused("jn", "the order n"),
                      gz * (jn(i[0] - 1, i[1]) - jn(i[0] + 1, i[1])) * 0.5])
# Theano's jv (any real order v, as scipy.special.jv): the same rule as jn
jv = row("jv", 2, _scipy_impl("jv"), None,
    lambda i, o, gz: [_order_refused("jv", "the order v"),
                      gz * (jv(i[0] - 1, i[1]) - jv(i[0] + 1, i[1])) * 0.5])
yn = row("yn", 2, _scipy_impl("yn"), None,
    lambda i, o, gz: [_order_refused("yn", "the order n"),
                      gz * (yn(i[0] - 1, i[1]) - yn(i[0] + 1, i[1])) * 0.5])
# d gammainc(a, x)/dx = exp(-x) x^(a-1) / Gamma(a), written as one exp of
# logs (xlogy: the a == 1, x == 0 slope is 1, not 0 * -inf).
gammainc = row("gammainc", 2, _scipy_impl("gammainc"), None,
    lambda i, o, gz: [_shape_refused("gammainc"), gz * _gamma_density(i[0], i[1])])
gammaincc = row("gammaincc", 2, _scipy_impl("gammaincc"), None,
    lambda i, o, gz: [_shape_refused("gammaincc"), neg(gz * _gamma_density(i[0], i[1]))])


# ------------------------------------------------------------ guarded grad rules
def _bessel1_slope(x, zeroth, first):
    """``I0 - I1 / x`` (the slope of ``I1``; ``I0e - I1e / x`` for the
    scaled pair), 1/2 at ``x == 0`` (no 0 / 0 there)."""
    zero = eq(x, 0)
    return switch(zero, 0.5, zeroth - first / switch(zero, 1, x))


def _x_over(x, y):
    """``x / y``, 0 where ``x == 0`` (xlogy(0, y) is 0 for every y)."""
    zero = eq(x, 0)
    return switch(zero, 0, x / switch(zero, 1, y))


def _gamma_density(a, x):
    return exp(xlogy(a - 1, x) - x - gammaln(a))


def _shape_refused(fname):
    return NoGradient(f"{fname}: no gradient with respect to the shape a (its derivative "
                      "has no closed form; tracegrad does not provide it); pass a as a "
                      "constant")


# ------------------------------------------------------------ names over rows
def digamma(x):
    """``scipy.special.digamma`` (the same as ``psi``)."""
    return psi(x)


def expit(x):
    """``scipy.special.expit``: the logistic sigmoid (the ``sigmoid`` row)."""
    return sigmoid(x)


def log_expit(x):
    """``scipy.special.log_expit``: ``log(expit(x)) = -softplus(-x)``, stable
    at both ends."""
    return neg(softplus(neg(x)))


@implements(np.i0)
def _np_i0(x):
    return i0(x)


ROW_NAMES = ["erfcinv", "erfcx", "logit", "ndtr", "ndtri", "log_ndtr", "entr", "i0", "i1",
             "i0e", "i1e", "j0", "j1", "y0", "y1", "polygamma", "beta", "betaln", "xlogy",
             "xlog1py", "rel_entr", "iv", "ive", "jn", "yn", "gammainc", "gammaincc", "jv"]
__all__ = ROW_NAMES + ["digamma", "expit", "log_expit"]

# psi's derivative row (``ops/elemwise.py``) gets its own derivative here,
# where polygamma lives (elemwise sits below this module): second
# derivatives of gammaln/psi (hessians of Gamma/Dirichlet likelihoods).
row_by_name("tri_gamma").grad = lambda i, o, gz: [gz * polygamma(2, i[0])]


class _SciPyRow(ScalarOp):
    """A row whose ``ufunc`` is ``scipy.special``'s, found when first asked
    (SciPy is imported by the forward anyway): Python numbers mixed with
    arrays then take the dtype SciPy's loops give them (``resolve_weak``;
    ``gammainc(1.5, float32)`` is float64, ``jv(1.5, float32)`` float32)."""

    @property
    def ufunc(self):
        if "_scipy_ufunc" not in self.__dict__:
            sp = sm._special(np)
            found = getattr(sp, self.name, None) if sp is not None else None
            self.__dict__["_scipy_ufunc"] = found if isinstance(found, np.ufunc) else None
        return self.__dict__["_scipy_ufunc"]


for _name in ROW_NAMES:
    row_by_name(_name).__class__ = _SciPyRow  # (made by ``row`` as a plain ScalarOp)

# scipy.special's ufuncs answer with these functions on symbolic values.
for _name in ROW_NAMES + ["erf", "erfc", "erfinv", "gamma", "gammaln", "psi", "digamma",
                          "expit", "log_expit"]:
    register_ufunc_by_name("scipy.special", _name,
                           globals().get(_name) or getattr(_elemwise, _name))
del _name
