"""Linear algebra: ``dot``, ``matmul``, ``tensordot``, ``outer``, ``batched_dot``,
``diag``, ``diagonal``, ``trace``.

Two contraction primitives carry everything:

- ``TensorDot(axes_a, axes_b, batch)``: ``np.tensordot`` (``batch=0``; runs
  ``xp.dot`` when the axes are ``np.dot``'s), or with ``batch=1`` the same
  contraction for each index of a shared leading batch axis (Theano's
  ``batched_dot``). ``dot``, ``tensordot``, ``outer`` and ``batched_dot`` are
  this op; its vjp is this op again plus a transpose.
- ``MatMul``: ``np.matmul`` (batch axes broadcast, 1-d operands promoted).

Gradients follow the holomorphic convention of ``elemwise`` (no conjugation
for complex inputs). Contracted lengths that are known when the graph is built
and disagree raise ``ValueError`` naming both shapes.
"""
import numpy as np

from tracegrad.ops import batching
from tracegrad.ops import elemwise as ew
from tracegrad.ops.elemwise import (broadcast_static, format_shape,
                                    is_differentiable, sum_to)
from tracegrad.ops.reduce import sum as _sum
from tracegrad.ops.shape import concatenate, dimshuffle, flatten
from tracegrad.ops.static import normalize_axis
from tracegrad.tensor.dispatch import implements, register_ufunc
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, resolve_weak
from tracegrad.trace import Apply, Op

__all__ = ["dot", "matmul", "tensordot", "outer", "batched_dot", "batched_tensordot",
           "diag", "diagonal", "trace", "TensorDot", "MatMul", "Diag", "Diagonal",
           "DiagonalGrad"]


def _match_dtype(g, x):
    return ew.match_gradient_dtype(g, x)


def _transpose(x, perm):
    perm = list(perm)
    return x if perm == list(range(x.ndim)) else dimshuffle(x, perm)


