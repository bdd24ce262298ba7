"""Reductions: one ``Reduce`` op, the stable ``logsumexp``, and composites.

``Reduce(kind, axes, keepdims, dtype)`` runs ``xp.<kind>`` (``sum``, ``prod``,
``max``, ``min``, ``all``, ``any``, ``argmax``, ``argmin``) over a sorted tuple
of non-negative ``axes``. Output dtypes are NumPy's, found by running the
reduction on a one-element dummy array (``sum`` of int32 is int64, ``max`` keeps
the dtype, ``all`` is bool, ``argmax`` is int64).

``mean``, ``var`` and ``std`` are graphs of primitives, written the way NumPy
computes them (``mean = sum / n`` in the accumulator dtype), so values and
dtypes match NumPy's and their gradients come for free.

Gradient choices:

- ``max``/``min``: the gradient is split equally between the positions that
  attain the extreme value (ties share; the total is preserved, as in JAX).
- ``prod``: ``prod / x`` where no entry of the reduced group is zero; where
  exactly one is zero, that entry gets the product of the others and the rest
  get 0; with two or more zeros everything gets 0 (exact, as in Theano).
- ``argmax``, ``argmin``, ``all``, ``any``: no gradient (``None``).
"""
import builtins
from functools import lru_cache

import numpy as np

from tracegrad.ops import batching
from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import broadcast_to
from tracegrad.ops.elemwise import cast, format_shape, is_differentiable
from tracegrad.ops.shape import dimshuffle
from tracegrad.ops.shape_static import shape
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements, register_ufunc
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
           "all", "any", "logsumexp", "max_and_argmax", "amax", "amin",
           "Reduce", "LogSumExp", "ReductionCount", "normalize_axis"]


# ------------------------------------------------------------------ helpers
def keep_reduced_axes(g, axes, ndim):
    """``g`` (reduced over ``axes`` without keepdims) with those axes put back
    as broadcastable length-1 axes, so it broadcasts against the input."""
    if not axes:
        return g
    it = iter(range(g.ndim))
    pattern = ["x" if i in axes else next(it) for i in range(ndim)]
    return dimshuffle(g, pattern)


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _match_dtype(g, x):
    return ew.match_gradient_dtype(g, x)


_NUMPY_NAMES = {"sum": "add", "prod": "multiply", "max": "maximum", "min": "minimum",
                "argmax": "argmax", "argmin": "argmin", "all": "logical_and",
                "any": "logical_or"}


@lru_cache(maxsize=1024)
def _reduce_dtype(kind, in_dtype, dtype):
    dummy = np.zeros((1,), dtype=in_dtype)
    kwargs = {"dtype": dtype} if kind in ("sum", "prod") else {}
    return np.asarray(getattr(np, kind)(dummy, axis=0, **kwargs)).dtype.name


