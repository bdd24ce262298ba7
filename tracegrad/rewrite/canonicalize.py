"""Canonical algebra: flat sums and products, cancellation, useless ops.

- Sums (``add``/``sub``/``neg`` trees) are flattened into signed terms:
  ``x - x`` cancels where ``x`` is proven finite (``ieee.is_finite``; any
  ``x`` in mode 'fast_math': ``inf - inf`` is NaN), ``neg(neg(x))`` is
  ``x``, constants are added up (``(x + 1) + 2 -> x + 3``, unless they
  overflow), ``+ 0`` disappears.
- Products (``mul``/``true_div``/``neg`` trees) are flattened into factors:
  ``x / x`` cancels only where ``x`` is provably nonzero (``exp``,
  ``sigmoid``, positive constants...) and, outside 'fast_math', finite or
  under a guard that keeps NumPy's NaN where ``x``'s inputs are inf or NaN
  (``ieee.cancel_guard``); constants are multiplied out (unless that
  overflows or underflows), ``* 1`` disappears. A product of a sum with factors that cancel a denominator of
  one of its terms is distributed (``(a / p + b) * p -> a + b * p``): that is
  how the gradients of ``log(sigmoid(x))`` lose their ``1 / sigmoid(x)``.
- ``x ** 2 -> sqr(x)``, ``x ** 1 -> x``, ``x ** 0 -> 1``, ``x ** -1 -> 1 / x``.
- casts to the dtype a variable already has are removed (``shapes`` holds
  the rules about shape ops: ``SumTo``, broadcasts, dimshuffles).

A sum or product is rewritten from its root (the node not itself an operand
of a larger one), and only when the result has fewer nodes or a rule fired,
so rewriting reaches a fixpoint. Other groups hook into the flattened forms
through ``TERM_RULES`` and ``FACTOR_RULES`` (see ``stabilize``). Where
cancelling drops a variable whose shape the result needs, a ``zeros_like``
(``ones_like``) of it keeps the shape.
"""
from collections import namedtuple

import numpy as np

from tracegrad.ops import api as _ops
from tracegrad.ops.elemwise import SumTo as _SumTo
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import ieee
from tracegrad.rewrite.engine import OUTPUT, Abort, Rule, pattern_rule, register
from tracegrad.rewrite.pattern import is_scalar_like
from tracegrad.trace import Constant, Variable

# A signed term with op key ``key`` next to a constant total ``const`` becomes
# ``new_sign * build(term's input)``, the constant being used up.
TermRule = namedtuple("TermRule", "group name const sign key new_sign build")
TERM_RULES = []
# fn(parts, ctx) -> bool: may edit ``parts.num`` / ``parts.den`` in place.
# finds(parts) -> bool (optional): False only where ``fn`` would find nothing
# to do. It is asked before the rule's group is, so that a product the rule
# cannot touch does not depend on the group being active: the engine then
# need not run the product rule on it again in the group's phase.
FactorRule = namedtuple("FactorRule", "group name fn finds", defaults=(None,))
FACTOR_RULES = []



def _is_root(out, ctx, keys):
    """False when ``out`` is part of a larger tree (its only reader is a node
    of ``keys`` and of its dtype, possibly behind ``SumTo`` nodes that sum
    nothing): that tree is simplified from its own root."""
    # (runs on every product and sum node, and again on each recheck: the
    # loop asks ``ctx.clients`` and spells out ``op_key`` inline)
    dtype = out.type.dtype
    clients = ctx.clients
    stack = [out]
    budget = 8
    while stack:
        v = stack.pop()
        readers = clients(v)
        if len(readers) != 1:
            return True
        for node, _ in readers:
            if node == OUTPUT:
                return True
            outputs = node.outputs
            if outputs[0].type.dtype != dtype:
                return True
            op = node.op
            scalar = op.scalar_op
            if (type(op) if scalar is None else scalar.key) in keys:
                continue  # (never a ``SumTo``: keys are row names)
            if not isinstance(op, _SumTo):
                return True
            if node.inputs[0] is v and budget > 0 \
                    and al.same_shape(v, node.inputs[1], al.shape_memo(ctx)):
                budget -= 1
                stack.append(outputs[0])
            else:
                return True
    return False


