"""Function transforms of NumPy-style code, with JAX's and autograd's names
and semantics: ``grad``, ``value_and_grad``, ``jacobian``, ``hessian``,
``elementwise_grad``, ``vjp``, ``jvp``, ``make_vjp``, ``make_jvp``.

Each transform is a symbolic function of symbolic arguments
(``tracegrad.differentiate``: it traces ``fn`` and differentiates the graph
with ``tracegrad.grad``), run by ``jit.Compiled``: compiled once per argument signature for concrete
arguments, inlined when called while another function is traced, so they
nest (``grad(grad(f))``, ``jit(grad(f))``). Arguments and results are trees
(``tracegrad.pytree``); a gradient has the structure of its argument.

``grad``, ``jacobian`` and ``hessian`` are also Theano's functions of
variables: with a variable (not a callable) first, they are
``tracegrad.grad``'s ``grad(cost, wrt, ...)``, ``jacobian(expression, wrt)``
and ``hessian(cost, wrt)`` unchanged; ``tg.grad is T.grad``.

Complex numbers follow docs/user-guide.md ("Complex gradients"), which is
JAX's convention: for a real ``f`` of a complex ``z = x + iy``, ``grad`` is
``df/dx - i df/dy`` (``grad(lambda z: abs(z)**2)(1+2j) == 2-4j``); ``vjp`` is
the transpose for the bilinear pairing ``Re(w * t)``; ``jvp`` is the ordinary
directional derivative. A complex output is refused by ``grad`` and
``jacobian`` unless ``holomorphic=True`` (then the result is ``f'(z)``).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Literal, Mapping, Sequence, overload

import numpy as np

from tracegrad.config import TRANSFORM_MEMO_SIZE
from tracegrad.differentiate import (elementwise_transform, function_name, grad_transform,
                                     hessian_transform, jacobian_transform, jvp_call,
                                     jvp_transform, split_aux, vjp_call, vjp_transform)
from tracegrad.grad import grad as _variable_grad
from tracegrad.grad import hessian as _variable_hessian
from tracegrad.grad import jacobian as _variable_jacobian
from tracegrad.jit import Compiled, jit
from tracegrad.pytree import flatten
from tracegrad.tensor.variable import TensorVariable
from tracegrad.trace import Variable

__all__ = ["grad", "value_and_grad", "jacobian", "hessian", "elementwise_grad",
           "vjp", "jvp", "make_vjp", "make_jvp"]


# ------------------------------------------------------------ arguments
def _argnums(argnums, what, argnum=None):
    """``(nums, single)`` from ``argnums`` (an int or a sequence of ints);
    autograd's spelling ``argnum`` is accepted too."""
    if argnum is not None:
        argnums = argnum
    if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool):
        return (int(argnums),), True
    if isinstance(argnums, (tuple, list)) and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in argnums):
        if not argnums:
            raise ValueError(f"{what}: argnums is empty")
        return tuple(int(a) for a in argnums), False
    raise TypeError(f"{what}: argnums must be an int or a tuple of ints, got {argnums!r}")


# ------------------------------------------------------------ memoization
_MEMO = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _memo(kind, fn, options, make):
    """The compiled transform ``make()`` of ``fn``, shared by calls with the
    same ``kind``/``fn``/``options`` (``tg.vjp(f, x)`` in a loop compiles
    once); the last ``TRANSFORM_MEMO_SIZE`` are kept."""
    key = (kind, fn, options)
    try:
        hash(key)
    except TypeError:
        return make()
    with _MEMO_LOCK:
        made = _MEMO.get(key)
        if made is not None:
            _MEMO.move_to_end(key)
            return made
        made = _MEMO[key] = make()
        if len(_MEMO) > TRANSFORM_MEMO_SIZE:
            _MEMO.popitem(last=False)
        return made


def _compiled(kind, fn, nums, single, options, transform, static_argnums, static_argnames):
    return _memo(kind, fn, (nums, single, options, static_argnums, static_argnames),
                 lambda: Compiled(fn, transform, static_argnums=static_argnums,
                                  static_argnames=static_argnames, what=kind))


