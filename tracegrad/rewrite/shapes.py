"""Canonical rules about shape ops, and the shape facts the algebra uses.

- ``SumTo(g, like)`` is removed where ``g`` provably has ``like``'s shape
  (gradients of unary ops, of ops whose operands share a shape);
- an elementwise input ``broadcast_to(a, shape(y))`` (or ``alloc``) next to
  another input of ``y``'s shape is read as ``a``: the op broadcasts anyway
  (the gradient of ``sum`` is such a broadcast);
- ``dimshuffle(f(a, b))`` of an elementwise ``f`` read only there becomes
  ``f(dimshuffle(a), dimshuffle(b))``, so products and sums the gradient of
  a reduction wrapped in a dimshuffle are seen whole (``exp(x) /
  sum(exp(x))`` in the gradient of ``log(sum(exp(x)))``).

It also declares, for ``algebra.shape_root``, which ops give an output of the
shape of one of their inputs.
"""
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite.engine import Rule, register


def remove_sum_to(node, ctx):
    g, like = node.inputs
    return g if al.same_shape(g, like, al.shape_memo(ctx)) else None


def _shape_of_shape_input(node):
    """``y`` when ``node``'s shape input is ``shape(y)``."""
    from tracegrad.ops.shape_static import Shape
    shp = node.inputs[1]
    if shp.owner is not None and isinstance(shp.owner.op, Shape):
        return shp.owner.inputs[0]
    return None


def remove_useless_broadcast(node, ctx):
    from tracegrad.ops.alloc import Alloc, BroadcastTo
    if len(node.inputs) < 2:
        return None
    memo = al.shape_memo(ctx)
    inputs = list(node.inputs)
    changed = False
    for i, inp in enumerate(inputs):
        owner = inp.owner
        if owner is None or not isinstance(owner.op, (BroadcastTo, Alloc)):
            continue
        src = owner.inputs[0]
        if src.type.dtype != inp.type.dtype or src.type.ndim > inp.type.ndim:
            continue
        if any(j != i and al.same_shape(other, inp, memo) for j, other in enumerate(inputs)):
            inputs[i] = src
            changed = True
    return node.op(*inputs) if changed else None


def lift_dimshuffle(node, ctx):
    inner = node.inputs[0]
    elem = inner.owner
    if elem is None or getattr(elem.op, "scalar_op", None) is None \
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


def _register():
    from tracegrad.ops import elemwise, index, nnet, shape
    rows = [r.name for r in elemwise.ROWS()] + ["cast"]
    register("canonicalize", Rule("remove_sum_to", [elemwise.SumTo], remove_sum_to))
    register("canonicalize", Rule("useless_broadcast", rows, remove_useless_broadcast))
    register("canonicalize", Rule("lift_dimshuffle", [shape.DimShuffle], lift_dimshuffle))
    first = (lambda node: node.inputs[0])
    al.BROADCASTS.update({shape.BroadcastTo, shape.Alloc})
    al.register_shape_source(elemwise.SumTo, lambda node: node.inputs[1])
    al.register_shape_source(shape.BroadcastTo, _shape_of_shape_input)
    al.register_shape_source(shape.Alloc, _shape_of_shape_input)
    al.register_shape_source(index.IncSubtensor, first)
    al.register_shape_source(nnet.PutAlongLastAxis, lambda node: node.inputs[2])
    al.register_shape_source(nnet.Softmax, first)
    al.register_shape_source(nnet.LogSoftmax, first)


_register()