def _carrier(var, dtype, fill):
    fn = getattr(_ops, "ones_like" if fill == 1 else "zeros_like", None)
    if fn is None:
        raise Abort("shape ops are not available")
    return fn(var, dtype=dtype)


def _carriers(removed, remaining, ndim, dtype, fill, memo):
    """Shape keepers for the dropped variables ``remaining`` does not cover."""
    out = []
    for var in removed:
        if not al.covered(var, remaining + out, ndim, memo):
            root = al.shape_root(var, memo)
            source = root if isinstance(root, Variable) else var
            out.append(_carrier(source, dtype, fill))
    return out


# ------------------------------------------------------------ sums
def _net_terms(terms, may_cancel):
    """Signed terms with ``x`` and ``-x`` cancelled where ``may_cancel(x)``
    (``inf - inf`` is NaN, not 0); the cancelled variables."""
    net, order = {}, []
    for sign, var in terms:
        if var not in net:
            net[var] = 0
            order.append(var)
        net[var] += sign
    kept, removed = [], []
    for var in order:
        count = net[var]
        appearances = sum(1 for _, v in terms if v is var)
        if abs(count) < appearances and not may_cancel(var):
            kept.extend((sign, v) for sign, v in terms if v is var)
            continue
        if abs(count) < appearances:
            removed.append(var)
        kept.extend([(1 if count > 0 else -1, var)] * abs(count))
    return kept, removed


def may_cancel(ctx):
    """The test a value must pass to be cancelled (``x - x``, ``x / x``):
    any value in mode 'fast_math', else a value ``is_finite`` proves finite
    (a NaN or inf input must reach the outputs as NumPy's would)."""
    return (lambda var: True) if ctx.fast_math else ieee.is_finite


def _folding_overflows(total, consts, product=False):
    """True when finite constants add (or multiply) up to inf, or nonzero
    ones multiply down to 0: folding them would change the result for an
    input the original order handles (``x * 1e200 * 1e200`` at ``x =
    1e-300``; ``x * 1e-200 * 1e-200`` at ``x = inf``)."""
    if len(consts) < 2:
        return False
    values = [np.asarray(c.data) for c in consts]
    if not all(bool(np.all(np.isfinite(v))) for v in values):
        return False
    if not bool(np.isfinite(total)):
        return True
    return product and total == 0 and all(bool(np.all(v != 0)) for v in values)


def _unbroadcast(leaves, memo):
    """Indices and sources of the leaves ``broadcast_to(a, shape(y))`` (or
    ``alloc``) whose shape another leaf (one that stays) already has: ``a``
    does as well."""
    current = list(leaves)
    found = []
    for i, v in enumerate(leaves):
        src = al.broadcast_source(v)
        if src is not None and any(j != i and al.same_shape(w, v, memo)
                                   for j, w in enumerate(current)):
            current[i] = src
            found.append((i, src))
    return found


def _keeps_zero_sign(consts, dtype):
    """True when adding ``consts`` turns ``-0.0`` into ``+0.0`` (``x + 0``,
    ``(x + 1.5) - 1.5``: NumPy's is ``0.0`` at ``x = -0.0``), so a zero
    total must stay a term; ``x - 0`` and ``x + -0.0`` are ``x`` exactly."""
    if np.dtype(dtype).kind not in "fc":
        return False
    total = np.array(-0.0, dtype=dtype)
    for sign, c in consts:
        value = np.asarray(c.data).reshape(()).astype(dtype)
        total = total + value if sign > 0 else total - value
    return not np.signbit(np.real(total))


def _sum_readers(node, ctx):
    """``Rule.readers`` of the sum rule: None for a sum that is part of a
    larger one (the rule returns at once), else True."""
    out = node.outputs[0]
    if out.type.dtype == "bool" or not _is_root(out, ctx, al.SUM_KEYS):
        return None
    return True


