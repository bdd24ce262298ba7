"""IEEE semantics of the default rewrites: facts about inf and NaN, guards.

Outside mode ``'fast_math'`` a rewrite must keep what a NaN or inf *input*
gives at the outputs (NumPy's value, NaN positions and inf signs
included); it may replace an *intermediate* overflow or underflow of finite
inputs with the right finite value (what the stability rules are for).

- ``is_finite(var)``: no input value makes ``var`` inf or NaN but by
  overflow. Cancelling ``x - x`` or ``x / x`` needs it (``inf - inf`` is
  NaN, not 0).
- ``nonfinite_guard(frontier, ok)``: where a cancelled value is positive
  for finite inputs (``sigmoid(x) / sigmoid(x) -> 1``, which fixes the
  underflow of ``sigmoid(-800)``), a factor that is NaN where some
  ``frontier`` variable (``x``) is inf or NaN and the naive form would
  have been NaN (``not ok``), else 1. Written with comparisons and
  ``switch`` only (no division: ``p / p`` at an underflowed ``p`` would
  warn where the stable form is quiet).
- ``is_guard`` / ``merge_guards``: guards are 1 or NaN, so they move freely
  through products and sums of the same elements; those of one product
  merge into one.
- ``softmax_as_numpy``: ``exp(x) / sum(exp(x))`` rewritten to ``softmax(x)``
  keeps NumPy's 0 beside a +inf (``[inf, 1] -> [nan, 0]``; the softmax op
  gives NaN for the whole row).
"""
import numpy as np

from tracegrad.rewrite import algebra as al
from tracegrad.rewrite.pattern import const_value
from tracegrad.trace import Constant

# Op keys whose outputs are finite when their inputs are, but for overflow
# (``log``, ``true_div``, ``sqrt``, ``pow``... can make inf or NaN of finite
# values, so they are not here).
FINITE_KEYS = {"add", "sub", "neg", "mul", "sqr", "abs", "exp", "exp2", "expm1",
               "tanh", "sigmoid", "softplus", "sin", "cos", "arctan", "sinh", "cosh",
               "maximum", "minimum", "cast", "sign", "floor", "ceil", "trunc", "rint",
               "switch"}


def T():
    import tracegrad.tensor as T
    return T


def is_finite(var):
    """``var`` is finite whatever the inputs' values, except where an
    intermediate result overflows (``exp(800) - exp(800)``: replacing that
    overflow with the right value is what rewrites may do). True for
    integer and boolean values, finite constants, and ops of ``FINITE_KEYS``
    or ``algebra.SELECTIONS`` over such values; a float input may be inf or
    NaN."""
    stack = [var]
    seen = 0
    while stack:
        v = stack.pop()
        seen += 1
        if seen > 32:
            return False
        if v.type.dtype[0] in "biu":  # (no inf nor NaN in these dtypes)
            continue
        if isinstance(v, Constant):
            data = np.asarray(v.data)
            if data.dtype.kind not in "biufc" or not bool(np.all(np.isfinite(data))):
                return False
            continue
        key = al.key_of(v)
        if key in FINITE_KEYS:
            stack.extend(v.owner.inputs)
        elif key in al.SELECTIONS:
            stack.append(v.owner.inputs[0])
        else:
            return False
    return True


def positive_frontier(var):
    """The variables ``algebra.is_positive(var)`` rests on: the inputs of
    its positive ops (``x`` of ``exp(x)``), each of ``var``'s shape or
    broadcasting to it (the walk goes through elementwise ops only). ``var``
    is positive wherever they are finite. ``None`` when there are none to
    name (a selection was walked through, or ``var`` is not positive)."""
    if not al.is_positive(var):
        return None
    frontier, stack = [], [var]
    while stack:
        v = stack.pop()
        if isinstance(v, Constant):
            continue
        key = al.key_of(v)
        if key in al.POSITIVE_IF_INPUTS:
            stack.extend(v.owner.inputs)
        elif key in al.POSITIVE_KEYS and v.owner.inputs[0].type.ndim <= var.type.ndim:
            frontier.extend(v.owner.inputs)
        else:
            return None
    return list(dict.fromkeys(frontier))


