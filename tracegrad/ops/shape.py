"""Shape ops: views and re-arrangements of arrays.

One block per op: ``make_node`` infers the dtype and static shape (raising at
build time, naming both shapes, when the graph cannot work), ``impl(xp, ...)``
computes, ``vjp`` gives the gradient, ``view_map`` marks outputs that may be
views of an input. Public functions turn user arguments into op inputs.

The build-time shape machinery (``shape``, ``shape_vector``, ``static_value``...)
lives in ``shape_static`` and the array constructors (``alloc``, ``zeros``,
``arange``...) in ``alloc``.
"""
import math
import operator

import numpy as np

from tracegrad.ops import batching
from tracegrad.ops.elemwise import cast, format_shape, sum_to
from tracegrad.ops.static import normalize_axis
from tracegrad.ops.shape_static import (_axis, _check_runtime_length, _check_shape_input,
                                        _grad_for, _ints, _is_int, _vector_length,
                                        make_vector, scatter_add, shape, shape_vector,
                                        static_entries, static_int, static_value)
from tracegrad.printing import register_formatter
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.tensor.type import TensorType
from tracegrad.trace import Apply, Op, Variable

# Re-exported so ``from tracegrad.ops.shape import Alloc`` (and ``shape.Alloc``)
# keep working now that these live in shape_static / alloc.
from tracegrad.ops.shape_static import MakeVector, Shape  # noqa: F401
from tracegrad.ops.alloc import (ARange, Alloc, BroadcastTo, Eye,  # noqa: F401
                                 _broadcast_target, alloc, arange, broadcast_to, eye,
                                 fill, ones, ones_like, zeros, zeros_like)

__all__ = ["reshape", "flatten", "transpose", "dimshuffle", "concatenate", "stack",
           "split", "squeeze", "expand_dims", "repeat", "swapaxes", "moveaxis"]


def _c_order(order, fname):
    if order not in ("C", "A", "K", None):
        raise TypeError(f"np.{fname} on symbolic variables supports only order='C', "
                        f"got {order!r}")


def _no_out(fname, out):
    if out is not None:
        raise TypeError(f"np.{fname}(..., out=) cannot write into a symbolic variable")


# ------------------------------------------------------------ reshape
def _reshape_static(in_shape, entries):
    """Static result shape of reshaping ``in_shape`` to ``entries`` (ints,
    ``-1`` or ``None`` unknown); raises where the sizes are known to differ."""
    shown = f"{format_shape(in_shape)} into {format_shape(entries)}"
    if entries.count(-1) > 1:
        raise ValueError(f"reshape: can only specify one unknown dimension (-1): {shown}")
    if any(e is not None and e < -1 for e in entries):
        raise ValueError(f"reshape: negative length in the new shape: {shown}")
    out = [e if e is not None and e >= 0 else None for e in entries]
    if None in in_shape:
        return tuple(out)
    size = math.prod(in_shape)
    open_ = [i for i, e in enumerate(entries) if e is None or e == -1]
    known = math.prod(e for e in entries if e is not None and e >= 0)
    if not open_ and known != size:
        raise ValueError(f"reshape: cannot reshape {shown} (sizes {size} and {known})")
    if len(open_) == 1 and known > 0:
        if size % known:
            raise ValueError(f"reshape: cannot reshape {shown} (size {size} is not a "
                             f"multiple of {known})")
        out[open_[0]] = size // known
    return tuple(out)


