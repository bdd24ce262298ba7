"""Elementwise ops: one table row per pointwise function.

Each row (a ``ScalarOp``) holds everything about one pointwise function:

- ``impl(xp, *arrays)``: the array implementation (a NumPy/CuPy ufunc mostly);
- ``c``: a C/CUDA expression template over ``{0}``, ``{1}``... used by the
  fusion code generator (helpers it calls live in ``PREAMBLE``); ``None``
  when CUDA has no such function (the node is then not fused on the GPU);
- ``grad(inputs, output, gz)``: the symbolic vector-Jacobian product per
  input, before broadcasting is undone (``None`` = no gradient);
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
``Elemwise(row)`` is the graph op; ``_elemwise_function`` makes the public
function (``T.exp``...) from the row.
"""
import math
from functools import lru_cache, partial

import numpy as np

from tracegrad.ops import special_math as sm
from tracegrad.ops.grad_rules import (abs_grad, angle_grad, match_gradient_dtype,
                                      pow_grad_base, pow_grad_exponent)
from tracegrad.tensor.dispatch import register_ufunc
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import (TensorConstant, as_tensor_variable,
                                       resolve_weak)
from tracegrad.trace import Apply, Op

__all__ = []


def _T():
    import tracegrad.tensor as T
    return T


# The facts a row may declare (their meaning: ``trace.Op``), with defaults.
ROW_FACTS = ("positive", "positive_if_inputs", "finite_if_inputs", "zero_or_inf_at_inf",
             "bounded", "commutative", "associative", "identity", "inverse_of", "negation")


class ScalarOp:
    """One pointwise function (a row of the table)."""

    positive = positive_if_inputs = finite_if_inputs = zero_or_inf_at_inf = False
    bounded = commutative = associative = negation = False
    identity = inverse_of = None

    def __init__(self, name, nin, impl, c, grad=None, ufunc=None, params=(), expand=None,
                 symbol=None, **facts):
        self.name = name
        self.nin = nin
        self.impl = impl
        self.c = c
        self.grad = grad
        self.ufunc = ufunc
        self.params = params
        self.expand = expand
        self.symbol = symbol
        for fact, value in facts.items():
            if fact not in ROW_FACTS:
                raise TypeError(f"row {name}: unknown fact {fact!r}")
            setattr(self, fact, value)
        # (name and params never change: the hash is computed once; rows
        # are hashed per node by merging, rule lookup and lowering. Pickles
        # do not carry it: ``__reduce__`` finds the row by name.)
        self._hash = hash((name, params))

    def __eq__(self, other):
        return (isinstance(other, ScalarOp) and self.name == other.name
                and self.params == other.params)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return self.name

    @property
    def key(self):
        """The name rewrite rules know the row by (all casts: ``'cast'``)."""
        return self.name

    def output_dtype(self, dtypes):
        return _output_dtype(self, tuple(dtypes))

    def __reduce__(self):
        # Rows hold lambdas; pickle them by name and find the row on load.
        return (row_by_name, (self.name,))


def row_by_name(name):
    """The table row called ``name``."""
    for scalar in _ROWS:
        if scalar.name == name:
            return scalar
    raise KeyError(f"no elementwise row named {name!r}")


@lru_cache(maxsize=4096)
def _output_dtype(row, dtypes):
    dummies = [np.zeros(0, dtype=d) for d in dtypes]
    return np.asarray(row.impl(np, *dummies)).dtype.name