# ------------------------------------------------------------------ Reduce
class Reduce(Op):
    """``xp.<kind>(x, axis=axes, keepdims=keepdims[, dtype=dtype])``.

    ``axes`` is a sorted tuple of non-negative ints; for ``argmax``/``argmin``
    it is ``None`` (index into the flattened array) or a single axis.
    """

    __props__ = ("kind", "axes", "keepdims", "dtype")

    def __init__(self, kind, axes, keepdims=False, dtype=None):
        if kind not in _NUMPY_NAMES:
            raise ValueError(f"unknown reduction {kind!r}")
        self.kind = kind
        self.axes = axes
        self.keepdims = bool(keepdims)
        self.dtype = dtype

    @property
    def name(self):
        return self.kind

    def __str__(self):
        return f"{self.kind}{{axis={self.axes}{', keepdims' if self.keepdims else ''}}}"

    def _all_axes(self, ndim):
        return tuple(range(ndim)) if self.axes is None else self.axes

    def make_node(self, x):
        x = as_tensor_variable(x)
        axes = self._all_axes(x.ndim)
        if builtins.any(a >= x.ndim for a in axes):
            raise np.exceptions.AxisError(builtins.max(axes), x.ndim)
        if self.kind in ("max", "min", "argmax", "argmin"):
            lengths = [x.type.shape[a] for a in axes]
            if 0 in lengths or (self.axes is None and 0 in x.type.shape):
                raise ValueError(
                    f"{self.kind}: zero-size array to reduction operation "
                    f"{_NUMPY_NAMES[self.kind]} which has no identity "
                    f"(input shape {format_shape(x.type.shape)}, axis {self.axes})")
        dtype = _reduce_dtype(self.kind, x.dtype, self.dtype)
        if self.axes is None and self.kind in ("argmax", "argmin"):
            shape = (1,) * x.ndim if self.keepdims else ()
        else:
            shape = _reduced_shape(x.type.shape, axes, self.keepdims)
        return Apply(self, [x], [TensorType(dtype, shape)()])

    def shape_relation(self, node):
        if self.kind in ("argmax", "argmin"):  # (axes may be None: the flat index)
            return None
        return ("reduce", node.inputs[0], self.axes, self.keepdims)

    def vmap_rule(self, node, inputs, batch_axes):
        """The axes shifted past the batch axis, put first; ``argmax`` of
        the flattened example reads each example's row of a (batch, -1) view."""
        x = batching.to_front(inputs[0], batch_axes[0])
        k = node.inputs[0].ndim
        if self.axes is None and self.kind in ("argmax", "argmin"):
            flat = x.reshape((x.shape[0], -1)) if k != 1 else x
            out = Reduce(self.kind, (1,), False, self.dtype)(flat)
            if self.keepdims:
                out = out.dimshuffle(0, *(["x"] * k))
            return [out], [0]
        axes = batching.shifted_axes(self._all_axes(k))
        return [Reduce(self.kind, axes, self.keepdims, self.dtype)(x)], [0]

    def impl(self, xp, x):
        fn = getattr(xp, self.kind)
        if self.kind in ("argmax", "argmin"):
            axis = None if self.axes is None else self.axes[0]
            return fn(x, axis=axis, keepdims=self.keepdims)
        if self.kind in ("sum", "prod"):
            return fn(x, axis=self.axes, dtype=self.dtype, keepdims=self.keepdims)
        return fn(x, axis=self.axes, keepdims=self.keepdims)

    def impl_into(self, xp, out, x):
        """A float ``sum`` written into ``out`` (``Op.impl_into``)."""
        if (xp is not np or self.kind != "sum" or x.dtype != out.dtype
                or x.dtype.kind not in "fc" or self.dtype not in (None, out.dtype)):
            return None
        try:    # (NumPy checks out's shape: a reduction's out never broadcasts)
            np.add.reduce(x, axis=self.axes, keepdims=self.keepdims, out=out)
        except ValueError:
            return None
        return out

    def into_for(self, xp):
        """``impl_into`` as one closure (``Op.into_for``): a bucket of 64
        gradients makes 64 calls, ~0.4 us each less than the method."""
        if xp is not np or self.kind != "sum":
            return None
        reduce, axes, keepdims, want = np.add.reduce, self.axes, self.keepdims, self.dtype

        def write(out, x):
            dtype = out.dtype
            if x.dtype != dtype or dtype.kind not in "fc" or (want is not None and want != dtype):
                return None
            try:    # (NumPy checks out's shape: a reduction's out never broadcasts)
                reduce(x, axes, None, out, keepdims)
            except ValueError:
                return None
            return out
        return write

    def vjp(self, node, output_grads):
        x, = node.inputs
        if self.kind not in ("sum", "prod", "max", "min") or not is_differentiable(x):
            return [None]
        g, out = output_grads[0], node.outputs[0]
        if not self.keepdims:
            g = keep_reduced_axes(g, self.axes, x.ndim)
            out = keep_reduced_axes(out, self.axes, x.ndim)
        if self.kind == "sum":
            gx = broadcast_to(g, shape(x))
        elif self.kind == "prod":
            gx = g * _prod_of_others(x, self.axes)
        else:
            mask = cast(ew.eq(x, out), g.dtype)
            gx = g * mask / Reduce("sum", self.axes, True)(mask)
        return [_match_dtype(gx, x)]


def _prod_of_others(x, axes):
    """For each entry, the product of the other entries of its reduced group
    (exact when the group holds zeros, see the module docstring)."""
    zero = ew.eq(x, 0)
    n_zeros = Reduce("sum", axes, True)(zero)
    safe_x = ew.switch(zero, 1, x)
    prod_nonzero = Reduce("prod", axes, True)(safe_x)
    return ew.switch(ew.eq(n_zeros, 0), prod_nonzero / safe_x,
                     ew.switch(ew.and_(zero, ew.eq(n_zeros, 1)), prod_nonzero, 0))


