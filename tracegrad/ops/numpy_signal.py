"""NumPy's sampled-signal functions over traced arrays: ``trapezoid``
(``trapz``), ``gradient``, ``interp``, ``unwrap``, ``convolve`` and
``correlate``, composed of existing ops (gradients and jvps for free) plus
``SearchSorted`` (integer output, no gradient) for ``interp``.

Gradient choices:

- ``interp``: piecewise linear in ``fp`` and in ``x`` (the slope of the
  segment ``x`` falls in; 0 outside ``[xp[0], xp[-1]]``), and in ``xp``.
- ``unwrap``: the correction added to ``p`` is piecewise constant, so the
  gradient is the identity (NumPy's values otherwise).
- ``convolve``/``correlate``: a sliding-window gather of the first operand
  times the second, summed over the in-range products (memory and time
  ``O((n + m) * m)``: meant for short kernels).
"""
import math

import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import arange
from tracegrad.ops.cumulative import argsort, cumsum
from tracegrad.ops.elemwise import cast
from tracegrad.ops.index import take
from tracegrad.ops.manip import diff
from tracegrad.ops.reduce import sum as _sum
from tracegrad.ops.shape import concatenate, dimshuffle, shape
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["trapezoid", "trapz", "gradient", "interp", "unwrap", "convolve", "correlate",
           "searchsorted", "SearchSorted"]


def _slice(x, axis, start=None, stop=None):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _float(x):
    return x if x.dtype[0] in "fc" else cast(x, "float64")


# ------------------------------------------------------------ trapezoid
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """NumPy ``trapezoid``: the trapezoidal rule along ``axis`` with sample
    points ``x`` (1-d, or shaped like ``y``) or spacing ``dx``."""
    y = as_tensor_variable(y)
    (axis,) = normalize_axis(axis, y.ndim, "trapezoid")
    if x is None:
        d = as_tensor_variable(dx)
    else:
        x = as_tensor_variable(x)
        d = diff(x) if x.ndim == 1 else diff(x, axis=axis)
        if x.ndim == 1 and y.ndim > 1:
            d = dimshuffle(d, ["x"] * axis + [0] + ["x"] * (y.ndim - axis - 1))
    mid = ew.true_div(ew.add(_slice(y, axis, 1), _slice(y, axis, None, -1)), 2.0)
    return _sum(ew.mul(d, mid), axis=axis)


trapz = trapezoid
implements(np.trapezoid)(trapezoid)
if hasattr(np, "trapz"):        # (removed in NumPy 2.4)
    implements(np.trapz)(trapezoid)


# ------------------------------------------------------------ gradient
def _spacings(f, varargs, axes):
    n = len(varargs)
    if n == 0:
        return [None] * len(axes)
    if n == 1 and np.ndim(varargs[0]) == 0:
        return [as_tensor_variable(varargs[0])] * len(axes)
    if n != len(axes):
        raise TypeError(f"gradient: {n} spacings given for {len(axes)} axes")
    out = []
    for v in varargs:
        v = as_tensor_variable(v)
        if v.ndim > 1:
            raise ValueError("gradient: distances must be either scalars or 1d")
        out.append(v)
    return out


def _uniform(f, axis, h, edge_order):
    n = 1.0 if h is None else h          # (a Python float keeps f's dtype)
    twice = 2.0 if h is None else ew.mul(2.0, n)
    inner = ew.true_div(ew.sub(_slice(f, axis, 2), _slice(f, axis, None, -2)), twice)
    f0, f1, f2 = (_slice(f, axis, k, k + 1) for k in range(3))
    e0, e1, e2 = (_slice(f, axis, k, (k + 1) or None) for k in (-1, -2, -3))
    if edge_order == 1:
        first = ew.true_div(ew.sub(f1, f0), n)
        last = ew.true_div(ew.sub(e0, e1), n)
    else:
        first = ew.true_div(ew.add(ew.add(ew.mul(-1.5, f0), ew.mul(2.0, f1)),
                                   ew.mul(-0.5, f2)), n)
        last = ew.true_div(ew.add(ew.add(ew.mul(0.5, e2), ew.mul(-2.0, e1)),
                                  ew.mul(1.5, e0)), n)
    return concatenate([first, inner, last], axis=axis)