class Reshape(Op):
    """``x.reshape(shape)`` for an int64 ``shape`` vector of length ``ndim``."""

    __props__ = ("ndim",)
    view_map = {0: [0]}
    foldable = True
    selects = True

    def __init__(self, ndim):
        self.ndim = ndim

    def make_node(self, x, shp):
        x, shp = as_tensor_variable(x), as_tensor_variable(shp)
        entries = _check_shape_input(shp, self.ndim, "reshape")
        out = _reshape_static(x.type.shape, entries)
        return Apply(self, [x, shp], [TensorType(x.dtype, out)()])

    def impl(self, xp, x, shp):
        shp = _ints(shp)
        _check_runtime_length(shp, self.ndim, "reshape")
        return x.reshape(shp)

    def vjp(self, node, output_grads):
        x = node.inputs[0]
        return [_grad_for(x, reshape(output_grads[0], shape(x), ndim=x.ndim)), None]

    def vmap_rule(self, node, inputs, batch_axes):
        """One target shape for every example: the batch length in front."""
        if batch_axes[1] is not None:
            return None
        x = batching.to_front(inputs[0], batch_axes[0])
        return [Reshape(self.ndim + 1)(x, batching.with_batch(inputs[1], x))], [0]


def reshape(x, newshape, ndim=None):
    """``x`` with shape ``newshape``: a tuple of ints (one may be -1) and
    integer scalars, or an integer vector (its length, or ``ndim``, gives the
    number of dimensions)."""
    x = as_tensor_variable(x)
    vec = shape_vector(newshape, "reshape")
    return Reshape(_vector_length(vec, ndim, "reshape"))(x, vec)


@implements(np.reshape)
def _np_reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    _c_order(order, "reshape")
    return reshape(a, newshape if shape is None else shape)



class Flatten(Op):
    """Keep the first ``ndim - 1`` axes and collapse the rest into one."""

    __props__ = ("ndim",)
    view_map = {0: [0]}
    foldable = True
    selects = True

    def __init__(self, ndim):
        self.ndim = ndim

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 1 <= self.ndim <= max(x.ndim, 1):
            raise ValueError(f"flatten: ndim={self.ndim} for an input of shape "
                             f"{format_shape(x.type.shape)}; need 1 <= ndim <= {max(x.ndim, 1)}")
        keep, rest = x.type.shape[:self.ndim - 1], x.type.shape[self.ndim - 1:]
        last = 0 if 0 in rest else (None if None in rest else math.prod(rest))
        return Apply(self, [x], [TensorType(x.dtype, keep + (last,))()])

    def impl(self, xp, x):
        keep = x.shape[:self.ndim - 1]
        return x.reshape(keep + (math.prod(x.shape[self.ndim - 1:]),))

    def vjp(self, node, output_grads):
        x = node.inputs[0]
        return [_grad_for(x, reshape(output_grads[0], shape(x), ndim=x.ndim))]

    def vmap_rule(self, node, inputs, batch_axes):
        """The batch axis kept in front of the kept axes."""
        x = batching.to_front(inputs[0], batch_axes[0])
        if x.ndim == 1:  # (a 0-d example: flatten gives a length-1 vector)
            return [x.dimshuffle(0, "x")], [0]
        return [Flatten(self.ndim + 1)(x)], [0]


def flatten(x, ndim=1):
    """Theano's flatten: keep the first ``ndim - 1`` axes, collapse the rest."""
    return Flatten(int(ndim))(as_tensor_variable(x))


@implements(np.ravel)
def _np_ravel(a, order="C"):
    _c_order(order, "ravel")
    return flatten(a, 1)