def _default_or(kind, x, dtype):
    """``dtype`` canonicalised; ``None`` when it equals the default (one op)."""
    if dtype is None:
        return None
    dtype = canonical_dtype(dtype)
    return None if dtype == _reduce_dtype(kind, x.dtype, None) else dtype


def _reduce(kind, x, axis, keepdims, dtype=None, acc_dtype=None):
    x = as_tensor_variable(x)
    axes = normalize_axis(axis, x.ndim, kind)
    if acc_dtype is not None:  # Theano: accumulate in acc_dtype, return dtype
        out_dtype = _reduce_dtype(kind, x.dtype, None if dtype is None else
                                  canonical_dtype(dtype))
        acc = Reduce(kind, axes, keepdims, _default_or(kind, x, acc_dtype))(x)
        return cast(acc, out_dtype)
    return Reduce(kind, axes, keepdims, _default_or(kind, x, dtype))(x)


def sum(x, axis=None, dtype=None, keepdims=False, acc_dtype=None):
    """NumPy ``sum`` (ints accumulate in int64; the sum of nothing is 0)."""
    return _reduce("sum", x, axis, keepdims, dtype, acc_dtype)


def prod(x, axis=None, dtype=None, keepdims=False, acc_dtype=None,
         no_zeros_in_input=False):
    """NumPy ``prod`` (the product of nothing is 1). The gradient is exact
    with zeros in the input; Theano's ``no_zeros_in_input`` is accepted and
    not needed."""
    return _reduce("prod", x, axis, keepdims, dtype, acc_dtype)


def max(x, axis=None, keepdims=False):
    """NumPy ``max``; an empty reduction raises ``ValueError``. The gradient is
    shared equally by tied maxima."""
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    """NumPy ``min``; an empty reduction raises ``ValueError``."""
    return _reduce("min", x, axis, keepdims)


def all(x, axis=None, keepdims=False):
    """NumPy ``all`` (bool result)."""
    return _reduce("all", x, axis, keepdims)


def any(x, axis=None, keepdims=False):
    """NumPy ``any`` (bool result)."""
    return _reduce("any", x, axis, keepdims)


amax, amin = max, min


def _arg_reduce(kind, x, axis, keepdims):
    x = as_tensor_variable(x)
    if axis is not None:
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise TypeError(f"{kind}: axis must be None or one integer, got {axis}")
            axis = axis[0]
        axis = normalize_axis(axis, x.ndim, kind)
    return Reduce(kind, axis, keepdims)(x)


