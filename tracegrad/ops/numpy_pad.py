"""``np.pad`` over traced arrays, axis by axis as NumPy pads (so the corners
agree), composed of existing ops: gradients and jvps come for free.

- ``constant`` (``constant_values`` may be traced scalars), ``empty``
  (filled with zeros: NumPy leaves the values undefined);
- ``edge``, ``reflect``, ``symmetric``, ``wrap``: one gather (``take``)
  along the axis with indices computed from the axis length, which may be
  unknown until run time; ``reflect_type='odd'`` adds NumPy's point
  reflections (``2 * edge - mirrored``) as a periodic drift;
- ``linear_ramp`` (``end_values``), through ``linspace`` with a traced stop;
- ``maximum``, ``minimum``, ``mean``, ``median`` (``stat_length``): the
  statistic of the first/last entries, broadcast over the pad (the gradient
  goes to the entries the statistic depends on).

Pad widths are Python ints (they fix the output shape); a callable mode is
refused.
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import arange, broadcast_to
from tracegrad.ops.elemwise import cast
from tracegrad.ops.index import take
from tracegrad.ops.numpy_misc import linspace
from tracegrad.ops.numpy_stats import median
from tracegrad.ops.reduce import max as _max, mean as _mean, min as _min
from tracegrad.ops.shape import concatenate, dimshuffle, shape
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable

__all__ = ["pad"]

_KWARGS = {"constant": {"constant_values"}, "empty": set(), "edge": set(),
           "wrap": set(), "reflect": {"reflect_type"}, "symmetric": {"reflect_type"},
           "linear_ramp": {"end_values"}, "maximum": {"stat_length"},
           "minimum": {"stat_length"}, "mean": {"stat_length"}, "median": {"stat_length"}}


def _as_pairs(value, ndim, what, as_index=False):
    """``value`` as ``ndim`` (before, after) pairs (NumPy's broadcasting of
    ``pad_width`` and the per-axis keywords); a traced scalar is one value
    for every side."""
    if isinstance(value, Variable):
        if value.ndim != 0:
            raise TypeError(f"pad: a traced {what} must be a scalar")
        return [(value, value)] * ndim
    arr = np.asarray(value)
    if as_index:
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind != "f" or not np.all(arr == np.round(arr)):
                raise TypeError(f"pad: {what} needs integers, got {value!r}")
            arr = arr.astype(np.int64)
        if np.any(arr < 0):
            raise ValueError(f"pad: {what} can't contain negative values, got {value!r}")
    try:
        pairs = np.broadcast_to(arr, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: {what} of shape {arr.shape} cannot be broadcast to "
                         f"({ndim}, 2)") from None
    return [tuple(p.item() if as_index else p for p in row) for row in pairs]


def _slab(x, axis, length, value):
    """An array shaped like ``x`` but ``length`` long on ``axis``, of ``value``."""
    dims = [length if k == axis else shape(x)[k] for k in range(x.ndim)]
    value = as_tensor_variable(value)
    value = cast(value, x.dtype) if value.dtype != x.dtype else value
    return broadcast_to(value, dims)


def _along(v, axis, ndim):
    return dimshuffle(v, ["x"] * axis + [0] + ["x"] * (ndim - axis - 1))


def _slice(x, axis, start=None, stop=None):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _gather(x, axis, before, after, mode, odd):
    """``x`` extended along ``axis`` by ``mode``'s index map."""
    n = shape(x)[axis]
    idx = arange(-before, ew.add(n, after))
    if mode == "edge":
        return take(x, ew.clip_(idx, 0, ew.sub(n, 1)), axis=axis)
    if mode == "wrap":
        return take(x, ew.mod(idx, n), axis=axis)
    # reflect: period 2(n - 1), mirror r -> P - r; symmetric: 2n, r -> P - 1 - r.
    period = ew.mul(2, ew.sub(n, 1)) if mode == "reflect" else ew.mul(2, n)
    period = ew.maximum(period, 1)      # (a length-1 axis reflects to its edge)
    q = ew.floor_div(idx, period)
    r = ew.sub(idx, ew.mul(q, period))
    mirror = ew.sub(period, r) if mode == "reflect" else ew.sub(ew.sub(period, 1), r)
    inside = ew.lt(r, n)
    src = ew.switch(inside, r, ew.minimum(mirror, ew.sub(n, 1)))
    out = take(x, src, axis=axis)
    if not odd:
        return out
    first, last = _slice(x, axis, 0, 1), _slice(x, axis, -1, None)
    out = ew.switch(_along(inside, axis, x.ndim), out, ew.sub(ew.mul(2, last), out))
    drift = ew.mul(_along(cast(ew.mul(2, q), x.dtype), axis, x.ndim), ew.sub(last, first))
    return ew.add(out, drift)