def _along(v, axis, ndim):
    return dimshuffle(v, ["x"] * axis + [0] + ["x"] * (ndim - axis - 1))


def _coordinates(f, axis, x, edge_order):
    dx = diff(x)
    nd = f.ndim
    dx1, dx2 = _along(dx[:-1], axis, nd), _along(dx[1:], axis, nd)
    a = ew.neg(ew.true_div(dx2, ew.mul(dx1, ew.add(dx1, dx2))))
    b = ew.true_div(ew.sub(dx2, dx1), ew.mul(dx1, dx2))
    c = ew.true_div(dx1, ew.mul(dx2, ew.add(dx1, dx2)))
    inner = ew.add(ew.add(ew.mul(a, _slice(f, axis, None, -2)),
                          ew.mul(b, _slice(f, axis, 1, -1))), ew.mul(c, _slice(f, axis, 2)))
    f0, f1, f2 = (_slice(f, axis, k, k + 1) for k in range(3))
    e0, e1, e2 = (_slice(f, axis, k, (k + 1) or None) for k in (-1, -2, -3))
    if edge_order == 1:
        first = ew.true_div(ew.sub(f1, f0), dx[0])
        last = ew.true_div(ew.sub(e0, e1), dx[-1])
    else:
        d1, d2 = dx[0], dx[1]
        first = ew.add(ew.add(
            ew.mul(ew.neg(ew.true_div(ew.add(ew.mul(2.0, d1), d2), ew.mul(d1, ew.add(d1, d2)))),
                   f0),
            ew.mul(ew.true_div(ew.add(d1, d2), ew.mul(d1, d2)), f1)),
            ew.mul(ew.neg(ew.true_div(d1, ew.mul(d2, ew.add(d1, d2)))), f2))
        d1, d2 = dx[-2], dx[-1]
        last = ew.add(ew.add(
            ew.mul(ew.true_div(d2, ew.mul(d1, ew.add(d1, d2))), e2),
            ew.mul(ew.neg(ew.true_div(ew.add(d2, d1), ew.mul(d1, d2))), e1)),
            ew.mul(ew.true_div(ew.add(ew.mul(2.0, d2), d1), ew.mul(d2, ew.add(d1, d2))), e0))
    return concatenate([first, inner, last], axis=axis)


@implements(np.gradient)
def gradient(f, *varargs, axis=None, edge_order=1):
    """NumPy ``gradient``: second-order central differences inside, one-sided
    differences of ``edge_order`` (1 or 2) at the ends; spacings are scalars
    or 1-d coordinates (traced allowed). A tuple for several axes."""
    f = as_tensor_variable(f)
    if edge_order not in (1, 2):
        raise ValueError("gradient: 'edge_order' greater than 2 not supported")
    if f.ndim == 0:
        raise ValueError("gradient: a 0-d array has no axis to differentiate along")
    axes = normalize_axis(axis, f.ndim, "gradient") if axis is not None else \
        tuple(range(f.ndim))
    if isinstance(axis, (list, tuple)) or axis is None:
        order = list(axis) if axis is not None else list(axes)
        axes = tuple(a % f.ndim for a in order)
    else:
        axes = (axis % f.ndim,)
    for ax in axes:
        if f.type.shape[ax] is not None and f.type.shape[ax] < edge_order + 1:
            raise ValueError("gradient: shape of the array too small to calculate a "
                             "numerical gradient, at least (edge_order + 1) elements "
                             "are required")
    f = _float(f)
    out = []
    for ax, h in zip(axes, _spacings(f, varargs, axes)):
        if h is not None and h.ndim == 1:
            out.append(_coordinates(f, ax, _float(h), edge_order))
        else:
            out.append(_uniform(f, ax, h, edge_order))
    return out[0] if len(out) == 1 else tuple(out)