def _hashable(x):
    return tuple(x) if isinstance(x, list) else x


# ---------------------------------------------------------------- public
def value_and_grad(fn: Callable[..., Any], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False, holomorphic: bool = False, *,
                   argnum: int | None = None, static_argnums: int | Sequence[int] = (),
                   static_argnames: str | Sequence[str] = ()) -> Compiled:
    """A compiled callable returning ``(value, grads)`` of the scalar ``fn``.

    ``grads`` is the gradient with respect to argument ``argnums`` (shaped
    like that argument: an array, or a tree of arrays), or a tuple of them
    when ``argnums`` is a tuple. ``fn`` must return a scalar (0-d) float
    value (``TypeError`` otherwise; a complex one with ``holomorphic=True``).
    With ``has_aux=True`` ``fn`` returns ``(value, aux)`` and the call
    ``((value, aux), grads)``. The differentiated arguments must be float
    (or complex) arrays or Python floats. Compiled once per argument
    signature, like ``jit``.
    """
    nums, single = _argnums(argnums, "value_and_grad", argnum)
    transform = grad_transform(fn, nums, single, has_aux, holomorphic, "value_and_grad",
                                with_value=True)
    return _compiled("value_and_grad", fn, nums, single, (has_aux, holomorphic), transform,
                     _hashable(static_argnums), _hashable(static_argnames))


def _grad_of(fn, argnums=0, has_aux=False, holomorphic=False, *, argnum=None,
             static_argnums=(), static_argnames=()):
    nums, single = _argnums(argnums, "grad", argnum)
    transform = grad_transform(fn, nums, single, has_aux, holomorphic, "grad",
                                with_value=False)
    return _compiled("grad", fn, nums, single, (has_aux, holomorphic), transform,
                     _hashable(static_argnums), _hashable(static_argnames))


# Theano's form for variables first: a variable is not callable, a function
# is not a variable, so the forms never overlap. ``return_disconnected='none'``
# may give ``None`` for a disconnected ``wrt``: its result is typed ``Any``.
@overload
def grad(cost: Variable | None, wrt: TensorVariable,
         consider_constant: Sequence[Variable] | None = None,
         disconnected_inputs: str = "raise",
         known_grads: Mapping[Variable, Any] | None = None,
         return_disconnected: Literal["zero", "disconnected"] = "zero") -> TensorVariable: ...
@overload
def grad(cost: Variable | None, wrt: Sequence[TensorVariable],
         consider_constant: Sequence[Variable] | None = None,
         disconnected_inputs: str = "raise",
         known_grads: Mapping[Variable, Any] | None = None,
         return_disconnected: Literal["zero", "disconnected"] = "zero") -> list[TensorVariable]: ...
@overload
def grad(cost: Variable | None, wrt: Any, consider_constant: Sequence[Variable] | None = None,
         disconnected_inputs: str = "raise", known_grads: Mapping[Variable, Any] | None = None,
         return_disconnected: str = "zero") -> Any: ...
@overload
def grad(cost: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False, *, argnum: int | None = None,
         static_argnums: int | Sequence[int] = (),
         static_argnames: str | Sequence[str] = ()) -> Compiled: ...


def grad(cost: Any, *args: Any, **kwargs: Any) -> Any:
    """Gradients: JAX/autograd's ``grad(fn, argnums=0, has_aux=False,
    holomorphic=False)`` for a callable, Theano's ``grad(cost, wrt, ...)``
    for a variable.

    ``tg.grad(fn)`` returns a function computing the gradient of the scalar
    ``fn`` with respect to argument ``argnums`` (a tuple of ints: a tuple of
    gradients), shaped like that argument (arrays, or nested tuples, lists,
    dicts, namedtuples, dataclasses of them; ``None`` leaves stay ``None``).
    With ``has_aux=True`` ``fn`` returns ``(value, aux)`` and the gradient
    function ``(grads, aux)``. A non-scalar or integer output, or an integer
    argument in ``argnums``, raises ``TypeError``; a complex output needs
    ``holomorphic=True`` (the gradient is then ``f'(z)``). Compiled once per
    argument signature (``tg.jit``'s rules), and inlined when called while
    tracing, so ``tg.grad(tg.grad(f))`` is the second derivative.

    ``tg.grad(cost, wrt, consider_constant=None, disconnected_inputs='raise',
    known_grads=None)`` with a variable ``cost`` (or ``None`` with
    ``known_grads``) is the symbolic gradient (``tracegrad.grad.grad``).
    """
    if callable(cost) and not isinstance(cost, Variable):
        return _grad_of(cost, *args, **kwargs)
    return _variable_grad(cost, *args, **kwargs)


