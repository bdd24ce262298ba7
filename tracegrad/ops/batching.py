"""What the batching rules of the ops share (``tg.vmap``, ``tracegrad/vmap.py``).

An op's ``vmap_rule(node, inputs, batch_axes)`` (``trace.Op``) rebuilds
``node`` for batched inputs: ``inputs`` are the node's inputs with a batch
axis inserted at ``batch_axes[i]`` (``None``: that input is the same for every
example, unchanged), and it returns ``(outputs, out_axes)``: the batched
outputs and where each one's batch axis is (``None``: the same for every
example), or ``None`` when it has no rule for these inputs (``vmap`` then
loops over the batch).

The helpers here move batch axes to the front and line inputs up for
NumPy broadcasting. They sit at the bottom of the ops layer (every op module
may import them), so they build graphs through the variables' methods and the
bound op namespace (``tensor.variable``'s ``_ops``, set when ``ops.api`` is
imported), never by importing the op modules above.
"""
import tracegrad.tensor.variable as _variable

__all__ = ["to_front", "pad_front", "batch_shape", "with_batch", "materialize",
           "front_all", "elementwise_rule", "shifted_axis", "shifted_axes", "shifted_rule", "arange_of", "batch_length",
           "sum_to_rule", "first_input_rule", "stack_columns"]


def _ops():
    return _variable._ops


def to_front(x, axis):
    """``x`` with its batch axis ``axis`` moved to axis 0."""
    if axis == 0:
        return x
    rest = [i for i in range(x.ndim) if i != axis]
    return x.dimshuffle(axis, *rest)


def pad_front(x, ndim):
    """``x`` (batch axis 0) with length-1 axes after the batch axis so that
    each example has ``ndim`` axes (NumPy's left-padding, below the batch)."""
    k = x.ndim - 1
    if k >= ndim:
        return x
    return x.dimshuffle(0, *(["x"] * (ndim - k)), *range(1, k + 1))


def batch_shape(x):
    """The batch length of ``x`` (batch axis 0) as a length-1 int64 vector."""
    return _ops().shape(x)[:1]


def with_batch(shape, x):
    """The shape vector ``shape`` with the batch length of ``x`` (axis 0) first."""
    return _ops().concatenate([batch_shape(x), _ops().cast(shape, "int64")])


def materialize(x, like):
    """The unbatched ``x`` repeated along a new axis 0 as long as ``like``'s
    batch axis 0 (a broadcast view)."""
    x = _variable.as_tensor_variable(x)
    expanded = x.dimshuffle("x", *range(x.ndim))
    return _ops().broadcast_to(expanded, with_batch(_ops().shape(x), like))


def front_all(inputs, batch_axes):
    """``(inputs, like)``: every input with its batch axis first, the
    unbatched ones materialized to the batch length; ``like`` is a batched one."""
    like = next(to_front(x, a) for x, a in zip(inputs, batch_axes) if a is not None)
    out = [to_front(x, a) if a is not None else materialize(x, like)
           for x, a in zip(inputs, batch_axes)]
    return out, like


def elementwise_rule(node, inputs, batch_axes):
    """The rule of a pointwise op with NumPy broadcasting: batched inputs get
    their batch axis first and are padded to the output's ndim; unbatched ones
    get a broadcastable axis in front. One output per node output, batched
    at axis 0."""
    ndim = max(o.ndim for o in node.outputs)
    args = []
    for x, a in zip(inputs, batch_axes):
        if a is None:
            args.append(x.dimshuffle(*(["x"] * (ndim + 1 - x.ndim)), *range(x.ndim)))
        else:
            args.append(pad_front(to_front(x, a), ndim))
    outs = node.op.make_node(*args).outputs
    return outs, [0] * len(outs)


def shifted_axis(axis):
    """A per-example axis (non-negative) once the batch axis is first."""
    return None if axis is None else axis + 1


def shifted_axes(axes):
    """A tuple of per-example axes (non-negative) once the batch axis is first."""
    return None if axes is None else tuple(a + 1 for a in axes)


def shifted_rule(inputs, batch_axes, op):
    """The rule of an op whose inputs share one shape, given ``op``: the
    node's op with its axes shifted past a batch axis 0. Every input is
    batched in front (unbatched ones repeated); outputs batched at 0."""
    args, _ = front_all(inputs, batch_axes)
    outs = op.make_node(*args).outputs
    return outs, [0] * len(outs)


def arange_of(size):
    """``arange(size)`` (int64) for a symbolic or known batch length."""
    return _ops().arange(size)


def batch_length(x):
    """The batch length of ``x`` (batch axis 0), a symbolic int64 scalar."""
    return _ops().shape(x)[0]


def sum_to_rule(node, inputs, batch_axes):
    """``SumTo``'s rule: each example's ``g`` summed to its ``like``; the
    leading axes an example's ``like`` lacks are summed first, below the
    batch axis (both are then batched in front)."""
    g, like = node.inputs
    (gb, lb), _ = front_all(inputs, batch_axes)
    lead = g.ndim - like.ndim
    if lead > 0:
        gb = gb.sum(axis=tuple(range(1, lead + 1)))
    return node.op.make_node(gb, lb).outputs, [0]


def first_input_rule(inputs, batch_axes, op):
    """The rule of an op on input 0 whose other inputs are parameters
    (lengths, sizes), given ``op``: the node's op with its axes shifted past
    a batch axis 0. ``None`` (the loop) when a parameter is batched."""
    if batch_axes[0] is None or any(a is not None for a in batch_axes[1:]):
        return None
    outs = op.make_node(to_front(inputs[0], batch_axes[0]), *inputs[1:]).outputs
    return outs, [0] * len(outs)


def stack_columns(columns):
    """Batched scalars (each a vector over the batch) as the columns of a
    (batch, n) matrix."""
    return _ops().stack(columns, axis=1)