def _check_axes(axes, ndim, which, opname):
    for ax in axes:
        if not 0 <= ax < ndim:
            raise np.exceptions.AxisError(ax, ndim, f"{opname}: {which}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"{opname}: repeated axis in {which} {axes}")


# ------------------------------------------------------------------ TensorDot
class TensorDot(Op):
    """Contract axis ``axes_a[i]`` of ``a`` with axis ``axes_b[i]`` of ``b``.

    The output axes are (with ``batch=1``, the shared axis 0 first) the free
    axes of ``a`` in order, then the free axes of ``b`` in order.
    """

    __props__ = ("axes_a", "axes_b", "batch")

    def __init__(self, axes_a, axes_b, batch=0):
        self.axes_a = tuple(axes_a)
        self.axes_b = tuple(axes_b)
        self.batch = int(batch)

    def _is_dot(self, na, nb):
        return (not self.batch and na >= 1 and nb >= 1 and self.axes_a == (na - 1,)
                and self.axes_b == (max(nb - 2, 0),))

    def _label(self, na, nb):
        if self.batch:
            return "batched_dot"
        return "dot" if self._is_dot(na, nb) else "tensordot"

    @property
    def name(self):
        return "batched_tensordot" if self.batch else "tensordot"

    def _free(self, ndim, axes):
        return [i for i in range(self.batch, ndim) if i not in axes]

    def make_node(self, a, b):
        a, b = resolve_weak([as_tensor_variable(a), as_tensor_variable(b)])
        label = self._label(a.ndim, b.ndim)
        if self.batch and (a.ndim < 1 or b.ndim < 1):
            raise TypeError(f"{label}: both inputs need a batch axis, got ndims "
                            f"{a.ndim} and {b.ndim}")
        if len(self.axes_a) != len(self.axes_b):
            raise ValueError(f"{label}: {len(self.axes_a)} axes of a paired with "
                             f"{len(self.axes_b)} axes of b")
        _check_axes(self.axes_a, a.ndim, "axes of a", label)
        _check_axes(self.axes_b, b.ndim, "axes of b", label)
        if self.batch and (0 in self.axes_a or 0 in self.axes_b):
            raise ValueError(f"{label}: the batch axis 0 cannot be contracted")
        sa, sb = a.type.shape, b.type.shape
        pairs = list(zip(self.axes_a, self.axes_b))
        if self.batch:
            pairs.insert(0, (0, 0))
        for i, j in pairs:
            if sa[i] is not None and sb[j] is not None and sa[i] != sb[j]:
                raise ValueError(
                    f"{label}: shapes {format_shape(sa)} and {format_shape(sb)} not "
                    f"aligned: {sa[i]} (dim {i}) != {sb[j]} (dim {j})")
        shape = [sa[0] if sa[0] is not None else sb[0]] if self.batch else []
        shape += [sa[i] for i in self._free(a.ndim, self.axes_a)]
        shape += [sb[j] for j in self._free(b.ndim, self.axes_b)]
        dtype = np.result_type(a.dtype, b.dtype).name
        return Apply(self, [a, b], [TensorType(dtype, tuple(shape))()])

    def impl(self, xp, a, b):
        if self._is_dot(a.ndim, b.ndim):
            return xp.dot(a, b)
        if not self.batch:
            return xp.tensordot(a, b, axes=(list(self.axes_a), list(self.axes_b)))
        return self._batched(xp, a, b)

    def impl_into(self, xp, out, a, b):
        """``dot`` written into ``out`` (NumPy's ``out=``: the same BLAS
        call); ``None`` for the other contractions or where ``out`` does not
        fit (``Op.impl_into``)."""
        if xp is not np or not self._is_dot(a.ndim, b.ndim) or not \
                a.dtype == b.dtype == out.dtype:
            return None
        shape = a.shape[:-1] + (b.shape[:-2] + b.shape[-1:] if b.ndim > 1 else ())
        if out.shape != shape or not out.flags.c_contiguous:
            return None
        np.dot(a, b, out=out)   # (returns a scalar for a 0-d out)
        return out

    def _batched(self, xp, a, b):
        # (B, free_a, contracted) @ (B, contracted, free_b), then unflatten.
        contracted = [a.shape[i] for i in self.axes_a]
        if a.shape[0] != b.shape[0] or contracted != [b.shape[j] for j in self.axes_b]:
            raise ValueError(
                f"batched_dot: shapes {a.shape} and {b.shape} not aligned for batch "
                f"axis 0 and axes {self.axes_a} / {self.axes_b}")
        fa, fb = self._free(a.ndim, self.axes_a), self._free(b.ndim, self.axes_b)
        shape_fa = tuple(a.shape[i] for i in fa)
        shape_fb = tuple(b.shape[j] for j in fb)
        n = a.shape[0]
        k = int(np.prod(contracted))
        at = xp.transpose(a, [0] + fa + list(self.axes_a)).reshape(
            n, int(np.prod(shape_fa)), k)
        bt = xp.transpose(b, [0] + list(self.axes_b) + fb).reshape(
            n, k, int(np.prod(shape_fb)))
        return xp.matmul(at, bt).reshape((n,) + shape_fa + shape_fb)

    def vjp(self, node, output_grads):
        a, b = node.inputs
        g = output_grads[0]
        nb_ = self.batch
        fa, fb = self._free(a.ndim, self.axes_a), self._free(b.ndim, self.axes_b)
        ga = gb = None
        if is_differentiable(a):
            # g's free-b axes against b's free axes leaves
            # [batch] + free_a + b's contracted axes in ascending order.
            g_fb = tuple(range(nb_ + len(fa), nb_ + len(fa) + len(fb)))
            raw = TensorDot(g_fb, fb, nb_)(g, b)
            order_b = sorted(self.axes_b)
            src = {0: 0} if nb_ else {}
            src.update({i: nb_ + r for r, i in enumerate(fa)})
            src.update({i: nb_ + len(fa) + order_b.index(j)
                        for i, j in zip(self.axes_a, self.axes_b)})
            ga = _match_dtype(_transpose(raw, [src[i] for i in range(a.ndim)]), a)
        if is_differentiable(b):
            # a's free axes against g's free-a axes leaves
            # [batch] + a's contracted axes in ascending order + free_b.
            g_fa = tuple(range(nb_, nb_ + len(fa)))
            raw = TensorDot(fa, g_fa, nb_)(a, g)
            order_a = sorted(self.axes_a)
            src = {0: 0} if nb_ else {}
            src.update({j: nb_ + order_a.index(i) for i, j in zip(self.axes_a, self.axes_b)})
            src.update({j: nb_ + len(self.axes_a) + r for r, j in enumerate(fb)})
            gb = _match_dtype(_transpose(raw, [src[j] for j in range(b.ndim)]), b)
        return [ga, gb]

    def vmap_rule(self, node, inputs, batch_axes):
        """One batched operand: its batch axis is a free axis (first among
        its free axes); both batched: the batch axis of ``batched_tensordot``
        (with a batch axis already, the examples loop)."""
        (a, b), (ba, bb) = inputs, batch_axes
        k = self.batch
        if ba is not None and bb is not None:
            a, b = batching.to_front(a, ba), batching.to_front(b, bb)
            if k:  # both batch axes folded into the op's one
                merged = TensorDot(self.axes_a, self.axes_b, 1)(_fold2(a), _fold2(b))
                lead = concatenate([a.shape[:2], merged.shape[1:]])
                return [merged.reshape(lead, ndim=merged.ndim + 1)], [0]
            op = TensorDot(batching.shifted_axes(self.axes_a),
                           batching.shifted_axes(self.axes_b), 1)
            return [op(a, b)], [0]

        def moved(x, axis):  # the batch axis just after the op's own batch axis
            rest = [i for i in range(x.ndim) if i != axis]
            return x.dimshuffle(*rest[:k], axis, *rest[k:])

        def shifted(axes):
            return tuple(i + 1 if i >= k else i for i in axes)
        if ba is not None:
            op = TensorDot(shifted(self.axes_a), self.axes_b, k)
            return [op(moved(a, ba), b)], [k]
        op = TensorDot(self.axes_a, shifted(self.axes_b), k)
        n_free_a = len(self._free(node.inputs[0].ndim, self.axes_a))
        return [op(a, moved(b, bb))], [k + n_free_a]


def _fold2(x):
    """``x`` with its first two axes made one."""
    return x.reshape(concatenate([[-1], x.shape[2:]]), ndim=x.ndim - 1)


def dot(a, b):
    """NumPy/Theano ``dot``: a product with a 0-d operand, the inner product of
    vectors, the matrix product, and for n-d the sum over the last axis of
    ``a`` and the second-to-last of ``b``."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return ew.mul(a, b)
    return TensorDot((a.ndim - 1,), (max(b.ndim - 2, 0),))(a, b)


def _normalize_tensordot_axes(axes, na, nb):
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > min(na, nb):
            raise ValueError(f"tensordot: axes={n} needs both inputs to have at least "
                             f"{n} axes (they have {na} and {nb})")
        return tuple(range(na - n, na)), tuple(range(n))
    try:
        axes_a, axes_b = axes
    except (TypeError, ValueError):
        raise TypeError("tensordot: axes must be an int or a pair of sequences") from None
    axes_a = [axes_a] if isinstance(axes_a, (int, np.integer)) else list(axes_a)
    axes_b = [axes_b] if isinstance(axes_b, (int, np.integer)) else list(axes_b)

    def fix(ax, n):
        for x in ax:
            if not -n <= x < n:
                raise np.exceptions.AxisError(x, n, "tensordot")
        return tuple(int(x) % n for x in ax)
    return fix(axes_a, na), fix(axes_b, nb)


def tensordot(a, b, axes=2):
    """NumPy ``tensordot``: ``axes`` is an int N (last N axes of ``a`` with the
    first N of ``b``) or a pair of axis sequences."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    axes_a, axes_b = _normalize_tensordot_axes(axes, a.ndim, b.ndim)
    return TensorDot(axes_a, axes_b)(a, b)


def outer(a, b):
    """NumPy ``outer``: the outer product of the flattened inputs."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    a = a if a.ndim == 1 else flatten(a)
    b = b if b.ndim == 1 else flatten(b)
    return TensorDot((), ())(a, b)


def batched_dot(a, b):
    """Theano ``batched_dot``: ``out[i] = dot(a[i], b[i])`` over the first axis
    (3-d x 3-d is a batch of matrix products; 2-d x 2-d a batch of inner
    products; a 1-d operand scales the other per batch entry)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        raise TypeError("batched_dot: both inputs need a batch axis (ndim >= 1)")
    if a.ndim == 1:
        return a.dimshuffle(0, *["x"] * (b.ndim - 1)) * b
    if b.ndim == 1:
        return a * b.dimshuffle(0, *["x"] * (a.ndim - 1))
    return TensorDot((a.ndim - 1,), (max(1, b.ndim - 2),), batch=1)(a, b)


def batched_tensordot(x, y, axes=2):
    """Theano ``batched_tensordot``: ``tensordot`` per index of axis 0.

    ``axes`` is an int N (last N non-batch axes of ``x`` with the first N
    non-batch axes of ``y``) or a pair of axis sequences (never 0)."""
    x, y = as_tensor_variable(x), as_tensor_variable(y)
    if isinstance(axes, (int, np.integer)):
        ax, ay = _normalize_tensordot_axes(int(axes), x.ndim - 1, y.ndim - 1)
        ax = tuple(i + 1 for i in ax)
        ay = tuple(i + 1 for i in ay)
    else:
        ax, ay = _normalize_tensordot_axes(axes, x.ndim, y.ndim)
    return TensorDot(ax, ay, batch=1)(x, y)


# ------------------------------------------------------------------ MatMul
class MatMul(Op):
    """NumPy ``matmul``: matrix products over the last two axes, leading axes
    broadcast; a 1-d operand is a row (left) or column (right) vector."""

    def make_node(self, a, b):
        a, b = resolve_weak([as_tensor_variable(a), as_tensor_variable(b)])
        sa, sb = a.type.shape, b.type.shape
        for i, s in enumerate((sa, sb)):
            if len(s) == 0:
                raise ValueError(f"matmul: input operand {i} does not have enough "
                                 f"dimensions (shapes {format_shape(sa)} and "
                                 f"{format_shape(sb)}); use * for scalars")
        k_a = sa[-1]
        k_b = sb[-2] if len(sb) >= 2 else sb[0]
        if k_a is not None and k_b is not None and k_a != k_b:
            raise ValueError(
                f"matmul: shapes {format_shape(sa)} and {format_shape(sb)} not "
                f"aligned: {k_a} (dim {len(sa) - 1}) != {k_b} (dim {max(len(sb) - 2, 0)})")
        try:
            batch = broadcast_static([sa[:-2], sb[:-2]], "matmul")
        except ValueError:
            raise ValueError(f"matmul: shapes {format_shape(sa)} and {format_shape(sb)}: "
                             "batch axes cannot be broadcast together") from None
        shape = batch + (sa[-2:-1] if len(sa) >= 2 else ()) + \
            (sb[-1:] if len(sb) >= 2 else ())
        dtype = np.result_type(a.dtype, b.dtype).name
        return Apply(self, [a, b], [TensorType(dtype, shape)()])

    def impl(self, xp, a, b):
        return xp.matmul(a, b)

    def vjp(self, node, output_grads):
        a, b = node.inputs
        g = output_grads[0]
        if a.ndim == 1 and b.ndim == 1:
            pairs = [(g * b, a), (g * a, b)]
        else:
            # Work with the 2-d promoted forms; sum_to undoes batch broadcasting
            # and (for a 1-d operand) the promoted axis.
            if a.ndim == 1:
                g_row = g.dimshuffle(*range(g.ndim - 1), "x", g.ndim - 1)
                pairs = [(matmul(g_row, _swap_last(b)), a),
                         (matmul(a.dimshuffle(0, "x"), g_row), b)]
            elif b.ndim == 1:
                g_col = g.dimshuffle(*range(g.ndim), "x")
                g_row = g.dimshuffle(*range(g.ndim - 1), "x", g.ndim - 1)
                pairs = [(matmul(g_col, b.dimshuffle("x", 0)), a),
                         (matmul(g_row, a), b)]
            else:
                pairs = [(matmul(g, _swap_last(b)), a), (matmul(_swap_last(a), g), b)]
        return [_match_dtype(sum_to(gx, x), x) if is_differentiable(x) else None
                for gx, x in pairs]


    def vmap_rule(self, node, inputs, batch_axes):
        """One batched operand times a matrix: one 2-d product; a length-1
        contraction: a broadcast product; otherwise the batch axes become a
        leading (stacking) axis of NumPy's matmul."""
        a0, b0 = node.inputs
        for rule in (_flat_matmul, _outer_matmul, _stacked_matmul):
            ruled = rule(a0, b0, inputs, batch_axes)
            if ruled is not None:
                return ruled
        return None


def _stacked_matmul(a0, b0, inputs, batch_axes):
    """The batch axes first, as a stacking axis: a 1-d example is made a row
    (or column) and squeezed back."""
    args = []
    for x, axis, orig, vec in zip(inputs, batch_axes, (a0, b0), ("x", 1)):
        if axis is not None:
            x = batching.to_front(x, axis)
            if orig.ndim == 1:
                x = x.dimshuffle(0, "x", 1) if vec == "x" else x.dimshuffle(0, 1, "x")
        args.append(x)
    ndim = max(a0.ndim, b0.ndim, 2)
    args = [batching.pad_front(x, ndim) if axis is not None else x
            for x, axis in zip(args, batch_axes)]
    if a0.ndim == 1 and batch_axes[0] is None:
        args[0] = args[0].dimshuffle("x", 0)
    if b0.ndim == 1 and batch_axes[1] is None:
        args[1] = args[1].dimshuffle(0, "x")
    out = matmul(*args)
    drop = ([out.ndim - 2] if a0.ndim == 1 else []) + ([out.ndim - 1] if b0.ndim == 1 else [])
    if drop:
        out = out.dimshuffle(*[i for i in range(out.ndim) if i not in drop])
    return [out], [0]


def _outer_matmul(a0, b0, inputs, batch_axes):
    """A contraction of length 1 (an outer product, as in the vjp of a vector
    times a matrix) as a broadcast product: NumPy's stacked matmul runs it
    ~100x slower."""
    if a0.ndim < 2 or b0.ndim < 2 or 1 not in (a0.type.shape[-1], b0.type.shape[-2]):
        return None
    ndim = max(a0.ndim, b0.ndim)
    x, y = [batching.pad_front(batching.to_front(v, ax), ndim) if ax is not None
            else v.dimshuffle("x", *range(v.ndim)) for v, ax in zip(inputs, batch_axes)]
    return [ew.mul(x, y)], [0]


def _flat_matmul(a0, b0, inputs, batch_axes):
    """One batched operand times an unbatched matrix as one 2-d product
    (NumPy's stacked matmul runs a small product per example): the batch
    folded into the rows of ``a`` (or the columns of ``b``)."""
    (a, b), (ba, bb) = inputs, batch_axes
    if ba is not None and bb is None and b0.ndim == 2:
        a = batching.to_front(a, ba)
        if a0.ndim == 1:
            return [matmul(a, b)], [0]
        rows = a.reshape((-1, a.shape[-1]))
        out_shape = concatenate([a.shape[:-1], b.shape[1:]])
        return [matmul(rows, b).reshape(out_shape, ndim=a.ndim)], [0]
    if bb is not None and ba is None and a0.ndim == 2 and b0.ndim <= 2:
        b = batching.to_front(b, bb)
        if b0.ndim == 1:
            return [matmul(b, a.T)], [0]
        cols = b.dimshuffle(1, 0, 2).reshape((b.shape[1], -1))
        out_shape = concatenate([a.shape[:1], b.shape[:1], b.shape[2:]])
        return [matmul(a, cols).reshape(out_shape, ndim=3)], [1]
    return None


def _swap_last(x):
    return x.dimshuffle(*range(x.ndim - 2), x.ndim - 1, x.ndim - 2)


_matmul = MatMul()


def matmul(a, b):
    """NumPy ``matmul`` (also ``a @ b`` and ``np.matmul``)."""
    return _matmul(a, b)


# ------------------------------------------------------------------ diagonals
def _diag_length(n1, n2, offset):
    if n1 is None or n2 is None:
        return None
    return max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))


