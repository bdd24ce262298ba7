"""Theano's ``theano.gradient`` ops: the identity in the forward pass, a
changed gradient in the backward one — ``zero_grad`` and
``consider_constant`` (a zero gradient), ``disconnected_grad`` (no
gradient: ``grad`` treats ``x`` as disconnected), ``undefined_grad`` (asking
a gradient through it raises), ``grad_clip`` (the gradient clipped to
``[lower, upper]``) and ``grad_scale`` (the gradient times ``multiplier``).

Each is one ``GradientOverride`` op; the forward value is a view of ``x``.
"""
from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import zeros_like
from tracegrad.ops.base import NoGradient
from tracegrad.ops.elemwise_numpy import clip
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["zero_grad", "consider_constant", "disconnected_grad", "undefined_grad",
           "grad_clip", "grad_scale"]


class GradientOverride(Op):
    """``x`` itself; its vjp is ``rule`` ('zero', 'disconnected',
    'undefined', 'clip' with ``args = (lower, upper)``, or 'scale', whose
    multiplier is a second input, symbolic or not)."""

    __props__ = ("rule", "args")
    view_map = {0: [0]}

    def __init__(self, rule, args=()):
        self.rule, self.args = rule, tuple(args)

    @property
    def name(self):
        return f"{self.rule}_grad"

    def make_node(self, x, *multiplier):
        x = as_tensor_variable(x)
        return Apply(self, [x, *map(as_tensor_variable, multiplier)], [x.type()])

    def impl(self, xp, x, *multiplier):
        return x

    def shape_relation(self, node):
        return ("same", node.inputs[0])

    def vjp(self, node, output_grads):
        g, = output_grads
        if self.rule == "zero":
            return [zeros_like(node.inputs[0])]
        if self.rule == "disconnected":
            return [None]
        if self.rule == "undefined":
            return [NoGradient("undefined_grad: the gradient through this value is "
                               "undefined (theano.gradient.undefined_grad)")]
        if self.rule == "clip":
            return [clip(g, *self.args)]
        return [ew.cast(ew.mul(g, node.inputs[1]), g.dtype), None]


def zero_grad(x):
    """``x``, with a zero gradient (Theano's ``zero_grad``)."""
    return GradientOverride("zero")(x)


def consider_constant(x):
    """``x``, with a zero gradient: ``x`` is a constant for ``grad``
    (Theano's ``consider_constant``)."""
    return GradientOverride("zero")(x)


def disconnected_grad(x):
    """``x``, with no gradient: what depends on the cost only through it is
    disconnected (Theano's ``disconnected_grad``)."""
    return GradientOverride("disconnected")(x)


def undefined_grad(x):
    """``x``, whose gradient is undefined: ``grad`` through it raises
    ``NotDifferentiableError`` (Theano's ``undefined_grad``)."""
    return GradientOverride("undefined")(x)


def grad_clip(x, lower_bound, upper_bound):
    """``x``, with the gradient passing through it clipped to
    ``[lower_bound, upper_bound]`` (Theano's ``grad_clip``)."""
    if lower_bound > upper_bound:
        raise ValueError(f"grad_clip: lower_bound {lower_bound} > upper_bound {upper_bound}")
    return GradientOverride("clip", (lower_bound, upper_bound))(x)


def grad_scale(x, multiplier):
    """``x``, with the gradient passing through it multiplied by
    ``multiplier`` (Theano's ``grad_scale``)."""
    return GradientOverride("scale")(x, multiplier)
