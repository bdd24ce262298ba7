"""Stability rules over softmax and reductions.

- ``log(softmax(x)) -> log_softmax(x)``, also through indexing and views:
  ``log(softmax(x)[arange(n), y]) -> log_softmax(x)[arange(n), y]`` (and
  ``take_along_last_axis``, which ``categorical_crossentropy`` uses);
- ``log(sum(exp(x), axis)) -> logsumexp(x, axis)`` (also with a dimshuffle
  in between);
- ``exp(x) / sum(exp(x), axis, keepdims=True) -> softmax(x, axis)`` (also
  with ``.dimshuffle`` putting the axes back), inside any product, with
  NumPy's 0 beside a +inf kept (``ieee.softmax_as_numpy``) outside
  'fast_math';
- gradients: a factor ``a`` times a scatter into zeros whose values divide
  by the same entries of ``a`` (``a * put_along(g / take_along(a, y))``,
  ``a * inc_subtensor(zeros, g / a[idx], idx)``) scatters ``g`` instead.
  This is what the gradient of ``log(softmax(x)[..., y])`` holds, built
  before rewriting: with it the gradient is ``onehot(g) - softmax(x) * ...``,
  finite where ``softmax`` underflows.
"""
import functools

import numpy as np

from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import ieee
from tracegrad.rewrite.canonicalize import FACTOR_RULES, FactorRule, Parts, finish_parts
from tracegrad.rewrite.engine import Rule, register
from tracegrad.rewrite.pattern import const_value


@functools.cache
def _ops():
    # (imported on first use; cached: the factor rules' prechecks call this
    # for every factor of every product)
    from tracegrad.ops import index, nnet, reduce, shape
    return index, nnet, reduce, shape


def _selection_chain(var):
    """Nodes of selection ops from ``var`` down, and the variable below."""
    chain = []
    while var.owner is not None and var.owner.op.selects and len(chain) < 8:
        chain.append(var.owner)
        var = var.owner.inputs[0]
    return chain, var


def log_softmax_rule(node, ctx):
    _, nnet, _, _ = _ops()
    chain, v = _selection_chain(node.inputs[0])
    under = ieee.softmax_under(v)  # (log of 0 is -inf: the switch stays)
    if under is not None:
        rebuild, v = under
    if v.owner is None or not isinstance(v.owner.op, nnet.Softmax):
        return None
    new = nnet.LogSoftmax(v.owner.op.axes)(v.owner.inputs[0])
    if under is not None:
        new = rebuild(new, al.make_constant(-np.inf, new.type.dtype))
    for sel in reversed(chain):
        new = sel.op(new, *sel.inputs[1:])
    return new


def logsumexp_rule(node, ctx):
    _, _, reduce, shape = _ops()
    s = node.inputs[0]
    wrap = None
    if s.owner is not None and isinstance(s.owner.op, shape.DimShuffle):
        wrap, s = s.owner.op, s.owner.inputs[0]  # (lifted out of the log)
    r = s.owner
    if r is None or not isinstance(r.op, reduce.Reduce) or r.op.kind != "sum" \
            or s.type.dtype[0] != "f":
        return None
    e = r.inputs[0]
    if al.key_of(e) != "exp" or e.type.dtype != s.type.dtype:
        return None
    x = e.owner.inputs[0]
    if x.type.dtype != e.type.dtype:
        return None
    out = reduce.LogSumExp(r.op.axes, r.op.keepdims)(x)
    return out if wrap is None else wrap(out)


def _softmax_den(d):
    """``(exp variable, axes)`` when ``d`` is ``sum(exp(x), axes,
    keepdims=True)`` or that sum without keepdims, dimshuffled back."""
    _, _, reduce, shape = _ops()
    node = d.owner
    if node is None:
        return None
    if isinstance(node.op, shape.DimShuffle):
        r = node.inputs[0].owner
        if r is None or not isinstance(r.op, reduce.Reduce) or r.op.keepdims:
            return None
        kept = iter(range(node.inputs[0].type.ndim))
        expected = tuple("x" if i in r.op.axes else next(kept)
                         for i in range(r.inputs[0].type.ndim))
        if node.op.pattern != expected:
            return None
    elif isinstance(node.op, reduce.Reduce) and node.op.keepdims:
        r = node
    else:
        return None
    e = r.inputs[0]
    if r.op.kind != "sum" or al.key_of(e) != "exp" or e.type.dtype != d.type.dtype:
        return None
    return e, r.op.axes


