"""Indexing: ``x[key]`` (basic and advanced), ``set_subtensor``,
``inc_subtensor`` and ``take``.

An index is kept in its op as a hashable tuple ``idx``, one entry per key item
once ``...`` is expanded:

- ``None``: a new axis;
- an ``int``, or ``"?"`` for the next input (a symbolic integer scalar);
- ``("slice", start, stop, step)``: each part ``None``, an ``int`` or ``"?"``;
- ``"[]"``: the next input is an integer index array (advanced indexing).

The symbolic parts follow ``x`` (and ``y`` for ``IncSubtensor``) among the
inputs, in order. Without index arrays ``Subtensor`` is a view. With them it
follows NumPy's advanced indexing: integers act as 0-d index arrays, and the
broadcast shape of the index arrays replaces the indexed axes where they stand
when they are adjacent in the key, and goes first otherwise. A boolean mask
becomes the integer arrays of its ``nonzero`` (lengths known only at run time).

``IncSubtensor`` returns a new array (it copies ``x`` first); repeated indices
accumulate (``np.add.at``). Its in-place version (``op.inplace_version()``,
which has a ``destroy_map``) overwrites ``x`` instead: the in-place planner
swaps it in where ``x``'s buffer is no longer needed.
"""
import numpy as np

from tracegrad.printing import register_formatter
from tracegrad.ops import index_batching as ib
from tracegrad.ops.index_batching import ARR, SYM, _markers  # noqa: F401 (the idx markers)
from tracegrad.ops.elemwise import broadcast_static, cast, mod, sum_to
from tracegrad.ops.elemwise_numpy import clip
from tracegrad.ops.reduce import normalize_axis
from tracegrad.ops.alloc import _broadcast_target, is_zeros_alloc, zeros_like
from tracegrad.ops.shape import dimshuffle, flatten
from tracegrad.ops.shape_static import (_grad_for, _is_int, scatter_add, shape,
                                        static_entries, static_int, static_value)
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, constant, resolve_weak
from tracegrad.trace import Apply, Constant, Op, Variable

__all__ = ["getitem", "set_subtensor", "inc_subtensor", "take"]

_UNKNOWN = object()
_BAD_INDEX = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) "
              "and integer or boolean arrays are valid indices")


# ------------------------------------------------------------ the idx tuple
def _idx_str(idx):
    def part(p):
        return "" if p is None else str(p)
    items = []
    for e in idx:
        if e is None:
            items.append("newaxis")
        elif isinstance(e, tuple):
            items.append(f"{part(e[1])}:{part(e[2])}" + ("" if e[3] is None else f":{e[3]}"))
        else:
            items.append(str(e))
    return ", ".join(items)


def _build_index(idx, parts):
    """The run-time index tuple: ``idx`` with its markers filled from ``parts``."""
    parts = iter(parts)

    def val(p):
        return int(next(parts)) if p == SYM else p
    out = []
    for e in idx:
        if isinstance(e, tuple):
            out.append(slice(val(e[1]), val(e[2]), val(e[3])))
        elif e == ARR:
            out.append(next(parts))
        else:
            out.append(val(e))
    return tuple(out)


def _check_parts(opname, idx, parts):
    parts = [as_tensor_variable(p) for p in parts]
    markers = _markers(idx)
    if len(parts) != len(markers):
        raise TypeError(f"{opname}: expected {len(markers)} index inputs, got {len(parts)}")
    for marker, p in zip(markers, parts):
        if not _is_int(p) or (marker == SYM and p.ndim != 0):
            raise TypeError(f"{opname}: index input {p} of type {p.type} is not an "
                            f"integer {'scalar' if marker == SYM else 'array'}")
    return parts


def _check_bounds(values, n, axis):
    if values is None or n is None or values.size == 0:
        return
    lo, hi = int(values.min()), int(values.max())
    if hi >= n or lo < -n:
        raise IndexError(f"index {hi if hi >= n else lo} is out of bounds for axis {axis} "
                         f"with size {n}")


