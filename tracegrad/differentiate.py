"""What each function transform computes on symbolic arguments.

``tracegrad.transforms`` (the public ``grad``, ``vjp``...) compiles these
with ``jit.Compiled``. Each ``*_transform(fn, ...)`` returns a function of
``(args, kwargs)`` (trees whose leaves are variables, or values) that traces
``fn`` on them and returns the result tree: gradients shaped like their
arguments (``_Wrt.tree``), with the JAX checks of dtypes and shapes on the
way. The conventions (complex numbers included) are in that module's
docstring.
"""
import numpy as np

from tracegrad.grad import Lop, Rop
from tracegrad.grad import grad as _variable_grad
from tracegrad.grad import jacobian as _variable_jacobian
from tracegrad.jit import call_traced, flatten_outputs
from tracegrad.ops.alloc import ones_like, zeros_like
from tracegrad.pytree import Static, flatten, is_container, map_leaves, unflatten
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Constant, Variable, clone_replace

__all__ = ["grad_transform", "jacobian_transform", "hessian_transform",
           "elementwise_transform", "vjp_transform", "jvp_transform", "split_aux",
           "vjp_call", "jvp_call", "function_name"]


# ----------------------------------------------------------------- checks
def function_name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _check_output_dtype(out, what, holomorphic, complex_ok=False):
    """JAX's output checks: a float output; complex only with ``holomorphic``
    (or where ``complex_ok``); ``holomorphic=True`` wants a complex output."""
    kind = out.dtype[0]
    if kind not in "fc":
        raise TypeError(f"{what} requires real-valued outputs (a float dtype), but got "
                        f"{out.dtype}")
    if holomorphic and kind != "c":
        raise TypeError(f"{what} with holomorphic=True requires outputs with complex dtype, "
                        f"but got {out.dtype}")
    if kind == "c" and not (holomorphic or complex_ok):
        raise TypeError(f"{what} requires real-valued outputs (a float dtype), but got "
                        f"{out.dtype}. For holomorphic differentiation, pass "
                        "holomorphic=True. For differentiating non-holomorphic functions "
                        "involving complex outputs, use tg.vjp directly.")


def _scalar_output(out, what, fname, holomorphic):
    """``out`` as a 0-d float (or, holomorphic, complex) variable."""
    if out is None or is_container(out):
        raise TypeError(f"{what}: {fname} must return a scalar, got a {type(out).__name__}"
                        " (return (value, aux) with has_aux=True to return more)")
    try:
        out = as_tensor_variable(out)
    except TypeError:
        raise TypeError(f"{what}: {fname} must return a scalar, got a "
                        f"{type(out).__name__}") from None
    if out.ndim != 0:
        raise TypeError(f"{what}: gradient only defined for scalar-output functions; "
                        f"{fname} returned a value of ndim {out.ndim} (shape "
                        f"{out.type.shape_str()}): reduce it (np.sum) or use tg.jacobian")
    _check_output_dtype(out, what, holomorphic)
    return out


def split_aux(result, has_aux, what, fname):
    if not has_aux:
        return result, None
    if not (type(result) in (tuple, list) and len(result) == 2):
        got = "variable" if isinstance(result, Variable) else type(result).__name__
        if type(result) in (tuple, list):
            got += f" of length {len(result)}"
        raise TypeError(f"{what}: has_aux=True requires {fname} to return a pair "
                        f"(output, auxiliary data), got a {got}")
    return result[0], result[1]


def _symbolic_leaf(o, name):
    if isinstance(o, Variable):
        return ("var",), o
    if type(o) in (int, float, complex) or isinstance(o, (np.ndarray, np.generic)):
        return ("var",), as_tensor_variable(o)
    return ("static", type(o), o), None


def _erased(structure):
    """``structure`` without leaf descriptions: what trees must share."""
    return map_leaves(structure, lambda d: ("leaf",))