# ------------------------------------------------------------ interp
class SearchSorted(Op):
    """``xp.searchsorted(a, v, side)`` for a sorted 1-d ``a`` (int64 indices)."""

    __props__ = ("side",)

    def __init__(self, side="left"):
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        self.side = side

    def make_node(self, a, v):
        a, v = as_tensor_variable(a), as_tensor_variable(v)
        if a.ndim != 1:
            raise ValueError(f"searchsorted: a must be 1-d, got ndim {a.ndim}")
        return Apply(self, [a, v], [TensorType("int64", v.type.shape)()])

    def impl(self, xp, a, v):
        return xp.searchsorted(a, v, side=self.side).astype("int64", copy=False)

    def vjp(self, node, output_grads):
        return [None, None]


@implements(np.searchsorted)
def searchsorted(a, v, side="left", sorter=None):
    """NumPy ``searchsorted`` (integer output: no gradient)."""
    a = as_tensor_variable(a)
    if sorter is not None:
        a = take(a, sorter)
    return SearchSorted(side)(a, v)


def _periodic(x, xp, fp, period):
    period = abs(float(period))
    if period == 0:
        raise ValueError("interp: period must be a non-zero value")
    x, xp = ew.mod(x, period), ew.mod(xp, period)
    order = argsort(xp)
    xp, fp = take(xp, order), take(fp, order)
    xp = concatenate([ew.sub(xp[-1:], period), xp, ew.add(xp[0:1], period)])
    fp = concatenate([fp[-1:], fp, fp[0:1]])
    return x, xp, fp


@implements(np.interp)
def interp(x, xp, fp, left=None, right=None, period=None):
    """NumPy ``interp``: piecewise-linear interpolation of ``(xp, fp)`` at
    ``x``; differentiable in ``x``, ``fp`` (real or complex) and ``xp``."""
    x, xp, fp = (as_tensor_variable(v) for v in (x, xp, fp))
    if xp.ndim != 1 or fp.ndim != 1:
        raise ValueError("interp: xp and fp must be 1-d sequences")
    if xp.type.shape[0] is not None and fp.type.shape[0] not in (None, xp.type.shape[0]):
        raise ValueError("interp: fp and xp are not of the same length")
    out_dtype = "complex128" if fp.dtype[0] == "c" else "float64"
    x, xp, fp = cast(x, "float64"), cast(xp, "float64"), cast(fp, out_dtype)
    if period is not None:
        x, xp, fp = _periodic(x, xp, fp, period)
        left = right = None
    n = shape(xp)[0]
    j = ew.clip_(ew.sub(SearchSorted("right")(xp, x), 1), 0, ew.maximum(ew.sub(n, 2), 0))
    j1 = ew.minimum(ew.add(j, 1), ew.sub(n, 1))
    x0, x1, y0, y1 = take(xp, j), take(xp, j1), take(fp, j), take(fp, j1)
    width = ew.sub(x1, x0)
    safe = ew.switch(ew.eq(width, 0), 1.0, width)
    y = ew.add(ew.mul(ew.true_div(ew.sub(y1, y0), safe), ew.sub(x, x0)), y0)
    y = ew.switch(ew.eq(width, 0), y0, y)
    y = ew.switch(ew.eq(x, xp[-1]), fp[-1], y)
    lo = fp[0] if left is None else cast(as_tensor_variable(left), out_dtype)
    hi = fp[-1] if right is None else cast(as_tensor_variable(right), out_dtype)
    y = ew.switch(ew.lt(x, xp[0]), lo, ew.switch(ew.gt(x, xp[-1]), hi, y))
    return cast(y, out_dtype) if y.dtype != out_dtype else y


