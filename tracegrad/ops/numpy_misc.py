"""Miscellaneous NumPy functions over traced arrays, composed of existing
ops (so each has its gradient and jvp for free): the ranges ``linspace``,
``logspace``, ``geomspace`` (traced ``start``/``stop``), ``meshgrid``,
``broadcast_arrays``, ``ediff1d``, ``select``, ``polyval``, ``vander``, the
tests ``iscomplex``, ``isreal``, ``isclose``, ``allclose`` (boolean: no
gradient) and ``real_if_close`` (real inputs only: on complex ones its
output dtype would depend on the values).

Lengths (``num``, ``N``) are Python ints, fixed when the graph is built.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import arange, broadcast_to, ones_like, zeros_like
from tracegrad.ops.cumulative import cumprod
from tracegrad.ops.elemwise import cast
from tracegrad.ops.index import set_subtensor
from tracegrad.ops.reduce import all as _all
from tracegrad.ops.shape import concatenate, dimshuffle, moveaxis, reshape, shape
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable

__all__ = ["linspace", "logspace", "geomspace", "meshgrid", "broadcast_arrays", "ediff1d",
           "select", "polyval", "vander", "iscomplex", "isreal", "isclose", "allclose",
           "real_if_close"]


def _probe(value):
    """A NumPy stand-in with ``value``'s dtype for asking NumPy about dtypes
    (a Python number stays weak)."""
    if isinstance(value, Variable):
        return np.zeros((), value.dtype)
    return value if isinstance(value, (int, float, complex)) else np.asarray(value)


def _num(num, fname):
    if isinstance(num, Variable) or int(num) != num:
        raise TypeError(f"{fname}: num must be a Python int (fixed when the graph is "
                        f"built), got {num!r}")
    if num < 0:
        raise ValueError(f"{fname}: number of samples, {num}, must be non-negative")
    return int(num)


# ------------------------------------------------------------ ranges
def _broadcast_shape(arrays):
    """The broadcast shape of ``arrays`` as a list of ints and symbolic scalars."""
    ndim = max(a.ndim for a in arrays)
    out = []
    for k in range(ndim):
        dims = [(a.type.shape[a.ndim - ndim + k], shape(a)[a.ndim - ndim + k])
                for a in arrays if a.ndim - ndim + k >= 0]
        known = [s for s, _ in dims if s is not None and s != 1]
        if known:
            out.append(known[0])
            continue
        dim = None
        for static, sym in dims:
            if static == 1:
                continue
            dim = sym if dim is None else ew.switch(ew.eq(dim, 1), sym, dim)
        out.append(1 if dim is None else dim)
    return out


@implements(np.linspace)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
             device=None):
    """NumPy ``linspace``; ``start``/``stop`` may be traced arrays (their
    broadcast shape goes along the other axes). ``num`` is a Python int."""
    num = _num(num, "linspace")
    dt = np.linspace(_probe(start), _probe(stop), 2).dtype.name
    start, stop = as_tensor_variable(start), as_tensor_variable(stop)
    start, stop = cast(start, dt), cast(stop, dt)
    div = num - 1 if endpoint else num
    delta = ew.sub(stop, start)
    nd = max(start.ndim, stop.ndim)
    y = dimshuffle(arange(num, dtype=dt), [0] + ["x"] * nd)
    if div > 0:
        step = ew.true_div(delta, div)
        y = ew.add(ew.mul(y, step), start)
    else:
        step = ew.mul(delta, np.asarray(np.nan, dt))
        y = ew.add(ew.mul(y, delta), start)
    if endpoint and num > 1:
        y = set_subtensor(y[-1], broadcast_to(stop, shape(y)[1:]) if nd else stop)
    if nd and tuple(y.type.shape[1:]) != tuple(_static(_broadcast_shape([start, stop]))):
        y = broadcast_to(y, [num] + _broadcast_shape([start, stop]))
    if axis != 0:
        y = moveaxis(y, 0, axis)
    out_dtype = canonical_dtype(dtype) if dtype is not None else dt
    if np.dtype(out_dtype).kind in "iu":
        y = ew.floor(y)
    y = cast(y, out_dtype) if y.dtype != out_dtype else y
    return (y, step) if retstep else y


def _static(dims):
    return [d if isinstance(d, int) else None for d in dims]


@implements(np.logspace)
def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """NumPy ``logspace``: ``base ** linspace(start, stop)`` (``base`` a
    number or a traced scalar/array broadcast along ``axis``)."""
    y = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    base = as_tensor_variable(base)
    if base.ndim:
        base = dimshuffle(base, _insert_axis(base.ndim, axis if axis >= 0
                                             else y.ndim + axis))
    out = ew.pow(base, y)
    if dtype is not None:
        return cast(out, canonical_dtype(dtype))
    return out


def _insert_axis(ndim, axis):
    pattern = list(range(ndim))
    pattern.insert(min(axis, ndim), "x")
    return pattern


@implements(np.geomspace)
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """NumPy ``geomspace`` for real ``start``/``stop`` (traced allowed; a
    zero bound gives inf/nan where NumPy raises, the values being unknown
    while tracing). The endpoints are exactly ``start`` and ``stop``."""
    num = _num(num, "geomspace")
    start, stop = as_tensor_variable(start), as_tensor_variable(stop)
    if "c" in (start.dtype[0], stop.dtype[0]):
        raise NotImplementedError("geomspace: complex bounds are not supported on traced "
                                  "arrays")
    dt = np.geomspace(_probe(start) + 1, _probe(stop) + 2, 2).dtype.name
    start, stop = cast(start, dt), cast(stop, dt)
    sign = ew.sign(start)
    start, stop = ew.true_div(start, sign), ew.true_div(stop, sign)
    y = logspace(ew.log10(start), ew.log10(stop), num=num, endpoint=endpoint, dtype=dt)
    if num > 0:
        y = set_subtensor(y[0], start)
        if num > 1 and endpoint:
            y = set_subtensor(y[-1], stop)
    y = ew.mul(y, sign)
    if axis != 0:
        y = moveaxis(y, 0, axis)
    return cast(y, canonical_dtype(dtype)) if dtype is not None else y


# ------------------------------------------------------------ grids, broadcasting
@implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    """NumPy ``broadcast_arrays``: each input broadcast to the common shape
    (a tuple; the gradient of each sums over its broadcast axes)."""
    arrays = [as_tensor_variable(a) for a in args]
    if not arrays:
        return ()
    target = _broadcast_shape(arrays)
    return tuple(a if a.type.shape == tuple(_static(target)) and None not in a.type.shape
                 else broadcast_to(a, target) for a in arrays)


@implements(np.meshgrid)
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """NumPy ``meshgrid`` (``indexing`` 'xy' or 'ij', ``sparse``); each
    input is flattened. Returns a tuple."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    xs = [reshape(as_tensor_variable(x), (-1,)) for x in xi]
    ndim = len(xs)
    out = []
    for i, x in enumerate(xs):
        pattern = ["x"] * ndim
        pattern[i] = 0
        if indexing == "xy" and ndim > 1 and i < 2:
            pattern[0], pattern[1] = pattern[1], pattern[0]
        out.append(dimshuffle(x, pattern))
    return tuple(out) if sparse else broadcast_arrays(*out)


