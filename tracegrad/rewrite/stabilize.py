"""Numerical stability: forms that overflow, underflow or cancel, replaced.

Each rule is proven in ``tests/test_rewrite_stabilize.py`` with an input that
breaks the naive form.

- ``log(1 + x) -> log1p(x)`` (``log(1 - x) -> log1p(-x)``, any sum with
  the constant 1);
- ``log1p(exp(x)) -> softplus(x)``, ``log(exp(x)) -> x``;
- ``log(sigmoid(x)) -> -softplus(-x)``, ``log1p(-sigmoid(x)) -> -softplus(x)``
  (with ``1 - sigmoid(x) -> sigmoid(-x)`` this covers ``log(1 - sigmoid(x))``);
- ``exp(x) - 1 -> expm1(x)`` and ``1 - exp(x) -> -expm1(x)`` inside any sum;
- ``1 / (1 + exp(-x)) -> sigmoid(x)`` and ``exp(x) / (1 + exp(x)) ->
  sigmoid(x)`` inside any product (``1 + exp(z)`` in a denominator becomes
  ``sigmoid(-z)`` in the numerator), which is also what the gradient of
  such a graph divides by;
- ``sqrt(sqr(x)) -> abs(x)``;
- ``K*y*sigmoid(u) - K*(1-y)*sigmoid(-u) -> K*y - K*sigmoid(-u)`` inside
  any sum (the common factors may sit inside one ``sum_to`` each, as the
  gradient of the tutorial cross-entropy has them): ``sigmoid(u) +
  sigmoid(-u) = 1``, so one sigmoid instead of two, and no ``1 - y``.

Rules over reductions and softmax live in ``stabilize_nnet``.
"""
from tracegrad.ops import api as _ops
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import ieee
from tracegrad.rewrite import canonicalize as canon
from tracegrad.rewrite.canonicalize import (FACTOR_RULES, TERM_RULES, FactorRule,
                                            TermRule)
from tracegrad.rewrite.engine import Rule, pattern_rule, register



def _real(b):
    return b.out.type.dtype[0] == "f"


def _sigmoid_neg(z):
    return _ops.sigmoid(_ops.neg(z))


TERM_RULES.extend([
    TermRule("stabilize", "expm1", -1, 1, "exp", 1, lambda z: _ops.expm1(z)),
    TermRule("stabilize", "neg_expm1", 1, -1, "exp", -1, lambda z: _ops.expm1(z)),
    TermRule("stabilize", "one_minus_sigmoid", 1, -1, "sigmoid", 1, _sigmoid_neg),
    TermRule("stabilize", "sigmoid_minus_one", -1, 1, "sigmoid", -1, _sigmoid_neg),
])


def _one_plus_exp(var):
    """``(exp(z) variable, z)`` when ``var`` is ``1 + exp(z)``, else None."""
    if al.key_of(var) not in al.BINARY_SUM_KEYS:
        return None
    s = al.collect_terms(var, limit=4)
    if len(s.terms) != 1 or s.const_total() != 1:
        return None
    sign, e = s.terms[0]
    if sign < 0 or al.key_of(e) != "exp" or e.type != var.type:
        return None
    return e, e.owner.inputs[0]


def _sigmoid_from_exp(parts, ctx):
    fired = False
    for d in list(parts.den):
        if d.type.dtype[0] != "f":
            continue
        found = _one_plus_exp(d)
        if found is None:
            continue
        e, z = found
        parts.den.remove(d)
        if any(v is e for v in parts.num):
            parts.num.remove(e)
            parts.num.append(_ops.sigmoid(z))
            # exp(inf) / (1 + exp(inf)) is NaN in NumPy, sigmoid(inf) is 1:
            # NaN where z is not below +inf (+inf or NaN); the naive form's
            # overflow at a finite z is what the rule fixes
            if not ctx.fast_math and not ieee.is_finite(z):
                below = _ops.lt(z, al.make_constant(float("inf"), z.type.dtype))
                parts.num.append(ieee.guard_where(_ops.logical_not(below), e.type.dtype))
        else:
            parts.num.append(_sigmoid_neg(z))
        fired = True
    return fired