def argmax(x, axis=None, keepdims=False):
    """NumPy ``argmax`` (int64; ``axis=None`` indexes the flattened array)."""
    return _arg_reduce("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """NumPy ``argmin`` (int64; ``axis=None`` indexes the flattened array)."""
    return _arg_reduce("argmin", x, axis, keepdims)


def max_and_argmax(x, axis=None, keepdims=False):
    """Theano's ``max_and_argmax``: ``(max(x, axis), argmax(x, axis))``."""
    return max(x, axis, keepdims), argmax(x, axis, keepdims)


# ------------------------------------------------------------------ counts
class ReductionCount(Op):
    """``max(n - ddof, 0)`` as a 0-d ``dtype`` array, where ``n`` is the number
    of elements of the input reduced over ``axes`` (only its shape is read).

    Given several inputs of one ndim, the shape read is their broadcast
    (a rewrite reads ``mean(f(a, b))``'s count from ``a`` and ``b``, so it
    need not wait for ``f``). Shapes that do not broadcast raise nothing
    here: the elementwise op reading them raises, naming itself."""

    __props__ = ("axes", "ddof", "dtype")

    def __init__(self, axes, ddof=0, dtype="float64"):
        self.axes = axes
        self.ddof = ddof
        self.dtype = dtype

    def make_node(self, *xs):
        xs = [as_tensor_variable(x) for x in xs]
        if not xs or len({x.type.ndim for x in xs}) != 1:
            raise TypeError("ReductionCount takes one or more inputs of one ndim")
        return Apply(self, xs, [TensorType(self.dtype, ())()])

    def vmap_rule(self, node, inputs, batch_axes):
        """The count of one example: the same for all."""
        args, _ = batching.front_all(inputs, batch_axes)
        axes = batching.shifted_axes(self.axes)
        return [ReductionCount(axes, self.ddof, self.dtype)(*args)], [None]

    def impl(self, xp, *xs):
        n = 1
        for a in self.axes:
            length = 1
            for x in xs:
                length = x.shape[a]
                if length != 1:
                    break
            n *= length
        return xp.asarray(builtins.max(n - self.ddof, 0), dtype=self.dtype)

    def vjp(self, node, output_grads):
        return [None] * len(node.inputs)


def _count(x, axes, dtype, ddof=0):
    """The number of reduced elements (minus ``ddof``), a constant when the
    static shape knows it."""
    lengths = [x.type.shape[a] for a in axes]
    if None not in lengths:
        return as_tensor_variable(np.asarray(builtins.max(int(np.prod(lengths)) - ddof, 0),
                                             dtype=dtype))
    return ReductionCount(axes, ddof, dtype)(x)


def _real_dtype(dtype):
    return np.finfo(dtype).dtype.name if np.dtype(dtype).kind == "c" else dtype


def _float_dtype(x):
    """NumPy's accumulator for mean/var: float64 for ints and bools."""
    return x.dtype if x.dtype[0] in "fc" else "float64"


def mean(x, axis=None, dtype=None, keepdims=False, acc_dtype=None):
    """NumPy ``mean``: ints give float64, float16 accumulates in float32;
    the mean of nothing is nan."""
    x = as_tensor_variable(x)
    axes = normalize_axis(axis, x.ndim, "mean")
    if dtype is not None:
        out_dtype = acc = canonical_dtype(dtype)
    else:
        out_dtype = _float_dtype(x)
        acc = "float32" if out_dtype == "float16" else out_dtype
    if acc_dtype is not None:
        acc = canonical_dtype(acc_dtype)
    total = sum(x, axes, dtype=acc, keepdims=keepdims)
    return cast(ew.true_div(total, _count(x, axes, _real_dtype(total.dtype))), out_dtype)


def var(x, axis=None, ddof=0, keepdims=False, dtype=None, corrected=False):
    """NumPy ``var``: ``sum(|x - mean|**2) / max(n - ddof, 0)``; ints give
    float64. Theano's ``corrected=True`` means ``ddof=1``."""
    x = as_tensor_variable(x)
    if corrected:
        ddof = 1
    x = cast(x, canonical_dtype(dtype) if dtype is not None else _float_dtype(x))
    axes = normalize_axis(axis, x.ndim, "var")
    dev = x - mean(x, axes, keepdims=True)
    sq = ew.real(dev * ew.conj(dev)) if x.dtype[0] == "c" else ew.sqr(dev)
    total = sum(sq, axes, keepdims=keepdims)
    return ew.true_div(total, _count(x, axes, total.dtype, ddof))


def std(x, axis=None, ddof=0, keepdims=False, dtype=None, corrected=False):
    """NumPy ``std``: ``sqrt(var(...))``. Where the variance is 0 (one
    element, or all equal) the gradient is 0: exact for one element, and a
    subgradient otherwise (std is convex), as ``abs`` has at 0."""
    v = var(x, axis, ddof, keepdims, dtype, corrected)
    # sqrt'(0) is infinite and var's gradient is 0 there: guard both sides
    # so the product is never 0 * inf (reverse mode and Rop alike).
    zero = ew.eq(v, 0)
    return ew.switch(zero, 0, ew.sqrt(ew.switch(zero, 1, v)))


# ------------------------------------------------------------------ logsumexp
class LogSumExp(Op):
    """``log(sum(exp(x), axes))`` computed as ``m + log(sum(exp(x - m)))`` with
    ``m`` the (finite) max, so it neither overflows nor underflows. The vjp is
    ``g * softmax(x)``, i.e. ``g * exp(x - out)``, stable as well."""

    __props__ = ("axes", "keepdims")

    def __init__(self, axes, keepdims=False):
        self.axes = axes
        self.keepdims = bool(keepdims)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.dtype[0] != "f":
            raise TypeError(f"logsumexp: expected a float input, got {x.dtype}")
        shape = _reduced_shape(x.type.shape, self.axes, self.keepdims)
        return Apply(self, [x], [TensorType(x.dtype, shape)()])

    def shape_relation(self, node):
        return ("reduce", node.inputs[0], self.axes, self.keepdims)

    def vmap_rule(self, node, inputs, batch_axes):
        x = batching.to_front(inputs[0], batch_axes[0])
        return [LogSumExp(batching.shifted_axes(self.axes), self.keepdims)(x)], [0]

    def impl(self, xp, x):
        if builtins.any(x.shape[a] == 0 for a in self.axes) or x.size == 0:
            shape = _reduced_shape(x.shape, self.axes, self.keepdims)
            return xp.full(shape, -np.inf, dtype=x.dtype)
        m = xp.max(x, axis=self.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        out = xp.log(xp.sum(xp.exp(x - m), axis=self.axes, keepdims=True)) + m
        return out if self.keepdims else xp.squeeze(out, axis=self.axes)

    def vjp(self, node, output_grads):
        x, = node.inputs
        g, out = output_grads[0], node.outputs[0]
        if not self.keepdims:
            g = keep_reduced_axes(g, self.axes, x.ndim)
            out = keep_reduced_axes(out, self.axes, x.ndim)
        return [g * ew.exp(x - out)]


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x), axis))``, numerically stable (ints become float64)."""
    x = as_tensor_variable(x)
    if x.dtype[0] not in "f":
        x = cast(x, "float64")
    return LogSumExp(normalize_axis(axis, x.ndim, "logsumexp"), keepdims)(x)


# ------------------------------------------------------------------ NumPy dispatch
def _no_numpy_extras(name, out=None, **extra):
    if out is not None:
        raise TypeError(f"numpy.{name}(..., out=) cannot write into a symbolic variable")
    extra = {k: v for k, v in extra.items() if v is not np._NoValue}
    if extra:
        raise TypeError(f"numpy.{name} on symbolic variables does not support "
                        f"{sorted(extra)}")


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, **extra):
    _no_numpy_extras("sum", out, **extra)
    return sum(a, axis, dtype, keepdims)


def _np_prod(a, axis=None, dtype=None, out=None, keepdims=False, **extra):
    _no_numpy_extras("prod", out, **extra)
    return prod(a, axis, dtype, keepdims)


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, **extra):
    _no_numpy_extras("mean", out, **extra)
    return mean(a, axis, dtype, keepdims)


def _np_var_like(fn):
    def np_fn(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False,
              correction=np._NoValue, **extra):
        _no_numpy_extras(fn.__name__, out, **extra)
        if correction is not np._NoValue:
            ddof = correction
        return fn(a, axis, ddof, keepdims, dtype)
    return np_fn


def _np_extreme(fn):
    def np_fn(a, axis=None, out=None, keepdims=False, **extra):
        _no_numpy_extras(fn.__name__, out, **extra)
        return fn(a, axis, keepdims)
    return np_fn


def _ufunc_reduce(fn, takes_dtype):
    """``ufunc.reduce(x, axis=0, ...)``: note NumPy's default axis is 0."""
    def reduce(a, axis=0, dtype=None, out=None, keepdims=False, **extra):
        _no_numpy_extras(f"{fn.__name__} (ufunc.reduce)", out, **extra)
        if takes_dtype:
            return fn(a, axis, dtype, keepdims)
        if dtype is not None:
            return cast(fn(a, axis, keepdims), dtype)
        return fn(a, axis, keepdims)
    return reduce


implements(np.sum)(_np_sum)
implements(np.prod)(_np_prod)
implements(np.mean)(_np_mean)
implements(np.var)(_np_var_like(var))
implements(np.std)(_np_var_like(std))
implements(np.max, np.amax)(_np_extreme(max))
implements(np.min, np.amin)(_np_extreme(min))
implements(np.argmax)(_np_extreme(argmax))
implements(np.argmin)(_np_extreme(argmin))
implements(np.all)(_np_extreme(all))
implements(np.any)(_np_extreme(any))
register_ufunc(np.add, ew.add, reduce=_ufunc_reduce(sum, True))
register_ufunc(np.multiply, ew.mul, reduce=_ufunc_reduce(prod, True))
register_ufunc(np.maximum, ew.maximum, reduce=_ufunc_reduce(max, False))
register_ufunc(np.minimum, ew.minimum, reduce=_ufunc_reduce(min, False))
register_ufunc(np.logical_and, ew.logical_and, reduce=_ufunc_reduce(all, False))
register_ufunc(np.logical_or, ew.logical_or, reduce=_ufunc_reduce(any, False))