class _Wrt:
    """The differentiated arguments of a call: ``args`` with the leaves of
    those at ``nums`` as variables, their structures and variables."""

    def __init__(self, args, nums, single, what, holomorphic=False):
        self.single = single
        self.structures, self.variables, self.counts = [], [], []
        self.constants = {}  # stand-in -> the constant it stands for
        self.args = list(args)
        for n in nums:
            if not -len(args) <= n < len(args):
                raise ValueError(f"{what}: argnums {n} but the function was called with "
                                 f"{len(args)} positional arguments")
            k = n % len(args)
            structure, leaves = flatten(self.args[k], _symbolic_leaf, f"argument {k}")
            if structure[0] == "static":
                raise TypeError(f"{what}: argument {k} is static and has no gradient")
            leaves = [self._stand_in(v) for v in leaves]
            for var in leaves:
                _check_input(var, k, what, holomorphic)
            self.args[k] = unflatten(structure, leaves)
            self.structures.append(structure)
            self.variables.extend(leaves)
            self.counts.append(len(leaves))

    def _stand_in(self, var):
        """A value given to a nested transform (a constant) is differentiated
        through an input standing in for it (a constant may be folded or
        re-made by the ops), replaced by the value in ``finish``."""
        if var.owner is not None or not isinstance(var, Constant):
            return var
        stand_in = var.type()
        stand_in.weak = getattr(var, "weak", False)
        stand_in.traced_argument = True
        self.constants[stand_in] = var
        return stand_in

    def finish(self, result):
        """``result`` (a tree of variables) with the stand-ins replaced."""
        if not self.constants:
            return result
        structure, leaves = flatten(result, lambda o, name: (("leaf",), o))
        variables = [v for v in leaves if isinstance(v, Variable)]
        replaced = dict(zip(variables, clone_replace(variables, self.constants)[0]))
        return unflatten(structure, [replaced.get(v, v) if isinstance(v, Variable) else v
                                     for v in leaves])

    def tree(self, values):
        """``values`` (one per variable) in the structure of the arguments;
        their static leaves (``None``...) stay as they are."""
        trees, start = [], 0
        for structure, count in zip(self.structures, self.counts):
            trees.append(unflatten(structure, values[start:start + count], static=Static))
            start += count
        return trees[0] if self.single else tuple(trees)

    def expected(self):
        """The erased structure a tangent of these arguments must have."""
        erased = [_erased(s) for s in self.structures]
        return erased[0] if self.single else ("tuple", tuple(erased))


def _check_input(var, k, what, holomorphic):
    kind = var.dtype[0]
    if kind not in "fc":
        raise TypeError(f"{what} requires real- or complex-valued inputs (a float or complex "
                        f"dtype), but argument {k} ({var}) has dtype {var.dtype}; leave "
                        "integer and boolean arguments out of argnums")
    if holomorphic and kind != "c":
        raise TypeError(f"{what} with holomorphic=True requires inputs with complex dtype, "
                        f"but argument {k} ({var}) has dtype {var.dtype}")


def _jacobian_blocks(y, wrt):
    """``[d y / d w for w in wrt]``, each of shape ``y.shape + w.shape``."""
    if not wrt:
        return []
    return _variable_jacobian(y, list(wrt), disconnected_inputs="ignore")


# ------------------------------------------------------------- the transforms
def grad_transform(fn, nums, single, has_aux, holomorphic, what, with_value):
    fname = function_name(fn)

    def transform(args, kwargs):
        wrt = _Wrt(args, nums, single, what, holomorphic)
        out, aux = split_aux(call_traced(fn, wrt.args, kwargs), has_aux, what, fname)
        cost = _scalar_output(out, what, fname, holomorphic)
        grads = (_variable_grad(cost, wrt.variables, disconnected_inputs="ignore")
                 if wrt.variables else [])
        g = wrt.tree(grads)
        if with_value:
            return wrt.finish((((cost, aux) if has_aux else cost), g))
        return wrt.finish((g, aux) if has_aux else g)

    return transform


def jacobian_transform(fn, nums, single, has_aux, holomorphic, what):
    fname = function_name(fn)

    def transform(args, kwargs):
        wrt = _Wrt(args, nums, single, what, holomorphic)
        out, aux = split_aux(call_traced(fn, wrt.args, kwargs), has_aux, what, fname)
        out_structure, outs = flatten_outputs(out, fname, what)
        for y in outs:
            _check_output_dtype(y, what, holomorphic)
        blocks = [wrt.tree(_jacobian_blocks(y, wrt.variables)) for y in outs]
        jac = unflatten(out_structure, blocks, static=Static)
        return wrt.finish((jac, aux) if has_aux else jac)

    return transform


