"""The gradient of a softmax cross-entropy against integer targets as one
node (Theano's ``local_softmax_grad_to_crossentropy_with_softmax_grad``).

``tg.grad`` of ``categorical_crossentropy(softmax(x), y)`` (or of
``-log_softmax(x)[..., y]``) in ``x``, once ``stabilize_nnet``'s
``scatter_cancel`` has run, is

    k - sm * sum(k, axis=-1, keepdims=True),   k = put_along(v, y) [* guard]

with ``sm`` the softmax of ``x`` (``exp(log_softmax(x))`` in the log form)
and ``guard`` NaN where ``sm`` is NaN; Theano's indexing form
``log_softmax(x)[arange(n), y]`` scatters with ``inc_subtensor`` into zeros
instead (``_row_scatter``; its ``y`` broadcast over the rows, as NumPy's
indexing does). Each row of ``k`` holds ``v`` at its
target and zeros, so the row sum is ``v`` and the whole is
``-v * (sm - onehot(y))``: ``crossentropy_softmax_1hot_with_bias_dx(-v, sm,
y)``, one pass instead of a scatter, a guard, a reduction and a fused
product (``ops/nnet_xent.py``).

IEEE: a softmax op's row holds NaN in all its entries or in none (a NaN,
+inf or all -inf row of ``x`` makes the max, and so every entry, NaN), so
the dropped ``isnan(sm)`` guard and the NaN of the row sum give NaN rows
exactly where the new node does. ``v`` keeps its own guards (NaN at a row
whose target logit is -inf): a NaN ``v`` makes the node's row NaN too.
"""
import functools

import numpy as np

from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import ieee
from tracegrad.rewrite.engine import Rule, register
from tracegrad.rewrite.pattern import const_value


@functools.cache
def _ops():
    from tracegrad.ops import api, nnet, nnet_xent, reduce
    return api, nnet, nnet_xent, reduce


def _last_axis(op, ndim):
    return tuple(op.axes) == (ndim - 1,)


def _softmax_of(s):
    """The softmax variable ``s`` stands for (``s`` itself or a new
    ``Softmax`` in place of ``exp(log_softmax(x))``), else None."""
    _, nnet, _, _ = _ops()
    node = s.owner
    if node is None:
        return None
    if isinstance(node.op, (nnet.Softmax, nnet.SoftmaxAndLog)) \
            and s is node.outputs[0] and _last_axis(node.op, s.type.ndim):
        return s
    if al.key_of(s) != "exp" or s.owner.inputs[0].type.dtype != s.type.dtype:
        return None
    ls = s.owner.inputs[0]
    inner = ls.owner
    if inner is None or not (isinstance(inner.op, nnet.LogSoftmax) or (
            isinstance(inner.op, nnet.SoftmaxAndLog) and ls is inner.outputs[1])):
        return None
    if not _last_axis(inner.op, s.type.ndim):
        return None
    return nnet.Softmax(inner.op.axes)(inner.inputs[0])


def _scatter_of(k, s, memo):
    """``(v, y, like, is_sel)`` when ``k`` is a scatter of ``v`` into zeros
    shaped like ``like`` at ``y`` along the last axis (``put_along(v, y,
    like)``, or ``inc_subtensor(zeros[arange(n), y], v)`` of a matrix), alone
    or times the guard ``isnan(s)``; ``is_sel(t)``: ``t`` selects those
    entries of its input. Else None."""
    _, nnet, _, _ = _ops()
    node = k.owner
    if node is not None and al.key_of(k) == "mul" and len(node.inputs) == 2:
        p, guard = node.inputs if ieee.is_guard(node.inputs[1]) else node.inputs[::-1]
        if not ieee.is_guard(guard) or not _is_isnan_of(guard.owner.inputs[0], s):
            return None
        node = p.owner
    if node is None:
        return None
    if isinstance(node.op, nnet.PutAlongLastAxis):
        v, y, like = node.inputs

        def is_sel(t):
            return t.owner is not None and isinstance(t.owner.op, nnet.TakeAlongLastAxis) \
                and t.owner.inputs[1] is y
        return v, y, like, is_sel
    return _row_scatter(node, s, memo)