# ------------------------------------------------------------ unwrap
@implements(np.unwrap)
def unwrap(p, discont=None, axis=-1, *, period=2 * math.pi):
    """NumPy ``unwrap``: jumps larger than ``discont`` along ``axis`` are
    corrected by multiples of ``period`` (the gradient is the identity)."""
    p = as_tensor_variable(p)
    (axis,) = normalize_axis(axis, p.ndim, "unwrap")
    dd = diff(p, axis=axis)
    if discont is None:
        discont = period / 2
    dtype = np.result_type(np.zeros((), dd.dtype), period).name
    if np.dtype(dtype).kind in "iu":
        high, rem = divmod(period, 2)
        ambiguous = rem == 0
    else:
        high, ambiguous = period / 2, True
    low = -high
    ddmod = ew.add(ew.mod(ew.sub(dd, low), period), low)
    if ambiguous:
        ddmod = ew.switch(ew.and_(ew.eq(ddmod, low), ew.gt(dd, 0)), high, ddmod)
    correct = ew.switch(ew.lt(ew.abs(dd), discont), 0, ew.sub(ddmod, dd))
    up = cast(p, dtype) if p.dtype != dtype else p
    rest = ew.add(_slice(up, axis, 1), cumsum(correct, axis=axis))
    return concatenate([_slice(up, axis, 0, 1), cast(rest, dtype)], axis=axis)


# ------------------------------------------------------------ convolve, correlate
def _full_correlation(a, v):
    """``c[k] = sum_j a[k + j - (m - 1)] * v[j]`` for ``k`` in ``[0, n + m - 1)``
    over the ``j`` where ``a``'s index is in range: products with the pad
    are left out (not multiplied by 0), so an inf or NaN stays where NumPy
    has it."""
    n, m = shape(a)[0], shape(v)[0]
    src = ew.add(dimshuffle(arange(ew.sub(ew.add(n, m), 1)), (0, "x")),
                 dimshuffle(ew.sub(arange(m), ew.sub(m, 1)), ("x", 0)))
    valid = ew.and_(ew.ge(src, 0), ew.lt(src, n))
    windows = take(a, ew.clip_(src, 0, ew.maximum(ew.sub(n, 1), 0)))
    return _sum(ew.switch(valid, ew.mul(windows, v), np.asarray(0, a.dtype)), axis=1,
                dtype=a.dtype)


def _prepare(a, v, fname):
    a, v = as_tensor_variable(a), as_tensor_variable(v)
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError(f"{fname}: object too deep for desired array (inputs must be 1-d, "
                         f"got ndims {a.ndim} and {v.ndim})")
    for name, t in (("a", a), ("v", v)):
        if t.type.shape[0] == 0:
            raise ValueError(f"{fname}: {name} cannot be empty")
    dtype = np.result_type(a.dtype, v.dtype).name
    return cast(a, dtype), cast(v, dtype)


def _mode_window(full, n, m, mode, same_offset):
    if mode == "full":
        return full
    short, long_ = ew.minimum(n, m), ew.maximum(n, m)
    if mode == "valid":
        start = ew.sub(short, 1)
        return full[start:ew.add(start, ew.add(ew.sub(long_, short), 1))]
    return full[same_offset:ew.add(same_offset, long_)]


def _check_mode(mode, fname):
    modes = {0: "valid", 1: "same", 2: "full"}
    mode = modes.get(mode, mode)
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"{fname}: mode must be 'full', 'same' or 'valid', got {mode!r}")
    return mode


@implements(np.convolve)
def convolve(a, v, mode="full"):
    """NumPy ``convolve`` of two 1-d arrays (modes full, same, valid)."""
    mode = _check_mode(mode, "convolve")
    a, v = _prepare(a, v, "convolve")
    full = _full_correlation(a, v[::-1])
    n, m = shape(a)[0], shape(v)[0]
    offset = ew.floor_div(ew.sub(ew.minimum(n, m), 1), 2)
    return _mode_window(full, n, m, mode, offset)


@implements(np.correlate)
def correlate(a, v, mode="valid"):
    """NumPy ``correlate`` (``c[k] = sum_n a[n + k] * conj(v[n])``; modes
    full, same, valid)."""
    mode = _check_mode(mode, "correlate")
    a, v = _prepare(a, v, "correlate")
    full = _full_correlation(a, ew.conj(v) if v.dtype[0] == "c" else v)
    n, m = shape(a)[0], shape(v)[0]
    # (NumPy swaps the operands when v is longer: the 'same' window moves)
    offset = ew.switch(ew.gt(m, n), ew.floor_div(n, 2), ew.floor_div(ew.sub(m, 1), 2))
    return _mode_window(full, n, m, mode, offset)

