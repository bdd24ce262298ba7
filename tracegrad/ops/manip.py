"""NumPy's array-manipulation functions composed from the shape, index and
elementwise ops (so their gradients come from those ops): ``vstack``,
``hstack``, ``dstack``, ``column_stack``, ``atleast_*d``, ``flip*``,
``rot90``, ``roll``, ``tril``/``triu``, ``append``, ``tile``, ``diff``,
``kron``, ``inner``, ``cross``, the ``split`` family and ``rollaxis``.

Arguments that decide the output's shape (shifts, repetitions, sections,
axes) must be Python ints, as in NumPy; array lengths may be symbolic.
"""
import warnings

import numpy as np

from tracegrad.ops.alloc import arange, broadcast_to, zeros_like
from tracegrad.ops.elemwise import cast
from tracegrad.ops.elemwise_numpy import where
from tracegrad.ops.index import take
from tracegrad.ops.linalg import tensordot
from tracegrad.ops.shape import (Split, _numpy_split, concatenate, dimshuffle, moveaxis,
                                 reshape)
from tracegrad.ops.shape_static import shape, shape_vector
from tracegrad.ops.static import _axis, normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable

__all__ = ["atleast_1d", "atleast_2d", "atleast_3d", "vstack", "row_stack", "hstack",
           "dstack", "column_stack", "flip", "flipud", "fliplr", "rot90", "roll", "tril",
           "triu", "append", "tile", "diff", "kron", "inner", "cross", "array_split",
           "vsplit", "hsplit", "dsplit", "rollaxis"]


def _int(value, name, fname):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fname}: {name} must be an int, got {value!r}")
    return int(value)


# ------------------------------------------------------------ atleast_*d

_ATLEAST = {1: {0: ("x",)},
            2: {0: ("x", "x"), 1: ("x", 0)},
            3: {0: ("x", "x", "x"), 1: ("x", 0, "x"), 2: (0, 1, "x")}}


def _atleast(n, arys):
    out = []
    for a in arys:
        a = as_tensor_variable(a)
        pattern = _ATLEAST[n].get(a.ndim)
        out.append(a if pattern is None else dimshuffle(a, pattern))
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_1d)
def atleast_1d(*arys):
    """``np.atleast_1d``: 0-d inputs become shape (1,)."""
    return _atleast(1, arys)


@implements(np.atleast_2d)
def atleast_2d(*arys):
    """``np.atleast_2d``: inputs of fewer axes get leading length-1 axes."""
    return _atleast(2, arys)


@implements(np.atleast_3d)
def atleast_3d(*arys):
    """``np.atleast_3d``: (N,) becomes (1, N, 1), (M, N) becomes (M, N, 1)."""
    return _atleast(3, arys)


# ------------------------------------------------------------ stacking

def _arrays(tup, fname):
    if not hasattr(tup, "__getitem__"):
        raise TypeError(f"{fname}: arrays to stack must be passed as a sequence type "
                        f"such as list or tuple, got {type(tup).__name__}")
    arrays = [as_tensor_variable(t) for t in tup]
    if not arrays:
        raise ValueError(f"{fname}: need at least one array to concatenate")
    return arrays


def _join(arrays, axis, dtype):
    result = concatenate(arrays, axis)
    return result if dtype is None else cast(result, dtype)


def vstack(tup, *, dtype=None, casting="same_kind"):
    """``np.vstack``: join along the first axis after ``atleast_2d``."""
    return _join([atleast_2d(a) for a in _arrays(tup, "vstack")], 0, dtype)


implements(np.vstack)(vstack)


def row_stack(tup, *, dtype=None, casting="same_kind"):
    """``np.row_stack``: NumPy 2's deprecated alias of ``vstack`` (it warns too)."""
    warnings.warn("`row_stack` alias is deprecated. Use `np.vstack` directly.",
                  DeprecationWarning, stacklevel=2)
    return vstack(tup, dtype=dtype, casting=casting)


@implements(np.hstack)
def hstack(tup, *, dtype=None, casting="same_kind"):
    """``np.hstack``: join 1-d inputs along axis 0, others along axis 1."""
    arrays = [atleast_1d(a) for a in _arrays(tup, "hstack")]
    return _join(arrays, 0 if arrays[0].ndim == 1 else 1, dtype)