def simplify_sum(node, ctx):
    """A sum tree rewritten from its root as signed terms (module docstring)."""
    root = _sum_readers(node, ctx)
    ctx.answer(root)
    if root is None:
        return None
    out = node.outputs[0]
    dtype = out.type.dtype
    memo = al.shape_memo(ctx)
    s = al.collect_terms(out, memo, ctx.n_clients)
    terms, consts, fired = _unbroadcast_terms(s, out.type.ndim, memo)
    kept, removed = _net_terms(terms, may_cancel(ctx))
    total = al.Sum(out, terms, consts, s.nops).const_total()
    if total is not None and _folding_overflows(total, [c for _, c in consts]):
        return None
    const_ndim = max((c.type.ndim for _, c in consts), default=0)
    if total is not None and kept and _use_term_rule(kept, total, dtype, ctx):
        total, fired = None, True
    pos, neg = _split_signs(kept)
    n_consts = 0
    const_list = None  # where the folded constant goes (made only if needed)
    if _constant_stays(total, kept, consts, dtype, ctx):
        n_consts = 1
        const_list, total = _constant_side(total, pos, neg, dtype)
    elif consts:
        removed.append(consts[0][1])
    n_ops = al.sum_ops(len(pos) + (const_list is pos), len(neg) + (const_list is neg))
    if not fired and n_ops >= s.nops and n_consts >= len(consts):
        return None
    if const_list is not None:
        const_list.append(al.make_constant(total, dtype, const_ndim))
    return _build_sum(pos, neg, removed, out, memo)


def _unbroadcast_terms(s, ndim, memo):
    """``s``'s terms with broadcasts ``_unbroadcast`` finds useless replaced
    by their sources (scalar constants among these join the constants):
    ``(terms, consts, whether any was replaced)``."""
    terms, consts = list(s.terms), list(s.consts)
    fired = False
    for i, src in _unbroadcast([v for _, v in terms], memo):
        terms[i] = (terms[i][0], src)
        fired = True
    if fired:
        consts += [(sign, v) for sign, v in terms if al.is_scalar_constant(v, ndim)]
        terms = [(sign, v) for sign, v in terms if not al.is_scalar_constant(v, ndim)]
    return terms, consts, fired


def _use_term_rule(kept, total, dtype, ctx):
    """Use the constant ``total`` up in the first of ``TERM_RULES`` that
    matches a term of ``kept`` (replaced in place); True when one did."""
    # (The group is asked only about a rule that matches: a sum no rule
    # matches does not depend on the groups, see ``engine.run_phase``.)
    for rule in TERM_RULES:
        if total != rule.const:
            continue
        for k, (sign, var) in enumerate(kept):
            if sign == rule.sign and al.key_of(var) == rule.key \
                    and var.type.dtype == dtype:
                if rule.group not in ctx.groups:
                    break
                kept[k] = (rule.new_sign, rule.build(var.owner.inputs[0]))
                return True
    return False


def _split_signs(kept):
    """The variables of the positive and of the negative terms of ``kept``."""
    return [v for sign, v in kept if sign > 0], [v for sign, v in kept if sign < 0]


def _constant_stays(total, kept, consts, dtype, ctx):
    """Whether the constant total of a sum (``None`` when there is none)
    stays a term: it does unless it is zero, and a zero does where it turns
    ``-0.0`` terms into ``+0.0`` (see ``_keeps_zero_sign``)."""
    return total is not None and (total != 0 or kept and not ctx.fast_math
                                  and _keeps_zero_sign(consts, dtype))


def _constant_side(total, pos, neg, dtype):
    """The term list the folded constant ``total`` joins, and its value
    there: a negative total of a signed dtype is subtracted from the
    positive terms where there are some."""
    signed = np.dtype(dtype).kind in "if"
    return (neg, -total) if signed and total < 0 and pos else (pos, total)


def _build_sum(pos, neg, removed, out, memo):
    """``sum(pos) - sum(neg)``, with carriers of the shapes of the
    ``removed`` variables it needs; a zero when no term is left."""
    dtype = out.type.dtype
    pos += _carriers(removed, pos + neg, out.type.ndim, dtype, 0, memo)
    if not pos and not neg:
        if any(d != 1 for d in out.type.shape):
            raise Abort("nothing left to give the sum its shape")
        return al.make_constant(0, dtype, out.type.ndim)
    return al.build_sum(pos, neg, dtype)


register("canonicalize", Rule("sum", sorted(al.SUM_KEYS), simplify_sum, _sum_readers))


