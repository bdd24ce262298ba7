"""NumPy's names for the elementwise table: ``where``, ``clip``, ``round``,
the aliases (``multiply`` for ``mul``...), and the NumPy functions that
dispatch to them on traced values (``np.where(x > 0, x, 0)``)."""
import math

import numpy as np

from tracegrad.ops.elemwise import (abs, and_, angle, cast, clip_, conj, deg2rad, eq,
                                    floor_div, ge, gt, imag, invert, isinf, isnan, le, lt,
                                    maximum, minimum, mod, mul, neg, neq, or_, pow, rad2deg,
                                    real, rint, sign, sinc, sqr, sub, switch, true_div, xor)
from tracegrad.tensor.dispatch import implements, register_ufunc
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["where", "clip", "round", "square", "true_divide", "abs_", "negative",
           "subtract", "multiply", "divide", "floor_divide", "remainder", "power",
           "not_equal", "equal", "less", "less_equal", "greater", "greater_equal",
           "bitwise_and", "bitwise_or", "bitwise_xor", "conjugate", "bitwise_not",
           "radians", "degrees", "nan_to_num"]


def where(condition, x=None, y=None):
    """``np.where(condition, x, y)`` (the one-argument form is not supported)."""
    if x is None or y is None:
        raise TypeError("where(condition) without x and y has a data-dependent shape; "
                        "tracegrad supports where(condition, x, y)")
    return switch(condition, x, y)


def clip(x, a_min, a_max):
    """``np.clip``: ``a_min``/``a_max`` may be ``None``."""
    if a_min is None and a_max is None:
        raise ValueError("clip needs a_min or a_max")
    if a_min is None:
        return minimum(x, a_max)
    if a_max is None:
        return maximum(x, a_min)
    return clip_(x, a_min, a_max)


def round(x, decimals=0):
    """NumPy ``round`` (half to even)."""
    x = as_tensor_variable(x)
    if decimals == 0:
        return rint(x) if x.dtype[0] in "fc" else x
    if x.dtype[0] not in "fc":
        if decimals > 0:
            return x
        scale = 10 ** (-decimals)
        return cast(rint(true_div(x, scale)) * scale, x.dtype)
    scale = 10.0 ** decimals
    return true_div(rint(mul(x, scale)), scale)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NumPy ``nan_to_num``: NaN -> ``nan``, +-inf -> ``posinf``/``neginf``
    (the dtype's largest finite values by default); ``copy`` is moot here."""
    x = as_tensor_variable(x)
    if x.dtype[0] == "c":
        parts = [real(x), imag(x)]
        fixed = [_nan_to_num_real(p, nan, posinf, neginf) for p in parts]
        return fixed[0] + fixed[1] * 1j
    if x.dtype[0] != "f":
        return x
    return _nan_to_num_real(x, nan, posinf, neginf)


def _nan_to_num_real(x, nan, posinf, neginf):
    big = float(np.finfo(x.dtype).max)
    for name, value in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if value is not None and not isinstance(value, (int, float, np.number)):
            raise TypeError(f"nan_to_num: {name} must be a number, got {value!r}")
    with np.errstate(over="ignore"):  # (a value too big for the dtype is inf, as in NumPy)
        nan, posinf, neginf = (as_tensor_variable(np.asarray(v, x.dtype)) for v in
                               (nan, big if posinf is None else posinf,
                                -big if neginf is None else neginf))
    return switch(isnan(x), nan, switch(isinf(x), switch(gt(x, 0), posinf, neginf), x))


def square(x):
    """Same as ``sqr``."""
    return sqr(x)


# NumPy names of rows (the same function objects).
abs_ = abs
negative = neg
subtract = sub
multiply = mul
divide = true_div
true_divide = true_div
floor_divide = floor_div
remainder = mod
power = pow
not_equal = neq
equal = eq
less = lt
less_equal = le
greater = gt
greater_equal = ge
bitwise_and = and_
bitwise_or = or_
bitwise_xor = xor
conjugate = conj
bitwise_not = invert
radians = deg2rad
degrees = rad2deg

register_ufunc(np.sign, sign)
register_ufunc(np.square, sqr)
register_ufunc(np.rint, rint)
register_ufunc(np.radians, deg2rad)
register_ufunc(np.degrees, rad2deg)


def _register_functions():
    implements(np.where)(where)
    implements(np.clip)(clip)
    implements(np.round, getattr(np, "around", np.round))(round)
    implements(np.real)(real)
    implements(np.imag)(imag)
    implements(np.angle)(_np_angle)
    implements(np.sinc)(sinc)
    implements(np.nan_to_num)(nan_to_num)


def _np_angle(z, deg=False):
    out = angle(z)
    return out * (180.0 / math.pi) if deg else out


_register_functions()
