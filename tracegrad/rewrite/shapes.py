"""Canonical rules about shape ops, and the shape facts the algebra uses.

- ``SumTo(g, like)`` is removed where ``g`` provably has ``like``'s shape
  (gradients of unary ops, of ops whose operands share a shape); where it
  stays, ``like`` (read only for its shape) becomes the variable its shape
  provably comes from (``tanh(a) -> a``), so a fused kernel need not store
  ``like`` just for its shape;
- an elementwise input ``broadcast_to(a, shape(y))`` (or ``alloc``) next to
  another input of ``y``'s shape is read as ``a``: the op broadcasts anyway
  (the gradient of ``sum`` is such a broadcast);
- ``SumTo(x * f, like) -> SumTo(x, like) * f`` where ``f`` has ``like``'s
  shape (so ``SumTo(g / s, s)`` in the gradient of ``g / s`` exposes ``s``),
  ``f`` proven finite (and nonzero in a denominator) outside 'fast_math';
- ``shape(f(a))`` is ``shape(a)`` where ``f(a)`` provably has ``a``'s shape;
- ``dimshuffle(f(a, b))`` of an elementwise ``f`` read only there becomes
  ``f(dimshuffle(a), dimshuffle(b))``, so products and sums the gradient of
  a reduction wrapped in a dimshuffle are seen whole (``exp(x) /
  sum(exp(x))`` in the gradient of ``log(sum(exp(x)))``).

How the shapes of the outputs of shape ops, reductions and softmax follow
from their inputs' shapes (what ``algebra.shape_root`` proves with) is each
op's declaration (``Op.shape_relation``), not a table here.
"""
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import ieee
from tracegrad.rewrite.engine import Rule, register
from tracegrad.trace import Variable


def remove_sum_to(node, ctx):
    g, like = node.inputs
    return g if al.same_shape(g, like, al.shape_memo(ctx)) else None


def sum_to_shape_root(node, ctx):
    g, like = node.inputs
    root = al.shape_root(like, al.shape_memo(ctx))
    if root is like or not isinstance(root, Variable) or root.type.ndim != like.type.ndim:
        return None
    return node.op(g, root)


def shape_of_shape_root(node, ctx):
    """``shape(f(a)) -> shape(a)`` where ``f(a)`` provably has ``a``'s shape
    (``(x ** 2).shape`` reads ``x``'s shape, as Theano's ``Shape_i(x)``): the
    compiled function no longer computes ``f(a)`` just for its shape."""
    x, = node.inputs
    root = al.shape_root(x, al.shape_memo(ctx))
    if root is x or not isinstance(root, Variable) or root.type.ndim != x.type.ndim:
        return None
    return node.op(root)


def count_shape_root(node, ctx):
    """``ReductionCount(f(a, b)) -> ReductionCount(a, b)``: the count reads
    the variables ``f``'s shape provably comes from, so it (and the scale
    ``1 / n`` of a mean's gradient) need not wait for ``f``, and the
    gradient may fuse with ``f``."""
    x, = node.inputs
    leaves = al.shape_leaves(al.shape_root(x, al.shape_memo(ctx)))
    ndim = x.type.ndim
    if x in leaves or not all(isinstance(v, Variable) and v.type.ndim == ndim
                              for v in leaves):
        return None
    return node.op(*_in_order(x, leaves))


def _in_order(var, leaves):
    """``leaves`` in the order a walk from ``var`` through the shape rules
    meets them (a deterministic order for the new node's inputs)."""
    order, seen, stack = [], set(), [var]
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in leaves:
            order.append(v)
            continue
        rule = al._shape_rule(v)  # (the rule shape_root follows)
        if rule is not None:
            stack.extend(reversed([d for d in rule[0] if isinstance(d, Variable)]))
    return order