def format_shape(shape):
    """``(3, ?)`` for a static shape (``?`` = unknown)."""
    inner = ", ".join("?" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def broadcast_static(shapes, opname="op"):
    """NumPy broadcasting of static shapes; raise when known lengths clash."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        dims = [s[axis] for s in shapes if len(s) >= -axis]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            listed = " and ".join(format_shape(s) for s in shapes)
            raise ValueError(
                f"{opname}: shapes {listed} cannot be broadcast together "
                f"(axis {axis + ndim} has lengths {sorted(known)})")
        if known:
            out.append(known.pop())
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(None)
    return tuple(out)


class Elemwise(Op):
    """Apply a ``ScalarOp`` pointwise with NumPy broadcasting."""

    __props__ = ("scalar_op",)

    def __init__(self, scalar_op):
        self.scalar_op = scalar_op

    @property
    def name(self):
        return self.scalar_op.name

    def make_node(self, *inputs):
        row = self.scalar_op
        if len(inputs) != row.nin:
            raise TypeError(f"{row.name} takes {row.nin} inputs, got {len(inputs)}")
        inputs = resolve_weak([as_tensor_variable(i) for i in inputs], row.ufunc)
        dtype = row.output_dtype([i.dtype for i in inputs])
        shape = broadcast_static([i.type.shape for i in inputs], row.name)
        return Apply(self, inputs, [TensorType(dtype, shape)()])

    def impl(self, xp, *arrays):
        return self.scalar_op.impl(xp, *arrays)

    # The facts (``trace.Op``) are the row's.
    positive = property(lambda self: self.scalar_op.positive)
    positive_if_inputs = property(lambda self: self.scalar_op.positive_if_inputs)
    finite_if_inputs = property(lambda self: self.scalar_op.finite_if_inputs)
    zero_or_inf_at_inf = property(lambda self: self.scalar_op.zero_or_inf_at_inf)
    bounded = property(lambda self: self.scalar_op.bounded)
    commutative = property(lambda self: self.scalar_op.commutative)
    associative = property(lambda self: self.scalar_op.associative)
    identity = property(lambda self: self.scalar_op.identity)
    inverse_of = property(lambda self: self.scalar_op.inverse_of)
    negation = property(lambda self: self.scalar_op.negation)

    def vjp(self, node, output_grads):
        row = self.scalar_op
        if row.grad is None:
            raise NotImplementedError(f"tracegrad has no gradient rule for op {row.name}")
        raw = row.grad(node.inputs, node.outputs[0], output_grads[0])
        return [None if g is None or not is_differentiable(x) else
                _match_dtype(sum_to(g, x), x) for x, g in zip(node.inputs, raw)]

    def inplace_version(self, i):
        """The op writing its result into input ``i``'s buffer
        (``InplaceElemwise``), or ``None`` for rows that are not plain ufuncs
        (no ``out=``). Used by the in-place planner (``rewrite/inplace.py``)."""
        if _plain_ufunc_name(self.scalar_op) is None or not 0 <= i < self.scalar_op.nin:
            return None
        return InplaceElemwise(self.scalar_op, i)


# ------------------------------------------------------------ in-place variant
def _plain_ufunc_name(row):
    """The name of the ufunc (``xp.<name>``, NumPy and CuPy) that *is* the
    row's implementation, or ``None``."""
    uf = getattr(row, "ufunc", None)
    name = getattr(row.impl, "__name__", None)
    return name if isinstance(uf, np.ufunc) and getattr(np, name or "_", None) is uf else None


def fits_in_place(target, arrays, extra_shapes=()):
    """Whether a pointwise result over ``arrays`` (and constants of
    ``extra_shapes``) can be written into ``target``, one of ``arrays``: a
    writeable array into whose shape every operand broadcasts. (Dtypes are
    checked when planning.)"""
    if not getattr(getattr(target, "flags", None), "writeable", True):
        return False
    shape = target.shape
    for a in arrays:
        if a.shape != shape and not broadcasts_into(a.shape, shape):
            return False
    return all(broadcasts_into(s, shape) for s in extra_shapes)


def broadcasts_into(small, shape):
    """Whether an array of shape ``small`` broadcasts to exactly ``shape``."""
    lead = len(shape) - len(small)
    return lead >= 0 and all(d == t or d == 1 for d, t in zip(small, shape[lead:]))


class InplaceElemwise(Elemwise):
    """``Elemwise`` writing its result into input ``destroyed``'s buffer
    (``out=``; ``destroy_map``). When that array does not fit the result
    (broadcasting, read-only) it computes a new array instead."""

    __props__ = ("scalar_op", "destroyed")

    def __init__(self, scalar_op, destroyed):
        Elemwise.__init__(self, scalar_op)
        self.destroyed = destroyed
        self.destroy_map = {0: [destroyed]}
        self._ufunc_name = _plain_ufunc_name(scalar_op)
        if self._ufunc_name is None:
            raise ValueError(f"{scalar_op.name} is not a plain ufunc: no in-place version")

    @property
    def name(self):
        return f"{self.scalar_op.name}{{inplace}}"

    def make_node(self, *inputs):
        node = Elemwise.make_node(self, *inputs)
        target, out = node.inputs[self.destroyed].type, node.outputs[0].type
        if target.dtype != out.dtype or target.ndim != out.ndim:
            raise TypeError(f"{self.name}: input {self.destroyed} ({target}) cannot "
                            f"hold the result ({out})")
        return node

    def impl(self, xp, *arrays):
        return self.impl_for(xp)(*arrays)

    def impl_for(self, xp):
        ufunc = getattr(xp, self._ufunc_name)
        plain = self.scalar_op.impl
        k = self.destroyed

        def run(*arrays):
            target = arrays[k]
            if fits_in_place(target, arrays):
                return ufunc(*arrays, out=target)
            return plain(xp, *arrays)

        if xp is not np:
            return run

        def run_numpy(*arrays):
            # The common case first: every operand has the result's shape.
            target = arrays[k]
            shape = target.shape
            for a in arrays:
                if a.shape != shape:
                    return run(*arrays)
            if target.flags.writeable:
                return ufunc(*arrays, out=target)
            return plain(xp, *arrays)
        return run_numpy

    def inplace_version(self, i):
        return None


def is_differentiable(var):
    """Gradients flow only into non-constant float/complex variables."""
    return var.dtype[0] in "fc" and not isinstance(var, TensorConstant)


def _match_dtype(g, x):
    return match_gradient_dtype(g, x)


class SumTo(Op):
    """Sum ``g`` down to the shape of ``like`` (undo NumPy broadcasting).

    Returns ``g`` itself when the shapes already agree at run time.
    """

    view_map = {0: [0]}

    def make_node(self, g, like):
        return Apply(self, [g, like], [TensorType(g.dtype, like.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[1])

    def impl(self, xp, g, like):
        target = like.shape
        if g.shape == target:
            return g
        lead = g.ndim - len(target)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(target) if s == 1 and g.shape[lead + i] != 1)
        if not axes:
            return g.reshape(target)
        if xp is np:
            # ``add.reduce`` skips ``ndarray.sum``'s Python layer (a gradient
            # step sums a bias gradient every call).
            return np.add.reduce(g, axis=axes, keepdims=True).reshape(target)
        return g.sum(axis=axes).reshape(target)

    def vjp(self, node, output_grads):
        g, _ = node.inputs
        return [_T().broadcast_to(output_grads[0], _T().shape(g)), None]


_sum_to = SumTo()


def sum_to(g, like):
    """``g`` summed over the axes along which ``like`` was broadcast."""
    shape = like.type.shape
    if g.type.shape == shape and None not in shape:
        return g
    return _sum_to(g, like)


# ----------------------------------------------------------------- the table
PREAMBLE = r"""
template <typename T> __device__ __forceinline__ T tg_sigmoid(T x) {
    return x >= T(0) ? T(1) / (T(1) + exp(-x)) : exp(x) / (T(1) + exp(x)); }
template <typename T> __device__ __forceinline__ T tg_softplus(T x) {
    return x > T(0) ? x + log1p(exp(-x)) : log1p(exp(x)); }
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
    T r = fmod(a, b); return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? r + b : r; }
""".strip()


def _mask(cond, like):
    return _T().cast(cond, like.dtype)


_ROWS = []


def row(name, nin, impl, c, grad=None, ufunc=None, expand=None, symbol=None, **facts):
    """Add a table row; returns its public function (bound to ``name`` by the
    caller). ``facts``: the row's declarations (``ROW_FACTS``)."""
    scalar = ScalarOp(name, nin, impl, c, grad, ufunc, expand=expand, symbol=symbol, **facts)
    op = Elemwise(scalar)
    _ROWS.append(scalar)

    def fn(*inputs):
        return op(*inputs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` with NumPy broadcasting and promotion."
    fn.op = op
    __all__.append(name)
    if ufunc is not None:
        register_ufunc(ufunc, fn)
    return fn


def ufunc_impl(name):
    """``impl`` calling ``xp.<name>`` (the same ufunc on NumPy and CuPy)."""
    def impl(xp, *args):
        return getattr(xp, name)(*args)
    impl.__name__ = name
    return impl


class _Prims:
    """Rows by name as functions over arrays of one array module."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        scalar = row_by_name(name)
        ufunc = _plain_ufunc_name(scalar)
        fn = getattr(self._xp, ufunc) if ufunc is not None else partial(scalar.impl, self._xp)
        setattr(self, name, fn)  # found once per module and row
        return fn


_PRIMS = {}


def prims(xp):
    """Every row as a function over arrays of ``xp`` (``prims(np).exp(a)``):
    the ``f`` that ``expand`` functions get when run eagerly."""
    found = _PRIMS.get(xp)
    if found is None:
        found = _PRIMS[xp] = _Prims(xp)
    return found


def expanded_impl(expand, fallback):
    """``impl`` running ``expand`` over arrays, or ``fallback(xp, *arrays)``
    for arguments ``expand`` does not take."""
    def impl(xp, *arrays):
        if all(hasattr(a, "dtype") for a in arrays):
            result = expand(prims(xp), *arrays)
            if result is not None:
                return result
        return fallback(xp, *arrays)
    return impl


# Grad rules are lambdas over the public functions of this module (looked up
# when the gradient is built, so rows may refer to rows defined later).
# (x,), out, gz -> [dx]
neg = row("neg", 1, ufunc_impl("negative"), "(-{0})",
    lambda i, o, gz: [neg(gz)], np.negative, symbol="-",
    negation=True, finite_if_inputs=True)
abs = row("abs", 1, ufunc_impl("absolute"), "abs({0})",
    lambda i, o, gz: [abs_grad(i[0], o, gz)], np.absolute, finite_if_inputs=True)
sign = row("sign", 1, ufunc_impl("sign"), "tg_sign({0})",
    lambda i, o, gz: [_T().zeros_like(i[0])], np.sign, finite_if_inputs=True)
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
    lambda i, o, gz: [_T().zeros_like(i[0])], np.floor, finite_if_inputs=True)
ceil = row("ceil", 1, ufunc_impl("ceil"), "ceil({0})",
    lambda i, o, gz: [_T().zeros_like(i[0])], np.ceil, finite_if_inputs=True)
rint = row("rint", 1, ufunc_impl("rint"), "rint({0})",
    lambda i, o, gz: [_T().zeros_like(i[0])], np.rint, finite_if_inputs=True)
trunc = row("trunc", 1, ufunc_impl("trunc"), "trunc({0})",
    lambda i, o, gz: [_T().zeros_like(i[0])], np.trunc, finite_if_inputs=True)
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
tri_gamma = row("tri_gamma", 1, sm.tri_gamma, None)


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
# ``xp.real`` returns its input itself (or a view of it): copy, since
# ``Elemwise`` declares no ``view_map`` (a result must never alias an input).
real = row("real", 1, lambda xp, x: xp.real(x).copy(), "real({0})", lambda i, o, gz: [gz])
# d imag(z) = Re(-1j * dz): the cotangent times -1j (zero for a real input).
imag = row("imag", 1, lambda xp, x: xp.imag(x), "imag({0})", lambda i, o, gz: [gz * -1j])
# What np.angle computes, written with functions NumPy and CuPy share.
angle = row("angle", 1, lambda xp, x: xp.arctan2(xp.imag(x), xp.real(x)), None,
    lambda i, o, gz: [angle_grad(i[0], gz)])
conj = row("conj", 1, ufunc_impl("conjugate"), "conj({0})", lambda i, o, gz: [conj(gz)],
    np.conjugate)

# (x, y), out, gz -> [dx, dy]
add = row("add", 2, ufunc_impl("add"), "({0} + {1})",
    lambda i, o, gz: [gz, gz], np.add, symbol="+",
    commutative=True, associative=True, identity=0, positive_if_inputs=True,
    finite_if_inputs=True)
sub = row("sub", 2, ufunc_impl("subtract"), "({0} - {1})",
    lambda i, o, gz: [gz, neg(gz)], np.subtract, symbol="-",
    inverse_of="add", finite_if_inputs=True)
mul = row("mul", 2, ufunc_impl("multiply"), "({0} * {1})",
    lambda i, o, gz: [gz * i[1], gz * i[0]], np.multiply, symbol="*",
    commutative=True, associative=True, identity=1, positive_if_inputs=True,
    finite_if_inputs=True)
true_div = row("true_div", 2, ufunc_impl("true_divide"), "({0} / {1})",
    lambda i, o, gz: [gz / i[1], neg(gz * o / i[1])], np.true_divide, symbol="/",
    inverse_of="mul", positive_if_inputs=True)
floor_div = row("floor_div", 2, ufunc_impl("floor_divide"), "tg_floor_div({0}, {1})",
    lambda i, o, gz: [_T().zeros_like(i[0]), _T().zeros_like(i[1])], np.floor_divide, symbol="//")
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
__all__.remove("clip_")


class CastRow(ScalarOp):
    """Conversion to ``dtype`` (a row with a parameter)."""

    finite_if_inputs = True
    key = "cast"  # (one rule key for every target dtype)

    def __init__(self, dtype):
        super().__init__(f"cast_{dtype}", 1, self._impl, f"(({_C_TYPES[dtype]}) {{0}})",
                         self._grad, params=(dtype,))
        self.dtype = dtype

    def _impl(self, xp, x):
        return x.astype(self.dtype)

    def __reduce__(self):
        return (CastRow, (self.dtype,))

    def _grad(self, inputs, output, gz):
        return [gz]


_C_TYPES = {"bool": "bool", "int8": "signed char", "int16": "short", "int32": "int",
            "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
            "uint32": "unsigned int", "uint64": "unsigned long long",
            "float16": "float16", "float32": "float", "float64": "double",
            "complex64": "complex<float>", "complex128": "complex<double>"}

_CASTS = {}


def cast(x, dtype):
    """``x`` converted to ``dtype`` (``'floatX'`` allowed); no-op if equal."""
    from tracegrad.tensor.type import canonical_dtype
    x = as_tensor_variable(x)
    dtype = canonical_dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype not in _CASTS:
        _CASTS[dtype] = Elemwise(CastRow(dtype))
    return _CASTS[dtype](x)


__all__ += ["cast", "sum_to", "Elemwise", "ScalarOp", "broadcast_static", "format_shape"]


def ROWS():
    """All table rows (for tests and code generation)."""
    return list(_ROWS)
