"""The gradient of a softmax cross-entropy against integer targets as one op:
Theano's ``crossentropy_softmax_1hot_with_bias_dx(dy, sm, y_idx)``.

    out = dy[..., None] * sm;  out[..., y_idx[...]] -= dy[...]

that is ``dy * (softmax(x) - onehot(y_idx))``, the gradient in ``x`` of
``dy * -log(softmax(x)[..., y_idx])``. ``tg.grad`` builds that gradient as a
scatter, a reduction and products (``PutAlongLastAxis``, ``sum``, guards);
the ``specialize`` rule of ``rewrite/softmax_grad.py`` puts this op in their
place, so a training step spends one pass over the logits' shape on it.
"""
import numpy as np

from tracegrad.ops.base import sum_to
from tracegrad.ops.nnet import TakeAlongLastAxis, _check_index_shape
from tracegrad.ops.reduce import sum as _sum
from tracegrad.ops.shape import expand_dims
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["crossentropy_softmax_1hot_with_bias_dx", "CrossentropySoftmax1HotWithBiasDx"]


def _nan_at_minus_inf_targets(xp, picked, dy, shape):
    """``dy`` (broadcast to ``shape``) with NaN where the target's logit
    ``picked`` is -inf; ``dy`` itself when none is."""
    at = picked == -xp.inf
    if not at.any():
        return dy
    return xp.where(at, xp.asarray(xp.nan, dtype=dy.dtype), xp.broadcast_to(dy, shape))


class CrossentropySoftmax1HotWithBiasDx(Op):
    """``dy[..., None] * sm`` less ``dy`` at ``[..., y_idx[...]]`` (negative
    indices count from the end; out of range raises IndexError, as
    ``TakeAlongLastAxis`` does). ``dy`` broadcasts against ``y_idx``.

    An optional fourth input, the logits ``x`` of ``sm``, makes the rows
    whose target logit is -inf NaN: what the unfused gradient gives there
    (``0 * inf`` of ``sm * (g / sm[target])``), which the rewrite keeps
    (``rewrite/softmax_grad.py``) without a node of its own for it."""

    def make_node(self, dy, sm, y_idx, x=None):
        dy, sm, y_idx = (as_tensor_variable(v) for v in (dy, sm, y_idx))
        extra = [] if x is None else [as_tensor_variable(x)]
        if extra and (extra[0].type.ndim != sm.type.ndim or extra[0].dtype[0] != "f"):
            raise TypeError("crossentropy_softmax_1hot_with_bias_dx: the logits must be "
                            f"floats with sm's ndim ({sm.type.ndim})")
        _check_index_shape("crossentropy_softmax_1hot_with_bias_dx", sm, y_idx)
        if sm.dtype[0] != "f" or dy.dtype[0] != "f" or dy.ndim != y_idx.ndim:
            raise TypeError("crossentropy_softmax_1hot_with_bias_dx: expected float dy with "
                            f"the ndim of y_idx ({y_idx.ndim}) and a float sm; got dy "
                            f"{dy.dtype} ndim {dy.ndim}, sm {sm.dtype}")
        dtype = np.result_type(dy.dtype, sm.dtype).name
        return Apply(self, [dy, sm, y_idx] + extra, [TensorType(dtype, sm.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[1])

    def impl(self, xp, dy, sm, y_idx, x=None):
        if y_idx.shape != sm.shape[:-1]:
            raise ValueError(f"crossentropy_softmax_1hot_with_bias_dx: y_idx of shape "
                             f"{y_idx.shape} for sm of shape {sm.shape}")
        if y_idx.ndim == 1 and y_idx.size and dy.ndim == 1:
            out = self._rows(xp, dy, sm, y_idx, x)
            if out is not None:
                return out
        if dy.shape != y_idx.shape:
            dy = xp.broadcast_to(dy, y_idx.shape)
        flat = y_idx.reshape(-1)  # (a view: an index array of its own)
        rows = xp.arange(flat.shape[0])
        if x is not None and x.size:
            picked = x.reshape(flat.shape[0], x.shape[-1])[rows, flat].reshape(y_idx.shape)
            dy = _nan_at_minus_inf_targets(xp, picked, dy, y_idx.shape)
        out = sm * dy[..., None]
        if y_idx.ndim == 1:  # (the common case: no reshapes)
            out[rows, flat] -= dy
        elif out.size:
            out = xp.ascontiguousarray(out)  # (so that its reshape is a view)
            out.reshape(flat.shape[0], sm.shape[-1])[rows, flat] -= dy.reshape(-1)
        return out

    @staticmethod
    def _rows(xp, dy, sm, y_idx, x):
        """``impl`` for 1-d targets all within ``[0, n)`` (else ``None``):
        flat indices into a C-ordered result, a single ``dy`` as a 0-d
        factor. W4's gradient (128 x 10): 11.5 us before, the 2-d fancy
        index and ``broadcast_to`` taking most of it."""
        n = sm.shape[-1]
        kind = y_idx.dtype.kind
        # (one reduction: read as unsigned, a negative target is huge)
        top = y_idx.view(y_idx.dtype.str.replace("i", "u")).max() if kind == "i" else \
            y_idx.max() if kind == "u" else n
        if int(top) >= n:
            return None   # (negative or out-of-range targets: the general path)
        idx = xp.arange(0, y_idx.shape[0] * n, n)
        idx += y_idx
        if x is not None and x.size:
            dy = _nan_at_minus_inf_targets(xp, x.reshape(-1)[idx], dy, y_idx.shape)
        if dy.shape[0] == 1:
            dy = dy.reshape(())
            out = xp.multiply(sm, dy, order="C")
        else:
            out = xp.multiply(sm, dy[:, None], order="C")
        out.reshape(-1)[idx] -= dy
        return out

    def vjp(self, node, output_grads):
        dy, sm, y_idx = node.inputs[:3]
        g = output_grads[0]
        # out is linear in dy (d out / d dy = sm - onehot) and in sm (dy)
        gdy = _sum(g * sm, axis=-1) - TakeAlongLastAxis()(g, y_idx)
        # (the logits only choose NaN rows: no gradient, as switch's condition)
        return [sum_to(gdy, dy), g * expand_dims(dy, -1), None] + [None] * (len(node.inputs) - 3)


def crossentropy_softmax_1hot_with_bias_dx(dy, sm, y_idx, x=None):
    """Theano's gradient op of ``crossentropy_softmax_1hot``:
    ``dy[..., None] * (sm - onehot(y_idx))``, without a one-hot matrix.
    With the logits ``x`` (optional), rows whose target logit is -inf are NaN."""
    return CrossentropySoftmax1HotWithBiasDx()(dy, sm, y_idx, *([] if x is None else [x]))