def _softmax_from_exp(parts, ctx):
    _, nnet, _, _ = _ops()
    fired = False
    for d in list(parts.den):
        found = _softmax_den(d)
        if found is None:
            continue
        e, axes = found
        if not any(v is e for v in parts.num):
            continue
        parts.den.remove(d)
        parts.num.remove(e)
        sm = nnet.Softmax(axes)(e.owner.inputs[0])
        parts.num.append(sm if ctx.fast_math else ieee.softmax_as_numpy(sm))
        fired = True
    return fired


def _is_zero(x):
    from tracegrad.ops.alloc import is_zeros_alloc
    return const_value(x) == 0 or is_zeros_alloc(x)


def _scatter(z):
    """``(values, rebuild(values), is_selection(s, a))`` when ``z`` scatters
    values into zeros, else None."""
    index, nnet, _, _ = _ops()
    node = z.owner
    if node is None:
        return None
    if isinstance(node.op, nnet.PutAlongLastAxis):
        g, idx, like = node.inputs

        def is_sel(s, a):
            o = s.owner
            return o is not None and isinstance(o.op, nnet.TakeAlongLastAxis) \
                and o.inputs[0] is a and o.inputs[1] is idx
        return g, (lambda v: node.op(v, idx, like)), is_sel
    if isinstance(node.op, index.IncSubtensor) and _is_zero(node.inputs[0]):
        x, y, *where = node.inputs

        def is_sel(s, a):
            o = s.owner
            return o is not None and isinstance(o.op, index.Subtensor) \
                and o.op.idx == node.op.idx and o.inputs[0] is a \
                and len(o.inputs) == len(where) + 1 \
                and all(p is q for p, q in zip(o.inputs[1:], where))
        return y, (lambda v: node.op(x, v, *where)), is_sel
    return None


def _scatter_cancel(parts, ctx):
    memo = al.shape_memo(ctx)
    fired = False
    for z in list(parts.num):
        info = _scatter(z)
        if info is None:
            continue
        values, rebuild, is_sel = info
        dtype = values.type.dtype
        if dtype != z.type.dtype or dtype[0] not in "fc":
            continue
        if al.key_of(values) in al.PRODUCT_KEYS:
            f = al.collect_factors(values, memo, ctx.n_clients)
        else:
            f = al.Product(values, [values], [], [], [], 1, 0)
        for a in parts.num:
            if a is z or not al.same_shape(a, z, memo) or not al.is_positive(a):
                continue
            s = next((d for d in f.den if is_sel(d, a)), None)
            if s is None:
                continue
            guards = None, None
            if not ctx.fast_math:
                guards = ieee.scatter_guards(a, lambda v, s=s: s.owner.op(v, *s.owner.inputs[1:]))
                if guards is False:
                    continue
            inner = Parts(f.num, [d for d in f.den if d is not s], f.cnum, f.cden, f.sign)
            new_values = finish_parts(inner, dtype, values.type.ndim, ctx)
            if guards[0] is not None:  # (NaN where NumPy's a[t] / a[t] is)
                new_values = new_values * ieee.guard_where(guards[0], dtype)
            parts.num.remove(a)
            parts.num.remove(z)
            parts.num.append(rebuild(new_values))
            if guards[1] is not None:  # (NaN where NumPy's a[j] * 0 is)
                parts.num.append(ieee.guard_where(guards[1], dtype))
            fired = True
            break
    return fired


def _register():
    register("stabilize", Rule("log_softmax", ["log"], log_softmax_rule))
    register("stabilize", Rule("logsumexp", ["log"], logsumexp_rule))
    FACTOR_RULES.append(FactorRule("stabilize", "softmax_from_exp", _softmax_from_exp,
                                   lambda parts: any(map(_softmax_den, parts.den))))
    FACTOR_RULES.append(FactorRule("stabilize", "scatter_cancel", _scatter_cancel,
                                   lambda parts: any(map(_scatter, parts.num))))


_register()
