"""Neural-network functions (``T.nnet``): ``softmax``, ``log_softmax``, ``relu``,
``binary_crossentropy``, ``categorical_crossentropy``.

``softmax`` and ``log_softmax`` are primitives with stable implementations
(the max is subtracted first) and stable vjps written with their outputs:

    softmax:      dx = y * (g - sum(g * y))
    log_softmax:  dx = g - exp(y) * sum(g)

The rest are graphs of elementwise ops and reductions. Categorical
cross-entropy against integer labels reads one entry per row through
``TakeAlongLastAxis`` (whose adjoint ``PutAlongLastAxis`` scatters the
gradient back), so it never builds a one-hot matrix.
"""
from tracegrad.ops import batching
from tracegrad.ops import elemwise as ew
from tracegrad.ops.elemwise import cast, format_shape, is_differentiable
from tracegrad.ops.reduce import normalize_axis, sum as _sum
from tracegrad.ops.shape import expand_dims
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["softmax", "log_softmax", "relu", "binary_crossentropy", "sigmoid_binary_crossentropy",
           "categorical_crossentropy", "Softmax", "LogSoftmax",
           "TakeAlongLastAxis", "PutAlongLastAxis"]


def _as_float(x):
    x = as_tensor_variable(x)
    return x if x.dtype[0] == "f" else cast(x, "float64")


class _SoftmaxBase(Op):
    __props__ = ("axes",)

    def __init__(self, axes):
        self.axes = tuple(axes)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.dtype[0] != "f":
            raise TypeError(f"{self.name}: expected a float input, got {x.dtype}")
        return Apply(self, [x], [x.type()])

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vmap_rule(self, node, inputs, batch_axes):
        op = type(self)(batching.shifted_axes(self.axes))
        return batching.shifted_rule(inputs, batch_axes, op)

    def _shifted(self, xp, x):
        return x - _max_keepdims(xp, x, self.axes)


# Up to this many entries along the last axis, its max is taken column by
# column (``maximum`` over whole columns is vectorised; NumPy's reduction
# over a short inner axis is not: 4 ns per element, 5x slower for 10 classes).
from tracegrad.config import SHORT_AXIS  # noqa: E402 (a tunable: tracegrad/config.py)


def _max_keepdims(xp, x, axes):
    n = x.shape[-1] if x.ndim else 0
    if axes != (x.ndim - 1,) or not 2 <= n <= SHORT_AXIS or x.size < 64 * n:
        return xp.max(x, axis=axes, keepdims=True)
    m = x[..., 0].copy()
    for j in range(1, n):
        xp.maximum(m, x[..., j], out=m)  # (max is exact: any order gives the same)
    return m[..., None]


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x), axes)``, computed as ``exp(x - max)`` / its sum."""

    positive = True
    bounded = True

    def impl(self, xp, x):
        if x.size == 0:
            return xp.empty_like(x)
        e = xp.exp(self._shifted(xp, x))
        return e / xp.sum(e, axis=self.axes, keepdims=True)

    def vjp(self, node, output_grads):
        y, g = node.outputs[0], output_grads[0]
        return [y * (g - _sum(g * y, self.axes, keepdims=True))]


class LogSoftmax(_SoftmaxBase):
    """``x - logsumexp(x, axes)``, computed from ``x - max``."""

    def impl(self, xp, x):
        if x.size == 0:
            return xp.empty_like(x)
        s = self._shifted(xp, x)
        return s - xp.log(xp.sum(xp.exp(s), axis=self.axes, keepdims=True))

    def vjp(self, node, output_grads):
        y, g = node.outputs[0], output_grads[0]
        return [g - ew.exp(y) * _sum(g, self.axes, keepdims=True)]


class SoftmaxAndLog(_SoftmaxBase):
    """``(softmax(x), log_softmax(x))`` from one max, exp and sum: what the
    ``specialize`` rewrite puts in place of both when a graph needs both (a
    cross-entropy and its gradient). Each output equals its own op's."""

    def make_node(self, x):
        x = _SoftmaxBase.make_node(self, x).inputs[0]
        return Apply(self, [x], [x.type(), x.type()])

    def impl(self, xp, x):
        if x.size == 0:
            return xp.empty_like(x), xp.empty_like(x)
        s = self._shifted(xp, x)
        e = xp.exp(s)
        total = xp.sum(e, axis=self.axes, keepdims=True)
        return e / total, s - xp.log(total)

    def vjp(self, node, output_grads):
        y, ly = node.outputs
        g, lg = output_grads
        parts = []
        if g is not None:
            parts.append(y * (g - _sum(g * y, self.axes, keepdims=True)))
        if lg is not None:
            parts.append(lg - y * _sum(lg, self.axes, keepdims=True))
        if not parts:
            return [None]
        return [parts[0] if len(parts) == 1 else parts[0] + parts[1]]


# ``softmax(vector)`` without ``axis=`` is Theano's 1×n row (Theano padded
# 1-d inputs to a matrix, and Theano code indexes the result ``[0]``); an
# explicit ``axis=`` (PyTensor's, NumPy's and SciPy's form) keeps the shape.
_THEANO_AXIS = object()


def _theano_rows(x, axis):
    x = _as_float(x)
    if axis is _THEANO_AXIS:
        if x.ndim == 1:
            x = expand_dims(x, 0)
        axis = -1
    return x, axis


def softmax(x, axis=_THEANO_AXIS):
    """Softmax along ``axis`` (int, tuple or None; default the last),
    numerically stable. A vector without ``axis=`` gives a 1×n row, as in
    Theano."""
    x, axis = _theano_rows(x, axis)
    return Softmax(normalize_axis(axis, x.ndim, "softmax"))(x)


