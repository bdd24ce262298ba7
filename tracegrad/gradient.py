"""Theano's ``theano.gradient`` module path: ``grad``, ``jacobian``,
``hessian``, ``Lop``, ``Rop`` on symbolic variables, ``verify_grad`` and
``DisconnectedInputError``, so ``theano.gradient.jacobian(y, x)`` ports
unchanged (``tg.jacobian`` also takes Python callables, JAX style); the
gradient-changing ops (``zero_grad``, ``consider_constant``,
``disconnected_grad``, ``undefined_grad``, ``grad_clip``, ``grad_scale``:
``ops/gradient_ops.py``), ``subgraph_grad`` and ``numeric_grad``."""
from tracegrad.grad import DisconnectedInputError, Lop, Rop, grad, hessian, jacobian
from tracegrad.ops.gradient_ops import (consider_constant, disconnected_grad,  # noqa: F401
                                        grad_clip, grad_scale, undefined_grad, zero_grad)
from tracegrad.testing.gradcheck import verify_grad
from tracegrad.testing.numeric import numeric_grad
from tracegrad.trace import clone_replace

__all__ = ["grad", "jacobian", "hessian", "Lop", "Rop", "verify_grad",
           "DisconnectedInputError", "zero_grad", "consider_constant", "disconnected_grad",
           "undefined_grad", "grad_clip", "grad_scale", "subgraph_grad", "numeric_grad"]


def subgraph_grad(wrt, end, start=None, cost=None, details=False):
    """Theano's ``subgraph_grad``: the gradients of ``cost`` (and of the
    ``start`` dict's known gradients ``{variable: gradient}``) with respect
    to ``wrt`` and to ``end``, the variables where this part of the graph
    stops (the gradient does not flow past them). Returns ``(wrt_grads,
    end_grads)``, and with ``details=True`` also the gradients from
    ``start`` and from ``cost`` separately (``None`` when not given); pass
    ``end_grads`` as the next subgraph's ``start``."""
    if cost is None and start is None:
        raise ValueError("subgraph_grad: give cost, start or both")
    # The gradient must stop at ``end`` yet reach ``end`` itself: the graph is
    # cut there by new variables standing for ``end``, and put back after.
    stand_in = {e: e.type() for e in end}
    roots = ([cost] if cost is not None else []) + list(start or {})
    cut, memo = clone_replace(roots, stand_in)
    params = list(dict.fromkeys(stand_in.get(v, v) for v in list(wrt) + list(end)))
    parts = []
    if start is not None:
        known = {memo.get(k, k): g for k, g in start.items()}
        parts.append(grad(None, params, known_grads=known, disconnected_inputs="ignore"))
    else:
        parts.append(None)
    parts.append(None if cost is None else grad(cut[0], params, disconnected_inputs="ignore"))
    back = {new: old for old, new in stand_in.items()}
    parts = [None if p is None else clone_replace(list(p), back)[0] for p in parts]
    given = [p for p in parts if p is not None]
    by_var = {back.get(v, v): sum(gs[1:], gs[0]) for v, gs in zip(params, zip(*given))}
    wrt_grads, end_grads = [by_var[v] for v in wrt], [by_var[v] for v in end]
    if details:
        return wrt_grads, end_grads, parts[0], parts[1]
    return wrt_grads, end_grads
