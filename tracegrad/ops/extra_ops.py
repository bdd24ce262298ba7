"""Theano's ``tensor.extra_ops`` and the index functions of ``theano.tensor``
that NumPy also has (issue 17): ``bincount``, ``unique``/``Unique``,
``nonzero``, ``flatnonzero``, ``nonzero_values``, ``compress``, ``choose``,
``ravel_multi_index``, ``unravel_index``, ``to_one_hot``, ``bartlett``,
``fill_diagonal_offset``.

Results whose length depends on the values (``bincount``, ``unique``,
``nonzero``, ``compress``) have an unknown static length, as boolean-mask
indexing does (``index.Nonzero``). ``nonzero`` reuses that op; ``compress``
and ``nonzero_values`` are ``take`` of its indices, so values flow back
through ``take``'s gradient. ``choose`` is one op whose gradient is a
one-hot mask over the choices (a symbolic count of choices works).
"""
import numpy as np

from tracegrad.config import config
from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import arange
from tracegrad.ops.base import sum_to
from tracegrad.ops.elemwise import cast
from tracegrad.ops.elemwise_numpy import clip
from tracegrad.ops.index import Nonzero, set_subtensor, take
from tracegrad.ops.numpy_misc import broadcast_arrays
from tracegrad.ops.shape import dimshuffle, flatten, shape, stack
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["bincount", "Unique", "unique", "nonzero", "flatnonzero", "nonzero_values",
           "compress", "choose", "ravel_multi_index", "unravel_index", "to_one_hot",
           "bartlett", "fill_diagonal_offset"]


def _int_input(x, fname):
    x = as_tensor_variable(x)
    if x.dtype[0] not in "iu" and x.dtype != "bool":
        raise TypeError(f"{fname}: needs integers, got {x.dtype}")
    return x


# ------------------------------------------------------------ bincount
class BinCount(Op):
    """``xp.bincount(x, weights, minlength)``: int64 counts, or the float64
    sums of ``weights`` (NumPy's dtypes); the gradient reaches ``weights``."""

    __props__ = ("minlength", "weighted")

    def __init__(self, minlength=0, weighted=False):
        self.minlength = int(minlength)
        self.weighted = bool(weighted)

    def make_node(self, x, *weights):
        x = _int_input(x, "bincount")
        if x.ndim != 1:
            raise ValueError(f"bincount: x must be 1-d, got ndim {x.ndim}")
        dtype = "float64" if self.weighted else "int64"
        return Apply(self, [x, *weights], [TensorType(dtype, (None,))()])

    def impl(self, xp, x, *weights):
        out = xp.bincount(x, weights[0] if weights else None, minlength=self.minlength)
        return out.astype("float64" if self.weighted else "int64", copy=False)

    def vjp(self, node, output_grads):
        g, = output_grads
        if not self.weighted:
            return [None]
        x, w = node.inputs
        return [None, cast(take(g, x), w.dtype)]


@implements(np.bincount)
def bincount(x, weights=None, minlength=None, assert_nonneg=False):
    """``np.bincount`` (Theano's ``bincount``): counts of each value of the
    non-negative integer vector ``x`` (or sums of ``weights``), at least
    ``minlength`` long. Negative values raise ``ValueError`` at run time."""
    op = BinCount(minlength or 0, weights is not None)
    if weights is None:
        return op(x)
    return op(x, as_tensor_variable(weights))


# ------------------------------------------------------------ unique
class Unique(Op):
    """Theano's ``Unique(return_index=False, return_inverse=False,
    return_counts=False, axis=None)``: ``Unique()(x)`` is ``np.unique(x)``
    (sorted, flattened), with the requested extra outputs after it (a list
    then). No gradient."""

    __props__ = ("return_index", "return_inverse", "return_counts", "axis")

    def __init__(self, return_index=False, return_inverse=False, return_counts=False,
                 axis=None):
        self.return_index = bool(return_index)
        self.return_inverse = bool(return_inverse)
        self.return_counts = bool(return_counts)
        self.axis = axis

    def make_node(self, x):
        x = as_tensor_variable(x)
        if self.axis is None:
            values = TensorType(x.dtype, (None,))()
        else:
            shape = list(x.type.shape)
            shape[self.axis % x.ndim] = None
            values = TensorType(x.dtype, tuple(shape))()
        extra = self.return_index + self.return_inverse + self.return_counts
        outs = [values] + [TensorType("int64", (None,))() for _ in range(extra)]
        return Apply(self, [x], outs)

    def impl(self, xp, x):
        found = xp.unique(x, return_index=self.return_index,
                          return_inverse=self.return_inverse,
                          return_counts=self.return_counts, axis=self.axis)
        if not isinstance(found, tuple):
            return found
        values, *rest = found
        # (NumPy 2 gives the inverse the input's shape; Theano's and NumPy 1's is flat)
        return tuple([values] + [r.reshape(-1).astype("int64", copy=False) for r in rest])

    def vjp(self, node, output_grads):
        return [None]


