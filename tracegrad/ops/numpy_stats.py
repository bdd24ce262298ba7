"""NumPy's statistics over traced arrays, composed of existing ops (so each
has its gradient and jvp for free): ``average``, ``ptp``, ``median``,
``percentile``, ``quantile``, ``cov``, ``corrcoef``, the NaN-ignoring
reductions ``nansum``/``nanprod``/``nanmean``/``nanvar``/``nanstd``/
``nanmax``/``nanmin``, and NumPy 2's ``cumulative_sum``/``cumulative_prod``.

Gradient choices:

- ``median``/``percentile``/``quantile`` sort along the reduced axes and
  interpolate between the selected entries: the gradient goes to those
  entries (through ``sort``'s permutation), and for a traced ``q`` also to
  ``q`` (the slope between the two entries, for ``method='linear'``).
- the NaN reductions replace NaN by the reduction's identity first: NaN
  entries get gradient 0.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import broadcast_to, ones_like, zeros
from tracegrad.ops.cumulative import cumprod, cumsum, sort
from tracegrad.ops.elemwise import cast
from tracegrad.ops.index import take
from tracegrad.ops.linalg import diagonal, dot
from tracegrad.ops.reduce import all as _all, any as _any, max as _max, mean, min as _min
from tracegrad.ops.reduce import prod as _prod, sum as _sum
from tracegrad.ops.shape import (concatenate, dimshuffle, moveaxis, reshape, shape,
                                 squeeze)
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable

__all__ = ["average", "ptp", "median", "percentile", "quantile", "cov", "corrcoef",
           "nansum", "nanprod", "nanmean", "nanvar", "nanstd", "nanmax", "nanmin",
           "cumulative_sum", "cumulative_prod"]

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _no_out(name, out):
    if out is not None:
        raise TypeError(f"{name}(..., out=) cannot write into a symbolic variable")


def _real(dtype):
    return np.finfo(dtype).dtype.name if np.dtype(dtype).kind == "c" else dtype


def _float(x):
    return x if x.dtype[0] in "fc" else cast(x, "float64")


# ------------------------------------------------------------ average, ptp
@implements(np.average)
def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """NumPy ``average``; 1-d ``weights`` go along ``axis``. A zero sum of
    weights gives inf/nan (NumPy raises ``ZeroDivisionError``: the sum is
    not known while tracing)."""
    a = as_tensor_variable(a)
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        scl = _sum(ones_like(a, dtype=_real(avg.dtype)), axis, keepdims=keepdims)
    else:
        w = as_tensor_variable(weights)
        if a.dtype[0] in "iub":
            dtype = np.result_type(a.dtype, w.dtype, "f8").name
        else:
            dtype = np.result_type(a.dtype, w.dtype).name
        if w.ndim != a.ndim:
            w = _weights_along(a, w, axis)
        scl = _sum(w, axis, dtype=dtype, keepdims=keepdims)
        avg = ew.true_div(_sum(ew.mul(a, w), axis, dtype=dtype, keepdims=keepdims), scl)
    if returned:
        if scl.ndim != avg.ndim or scl.type.shape != avg.type.shape:
            scl = broadcast_to(scl, shape(avg))
        return avg, cast(scl, avg.dtype) if scl.dtype != avg.dtype else scl
    return avg


def _weights_along(a, w, axis):
    if axis is None:
        raise TypeError("average: axis must be given when weights and a differ in shape")
    if w.ndim != 1:
        raise TypeError(f"average: 1-d weights needed with a of ndim {a.ndim}, got ndim "
                        f"{w.ndim}")
    (ax,) = normalize_axis(axis, a.ndim, "average")
    return dimshuffle(w, ["x"] * ax + [0] + ["x"] * (a.ndim - ax - 1))


@implements(np.ptp)
def ptp(a, axis=None, out=None, keepdims=False):
    """NumPy ``ptp``: ``max - min`` (the gradient flows to both extremes)."""
    _no_out("ptp", out)
    return ew.sub(_max(a, axis, keepdims), _min(a, axis, keepdims))


# ------------------------------------------------------------ quantiles
def _last_axis_slices(x, axis):
    """``x`` with the reduced axes flattened into the last one; the kept
    axes (for ``keepdims``)."""
    if axis is None:
        return reshape(x, (-1,)), tuple(range(x.ndim))
    axes = normalize_axis(axis, x.ndim, "quantile")
    kept = [i for i in range(x.ndim) if i not in axes]
    x = dimshuffle(x, kept + list(axes))
    if len(axes) != 1:
        x = reshape(x, [shape(x)[i] for i in range(len(kept))] + [-1])
    return x, axes


def _check_q(q, q_scale, fname):
    if isinstance(q, Variable):
        return as_tensor_variable(q)
    qa = np.asarray(q)
    if qa.dtype.kind not in "iuf" or np.any((qa / q_scale < 0) | (qa / q_scale > 1)):
        raise ValueError(f"{fname}: q must be real and within "
                         f"[0, {'100' if q_scale != 1 else '1'}], got {q!r}")
    return qa


def _quantile(a, q, axis, method, keepdims, fname, q_scale=1.0, weights=None):
    if weights is not None:
        raise NotImplementedError(f"{fname}: weights= is not supported on traced arrays")
    if method not in _METHODS:
        raise NotImplementedError(f"{fname}: method {method!r} is not supported on traced "
                                  f"arrays; supported: {', '.join(_METHODS)}")
    a = as_tensor_variable(a)
    if a.dtype[0] == "c":
        raise TypeError(f"{fname}: a must be an array of real numbers, got {a.dtype}")
    q_in, q = q, _check_q(q, q_scale, fname)
    # NumPy decides the dtype (a Python float q keeps float32, an array q
    # of float64 does not; 'lower' keeps ints), and interpolates in it.
    probe = np.zeros(q.type.ndim * (1,), q.dtype) if isinstance(q, Variable) else q_in
    dtype = np.quantile(np.zeros(2, a.dtype), np.asarray(probe) / q_scale if q_scale != 1
                        else probe, method=method).dtype.name
    selects = method in ("lower", "higher", "nearest")
    # (NumPy subtracts the two entries in a's float dtype, then interpolates
    # with the fraction in the result dtype.)
    x, axes = _last_axis_slices(a if selects else _float(a), axis)
    s = sort(x, axis=-1)
    n = shape(s)[-1]
    pos = ew.mul(ew.true_div(q, q_scale), cast(n - 1, "float64"))
    value = _interpolate(s, pos, n, method, dtype)
    if x.dtype[0] == "f":
        nan = _any(ew.isnan(x), axis=-1)
        nan = dimshuffle(nan, list(range(nan.ndim)) + ["x"] * np.ndim(q))
        value = ew.switch(nan, np.nan, value)
    if value.ndim > 1 and np.ndim(q) > 0:            # q's axes first, as NumPy
        value = moveaxis(value, list(range(x.ndim - 1, value.ndim)),
                         list(range(value.ndim - x.ndim + 1)))
    if keepdims:
        value = _keep_dims(value, a.ndim, axes, np.ndim(q))
    return cast(value, dtype) if value.dtype != dtype else value


def _interpolate(s, pos, n, method, dtype):
    last = n - 1
    lo_f = ew.floor(pos)
    lo = cast(lo_f, "int64")
    hi = ew.minimum(lo + 1, last)
    if method == "lower":
        return take(s, lo, axis=-1)
    if method == "higher":
        return take(s, cast(ew.ceil(pos), "int64"), axis=-1)
    if method == "nearest":
        return take(s, cast(ew.rint(pos), "int64"), axis=-1)
    below, above = take(s, lo, axis=-1), take(s, hi, axis=-1)
    if method == "midpoint":
        frac = ew.switch(ew.eq(pos, lo_f), 0.0, 0.5)
    else:
        frac = ew.sub(pos, lo_f)
    frac = cast(frac, dtype) if frac.dtype != dtype else frac
    # (NumPy's lerp: from the nearer end, so frac 1 gives ``above`` exactly)
    diff = ew.sub(above, below)
    return ew.switch(ew.ge(frac, 0.5), ew.sub(above, ew.mul(diff, ew.sub(1, frac))),
                     ew.add(below, ew.mul(diff, frac)))


def _keep_dims(value, ndim, axes, q_ndim):
    pattern = list(range(q_ndim))
    k = q_ndim
    for i in range(ndim):
        if i in axes:
            pattern.append("x")
        else:
            pattern.append(k)
            k += 1
    return dimshuffle(value, pattern)


@implements(np.quantile)
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, weights=None, interpolation=None):
    """NumPy ``quantile`` (methods linear, lower, higher, nearest, midpoint;
    ``q`` may be traced). A NaN in a slice gives NaN. The gradient goes to
    the selected entries of ``a`` (and to a traced ``q``)."""
    _no_out("quantile", out)
    return _quantile(a, q, axis, interpolation or method, keepdims, "quantile",
                     weights=weights)


@implements(np.percentile)
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
               keepdims=False, *, weights=None, interpolation=None):
    """NumPy ``percentile``: ``quantile`` with ``q`` in percent."""
    _no_out("percentile", out)
    return _quantile(a, q, axis, interpolation or method, keepdims, "percentile", 100.0,
                     weights=weights)


@implements(np.median)
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """NumPy ``median`` (the mean of the two middle entries for an even count)."""
    _no_out("median", out)
    a = as_tensor_variable(a)
    if a.dtype[0] == "c":
        raise TypeError(f"median: complex input ({a.dtype}) is not supported")
    return _quantile(a, 0.5, axis, "linear", keepdims, "median")


# ------------------------------------------------------------ cov, corrcoef
def _as_rows(m, rowvar, dtype):
    m = as_tensor_variable(m)
    if m.ndim > 2:
        raise ValueError(f"cov: m has more than 2 dimensions (ndim {m.ndim})")
    m = cast(m, dtype) if m.dtype != dtype else m
    if m.ndim < 2:
        m = reshape(m, (1, -1)) if m.ndim == 1 else reshape(m, (1, 1))
    elif not rowvar and m.type.shape[0] != 1:
        m = dimshuffle(m, (1, 0))
    return m


@implements(np.cov)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
        dtype=None):
    """NumPy ``cov`` (``fweights``/``aweights`` may be traced). With
    ``rowvar=False`` a 2-d input is transposed unless its static first
    length is 1; the result is squeezed by static lengths only."""
    if ddof is not None and ddof != int(ddof):
        raise ValueError(f"cov: ddof must be an integer, got {ddof!r}")
    m = as_tensor_variable(m)
    if dtype is None:
        others = [as_tensor_variable(y).dtype] if y is not None else []
        dtype = np.result_type(m.dtype, *others, np.float64).name
    dtype = canonical_dtype(dtype)
    X = _as_rows(m, rowvar, dtype)
    if y is not None:
        X = concatenate([X, _as_rows(y, rowvar, dtype)], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    w = None
    if fweights is not None:
        w = _float(as_tensor_variable(fweights))
    if aweights is not None:
        aw = as_tensor_variable(aweights)
        w = aw if w is None else ew.mul(w, aw)
    avg, w_sum = average(X, axis=1, weights=w, returned=True)
    w_sum = w_sum[0]
    if w is None:
        fact = cast(shape(X)[1] - ddof, "float64")
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * _sum(ew.mul(w, aweights)) / w_sum
    fact = ew.maximum(fact, 0)           # (NumPy warns and divides by 0)
    X = ew.sub(X, dimshuffle(avg, (0, "x")))
    XT = dimshuffle(X if w is None else ew.mul(X, w), (1, 0))
    c = dot(X, ew.conj(XT) if XT.dtype[0] == "c" else XT)
    c = ew.true_div(c, cast(fact, ew.real(c).dtype) if c.dtype[0] == "c" else fact)
    c = cast(c, dtype) if c.dtype != dtype else c
    return squeeze(c)


@implements(np.corrcoef)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """NumPy ``corrcoef``: the covariance scaled to unit diagonal, clipped to
    [-1, 1] (real and imaginary parts)."""
    c = cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return ew.true_div(c, c)
    std = ew.sqrt(ew.real(diagonal(c)) if c.dtype[0] == "c" else diagonal(c))
    c = ew.true_div(ew.true_div(c, dimshuffle(std, (0, "x"))), dimshuffle(std, ("x", 0)))
    if c.dtype[0] == "c":
        return ew.add(ew.clip_(ew.real(c), -1, 1), ew.mul(ew.clip_(ew.imag(c), -1, 1), 1j))
    return ew.clip_(c, -1, 1)


# ------------------------------------------------------------ NaN reductions
def _nan_free(a, fill):
    a = as_tensor_variable(a)
    if a.dtype[0] not in "fc":
        return a, None
    nan = ew.isnan(a)
    return ew.switch(nan, np.asarray(fill, a.dtype), a), nan


@implements(np.nansum)
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """NumPy ``nansum``: NaN counts as 0 (and gets gradient 0)."""
    _no_out("nansum", out)
    _no_where("nansum", initial, where)
    return _sum(_nan_free(a, 0)[0], axis, dtype=dtype, keepdims=keepdims)


@implements(np.nanprod)
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """NumPy ``nanprod``: NaN counts as 1 (and gets gradient 0)."""
    _no_out("nanprod", out)
    _no_where("nanprod", initial, where)
    return _prod(_nan_free(a, 1)[0], axis, dtype=dtype, keepdims=keepdims)


def _no_where(name, initial, where):
    if initial is not None or where is not None:
        raise NotImplementedError(f"{name}: initial= and where= are not supported on "
                                  "traced arrays")


def _nan_count(a, nan, axis, keepdims, dtype):
    if nan is None:
        return _sum(ones_like(a, dtype=dtype), axis, keepdims=keepdims)
    return _sum(cast(ew.logical_not(nan), dtype), axis, keepdims=keepdims)


@implements(np.nanmean)
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """NumPy ``nanmean``: the mean of the non-NaN entries (NaN where none)."""
    _no_out("nanmean", out)
    _no_where("nanmean", None, where)
    a = as_tensor_variable(a)
    if a.dtype[0] not in "fc":
        return mean(a, axis, dtype=dtype, keepdims=keepdims)
    arr, nan = _nan_free(a, 0)
    total = _sum(arr, axis, dtype=dtype, keepdims=keepdims)
    cnt = _nan_count(a, nan, axis, keepdims, ew.real(total).dtype if total.dtype[0] == "c"
                     else total.dtype)
    return ew.true_div(total, cnt)


@implements(np.nanvar)
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
           mean=None, correction=None):
    """NumPy ``nanvar``: the variance of the non-NaN entries; NaN where the
    count is at most ``ddof``."""
    _no_out("nanvar", out)
    _no_where("nanvar", None, where)
    if mean is not None:
        raise NotImplementedError("nanvar: mean= is not supported on traced arrays")
    if correction is not None:
        ddof = correction
    a = as_tensor_variable(a)
    a = cast(a, canonical_dtype(dtype)) if dtype is not None else _float(a)
    arr, nan = _nan_free(a, 0)
    real = ew.real(arr).dtype if arr.dtype[0] == "c" else arr.dtype
    cnt = _nan_count(a, nan, axis, True, real)
    avg = ew.true_div(_sum(arr, axis, keepdims=True), cnt)
    dev = ew.sub(arr, avg)
    if nan is not None:
        dev = ew.switch(nan, np.asarray(0, dev.dtype), dev)
    sq = ew.real(ew.mul(dev, ew.conj(dev))) if dev.dtype[0] == "c" else ew.sqr(dev)
    dof = ew.sub(_nan_count(a, nan, axis, keepdims, real), ddof)
    bad = ew.le(dof, 0)
    return ew.switch(bad, np.asarray(np.nan, real),
                     ew.true_div(_sum(sq, axis, keepdims=keepdims), ew.switch(bad, 1, dof)))


@implements(np.nanstd)
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
           mean=None, correction=None):
    """NumPy ``nanstd``: ``sqrt(nanvar)``, gradient 0 where the variance is 0."""
    v = nanvar(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
               correction=correction)
    zero = ew.eq(v, 0)     # (sqrt'(0) is infinite: the guard of ``std``)
    return ew.switch(zero, 0, ew.sqrt(ew.switch(zero, 1, v)))


def _nan_extreme(name, reduce, fill, a, axis, out, keepdims, initial, where):
    _no_out(name, out)
    _no_where(name, initial, where)
    a = as_tensor_variable(a)
    if a.dtype[0] != "f":
        if a.dtype[0] == "c":
            raise TypeError(f"{name}: complex input ({a.dtype}) is not supported")
        return reduce(a, axis, keepdims=keepdims)
    arr, nan = _nan_free(a, fill)
    out = reduce(arr, axis, keepdims=keepdims)
    return ew.switch(_all(nan, axis, keepdims=keepdims), np.asarray(np.nan, a.dtype), out)


@implements(np.nanmax)
def nanmax(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """NumPy ``nanmax``: the max of the non-NaN entries (NaN where none)."""
    return _nan_extreme("nanmax", _max, -np.inf, a, axis, out, keepdims, initial, where)


@implements(np.nanmin)
def nanmin(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """NumPy ``nanmin``: the min of the non-NaN entries (NaN where none)."""
    return _nan_extreme("nanmin", _min, np.inf, a, axis, out, keepdims, initial, where)


# ------------------------------------------------------------ NumPy 2 cumulative_*
def _cumulative(name, fn, identity, x, axis, dtype, out, include_initial):
    _no_out(name, out)
    x = as_tensor_variable(x)
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"{name}: axis must be given for arrays of ndim > 1 "
                             f"(got ndim {x.ndim})")
        axis = 0
    if x.ndim == 0:
        raise ValueError(f"{name}: the input must have at least one dimension")
    (ax,) = normalize_axis(axis, x.ndim, name)
    res = fn(x, axis=ax, dtype=dtype)
    if not include_initial:
        return res
    lengths = [1 if i == ax else shape(x)[i] for i in range(x.ndim)]
    init = zeros(lengths, res.dtype)
    if identity:
        init = ew.add(init, np.asarray(identity, res.dtype))
    return concatenate([init, res], axis=ax)


def _register_cumulative():
    if hasattr(np, "cumulative_sum"):
        implements(np.cumulative_sum)(cumulative_sum)
        implements(np.cumulative_prod)(cumulative_prod)


def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """NumPy 2 ``cumulative_sum`` (``include_initial`` prepends 0)."""
    return _cumulative("cumulative_sum", cumsum, 0, x, axis, dtype, out, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """NumPy 2 ``cumulative_prod`` (``include_initial`` prepends 1)."""
    return _cumulative("cumulative_prod", cumprod, 1, x, axis, dtype, out, include_initial)


_register_cumulative()