def _finds_one_plus_exp(parts):
    return any(al.key_of(d) in al.BINARY_SUM_KEYS for d in parts.den)


FACTOR_RULES.append(FactorRule("stabilize", "sigmoid_from_exp", _sigmoid_from_exp,
                               _finds_one_plus_exp))


def log_of_one_plus(node, ctx):
    """``log(1 + rest) -> log1p(rest)``."""
    out = node.outputs[0]
    x = node.inputs[0]
    if out.type.dtype[0] != "f" or x.type != out.type \
            or al.key_of(x) not in al.BINARY_SUM_KEYS:
        return None
    s = al.collect_terms(x)
    if not s.terms or s.const_total() != 1:
        return None
    rest = [v for _, v in s.terms]
    if not all(al.covered(c, rest, x.type.ndim, {}) for _, c in s.consts):
        return None
    pos = [v for sign, v in s.terms if sign > 0]
    neg = [v for sign, v in s.terms if sign < 0]
    return _ops.log1p(al.build_sum(pos, neg, x.type.dtype))


register("stabilize", Rule("log1p", ["log"], log_of_one_plus))


@pattern_rule("stabilize", "softplus", ("log1p", ("exp", "x")), when=_real)
def _softplus(b):
    return _ops.softplus(b.x)


@pattern_rule("stabilize", "log_exp", ("log", ("exp", "x")), when=_real)
def _log_exp(b):
    return b.x


@pattern_rule("stabilize", "log_sigmoid", ("log", ("sigmoid", "x")), when=_real)
def _log_sigmoid(b):
    return _ops.neg(_ops.softplus(_ops.neg(b.x)))


@pattern_rule("stabilize", "log1p_neg_sigmoid", ("log1p", ("neg", ("sigmoid", "x"))),
              when=_real)
def _log1p_neg_sigmoid(b):
    return _ops.neg(_ops.softplus(b.x))


@pattern_rule("stabilize", "sqrt_sqr", ("sqrt", ("sqr", "x")), when=_real)
def _sqrt_sqr(b):
    return _ops.abs(b.x)


# ------------------------------------------------------------ sigmoid pairs
def _without_guards(f):
    """``f`` without its guard factors (``ieee.is_guard``), and those."""
    guards = [v for v in f.num if ieee.is_guard(v)]
    if guards:
        f = al.Product(f.root, [v for v in f.num if not ieee.is_guard(v)], f.den, f.cnum,
                       f.cden, f.sign, f.nops)
    return f, guards


def _linear_term(sign, var, dtype, memo):
    """A term as ``(sign, outer Product, target, inner Product, guards)``:
    ``target`` is ``like`` of the one ``sum_to(inner, like)`` factor, or
    ``None`` (then ``inner`` is the whole term and ``outer`` empty);
    ``guards`` (outer, inner): the guard factors taken out of each."""
    from tracegrad.ops.elemwise import SumTo
    if var.type.dtype != dtype:
        return None
    f = al.collect_factors(var, memo) if al.key_of(var) in al.PRODUCT_KEYS \
        else al.Product(var, [var], [], [], [], 1, 0)
    f, outer_guards = _without_guards(f)
    sums = [v for v in f.num if v.owner is not None and isinstance(v.owner.op, SumTo)]
    if len(sums) != 1 or any(v.owner is not None and isinstance(v.owner.op, SumTo)
                             for v in f.den):
        return sign * f.sign, al.Product(var, [], [], [], [], 1, 0), None, f, \
            ([], outer_guards)
    g, like = sums[0].owner.inputs
    if g.type.dtype != dtype:
        return None
    inner = al.collect_factors(g, memo) if al.key_of(g) in al.PRODUCT_KEYS \
        else al.Product(g, [g], [], [], [], 1, 0)
    inner, inner_guards = _without_guards(inner)
    outer = al.Product(var, [v for v in f.num if v is not sums[0]], f.den, f.cnum,
                       f.cden, 1, 0)
    return sign * f.sign * inner.sign, outer, like, inner, (outer_guards, inner_guards)


