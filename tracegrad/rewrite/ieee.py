"""IEEE semantics of the default rewrites: facts about inf and NaN, guards.

Outside mode ``'fast_math'`` a rewrite must keep what a NaN or inf *input*
gives at the outputs (NumPy's value, NaN positions and inf signs
included); it may replace an *intermediate* overflow or underflow of finite
inputs with the right finite value (what the stability rules are for).

- ``is_finite(var)``: no input value makes ``var`` inf or NaN but by
  overflow. Cancelling ``x - x`` or ``x / x`` needs it (``inf - inf`` is
  NaN, not 0).
- ``cancel_guard(p, positive_nodes(p))``: where a cancelled value is
  positive for finite inputs (``sigmoid(x) / sigmoid(x) -> 1``, which fixes
  the underflow of ``sigmoid(-800)``), a factor that is NaN where ``x`` is
  inf or NaN and NumPy's ``p / p`` is NaN (``x = -inf`` for a sigmoid),
  else 1 (``guard_where``).
- ``is_guard`` / ``merge_guards``: guards are 1 or NaN, so they move freely
  through products and sums of the same elements; those of one product
  merge into one.
- ``softmax_as_numpy``: ``exp(x) / sum(exp(x))`` rewritten to ``softmax(x)``
  keeps NumPy's 0 beside a +inf (``[inf, 1] -> [nan, 0]``; the softmax op
  gives NaN for the whole row).
"""
import numpy as np

from tracegrad.ops import api as _ops
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite.pattern import const_value
from tracegrad.trace import Constant



def is_finite(var):
    """``var`` is finite whatever the inputs' values, except where an
    intermediate result overflows (``exp(800) - exp(800)``: replacing that
    overflow with the right value is what rewrites may do). True for
    integer and boolean values, finite constants, and ops declared
    ``finite_if_inputs`` (``exp``, ``add``...; not ``log``, ``true_div``,
    ``sqrt``, ``pow``, which make inf or NaN of finite values) or
    ``selects`` over such values; a float input may be inf or NaN."""
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
        node = v.owner
        if node is None:
            return False
        if node.op.finite_if_inputs:
            stack.extend(node.inputs)
        elif node.op.selects:
            stack.append(node.inputs[0])
        else:
            return False
    return True


def positive_nodes(var):
    """The outputs of positive ops (``exp(x)``, ``sigmoid(x)``...) that
    ``algebra.is_positive(var)`` rests on, each of ``var``'s shape or
    broadcasting to it (the walk goes through elementwise ops only); ``var``
    is positive wherever their inputs are finite. ``None`` when ``var`` is
    not positive or a selection was walked through."""
    if not al.is_positive(var):
        return None
    found, stack = [], [var]
    while stack:
        v = stack.pop()
        if isinstance(v, Constant):
            continue
        node = v.owner
        if node is None:
            return None
        if node.op.positive_if_inputs:
            stack.extend(node.inputs)
        elif node.op.positive and node.inputs[0].type.ndim <= var.type.ndim:
            found.append(v)
        else:
            return None
    return list(dict.fromkeys(found))


def _strip_neg(f):
    """``(g, negated)`` with ``f = -g`` or ``f = g``."""
    if al.key_of(f) == "neg":
        return f.owner.inputs[0], True
    return f, False


def _inf(var):
    return al.make_constant(np.inf, var.type.dtype)


def _not_finite(f):
    """``isinf(f) | isnan(f)`` (of ``g`` for ``f = -g``: one node for both)."""
    g, _ = _strip_neg(f)
    return _ops.or_(_ops.isinf(g), _ops.isnan(g))


def _nan_of_ratio(v):
    """Where ``v / v`` is NaN though ``v``'s input ``f`` might be finite
    only by overflow: ``f`` inf or NaN and ``v`` 0, inf or NaN."""
    f = v.owner.inputs[0]
    key = al.key_of(v)
    if key == "sigmoid":  # 0 at -inf, 1 at +inf
        g, negated = _strip_neg(f)
        bound = _ops.lt(g, _inf(g)) if negated else \
            _ops.gt(g, al.make_constant(-np.inf, g.type.dtype))
        return _ops.logical_not(bound)
    if v.owner.op.zero_or_inf_at_inf:  # (so ``p / p`` is NaN there)
        return _not_finite(f)
    ok = _ops.and_(_ops.gt(v, al.make_constant(0, v.type.dtype)), _ops.lt(v, _inf(v)))
    # (softmax: NaN over a whole lane holding +inf or NaN, at its finite
    # entries too; a NaN of finite inputs it never gives)
    return _ops.or_(_ops.isnan(v), _ops.and_(_not_finite(f), _ops.logical_not(ok)))


def cancel_guard(p, nodes):
    """The guard of a cancelled ``p / p`` (``nodes``: ``positive_nodes(p)``):
    NaN where an input of ``nodes`` is inf or NaN and NumPy's ``p / p``
    is NaN, 1 elsewhere; ``None`` when ``is_finite`` proves those inputs
    finite. Comparisons and ``switch`` only: no division, whose 0 / 0 at an
    underflowed ``p`` would warn where the stable form is quiet."""
    conds = [_nan_of_ratio(v) for v in nodes if not is_finite(v.owner.inputs[0])]
    if not conds:
        return None
    cond = conds[0]
    for c in conds[1:]:
        cond = _ops.or_(cond, c)
    return guard_where(cond, p.type.dtype)


def guard_where(cond, dtype):
    """``switch(cond, NaN, 1)`` of ``dtype``: a guard."""
    return _ops.switch(cond, al.make_constant(np.nan, dtype), al.make_constant(1, dtype))


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