@implements(np.unique)
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None):
    """``np.unique``: the sorted distinct values (flattened unless ``axis``);
    with the flags, a tuple adding first indices, the inverse (flat) and the
    counts. No gradient."""
    out = Unique(return_index, return_inverse, return_counts, axis)(ar)
    return tuple(out) if isinstance(out, list) else out


# ------------------------------------------------------------ nonzero
@implements(np.nonzero)
def nonzero(a, return_matrix=False):
    """Theano's ``nonzero``: the tuple of int64 index vectors where ``a`` is
    nonzero (``np.nonzero``), or with ``return_matrix=True`` one
    ``(a.ndim, count)`` matrix of them."""
    a = as_tensor_variable(a)
    if a.ndim == 0:
        raise ValueError("nonzero: a must have at least one dimension")
    found = Nonzero(0)(a, a)
    found = found if isinstance(found, list) else [found]
    if return_matrix:
        return stack(found, axis=0)
    return tuple(found)


@implements(np.flatnonzero)
def flatnonzero(a):
    """The int64 indices where the flattened ``a`` is nonzero."""
    return nonzero(flatten(as_tensor_variable(a)))[0]


def nonzero_values(a):
    """Theano's ``nonzero_values``: the nonzero entries of the flattened
    ``a`` (their gradient reaches ``a``)."""
    a = as_tensor_variable(a)
    return take(flatten(a), flatnonzero(a))


@implements(np.compress)
def compress(condition, a, axis=None):
    """``np.compress`` (Theano's ``extra_ops.compress``): the slices of
    ``a`` along ``axis`` (the flattened ``a`` when ``None``) where
    ``condition`` is true; the gradient reaches ``a``."""
    cond = as_tensor_variable(condition)
    if cond.ndim != 1:
        raise ValueError(f"compress: condition must be 1-d, got ndim {cond.ndim}")
    return take(as_tensor_variable(a), nonzero(cond)[0], axis=axis)


