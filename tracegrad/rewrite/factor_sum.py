"""Mode 'fast_math': factors constant along a sum's axes move out of it.

``sum_A(a * b)`` where ``a`` has length 1 along every summed axis ``A``
becomes ``a * sum_A(b)`` (``Reduce`` sums and ``SumTo``, the sum a gradient
uses to undo broadcasting); where the factors are constant along different
summed axes, the sum is split (``sum_A = sum_A . sum_B``) so that each part
factors, and the square of a product counts as the product of the squares. The product over the broadcast shape is never
formed: the gradient of the contractive autoencoder's penalty
``sum((h(1-h))[:, None, :] * W[None]) ** 2)`` sums a (batch, visible, hidden)
product over ``visible`` where ``h(1-h)`` is constant, and becomes a
(batch, 1, hidden) times (1, 1, hidden) product (PyTensor does this in its
default mode).

The values are the same in exact arithmetic, not in IEEE arithmetic: an
infinite ``a`` with ``b`` holding zeros and non-zeros gives NaN summed
term by term (``inf * 0``) and ``inf`` factored, and ``sum(b)`` can
overflow where every ``a * b`` is finite. So the rule runs only in mode
'fast_math' (registered in its group, ``engine.FAST_MATH``).
"""
import numpy as np

from tracegrad.ops import api as _ops
from tracegrad.ops.base import BroadcastTo
from tracegrad.tensor.variable import constant
from tracegrad.rewrite.engine import FAST_MATH, Rule, register
from tracegrad.rewrite.pattern import const_value, op_key

# factors collected through at most this many ``mul`` nodes
MAX_MULS = 32


def _factors(v):
    """``v``'s factors through a tree of ``mul`` nodes of ``v``'s dtype."""
    factors, stack, muls = [], [v], 0
    while stack:
        var = stack.pop()
        node = var.owner
        if node is not None and op_key(node.op) == "mul" and var.dtype == v.dtype \
                and muls < MAX_MULS:
            muls += 1
            stack.extend(reversed(node.inputs))
        else:
            factors.append(var)
    return factors


def _summed_axes(node):
    """``(summand, summed axes, how)``: ``how`` is ``'keep'``/``'drop'``
    (a ``Reduce`` with or without ``keepdims``) or ``'sum_to'``; ``None``
    when the axes are not known while building."""
    from tracegrad.ops.base import SumTo
    from tracegrad.ops.reduce import Reduce
    op, v = node.op, node.inputs[0]
    if isinstance(op, Reduce):
        if op.kind != "sum" or (op.dtype is not None and op.dtype != v.dtype):
            return None
        axes = tuple(range(v.ndim)) if op.axes is None else op.axes
        return v, axes, "keep" if op.keepdims else "drop"
    if isinstance(op, SumTo):
        target = node.inputs[1].type.shape
        if None in target:
            return None  # (which axes it sums is decided at run time)
        lead = v.ndim - len(target)
        return v, tuple(range(lead)) + tuple(lead + i for i, s in enumerate(target)
                                             if s == 1), "sum_to"
    return None


def _aligned(f, ndim):
    """``f`` with leading length-1 axes up to ``ndim`` (NumPy broadcasting)."""
    return f if f.ndim == ndim else _ops.expand_dims(f, tuple(range(ndim - f.ndim)))


def _static(shape):
    return shape if None not in shape else None


def _unbroadcast(factors, full):
    """Uniform constants as 0-d constants and ``BroadcastTo(x)`` as ``x``
    (a gradient's seed is often both), where the other factors already have
    the full static shape ``full``: only the broadcast is dropped."""
    out = []
    for k, f in enumerate(factors):
        others = [o.type.shape for o in out + factors[k + 1:]]
        covered = full is not None and others and all(None not in o for o in others) \
            and np.broadcast_shapes(*others) == full
        value = const_value(f)
        if covered and value is not None:
            f = constant(np.asarray(value, dtype=f.dtype))
        elif covered and f.owner is not None and isinstance(f.owner.op, BroadcastTo) \
                and f.owner.inputs[0].dtype == f.dtype:
            f = f.owner.inputs[0]
        out.append(f)
    return out


def _summand_factors(v):
    """The factors of ``v``: a product, or the square of one (``sqr(a * b)``
    is ``sqr(a) * sqr(b)`` in exact arithmetic); ``None`` for anything else."""
    if v.owner is None or v.dtype[0] not in "fc":
        return None
    key = op_key(v.owner.op)
    if key == "sqr":
        inner = v.owner.inputs[0]
        if inner.owner is None or op_key(inner.owner.op) != "mul" or inner.dtype != v.dtype:
            return None
        factors = _factors(inner)
        if len(factors) < 2 or all(f.type.shape == v.type.shape for f in factors):
            return None  # (squaring each factor would only add work)
        return [_ops.sqr(f) for f in factors]
    return _factors(v) if key == "mul" else None


def _ones_along(f, axes):
    return {a for a in axes if f.type.shape[a] == 1}


def _split(axes, factors):
    """Summed axes ``B`` along which some factors are constant and others
    not, when no factor is constant along every summed axis (the largest
    such ``B``); ``None`` when there is none."""
    best = None
    for f in factors:
        part = _ones_along(f, axes)
        if part and any(not part <= _ones_along(g, axes) for g in factors) and (
                best is None or len(part) > len(best)):
            best = part
    return None if best is None else tuple(sorted(best))


def factor_out_of_sum(node, ctx):
    """``sum_A(outer * inner) -> outer * sum_A(inner, keepdims)``; when no
    factor is constant along all of ``A``, the sum is split in two, the
    inner one over axes ``B`` along which one is (and factored in turn)."""
    found = _summed_axes(node)
    if found is None or not found[1]:
        return None
    v, axes, how = found
    factors = _summand_factors(v)
    if factors is None or any(f.dtype != v.dtype for f in factors):
        return None
    factors = [_aligned(f, v.ndim) for f in _unbroadcast(factors, _static(v.type.shape))]
    outer = [f for f in factors if _ones_along(f, axes) == set(axes)]
    inner = [f for f in factors if _ones_along(f, axes) != set(axes)]
    if not inner:
        return None
    if outer:
        result = _product(outer + [_ops.sum(_product(inner), axis=axes, keepdims=True)])
    else:
        part = _split(axes, factors)
        if part is None:
            return None
        # (the outer sum sums the length-1 axes of ``part`` again: nothing)
        result = _ops.sum(_product(factors), axis=part, keepdims=True)
        if how != "sum_to":
            return _ops.sum(result, axis=axes, keepdims=how == "keep")
    if how == "drop":
        return _ops.squeeze(result, axis=axes)
    if how == "sum_to":
        return _ops.sum_to(result, node.inputs[1])  # (drops the length-1 leading axes)
    return result


def _product(factors):
    out = factors[0]
    for f in factors[1:]:
        out = _ops.mul(out, f)
    return out


def _tracked():
    from tracegrad.ops.base import SumTo
    from tracegrad.ops.reduce import Reduce
    return [Reduce, SumTo]


register(FAST_MATH, Rule("factor_out_of_sum", _tracked(), factor_out_of_sum))