# ------------------------------------------------------------ products
class Parts:
    """A product being simplified: factor lists, constants and sign."""

    def __init__(self, num, den, cnum, cden, sign, may_cancel=ieee.is_finite, guarded=False):
        self.num, self.den = list(num), list(den)
        self.cnum, self.cden = list(cnum), list(cden)
        self.sign = sign
        self.removed = []
        self.may_cancel = may_cancel  # see ``may_cancel``
        # A stability rewrite: a positive value ``may_cancel`` refuses is
        # cancelled all the same, under a guard (``ieee.cancel_guard``)
        # kept in ``guards`` as ``(value, its ieee.positive_nodes)``.
        self.guarded = guarded
        self.guards = []


def _cancel(parts):
    """Drop ``x`` from both ``num`` and ``den`` where ``x`` is nonzero and
    ``parts.may_cancel(x)``."""
    if not parts.den:  # (the common case, and nothing to cancel)
        return False
    changed = False
    for var in list(dict.fromkeys(parts.num)):
        while any(n is var for n in parts.num) and any(d is var for d in parts.den) \
                and al.is_nonzero(var) and _may_cancel_factor(parts, var):
            parts.num.remove(var)
            parts.den.remove(var)
            parts.removed.append(var)
            changed = True
    return changed


def _may_cancel_factor(parts, var):
    if parts.may_cancel(var):
        return True
    if not parts.guarded:
        return False
    nodes = ieee.positive_nodes(var)
    if nodes is None:
        return False
    parts.guards.append((var, nodes))
    return True


def _guard_factors(parts):
    """The guards of the values ``parts`` cancelled under one: each is NaN
    where the value's inputs are not finite and ``value / value`` is NaN,
    else 1."""
    guards = (ieee.cancel_guard(var, nodes) for var, nodes in parts.guards)
    return [g for g in guards if g is not None]


def _plan(parts, dtype):
    """Constants combined: ``(cn or None, cd or None, sign, removed, n_ops)``
    where ``cn``/``cd`` are ``(value, ndim)`` of the constant factors kept."""
    sign = parts.sign
    removed = list(parts.removed)
    cn, cn_ndim = al.const_product(parts.cnum, dtype)
    cd, cd_ndim = al.const_product(parts.cden, dtype)
    if _folding_overflows(cn, parts.cnum, True) or _folding_overflows(cd, parts.cden, True):
        raise Abort("the constant factors overflow or underflow when multiplied")
    if parts.cnum and parts.cden and cd != 0:
        with np.errstate(all="ignore"):
            q = np.asarray(cn / cd, dtype=dtype)
        if np.isfinite(q) and q * cd == cn:  # an exact quotient: one constant
            cn, cd, cn_ndim = q, np.ones((), dtype), max(cn_ndim, cd_ndim)
    real = np.dtype(dtype).kind == "f"
    # (The constants are compared as Python numbers, ``.item()``: equal
    # results, and a comparison of NumPy 0-d arrays costs microseconds.)
    if real and cd.item() == -1:
        sign, cd = -sign, np.ones((), dtype)
    if real and cn.item() == -1:
        sign, cn = -sign, np.ones((), dtype)
    keep_cn = keep_cd = None
    if cn.item() != 1:
        if real and sign < 0:
            cn, sign = -cn, 1
        keep_cn = (cn, cn_ndim)
    elif parts.cnum:
        removed.append(parts.cnum[0])
    if cd.item() != 1:
        keep_cd = (cd, cd_ndim)
    elif parts.cden:
        removed.append(parts.cden[0])
    n_ops = al.product_ops(len(parts.num) + (keep_cn is not None),
                           len(parts.den) + (keep_cd is not None), sign)
    return keep_cn, keep_cd, sign, removed, n_ops


def finish_parts(parts, dtype, ndim, ctx, plan=None):
    """Combine constants and build ``parts`` (a variable)."""
    keep_cn, keep_cd, sign, removed, _ = plan or _plan(parts, dtype)
    num, den = list(parts.num) + _guard_factors(parts), list(parts.den)
    if keep_cn is not None:
        num.append(al.make_constant(keep_cn[0], dtype, keep_cn[1]))
    if keep_cd is not None:
        den.append(al.make_constant(keep_cd[0], dtype, keep_cd[1]))
    num += _carriers(removed, num + den, ndim, dtype, 1, al.shape_memo(ctx))
    return al.build_product(num, den, sign, dtype)


