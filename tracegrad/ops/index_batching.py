"""The ``idx`` tuple's markers, and the batching rules (``tg.vmap``) of the
indexing ops that read them.

An indexing op (``ops/index.py``: ``Subtensor``, ``IncSubtensor``) keeps its
index as an ``idx`` tuple: ints, ``None`` (a new axis), ``("slice", start,
stop, step)`` and the markers ``SYM`` (a symbolic integer scalar input) and
``ARR`` (an integer index-array input), filled from the node's inputs in
order. The markers live here, below ``index.py``, so the rules can read them.

Batching: a batched ``x`` gets a full slice in front for its batch axis;
batched index inputs index the batch by an ``arange`` column (an index array
of its own) and a batched integer scalar becomes an index array; NumPy's
placement of the advanced-index axes (in place when they are next to each
other, first otherwise) decides where the batch axis lands, and a
permutation restores each example's layout. A batched slice bound has no
rule (``vmap`` loops).
"""
from tracegrad.ops import batching

__all__ = ["SYM", "ARR", "subtensor_rule", "inc_subtensor_rule"]

SYM = "?"    # a symbolic integer scalar input
ARR = "[]"   # an integer index array input


def _markers(idx):
    """The ``SYM``/``ARR`` markers of ``idx``, in input order."""
    out = []
    for e in idx:
        for p in (e[1:] if isinstance(e, tuple) else (e,)):
            if isinstance(p, str):
                out.append(p)
    return out


def _batched_idx(idx, parts):
    """``(idx, axis)``: ``idx`` with a full slice in front for a batch axis 0
    of ``x``, and where the batch axis lands in ``x[idx]``: 0, or after the
    advanced-index axes when NumPy moves those first (advanced indexes, the
    integers among them, not next to each other)."""
    new = (("slice", None, None, None),) + tuple(idx)
    if ARR not in idx:
        return new, 0
    advanced = [i for i, e in enumerate(idx) if not isinstance(e, tuple) and e is not None]
    if advanced == list(range(advanced[0], advanced[-1] + 1)):
        return new, 0
    arrays = iter(p for p, m in zip(parts, _markers(idx)) if m == ARR)
    ndim = max(next(arrays).ndim for e in idx if e == ARR)
    return new, ndim


def _batched_index(x, idx, parts, part_axes):
    """Indexing of a batched ``x`` (batch axis 0) with batched index inputs:
    ``(idx, parts, order)`` where ``x[idx]`` (parts filled in) has the batch
    axis first, then the broadcast index-array axes, then the sliced axes,
    and ``.dimshuffle(order)`` of it (``None``: as it is) is the batch of the
    examples' results; ``None`` when a slice bound is batched."""
    markers = _markers(idx)
    n_adv = max([p.ndim - (a is not None)
                 for p, m, a in zip(parts, markers, part_axes) if m == ARR], default=0)
    new_idx = [ARR]
    new_parts = [batching.arange_of(batching.batch_length(x)).dimshuffle(
        0, *(["x"] * n_adv))]
    k = 0
    for e in idx:
        if isinstance(e, tuple):
            n = sum(1 for p in e[1:] if p == SYM)
            if any(a is not None for a in part_axes[k:k + n]):
                return None
            new_parts.extend(parts[k:k + n])
            k += n
            new_idx.append(e)
        elif e == ARR or e == SYM:
            p, a = parts[k], part_axes[k]
            k += 1
            if a is not None:
                e = ARR
                p = batching.pad_front(batching.to_front(p, a), n_adv)
            new_idx.append(e)
            new_parts.append(p)
        else:
            new_idx.append(e)
    return tuple(new_idx), new_parts, _example_order(idx, n_adv)


def _example_order(idx, n_adv):
    """The permutation from ``(batch, index axes, sliced axes)`` to the batch
    of results in the examples' own layout: NumPy keeps index-array axes in
    place when an example's advanced indexes are next to each other."""
    advanced = [i for i, e in enumerate(idx) if not isinstance(e, tuple) and e is not None]
    if ARR not in idx or not advanced or advanced[0] == 0 or \
            advanced != list(range(advanced[0], advanced[-1] + 1)):
        return None
    before = sum(1 for e in idx[:advanced[0]] if isinstance(e, tuple) or e is None)
    adv = list(range(1, 1 + n_adv))
    sliced = list(range(1 + n_adv, 1 + n_adv + before))
    return [0] + sliced + adv


def _moved_to(x, axis):
    """``x`` (batch axis 0) with its batch axis moved to ``axis``."""
    if axis == 0:
        return x
    order = list(range(1, x.ndim))
    return x.dimshuffle(*order[:axis], 0, *order[axis:])


def _front_or_repeated(x, axis, like):
    return batching.to_front(x, axis) if axis is not None else batching.materialize(x, like)


def _first_batched(inputs, batch_axes):
    return next(batching.to_front(v, a) for v, a in zip(inputs, batch_axes) if a is not None)


def subtensor_rule(subtensor, node, inputs, batch_axes):
    """The rule of ``x[idx]`` (``subtensor``: the op class)."""
    op = node.op
    x, *parts = inputs
    if all(a is None for a in batch_axes[1:]):
        idx, axis = _batched_idx(op.idx, parts)
        return [subtensor(idx)(batching.to_front(x, batch_axes[0]), *parts)], [axis]
    x = _front_or_repeated(x, batch_axes[0], _first_batched(inputs, batch_axes))
    made = _batched_index(x, op.idx, parts, batch_axes[1:])
    if made is None:
        return None
    idx, new_parts, order = made
    out = subtensor(idx)(x, *new_parts)
    if order is not None:
        out = out.dimshuffle(*order, *range(len(order), out.ndim))
    return [out], [0]


def inc_subtensor_rule(subtensor, inc_subtensor, node, inputs, batch_axes):
    """The rule of ``set/inc_subtensor(x[idx], y)`` (the op classes given)."""
    op = node.op
    x, y, *parts = inputs
    like = _first_batched(inputs, batch_axes)
    x = _front_or_repeated(x, batch_axes[0], like)
    # y's examples are lined up with x[idx]'s (the examples' layout, batch first)
    target = subtensor(op.idx).make_node(node.inputs[0], *node.inputs[2:]).outputs[0]
    if all(a is None for a in batch_axes[2:]):
        idx, axis = _batched_idx(op.idx, parts)
        new_parts = parts
        if batch_axes[1] is not None:
            y = _moved_to(batching.pad_front(batching.to_front(y, batch_axes[1]),
                                             target.ndim), axis)
    else:
        made = _batched_index(x, op.idx, parts, batch_axes[2:])
        if made is None:
            return None
        idx, new_parts, order = made
        y = batching.pad_front(_front_or_repeated(y, batch_axes[1], like), target.ndim)
        if order is not None:
            back = [order.index(i) for i in range(len(order))]
            y = y.dimshuffle(*back, *range(len(order), y.ndim))
    new = inc_subtensor(idx, op.set_instead_of_inc, False, op.ignore_duplicates)
    return [new(x, y, *new_parts)], [0]