class Diagonal(Op):
    """NumPy ``diagonal``: the diagonal of the ``axis1``/``axis2`` planes,
    appended as the last axis (a new array, not a view)."""

    __props__ = ("offset", "axis1", "axis2")

    def __init__(self, offset=0, axis1=0, axis2=1):
        self.offset = int(offset)
        self.axis1 = axis1
        self.axis2 = axis2

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.ndim < 2:
            raise ValueError(f"diagonal: needs at least 2 dimensions, got shape "
                             f"{format_shape(x.type.shape)}")
        s = x.type.shape
        rest = tuple(d for i, d in enumerate(s) if i not in (self.axis1, self.axis2))
        length = _diag_length(s[self.axis1], s[self.axis2], self.offset)
        return Apply(self, [x], [TensorType(x.dtype, rest + (length,))()])

    def impl(self, xp, x):
        return xp.diagonal(x, self.offset, self.axis1, self.axis2).copy()

    def vmap_rule(self, node, inputs, batch_axes):
        op = Diagonal(self.offset, self.axis1 + 1, self.axis2 + 1)
        return batching.shifted_rule(inputs, batch_axes, op)

    def vjp(self, node, output_grads):
        x, = node.inputs
        if not is_differentiable(x):
            return [None]
        return [_match_dtype(DiagonalGrad(self.offset, self.axis1, self.axis2)(
            output_grads[0], x), x)]


