"""Specialization: cheaper forms of the same values, chosen last.

- ``x ** 0.5 -> sqrt(x)``, ``x * x -> sqr(x)`` (the same values, one
  cheaper ufunc);
- ``tensordot`` of vectors and matrices contracting one axis becomes the
  ``dot`` form (``tensordot(x, g, axes=([0], [0])) -> dot(x.T, g)``, as the
  gradient of ``dot(x, w)`` has it): ``xp.dot`` on a transposed view, no
  copy of the transposed operand;
- casts that change nothing: ``cast(cast(x, wider), back)`` where ``wider``
  holds every value of ``x`` exactly (``float32 -> float64 -> float32``)
  becomes a single cast (or nothing);
- ``softmax(x)`` and ``log_softmax(x)`` both in a graph become the two
  outputs of one ``SoftmaxAndLog(x)`` (one max, exp and sum);
- ``exp(x) - 1 -> expm1(x)`` is a stability rule (see ``stabilize``) and
  ``SumTo`` removal a canonical one; both run before this phase.
"""
import numpy as np

from tracegrad.ops import api as _ops
from tracegrad.rewrite.engine import OUTPUT, Rule, pattern_rule, register



def _float(b):
    return b.out.type.dtype[0] == "f" and b.x.type.dtype == b.out.type.dtype


@pattern_rule("specialize", "pow_half", ("pow", "x", 0.5), when=_float)
def _pow_half(b):
    return _ops.sqrt(b.x)


@pattern_rule("specialize", "mul_self", ("mul", "x", "x"),
              when=lambda b: b.x.type.dtype == b.out.type.dtype)
def _mul_self(b):
    return _ops.sqr(b.x)


def cast_chain(node, ctx):
    """``cast(cast(x, a), b)`` with ``a`` exact for ``x``'s values."""
    inner = node.inputs[0]
    if inner.owner is None or inner.owner.op.scalar_op is None \
            or inner.owner.op.scalar_op.key != "cast":
        return None
    x = inner.owner.inputs[0]
    if not np.can_cast(x.type.dtype, inner.type.dtype, casting="safe"):
        return None
    target = node.outputs[0].type.dtype
    return x if x.type.dtype == target else _ops.cast(x, target)


register("specialize", Rule("cast_chain", ["cast"], cast_chain))


def dot_form(node, ctx):
    """A one-axis contraction of 1-d/2-d operands as ``dot`` of transposes."""
    from tracegrad.ops.linalg import TensorDot
    op = node.op
    a, b = node.inputs
    if op.batch or len(op.axes_a) != 1 or not 1 <= a.type.ndim <= 2 \
            or not 1 <= b.type.ndim <= 2 or op._is_dot(a.type.ndim, b.type.ndim):
        return None
    if a.type.ndim == 2 and op.axes_a == (0,):
        a = _ops.transpose(a)
    if b.type.ndim == 2 and op.axes_b == (1,):
        b = _ops.transpose(b)
    return TensorDot((a.type.ndim - 1,), (max(b.type.ndim - 2, 0),))(a, b)


def softmax_with_log(node, ctx):
    """``softmax(x)`` next to ``log_softmax(x)`` (same axes): both become
    outputs of one ``SoftmaxAndLog(x)``, which computes the max, exp and
    sum once (the two nodes' rewrites build equal nodes, merged into one)."""
    from tracegrad.ops import nnet
    x = node.inputs[0]
    op = node.op
    which = 0 if type(op) is nnet.Softmax else 1
    partners = (nnet.LogSoftmax if which == 0 else nnet.Softmax, nnet.SoftmaxAndLog)
    for client, _ in ctx.clients(x):
        if client != OUTPUT and type(client.op) in partners and client.op.axes == op.axes:
            if type(client.op) is nnet.SoftmaxAndLog:
                return client.outputs[which]
            return nnet.SoftmaxAndLog(op.axes)(x)[which]
    return None


def _register():
    from tracegrad.ops import nnet
    from tracegrad.ops.linalg import TensorDot
    register("specialize", Rule("dot_form", [TensorDot], dot_form))
    register("specialize", Rule("softmax_with_log", [nnet.Softmax, nnet.LogSoftmax],
                                softmax_with_log))


_register()
