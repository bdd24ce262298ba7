"""NumPy ufuncs outside the elementwise table: ``copysign``, ``heaviside``,
``nextafter``, ``ldexp``, ``frexp`` (and ``signbit``).

``Ufunc(name)`` runs ``xp.<name>`` with NumPy broadcasting and dtypes (asked
of NumPy itself); it is not a table row (no fused kernel), which keeps these
rarely hot functions out of the fusion code generators. Gradients:

- ``copysign(x, y)``: ``sign(x) * (-1 if signbit(y) else 1)`` for ``x``
  (0 at ``x = 0``, as ``abs``), none for ``y`` (piecewise constant);
- ``heaviside(x, h)``: none for ``x`` (piecewise constant), 1 for ``h``
  where ``x == 0``;
- ``ldexp(x, n)``: ``2**n`` for ``x`` (``n`` is an integer);
- ``frexp(x)``: the mantissa's is ``2**-exponent``;
- ``nextafter``, ``signbit``: none (refused by ``grad`` for ``nextafter``).
"""
import numpy as np

from tracegrad.ops import elemwise as ew
from tracegrad.ops.base import broadcast_static, sum_to
from tracegrad.ops.elemwise import is_differentiable, match_gradient_dtype
from tracegrad.tensor.dispatch import register_ufunc
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, resolve_weak
from tracegrad.trace import Apply, Op

__all__ = ["copysign", "heaviside", "nextafter", "ldexp", "frexp", "signbit", "Ufunc"]


class Ufunc(Op):
    """``xp.<name>(*inputs)`` elementwise (one or more outputs)."""

    __props__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn
        self.ufunc = getattr(np, fn)

    @property
    def name(self):
        return self.fn

    @property
    def nout(self):
        return self.ufunc.nout

    def __str__(self):
        return self.name

    def __getstate__(self):
        return {"fn": self.fn}

    def __setstate__(self, state):
        self.__init__(state["fn"])

    def make_node(self, *inputs):
        inputs = resolve_weak([as_tensor_variable(x) for x in inputs], self.ufunc)
        if len(inputs) != self.ufunc.nin:
            raise TypeError(f"{self.name} takes {self.ufunc.nin} inputs, got {len(inputs)}")
        try:
            probe = self.ufunc(*[np.ones((), x.dtype) for x in inputs])
        except TypeError as err:
            raise TypeError(f"{self.name}: not supported for dtypes "
                            f"{[x.dtype for x in inputs]} ({err})") from None
        probe = probe if isinstance(probe, tuple) else (probe,)
        shape = broadcast_static([x.type.shape for x in inputs], self.name)
        return Apply(self, inputs, [TensorType(p.dtype.name, shape)() for p in probe])

    def impl(self, xp, *arrays):
        return getattr(xp, self.name)(*arrays)

    def vjp(self, node, output_grads):
        rule = _GRADS.get(self.name)
        if rule is None:
            raise NotImplementedError(f"{self.name} has no gradient (its output is "
                                      "piecewise constant or a float's neighbour)")
        grads = rule(node.inputs, node.outputs, output_grads)
        return [None if g is None or not is_differentiable(x)
                else match_gradient_dtype(sum_to(g, x), x)
                for x, g in zip(node.inputs, grads)]


def _copysign_grad(inputs, outputs, grads):
    x, y = inputs
    flip = Ufunc("copysign")(np.ones((), outputs[0].dtype), y)     # +-1 by y's sign bit
    sign_x = Ufunc("copysign")(np.ones((), outputs[0].dtype), x)
    nonzero = ew.neq(x, 0)
    return [grads[0] * (flip * sign_x) * nonzero, None]


def _heaviside_grad(inputs, outputs, grads):
    x, h = inputs
    return [None, grads[0] * ew.eq(x, 0)]


def _ldexp_grad(inputs, outputs, grads):
    x, n = inputs
    return [Ufunc("ldexp")(grads[0], n), None]


def _frexp_grad(inputs, outputs, grads):
    g = grads[0]
    if g is None:
        return [None]
    return [Ufunc("ldexp")(g, -outputs[1])]


_GRADS = {"copysign": _copysign_grad, "heaviside": _heaviside_grad, "ldexp": _ldexp_grad,
          "frexp": _frexp_grad, "signbit": lambda i, o, g: [None]}


def copysign(x1, x2):
    """NumPy ``copysign``: ``|x1|`` with the sign bit of ``x2``."""
    return Ufunc("copysign")(x1, x2)


def heaviside(x1, x2):
    """NumPy ``heaviside``: 0 below 0, ``x2`` at 0, 1 above (NaN stays NaN)."""
    return Ufunc("heaviside")(x1, x2)


def nextafter(x1, x2):
    """NumPy ``nextafter``: the next float after ``x1`` towards ``x2`` (no gradient)."""
    return Ufunc("nextafter")(x1, x2)


def ldexp(x1, x2):
    """NumPy ``ldexp``: ``x1 * 2**x2`` (``x2`` integer), exact."""
    return Ufunc("ldexp")(x1, x2)


def frexp(x):
    """NumPy ``frexp``: ``(mantissa, exponent)`` with ``x = mantissa * 2**exponent``."""
    return tuple(Ufunc("frexp")(x))


def signbit(x):
    """NumPy ``signbit`` (bool; no gradient)."""
    return Ufunc("signbit")(x)


for _fn in (copysign, heaviside, nextafter, ldexp, frexp, signbit):
    register_ufunc(getattr(np, _fn.__name__), _fn)
