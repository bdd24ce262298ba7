"""Patterns: graph shapes written as nested tuples, and their matcher.

A pattern is

- ``(key, sub, sub, ...)``: a variable computed by a node whose op key (see
  ``op_key``) is ``key``, with its inputs matching the sub-patterns in order
  (either order for an op declared ``commutative``, e.g. ``add``, ``mul``);
- a string ``"x"``: any variable, bound to the name ``x``; the same name used
  twice must bind the same variable;
- a number: a constant whose every entry equals it (``1`` matches ``1``,
  ``1.0`` and an array of ones).

``match(pattern, var)`` returns the bindings (a dict) or ``None``. Matching
walks the pattern with an explicit stack of alternatives (no recursion).
"""
import weakref

import numpy as np

from tracegrad.trace import Constant


def op_key(op):
    """The key rules are indexed by: an elementwise row's ``key`` (its name;
    all casts share ``'cast'``), else the op's class."""
    scalar = op.scalar_op
    if scalar is not None:
        return scalar.key
    return type(op)


_LARGE_CACHE = {}  # id(array) -> (weakref to it, value), for big constants


def const_value(var):
    """The Python number every entry of constant ``var`` equals, else None."""
    if not isinstance(var, Constant):
        return None
    arr = np.asarray(var.data)
    if arr.size > 64:
        hit = _LARGE_CACHE.get(id(arr))
        if hit is not None and hit[0]() is arr:
            return hit[1]
    value = None
    if arr.size >= 1 and arr.dtype.kind in "iufc":
        first = arr.flat[0]
        if arr.size == 1 or bool(np.all(arr == first)):
            value = first.item()
            if value != value:
                value = None  # NaN never equals a pattern number
    if arr.size > 64:
        if len(_LARGE_CACHE) > 1024:
            _LARGE_CACHE.clear()
        try:
            _LARGE_CACHE[id(arr)] = (weakref.ref(arr), value)
        except TypeError:
            pass
    return value


def is_scalar_like(var, ndim):
    """True when ``var`` cannot change a broadcast result of ``ndim`` axes:
    every known length is 1 and it has at most ``ndim`` axes."""
    shape = var.type.shape
    return len(shape) <= ndim and all(s == 1 for s in shape)


def match(pattern, var):
    """Bindings of ``pattern`` against ``var``, or ``None``."""
    # Each alternative: (work stack of (pattern, var) pairs, bindings).
    alternatives = [([(pattern, var)], {})]
    while alternatives:
        work, binds = alternatives.pop()
        ok = True
        while work:
            pat, v = work.pop()
            if isinstance(pat, str):
                bound = binds.get(pat)
                if bound is None:
                    binds[pat] = v
                elif bound is not v:
                    ok = False
                    break
            elif isinstance(pat, (int, float)):
                value = const_value(v)
                if value is None or value != pat:
                    ok = False
                    break
            else:
                node = v.owner
                if node is None or op_key(node.op) != pat[0] \
                        or len(node.inputs) != len(pat) - 1:
                    ok = False
                    break
                subs = pat[1:]
                if len(subs) == 2 and node.op.commutative:
                    swapped = list(work) + [(subs[0], node.inputs[1]),
                                            (subs[1], node.inputs[0])]
                    alternatives.append((swapped, dict(binds)))
                work.extend(zip(subs, node.inputs))
        if ok:
            return binds
    return None


def bind_names(names, node, key):
    """``match`` of the pattern ``(key, *names)`` (names only, as
    ``('mul', 'x', 'x')``) at ``node``'s output, without the matcher: the
    inputs bound in order (a commutative op's swapped inputs bind the same
    names only where the inputs in order do)."""
    inputs = node.inputs
    if len(inputs) != len(names) or op_key(node.op) != key:
        return None
    binds = {}
    for name, var in zip(names, inputs):
        bound = binds.setdefault(name, var)
        if bound is not var:
            return None
    return binds