@implements(np.dstack)
def dstack(tup):
    """``np.dstack``: join along the third axis after ``atleast_3d``."""
    return concatenate([atleast_3d(a) for a in _arrays(tup, "dstack")], 2)


@implements(np.column_stack)
def column_stack(tup):
    """``np.column_stack``: 1-d inputs become columns, then join along axis 1."""
    arrays = [a if a.ndim >= 2 else dimshuffle(atleast_1d(a), (0, "x"))
              for a in _arrays(tup, "column_stack")]
    return concatenate(arrays, 1)


@implements(np.append)
def append(arr, values, axis=None):
    """``np.append``: flattened unless ``axis`` is given."""
    arr, values = as_tensor_variable(arr), as_tensor_variable(values)
    if axis is None:
        return concatenate([arr, values], None)
    return concatenate([arr, values], axis)


# ------------------------------------------------------------ flips and rotations

@implements(np.flip)
def flip(m, axis=None):
    """``np.flip``: reverse the order along ``axis`` (an int, a tuple, or all)."""
    m = as_tensor_variable(m)
    axes = normalize_axis(axis, m.ndim, "flip")
    if not axes:
        return m
    return m[tuple(slice(None, None, -1) if i in axes else slice(None)
                   for i in range(m.ndim))]


@implements(np.flipud)
def flipud(m):
    """``np.flipud``: reverse axis 0."""
    m = as_tensor_variable(m)
    if m.ndim < 1:
        raise ValueError("flipud: input must be >= 1-d")
    return flip(m, 0)


@implements(np.fliplr)
def fliplr(m):
    """``np.fliplr``: reverse axis 1."""
    m = as_tensor_variable(m)
    if m.ndim < 2:
        raise ValueError("fliplr: input must be >= 2-d")
    return flip(m, 1)


