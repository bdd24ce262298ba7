"""Gradient rules of elementwise rows that take more than one expression:
the complex convention (docs/user-guide.md, "Complex gradients": a cotangent
``g`` of ``v`` stands for ``dv -> real(sum(g * dv))``) and guards against
``0 * inf`` where the derivative is finite.

They build graph through ``tracegrad.tensor`` (looked up when called), so
this module imports nothing from ``elemwise``.
"""


def _T():
    import tracegrad.tensor as T
    return T


def match_gradient_dtype(g, x):
    """The gradient ``g`` in the dtype of the input ``x``. A complex gradient
    of a real input keeps its real part (``dL = Re(g * dx)`` with ``dx``
    real; see "Complex gradients" in docs/user-guide.md), taken explicitly
    rather than by a cast that warns and drops the imaginary part."""
    if g.dtype[0] == "c" and x.dtype[0] != "c":
        g = _T().real(g)
    return g if g.dtype == x.dtype else _T().cast(g, x.dtype)


# Gradient rules where a textbook formula would multiply a zero by an
# infinity: each picks its operands with ``switch`` so that a finite
# derivative comes out finite (JAX's "double where").
def abs_grad(x, out, gz):
    """vjp of ``abs``: ``gz * sign(x)``, or ``gz * conj(z) / |z|`` (0 at 0)."""
    T = _T()
    if x.dtype[0] != "c":
        return gz * T.sign(x)
    # d|z| = Re(conj(z) / |z| * dz); 0 at z = 0 (a subgradient, as sign(0)).
    return gz * T.true_div(T.conj(x), T.switch(T.eq(out, 0), 1, out))


def angle_grad(x, gz):
    """vjp of ``angle``: ``gz * -1j / z`` (zeros for a real input)."""
    if x.dtype[0] != "c":
        return _T().zeros_like(gz)  # 0 or pi: piecewise constant
    # angle = atan2(y, x): d angle = Re(-1j / z * dz).
    return gz * _T().true_div(-1j, x)


def pow_grad_base(i, gz):
    """vjp of ``x ** y`` for ``x`` (``i = (x, y)``), finite at ``x = y = 0``."""
    # y * x**(y - 1), with x**1 in place of x**-1 where y == 0: d(x**0)/dx is
    # 0 also at x == 0 (the formula gives 0 * inf there).
    T = _T()
    x, y = i
    return gz * y * T.pow(x, T.switch(T.eq(y, 0), 1, y - 1))


def pow_grad_exponent(i, out, gz):
    """vjp of ``x ** y`` for ``y`` (``out = x ** y``), 0 where ``x == 0``."""
    # x**y * log(x), with log(1) where x == 0: 0**y is 0 for every y > 0, so
    # its derivative is 0 (the formula gives 0 * -inf there).
    T = _T()
    x = i[0]
    return gz * out * T.log(T.switch(T.eq(x, 0), 1, x))