def _jacobian_of(fn, argnums=0, has_aux=False, holomorphic=False, *, argnum=None,
                 static_argnums=(), static_argnames=()):
    nums, single = _argnums(argnums, "jacobian", argnum)
    transform = jacobian_transform(fn, nums, single, has_aux, holomorphic, "jacobian")
    return _compiled("jacobian", fn, nums, single, (has_aux, holomorphic), transform,
                     _hashable(static_argnums), _hashable(static_argnames))


def jacobian(expression, *args, **kwargs):
    """Jacobians: JAX's ``jacobian(fn, argnums=0, has_aux=False,
    holomorphic=False)`` (``jacrev``) for a callable, Theano's
    ``jacobian(expression, wrt, ...)`` for a variable.

    ``tg.jacobian(fn)(x)`` has, for each output array ``y`` (``fn`` may
    return a tree), the structure of the differentiated argument with blocks
    of shape ``y.shape + x.shape``. Outputs must be float (complex with
    ``holomorphic=True``); complex inputs of a real function give rows in
    ``grad``'s convention.
    """
    if callable(expression) and not isinstance(expression, Variable):
        return _jacobian_of(expression, *args, **kwargs)
    return _variable_jacobian(expression, *args, **kwargs)


def _hessian_of(fn, argnums=0, has_aux=False, holomorphic=False, *, argnum=None,
                static_argnums=(), static_argnames=()):
    nums, single = _argnums(argnums, "hessian", argnum)
    transform = hessian_transform(fn, nums, single, has_aux, holomorphic, "hessian")
    return _compiled("hessian", fn, nums, single, (has_aux, holomorphic), transform,
                     _hashable(static_argnums), _hashable(static_argnames))


def hessian(cost, *args, **kwargs):
    """Hessians: JAX's ``hessian(fn, argnums=0, has_aux=False,
    holomorphic=False)`` for a callable, Theano's ``hessian(cost, wrt, ...)``
    for a variable.

    ``tg.hessian(fn)(x)`` is the matrix of second derivatives of the scalar
    ``fn``: shape ``x.shape + x.shape``; for a tree argument a tree (its
    structure) of trees, block ``[i][j]`` of shape ``x_i.shape + x_j.shape``;
    for a tuple ``argnums`` a tuple of tuples.
    """
    if callable(cost) and not isinstance(cost, Variable):
        return _hessian_of(cost, *args, **kwargs)
    return _variable_hessian(cost, *args, **kwargs)


def elementwise_grad(fn, argnum=0, *, static_argnums=(), static_argnames=()):
    """autograd's ``elementwise_grad``: the gradient of ``sum(fn(x))``, i.e.
    the elementwise derivative of an elementwise ``fn`` (``fn`` may return a
    tree: every array is summed), shaped like argument ``argnum``."""
    nums, single = _argnums(argnum, "elementwise_grad")
    transform = elementwise_transform(fn, nums, single, "elementwise_grad")
    return _compiled("elementwise_grad", fn, nums, single, (), transform,
                     _hashable(static_argnums), _hashable(static_argnames))


def _backward(fn, nums, single, has_aux, what):
    return _memo(what, fn, (nums, single, has_aux), lambda: Compiled(
        fn, vjp_transform(fn, nums, single, has_aux, what), what=what,
        signature_of=vjp_call))


def _forward(fn):
    return _memo("forward", fn, (), lambda: jit(fn))