def covers_inf(guards, u):
    """True when one of ``guards`` is NaN wherever ``u`` (or ``-u``) is
    inf or NaN (``cancel_guard`` of a sigmoid of ``u`` puts both bounds)."""
    g, _ = _strip_neg(u)
    found = set()
    for c in (c for guard in guards for c in _or_terms(guard.owner.inputs[0])):
        key = al.key_of(c)
        if key == "or_" and [al.key_of(v) for v in c.owner.inputs] == ["isinf", "isnan"] \
                and all(v.owner.inputs[0] is g for v in c.owner.inputs):
            return True
        inner = c.owner.inputs[0] if key == "logical_not" else None
        if inner is not None and al.key_of(inner) in ("lt", "gt") \
                and inner.owner.inputs[0] is g and \
                const_value(inner.owner.inputs[1]) in (np.inf, -np.inf):
            found.add(al.key_of(inner))
    return found == {"lt", "gt"}


def merge_guards(factors):
    """``factors`` with their guards merged into one (NaN where any is; a
    guard is 1 or NaN, so ``g * g`` is ``g``), or ``None`` when there are
    fewer than two."""
    found = [v for v in factors if is_guard(v)]
    guards = list(dict.fromkeys(found))
    if len(guards) < 2 and len(guards) == len(found):
        return None
    conds = list(dict.fromkeys(c for g in guards for c in _or_terms(g.owner.inputs[0])))
    cond = conds[0]
    for c in conds[1:]:
        cond = _ops.or_(cond, c)
    merged = guard_where(cond, guards[0].type.dtype) if len(conds) > 1 else guards[0]
    return [v for v in factors if not is_guard(v)] + [merged]


def softmax_as_numpy(sm):
    """``sm = softmax(x, axes)`` giving what ``exp(x) / sum(exp(x), axes)``
    gives for a +inf in ``x``: 0 at the entries below +inf of a lane whose
    max is +inf (and NaN-free), ``sm`` elsewhere. ``sm`` itself where
    ``is_finite`` proves ``x`` finite."""
    x = sm.owner.inputs[0]
    if is_finite(x):
        return sm
    dtype = sm.type.dtype
    inf = al.make_constant(np.inf, x.type.dtype)
    lane_inf = _ops.eq(_ops.max(x, axis=sm.owner.op.axes, keepdims=True), inf)
    return _ops.switch(_ops.and_(lane_inf, _ops.lt(x, inf)), al.make_constant(0, dtype), sm)


def softmax_under(var):
    """``(rebuild, sm)`` when ``var`` is ``softmax_as_numpy(sm)``: ``rebuild(v)``
    puts ``v`` in ``sm``'s place (keeping the switch), else ``None``."""
    node = var.owner
    if al.key_of(var) != "switch" or const_value(node.inputs[1]) != 0:
        return None
    cond, zero, sm = node.inputs
    op = node.op
    return (lambda v, fill=zero: op(cond, fill, v)), sm


def scatter_guards(a, select):
    """The guards of ``a * scatter(g / select(a)) -> scatter(g)`` (the
    gradient of an indexed ``log(softmax(x))``), as ``(target, rest)``
    conditions: NumPy's ``a[t] * (g / a[t])`` is NaN at a target where
    ``a[t]`` is 0, inf or NaN, and ``a[j] * 0`` elsewhere where ``a[j]`` is
    inf or NaN. The right value stays where only an overflow or underflow of
    finite inputs made them so. ``target`` is built from the selected inputs
    (one value per selected entry: a row's, not the whole array's),
    ``rest`` over ``a``; each ``None`` when not needed. ``False`` when ``a``
    cannot be guarded (a selection or broadcast inside it: no rewrite)."""
    nodes = positive_nodes(a)
    if nodes is None:
        return False
    inputs = [v.owner.inputs[0] for v in nodes if not is_finite(v.owner.inputs[0])]
    if not inputs:
        return None, None
    if nodes == [a]:
        return _one_node_guards(a, select)
    if any(f.type.ndim != a.type.ndim or f.type.broadcastable != a.type.broadcastable
           for f in inputs):
        return False
    zero = al.make_constant(0, a.type.dtype)
    target = _ops.eq(select(a), zero)
    picked = _any(_not_finite(select(f)) for f in inputs)
    # sigmoid and softmax are never inf; NaN only of a non-finite input
    rest = _ops.isnan(a)
    if not all(_bounded(v) for v in nodes):
        rest = _ops.or_(rest, _ops.and_(_ops.isinf(a), _any(_not_finite(f) for f in inputs)))
    return _ops.and_(target, picked), rest


def _one_node_guards(a, select):
    """``scatter_guards`` of ``a = exp(f)``, ``softmax(f)``...: from ``f``
    (no overflow warning of ``exp(800)``, which the rewrite spares): 0 at
    ``f = -inf`` (a lane of ``-inf`` only is NaN: ``rest``), inf at ``+inf``
    for the unbounded ones, NaN of NaN."""
    f = a.owner.inputs[0]
    key = al.key_of(a)
    if key == "cosh":  # (never 0)
        return None, _not_finite(f)
    target = _ops.eq(select(f), al.make_constant(-np.inf, f.type.dtype))
    if _bounded(a):
        return target, _ops.isnan(a if key != "sigmoid" else f)
    return target, _ops.or_(_ops.isnan(f), _ops.eq(f, _inf(f)))


def _bounded(v):
    return v.owner.op.bounded


def _any(conds):
    conds = list(conds)
    out = conds[0]
    for c in conds[1:]:
        out = _ops.or_(out, c)
    return out