def _stat(x, axis, before, after, mode, lengths):
    fn = {"maximum": _max, "minimum": _min, "mean": _mean, "median": median}[mode]
    parts = []
    for width, length, side in ((before, lengths[0], 0), (after, lengths[1], 1)):
        if width == 0:
            continue
        if length is None:
            region = x
        elif side == 0:
            region = _slice(x, axis, 0, length)
        else:
            region = _slice(x, axis, -length, None) if length else _slice(x, axis, 0, 0)
        stat = fn(region, axis=axis, keepdims=True)
        if x.dtype[0] in "iub" and mode in ("mean", "median"):
            stat = ew.rint(stat)                 # (NumPy rounds for integer arrays)
        stat = cast(stat, x.dtype) if stat.dtype != x.dtype else stat
        dims = [width if k == axis else shape(x)[k] for k in range(x.ndim)]
        parts.append((side, broadcast_to(stat, dims)))
    left = [p for s, p in parts if s == 0]
    right = [p for s, p in parts if s == 1]
    return concatenate(left + [x] + right, axis=axis)


def _ramp(x, axis, before, after, ends):
    parts = []
    edges = (x[(slice(None),) * axis + (0,)], x[(slice(None),) * axis + (-1,)])
    if before:
        parts.append(linspace(ends[0], edges[0], before, endpoint=False, axis=axis,
                              dtype=x.dtype))
    parts.append(x)
    if after:
        ramp = linspace(ends[1], edges[1], after, endpoint=False, axis=axis, dtype=x.dtype)
        parts.append(ramp[(slice(None),) * axis + (slice(None, None, -1),)])
    return concatenate(parts, axis=axis)


def _check_kwargs(mode, kwargs):
    if callable(mode):
        raise NotImplementedError("pad: a callable mode is not supported on traced arrays")
    if mode not in _KWARGS:
        raise ValueError(f"pad: mode {mode!r} is not supported")
    unsupported = set(kwargs) - _KWARGS[mode]
    if unsupported:
        raise ValueError(f"pad: unsupported keyword arguments for mode {mode!r}: "
                         f"{sorted(unsupported)}")


def _pad_axis(x, axis, before, after, mode, kwargs, k):
    if mode in ("constant", "empty"):
        values = kwargs.get("constant_values", 0) if mode == "constant" else 0
        lo, hi = _as_pairs(values, x.ndim, "constant_values")[k]
        parts = ([_slab(x, axis, before, lo)] if before else []) + [x] + \
            ([_slab(x, axis, after, hi)] if after else [])
        return concatenate(parts, axis=axis) if len(parts) > 1 else x
    if x.type.shape[axis] == 0:
        raise ValueError(f"pad: can't extend empty axis {axis} using modes other than "
                         "'constant' or 'empty'")
    if mode in ("edge", "wrap", "reflect", "symmetric"):
        reflect_type = kwargs.get("reflect_type", "even")
        if reflect_type not in ("even", "odd"):
            raise ValueError(f"pad: reflect_type must be 'even' or 'odd', got "
                             f"{reflect_type!r}")
        return _gather(x, axis, before, after, mode, reflect_type == "odd")
    if mode == "linear_ramp":
        ends = _as_pairs(kwargs.get("end_values", 0), x.ndim, "end_values")[k]
        return _ramp(x, axis, before, after, ends)
    lengths = _as_pairs(kwargs.get("stat_length"), x.ndim, "stat_length", as_index=True) \
        if kwargs.get("stat_length") is not None else [(None, None)] * x.ndim
    if 0 in lengths[k] and (before or after):
        raise ValueError("pad: stat_length of 0 yields no value for padding")
    return _stat(x, axis, before, after, mode, lengths[k])


@implements(np.pad)
def pad(array, pad_width, mode="constant", **kwargs):
    """NumPy ``pad`` (modes constant, empty, edge, reflect, symmetric, wrap,
    linear_ramp, maximum, minimum, mean, median with their keywords);
    differentiable in ``array`` and traced ``constant_values``/``end_values``."""
    _check_kwargs(mode, kwargs)
    x = as_tensor_variable(array)
    if isinstance(pad_width, Variable):
        raise TypeError("pad: pad_width must be Python ints (it fixes the output shape), "
                        "got a traced variable")
    widths = _as_pairs(pad_width, x.ndim, "pad_width", as_index=True)
    for axis, (before, after) in enumerate(widths):
        if before or after:
            x = _pad_axis(x, axis, int(before), int(after), mode, kwargs, axis)
    return x