# ------------------------------------------------------------ choose
class Choose(Op):
    """``xp.choose(a, choices, mode=mode)`` with ``choices`` one array whose
    first axis lists the choices (already broadcast against ``a``)."""

    __props__ = ("mode",)

    def __init__(self, mode="raise"):
        if mode not in ("raise", "wrap", "clip"):
            raise ValueError(f"choose: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
        self.mode = mode

    def make_node(self, a, choices):
        a, choices = _int_input(a, "choose"), as_tensor_variable(choices)
        return Apply(self, [a, choices], [TensorType(choices.dtype, choices.type.shape[1:])()])

    def impl(self, xp, a, choices):
        return xp.choose(a, choices, mode=self.mode)

    def vjp(self, node, output_grads):
        g, = output_grads
        a, choices = node.inputs
        n = shape(choices)[0]
        if self.mode == "wrap":
            a = ew.mod(a, n)
        elif self.mode == "clip":
            a = clip(a, 0, n - 1)
        ks = dimshuffle(arange(n), [0] + ["x"] * (choices.ndim - 1))
        onehot = ew.eq(dimshuffle(a, ["x"] + list(range(a.ndim))), ks)
        return [None, sum_to(ew.switch(onehot, g, 0), choices)]


@implements(np.choose)
def choose(a, choices, out=None, mode="raise"):
    """``np.choose`` (Theano's ``choose``): ``choices[a[I]][I]`` for each
    index ``I``; ``choices`` a list of arrays or one array whose first axis
    lists them, broadcast against ``a``. ``mode``: 'raise', 'wrap' or
    'clip'. The gradient reaches the choices."""
    if out is not None:
        raise TypeError("choose: out= is not supported on symbolic values")
    a = as_tensor_variable(a)
    if isinstance(choices, (list, tuple)):
        arrays = broadcast_arrays(a, *choices)
        stacked = stack(list(arrays[1:]), axis=0)
        return Choose(mode)(arrays[0], stacked)
    choices = as_tensor_variable(choices)
    parts = broadcast_arrays(dimshuffle(a, ["x"] + list(range(a.ndim))), choices)
    return Choose(mode)(parts[0][0], parts[1])


# ------------------------------------------------------------ flat indices
class RavelMultiIndex(Op):
    """``xp.ravel_multi_index(indices, dims, mode, order)``: the flat int64
    index of each tuple of ``indices`` (one input each) in an array of
    shape ``dims`` (the last input, an integer vector)."""

    __props__ = ("mode", "order")

    def __init__(self, mode="raise", order="C"):
        self.mode, self.order = mode, order

    def make_node(self, *inputs):
        *indices, dims = [_int_input(v, "ravel_multi_index") for v in inputs]
        shape = indices[0].type.shape
        return Apply(self, [*indices, dims], [TensorType("int64", shape)()])

    def impl(self, xp, *inputs):
        *indices, dims = inputs
        flat = xp.ravel_multi_index(tuple(indices), tuple(int(d) for d in dims),
                                    mode=self.mode, order=self.order)
        return xp.asarray(flat, dtype="int64")

    def vjp(self, node, output_grads):
        return [None] * len(node.inputs)


class UnravelIndex(Op):
    """``xp.unravel_index(indices, dims, order)``: one int64 array per axis
    of ``dims`` (an integer vector of static length)."""

    __props__ = ("ndim", "order")

    def __init__(self, ndim, order="C"):
        self.ndim, self.order = int(ndim), order

    def make_node(self, indices, dims):
        indices, dims = _int_input(indices, "unravel_index"), _int_input(dims, "unravel_index")
        outs = [TensorType("int64", indices.type.shape)() for _ in range(self.ndim)]
        return Apply(self, [indices, dims], outs)

    def impl(self, xp, indices, dims):
        found = xp.unravel_index(indices, tuple(int(d) for d in dims), order=self.order)
        out = tuple(xp.asarray(f, dtype="int64") for f in found)
        return out[0] if len(out) == 1 else out

    def vjp(self, node, output_grads):
        return [None, None]


def _dims(dims, fname):
    if isinstance(dims, (list, tuple)):
        n = len(dims)
        dims = stack([cast(as_tensor_variable(d), "int64") for d in dims]) if n else dims
    dims = _int_input(dims, fname)
    if dims.ndim != 1 or dims.type.shape[0] is None:
        raise ValueError(f"{fname}: dims must be a sequence or a vector of known length")
    return dims


@implements(np.ravel_multi_index)
def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """``np.ravel_multi_index`` (Theano's): the flat indices of the tuple
    of index arrays ``multi_index`` into an array of shape ``dims``."""
    indices = broadcast_arrays(*multi_index)
    return RavelMultiIndex(mode, order)(*indices, _dims(dims, "ravel_multi_index"))


@implements(np.unravel_index)
def unravel_index(indices, dims, order="C"):
    """``np.unravel_index`` (Theano's): a tuple of int64 index arrays, one
    per axis of ``dims``."""
    dims = _dims(dims, "unravel_index")
    out = UnravelIndex(dims.type.shape[0], order)(indices, dims)
    return tuple(out) if isinstance(out, list) else (out,)


# ------------------------------------------------------------ compositions
def to_one_hot(y, nb_class, dtype=None):
    """Theano's ``to_one_hot``: the ``(len(y), nb_class)`` matrix with a 1
    at ``[i, y[i]]`` (``dtype`` default ``floatX``)."""
    y = _int_input(y, "to_one_hot")
    if y.ndim != 1:
        raise ValueError(f"to_one_hot: y must be a vector, got ndim {y.ndim}")
    hot = ew.eq(dimshuffle(y, [0, "x"]), dimshuffle(arange(nb_class), ["x", 0]))
    return cast(hot, dtype or config.floatX)


def bartlett(M):
    """``np.bartlett(M)`` (Theano's ``extra_ops.bartlett``): the triangular
    window of ``M`` points (an integer scalar, symbolic or not), float64."""
    m = cast(as_tensor_variable(M), "float64")
    n = arange(ew.maximum(cast(as_tensor_variable(M), "int64"), 0), dtype="float64")
    half = ew.maximum(m - 1, 1) / 2.0              # (M == 1: the window is [1])
    return 1.0 - ew.abs(n - half) / half * ew.gt(m, 1)


def fill_diagonal_offset(a, val, offset):
    """Theano's ``fill_diagonal_offset``: the matrix ``a`` with its
    ``offset``-th diagonal (above the main one when positive) set to
    ``val``; ``offset`` may be symbolic. Gradients reach ``a`` and ``val``."""
    a = as_tensor_variable(a)
    if a.ndim != 2:
        raise ValueError(f"fill_diagonal_offset: a must be a matrix, got ndim {a.ndim}")
    k = cast(as_tensor_variable(offset), "int64")
    row0, col0 = ew.maximum(-k, 0), ew.maximum(k, 0)
    n = ew.maximum(ew.minimum(shape(a)[0] - row0, shape(a)[1] - col0), 0)
    i = arange(n)
    return set_subtensor(a[i + row0, i + col0], val)