def vjp(fn, *primals, has_aux=False):
    """JAX's ``vjp``: ``(out, vjp_fn)`` (``(out, vjp_fn, aux)`` with
    ``has_aux``), where ``out = fn(*primals)`` and ``vjp_fn(cotangent)``
    (a cotangent shaped like ``out``) returns a tuple with one cotangent per
    primal. For complex values, ``Re(sum(w * jvp(t))) == Re(sum(vjp(w) * t))``.
    Both are compiled once per signature and shared by later calls with the
    same ``fn``.
    """
    forward = _forward(fn)
    out, aux = split_aux(forward(*primals), has_aux, "vjp", function_name(fn))
    nums = tuple(range(len(primals)))
    if not nums:
        raise TypeError("vjp: give at least one primal argument")
    backward = _backward(fn, nums, False, has_aux, "vjp")
    args = list(primals)

    def vjp_fn(cotangent):
        return backward(cotangent, args, {})

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def make_vjp(fn, argnum=0):
    """autograd's ``make_vjp``: ``make_vjp(fn, argnum)(*args)`` gives
    ``(vjp_fn, ans)``; ``vjp_fn(g)`` is the vector-Jacobian product for
    argument ``argnum`` (a tuple of ints: a tuple of them)."""
    nums, single = _argnums(argnum, "make_vjp")
    backward = _backward(fn, nums, single, False, "make_vjp")
    forward = _forward(fn)

    def at(*args, **kwargs):
        ans = forward(*args, **kwargs)
        primals = list(args)

        def vjp_fn(g):
            return backward(g, primals, kwargs)

        return vjp_fn, ans

    return at


def _jvp_compiled(fn, nums, single, has_aux, what):
    return _memo(what, fn, (nums, single, has_aux), lambda: Compiled(
        fn, jvp_transform(fn, nums, single, has_aux, what), what=what,
        signature_of=jvp_call))


def _check_shapes(primals, tangents, what):
    """Tangents shaped like their primals (checked on the values: the
    compiled function would broadcast a length-1 tangent silently)."""
    s1, p = flatten(primals, lambda o, n: (("leaf",), o))
    s2, t = flatten(tangents, lambda o, n: (("leaf",), o))
    if s1 != s2:
        raise TypeError(f"{what}: primal and tangent arguments must have the same tree "
                        "structure")
    for a, b in zip(p, t):
        if not isinstance(a, Variable) and not isinstance(b, Variable) \
                and np.shape(a) != np.shape(b):
            raise ValueError(f"{what}: primal and tangent arguments must have equal shapes; "
                             f"got a primal of shape {np.shape(a)} and a tangent of shape "
                             f"{np.shape(b)}")


def jvp(fn, primals, tangents, has_aux=False):
    """JAX's ``jvp``: ``(fn(*primals), tangent_out)`` (and ``aux`` with
    ``has_aux``), the directional derivative of ``fn`` at ``primals`` along
    ``tangents`` (a tuple or list like ``primals``, each tangent shaped and
    typed like its primal)."""
    for name, value in (("primal", primals), ("tangent", tangents)):
        if type(value) not in (tuple, list):
            raise TypeError(f"jvp: {name} arguments must be a tuple or a list; found "
                            f"{type(value).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    if not primals:
        raise TypeError("jvp: give at least one primal argument")
    _check_shapes(tuple(primals), tuple(tangents), "jvp")
    call = _jvp_compiled(fn, tuple(range(len(primals))), False, has_aux, "jvp")
    return call(list(primals), tuple(tangents), {})


def make_jvp(fn, argnum=0):
    """autograd's ``make_jvp``: ``make_jvp(fn, argnum)(*args)`` gives
    ``jvp_fn``; ``jvp_fn(v)`` returns ``(ans, tangent_out)`` along ``v``
    (shaped like argument ``argnum``)."""
    nums, single = _argnums(argnum, "make_jvp")
    call = _jvp_compiled(fn, nums, single, False, "make_jvp")

    def at(*args, **kwargs):
        primals = list(args)

        def jvp_fn(v):
            if all(-len(primals) <= n < len(primals) for n in nums):
                picked = tuple(primals[n] for n in nums)
                _check_shapes(picked[0] if single else picked, v, "make_jvp")
            return call(primals, v, kwargs)

        return jvp_fn

    return at