def _negates(a, b):
    """True when ``b`` is provably ``-a`` (as flat sums)."""
    sa, sb = al.collect_terms(a), al.collect_terms(b)
    ta = sorted((id(v), s) for s, v in sa.terms)
    tb = sorted((id(v), -s) for s, v in sb.terms)
    if ta != tb:
        return False
    ca, cb = sa.const_total(), sb.const_total()
    if ca is None or cb is None:
        return ca is None and cb is None or (ca if cb is None else cb) == 0
    return ca == -cb


def _one_minus(o, y):
    """True when ``o`` is ``1 - y``."""
    if al.key_of(o) not in al.BINARY_SUM_KEYS \
            or o.type != y.type and o.type.dtype != y.type.dtype:
        return False
    s = al.collect_terms(o, limit=4)
    return len(s.terms) == 1 and s.terms[0][0] < 0 and s.terms[0][1] is y \
        and s.const_total() == 1


def _without(factors, var):
    out = list(factors)
    out.remove(var)
    return out


def _as_wide(y, factors, memo):
    """True when broadcasting ``y`` with ``factors`` provably gives the
    shape of the factors alone (``y``'s shape is one of those broadcast)."""
    if al.covered(y, factors, y.type.ndim, memo):
        return True
    leaves = set()
    for f in factors:
        if f.type.ndim == y.type.ndim:
            leaves |= al.shape_leaves(al.shape_root(f, memo))
    return al.shape_leaves(al.shape_root(y, memo)) <= leaves


def _same_factors(a, b):
    return sorted(map(id, a)) == sorted(map(id, b))


def _same_consts(a, b, dtype):
    return al.const_product(a, dtype)[0] == al.const_product(b, dtype)[0]


def _pair_guard(new, ky, u, guards):
    """``new`` times NaN where NumPy's ``K*y*sigmoid(u) - K*(1-y)*sigmoid(-u)``
    is ``inf * 0``: ``K*y`` infinite (an inf target, or an inf in ``K``) at
    a logit ``u`` of +-inf, where ``new`` is +-inf (a finite logit far out
    keeps the right value; a NaN logit gives NaN in both)."""
    if ieee.is_finite(u) or ieee.covers_inf(guards, u):
        return new
    cond = _ops.and_(_ops.isinf(ky), _ops.isinf(u))
    return _ops.mul(new, ieee.guard_where(cond, new.type.dtype))


def _pair(ta, tb, dtype, ndim, memo, fast_math=False):
    """The rewritten ``ta + tb`` when ``ta`` is ``s*M*S[K*y]*sigmoid(u)`` and
    ``tb`` is ``-s*M*S[K*(1-y)]*sigmoid(-u)`` (``S`` a ``sum_to`` or
    nothing), else None."""
    sa, outer_a, like_a, inner_a, guards_a = ta
    sb, outer_b, like_b, inner_b, guards_b = tb
    # the guards (1 or NaN) of both terms go on the sum: NaN there as before
    g_out = list(dict.fromkeys(guards_a[0] + guards_b[0]))
    g_in = list(dict.fromkeys(guards_a[1] + guards_b[1]))
    if sa != -sb or like_a is not like_b:
        return None
    match = _pair_match(ta, tb, dtype, memo)
    if match is None:
        return None
    sig_b, y, k_num, rest_a = match
    k = al.build_product(k_num + g_in + inner_a.cnum,
                         inner_a.den + inner_a.cden, 1, dtype)
    ky = al.build_product(k_num + g_in + inner_a.cnum + [y],
                          inner_a.den + inner_a.cden, 1, dtype)
    if like_a is not None:
        k, ky = _ops.sum_to(k, like_a), _ops.sum_to(ky, like_a)
        m = al.build_product(rest_a + g_out + outer_a.cnum,
                             outer_a.den + outer_a.cden, 1, dtype)
        new = _ops.mul(m, _ops.sub(ky, _ops.mul(k, sig_b)))
    else:
        new = _ops.sub(ky, _ops.mul(k, sig_b))
    if not fast_math:
        new = _pair_guard(new, ky, sig_b.owner.inputs[0], g_out + g_in)
    return _ops.neg(new) if sa < 0 else new


