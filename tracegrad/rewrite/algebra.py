"""Sums and products as flat lists, and the facts rules need about values.

- ``collect_terms(var)``: a tree of ``add``/``sub``/``neg`` as signed terms
  plus the scalar constants among them; ``collect_factors(var)``: a tree of
  ``mul``/``true_div``/``neg`` as numerator and denominator factors, a sign
  and scalar constants. Both walk iteratively, only through nodes of the
  root's dtype (so rebuilding never changes promotion), at most ``LIMIT``
  nodes deep.
- ``shape_root(var, memo)``: a token equal for variables whose run-time
  shapes are provably equal (unary elementwise ops, elementwise ops over
  the same set of operand shapes, ``SumTo`` giving its target's shape...).
- ``is_positive(var)`` / ``is_nonzero(var)``: true when the value is
  positive (nonzero) for every finite input, in exact arithmetic — the
  condition for cancelling ``x / x`` (with ``ieee``'s facts about inf and
  NaN outside mode 'fast_math').

Every fact about an op comes from its declarations (``trace.Op``: the
elementwise rows' ``inverse_of``/``negation``, ``positive``, ``selects``,
``broadcasts``, ``shape_relation``...); this module names no op but the two
operations its flat forms are about, ``add`` and ``mul``.
"""
import numpy as np

from tracegrad.ops import api as _ops
from tracegrad.rewrite.pattern import const_value, is_scalar_like, op_key
from tracegrad.trace import Constant, Variable

from tracegrad.config import COLLECT_LIMIT as LIMIT  # (a tunable: tracegrad/config.py)


def _row_keys(test):
    from tracegrad.ops.elemwise import ROWS  # (the table, read once at import)
    return [r.key for r in ROWS() if test(r)]


# The rows a flat sum (product) is made of: ``add`` (``mul``), the rows
# declared its inverse (``a - b``, ``a / b``) and the negations (``-x``).
NEGATIONS = frozenset(_row_keys(lambda r: r.negation))
SUM_INVERSE, = _row_keys(lambda r: r.inverse_of == "add")
PRODUCT_INVERSE, = _row_keys(lambda r: r.inverse_of == "mul")
BINARY_SUM_KEYS = frozenset({"add", SUM_INVERSE})
SUM_KEYS = BINARY_SUM_KEYS | NEGATIONS
PRODUCT_KEYS = frozenset({"mul", PRODUCT_INVERSE}) | NEGATIONS



def key_of(var):
    node = var.owner
    return None if node is None else op_key(node.op)


# ------------------------------------------------------------ shape facts
def shape_memo(ctx):
    """The shape-root memo of one optimisation (kept in ``ctx.memo``)."""
    return ctx.memo.setdefault("shape", {})


def _same(tokens):
    first = tokens[0]
    return first if all(t == first for t in tokens[1:]) else None


def reinsert_pattern(axes, ndim):
    """The dimshuffle pattern putting back the ``axes`` a reduction of an
    ``ndim``-d array removed (what ``keepdims=True`` does)."""
    kept = iter(range(ndim - len(axes)))
    return tuple("x" if i in axes else next(kept) for i in range(ndim))


def reduce_token(token, axes, ndim, keepdims):
    """The token of a reduction over ``axes`` of an ``ndim``-d variable."""
    out = ("reduce", token, tuple(axes))
    if keepdims:
        out = dimshuffle_token(out, reinsert_pattern(axes, ndim), ndim - len(axes))
    return out


def shape_leaves(token):
    """The tokens whose broadcast ``token`` stands for (itself, unless it is
    a ``('broadcast', leaves)`` token)."""
    if isinstance(token, tuple) and token[0] == "broadcast":
        return token[1]
    return frozenset((token,))


_EXPANDED = ("broadcast", "dimshuffle")  # (tokens ``_broadcast`` takes apart)


def _broadcast(tokens):
    """The token of an elementwise result of operands of ``tokens`` (one
    ndim): their common token, else ``('broadcast', leaves)``, the set of the
    leaf tokens broadcast together (NumPy's broadcast of a set of shapes
    depends only on the set, so equal sets are equal shapes). A ``keepdims``
    reduction of one operand broadcasts back to that operand's shape and
    drops out."""
    first = tokens[0]
    if len(tokens) == 1 and not (type(first) is tuple and first[0] in _EXPANDED):
        # (the common case, one operand not scalar-like: a leaf token, or one
        # no dimshuffle or broadcast set, comes out as it went in)
        return first
    leaves = set()
    for t in tokens:
        leaves |= shape_leaves(t)
    rest = set()
    for t in leaves:
        if isinstance(t, tuple) and t[0] == "dimshuffle" and isinstance(t[1], tuple) \
                and t[1][0] == "reduce" and t[1][1] in leaves \
                and t[2] == reinsert_pattern(t[1][2], t[3] + len(t[1][2])):
            continue
        rest.add(t)
    if not rest:
        return None
    if len(rest) == 1:
        return next(iter(rest))
    return ("broadcast", frozenset(rest))


