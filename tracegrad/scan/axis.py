"""Slices along the first axis with symbolic bounds: the plumbing of scan.

``axis_slice(x, start, stop, reverse, squeeze)`` is ``x[start:stop]``
(reversed with ``reverse``; ``x[start]`` with ``squeeze``) where ``start``
and ``stop`` may be symbolic integers. Unlike Python slicing the bounds are
checked strictly (a sequence too short for the requested steps is an error,
never a silent truncation). Its gradient, ``AxisSliceGrad``, writes ``g``
into a zero array shaped like ``x``; each op is the other's vjp, so gradients
of gradients of scan stay inside these two ops.
"""

from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op


def _index_input(value):
    var = as_tensor_variable(value)
    if var.ndim != 0 or var.dtype[0] not in "iu":
        raise TypeError(f"scan: a slice bound must be an integer scalar, got {var.type}")
    return var


def _bounds(n, props, values, opname):
    """Normalized (start, stop) for an axis of length ``n``; strict checks."""
    has_start, has_stop, _, squeeze = props
    values = list(values)
    start = int(values.pop(0)) if has_start else 0
    stop = int(values.pop(0)) if has_stop else n
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    if squeeze:
        if not 0 <= start < n:
            raise IndexError(f"{opname}: index {start} out of range for an axis of length {n}")
        return start, start + 1
    if not 0 <= start <= stop <= n:
        raise IndexError(f"{opname}: slice [{start}:{stop}] out of range for an axis "
                         f"of length {n}")
    return start, stop


class AxisSlice(Op):
    """``x[start:stop]`` along axis 0 (a view), optionally reversed or squeezed."""

    __props__ = ("has_start", "has_stop", "reverse", "squeeze")
    view_map = {0: [0]}

    def __init__(self, has_start, has_stop, reverse=False, squeeze=False):
        self.has_start = has_start
        self.has_stop = has_stop
        self.reverse = reverse
        self.squeeze = squeeze

    def make_node(self, x, *bounds):
        x = as_tensor_variable(x)
        if x.ndim == 0:
            raise TypeError("scan: cannot slice a 0-d array along its first axis")
        bounds = [_index_input(b) for b in bounds]
        shape = x.type.shape[1:] if self.squeeze else (None,) + x.type.shape[1:]
        return Apply(self, [x, *bounds], [TensorType(x.dtype, shape)()])

    def impl(self, xp, x, *bounds):
        start, stop = _bounds(x.shape[0], self._props(), bounds, self.name)
        if self.squeeze:
            return x[start]
        if self.reverse:
            return x[start:stop][::-1]
        return x[start:stop]

    def vjp(self, node, output_grads):
        x, *bounds = node.inputs
        grad_op = AxisSliceGrad(*self._props())
        return [grad_op(x, output_grads[0], *bounds)] + [None] * len(bounds)


class AxisSliceGrad(Op):
    """Zeros shaped like ``like`` with ``g`` written at ``[start:stop]``."""

    __props__ = ("has_start", "has_stop", "reverse", "squeeze")

    def __init__(self, has_start, has_stop, reverse=False, squeeze=False):
        self.has_start = has_start
        self.has_stop = has_stop
        self.reverse = reverse
        self.squeeze = squeeze

    def make_node(self, like, g, *bounds):
        like = as_tensor_variable(like)
        g = as_tensor_variable(g)
        expected = like.ndim - 1 if self.squeeze else like.ndim
        if g.ndim != expected:
            raise TypeError(f"{self.name}: gradient of ndim {g.ndim}, expected {expected}")
        bounds = [_index_input(b) for b in bounds]
        return Apply(self, [like, g, *bounds], [TensorType(g.dtype, like.type.shape)()])

    def impl(self, xp, like, g, *bounds):
        start, stop = _bounds(like.shape[0], self._props(), bounds, self.name)
        out = xp.zeros(like.shape, dtype=g.dtype)
        if self.squeeze:
            out[start] = g
        elif self.reverse:
            out[start:stop] = g[::-1]
        else:
            out[start:stop] = g
        return out

    def vjp(self, node, output_grads):
        _, _, *bounds = node.inputs
        slice_op = AxisSlice(*self._props())
        return [None, slice_op(output_grads[0], *bounds)] + [None] * len(bounds)


def axis_slice(x, start=None, stop=None, reverse=False, squeeze=False):
    """``x[start:stop]`` (``[::-1]`` when ``reverse``; ``x[start]`` when
    ``squeeze``) along the first axis, with symbolic bounds checked strictly."""
    bounds = [b for b in (start, stop) if b is not None]
    op = AxisSlice(start is not None, stop is not None, reverse, squeeze)
    return op(x, *bounds)


def axis_slice_grad(like, g, start=None, stop=None, reverse=False, squeeze=False):
    """The gradient of ``axis_slice``: ``g`` placed into zeros shaped like ``like``."""
    bounds = [b for b in (start, stop) if b is not None]
    op = AxisSliceGrad(start is not None, stop is not None, reverse, squeeze)
    return op(like, g, *bounds)


