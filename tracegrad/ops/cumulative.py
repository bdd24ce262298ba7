"""Cumulative and ordering functions: ``cumsum``, ``cumprod``, ``sort``,
``argsort``.

``Cumulative(kind, axis, dtype, reverse)`` runs ``xp.cumsum``/``xp.cumprod``
along one axis (``reverse`` accumulates from the end: the adjoint of
``cumsum`` is the reversed ``cumsum`` of the gradient). ``axis=None``
flattens first, ``dtype=`` casts the input first (as NumPy's accumulation
loop does), so the op itself only ever sees its default output dtype or an
explicit one.

Gradient choices:

- ``cumprod``: exact with zeros in the input. Along each lane, with ``z``
  the first zero: entries before ``z`` get ``revcumsum(g * out) / x``; the
  entry ``z`` gets ``revcumsum(g * cumprod(x with x[z] = 1))``; entries
  after ``z`` get 0 (every product through them holds ``x[z] = 0``).
- ``sort``: the gradient goes back through the sorting permutation
  (``PermuteAlongAxis``, whose adjoint applies the inverse permutation);
  tied entries receive the gradient of the position they were sorted to.
- ``partition``: the same, through the permutation that takes ``x`` to the
  output: with ``px``, ``po`` the stable sorting permutations of ``x`` and
  of the output, entry ``px[i]`` of ``x`` gets the gradient of entry
  ``po[i]`` of the output.
- ``argsort``, ``argpartition``: no gradient (integer output).
"""
import numpy as np

from tracegrad.ops import batching
from tracegrad.ops import elemwise as ew
from tracegrad.ops.elemwise import cast, format_shape, is_differentiable, match_gradient_dtype
from tracegrad.ops.shape import reshape
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["cumsum", "cumprod", "sort", "argsort", "partition", "argpartition",
           "Cumulative", "Sort", "Argsort", "PermuteAlongAxis", "Partition"]

_SORT_KINDS = (None, "quicksort", "mergesort", "heapsort", "stable")


def _accumulate_dtype(kind, in_dtype, dtype=None):
    return getattr(np, kind)(np.zeros((1,), in_dtype), dtype=dtype).dtype.name


def _one_axis(x, axis, fname):
    if isinstance(axis, (list, tuple)):
        raise TypeError(f"{fname}: axis must be None or one integer, got {axis!r}")
    return normalize_axis(axis, x.ndim, fname)[0]


