"""Elementwise ops: one table row per pointwise function.

Each row (a ``ScalarOp``) holds everything about one pointwise function:

- ``impl(xp, *arrays)``: the array implementation (a NumPy/CuPy ufunc mostly);
- ``c``: a C/CUDA expression template over ``{0}``, ``{1}``... used by the
  fusion code generator (helpers it calls live in ``PREAMBLE``); ``None``
  when CUDA has no such function (the node is then not fused on the GPU);
- ``grad(inputs, output, gz)``: the symbolic vector-Jacobian product per
  input, before broadcasting is undone (``None`` = no gradient, ``ZERO`` =
  a zero gradient, made ``zeros_like`` the input by the reverse engine);
- ``ufunc``: the NumPy ufunc it answers to in ``np.<ufunc>(variable)``;
- ``expand(f, *args)`` (optional): the same function written with other
  rows (``f.exp(f.neg(x))``; ``f`` maps row names to functions), or ``None``
  where it does not apply to these arguments. ``impl`` may run it over arrays
  (``prims(xp)``); the fused CPU code inlines it, sharing common steps;
- facts the rewrites read (``ROW_FACTS``, documented on ``trace.Op``):
  ``positive``, ``commutative``, ``identity``... given as keywords of
  ``row``; ``Elemwise`` answers them from its row;
- ``symbol`` (optional): the Python operator ``pp`` prints it with (infix
  for two inputs, ``a + b``; prefix for one, ``-a``).

Output dtypes are NumPy's: found by running ``impl`` on empty arrays of the
input dtypes (cached), so promotion can never drift from NumPy's own.
``Elemwise(row)`` is the graph op; ``row`` makes the public function
(``T.exp``...) from the row. Both live in ``ops.base`` (re-exported here).
"""
import math

import numpy as np

from tracegrad.ops import special_math as sm
# The op machinery lives in ``ops.base`` (below the shape ops); it is
# re-exported here, where the rest of the code base has always found it.
# (``CastRow`` and ``row_by_name`` also for pickles made before the move.)
from tracegrad.ops.base import (ROW_FACTS, ROW_NAMES, ZERO, CastRow, Elemwise,  # noqa: F401
                                InplaceElemwise, ScalarOp, SumTo, _ROWS, broadcast_static,
                                broadcasts_into, cast, expanded_impl, fits_in_place,
                                format_shape, is_differentiable, match_gradient_dtype,
                                prims, real, row, row_by_name, sum_to, ufunc_impl)
from tracegrad.tensor.variable import TensorConstant


# ----------------------------------------------------------------- the table
# (``sigmoid``/``softplus`` read one ``exp(-|x|)``, which never overflows:
# a vectorised kernel evaluates both sides of ``?:``, and the overflow of
# the side not taken (``exp(-x)`` for x < -88 in float32) raised a flag
# that made every such call run again on NumPy; the values are the same.)
PREAMBLE = r"""
template <typename T> __device__ __forceinline__ T tg_sigmoid(T x) {
    T e = exp(-fabs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e); }
template <typename T> __device__ __forceinline__ T tg_softplus(T x) {
    T e = exp(-fabs(x));
    return x > T(0) ? x + log1p(e) : log1p(e); }
template <typename T> __device__ __forceinline__ T tg_sign(T x) {
    return x != x ? x : T((T(0) < x) - (x < T(0))); }
template <typename T> __device__ __forceinline__ T tg_floor_div(T a, T b) {
    T m = fmod(a, b);
    T d = (m != T(0) && ((b < T(0)) != (m < T(0)))) ? (a - m) / b - T(1) : (a - m) / b;
    T f = floor(d);
    return b == T(0) ? a / b : (d != T(0) ? (d - f > T(0.5) ? f + T(1) : f)
                                         : copysign(T(0), a / b)); }
template <typename T> __device__ __forceinline__ T tg_maximum(T a, T b) {
    return (a > b || a != a) ? a : b; }
template <typename T> __device__ __forceinline__ T tg_minimum(T a, T b) {
    return (a < b || a != a) ? a : b; }
template <typename T> __device__ __forceinline__ T tg_mod(T a, T b) {
    T r = fmod(a, b);
    return r != T(0) ? (((r < T(0)) != (b < T(0))) ? r + b : r) : copysign(T(0), b); }
template <typename T> __device__ __forceinline__ T tg_logaddexp(T a, T b) {
    T m = a > b ? a : b;
    return a == b ? a + T(0.6931471805599453) : m + log1p(exp(-fabs(a - b))); }
template <typename T> __device__ __forceinline__ T tg_logaddexp2(T a, T b) {
    T m = a > b ? a : b;
    return a == b ? a + T(1) : m + log1p(exp2(-fabs(a - b))) * T(1.4426950408889634); }
template <typename T> __device__ __forceinline__ T tg_sinc(T x) {
    T y = x * T(3.141592653589793); return y == T(0) ? T(1) : sin(y) / y; }
""".strip()