@implements(np.rot90)
def rot90(m, k=1, axes=(0, 1)):
    """``np.rot90``: rotate by 90 degrees ``k`` times in the plane ``axes``."""
    m = as_tensor_variable(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("rot90: len(axes) must be 2")
    a0, a1 = (_axis(a, m.ndim, "rot90") for a in axes)
    if a0 == a1:
        raise ValueError("rot90: axes must be different")
    k = _int(k, "k", "rot90") % 4
    if k == 0:
        return m
    if k == 2:
        return flip(m, (a0, a1))
    order = list(range(m.ndim))
    order[a0], order[a1] = order[a1], order[a0]
    if k == 1:
        return dimshuffle(flip(m, a1), order)
    return flip(dimshuffle(m, order), a1)


# ------------------------------------------------------------ roll

def _roll_one(x, shift, axis):
    n = shape(x)[axis]
    return take(x, (arange(n) - shift) % n, axis=axis)


@implements(np.roll)
def roll(a, shift, axis=None):
    """``np.roll``: elements shifted along ``axis`` (flattened if None),
    wrapping around; ``shift`` and ``axis`` may be tuples (broadcast), or
    ``shift`` an integer scalar variable with one axis."""
    a = as_tensor_variable(a)
    if axis is None:
        return reshape(roll(reshape(a, (-1,)), shift, 0), shape(a))
    if isinstance(shift, Variable):
        if shift.ndim != 0 or shift.dtype[:3] not in ("int", "uin"):
            raise TypeError(f"roll: a symbolic shift must be an integer scalar, got {shift.type}")
        return _roll_one(a, shift, _axis(_int(axis, "axis", "roll"), a.ndim, "roll"))
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    if shifts.ndim > 1 or shifts.dtype.kind not in "iu" or axes.dtype.kind not in "iu":
        raise ValueError("roll: shift and axis must be ints or 1-d sequences of ints")
    total = {}
    for s, ax in zip(shifts.reshape(-1).tolist(), axes.reshape(-1).tolist()):
        ax = _axis(ax, a.ndim, "roll")
        total[ax] = total.get(ax, 0) + s
    for ax, s in total.items():
        if s:
            a = _roll_one(a, s, ax)
    return a


# ------------------------------------------------------------ tril / triu

def _tri_mask(m, k, lower):
    m = as_tensor_variable(m)
    if m.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: input must be at least 2-d")
    k = _int(k, "k", "tril" if lower else "triu")
    rows = dimshuffle(arange(shape(m)[-2]), (0, "x"))
    cols = dimshuffle(arange(shape(m)[-1]), ("x", 0))
    keep = (cols - rows <= k) if lower else (cols - rows >= k)
    return m, keep


@implements(np.tril)
def tril(m, k=0):
    """``np.tril``: zero above the ``k``-th diagonal (its gradient too)."""
    m, keep = _tri_mask(m, k, True)
    return where(keep, m, zeros_like(m))


@implements(np.triu)
def triu(m, k=0):
    """``np.triu``: zero below the ``k``-th diagonal (its gradient too)."""
    m, keep = _tri_mask(m, k, False)
    return where(keep, m, zeros_like(m))


# ------------------------------------------------------------ tile

def _repeat_whole(x, r, axis):
    if r == 0:
        return x[(slice(None),) * axis + (slice(0, 0),)]
    return x if r == 1 else concatenate([x] * r, axis)


@implements(np.tile)
def tile(A, reps):
    """``np.tile``: ``A`` repeated ``reps`` times along each axis."""
    A = as_tensor_variable(A)
    reps = list(reps) if isinstance(reps, (list, tuple)) else [reps]
    reps = [_int(r, "reps", "tile") for r in reps]
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: negative repetitions in reps={tuple(reps)}")
    if A.ndim < len(reps):
        A = dimshuffle(A, ("x",) * (len(reps) - A.ndim) + tuple(range(A.ndim)))
    reps = [1] * (A.ndim - len(reps)) + reps
    for axis, r in enumerate(reps):
        A = _repeat_whole(A, r, axis)
    return A


# ------------------------------------------------------------ diff

def _edge(v, a, axis):
    v = as_tensor_variable(v)
    if v.ndim == 0:
        entries = [1 if i == axis else shape(a)[i] for i in range(a.ndim)]
        v = broadcast_to(v, entries)
    return v


@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    """``np.diff``: the ``n``-th discrete difference along ``axis``."""
    a = as_tensor_variable(a)
    n = _int(n, "n", "diff")
    if n < 0:
        raise ValueError(f"diff: order must be non-negative but got {n}")
    if n == 0:
        return a
    if a.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = _axis(axis, a.ndim, "diff")
    parts = [a]
    if prepend is not np._NoValue:
        parts.insert(0, _edge(prepend, a, axis))
    if append is not np._NoValue:
        parts.append(_edge(append, a, axis))
    if len(parts) > 1:
        a = concatenate(parts, axis)
    lead = (slice(None),) * axis
    for _ in range(n):
        hi, lo = a[lead + (slice(1, None),)], a[lead + (slice(None, -1),)]
        a = hi != lo if a.dtype == "bool" else hi - lo
    return a


# ------------------------------------------------------------ products

@implements(np.kron)
def kron(a, b):
    """``np.kron``: the Kronecker product (blocks of ``a[i] * b``)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    nd = max(a.ndim, b.ndim)
    a = dimshuffle(a, ("x",) * (nd - a.ndim) + tuple(range(a.ndim)))
    b = dimshuffle(b, ("x",) * (nd - b.ndim) + tuple(range(b.ndim)))
    # a: (a0, 1, a1, 1, ...), b: (1, b0, 1, b1, ...)
    pa = [p for i in range(nd) for p in (i, "x")]
    pb = [p for i in range(nd) for p in ("x", i)]
    prod = dimshuffle(a, pa) * dimshuffle(b, pb)
    sa, sb = shape(a), shape(b)
    return reshape(prod, [sa[i] * sb[i] for i in range(nd)])


@implements(np.inner)
def inner(a, b):
    """``np.inner``: sum over the last axes of ``a`` and ``b``."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 1]))


def _components(v, axis, fname, name):
    v = moveaxis(as_tensor_variable(v), axis, -1)
    n = v.type.shape[-1]
    if n not in (2, 3):
        raise ValueError(f"{fname}: incompatible dimensions for cross product of {name} "
                         f"(dimension must be 2 or 3, and known while building the "
                         f"graph; got {n})")
    return [v[..., i] for i in range(n)]


@implements(np.cross)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """``np.cross``: the cross product of 3-vectors (or 2-vectors, giving the
    z component) along the given axes; their lengths must be static."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if axis is not None:
        axisa = axisb = axisc = axis
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("cross: inputs must be at least 1-d")
    ua = _components(a, _axis(axisa, a.ndim, "cross"), "cross", "a")
    ub = _components(b, _axis(axisb, b.ndim, "cross"), "cross", "b")
    if len(ua) == 2 or len(ub) == 2:
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=2)
    if len(ua) == len(ub) == 2:
        return ua[0] * ub[1] - ua[1] * ub[0]
    a0, a1 = ua[:2]
    b0, b1 = ub[:2]
    a2 = ua[2] if len(ua) == 3 else None
    b2 = ub[2] if len(ub) == 3 else None
    z = a0 * b1 - a1 * b0
    if a2 is None:
        x, y = a1 * b2, -(a0 * b2)
    elif b2 is None:
        x, y = -(a2 * b1), a2 * b0
    else:
        x, y = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2
    x, y, z = (broadcast_to(c, shape(x + y + z)) for c in (x, y, z))
    out = concatenate([dimshuffle(c, tuple(range(c.ndim)) + ("x",)) for c in (x, y, z)], -1)
    return moveaxis(out, -1, _axis(axisc, out.ndim, "cross"))


# ------------------------------------------------------------ split family

@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    """``np.array_split``: like ``split`` but ``N`` sections need not divide
    the length (the first ones get one more element)."""
    x = as_tensor_variable(ary)
    if not isinstance(indices_or_sections, (int, np.integer)):
        return _numpy_split(x, indices_or_sections, axis)
    axis = _axis(axis, x.ndim, "array_split")
    n = int(indices_or_sections)
    if n <= 0:
        raise ValueError("array_split: number sections must be larger than 0.")
    length = shape(x)[axis]
    sizes = shape_vector([(length + (n - 1 - i)) // n for i in range(n)], "array_split")
    return list(Split(n, axis).make_node(x, sizes).outputs)


def _split_at_least(ary, indices_or_sections, ndim, axis, fname):
    x = as_tensor_variable(ary)
    if x.ndim < ndim:
        raise ValueError(f"{fname} only works on arrays of {ndim} or more dimensions")
    return _numpy_split(x, indices_or_sections, axis)


@implements(np.vsplit)
def vsplit(ary, indices_or_sections):
    """``np.vsplit``: ``split`` along axis 0 (at least 2-d)."""
    return _split_at_least(ary, indices_or_sections, 2, 0, "vsplit")


@implements(np.hsplit)
def hsplit(ary, indices_or_sections):
    """``np.hsplit``: ``split`` along axis 1 (axis 0 for 1-d input)."""
    x = as_tensor_variable(ary)
    return _split_at_least(x, indices_or_sections, 1, 1 if x.ndim > 1 else 0, "hsplit")


@implements(np.dsplit)
def dsplit(ary, indices_or_sections):
    """``np.dsplit``: ``split`` along axis 2 (at least 3-d)."""
    return _split_at_least(ary, indices_or_sections, 3, 2, "dsplit")


# ------------------------------------------------------------ rollaxis

@implements(np.rollaxis)
def rollaxis(a, axis, start=0):
    """``np.rollaxis``: move ``axis`` so that it lies before position ``start``."""
    a = as_tensor_variable(a)
    axis = _axis(axis, a.ndim, "rollaxis")
    start = _int(start, "start", "rollaxis")
    if start < 0:
        start += a.ndim
    if not 0 <= start < a.ndim + 1:
        raise np.exceptions.AxisError(f"rollaxis: start={start} out of range for "
                                      f"{a.ndim} dimensions")
    if axis < start:
        start -= 1
    if axis == start:
        return a
    order = list(range(a.ndim))
    order.remove(axis)
    order.insert(start, axis)
    return dimshuffle(a, order)
