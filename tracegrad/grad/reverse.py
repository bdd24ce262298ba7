"""Reverse-mode differentiation: accumulate vector-Jacobian products.

The engine walks the nodes between ``wrt`` and the seeds (the cost, or
``known_grads``) in reverse topological order and asks each node's op for its
``vjp``. It never names a particular op: an op without a rule raises an error
naming itself.
"""
import sys
import warnings

import numpy as np

from tracegrad.collector import paused
from tracegrad.config import config
from tracegrad.ops.alloc import zeros_like
from tracegrad.ops.base import ZERO, NoGradient, NotDifferentiableError, match_gradient_dtype
from tracegrad.tensor.variable import as_tensor_variable, constant
from tracegrad.trace import Variable, anchor_sources, release_sources, toposort


class DisconnectedInputError(ValueError):
    """``grad`` was asked for the gradient of a variable the cost does not use."""


def _is_float(var):
    return var.type.dtype[0] in "fc"


def _as_list(wrt):
    if isinstance(wrt, (list, tuple)):
        return list(wrt), False
    return [wrt], True


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise",
         known_grads=None, return_disconnected="zero"):
    """Symbolic gradient of the scalar ``cost`` with respect to ``wrt``.

    ``wrt`` is a variable or a list of them; the result has the same form.
    ``consider_constant`` lists variables treated as constants (no gradient
    flows through them). ``known_grads`` maps variables to gradients already
    known (``cost`` may then be ``None``). ``disconnected_inputs`` is
    ``'raise'``, ``'warn'`` or ``'ignore'`` for variables the cost does not
    depend on; their gradient is zero (or ``None`` when
    ``return_disconnected='none'``).
    """
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError("disconnected_inputs must be 'raise', 'warn' or 'ignore'")
    wrt_list, single = _as_list(wrt)
    for w in wrt_list:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {type(w).__name__}")
    seeds = _seeds(cost, known_grads)
    with paused():
        grads = backpropagate(seeds, wrt_list, consider_constant or ())
    results = []
    for w in wrt_list:  # (a loop, not a comprehension: the warning's stacklevel)
        results.append(_result(w, grads, disconnected_inputs, return_disconnected))
    return results[0] if single else results


def _seeds(cost, known_grads):
    """The gradients the walk starts from: ``1`` for ``cost``, and ``known_grads``."""
    seeds = {}
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise TypeError(
                f"grad: cost must be a scalar (0-d), got {cost} with ndim {cost.ndim}; "
                "reduce it first (e.g. cost.sum()) or use tg.jacobian / known_grads")
        if not _is_float(cost):
            raise TypeError(f"grad: cost must have a float dtype, got {cost.dtype}")
        # (the constant 1: a 0-d cost's shape is always (), so ones_like's
        # alloc(1, shape(cost)) only made gradients longer to read and rewrite)
        seeds[cost] = constant(np.ones((), dtype=cost.dtype))
    for var, g in (known_grads or {}).items():
        g = as_tensor_variable(g)
        if g.ndim != var.ndim:
            raise ValueError(f"grad: known gradient for {var} has ndim {g.ndim}, "
                             f"expected {var.ndim}")
        # A complex known gradient of a real variable pairs through its real
        # part (docs/user-guide.md, "Complex gradients").
        seeds[var] = (g if g.dtype == var.dtype or not _is_float(var)
                      else match_gradient_dtype(g, var))
    if not seeds:
        raise TypeError("grad: give a cost or known_grads")
    return seeds


def _result(w, grads, disconnected_inputs, return_disconnected):
    """What ``grad`` returns for ``w``: its gradient, or for a ``w`` that
    none reaches, zeros (``None`` with ``return_disconnected='none'``), after
    raising or warning about a ``w`` the cost does not use at all."""
    g = grads.get(w)
    if g is not None:
        return g
    if w not in grads:  # not connected at all
        message = (f"grad: the cost does not depend on {w} "
                   f"(disconnected input); pass disconnected_inputs='ignore' "
                   "or 'warn' to get zeros")
        if disconnected_inputs == "raise":
            raise DisconnectedInputError(message)
        if disconnected_inputs == "warn":
            warnings.warn(message, stacklevel=3)
    if return_disconnected == "none":
        return None
    dtype = w.dtype if _is_float(w) else config.floatX
    return zeros_like(w, dtype=dtype)


def backpropagate(seeds, wrt, consider_constant=()):
    """Map each of ``wrt`` to its accumulated gradient.

    A ``wrt`` reached only through non-differentiable paths maps to ``None``;
    one not reached at all is absent. A gradient known to be zero (``ZERO``,
    a piecewise-constant function's vjp) stays symbolic during the walk, as
    JAX's symbolic zeros: it adds no term to a sum and a node whose output
    gradients are all zero passes zero to its inputs without asking its vjp,
    so ``floor(f(x))`` costs no gradient graph for ``f``. It becomes
    ``zeros_like`` only where a ``wrt`` ends up with nothing else.
    """
    anchor = anchor_sources(sys._getframe())  # (the nodes' source, found once)
    try:
        return _backpropagate(seeds, wrt, consider_constant)
    finally:
        release_sources(anchor)