def _result_shape(idx, x, parts):
    """Static shape of ``x[idx]``; IndexError for indices known to be out of bounds."""
    shape = x.type.shape
    parts = iter(parts)

    def static(p):
        if p != SYM:
            return p
        value = static_value(next(parts))
        return _UNKNOWN if value is None else int(value)

    advanced = ARR in idx
    out, adv_shapes, adv_at = [], [], []   # adv_at: (position in idx, position in out)
    axis = 0
    for pos, e in enumerate(idx):
        if e is None:
            out.append(1)
            continue
        n = shape[axis]
        if isinstance(e, tuple):
            a, b, c = (static(p) for p in e[1:])
            if c == 0:
                raise ValueError("slice step cannot be zero")
            known = n is not None and _UNKNOWN not in (a, b, c)
            out.append(len(range(*slice(a, b, c).indices(n))) if known else None)
        elif e == ARR:
            v = next(parts)
            _check_bounds(v.data if isinstance(v, Constant) else None, n, axis)
            adv_shapes.append(v.type.shape)
            adv_at.append((pos, len(out)))
        else:
            i = static(e)
            if i is not _UNKNOWN:
                _check_bounds(np.asarray(i), n, axis)
            if advanced:
                adv_shapes.append(())
                adv_at.append((pos, len(out)))
        axis += 1
    out.extend(shape[axis:])
    if advanced:
        try:
            joint = broadcast_static(adv_shapes, "indexing")
        except ValueError as exc:
            raise IndexError(f"shape mismatch: indexing arrays could not be broadcast "
                             f"together ({exc})") from None
        positions = [p for p, _ in adv_at]
        adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
        where = adv_at[0][1] if adjacent else 0
        out[where:where] = joint
    return tuple(out)


# ------------------------------------------------------------ parsing a key
def _classify(k):
    """``(kind, payload)`` for one item of an index key."""
    if k is None:
        return "new", None
    if k is Ellipsis:
        return "ellipsis", None
    if isinstance(k, slice):
        return "slice", k
    if isinstance(k, (bool, np.bool_)):
        raise TypeError("tracegrad does not support boolean scalar indices (x[True]); "
                        "use a boolean array")
    if isinstance(k, (int, np.integer)):
        return "int", int(k)
    if isinstance(k, Variable):
        v = as_tensor_variable(k)
    else:
        a = np.asarray(k)
        if a.size == 0 and a.dtype.kind == "f" and not isinstance(k, np.ndarray):
            a = a.astype("int64")  # x[[]] indexes with an empty integer array
        if a.dtype.kind not in "biu":
            raise IndexError(_BAD_INDEX)
        v = constant(a)
    if v.dtype == "bool":
        if v.ndim == 0:
            raise TypeError("tracegrad does not support 0-d boolean indices")
        return "mask", v
    if not _is_int(v):
        raise IndexError(f"{_BAD_INDEX}; got {v} of type {v.type}")
    return ("int" if v.ndim == 0 else "array"), v


def _part(p, inputs):
    """A slice part or integer index as an int, ``None`` or ``SYM`` (appending the input)."""
    if p is None:
        return None
    if isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)):
        return int(p)
    v = as_tensor_variable(p) if isinstance(p, (Variable, np.ndarray)) else None
    if v is None or v.ndim != 0 or not _is_int(v):
        raise IndexError(f"slice indices and integer indices must be integers, None or "
                         f"integer scalars, got {p!r}")
    known = static_int(v)
    if known is not None:
        return known
    inputs.append(v)
    return SYM


def _mask_indices(x, mask, axis):
    """The integer index arrays equivalent to boolean ``mask`` at ``axis`` of ``x``."""
    dims = x.type.shape[axis:axis + mask.ndim]
    for i, (m, s) in enumerate(zip(mask.type.shape, dims)):
        if m is not None and s is not None and m != s:
            raise IndexError(f"boolean index did not match indexed array along axis "
                             f"{axis + i}; size of axis is {s} but size of corresponding "
                             f"boolean axis is {m}")
    if isinstance(mask, Constant) and None not in dims:
        return [constant(i.astype("int64")) for i in np.nonzero(mask.data)]
    return list(Nonzero(axis).make_node(mask, x).outputs)