# ------------------------------------------------------------ dimshuffle
class DimShuffle(Op):
    """Theano's dimshuffle: ``pattern`` lists input axes in their new order
    and ``'x'`` for new broadcastable axes; input axes left out are dropped
    (only broadcastable ones, static length 1)."""

    __props__ = ("input_ndim", "pattern")
    view_map = {0: [0]}
    foldable = True
    selects = True

    def __init__(self, input_ndim, pattern):
        self.input_ndim = input_ndim
        self.pattern = tuple(pattern)
        axes = [p for p in self.pattern if p != "x"]
        if any(not isinstance(p, int) or not 0 <= p < input_ndim for p in axes) \
                or len(set(axes)) != len(axes):
            raise ValueError(f"dimshuffle: invalid pattern {self.pattern} for an input "
                             f"with {input_ndim} dimensions (use each axis 0..{input_ndim - 1} "
                             "at most once, and 'x' for new axes)")
        self.drop = tuple(i for i in range(input_ndim) if i not in axes)
        self.perm = tuple(axes) + self.drop

    @property
    def name(self):
        return "DimShuffle{" + ",".join(map(str, self.pattern)) + "}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.ndim != self.input_ndim:
            raise TypeError(f"{self.name} expects {self.input_ndim} dimensions, got {x.type}")
        for d in self.drop:
            if x.type.shape[d] != 1:
                raise ValueError(
                    f"dimshuffle: cannot drop axis {d} of an input of shape "
                    f"{format_shape(x.type.shape)}: only broadcastable axes (static "
                    "length 1) can be dropped; use squeeze for a run-time check")
        out = tuple(1 if p == "x" else x.type.shape[p] for p in self.pattern)
        return Apply(self, [x], [TensorType(x.dtype, out)()])

    def shape_relation(self, node):
        return ("dimshuffle", node.inputs[0], self.pattern, self.input_ndim)

    def impl(self, xp, x):
        out = tuple(1 if p == "x" else x.shape[p] for p in self.pattern)
        return x.transpose(self.perm).reshape(out)

    def impl_for(self, xp):
        """``impl`` for ``xp``; a plain permutation (``x.T`` in the gradient
        of ``dot``) is just ``transpose``."""
        if "x" in self.pattern or self.drop:
            return lambda x: self.impl(xp, x)
        perm = self.perm
        return lambda x: x.transpose(perm)

    def vjp(self, node, output_grads):
        x, out = node.inputs[0], node.outputs[0]
        g = output_grads[0]
        if any(g.type.shape[j] != 1 for j, p in enumerate(self.pattern) if p == "x"):
            g = sum_to(g, out)  # a no-op that tells the type those axes are 1
        source = {p: j for j, p in enumerate(self.pattern) if p != "x"}
        back = tuple(source.get(i, "x") for i in range(self.input_ndim))
        return [_grad_for(x, DimShuffle(len(self.pattern), back)(g))]

    def vmap_rule(self, node, inputs, batch_axes):
        """The pattern with the batch axis first, kept."""
        x = batching.to_front(inputs[0], batch_axes[0])
        pattern = (0,) + tuple(p if p == "x" else p + 1 for p in self.pattern)
        return [DimShuffle(self.input_ndim + 1, pattern)(x)], [0]


register_formatter(DimShuffle, lambda node, i: [
    i[0], f".dimshuffle({', '.join(map(repr, node.op.pattern))})"])