def log_softmax(x, axis=_THEANO_AXIS):
    """Log of the softmax along ``axis`` (default the last), numerically
    stable. A vector without ``axis=`` gives a 1×n row, as in Theano."""
    x, axis = _theano_rows(x, axis)
    return LogSoftmax(normalize_axis(axis, x.ndim, "log_softmax"))(x)


def relu(x, alpha=0):
    """Theano's ``relu``: ``x`` where ``x > 0``, else ``alpha * x`` (leaky
    when ``alpha`` is nonzero; ``alpha`` may be symbolic)."""
    x = as_tensor_variable(x)
    if isinstance(alpha, (int, float)) and alpha == 0:
        return ew.maximum(x, 0)
    return ew.switch(ew.gt(x, 0), x, x * alpha)


def binary_crossentropy(output, target):
    """Theano's ``-(target * log(output) + (1 - target) * log(1 - output))``,
    elementwise (``log(1 - output)`` is computed as ``log1p(-output)``)."""
    output, target = as_tensor_variable(output), as_tensor_variable(target)
    return ew.neg(target * ew.log(output) + (1 - target) * ew.log1p(ew.neg(output)))


def sigmoid_binary_crossentropy(output, target):
    """Theano's ``binary_crossentropy(sigmoid(output), target)`` computed
    stably from the logits ``output``: ``softplus(output) - target * output``."""
    output, target = as_tensor_variable(output), as_tensor_variable(target)
    return ew.softplus(output) - target * output


def categorical_crossentropy(coding_dist, true_dist):
    """Theano's cross-entropy per row of ``coding_dist`` (probabilities over
    the last axis): ``-sum(true_dist * log(coding_dist), axis=-1)`` when
    ``true_dist`` is a distribution of the same ndim, or
    ``-log(coding_dist[i, true_dist[i]])`` when it holds integer class indices
    (one ndim less)."""
    coding = as_tensor_variable(coding_dist)
    true = as_tensor_variable(true_dist)
    if true.ndim == coding.ndim:
        return ew.neg(_sum(true * ew.log(coding), axis=-1))
    if true.ndim == coding.ndim - 1 and true.dtype[0] in "iu":
        return ew.neg(ew.log(TakeAlongLastAxis()(coding, true)))
    raise TypeError(
        f"categorical_crossentropy: true_dist must be a distribution with the ndim "
        f"of coding_dist ({coding.ndim}) or integer class indices with ndim "
        f"{coding.ndim - 1}; got dtype {true.dtype} and ndim {true.ndim}")


def _check_index_shape(opname, x, idx):
    if x.ndim < 1 or idx.ndim != x.ndim - 1 or idx.dtype[0] not in "iu":
        raise TypeError(f"{opname}: expected integer indices with ndim {x.ndim - 1}, "
                        f"got {idx.dtype} with ndim {idx.ndim}")
    for a, b in zip(x.type.shape[:-1], idx.type.shape):
        if a is not None and b is not None and a != b:
            raise ValueError(f"{opname}: shapes {format_shape(x.type.shape)} and "
                             f"{format_shape(idx.type.shape)} do not match")


def _rows(xp, x, idx):
    flat_idx = idx.reshape(-1)
    return xp.arange(flat_idx.shape[0]), flat_idx, (flat_idx.shape[0], x.shape[-1])


class TakeAlongLastAxis(Op):
    """``out[...] = x[..., idx[...]]``: one entry of the last axis per row
    (negative indices count from the end; out of range raises IndexError)."""

    selects = True

    def make_node(self, x, idx):
        x, idx = as_tensor_variable(x), as_tensor_variable(idx)
        _check_index_shape("take_along_last_axis", x, idx)
        return Apply(self, [x, idx], [TensorType(x.dtype, x.type.shape[:-1])()])

    def shape_relation(self, node):
        # (``impl`` reshapes to ``idx.shape``: a mean's count then reads the
        # targets, and W4's step gathers the loss rows once, not twice)
        return ("same", node.inputs[1])

    def impl(self, xp, x, idx):
        rows, cols, flat_shape = _rows(xp, x, idx)
        return x.reshape(flat_shape)[rows, cols].reshape(idx.shape)

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.shifted_rule(inputs, batch_axes, self)

    def vjp(self, node, output_grads):
        x, idx = node.inputs
        if not is_differentiable(x):
            return [None, None]
        return [PutAlongLastAxis()(output_grads[0], idx, x), None]


class PutAlongLastAxis(Op):
    """Zeros shaped like ``like`` with ``g[...]`` at ``[..., idx[...]]`` (the
    adjoint of ``TakeAlongLastAxis``)."""

    def make_node(self, g, idx, like):
        g, idx, like = (as_tensor_variable(v) for v in (g, idx, like))
        _check_index_shape("put_along_last_axis", like, idx)
        return Apply(self, [g, idx, like], [TensorType(g.dtype, like.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[2])

    def impl(self, xp, g, idx, like):
        rows, cols, flat_shape = _rows(xp, like, idx)
        out = xp.zeros(like.shape, dtype=g.dtype)
        out.reshape(flat_shape)[rows, cols] = g.reshape(-1)
        return out

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.shifted_rule(inputs, batch_axes, self)

    def vjp(self, node, output_grads):
        _, idx, _ = node.inputs
        return [TakeAlongLastAxis()(output_grads[0], idx), None, None]

