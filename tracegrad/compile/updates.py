"""Checking ``updates`` and ``givens``, and collecting default updates.

An update ``(shared, value)`` must keep the shared variable's ndim and
dtype, and its shape unless the variable was made with
``shared(..., shape_can_change=True)``: a static shape that differs from
the current value's is an error here, another shape at call time is an
error of the call (``publish.write_updates``), never a silent reallocation. A value of another dtype is cast when that loses nothing (an int32
increment of an int64 state, a Python number that fits); anything else is a
``TypeError`` naming the shared variable.
"""
import numpy as np

from tracegrad.ops.base import cast
from tracegrad.shared import SharedVariable
from tracegrad.tensor.variable import as_tensor_variable, constant
from tracegrad.trace import Variable, ancestors, clone_replace


def _pairs(value, what):
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise TypeError(f"tg.function: each entry of {what} must be a pair "
                                f"(variable, expression), got {item!r}")
            pairs.append(tuple(item))
        return pairs
    raise TypeError(f"tg.function: {what} must be a list of pairs or a dict, "
                    f"got {type(value).__name__}")


def _coerce(target, value, what):
    """``value`` as a variable of ``target``'s dtype and ndim, or TypeError."""
    if isinstance(value, Variable) and value.type == target.type:
        return value  # (also how values of non-array types, e.g. sparse, get through)
    try:
        value = as_tensor_variable(value)
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None
    if value.ndim != target.ndim:
        raise TypeError(f"{what}: the new value {value} has type {value.type} "
                        f"(ndim {value.ndim}) but {target} has type {target.type} "
                        f"(ndim {target.ndim})")
    if value.dtype != target.dtype:
        value = _lossless_cast(target, value, what)
    return value


def _lossless_cast(target, value, what):
    if getattr(value, "weak", False):
        data = np.asarray(value.data)
        with np.errstate(all="ignore"):
            converted = data.astype(target.dtype)
        if np.array_equal(data, converted):
            return constant(converted)
    elif np.promote_types(value.dtype, target.dtype) == target.dtype:
        return cast(value, target.dtype)
    raise TypeError(
        f"{what}: the new value {value} has type {value.type}, which does not fit "
        f"{target} of type {target.type} without loss of precision; cast it "
        f"explicitly (e.g. expr.astype('{target.dtype}'))")


def normalize_updates(updates):
    """``[(shared, value variable)]`` from a list of pairs or a dict, checked."""
    result = []
    seen = set()
    for shared, value in _pairs(updates, "updates"):
        if not isinstance(shared, SharedVariable):
            raise TypeError(f"tg.function: updates can only change shared variables; "
                            f"{shared!r} is a {type(shared).__name__}")
        if shared in seen:
            raise ValueError(f"tg.function: shared variable {shared} has two updates")
        seen.add(shared)
        value = _coerce(shared, value, f"update of shared variable {shared}")
        _check_static_shape(shared, value)
        result.append((shared, value))
    return result


def _check_static_shape(shared, value):
    """An update whose static shape cannot be the variable's current shape
    is an error now, not at the first call (see ``shared(shape_can_change=)``)."""
    static = getattr(value.type, "shape", None)
    current = getattr(shared.container.value, "shape", None)
    if shared.shape_can_change or static is None or current is None \
            or len(static) != len(current):
        return
    if any(n is not None and n != m for n, m in zip(static, current)):
        shown = tuple("?" if n is None else n for n in static)
        raise ValueError(
            f"tg.function: the update of shared variable {shared} has static shape "
            f"{shown} but the variable's value has shape {tuple(current)}; an update "
            "must keep the shape. Fix the update's expression, or create the variable "
            "with tg.shared(value, shape_can_change=True) if its shape may change")


def normalize_givens(givens):
    """``[(old variable, new variable)]`` from a list of pairs or a dict."""
    result = []
    seen = set()
    for old, new in _pairs(givens, "givens"):
        if not isinstance(old, Variable):
            raise TypeError(f"tg.function: givens replace variables; got {old!r}")
        if old in seen:
            raise ValueError(f"tg.function: {old} is replaced twice in givens")
        seen.add(old)
        result.append((old, _coerce(old, new, f"givens entry for {old}")))
    return result


def apply_givens(variables, givens):
    """``variables`` rebuilt with the ``givens`` substituted (new nodes; the
    original graph is not modified)."""
    if not givens:
        return list(variables)
    new, _ = clone_replace(list(variables), dict(givens))
    return new


def default_updates(roots, explicit, no_default_updates, givens, blockers=()):
    """The ``(shared, value)`` pairs of ``shared.default_update`` for shared
    variables reached from ``roots``, unless an explicit update exists or
    ``no_default_updates`` is ``True`` or lists them; and ``used``:
    ``ancestors(roots + [the pairs' values], blockers)`` (every variable the
    function needs). Returns ``(pairs, used, shared)``, ``shared``: the
    shared variables of ``used``, in its order. The walk that found no
    default update is that one, so it is not walked twice."""
    if no_default_updates is True:
        return ([],) + _walk(roots, blockers)
    skip = set(no_default_updates or ()) if no_default_updates is not False else set()
    done = set(explicit) | skip
    result = []
    frontier = list(roots)
    first = None
    while frontier:
        found = []
        walked = _walk(frontier, blockers)
        first = walked if first is None else first
        for var in walked[1]:
            if var not in done and getattr(var, "default_update", None) is not None:
                done.add(var)
                value = _coerce(var, var.default_update, f"default update of {var}")
                value, = apply_givens([value], givens)
                found.append((var, value))
        result.extend(found)
        frontier = [value for _, value in found]
    if result or first is None:
        # (the walk from every output, in its own order: the order of the
        # function's shared inputs)
        first = _walk(list(roots) + [value for _, value in result], blockers)
    return (result,) + first


def _walk(roots, blockers):
    """``(ancestors(roots, blockers), the shared variables among them)``."""
    used = ancestors(roots, blockers)
    return used, [var for var in used if isinstance(var, SharedVariable)]