def dimshuffle(x, pattern):
    """``x.dimshuffle(pattern)`` (Theano): e.g. ``(1, 'x', 0)``."""
    x = as_tensor_variable(x)
    pattern = tuple(p if p == "x" else operator.index(p) for p in pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return DimShuffle(x.ndim, pattern)(x)


def transpose(x, axes=None):
    """Permute the axes (reverse them by default); negative axes allowed."""
    x = as_tensor_variable(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(_axis(a, x.ndim, "transpose") for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} don't match an array of "
                         f"{x.ndim} dimensions")
    return dimshuffle(x, axes)


implements(np.transpose)(transpose)


def swapaxes(x, axis1, axis2):
    """``np.swapaxes``."""
    x = as_tensor_variable(x)
    order = list(range(x.ndim))
    a, b = _axis(axis1, x.ndim, "swapaxes"), _axis(axis2, x.ndim, "swapaxes")
    order[a], order[b] = order[b], order[a]
    return dimshuffle(x, order)


implements(np.swapaxes)(swapaxes)


def moveaxis(x, source, destination):
    """``np.moveaxis``."""
    x = as_tensor_variable(x)
    source = [_axis(a, x.ndim, "moveaxis") for a in np.atleast_1d(source).tolist()]
    destination = [_axis(a, x.ndim, "moveaxis")
                   for a in np.atleast_1d(destination).tolist()]
    if len(source) != len(destination) or len(set(source)) != len(source) \
            or len(set(destination)) != len(destination):
        raise ValueError("moveaxis: source and destination must be distinct axes of "
                         "the same count")
    order = [a for a in range(x.ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return dimshuffle(x, order)


implements(np.moveaxis)(moveaxis)


def expand_dims(x, axis):
    """``np.expand_dims``: new length-1 axes at ``axis`` (an int or a tuple)."""
    x = as_tensor_variable(x)
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    out_ndim = x.ndim + len(axes)
    axes = normalize_axis(axes, out_ndim, "expand_dims")
    rest = iter(range(x.ndim))
    return dimshuffle(x, ["x" if i in axes else next(rest) for i in range(out_ndim)])


implements(np.expand_dims)(expand_dims)


class Squeeze(Op):
    """``np.squeeze(x, axis)`` for axes whose length is only known at run time."""

    __props__ = ("axis",)
    view_map = {0: [0]}
    foldable = True
    selects = True

    def __init__(self, axis):
        self.axis = tuple(axis)

    def make_node(self, x):
        x = as_tensor_variable(x)
        out = tuple(s for i, s in enumerate(x.type.shape) if i not in self.axis)
        return Apply(self, [x], [TensorType(x.dtype, out)()])

    def impl(self, xp, x):
        return xp.squeeze(x, axis=self.axis)

    def vjp(self, node, output_grads):
        return [_grad_for(node.inputs[0], expand_dims(output_grads[0], self.axis))]

    def vmap_rule(self, node, inputs, batch_axes):
        x = batching.to_front(inputs[0], batch_axes[0])
        return [Squeeze(batching.shifted_axes(self.axis))(x)], [0]


def squeeze(x, axis=None):
    """Remove length-1 axes. With ``axis=None`` the axes whose static length
    is 1 (Theano's rule: the number of dimensions must be known while
    building); a given axis of unknown length is checked at run time."""
    x = as_tensor_variable(x)
    if axis is None:
        axes = tuple(i for i, s in enumerate(x.type.shape) if s == 1)
    else:
        axes = normalize_axis(axis, x.ndim, "squeeze")
    for a in axes:
        if x.type.shape[a] not in (None, 1):
            raise ValueError(f"squeeze: cannot squeeze axis {a} of an array of shape "
                             f"{format_shape(x.type.shape)}: its length is not 1")
    if all(x.type.shape[a] == 1 for a in axes):
        return dimshuffle(x, [i for i in range(x.ndim) if i not in axes])
    return Squeeze(axes)(x)


implements(np.squeeze)(squeeze)


# ------------------------------------------------------------ join / split
class Join(Op):
    """``np.concatenate(tensors, axis)``."""

    __props__ = ("axis",)
    foldable = True

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, *tensors):
        tensors = [as_tensor_variable(t) for t in tensors]
        if not tensors:
            raise ValueError("concatenate: need at least one array to concatenate")
        first = tensors[0]
        if first.ndim == 0:
            raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
        if not 0 <= self.axis < first.ndim:
            raise np.exceptions.AxisError(self.axis, first.ndim)
        shapes = [t.type.shape for t in tensors]
        for i, s in enumerate(shapes):
            if len(s) != first.ndim:
                raise ValueError(
                    f"concatenate: all inputs must have the same number of dimensions, "
                    f"but input 0 has shape {format_shape(shapes[0])} and input {i} "
                    f"has shape {format_shape(s)}")
        out = []
        for d in range(first.ndim):
            lengths = [s[d] for s in shapes]
            if d == self.axis:
                out.append(None if None in lengths else sum(lengths))
                continue
            known = [(i, n) for i, n in enumerate(lengths) if n is not None]
            for i, n in known[1:]:
                if n != known[0][1]:
                    j = known[0][0]
                    raise ValueError(
                        f"concatenate: input {j} of shape {format_shape(shapes[j])} and "
                        f"input {i} of shape {format_shape(shapes[i])} differ along axis "
                        f"{d}; only the concatenation axis {self.axis} may differ")
            out.append(known[0][1] if known else None)
        dtype = np.result_type(*[t.dtype for t in tensors]).name
        return Apply(self, tensors, [TensorType(dtype, out)()])

    def impl(self, xp, *arrays):
        return xp.concatenate(arrays, axis=self.axis)

    def vjp(self, node, output_grads):
        sizes = shape_vector([shape(t)[self.axis] for t in node.inputs], "concatenate")
        parts = Split(len(node.inputs), self.axis).make_node(output_grads[0], sizes).outputs
        return [_grad_for(t, p) for t, p in zip(node.inputs, parts)]

    def vmap_rule(self, node, inputs, batch_axes):
        """Every input batched in front (the unbatched ones repeated)."""
        args, _ = batching.front_all(inputs, batch_axes)
        return [Join(self.axis + 1)(*args)], [0]

    def static_entries(self, node, depth):
        if self.axis != 0:
            return None
        entries = []
        for t in node.inputs:
            part = static_entries(t, depth)
            if part is None:
                return None
            entries += part
        return entries


def concatenate(tensors, axis=0):
    """``np.concatenate``; ``axis=None`` flattens the inputs first."""
    tensors = [as_tensor_variable(t) for t in tensors]
    if axis is None:
        tensors, axis = [flatten(t) for t in tensors], 0
    if not tensors:
        raise ValueError("concatenate: need at least one array to concatenate")
    if tensors[0].ndim == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    return Join(_axis(axis, tensors[0].ndim, "concatenate"))(*tensors)


@implements(np.concatenate)
def _np_concatenate(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    _no_out("concatenate", out)
    result = concatenate(arrays, axis)
    return result if dtype is None else cast(result, dtype)



def stack(tensors, *more, axis=0):
    """``np.stack``: join along a new axis; all inputs must have one shape.
    Theano's ``stack(a, b, c)`` (tensors as arguments) works too;
    ``stack([a, b], 1)`` passes the axis."""
    if isinstance(tensors, (list, tuple)):
        if len(more) > 1:
            raise TypeError("stack(tensors, axis): too many arguments")
        axis = more[0] if more else axis
    else:
        tensors = (tensors,) + more
    tensors = [as_tensor_variable(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one array to stack")
    for i, t in enumerate(tensors[1:], 1):
        a, b = tensors[0].type.shape, t.type.shape
        if len(a) != len(b) or any(p is not None and q is not None and p != q
                                   for p, q in zip(a, b)):
            raise ValueError(f"stack: all inputs must have the same shape, but input 0 has "
                             f"shape {format_shape(a)} and input {i} has {format_shape(b)}")
    axis = _axis(axis, tensors[0].ndim + 1, "stack")
    if tensors[0].ndim == 0:
        return make_vector(*tensors)
    return concatenate([expand_dims(t, axis) for t in tensors], axis)


@implements(np.stack)
def _np_stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    _no_out("stack", out)
    result = stack(arrays, axis)
    return result if dtype is None else cast(result, dtype)



class Split(Op):
    """Theano's split: ``x`` cut along ``axis`` into ``n_splits`` pieces of the
    lengths in the ``sizes`` vector (views)."""

    __props__ = ("n_splits", "axis")
    foldable = True

    def __init__(self, n_splits, axis):
        if n_splits < 1:
            raise ValueError(f"split: n_splits must be at least 1, got {n_splits}")
        self.n_splits = n_splits
        self.axis = axis
        self.view_map = {i: [0] for i in range(n_splits)}

    def make_node(self, x, sizes):
        x, sizes = as_tensor_variable(x), as_tensor_variable(sizes)
        if x.ndim == 0:
            raise ValueError("split: cannot split a zero-dimensional array")
        if not 0 <= self.axis < x.ndim:
            raise np.exceptions.AxisError(self.axis, x.ndim)
        entries = _check_shape_input(sizes, self.n_splits, "split")
        length = x.type.shape[self.axis]
        known = [e for e in entries if e is not None]
        if any(e < 0 for e in known):
            raise ValueError(f"split: negative split size in {entries}")
        if length is not None and (sum(known) > length or (
                len(known) == len(entries) and sum(known) != length)):
            raise ValueError(f"split: sizes {entries} do not add up to the length {length} "
                             f"of axis {self.axis} of x with shape {format_shape(x.type.shape)}")
        if length is not None and len(known) == len(entries) - 1:
            entries = [length - sum(known) if e is None else e for e in entries]
        outs = [TensorType(x.dtype, x.type.shape[:self.axis] + (e,) +
                           x.type.shape[self.axis + 1:])() for e in entries]
        return Apply(self, [x, sizes], outs)

    def impl(self, xp, x, sizes):
        sizes = _ints(sizes)
        _check_runtime_length(sizes, self.n_splits, "split")
        if any(s < 0 for s in sizes) or sum(sizes) != x.shape[self.axis]:
            raise ValueError(f"split: sizes {list(sizes)} do not add up to the length "
                             f"{x.shape[self.axis]} of axis {self.axis}")
        lead = (slice(None),) * self.axis
        ends = np.cumsum(sizes).tolist()
        parts = tuple(x[lead + (slice(e - s, e),)] for s, e in zip(sizes, ends))
        return parts[0] if len(parts) == 1 else parts

    def vjp(self, node, output_grads):
        x = node.inputs[0]
        return [_grad_for(x, concatenate(output_grads, self.axis)), None]

    def vmap_rule(self, node, inputs, batch_axes):
        """One set of sizes for every example: split below the batch axis."""
        if batch_axes[1] is not None:
            return None
        x = batching.to_front(inputs[0], batch_axes[0])
        outs = Split(self.n_splits, self.axis + 1).make_node(x, inputs[1]).outputs
        return outs, [0] * len(outs)


def split(x, splits_size, n_splits=None, axis=0):
    """Theano's ``split(x, splits_size, n_splits, axis=0)``: a list of
    ``n_splits`` pieces with the given lengths along ``axis``.

    Without ``n_splits`` it is NumPy's ``split(x, indices_or_sections, axis=0)``:
    an int cuts into that many equal pieces, a sequence gives cut indices.
    """
    x = as_tensor_variable(x)
    if n_splits is None:
        return _numpy_split(x, splits_size, axis)
    axis = _axis(axis, x.ndim, "split")
    sizes = shape_vector(splits_size, "split")
    if sizes.type.shape[0] not in (None, n_splits):
        raise ValueError(f"split: n_splits={n_splits} but {sizes.type.shape[0]} split sizes "
                         "were given (for NumPy's split(x, indices, axis) pass axis= by "
                         "keyword)")
    return list(Split(int(n_splits), axis).make_node(x, sizes).outputs)


@implements(np.split)
def _numpy_split(ary, indices_or_sections, axis=0):
    x = as_tensor_variable(ary)
    axis = _axis(axis, x.ndim, "split")
    sections = indices_or_sections
    if isinstance(sections, Variable) and sections.ndim == 0:
        sections = static_int(sections)
        if sections is None:
            raise TypeError("split: the number of sections must be known while building "
                            "the graph")
    if isinstance(sections, (int, np.integer)):
        n, length = int(sections), x.type.shape[axis]
        if n <= 0:
            raise ValueError("split: number of sections must be larger than 0")
        if length is not None and length % n:
            raise ValueError(f"split: array split does not result in an equal division: "
                             f"axis {axis} of shape {format_shape(x.type.shape)} into {n}")
        each = shape(x)[axis] // n
        return list(Split(n, axis).make_node(x, shape_vector([each] * n, "split")).outputs)
    cuts = list(sections)
    lead = (slice(None),) * axis
    bounds = [None] + cuts + [None]
    return [x[lead + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:])]


# ------------------------------------------------------------ repeat
def _repeats_arg(repeats):
    return repeats.tolist() if repeats.ndim else int(repeats)


def _repeat_length(n, reps, axis, x):
    """Static output length along ``axis`` (``reps`` known, or None)."""
    if reps is None:
        return None
    if (reps < 0).any():
        raise ValueError(f"repeat: negative repeats {reps.tolist()}")
    if reps.size == 1:
        r = int(reps.reshape(-1)[0])
        return 0 if r == 0 else (None if n is None else n * r)
    if n is not None and reps.size != n:
        raise ValueError(f"repeat: {reps.size} repeats for axis {axis} of length {n} "
                         f"(shape {format_shape(x.type.shape)})")
    return int(reps.sum())


class Repeat(Op):
    """``np.repeat(x, repeats, axis)`` for an integer scalar or vector ``repeats``."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, x, repeats):
        x, repeats = as_tensor_variable(x), as_tensor_variable(repeats)
        if not _is_int(repeats) or repeats.ndim > 1:
            raise TypeError(f"repeat: repeats must be an integer scalar or vector, got "
                            f"{repeats.type}")
        length = _repeat_length(x.type.shape[self.axis], static_value(repeats), self.axis, x)
        out = x.type.shape[:self.axis] + (length,) + x.type.shape[self.axis + 1:]
        return Apply(self, [x, repeats], [TensorType(x.dtype, out)()])

    def impl(self, xp, x, repeats):
        return xp.repeat(x, _repeats_arg(repeats), axis=self.axis)

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.first_input_rule(inputs, batch_axes, Repeat(self.axis + 1))

    def vjp(self, node, output_grads):
        x, repeats = node.inputs
        return [_grad_for(x, RepeatGrad(self.axis)(output_grads[0], repeats, x)), None]


class RepeatGrad(Op):
    """The gradient of ``repeat``: sums of ``g`` over each repeated group,
    shaped like ``like``."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, g, repeats, like):
        return Apply(self, [g, repeats, like], [TensorType(g.dtype, like.type.shape)()])

    def impl(self, xp, g, repeats, like):
        axis = self.axis
        n = like.shape[axis]
        if repeats.size == 1:
            r = int(repeats.reshape(-1)[0])
            grouped = g.reshape(g.shape[:axis] + (n, r) + g.shape[axis + 1:])
            return grouped.sum(axis=axis + 1)
        out = xp.zeros(like.shape, dtype=g.dtype)
        owner = xp.repeat(xp.arange(n), _repeats_arg(repeats))
        scatter_add(xp, out, (slice(None),) * axis + (owner,), g)
        return out

    def vmap_rule(self, node, inputs, batch_axes):
        """``g`` and ``like`` batched in front; the same repeats for all."""
        if batch_axes[1] is not None:
            return None
        (g, like), _ = batching.front_all([inputs[0], inputs[2]],
                                          [batch_axes[0], batch_axes[2]])
        return [RepeatGrad(self.axis + 1)(g, inputs[1], like)], [0]

    def vjp(self, node, output_grads):
        return [Repeat(self.axis)(output_grads[0], node.inputs[1]), None, None]


def repeat(x, repeats, axis=None):
    """``np.repeat``: ``repeats`` an int, a list or a symbolic integer scalar
    or vector; ``axis=None`` repeats the flattened array."""
    x = as_tensor_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    return Repeat(_axis(axis, x.ndim, "repeat"))(x, repeats)


implements(np.repeat)(repeat)
