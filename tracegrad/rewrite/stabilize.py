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
- ``sqrt(sqr(x)) -> abs(x)``.

Rules over reductions and softmax live in ``stabilize_nnet``.
"""
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite.canonicalize import (FACTOR_RULES, TERM_RULES, FactorRule,
                                            TermRule)
from tracegrad.rewrite.engine import Rule, pattern_rule, register


def T():
    import tracegrad.tensor as T
    return T


def _real(b):
    return b.out.type.dtype[0] == "f"


def _sigmoid_neg(z):
    return T().sigmoid(T().neg(z))


TERM_RULES.extend([
    TermRule("stabilize", "expm1", -1, 1, "exp", 1, lambda z: T().expm1(z)),
    TermRule("stabilize", "neg_expm1", 1, -1, "exp", -1, lambda z: T().expm1(z)),
    TermRule("stabilize", "one_minus_sigmoid", 1, -1, "sigmoid", 1, _sigmoid_neg),
    TermRule("stabilize", "sigmoid_minus_one", -1, 1, "sigmoid", -1, _sigmoid_neg),
])


def _one_plus_exp(var):
    """``(exp(z) variable, z)`` when ``var`` is ``1 + exp(z)``, else None."""
    if al.key_of(var) not in ("add", "sub"):
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
            parts.num.append(T().sigmoid(z))
        else:
            parts.num.append(_sigmoid_neg(z))
        fired = True
    return fired


FACTOR_RULES.append(FactorRule("stabilize", "sigmoid_from_exp", _sigmoid_from_exp))


def log_of_one_plus(node, ctx):
    """``log(1 + rest) -> log1p(rest)``."""
    out = node.outputs[0]
    x = node.inputs[0]
    if out.type.dtype[0] != "f" or x.type != out.type or al.key_of(x) not in ("add", "sub"):
        return None
    s = al.collect_terms(x)
    if not s.terms or s.const_total() != 1:
        return None
    rest = [v for _, v in s.terms]
    if not all(al.covered(c, rest, x.type.ndim, {}) for _, c in s.consts):
        return None
    pos = [v for sign, v in s.terms if sign > 0]
    neg = [v for sign, v in s.terms if sign < 0]
    return T().log1p(al.build_sum(pos, neg, x.type.dtype))


register("stabilize", Rule("log1p", ["log"], log_of_one_plus))


@pattern_rule("stabilize", "softplus", ("log1p", ("exp", "x")), when=_real)
def _softplus(b):
    return T().softplus(b.x)


@pattern_rule("stabilize", "log_exp", ("log", ("exp", "x")), when=_real)
def _log_exp(b):
    return b.x


@pattern_rule("stabilize", "log_sigmoid", ("log", ("sigmoid", "x")), when=_real)
def _log_sigmoid(b):
    return T().neg(T().softplus(T().neg(b.x)))


@pattern_rule("stabilize", "log1p_neg_sigmoid", ("log1p", ("neg", ("sigmoid", "x"))),
              when=_real)
def _log1p_neg_sigmoid(b):
    return T().neg(T().softplus(b.x))


@pattern_rule("stabilize", "sqrt_sqr", ("sqrt", ("sqr", "x")), when=_real)
def _sqrt_sqr(b):
    return T().abs(b.x)