@implements(np.ediff1d)
def ediff1d(ary, to_end=None, to_begin=None):
    """NumPy ``ediff1d``: differences of the flattened array, with
    ``to_begin``/``to_end`` (cast to its dtype, as NumPy) around them."""
    a = reshape(as_tensor_variable(ary), (-1,))
    parts = [ew.sub(a[1:], a[:-1])]
    for where, extra in ((0, to_begin), (len(parts) + 1, to_end)):
        if extra is None:
            continue
        extra = as_tensor_variable(extra)
        if not np.can_cast(extra.dtype, a.dtype, "same_kind"):
            raise TypeError(f"ediff1d: dtype of to_{'begin' if where == 0 else 'end'} "
                            f"({extra.dtype}) must be compatible with {a.dtype}")
        parts.insert(where, cast(reshape(extra, (-1,)), a.dtype))
    return parts[0] if len(parts) == 1 else concatenate(parts)


@implements(np.select)
def select(condlist, choicelist, default=0):
    """NumPy ``select``: the first choice whose condition holds, else
    ``default`` (the gradient goes to the chosen entries)."""
    if len(condlist) != len(choicelist):
        raise ValueError("select: list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    conds = [as_tensor_variable(c) for c in condlist]
    for k, c in enumerate(conds):
        if c.dtype != "bool":
            raise TypeError(f"select: invalid entry {k} in condlist: should be boolean "
                            f"ndarray, got {c.dtype}")
    choices = [as_tensor_variable(c) for c in choicelist]
    dtype = np.result_type(*[_probe(c) for c in choices], _probe(default)).name
    out = cast(as_tensor_variable(default), dtype)
    for cond, choice in zip(reversed(conds), reversed(choices)):
        out = ew.switch(cond, cast(choice, dtype), out)
    rest = conds + choices + [as_tensor_variable(default)]
    return broadcast_arrays(out, *rest)[0]


# ------------------------------------------------------------ polynomials
@implements(np.polyval)
def polyval(p, x):
    """NumPy ``polyval`` by Horner's rule; ``p`` needs a static length."""
    p = as_tensor_variable(p)
    x = as_tensor_variable(x)
    if p.ndim != 1 or p.type.shape[0] is None:
        raise ValueError("polyval: p must be 1-d with a length known when the graph is "
                         f"built, got static shape {p.type.shape}")
    y = zeros_like(x)
    for k in range(p.type.shape[0]):
        y = ew.add(ew.mul(y, x), p[k])
    return y


@implements(np.vander)
def vander(x, N=None, increasing=False):
    """NumPy ``vander``: columns ``x**(N-1) ... x**0`` (a cumulative product,
    as NumPy computes it; ``N`` defaults to ``len(x)``)."""
    x = as_tensor_variable(x)
    if x.ndim != 1:
        raise ValueError(f"vander: x must be a one-dimensional array, got ndim {x.ndim}")
    dtype = np.promote_types(x.dtype, int).name
    x = cast(x, dtype)
    n = shape(x)[0]
    col = dimshuffle(x, (0, "x"))
    if N is not None and int(N) <= 0:
        return broadcast_to(col, [n, 0])          # (an (n, 0) array)
    rest = ew.maximum(n - 1, 0) if N is None else int(N) - 1
    powers = cumprod(broadcast_to(col, [n, rest]), axis=1)
    v = concatenate([ones_like(col), powers], axis=1)
    if N is None and x.type.shape[0] is None:
        v = v[:, :n]                    # (no column at all for an empty x)
    return v if increasing else v[:, ::-1]


# ------------------------------------------------------------ tests (no gradient)
@implements(np.iscomplex)
def iscomplex(x):
    """NumPy ``iscomplex``: a nonzero imaginary part (bool; no gradient)."""
    x = as_tensor_variable(x)
    if x.dtype[0] != "c":
        return ew.neq(zeros_like(x, dtype="bool"), zeros_like(x, dtype="bool"))
    return ew.neq(ew.imag(x), 0)


@implements(np.isreal)
def isreal(x):
    """NumPy ``isreal``: a zero imaginary part (bool; no gradient)."""
    x = as_tensor_variable(x)
    if x.dtype[0] != "c":
        return ew.eq(zeros_like(x, dtype="bool"), zeros_like(x, dtype="bool"))
    return ew.eq(ew.imag(x), 0)


@implements(np.isclose)
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """NumPy ``isclose``: ``|a - b| <= atol + rtol * |b|`` for finite ``b``,
    or ``a == b`` (bool; no gradient)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    dt = np.result_type(_probe(b), 1.0).name
    b = cast(b, dt) if b.dtype != dt else b
    finite = ew.logical_not(ew.logical_or(ew.isnan(b), ew.isinf(b)))
    close = ew.and_(ew.le(ew.abs(ew.sub(a, b)), ew.add(atol, ew.mul(rtol, ew.abs(b)))),
                    finite)
    out = ew.or_(close, ew.eq(a, b))
    if equal_nan:
        out = ew.or_(out, ew.and_(ew.isnan(a), ew.isnan(b)))
    return out


@implements(np.allclose)
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """NumPy ``allclose``: ``all(isclose(...))`` as a 0-d bool variable."""
    return _all(isclose(a, b, rtol, atol, equal_nan))


@implements(np.real_if_close)
def real_if_close(a, tol=100):
    """NumPy ``real_if_close`` for real inputs (returned as they are). On a
    complex input NumPy's output dtype depends on the values, which a traced
    graph cannot: it is refused (use ``real`` where the imaginary part is
    known to be negligible)."""
    a = as_tensor_variable(a)
    if a.dtype[0] == "c":
        raise TypeError("real_if_close: on a complex traced array the output dtype would "
                        "depend on its values; use np.real(a) where the imaginary part "
                        "is known to be negligible")
    return a