def _apply_factor_rules(parts, ctx):
    fired = False
    for rule in FACTOR_RULES:
        if rule.finds is not None and not rule.finds(parts):
            continue  # (before asking the groups: see ``FactorRule``)
        if rule.group in ctx.groups and rule.fn(parts, ctx):
            fired = True
    return fired


def _simplify_parts(parts, ctx, ndim=None):
    """Drop useless broadcasts, cancel, apply the active factor rules, cancel
    again."""
    fired = False
    if ndim is not None:
        n = len(parts.num)
        for i, src in _unbroadcast(parts.num + parts.den, al.shape_memo(ctx)):
            lst, k = (parts.num, i) if i < n else (parts.den, i - n)
            lst[k] = src
            fired = True
        if fired:
            for lst, consts in ((parts.num, parts.cnum), (parts.den, parts.cden)):
                consts += [v for v in lst if al.is_scalar_constant(v, ndim)]
                lst[:] = [v for v in lst if not al.is_scalar_constant(v, ndim)]
    fired = _cancel(parts) or fired
    merged = ieee.merge_guards(parts.num)
    if merged is not None:
        parts.num[:] = merged
        fired = True
    if FACTOR_RULES and _apply_factor_rules(parts, ctx):
        _cancel(parts)
        fired = True
    return fired


def _distribute(parts, dtype, ndim, ctx):
    """``S * rest`` as ``sum(term * rest)`` when some term of the sum ``S``
    has a factor cancelling one of ``rest``; else ``None``."""
    memo = al.shape_memo(ctx)
    for idx, s_var in enumerate(parts.num):
        if al.key_of(s_var) not in al.BINARY_SUM_KEYS or s_var.type.dtype != dtype:
            continue
        others = parts.num[:idx] + parts.num[idx + 1:]
        s = al.collect_terms(s_var, memo, ctx.n_clients)
        term_parts, hit = [], False
        for sign, term in s.terms:
            f = al.collect_factors(term, memo, ctx.n_clients) \
                if term.type.dtype == dtype else None
            if f is None:
                f = al.Product(term, [term], [], [], [], 1, 0)
            p = Parts(f.num + others, f.den + parts.den, f.cnum + parts.cnum,
                      f.cden + parts.cden, sign * f.sign * parts.sign,
                      may_cancel(ctx), guarded=True)
            hit = _simplify_parts(p, ctx) or hit
            term_parts.append(p)
        if not hit:
            continue
        for sign, c in s.consts:
            term_parts.append(Parts(others + [c], parts.den, parts.cnum, parts.cden,
                                    sign * parts.sign))
        built = [finish_parts(p, dtype, ndim, ctx) for p in term_parts]
        total = built[0]
        for b in built[1:]:
            total = _ops.add(total, b)
        return total
    return None


def _has_sum_factor(parts, dtype):
    """Whether ``_distribute`` has a sum to distribute over."""
    return any(al.key_of(v) in al.BINARY_SUM_KEYS and v.type.dtype == dtype
               for v in parts.num)


def _product_readers(node, ctx):
    """``Rule.readers`` of the product rule: None for a product that is
    part of a larger one (the rule returns at once), else True."""
    out = node.outputs[0]
    if out.type.dtype[0] not in "fc" or not _is_root(out, ctx, al.PRODUCT_KEYS):
        return None
    return True


# The ops a product's flattening goes through (or asks the readers of), and
# the ones its factor handling looks at (a sum is distributed over, a
# ``switch`` may be a guard): a factor computed by another elementwise op is
# a plain leaf (``_scaling``).
_NOT_PLAIN = al.PRODUCT_KEYS | al.BINARY_SUM_KEYS | {"switch"}