def dimshuffle_token(token, pattern, in_ndim):
    """The token of ``dimshuffle(pattern)`` of a variable of ``token`` (a
    dimshuffle of a dimshuffle is one; the identity is the token itself)."""
    if isinstance(token, tuple) and token[0] == "dimshuffle":
        _, token, inner, in_ndim = token
        pattern = tuple("x" if p == "x" else inner[p] for p in pattern)
    if pattern == tuple(range(in_ndim)):
        return token
    return ("dimshuffle", token, pattern, in_ndim)


def _shape_rule(var):
    """``(inputs, make)``: ``var``'s token is ``make(their tokens)`` (from
    the op's ``shape_relation``; elementwise ops broadcast)."""
    node = var.owner
    if node is None:
        return None
    if node.op.scalar_op is not None:
        ndim = var.type.ndim
        big = [i for i in node.inputs if not is_scalar_like(i, ndim)]
        if big and all(i.type.ndim == ndim for i in big):
            return big, _broadcast
        return None
    rel = node.op.shape_relation(node)
    if rel is None:
        return None
    kind, src = rel[0], rel[1]
    if kind == "same":
        return ([src], _same) if src.type.ndim == var.type.ndim else None
    if kind == "dimshuffle":
        _, _, pattern, in_ndim = rel
        return [src], lambda t: dimshuffle_token(t[0], pattern, in_ndim)
    if kind == "reduce":
        _, _, axes, keepdims = rel
        ndim = src.type.ndim
        return [src], lambda t: reduce_token(t[0], axes, ndim, keepdims)
    return None


def shape_root(var, memo):
    """A token shared by variables provably of the same run-time shape."""
    hit = memo.get(var)
    if hit is not None:
        return hit
    stack = [var]
    rules = {}  # (a variable's rule, kept while its inputs are worked out)
    while stack:
        v = stack[-1]
        if v in memo:
            stack.pop()
            continue
        rule = rules.get(v, rules)
        if rule is rules:
            rule = rules[v] = _shape_rule(v)
        token = None
        if rule is not None:
            deps, make = rule
            missing = [d for d in deps if d not in memo]
            if missing:
                stack.extend(missing)
                continue
            token = make([memo[d] for d in deps])
        shape = v.type.shape
        if None not in shape:
            token = ("static", shape)
        memo[v] = v if token is None else token
        stack.pop()
    return memo[var]


def same_shape(a, b, memo):
    """True when ``a`` and ``b`` provably have the same run-time shape."""
    if a is b:
        return True
    if a.type.ndim != b.type.ndim:
        return False
    return same_token(shape_root(a, memo), shape_root(b, memo))