class DiagonalGrad(Op):
    """Zeros shaped like ``like`` with ``g`` written on its diagonal (the
    adjoint of ``Diagonal``)."""

    __props__ = ("offset", "axis1", "axis2")

    def __init__(self, offset=0, axis1=0, axis2=1):
        self.offset = int(offset)
        self.axis1 = axis1
        self.axis2 = axis2

    def make_node(self, g, like):
        g, like = as_tensor_variable(g), as_tensor_variable(like)
        return Apply(self, [g, like], [TensorType(g.dtype, like.type.shape)()])

    def impl(self, xp, g, like):
        out = xp.zeros(like.shape, dtype=g.dtype)
        planes = xp.moveaxis(out, (self.axis1, self.axis2), (-2, -1))
        n = g.shape[-1]
        rows = xp.arange(n) + max(-self.offset, 0)
        cols = xp.arange(n) + max(self.offset, 0)
        planes[..., rows, cols] = g
        return out

    def vmap_rule(self, node, inputs, batch_axes):
        op = DiagonalGrad(self.offset, self.axis1 + 1, self.axis2 + 1)
        return batching.shifted_rule(inputs, batch_axes, op)

    def vjp(self, node, output_grads):
        return [Diagonal(self.offset, self.axis1, self.axis2)(output_grads[0]), None]