def _scaling(out):
    """``(x, c)`` when ``out`` is ``x * c`` (or ``c * x``) with ``c`` a
    scalar-like constant array of ``out``'s (real) dtype and ``x`` a factor
    the flattening stops at without asking for its readers: a graph input
    or the output of an elementwise op not in ``_NOT_PLAIN``. Else None."""
    node = out.owner
    inputs = node.inputs
    if len(inputs) != 2 or node.op.scalar_op.key != "mul":
        return None
    x, c = inputs
    if isinstance(x, Constant):
        x, c = c, x
    if isinstance(x, Constant) or not isinstance(c, Constant):
        return None
    dtype = out.type.dtype
    data = c.data
    if dtype[0] != "f" or type(data) is not np.ndarray or data.size != 1 \
            or data.dtype != dtype or not is_scalar_like(c, out.type.ndim):
        return None
    owner = x.owner
    if owner is not None:
        scalar = owner.op.scalar_op
        if scalar is None or scalar.key in _NOT_PLAIN:
            return None
    return x, c


def _scaling_stays(out, ctx):
    """True when the product ``out`` is ``x * c`` (``_scaling``) that the
    general path leaves as it is: ``c`` is not 1 nor -1 (nor NaN, a
    factor there) and no factor rule finds anything in it. The product
    rule's commonest case (``x * 2``, a gradient's scaling) in a few
    checks; the groups it asks about are the ones the general path asks."""
    found = _scaling(out)
    if found is None:
        return False
    x, c = found
    value = c.data.item()  # (``const_value``: one entry)
    if value != value or value == 1 or value == -1:
        return False
    parts = Parts([x], (), [c], (), 1, may_cancel(ctx), guarded=True)
    for rule in FACTOR_RULES:
        if rule.finds is None or rule.finds(parts):
            return False
    return True


def simplify_product(node, ctx):
    root = _product_readers(node, ctx)
    ctx.answer(root)
    if root is None:
        return None
    out = node.outputs[0]
    if _scaling_stays(out, ctx):
        return None
    dtype = out.type.dtype
    ndim = out.type.ndim
    f = al.collect_factors(out, al.shape_memo(ctx), ctx.n_clients)
    parts = Parts(f.num, f.den, f.cnum, f.cden, f.sign, may_cancel(ctx), guarded=True)
    fired = _simplify_parts(parts, ctx, ndim)
    # (distribution needs a sum among the factors: a product without one
    # does not depend on 'stabilize' being active, see ``FactorRule``)
    if not fired and _has_sum_factor(parts, dtype) and "stabilize" in ctx.groups:
        distributed = _distribute(parts, dtype, ndim, ctx)
        if distributed is not None:
            return distributed
    if not fired and not parts.cnum and not parts.cden and \
            al.product_ops(len(parts.num), len(parts.den), parts.sign) >= f.nops:
        return None
    plan = _plan(parts, dtype)
    n_consts = (plan[0] is not None) + (plan[1] is not None)
    if not fired and plan[-1] >= f.nops and n_consts >= len(parts.cnum) + len(parts.cden):
        return None
    return finish_parts(parts, dtype, ndim, ctx, plan)


register("canonicalize", Rule("product", sorted(al.PRODUCT_KEYS), simplify_product,
                              _product_readers))


# ------------------------------------------------------------ powers
def _as_dtype(var, dtype):
    return var if var.type.dtype == dtype else _ops.cast(var, dtype)


def _float_out(b):
    return b.out.type.dtype[0] in "fc"


@pattern_rule("canonicalize", "pow_2", ("pow", "x", 2))
def _pow_2(b):
    return _ops.sqr(_as_dtype(b.x, b.out.type.dtype))


@pattern_rule("canonicalize", "pow_1", ("pow", "x", 1))
def _pow_1(b):
    return _as_dtype(b.x, b.out.type.dtype)


@pattern_rule("canonicalize", "pow_0", ("pow", "x", 0))
def _pow_0(b):
    return _carrier(b.x, b.out.type.dtype, 1)


@pattern_rule("canonicalize", "pow_minus_1", ("pow", "x", -1), when=_float_out)
def _pow_minus_1(b):
    dtype = b.out.type.dtype
    return _ops.true_div(al.make_constant(1, dtype), _as_dtype(b.x, dtype))


# ------------------------------------------------------------ useless ops
def remove_cast(node, ctx):
    """A cast to the dtype the input already has."""
    x = node.inputs[0]
    return x if x.type.dtype == node.outputs[0].type.dtype else None


register("canonicalize", Rule("remove_cast", ["cast"], remove_cast))