def same_token(a, b):
    """Equality of two shape tokens (nested tuples), comparing the variables
    in them by identity (``==`` on variables is elementwise)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if type(x) is tuple and type(y) is tuple:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif isinstance(x, Variable) or isinstance(y, Variable) or x != y:
            return False
    return True


def covered(removed, remaining, ndim, memo):
    """True when dropping ``removed`` from an elementwise combination of
    ``remaining`` (result of ``ndim`` axes) cannot change the result shape."""
    if is_scalar_like(removed, ndim):
        return any(r.type.ndim >= removed.type.ndim for r in remaining) \
            or removed.type.ndim == 0
    return any(same_shape(r, removed, memo) for r in remaining)


def broadcast_source(var):
    """``a`` when ``var`` is ``broadcast_to(a, shape)`` or ``alloc(a, shape)``
    of the same dtype (``var`` then holds copies of ``a``'s values)."""
    node = var.owner
    if node is None or not node.op.broadcasts:
        return None
    src = node.inputs[0]
    if src.type.dtype != var.type.dtype or src.type.ndim > var.type.ndim:
        return None
    return src


def is_scalar_constant(var, ndim):
    """A constant of one repeated value that cannot widen an ``ndim`` result."""
    return isinstance(var, Constant) and const_value(var) is not None \
        and is_scalar_like(var, ndim)


# ------------------------------------------------------------ value facts
def is_positive(var):
    """``var`` > 0 for every finite input (exact arithmetic)."""
    stack = [var]
    seen = 0
    while stack:
        v = stack.pop()
        seen += 1
        if seen > 16 or v.type.dtype[0] not in "iuf":  # (complex sums can vanish)
            return False
        if isinstance(v, Constant):
            data = np.asarray(v.data)
            if data.dtype.kind not in "iuf" or data.size == 0 \
                    or not bool(np.all(data > 0)) or not bool(np.all(np.isfinite(data))):
                return False
            continue
        node = v.owner
        if node is None:
            return False
        if node.op.positive:
            continue
        if node.op.positive_if_inputs:
            stack.extend(node.inputs)
            continue
        if node.op.selects:
            stack.append(node.inputs[0])
            continue
        return False
    return True


def is_nonzero(var):
    """``var`` != 0 for every finite input (exact arithmetic)."""
    if isinstance(var, Constant):
        data = np.asarray(var.data)
        return data.size > 0 and bool(np.all(data != 0)) and bool(np.all(np.isfinite(data)))
    if key_of(var) in NEGATIONS:
        var = var.owner.inputs[0]
    return is_positive(var)


# ------------------------------------------------------------ sums
class Sum:
    """``sum(sign * var for sign, var in terms) + sum(consts)``."""

    __slots__ = ("root", "terms", "consts", "nops")

    def __init__(self, root, terms, consts, nops):
        self.root = root
        self.terms = terms      # [(sign, var)]
        self.consts = consts    # [(sign, scalar-like Constant)]
        self.nops = nops        # add/sub/neg nodes walked

    def const_total(self):
        """The constants summed in the root's dtype (a 0-d array) or None."""
        if not self.consts:
            return None
        dtype = self.root.type.dtype
        total = np.zeros((), dtype=dtype)
        with np.errstate(all="ignore"):  # integers wrap, as the graph would
            for sign, c in self.consts:
                value = np.asarray(c.data).reshape(()).astype(dtype)
                total = total + value if sign > 0 else total - value
        return np.asarray(total, dtype=dtype)


def _transparent_sum_to(v, dtype, memo):
    """The summand of ``v = SumTo(g, like)`` when it provably sums nothing."""
    from tracegrad.ops.elemwise import SumTo
    node = v.owner
    if memo is None or node is None or not isinstance(node.op, SumTo) \
            or v.type.dtype != dtype:
        return None
    g, like = node.inputs
    return g if same_shape(g, like, memo) else None


def _is_sum_to_key(key):
    global _SUM_TO
    if _SUM_TO is None:
        from tracegrad.ops.elemwise import SumTo  # (ops build on this layer's users)
        _SUM_TO = SumTo
    return key is _SUM_TO


_SUM_TO = None


def _shared(v, n_clients, key):
    # ``neg`` is looked through even when shared: that duplicates nothing.
    return n_clients is not None and key not in NEGATIONS and n_clients(v) != 1


def _flatten(root, keys, inverse, memo, n_clients, limit, neg_inverts):
    """The leaves of the tree under ``root`` of the binary ops in ``keys``
    and ``neg``: ``(leaves, negations, nops)``, leaves in order as
    ``(polarity, var, is_constant)``. The op named ``inverse`` inverts its
    second operand's polarity (``sub``, ``true_div``); a negation (``neg``)
    inverts its operand's when ``neg_inverts``, else it is counted in
    ``negations``.
    ``memo``, ``n_clients`` and ``limit`` as for ``collect_terms``."""
    dtype = root.type.dtype
    ndim = root.type.ndim
    leaves = []
    negations = 0
    nops = 0
    stack = [(root, 1)]
    while stack:
        v, polarity = stack.pop()
        key = key_of(v)
        # (whether ``v`` is shared matters only where the walk would go
        # through it: an op of ``keys`` or a ``SumTo``; not asking
        # elsewhere keeps the rule from watching readers it ignores)
        if nops and (key in keys or _is_sum_to_key(key)) and _shared(v, n_clients, key):
            key = None
        if key in keys and v.type.dtype == dtype and nops < limit:
            nops += 1
            inputs = v.owner.inputs
            if key in NEGATIONS:
                if neg_inverts:
                    polarity = -polarity
                else:
                    negations += 1
                stack.append((inputs[0], polarity))
            else:
                stack.append((inputs[1], -polarity if key == inverse else polarity))
                stack.append((inputs[0], polarity))
            continue
        inner = _transparent_sum_to(v, dtype, memo) if key is not None and nops else None
        if inner is not None:
            nops += 1
            stack.append((inner, polarity))
        else:
            is_constant = (isinstance(v, Constant) and const_value(v) is not None
                           and is_scalar_like(v, ndim))
            leaves.append((polarity, v, is_constant))
    return leaves, negations, nops


def collect_terms(root, memo=None, n_clients=None, limit=LIMIT):
    """``root`` (an add/sub/neg tree) as a ``Sum``. With ``memo``, ``SumTo``
    nodes that provably sum nothing are looked through; with ``n_clients``
    (variable -> number of readers), variables read elsewhere too are
    terms, not expanded (their identity is what cancellation looks for)."""
    leaves, _, nops = _flatten(root, SUM_KEYS, SUM_INVERSE, memo, n_clients, limit,
                               neg_inverts=True)
    terms = [(sign, v) for sign, v, is_constant in leaves if not is_constant]
    consts = [(sign, v) for sign, v, is_constant in leaves if is_constant]
    return Sum(root, terms, consts, nops)


def make_constant(value, dtype, ndim=0):
    """A strong constant of ``dtype`` with ``ndim`` length-1 axes."""
    data = np.asarray(value, dtype=dtype).reshape((1,) * ndim)
    return _ops.constant(data)


def build_sum(pos, neg, dtype):
    """``pos[0] + pos[1] ... - neg[0] - ...`` (``-(neg...)`` without ``pos``)."""
    if pos:
        acc = pos[0]
        for v in pos[1:]:
            acc = _ops.add(acc, v)
        for v in neg:
            acc = _ops.sub(acc, v)
        return acc
    acc = neg[0]
    for v in neg[1:]:
        acc = _ops.add(acc, v)
    return _negate(acc, dtype)


def _negate(acc, dtype):
    # Negate in the result's dtype: ``-x`` of uint8 wraps (``0.0 - x`` must not).
    return _ops.neg(acc if acc.dtype == dtype else _ops.cast(acc, dtype))


def sum_ops(n_pos, n_neg):
    """Nodes ``build_sum`` makes."""
    n = n_pos + n_neg
    return max(n - 1, 0) + (1 if n_pos == 0 and n_neg else 0)


# ------------------------------------------------------------ products
class Product:
    """``sign * prod(num) * prod(cnum) / (prod(den) * prod(cden))``."""

    __slots__ = ("root", "num", "den", "cnum", "cden", "sign", "nops")

    def __init__(self, root, num, den, cnum, cden, sign, nops):
        self.root = root
        self.num = num
        self.den = den
        self.cnum = cnum
        self.cden = cden
        self.sign = sign
        self.nops = nops


def collect_factors(root, memo=None, n_clients=None, limit=LIMIT):
    """``root`` (a mul/true_div/neg tree) as a ``Product`` (``memo`` and
    ``n_clients`` as for ``collect_terms``)."""
    leaves, negations, nops = _flatten(root, PRODUCT_KEYS, PRODUCT_INVERSE, memo, n_clients,
                                       limit, neg_inverts=False)
    num, den, cnum, cden = [], [], [], []
    for power, v, is_constant in leaves:
        if is_constant:
            (cnum if power > 0 else cden).append(v)
        else:
            (num if power > 0 else den).append(v)
    sign = -1 if negations % 2 else 1
    return Product(root, num, den, cnum, cden, sign, nops)


def const_product(consts, dtype):
    """The product of scalar constants in ``dtype`` (0-d array) and the
    number of axes the result needs (their largest ndim)."""
    if not consts:
        return np.ones((), dtype=dtype), 0
    if len(consts) == 1:
        # ``1 * c`` is ``c`` exactly for a real or integer ``c`` of the
        # result's dtype (not for complex: ``(1+0j) * (a+infj)`` has a NaN
        # real part); skipping ``errstate`` and the multiply is what makes
        # the product rule cheap on the many products of one constant.
        value = np.asarray(consts[0].data)
        if value.dtype == dtype and value.dtype.kind in "biuf":
            return value.reshape(()).copy(), consts[0].type.ndim
    total = np.ones((), dtype=dtype)
    ndim = 0
    with np.errstate(all="ignore"):
        for c in consts:
            total = total * np.asarray(c.data).reshape(()).astype(dtype)
            ndim = max(ndim, c.type.ndim)
    return np.asarray(total, dtype=dtype), ndim


def build_product(num, den, sign, dtype):
    """``sign * num[0] * ... / (den[0] * ...)`` (``1 / ...`` without ``num``)."""
    if num:
        acc = num[0]
        for v in num[1:]:
            acc = _ops.mul(acc, v)
    else:
        acc = None
    if den:
        d = den[0]
        for v in den[1:]:
            d = _ops.mul(d, v)
        acc = _ops.true_div(make_constant(1, dtype) if acc is None else acc, d)
    if acc is None:
        acc = make_constant(1, dtype)
    return _negate(acc, dtype) if sign < 0 else acc


def product_ops(n_num, n_den, sign):
    """Nodes ``build_product`` makes."""
    ops = max(n_num - 1, 0)
    if n_den:
        ops += n_den  # n_den - 1 muls and one division
    return ops + (1 if sign < 0 else 0)