def _row_scatter(node, s, memo):
    """``_scatter_of`` for ``inc_subtensor(zeros[arange(n), y], v)`` with
    ``n`` the rows of a variable shaped as ``s``."""
    from tracegrad.ops import alloc, index
    if not isinstance(node.op, index.IncSubtensor) or node.op.idx != ("[]", "[]") \
            or len(node.inputs) != 4 or not alloc.is_zeros_alloc(node.inputs[0]):
        return None
    like, v, rows, y = node.inputs
    if like.type.ndim != 2 or y.type.ndim != 1 or y.type.dtype[0] not in "iu" \
            or not _is_row_range(rows, s, memo):
        return None

    def is_sel(t):
        o = t.owner
        return o is not None and isinstance(o.op, index.Subtensor) and o.op.idx == node.op.idx \
            and len(o.inputs) == 3 and o.inputs[1] is rows and o.inputs[2] is y
    # (NumPy broadcasts a length-1 y against the rows there; the op does not)
    return v, _ops()[0].broadcast_to(y, rows.shape), like, is_sel


def _is_row_range(rows, s, memo):
    """``rows`` is ``arange(0, w.shape[0], 1)`` of a ``w`` shaped as ``s``
    (each row once: the scatter is the one-hot one)."""
    from tracegrad.ops import alloc, base, index
    o = rows.owner
    if o is None or not isinstance(o.op, alloc.ARange) or len(o.inputs) != 3 \
            or const_value(o.inputs[0]) != 0 or const_value(o.inputs[2]) != 1:
        return False
    n = o.inputs[1].owner
    if n is None or not isinstance(n.op, index.Subtensor) or n.op.idx != (0,):
        return False
    shp = n.inputs[0].owner
    if shp is None or not isinstance(shp.op, base.Shape):
        return False
    w = shp.inputs[0]
    return al.same_shape(w, s, memo)


def _is_isnan_of(cond, s):
    return al.key_of(cond) == "isnan" and cond.owner.inputs[0] is s


def _row_sum_of(r, k):
    _, _, _, reduce = _ops()
    node = r.owner
    return node is not None and isinstance(node.op, reduce.Reduce) \
        and node.op.kind == "sum" and node.op.keepdims and node.inputs[0] is k \
        and _last_axis(node.op, k.type.ndim)


def softmax_xent_grad(node, ctx):
    """``k - sm * sum(k, -1, keepdims)`` with ``k`` a scatter of ``v`` by
    ``y``: ``crossentropy_softmax_1hot_with_bias_dx(-v, sm, y)``."""
    api, _, nnet_xent, _ = _ops()
    k, prod = node.inputs
    if al.key_of(prod) != "mul" or len(prod.owner.inputs) != 2:
        return None
    a, b = prod.owner.inputs
    r, s = (a, b) if _row_sum_of(a, k) else (b, a)
    if not _row_sum_of(r, k):
        return None
    sm = _softmax_of(s)
    memo = al.shape_memo(ctx)
    found = None if sm is None else _scatter_of(k, s, memo)
    if found is None:
        return None
    v, y, like, is_sel = found
    dtype = node.outputs[0].type.dtype
    if not (v.type.dtype == sm.type.dtype == k.type.dtype == dtype) \
            or not al.same_shape(like, s, memo):
        return None
    dy, logits = _target_guard(v, is_sel)
    return nnet_xent.CrossentropySoftmax1HotWithBiasDx()(api.neg(dy), sm, y, *logits)


def _target_guard(v, is_sel):
    """``(rest, [x])`` when ``v`` is ``rest * switch(eq(take_along(x, y),
    -inf), NaN, 1)`` (``ieee.scatter_guards``' target guard; the op applies
    it from ``x``), else ``(v, [])``."""
    api, nnet, _, _ = _ops()
    if al.key_of(v) == "neg":
        rest, logits = _target_guard(v.owner.inputs[0], is_sel)
        return (api.neg(rest), logits) if logits else (v, [])
    factors = list(v.owner.inputs) if al.key_of(v) == "mul" else [v]
    for f in factors:
        x = _guarded_logits(f, is_sel) if ieee.is_guard(f) else None
        if x is None or x.type.dtype != v.type.dtype:
            continue
        # (the op broadcasts dy against y: the rest may keep length-1 axes)
        rest = [g for g in factors if g is not f] or [al.make_constant(1, v.type.dtype, v.type.ndim)]
        out = rest[0] if len(rest) == 1 else api.mul(*rest)
        if out.type.ndim != v.type.ndim or out.type.dtype != v.type.dtype:
            return v, []
        return out, [x]
    return v, []


def _guarded_logits(guard, is_sel):
    cond = guard.owner.inputs[0]
    if al.key_of(cond) != "eq":
        return None
    t, inf = cond.owner.inputs
    if const_value(inf) != -np.inf or not is_sel(t):
        return None
    return t.owner.inputs[0]


register("specialize", Rule("softmax_xent_grad", ["sub"], softmax_xent_grad))