def _mask(cond, like):
    return cast(cond, like.dtype)


# Grad rules are lambdas over the public functions of this module (looked up
# when the gradient is built, so rows may refer to rows defined later).
# (x,), out, gz -> [dx]
neg = row("neg", 1, ufunc_impl("negative"), "(-{0})",
    lambda i, o, gz: [neg(gz)], np.negative, symbol="-",
    negation=True, finite_if_inputs=True)
abs = row("abs", 1, ufunc_impl("absolute"), "abs({0})",
    lambda i, o, gz: [abs_grad(i[0], o, gz)], np.absolute, finite_if_inputs=True)
sign = row("sign", 1, ufunc_impl("sign"), "tg_sign({0})",
    lambda i, o, gz: [ZERO], np.sign, finite_if_inputs=True)
sqr = row("sqr", 1, ufunc_impl("square"), "({0} * {0})",
    lambda i, o, gz: [gz * (i[0] * 2)], np.square, finite_if_inputs=True)
exp = row("exp", 1, ufunc_impl("exp"), "exp({0})",
    lambda i, o, gz: [gz * o], np.exp,
    positive=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
exp2 = row("exp2", 1, ufunc_impl("exp2"), "exp2({0})",
    lambda i, o, gz: [gz * o * math.log(2.0)], np.exp2,
    positive=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
expm1 = row("expm1", 1, ufunc_impl("expm1"), "expm1({0})",
    lambda i, o, gz: [gz * (o + 1)], np.expm1, finite_if_inputs=True)
log = row("log", 1, ufunc_impl("log"), "log({0})",
    lambda i, o, gz: [gz / i[0]], np.log)
log2 = row("log2", 1, ufunc_impl("log2"), "log2({0})",
    lambda i, o, gz: [gz / (i[0] * math.log(2.0))], np.log2)
log10 = row("log10", 1, ufunc_impl("log10"), "log10({0})",
    lambda i, o, gz: [gz / (i[0] * math.log(10.0))], np.log10)
log1p = row("log1p", 1, ufunc_impl("log1p"), "log1p({0})",
    lambda i, o, gz: [gz / (i[0] + 1)], np.log1p)
sqrt = row("sqrt", 1, ufunc_impl("sqrt"), "sqrt({0})",
    lambda i, o, gz: [gz * 0.5 / o], np.sqrt)
sin = row("sin", 1, ufunc_impl("sin"), "sin({0})",
    lambda i, o, gz: [gz * cos(i[0])], np.sin, finite_if_inputs=True)
cos = row("cos", 1, ufunc_impl("cos"), "cos({0})",
    lambda i, o, gz: [neg(gz * sin(i[0]))], np.cos, finite_if_inputs=True)
tan = row("tan", 1, ufunc_impl("tan"), "tan({0})",
    lambda i, o, gz: [gz * (sqr(o) + 1)], np.tan)
arcsin = row("arcsin", 1, ufunc_impl("arcsin"), "asin({0})",
    lambda i, o, gz: [gz / sqrt(1 - sqr(i[0]))], np.arcsin)
arccos = row("arccos", 1, ufunc_impl("arccos"), "acos({0})",
    lambda i, o, gz: [neg(gz / sqrt(1 - sqr(i[0])))], np.arccos)
arctan = row("arctan", 1, ufunc_impl("arctan"), "atan({0})",
    lambda i, o, gz: [gz / (sqr(i[0]) + 1)], np.arctan, finite_if_inputs=True)
sinh = row("sinh", 1, ufunc_impl("sinh"), "sinh({0})",
    lambda i, o, gz: [gz * cosh(i[0])], np.sinh, finite_if_inputs=True)
cosh = row("cosh", 1, ufunc_impl("cosh"), "cosh({0})",
    lambda i, o, gz: [gz * sinh(i[0])], np.cosh,
    positive=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
tanh = row("tanh", 1, ufunc_impl("tanh"), "tanh({0})",
    lambda i, o, gz: [gz * (1 - sqr(o))], np.tanh, finite_if_inputs=True)
arcsinh = row("arcsinh", 1, ufunc_impl("arcsinh"), "asinh({0})",
    lambda i, o, gz: [gz / sqrt(sqr(i[0]) + 1)], np.arcsinh)
arccosh = row("arccosh", 1, ufunc_impl("arccosh"), "acosh({0})",
    lambda i, o, gz: [gz / sqrt(sqr(i[0]) - 1)], np.arccosh)
arctanh = row("arctanh", 1, ufunc_impl("arctanh"), "atanh({0})",
    lambda i, o, gz: [gz / (1 - sqr(i[0]))], np.arctanh)
floor = row("floor", 1, ufunc_impl("floor"), "floor({0})",
    lambda i, o, gz: [ZERO], np.floor, finite_if_inputs=True)
ceil = row("ceil", 1, ufunc_impl("ceil"), "ceil({0})",
    lambda i, o, gz: [ZERO], np.ceil, finite_if_inputs=True)
rint = row("rint", 1, ufunc_impl("rint"), "rint({0})",
    lambda i, o, gz: [ZERO], np.rint, finite_if_inputs=True)
trunc = row("trunc", 1, ufunc_impl("trunc"), "trunc({0})",
    lambda i, o, gz: [ZERO], np.trunc, finite_if_inputs=True)
erf = row("erf", 1, sm.erf, "erf({0})",
    lambda i, o, gz: [gz * (2 / math.sqrt(math.pi)) * exp(neg(sqr(i[0])))])
erfc = row("erfc", 1, sm.erfc, "erfc({0})",
    lambda i, o, gz: [gz * (-2 / math.sqrt(math.pi)) * exp(neg(sqr(i[0])))])
erfinv = row("erfinv", 1, sm.erfinv, "erfinv({0})",
    lambda i, o, gz: [gz * (math.sqrt(math.pi) / 2) * exp(sqr(o))])
gamma = row("gamma", 1, sm.gamma, "tgamma({0})",
    lambda i, o, gz: [gz * o * psi(i[0])])
gammaln = row("gammaln", 1, sm.gammaln, "lgamma({0})",
    lambda i, o, gz: [gz * psi(i[0])])
psi = row("psi", 1, sm.psi, None,
    lambda i, o, gz: [gz * tri_gamma(i[0])])
# (tri_gamma's gradient, polygamma(2, x), is set in ops/special.py)
tri_gamma = row("tri_gamma", 1, sm.tri_gamma, None)
deg2rad = row("deg2rad", 1, ufunc_impl("deg2rad"), "({0} * 0.017453292519943295)",
    lambda i, o, gz: [gz * (math.pi / 180)], np.deg2rad,
    positive_if_inputs=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
rad2deg = row("rad2deg", 1, ufunc_impl("rad2deg"), "({0} * 57.29577951308232)",
    lambda i, o, gz: [gz * (180 / math.pi)], np.rad2deg,
    positive_if_inputs=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
# (NumPy's fabs refuses complex inputs: dtype inference runs it and says so.)
fabs = row("fabs", 1, ufunc_impl("fabs"), "fabs({0})",
    lambda i, o, gz: [gz * sign(i[0])], np.fabs,
    positive_if_inputs=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
reciprocal = row("reciprocal", 1, ufunc_impl("reciprocal"), "(1 / {0})",
    lambda i, o, gz: [neg(gz * sqr(o))], np.reciprocal,
    positive_if_inputs=True, zero_or_inf_at_inf=True)
# np.sinc: sin(pi x) / (pi x), 1 at 0 (a function, not a ufunc).
def _sinc(xp, x):
    # np.sinc's own steps (NumPy 2), with functions CuPy has too.
    x = x * math.pi
    y = xp.where(x, x, np.finfo(x.dtype).eps if x.dtype.kind == "f" else 1e-20)
    return xp.sin(y) / y


sinc = row("sinc", 1, _sinc, "tg_sinc({0})",
    lambda i, o, gz: [gz * sinc_grad(i[0], o)], finite_if_inputs=True, bounded=True)


def _sigmoid_expand(f, x):
    # e = exp(-|x|) never overflows; max(e, x >= 0) is 1 or e: 1 / (1 + e)
    # for x >= 0, e / (1 + e) below, both to full relative precision (and
    # NaN stays NaN). Cheap SIMD ufuncs, unlike logaddexp.
    if x.dtype.kind != "f":
        return None
    e = f.exp(f.neg(f.abs(x)))
    return f.true_div(f.maximum(e, f.ge(x, 0)), f.add(e, 1))


def _softplus_expand(f, x):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), what logaddexp does
    # inside, written with faster ufuncs (and sharing exp(-|x|) with a
    # sigmoid of x or -x when fused).
    if x.dtype.kind != "f":
        return None
    return f.add(f.maximum(x, 0), f.log1p(f.exp(f.neg(f.abs(x)))))


sigmoid = row("sigmoid", 1,
    expanded_impl(_sigmoid_expand, lambda xp, x: xp.exp(-xp.logaddexp(0.0, -x))),
    "tg_sigmoid({0})",
    lambda i, o, gz: [gz * o * (1 - o)], expand=_sigmoid_expand,
    positive=True, finite_if_inputs=True, bounded=True)
softplus = row("softplus", 1,
    expanded_impl(_softplus_expand, lambda xp, x: xp.logaddexp(0.0, x)),
    "tg_softplus({0})",
    lambda i, o, gz: [gz * sigmoid(i[0])], expand=_softplus_expand,
    positive=True, finite_if_inputs=True, zero_or_inf_at_inf=True)
isnan = row("isnan", 1, ufunc_impl("isnan"), "isnan({0})", lambda i, o, gz: [None], np.isnan)
isinf = row("isinf", 1, ufunc_impl("isinf"), "isinf({0})", lambda i, o, gz: [None], np.isinf)
invert = row("invert", 1, ufunc_impl("invert"), "(~{0})", lambda i, o, gz: [None], np.invert,
    symbol="~")
logical_not = row("logical_not", 1, ufunc_impl("logical_not"), "(!{0})", lambda i, o, gz: [None],
    np.logical_not)
# (``real`` is a row of ``ops.base``: ``match_gradient_dtype`` needs it.)
# d imag(z) = Re(-1j * dz): the cotangent times -1j (zero for a real input).
imag = row("imag", 1, lambda xp, x: xp.imag(x), "imag({0})", lambda i, o, gz: [gz * -1j])
# What np.angle computes, written with functions NumPy and CuPy share.
angle = row("angle", 1, lambda xp, x: xp.arctan2(xp.imag(x), xp.real(x)), None,
    lambda i, o, gz: [angle_grad(i[0], gz)])
conj = row("conj", 1, ufunc_impl("conjugate"), "conj({0})", lambda i, o, gz: [conj(gz)],
    np.conjugate)

def _times(gz, v):
    """``gz * v``, or ``v`` itself where ``gz`` is a scalar constant 1 of
    ``v``'s dtype (the seed of a scalar cost, passed unchanged down its sums):
    the product would be ``v`` exactly, only as one more node for the compile
    to fold (4000 of them in the gradient of a 4000-term sum of scaled terms)."""
    if (isinstance(gz, TensorConstant) and gz.ndim == 0 and not gz.weak
            and gz.dtype == v.dtype and not getattr(v, "weak", False)
            and gz.data == 1):
        return v
    return gz * v


# (x, y), out, gz -> [dx, dy]
add = row("add", 2, ufunc_impl("add"), "({0} + {1})",
    lambda i, o, gz: [gz, gz], np.add, symbol="+",
    commutative=True, associative=True, identity=0, positive_if_inputs=True,
    finite_if_inputs=True)
sub = row("sub", 2, ufunc_impl("subtract"), "({0} - {1})",
    lambda i, o, gz: [gz, neg(gz)], np.subtract, symbol="-",
    inverse_of="add", finite_if_inputs=True)
mul = row("mul", 2, ufunc_impl("multiply"), "({0} * {1})",
    lambda i, o, gz: [_times(gz, i[1]), _times(gz, i[0])], np.multiply, symbol="*",
    commutative=True, associative=True, identity=1, positive_if_inputs=True,
    finite_if_inputs=True)
true_div = row("true_div", 2, ufunc_impl("true_divide"), "({0} / {1})",
    lambda i, o, gz: [gz / i[1], neg(gz * o / i[1])], np.true_divide, symbol="/",
    inverse_of="mul", positive_if_inputs=True)
floor_div = row("floor_div", 2, ufunc_impl("floor_divide"), "tg_floor_div({0}, {1})",
    lambda i, o, gz: [ZERO, ZERO], np.floor_divide, symbol="//")
mod = row("mod", 2, ufunc_impl("remainder"), "tg_mod({0}, {1})",
    lambda i, o, gz: [gz, neg(gz * floor_div(i[0], i[1]))], np.remainder, symbol="%")
pow = row("pow", 2, ufunc_impl("power"), "pow({0}, {1})",
    lambda i, o, gz: [pow_grad_base(i, gz), None if isinstance(i[1], TensorConstant)
                      else pow_grad_exponent(i, o, gz)],
    np.power, symbol="**")
arctan2 = row("arctan2", 2, ufunc_impl("arctan2"), "atan2({0}, {1})",
    lambda i, o, gz: [gz * i[1] / (sqr(i[0]) + sqr(i[1])),
                      neg(gz * i[0] / (sqr(i[0]) + sqr(i[1])))], np.arctan2)
maximum = row("maximum", 2, ufunc_impl("maximum"), "tg_maximum({0}, {1})",
    lambda i, o, gz: [gz * _mask(ge(i[0], i[1]), gz), gz * _mask(lt(i[0], i[1]), gz)],
    np.maximum, finite_if_inputs=True)
minimum = row("minimum", 2, ufunc_impl("minimum"), "tg_minimum({0}, {1})",
    lambda i, o, gz: [gz * _mask(le(i[0], i[1]), gz), gz * _mask(gt(i[0], i[1]), gz)],
    np.minimum, finite_if_inputs=True)

# fmax/fmin ignore NaN: the gradient goes to the input selected (the non-NaN one).
fmax = row("fmax", 2, ufunc_impl("fmax"), "fmax({0}, {1})",
    lambda i, o, gz: _select_grad(logical_or(ge(i[0], i[1]), isnan(i[1])), gz), np.fmax,
    commutative=True, associative=True, positive_if_inputs=True, finite_if_inputs=True)
fmin = row("fmin", 2, ufunc_impl("fmin"), "fmin({0}, {1})",
    lambda i, o, gz: _select_grad(logical_or(le(i[0], i[1]), isnan(i[1])), gz), np.fmin,
    commutative=True, associative=True, positive_if_inputs=True, finite_if_inputs=True)
hypot = row("hypot", 2, ufunc_impl("hypot"), "hypot({0}, {1})",
    lambda i, o, gz: [gz * hypot_grad(i[0], o), gz * hypot_grad(i[1], o)], np.hypot,
    commutative=True, positive_if_inputs=True, finite_if_inputs=True)
# d logaddexp(x, y)/dx = exp(x - out) = sigmoid(x - y): in (0, 1) for any
# finite inputs (exp(x - out) would round to 1, not 1/2, at x = y = 1e300).
logaddexp = row("logaddexp", 2, ufunc_impl("logaddexp"), "tg_logaddexp({0}, {1})",
    lambda i, o, gz: [gz * sigmoid(i[0] - i[1]), gz * sigmoid(i[1] - i[0])], np.logaddexp,
    commutative=True, positive_if_inputs=True, finite_if_inputs=True)
logaddexp2 = row("logaddexp2", 2, ufunc_impl("logaddexp2"), "tg_logaddexp2({0}, {1})",
    lambda i, o, gz: [gz * sigmoid((i[0] - i[1]) * math.log(2.0)),
                      gz * sigmoid((i[1] - i[0]) * math.log(2.0))], np.logaddexp2,
    commutative=True, positive_if_inputs=True, finite_if_inputs=True)


def _no_grad_row(name, ufunc_name, c_op, **facts):
    """A binary row without a gradient (comparisons, bitwise and logical)."""
    return row(name, 2, ufunc_impl(ufunc_name), "({0} %s {1})" % c_op,
               lambda i, o, gz: [None, None], getattr(np, ufunc_name), **facts)


eq = _no_grad_row("eq", "equal", "==", commutative=True, symbol="==")
neq = _no_grad_row("neq", "not_equal", "!=", commutative=True, symbol="!=")
lt = _no_grad_row("lt", "less", "<", symbol="<")
le = _no_grad_row("le", "less_equal", "<=", symbol="<=")
gt = _no_grad_row("gt", "greater", ">", symbol=">")
ge = _no_grad_row("ge", "greater_equal", ">=", symbol=">=")
and_ = _no_grad_row("and_", "bitwise_and", "&", commutative=True, associative=True, symbol="&")
or_ = _no_grad_row("or_", "bitwise_or", "|", commutative=True, associative=True, symbol="|")
xor = _no_grad_row("xor", "bitwise_xor", "^", commutative=True, associative=True, symbol="^")
logical_and = _no_grad_row("logical_and", "logical_and", "&&", commutative=True, associative=True)
logical_or = _no_grad_row("logical_or", "logical_or", "||", commutative=True, associative=True)
logical_xor = row("logical_xor", 2, ufunc_impl("logical_xor"), "(bool({0}) != bool({1}))",
    lambda i, o, gz: [None, None], np.logical_xor, commutative=True, associative=True)

# (cond, a, b) and (x, lo, hi)
switch = row("switch", 3, lambda xp, c, a, b: xp.where(c, a, b), "({0} ? {1} : {2})",
    lambda i, o, gz: [None, switch(i[0], gz, 0), switch(i[0], 0, gz)], finite_if_inputs=True)
clip_ = row("clip_", 3, lambda xp, x, lo, hi: xp.minimum(xp.maximum(x, lo), hi),
    "tg_minimum(tg_maximum({0}, {1}), {2})",
    lambda i, o, gz: [gz * _mask(logical_and(ge(i[0], i[1]), le(i[0], i[2])), gz),
                      gz * _mask(lt(i[0], i[1]), gz),
                      gz * _mask(gt(i[0], i[2]), gz)])


# ------------------------------------------------------------ guarded grad rules
# Gradient rules of rows that take more than one expression: the complex
# convention (docs/user-guide.md, "Complex gradients": a cotangent ``g`` of
# ``v`` stands for ``dv -> real(sum(g * dv))``) and guards against ``0 * inf``
# where the derivative is finite: each picks its operands with ``switch`` so
# that a finite derivative comes out finite (JAX's "double where").
def abs_grad(x, out, gz):
    """vjp of ``abs``: ``gz * sign(x)``, or ``gz * conj(z) / |z|`` (0 at 0)."""
    if x.dtype[0] != "c":
        return gz * sign(x)
    # d|z| = Re(conj(z) / |z| * dz); 0 at z = 0 (a subgradient, as sign(0)).
    return gz * true_div(conj(x), switch(eq(out, 0), 1, out))


def angle_grad(x, gz):
    """vjp of ``angle``: ``gz * -1j / z`` (zero for a real input)."""
    if x.dtype[0] != "c":
        return ZERO  # 0 or pi: piecewise constant
    # angle = atan2(y, x): d angle = Re(-1j / z * dz).
    return gz * true_div(-1j, x)


def _select_grad(first, gz):
    """vjps of a row that picks its first input where ``first``, else its second."""
    return [gz * _mask(first, gz), gz * _mask(logical_not(first), gz)]


def hypot_grad(x, out):
    """d hypot(x, y)/dx = x / out, 0 where ``out == 0`` (then x == 0 too)."""
    return true_div(x, switch(eq(out, 0), 1, out))


def sinc_grad(x, out):
    """d sinc(x)/dx = (cos(pi x) - sinc(x)) / x, 0 at 0 (no 0 / 0 there)."""
    zero = eq(x, 0)
    safe = switch(zero, 1, x)
    return switch(zero, 0, (cos(safe * math.pi) - out) / safe)


def pow_grad_base(i, gz):
    """vjp of ``x ** y`` for ``x`` (``i = (x, y)``), finite at ``x = y = 0``."""
    # y * x**(y - 1), with x**1 in place of x**-1 where y == 0: d(x**0)/dx is
    # 0 also at x == 0 (the formula gives 0 * inf there).
    x, y = i
    if isinstance(y, TensorConstant) and y.dtype != "bool":  # (x ** 2: known exponent)
        data = np.asarray(y.data)
        known = np.where(data == 0, 1, data - 1).astype(data.dtype)
        return gz * y * pow(x, TensorConstant(y.type, known, weak=y.weak))
    return gz * y * pow(x, switch(eq(y, 0), 1, y - 1))


def pow_grad_exponent(i, out, gz):
    """vjp of ``x ** y`` for ``y`` (``out = x ** y``), 0 where ``x == 0``."""
    # x**y * log(x), with log(1) where x == 0: 0**y is 0 for every y > 0, so
    # its derivative is 0 (the formula gives 0 * -inf there).
    x = i[0]
    return gz * out * log(switch(eq(x, 0), 1, x))


__all__ = [name for name in ROW_NAMES if name != "clip_"] + [
    "cast", "sum_to", "Elemwise", "ScalarOp", "broadcast_static", "format_shape"]


def ROWS():
    """All table rows (for tests and code generation)."""
    return list(_ROWS)