def _pair_match(ta, tb, dtype, memo):
    """``(sigmoid(-u), y, K's factors, M's factors)`` for the first way the
    terms ``ta`` and ``tb`` (of equal sign and ``S``) fit ``_pair``'s
    pattern, else None."""
    _, outer_a, like_a, inner_a, _ = ta
    _, outer_b, like_b, inner_b, _ = tb
    home_a = outer_a if like_a is not None else inner_a
    home_b = outer_b if like_b is not None else inner_b
    for sig_a, sig_b in _sigmoid_pairs(home_a.num, home_b.num):
        rest_a = _without(home_a.num, sig_a)
        rest_b = _without(home_b.num, sig_b)
        in_a = rest_a if like_a is None else inner_a.num
        in_b = rest_b if like_b is None else inner_b.num
        for y, o in _one_minus_pairs(in_a, in_b):
            k_num = _without(in_a, y)
            if not _same_products(k_num, _without(in_b, o), inner_a, inner_b, dtype):
                continue
            if like_a is not None and not (
                    _same_products(rest_a, rest_b, outer_a, outer_b, dtype)
                    and _as_wide(y, k_num, memo)):
                continue  # (``sum_to(K, like)`` needs K as wide as K*y)
            return sig_b, y, k_num, rest_a
    return None


def _sigmoid_pairs(num_a, num_b):
    """``(sigmoid(u), sigmoid(-u))`` pairs of factors of ``num_a`` and ``num_b``."""
    for sig_a in [v for v in num_a if al.key_of(v) == "sigmoid"]:
        for sig_b in [v for v in num_b if al.key_of(v) == "sigmoid"]:
            if sig_a.type == sig_b.type and \
                    _negates(sig_a.owner.inputs[0], sig_b.owner.inputs[0]):
                yield sig_a, sig_b


def _one_minus_pairs(in_a, in_b):
    """``(y, o)`` for each factor ``o`` of ``in_b`` that is ``1 - y`` for a
    factor ``y`` of ``in_a`` (the first such ``y``)."""
    for o in in_b:
        y = next((v for v in in_a if _one_minus(o, v)), None)
        if y is not None:
            yield y, o


def _same_products(num_a, num_b, parts_a, parts_b, dtype):
    """Whether the products ``num_a / parts_a.den`` and ``num_b /
    parts_b.den`` have the same factors and constants."""
    return _same_factors(num_a, num_b) \
        and _same_factors(parts_a.den, parts_b.den) \
        and _same_consts(parts_a.cnum, parts_b.cnum, dtype) \
        and _same_consts(parts_a.cden, parts_b.cden, dtype)


def sigmoid_pair_rule(node, ctx):
    """In a sum: ``s*M*S[K*y]*sigmoid(u) - s*M*S[K*(1-y)]*sigmoid(-u) ->
    s*M*(S[K*y] - S[K]*sigmoid(-u))`` (see ``_pair``)."""
    out = node.outputs[0]
    dtype = out.type.dtype
    if dtype[0] != "f" or not canon._is_root(out, ctx, al.SUM_KEYS):
        return None
    memo = al.shape_memo(ctx)
    s = al.collect_terms(out, memo, ctx.n_clients)
    if len(s.terms) < 2:
        return None
    terms = [_linear_term(sign, v, dtype, memo) for sign, v in s.terms]
    for i, ta in enumerate(terms):
        for j, tb in enumerate(terms):
            if i == j or ta is None or tb is None:
                continue
            new = _pair(ta, tb, dtype, out.type.ndim, memo, ctx.fast_math)
            if new is not None:
                return _sum_with(new, s, (i, j), dtype)
    return None


def _sum_with(new, s, pair, dtype):
    """The sum ``s`` with its terms at indices ``pair`` replaced by ``new``."""
    rest = [t for k, t in enumerate(s.terms) if k not in pair]
    pos = [new] + [v for sign, v in rest if sign > 0]
    neg = [v for sign, v in rest if sign < 0]
    pos += [c for sign, c in s.consts if sign > 0]
    neg += [c for sign, c in s.consts if sign < 0]
    return al.build_sum(pos, neg, dtype)


register("stabilize", Rule("sigmoid_pair", sorted(al.SUM_KEYS), sigmoid_pair_rule))