class Diag(Op):
    """NumPy ``diag`` of a vector: a square matrix with ``v`` on diagonal ``k``."""

    __props__ = ("k",)

    def __init__(self, k=0):
        self.k = int(k)

    def make_node(self, v):
        v = as_tensor_variable(v)
        n = v.type.shape[0]
        n = None if n is None else n + abs(self.k)
        return Apply(self, [v], [TensorType(v.dtype, (n, n))()])

    def impl(self, xp, v):
        return xp.diag(v, self.k)

    def vjp(self, node, output_grads):
        v, = node.inputs
        if not is_differentiable(v):
            return [None]
        return [Diagonal(self.k, 0, 1)(output_grads[0])]


def diagonal(x, offset=0, axis1=0, axis2=1):
    """NumPy ``diagonal`` (a copy, not a read-only view)."""
    x = as_tensor_variable(x)
    a1 = normalize_axis(axis1, x.ndim, "diagonal")[0]
    a2 = normalize_axis(axis2, x.ndim, "diagonal")[0]
    if a1 == a2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    return Diagonal(offset, a1, a2)(x)


def diag(v, k=0):
    """NumPy ``diag``: a vector becomes a matrix with ``v`` on diagonal ``k``;
    a matrix gives its ``k``-th diagonal."""
    v = as_tensor_variable(v)
    if v.ndim == 1:
        return Diag(k)(v)
    if v.ndim == 2:
        return Diagonal(k, 0, 1)(v)
    raise ValueError(f"diag: input must be 1- or 2-d, got ndim {v.ndim}")


def trace(x, offset=0, axis1=0, axis2=1, dtype=None):
    """NumPy ``trace``: the sum along a diagonal (ints sum in int64)."""
    return _sum(diagonal(x, offset, axis1, axis2), axis=-1, dtype=dtype)


# ------------------------------------------------------------------ NumPy dispatch
def _no_out(name, out):
    if out is not None:
        raise TypeError(f"numpy.{name}(..., out=) cannot write into a symbolic variable")


def _np_dot(a, b, out=None):
    _no_out("dot", out)
    return dot(a, b)


def _np_outer(a, b, out=None):
    _no_out("outer", out)
    return outer(a, b)


def _np_trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("trace", out)
    return trace(a, offset, axis1, axis2, dtype)


implements(np.dot)(_np_dot)
implements(np.tensordot)(tensordot)
implements(np.outer)(_np_outer)
implements(np.diag)(diag)
implements(np.diagonal)(diagonal)
implements(np.trace)(_np_trace)
implements(np.linalg.matmul)(matmul)
register_ufunc(np.matmul, matmul)