def remove_useless_broadcast(node, ctx):
    # (most nodes read no broadcast: they are declined before any shape work)
    if len(node.inputs) < 2 or all(al.broadcast_source(i) is None for i in node.inputs):
        return None
    memo = al.shape_memo(ctx)
    inputs = list(node.inputs)
    changed = False
    for i, inp in enumerate(node.inputs):
        src = al.broadcast_source(inp)
        # (checked against the inputs as they are now: of two broadcasts of
        # one shape, one stays)
        if src is not None and any(j != i and al.same_shape(other, inp, memo)
                                   for j, other in enumerate(inputs)):
            inputs[i] = src
            changed = True
    return node.op(*inputs) if changed else None


def lift_dimshuffle(node, ctx):
    inner = node.inputs[0]
    elem = inner.owner
    if elem is None or elem.op.scalar_op is None \
            or ctx.n_clients(inner) != 1:
        return None
    op = node.op
    ndim = inner.type.ndim
    new_inputs = []
    for inp in elem.inputs:
        if inp.type.ndim == 0:
            new_inputs.append(inp)
        elif inp.type.ndim == ndim and all(inp.type.shape[d] == 1 for d in op.drop):
            new_inputs.append(op(inp))
        else:
            return None
    return elem.op(*new_inputs)


def factor_out_of_sum_to(node, ctx):
    """``SumTo(x * f, like) -> SumTo(x, like) * f`` for factors ``f`` of
    ``like``'s shape: they are constant along the summed axes."""
    from tracegrad.rewrite.canonicalize import Parts, finish_parts
    g, like = node.inputs
    dtype = g.type.dtype
    if dtype[0] not in "fc" or al.key_of(g) not in al.PRODUCT_KEYS \
            or ctx.n_clients(g) != 1:
        return None
    memo = al.shape_memo(ctx)
    f = al.collect_factors(g, memo, ctx.n_clients)
    out_num, in_num = _split_by_shape(f.num, like, memo)
    out_den, in_den = _split_by_shape(f.den, like, memo)
    if not (out_num or out_den) or not (in_num or in_den):
        return None
    if not ctx.fast_math and not _may_factor_out(out_num, out_den):
        return None
    inner = al.build_product(in_num, in_den, 1, dtype)
    if not al.same_shape(inner, g, memo):
        return None
    summed = node.op(inner, like)
    outer = Parts([summed] + out_num, out_den, f.cnum, f.cden, f.sign)
    return finish_parts(outer, dtype, like.type.ndim, ctx)


def _split_by_shape(factors, like, memo):
    """``(factors of like's shape, the others)``."""
    out = [v for v in factors if al.same_shape(v, like, memo)]
    return out, [v for v in factors if not any(v is o for o in out)]


def _may_factor_out(out_num, out_den):
    """Whether moving these factors out of the sum keeps IEEE results:
    sum(x * inf) is NaN where some x is 0, sum(x) * inf is not."""
    return all(map(ieee.is_finite, out_num + out_den)) and all(map(al.is_nonzero, out_den))


def _single_input(fn):
    def rule(node, ctx):
        return fn(node, ctx) if len(node.inputs) == 1 else None
    return rule


def _register():
    from tracegrad.ops import base, elemwise, reduce, shape
    rows = [r.name for r in elemwise.ROWS()] + ["cast"]
    register("canonicalize", Rule("remove_sum_to", [elemwise.SumTo], remove_sum_to))
    register("canonicalize", Rule("sum_to_factor_out", [elemwise.SumTo],
                                  factor_out_of_sum_to))
    register("canonicalize", Rule("sum_to_shape_root", [elemwise.SumTo], sum_to_shape_root))
    register("canonicalize", Rule("useless_broadcast", rows, remove_useless_broadcast))
    register("canonicalize", Rule("lift_dimshuffle", [shape.DimShuffle], lift_dimshuffle))
    register("canonicalize", Rule("count_shape_root", [reduce.ReductionCount],
                                  _single_input(count_shape_root)))
    register("canonicalize", Rule("shape_of_shape_root", [base.Shape], shape_of_shape_root))


_register()
