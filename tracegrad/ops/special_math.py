"""Special functions (erf, gamma, digamma...) for an array module.

SciPy (or ``cupyx.scipy.special`` on the GPU) is used when installed; without
it, NumPy fallbacks built on the standard library's ``math`` functions (exact
to the last digit, but a Python loop) or on classic series keep the op set
complete with only NumPy installed.
"""
import math

import numpy as np


def _special(xp):
    if xp is np:
        try:
            import scipy.special as sp
            return sp
        except ImportError:
            return None
    try:
        import cupyx.scipy.special as sp
        return sp
    except ImportError:  # pragma: no cover
        return None


def _float_out(x):
    x = np.asarray(x)
    dt = x.dtype if x.dtype.kind in "fc" else np.exp(np.zeros(0, x.dtype)).dtype
    return x, dt


def _via_math(fn, x):
    x, dt = _float_out(x)
    v = np.frompyfunc(fn, 1, 1)(x.astype(np.float64))
    return np.asarray(v, dtype=np.float64).astype(dt, copy=False)


def _safe(fn):
    def wrapped(v):
        try:
            return fn(v)
        except (ValueError, OverflowError):
            if math.isnan(v):
                return math.nan
            if fn is math.gamma:
                if v == 0:
                    return math.copysign(math.inf, v)
                if v < 0 and v == math.floor(v):
                    return math.nan
                return math.inf
            if fn is math.lgamma:
                return math.inf
            return math.nan
    return wrapped


def erf(xp, x):
    sp = _special(xp)
    return sp.erf(x) if sp else _via_math(math.erf, x)


def erfc(xp, x):
    sp = _special(xp)
    return sp.erfc(x) if sp else _via_math(math.erfc, x)


def gamma(xp, x):
    sp = _special(xp)
    return sp.gamma(x) if sp else _via_math(_safe(math.gamma), x)


def gammaln(xp, x):
    sp = _special(xp)
    return sp.gammaln(x) if sp else _via_math(_safe(math.lgamma), x)


def erfinv(xp, x):
    sp = _special(xp)
    if sp:
        return sp.erfinv(x)
    x, dt = _float_out(x)
    x64 = x.astype(np.float64)
    # Giles' single-precision approximation, then Newton steps on erf.
    w = -np.log((1.0 - x64) * (1.0 + x64))
    small = w < 5.0
    ws = w - 2.5
    p_small = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
        p_small = c + p_small * ws
    wl = np.sqrt(np.maximum(w, 0)) - 3.0
    p_large = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
              -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
        p_large = c + p_large * wl
    y = np.where(small, p_small, p_large) * x64
    erf_fn = np.frompyfunc(math.erf, 1, 1)
    finite = np.isfinite(y)
    for _ in range(3):
        err = np.asarray(erf_fn(np.where(finite, y, 0.0)), dtype=np.float64) - x64
        y = np.where(finite, y - err / (2.0 / math.sqrt(math.pi) * np.exp(-y * y)), y)
    y = np.where(x64 == 1, np.inf, np.where(x64 == -1, -np.inf, y))
    y = np.where(np.abs(x64) > 1, np.nan, y)
    return y.astype(dt, copy=False)


def psi(xp, x):
    sp = _special(xp)
    if sp:
        return sp.psi(x)
    x, dt = _float_out(x)
    return _polygamma_fallback(0, x.astype(np.float64)).astype(dt, copy=False)


def tri_gamma(xp, x):
    sp = _special(xp)
    if sp:
        dt = x.dtype if x.dtype.kind in "fc" else np.exp(np.zeros(0, x.dtype)).dtype
        return sp.polygamma(1, x).astype(dt, copy=False)
    x, dt = _float_out(x)
    return _polygamma_fallback(1, x.astype(np.float64)).astype(dt, copy=False)


def _polygamma_fallback(order, x):
    """digamma (order 0) / trigamma (order 1): recurrence up to x >= 6 then the
    asymptotic series; reflection for negative x."""
    x = np.array(x, dtype=np.float64, copy=True)
    result = np.zeros_like(x)
    bad = (x <= 0) & (x == np.floor(x))
    neg = x < 0
    if order == 0:
        # psi(1 - x) - psi(x) = pi cot(pi x)
        refl = np.where(neg, -math.pi / np.tan(math.pi * np.where(neg, x, 0.5)), 0.0)
    else:
        refl = np.where(neg, (math.pi / np.sin(math.pi * np.where(neg, x, 0.5))) ** 2, 0.0)
    z = np.where(neg, 1.0 - x, x)
    while True:
        low = z < 6
        if not low.any():
            break
        result -= np.where(low, (1.0 / z) if order == 0 else -(1.0 / (z * z)), 0.0)
        z = np.where(low, z + 1.0, z)
    inv = 1.0 / z
    inv2 = inv * inv
    if order == 0:
        series = np.log(z) - 0.5 * inv - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (
            1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
        value = series + result
        value = np.where(neg, value + refl, value)
    else:
        series = inv + 0.5 * inv2 + inv * inv2 * (1 / 6 - inv2 * (1 / 30 - inv2 * (
            1 / 42 - inv2 / 30)))
        value = series + result
        value = np.where(neg, refl - value, value)
    return np.where(bad, np.nan, value)