def nonfinite_guard(frontier, ok, dtype):
    """``switch(some f of frontier is inf or NaN and not ok, NaN, 1)``, or
    ``None`` when ``is_finite`` proves every ``f`` finite. ``dtype``: the
    guard's.

    ``ok`` (a boolean variable) says where the naive form gives a number
    even so: for a cancelled ``p / p``, ``0 < p < inf``
    (``cancel_ok(p)``)."""
    T_ = T()
    # (isinf(-x) is isinf(x): one condition for both, so guards merge)
    frontier = [f.owner.inputs[0] if al.key_of(f) == "neg" else f for f in frontier]
    bad = [T_.or_(T_.isinf(f), T_.isnan(f))
           for f in dict.fromkeys(frontier) if not is_finite(f)]
    if not bad:
        return None
    cond = bad[0]
    for b in bad[1:]:
        cond = T_.or_(cond, b)
    return _guard(T_.and_(cond, T_.invert(ok)), dtype)


def _guard(cond, dtype):
    return T().switch(cond, al.make_constant(np.nan, dtype), al.make_constant(1, dtype))


def cancel_ok(p):
    """Where ``p / p`` is 1 in IEEE arithmetic (``p`` positive or NaN):
    ``0 < p < inf``."""
    T_ = T()
    return T_.and_(T_.gt(p, al.make_constant(0, p.type.dtype)),
                   T_.lt(p, al.make_constant(np.inf, p.type.dtype)))


def guard_for_cancel(p, frontier):
    """The guard of a cancelled ``p / p`` (see ``nonfinite_guard``)."""
    return nonfinite_guard(frontier, cancel_ok(p), p.type.dtype)


def is_guard(var):
    """True when ``var`` is ``switch(cond, NaN, 1)``: a factor that is 1 or
    NaN, so it may move anywhere in a product or a sum of its elements."""
    if al.key_of(var) != "switch":
        return False
    _, nan, one = var.owner.inputs
    return const_value(one) == 1 and isinstance(nan, Constant) \
        and np.asarray(nan.data).size == 1 and bool(np.isnan(nan.data).all())


def _or_terms(cond):
    """The operands of the ``or_`` tree ``cond`` (merged guards' conditions)."""
    out, stack = [], [cond]
    while stack:
        c = stack.pop()
        if al.key_of(c) == "or_" and al.key_of(c.owner.inputs[0]) != "isinf":
            stack.extend(reversed(c.owner.inputs))
        else:
            out.append(c)
    return out


def merge_guards(factors):
    """``factors`` with their guards merged into one (NaN where any is; a
    guard is 1 or NaN, so ``g * g`` is ``g``), or ``None`` when there are
    fewer than two."""
    guards = list(dict.fromkeys(v for v in factors if is_guard(v)))
    if len(guards) < 2 and len(guards) == sum(1 for v in factors if is_guard(v)):
        return None
    T_ = T()
    conds = list(dict.fromkeys(c for g in guards for c in _or_terms(g.owner.inputs[0])))
    cond = conds[0]
    for c in conds[1:]:
        cond = T_.or_(cond, c)
    merged = _guard(cond, guards[0].type.dtype) if len(conds) > 1 else guards[0]
    return [v for v in factors if not is_guard(v)] + [merged]


def softmax_as_numpy(sm):
    """``sm = softmax(x, axes)`` giving what ``exp(x) / sum(exp(x), axes)``
    gives for a +inf in ``x``: 0 at the entries below +inf of a lane whose
    max is +inf (and NaN-free), ``sm`` elsewhere. ``sm`` itself where
    ``is_finite`` proves ``x`` finite."""
    x = sm.owner.inputs[0]
    if is_finite(x):
        return sm
    T_ = T()
    dtype = sm.type.dtype
    inf = al.make_constant(np.inf, x.type.dtype)
    lane_inf = T_.eq(T_.max(x, axis=sm.owner.op.axes, keepdims=True), inf)
    return T_.switch(T_.and_(lane_inf, T_.lt(x, inf)), al.make_constant(0, dtype), sm)


def softmax_under(var):
    """``(rebuild, sm)`` when ``var`` is ``softmax_as_numpy(sm)``: ``rebuild(v)``
    puts ``v`` in ``sm``'s place (keeping the switch), else ``None``."""
    node = var.owner
    if al.key_of(var) != "switch" or const_value(node.inputs[1]) != 0:
        return None
    cond, zero, sm = node.inputs
    op = node.op
    return (lambda v, fill=zero: op(cond, fill, v)), sm