def _backpropagate(seeds, wrt, consider_constant):
    consider_constant = set(consider_constant)
    wrt_set = set(wrt)
    relevant, reach = _relevant_nodes(seeds, wrt_set, consider_constant)
    pending = {}  # variable -> list of gradient terms
    finished = {}  # wrt variables computed by a node: their total, kept for the caller
    for var, g in seeds.items():
        if var in reach:
            pending.setdefault(var, []).append(g)
    for node in reversed(relevant):
        out_grads = _output_grads(node, pending, wrt_set, finished)
        if _all_zero(out_grads):
            _pass_zero(node, pending, reach, consider_constant)
        elif any(g is not None for g in out_grads):
            _pull_back(node, out_grads, pending, reach, consider_constant)
    return _collect(wrt, pending, finished, seeds)


def _all_zero(out_grads):
    """Whether the gradients are symbolic zeros, but for missing ones."""
    return any(g is ZERO for g in out_grads) and all(g is None or g is ZERO for g in out_grads)


def _output_grads(node, pending, wrt_set, finished):
    """The totals of ``node``'s outputs' gradient terms (taken off
    ``pending``); those of ``wrt`` variables are kept in ``finished``."""
    out_grads = []
    for o in node.outputs:
        terms = pending.pop(o, None)
        out_grads.append(_total(terms))
        if terms is not None and o in wrt_set:
            finished[o] = out_grads[-1]
    return out_grads


def _collect(wrt, pending, finished, seeds):
    """``backpropagate``'s result: each reached ``wrt``'s total, a symbolic
    zero made ``zeros_like``."""
    out = {}
    for w in wrt:
        if w in pending:
            g = _leaf_total(pending[w]) if w.owner is None else _total(pending[w])
        elif w in finished:
            g = finished[w]
        elif w in seeds:
            g = seeds[w]
        else:
            continue
        out[w] = zeros_like(w) if g is ZERO else g
    return out


def _relevant_nodes(seeds, wrt_set, consider_constant):
    """The nodes on a path from ``wrt`` to a seed (topological order), and
    the variables such a path reaches."""
    nodes = toposort(list(seeds), blockers=consider_constant)
    reach = set(wrt_set)
    relevant = []
    for node in nodes:
        if any(i in reach for i in node.inputs):
            reach.update(node.outputs)
            relevant.append(node)
    return relevant, reach


def _pull_back(node, out_grads, pending, reach, consider_constant):
    """Ask ``node``'s op for its vjp and add each input's term to ``pending``."""
    out_grads = [_fill_missing(g, o) for g, o in zip(out_grads, node.outputs)]
    in_grads = node.op.vjp(node, out_grads)
    if len(in_grads) != len(node.inputs):
        raise AssertionError(f"vjp of {node.op.name} returned {len(in_grads)} gradients "
                             f"for {len(node.inputs)} inputs")
    for inp, g in zip(node.inputs, in_grads):
        if inp not in reach or inp in consider_constant:
            continue
        terms = pending.setdefault(inp, [])
        if g is None or not _is_float(inp):
            continue
        if isinstance(g, NoGradient):  # an argument without a derivative (ops.base)
            raise NotDifferentiableError(g.message)
        if g is not ZERO and g.ndim != inp.ndim:
            raise AssertionError(
                f"vjp of {node.op.name} gave a gradient of ndim {g.ndim} for an input "
                f"of ndim {inp.ndim}")
        terms.append(g)


def _pass_zero(node, pending, reach, consider_constant):
    """A node whose outputs' gradients are all zero: each float input it
    reaches gets a zero term (its vjp would multiply zeros)."""
    for inp in node.inputs:
        if inp in reach and inp not in consider_constant:
            terms = pending.setdefault(inp, [])
            if _is_float(inp):
                terms.append(ZERO)


def _total(terms):
    """The sum of ``terms``; ``ZERO`` when all are zero, ``None`` when none."""
    if not terms:
        return None
    nonzero = [t for t in terms if t is not ZERO]
    if not nonzero:
        return ZERO
    total = nonzero[0]
    for t in nonzero[1:]:
        total = total + t
    return total


def _leaf_total(terms):
    """``_total`` for a leaf's gradient: terms that scatter into fresh zeros
    (``op.accumulate_onto``: the vjps of ``x[i]``) are chained onto one
    another, so ``sum(f(x[i]) for i in range(n))`` gives n scatter nodes
    and not n zeros, n scatters and n - 1 additions. (Only for a leaf: its
    total is read by nobody in the graph, so rewrites that look for one
    scatter into zeros — ``stabilize_nnet`` — meet the same graph as before.)"""
    nonzero = [t for t in terms or () if t is not ZERO]
    if len(nonzero) < 2:
        return _total(terms)
    chained = nonzero[0]
    rest = []
    for t in nonzero[1:]:
        onto = None if t.owner is None else t.owner.op.accumulate_onto(t.owner, chained)
        if onto is not None:
            chained = onto
        else:
            rest.append(t)
    return _total([chained] + rest)


def _fill_missing(g, out):
    if g is ZERO:
        return zeros_like(out)
    if g is not None:
        return g
    return zeros_like(out, dtype=out.dtype if _is_float(out) else config.floatX)