def hessian_transform(fn, nums, single, has_aux, holomorphic, what):
    fname = function_name(fn)

    def transform(args, kwargs):
        wrt = _Wrt(args, nums, single, what, holomorphic)
        if not holomorphic:
            for var in wrt.variables:
                if var.dtype[0] == "c":
                    raise TypeError(f"{what} requires real-valued inputs (a float dtype) "
                                    f"unless holomorphic=True, but {var} has dtype "
                                    f"{var.dtype}")
        out, aux = split_aux(call_traced(fn, wrt.args, kwargs), has_aux, what, fname)
        cost = _scalar_output(out, what, fname, holomorphic)
        g = _variable_grad(cost, wrt.variables, disconnected_inputs="ignore")
        h = wrt.tree([wrt.tree(_jacobian_blocks(gi, wrt.variables)) for gi in g])
        return wrt.finish((h, aux) if has_aux else h)

    return transform


def elementwise_transform(fn, nums, single, what):
    fname = function_name(fn)

    def transform(args, kwargs):
        wrt = _Wrt(args, nums, single, what)
        _, outs = flatten_outputs(call_traced(fn, wrt.args, kwargs), fname, what)
        for y in outs:
            _check_output_dtype(y, what, False, complex_ok=True)
        if not outs:
            raise TypeError(f"{what}: {fname} returned no array")
        grads = Lop(outs, wrt.variables, [ones_like(y) for y in outs],
                    disconnected_inputs="ignore")
        return wrt.finish(wrt.tree(grads))

    return transform


def vjp_call(cotangent, primals, kwargs):
    """(Names the arguments of a vjp's compiled function.)"""


def jvp_call(primals, tangents, kwargs):
    """(Names the arguments of a jvp's compiled function.)"""


def _matching(tree, structure, outs, what, role, output_role):
    """The leaves of ``tree`` (cotangents or tangents) as variables of the
    dtypes of ``outs``; ``TypeError`` when its structure is not
    ``structure`` or a dtype cannot be cast to the one it pairs with."""
    tree_structure, leaves = flatten(tree, _symbolic_leaf, role)
    if _erased(tree_structure) != structure:
        raise TypeError(f"{what}: the tree structure of the {role} does not match that of "
                        f"the {output_role}")
    out = []
    for leaf, ref in zip(leaves, outs):
        if leaf.ndim != ref.ndim:
            raise ValueError(f"{what}: a {role} of ndim {leaf.ndim} pairs with a "
                             f"{output_role} of ndim {ref.ndim}")
        if leaf.dtype != ref.dtype:
            if not np.can_cast(leaf.dtype, ref.dtype, "same_kind"):
                raise TypeError(f"{what}: a {role} of dtype {leaf.dtype} pairs with a "
                                f"{output_role} of dtype {ref.dtype}")
            leaf = leaf.astype(ref.dtype)
        out.append(leaf)
    return out


def vjp_transform(fn, nums, single, has_aux, what):
    fname = function_name(fn)

    def transform(args, kwargs):
        cotangent, primals, kw = args
        wrt = _Wrt(primals, nums, single, what)
        out, _ = split_aux(call_traced(fn, wrt.args, kw), has_aux, what, fname)
        out_structure, outs = flatten_outputs(out, fname, what)
        cts = _matching(cotangent, _erased(out_structure), outs, what, "cotangent",
                        "function's output")
        if outs:
            grads = Lop(outs, wrt.variables, cts, disconnected_inputs="ignore")
        else:
            grads = [zeros_like(v) for v in wrt.variables]
        return wrt.finish(wrt.tree(grads))

    return transform


def jvp_transform(fn, nums, single, has_aux, what):
    fname = function_name(fn)

    def transform(args, kwargs):
        primals, tangents, kw = args
        wrt = _Wrt(primals, nums, single, what)
        ts = _matching(tangents, wrt.expected(), wrt.variables, what, "tangents", "primals")
        out, aux = split_aux(call_traced(fn, wrt.args, kw), has_aux, what, fname)
        out_structure, outs = flatten_outputs(out, fname, what)
        for y in outs:
            _check_output_dtype(y, what, False, complex_ok=True)
        t_out = Rop(outs, wrt.variables, ts, disconnected_inputs="ignore") if outs else []
        result = (out, unflatten(out_structure, t_out, static=Static))
        return wrt.finish(result + (aux,) if has_aux else result)

    return transform