class Cumulative(Op):
    """``xp.<kind>(x, axis=axis, dtype=dtype)`` (``kind``: ``cumsum`` or
    ``cumprod``), accumulated from the end of the axis when ``reverse``."""

    __props__ = ("kind", "axis", "dtype", "reverse")

    def __init__(self, kind, axis, dtype=None, reverse=False):
        if kind not in ("cumsum", "cumprod"):
            raise ValueError(f"unknown accumulation {kind!r}")
        self.kind, self.axis, self.dtype, self.reverse = kind, axis, dtype, bool(reverse)

    @property
    def name(self):
        return self.kind

    def __str__(self):
        return f"{self.kind}{{axis={self.axis}{', reverse' if self.reverse else ''}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(self.axis, x.ndim)
        dtype = _accumulate_dtype(self.kind, x.dtype, self.dtype)
        return Apply(self, [x], [TensorType(dtype, x.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vmap_rule(self, node, inputs, batch_axes):
        op = Cumulative(self.kind, self.axis + 1, self.dtype, self.reverse)
        return batching.shifted_rule(inputs, batch_axes, op)

    def impl(self, xp, x):
        fn = getattr(xp, self.kind)
        if not self.reverse:
            return fn(x, axis=self.axis, dtype=self.dtype)
        return xp.flip(fn(xp.flip(x, self.axis), axis=self.axis, dtype=self.dtype), self.axis)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        g = output_grads[0]
        if self.kind == "cumsum":
            return [match_gradient_dtype(self._revsum(g), x)]
        return [match_gradient_dtype(self._cumprod_grad(x, node.outputs[0], g), x)]

    def _revsum(self, v):
        return Cumulative("cumsum", self.axis, None, not self.reverse)(v)

    def _cumprod_grad(self, x, out, g):
        fwd = Cumulative("cumsum", self.axis, None, self.reverse)
        zero = ew.eq(x, 0)
        zeros_so_far = fwd(zero)
        before = ew.eq(zeros_so_far, 0)                      # no zero up to here
        first = ew.and_(zero, ew.eq(zeros_so_far, 1))        # the first zero
        x_first_one = ew.switch(first, 1, x)
        out_first_one = Cumulative("cumprod", self.axis, None, self.reverse)(x_first_one)
        g_before = self._revsum(g * out) / ew.switch(before, x, 1)
        g_first = self._revsum(g * out_first_one)
        return ew.switch(before, g_before, ew.switch(first, g_first, 0))


def _accumulate(kind, x, axis, dtype, out):
    if out is not None:
        raise TypeError(f"{kind}(..., out=) cannot write into a symbolic variable")
    x = as_tensor_variable(x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = _one_axis(x, axis, kind)
    if dtype is not None:
        dtype = canonical_dtype(dtype)
        if dtype == _accumulate_dtype(kind, x.dtype):
            dtype = None
        else:
            x = cast(x, dtype)
    return Cumulative(kind, axis, dtype)(x)


@implements(np.cumsum)
def cumsum(a, axis=None, dtype=None, out=None):
    """NumPy ``cumsum`` (``axis=None`` flattens; ints accumulate in int64)."""
    return _accumulate("cumsum", a, axis, dtype, out)


@implements(np.cumprod)
def cumprod(a, axis=None, dtype=None, out=None):
    """NumPy ``cumprod``; the gradient is exact with zeros in the input."""
    return _accumulate("cumprod", a, axis, dtype, out)


# ------------------------------------------------------------------ sorting
class Argsort(Op):
    """``xp.argsort(x, axis=axis, kind=kind)`` (int64)."""

    __props__ = ("axis", "kind")

    def __init__(self, axis, kind=None):
        self.axis, self.kind = axis, kind

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(self.axis, x.ndim)
        return Apply(self, [x], [TensorType("int64", x.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.shifted_rule(inputs, batch_axes, Argsort(self.axis + 1, self.kind))

    def impl(self, xp, x):
        kw = {} if self.kind is None else {"kind": self.kind}
        return xp.argsort(x, axis=self.axis, **kw).astype("int64", copy=False)

    def vjp(self, node, output_grads):
        return [None]


class PermuteAlongAxis(Op):
    """``take_along_axis(x, perm, axis)`` where each lane of ``perm`` (the
    shape of ``x``) is a permutation; the adjoint applies the inverse one."""

    __props__ = ("axis",)
    selects = True

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, x, perm):
        x, perm = as_tensor_variable(x), as_tensor_variable(perm)
        if perm.dtype[0] not in "iu" or perm.ndim != x.ndim or not 0 <= self.axis < x.ndim:
            raise TypeError(f"permute_along_axis: expected integer permutations with ndim "
                            f"{x.ndim} and an axis below it, got {perm.dtype} with ndim "
                            f"{perm.ndim}, axis {self.axis}")
        shape = []
        for a, b in zip(x.type.shape, perm.type.shape):
            if a is not None and b is not None and a != b:
                raise ValueError(f"permute_along_axis: shapes {format_shape(x.type.shape)} "
                                 f"and {format_shape(perm.type.shape)} differ")
            shape.append(a if a is not None else b)
        return Apply(self, [x, perm], [TensorType(x.dtype, tuple(shape))()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.shifted_rule(inputs, batch_axes, PermuteAlongAxis(self.axis + 1))

    def impl(self, xp, x, perm):
        return xp.take_along_axis(x, perm, axis=self.axis)

    def vjp(self, node, output_grads):
        x, perm = node.inputs
        if not is_differentiable(x):
            return [None, None]
        inverse = Argsort(self.axis)(perm)
        return [PermuteAlongAxis(self.axis)(output_grads[0], inverse), None]


class Sort(Op):
    """``xp.sort(x, axis=axis)``."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(self.axis, x.ndim)
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.shifted_rule(inputs, batch_axes, Sort(self.axis + 1))

    def impl(self, xp, x):
        return xp.sort(x, axis=self.axis)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        order = Argsort(self.axis, "stable")(x)
        return [PermuteAlongAxis(self.axis)(output_grads[0], Argsort(self.axis)(order))]


def _sort_args(fname, a, axis, kind, order, stable):
    if order is not None:
        raise ValueError(f"{fname}: 'order' needs a structured array; symbolic "
                         f"arrays have no fields (got order={order!r})")
    if kind not in _SORT_KINDS:
        raise ValueError(f"{fname}: sort kind must be one of {_SORT_KINDS[1:]}, got {kind!r}")
    if stable is not None and kind is not None:
        raise ValueError(f"{fname}: 'kind' and 'stable' cannot both be given")
    if stable:
        kind = "stable"
    a = as_tensor_variable(a)
    if axis is None:
        a = reshape(a, (-1,))
        axis = 0
    return a, _one_axis(a, axis, fname), kind


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """NumPy ``sort`` (``axis=None`` flattens; ``kind`` does not change values)."""
    a, axis, _ = _sort_args("sort", a, axis, kind, order, stable)
    return Sort(axis)(a)


@implements(np.argsort)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """NumPy ``argsort`` (int64 indices; no gradient)."""
    a, axis, kind = _sort_args("argsort", a, axis, kind, order, stable)
    return Argsort(axis, kind)(a)


# ------------------------------------------------------------------ partition
def _kth(kth, length, fname):
    if hasattr(kth, "owner"):
        raise TypeError(f"{fname}: kth must be known when the graph is built, got {kth}")
    k = np.asarray(kth)
    if k.dtype.kind not in "iu" or k.ndim > 1:
        raise TypeError(f"{fname}: kth must be an integer or a sequence of integers, "
                        f"got {kth!r}")
    k = tuple(int(v) for v in k.reshape(-1))
    for v in k:
        if length is not None and not -length <= v < length:
            raise ValueError(f"{fname}: kth(={v}) out of bounds ({length})")
    return k


class Partition(Op):
    """``xp.partition(x, kth, axis=axis)`` (``argpartition`` when ``arg``)."""

    __props__ = ("kth", "axis", "arg")

    def __init__(self, kth, axis, arg=False):
        self.kth, self.axis, self.arg = tuple(kth), axis, bool(arg)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(self.axis, x.ndim)
        dtype = "int64" if self.arg else x.dtype
        return Apply(self, [x], [TensorType(dtype, x.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.shifted_rule(inputs, batch_axes, Partition(self.kth, self.axis + 1, self.arg))

    def impl(self, xp, x):
        if self.arg:
            return xp.argpartition(x, self.kth, axis=self.axis).astype("int64", copy=False)
        return xp.partition(x, self.kth, axis=self.axis)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if self.arg or not is_differentiable(x):
            return [None]
        permute = PermuteAlongAxis(self.axis)
        by_output = permute(output_grads[0], Argsort(self.axis, "stable")(node.outputs[0]))
        inverse = Argsort(self.axis)(Argsort(self.axis, "stable")(x))
        return [permute(by_output, inverse)]


def _partition(fname, a, kth, axis, kind, order, arg):
    if order is not None:
        raise ValueError(f"{fname}: 'order' needs a structured array; symbolic "
                         f"arrays have no fields (got order={order!r})")
    if kind != "introselect":
        raise ValueError(f"{fname}: select kind must be 'introselect' (got {kind!r})")
    a = as_tensor_variable(a)
    if axis is None:
        a = reshape(a, (-1,))
        axis = 0
    axis = _one_axis(a, axis, fname)
    return Partition(_kth(kth, a.type.shape[axis], fname), axis, arg)(a)


@implements(np.partition)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """NumPy ``partition`` (``axis=None`` flattens); differentiable like ``sort``."""
    return _partition("partition", a, kth, axis, kind, order, False)


@implements(np.argpartition)
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """NumPy ``argpartition`` (int64 indices; no gradient)."""
    return _partition("argpartition", a, kth, axis, kind, order, True)