def _parse(x, key):
    """``(idx, inputs)`` for ``x[key]``."""
    items = [_classify(k) for k in (key if isinstance(key, tuple) else (key,))]
    used = sum(v.ndim if kind == "mask" else kind not in ("new", "ellipsis")
               for kind, v in items)
    if used > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, "
                         f"but {used} were indexed")
    ellipses = [i for i, (kind, _) in enumerate(items) if kind == "ellipsis"]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        at = ellipses[0]
        items[at:at + 1] = [("slice", slice(None))] * (x.ndim - used)
    idx, inputs, axis = [], [], 0
    for kind, v in items:
        if kind == "new":
            idx.append(None)
            continue
        if kind == "mask":
            arrays = _mask_indices(x, v, axis)
            idx += [ARR] * len(arrays)
            inputs += arrays
            axis += v.ndim
            continue
        if kind == "slice":
            idx.append(("slice",) + tuple(_part(p, inputs) for p in (v.start, v.stop, v.step)))
        elif kind == "int":
            idx.append(_part(v, inputs))
        else:
            idx.append(ARR)
            inputs.append(v)
        axis += 1
    return tuple(idx), inputs


# ------------------------------------------------------------ ops
# The ``view_map`` of a basic ``Subtensor`` and the ``destroy_map`` of an
# in-place ``IncSubtensor``: one dict for every op (as a class-level map is),
# not two tracked objects per node. Never written to.
_ON_INPUT_0 = {0: [0]}


class Subtensor(Op):
    """``x[idx]``: a view for basic indexes, a copy (NumPy's advanced
    indexing) when ``idx`` has index arrays."""

    __props__ = ("idx",)
    foldable = True
    selects = True

    def __init__(self, idx):
        self.idx = tuple(idx)
        self.advanced = ARR in self.idx
        self.view_map = {} if self.advanced else _ON_INPUT_0
        self._fixed = None if _markers(self.idx) else _build_index(self.idx, ())

    @property
    def name(self):
        return f"{'Advanced' if self.advanced else ''}Subtensor{{{_idx_str(self.idx)}}}"

    def make_node(self, x, *parts):
        x = as_tensor_variable(x)
        parts = _check_parts(self.name, self.idx, parts)
        out = _result_shape(self.idx, x, parts)
        return Apply(self, [x, *parts], [TensorType(x.dtype, out)()])

    def impl(self, xp, x, *parts):
        return x[self._fixed if self._fixed is not None else _build_index(self.idx, parts)]

    def vjp(self, node, output_grads):
        x, *parts = node.inputs
        gx = IncSubtensor(self.idx)(zeros_like(x), output_grads[0], *parts)
        return [_grad_for(x, gx)] + [None] * len(parts)

    def vmap_rule(self, node, inputs, batch_axes):
        """A batched ``x`` indexed the same way for every example: a full
        slice for the batch axis; batched indices index the batch by an
        ``arange`` column (``ops/index_batching.py``)."""
        return ib.subtensor_rule(Subtensor, node, inputs, batch_axes)

    # What is known of shape vectors (``x.shape[0]``, ``x.shape[1:]``).
    def _picked(self, node, depth=8):
        x = node.inputs[0]
        if x.ndim != 1 or self._fixed is None or len(self.idx) != 1 or self.idx[0] is None:
            return None
        entries = static_entries(x, depth)
        return None if entries is None else entries[self._fixed[0]]

    def static_output(self, node):
        picked = self._picked(node)
        if picked is None or (isinstance(picked, list) and None in picked):
            return None
        return [np.asarray(picked, dtype=node.outputs[0].dtype)]

    def static_entries(self, node, depth):
        picked = self._picked(node, depth)
        return picked if isinstance(picked, list) else None


class IncSubtensor(Op):
    """``x`` with ``x[idx]`` set to ``y`` or incremented by ``y`` (repeated
    index-array entries accumulate unless ``ignore_duplicates``; when setting,
    the last one wins as in NumPy, though the gradient for ``y`` still flows
    to every copy).

    Copies ``x`` first; ``inplace_version()`` overwrites it (``destroy_map``).
    """

    __props__ = ("idx", "set_instead_of_inc", "inplace", "ignore_duplicates")

    def __init__(self, idx, set_instead_of_inc=False, inplace=False, ignore_duplicates=False):
        self.idx = tuple(idx)
        self.set_instead_of_inc = bool(set_instead_of_inc)
        self.inplace = bool(inplace)
        self.ignore_duplicates = bool(ignore_duplicates)
        self.destroy_map = _ON_INPUT_0 if self.inplace else {}
        self._accumulate = (ARR in self.idx and not self.set_instead_of_inc
                            and not self.ignore_duplicates)
        self._fixed = None if _markers(self.idx) else _build_index(self.idx, ())

    def inplace_version(self, i=0):
        """The same op writing into ``x``'s buffer (input 0; ``None`` for
        any other input ``i``)."""
        if i != 0:
            return None
        return type(self)(self.idx, self.set_instead_of_inc, True, self.ignore_duplicates)

    @property
    def name(self):
        kind = "Set" if self.set_instead_of_inc else "Inc"
        adv = "Advanced" if ARR in self.idx else ""
        return f"{adv}{kind}Subtensor{{{_idx_str(self.idx)}}}" + \
            ("{inplace}" if self.inplace else "")

    def make_node(self, x, y, *parts):
        x = as_tensor_variable(x)
        parts = _check_parts(self.name, self.idx, parts)
        y = _value_for(self, x, y, _result_shape(self.idx, x, parts))
        return Apply(self, [x, y, *parts], [TensorType(x.dtype, x.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def impl(self, xp, x, y, *parts):
        # A read-only x (a broadcast view, say) is copied even in place.
        writeable = getattr(getattr(x, "flags", None), "writeable", True)
        out = x if self.inplace and writeable else x.copy()
        index = self._fixed if self._fixed is not None else _build_index(self.idx, parts)
        if self.set_instead_of_inc:
            out[index] = y
        elif self._accumulate:
            scatter_add(xp, out, index, y)
        else:
            out[index] += y
        return out

    def vjp(self, node, output_grads):
        x, y, *parts = node.inputs
        g = output_grads[0]
        gx = g
        if self.set_instead_of_inc:
            gx = IncSubtensor(self.idx, True)(g, constant(np.zeros((), g.dtype)), *parts)
        gy = sum_to(Subtensor(self.idx)(g, *parts), y)
        return [_grad_for(x, gx), _grad_for(y, gy)] + [None] * len(parts)


    def accumulate_onto(self, node, total):
        """``total`` incremented at this index by ``y``, when this node adds
        ``y`` into zeros of ``total``'s type (setting does not add up)."""
        x, y, *parts = node.inputs
        if (self.set_instead_of_inc or self.inplace or x.type != total.type
                or not is_zeros_alloc(x)):
            return None
        return self(total, y, *parts)

    def vmap_rule(self, node, inputs, batch_axes):
        """``x`` batched in front (repeated when only ``y`` is batched), the
        index with the batch axis in front, ``y`` lined up with ``x[idx]``
        (``ops/index_batching.py``)."""
        return ib.inc_subtensor_rule(Subtensor, IncSubtensor, node, inputs, batch_axes)


def _value_for(op, x, y, target):
    """``y`` checked against the indexed shape ``target`` and cast to x's dtype."""
    fname = "set_subtensor" if op.set_instead_of_inc else "inc_subtensor"
    y = as_tensor_variable(y)
    if getattr(y, "weak", False):
        y = resolve_weak([x, y])[1]
    if not op.set_instead_of_inc and not np.can_cast(y.dtype, x.dtype, "same_kind"):
        raise TypeError(f"{fname}: cannot add values of dtype {y.dtype} into an array "
                        f"of dtype {x.dtype}")
    extra = y.ndim - len(target)
    if extra > 0 and all(s == 1 for s in y.type.shape[:extra]):
        y = dimshuffle(y, range(extra, y.ndim))  # NumPy drops leading length-1 axes
    _broadcast_target(fname, y.type.shape, target)
    return cast(y, x.dtype)


class Nonzero(Op):
    """The integer index arrays of a boolean ``mask`` used at ``axis`` of
    ``x`` (``x`` is read only to check the mask's shape at run time)."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, mask, x):
        mask, x = as_tensor_variable(mask), as_tensor_variable(x)
        outs = [TensorType("int64", (None,))() for _ in range(mask.ndim)]
        return Apply(self, [mask, x], outs)

    def impl(self, xp, mask, x):
        dims = x.shape[self.axis:self.axis + mask.ndim]
        for i, (m, s) in enumerate(zip(mask.shape, dims)):
            if m != s:
                raise IndexError(f"boolean index did not match indexed array along axis "
                                 f"{self.axis + i}; size of axis is {s} but size of "
                                 f"corresponding boolean axis is {m}")
        found = xp.nonzero(mask)
        return found[0] if len(found) == 1 else found

    def vjp(self, node, output_grads):
        return [None, None]


# ------------------------------------------------------------ public functions
def getitem(x, key):
    """``x[key]`` with NumPy's semantics (``TensorVariable.__getitem__``)."""
    x = as_tensor_variable(x)
    idx, inputs = _parse(x, key)
    return Subtensor(idx)(x, *inputs)


def _rebuild(fname, sub, y, set_instead_of_inc, ignore_duplicates=False):
    node = getattr(sub, "owner", None)
    if node is None or not isinstance(node.op, Subtensor):
        raise TypeError(f"{fname}: the first argument must be the result of indexing, "
                        f"as in {fname}(x[1:3], y); got {sub}")
    x, *parts = node.inputs
    op = IncSubtensor(node.op.idx, set_instead_of_inc, ignore_duplicates=ignore_duplicates)
    return op(x, y, *parts)


def set_subtensor(x, y, inplace=False, tolerate_inplace_aliasing=False):
    """Theano's ``set_subtensor(x[idx], y)``: a copy of ``x`` with ``x[idx] = y``."""
    return _rebuild("set_subtensor", x, y, True)


def inc_subtensor(x, y, inplace=False, set_instead_of_inc=False,
                  tolerate_inplace_aliasing=False, ignore_duplicates=False):
    """Theano's ``inc_subtensor(x[idx], y)``: a copy of ``x`` with ``y`` added
    at ``idx``; repeated indices accumulate (``np.add.at``) unless
    ``ignore_duplicates``."""
    return _rebuild("inc_subtensor", x, y, set_instead_of_inc, ignore_duplicates)


def take(a, indices, axis=None, mode="raise"):
    """``np.take``: ``mode`` is ``'raise'``, ``'wrap'`` or ``'clip'``."""
    a = as_tensor_variable(a)
    if axis is None:
        a, axis = flatten(a), 0
    axis = normalize_axis(axis, a.ndim, "take")[0]
    if not isinstance(indices, Variable):
        indices = np.asarray(indices)
        if indices.size == 0 and indices.dtype.kind == "f":
            indices = indices.astype("int64")
    indices = as_tensor_variable(indices)
    if indices.dtype == "bool":
        indices = cast(indices, "int64")
    if not _is_int(indices):
        raise TypeError(f"take: indices must be integers, got {indices.type}")
    length = shape(a)[axis]
    if mode == "wrap":
        indices = mod(indices, length)
    elif mode == "clip":
        indices = clip(indices, 0, length - 1)
    elif mode != "raise":
        raise ValueError(f"take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    return getitem(a, (slice(None),) * axis + (indices,))


# ------------------------------------------------------------ printing
def _index_tokens(idx, parts):
    """``pp`` tokens of ``[idx]`` with the symbolic parts in their places."""
    if not idx:
        return ["[()]"]
    parts = iter(parts)

    def part(p):
        return [next(parts)] if isinstance(p, str) else ([] if p is None else [str(p)])
    tokens = ["["]
    for k, e in enumerate(idx):
        tokens += [", "] if k else []
        if e is None:
            tokens.append("None")
        elif isinstance(e, tuple):
            tokens += part(e[1]) + [":"] + part(e[2]) + ([] if e[3] is None else [":"] + part(e[3]))
        else:
            tokens += part(e)
    return tokens + ["]"]


register_formatter(Subtensor, lambda node, i: [i[0]] + _index_tokens(node.op.idx, i[1:]))
register_formatter(IncSubtensor, lambda node, i: [
    "set_subtensor(" if node.op.set_instead_of_inc else "inc_subtensor(", i[0],
    *_index_tokens(node.op.idx, i[2:]), ", ", i[1], ")"])


@implements(np.take)
def _np_take(a, indices, axis=None, out=None, mode="raise"):
    if out is not None:
        raise TypeError("np.take(..., out=) cannot write into a symbolic variable")
    return take(a, indices, axis, mode)
