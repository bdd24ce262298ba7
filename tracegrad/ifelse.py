"""Theano's ``ifelse``: a lazy conditional.

    z = ifelse(T.lt(a, b), T.mean(x), T.mean(y))

Only the taken branch is computed: each branch becomes an inner graph
(compiled once per device, like a ``scan`` body) over the branch's free
variables, and the ``IfElse`` op runs one of them per call. ``switch``, by
contrast, computes both sides elementwise.

``then_branch`` and ``else_branch`` are a variable each, or lists of equal
length; matching outputs need the same dtype and number of dimensions
(Theano's rule). The gradient is itself lazy: ``ifelse(cond, gradient
through the then branch, gradient through the else branch)``; the condition
has none.
"""
import numpy as np

from tracegrad.grad import grad
from tracegrad.ops.alloc import zeros_like
from tracegrad.scan.body import InnerGraph
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Constant, Op, clone_replace, graph_inputs

__all__ = ["ifelse", "IfElse"]


class IfElse(Op):
    """Runs ``then_graph`` or ``else_graph`` (``InnerGraph``s over the same
    inputs) according to input 0, the condition."""
    __props__ = ("then_graph", "else_graph", "label")
    constant_foldable = True

    def __init__(self, then_graph, else_graph, out_types, name=None):
        self.then_graph = then_graph
        self.else_graph = else_graph
        self.out_types = tuple(out_types)
        self.label = name

    def __str__(self):
        return f"IfElse{{{self.label}}}" if self.label else "IfElse"

    def make_node(self, cond, *inputs):
        return Apply(self, [cond, *inputs], [t() for t in self.out_types])

    def impl(self, xp, cond, *values):
        graph = self.then_graph if bool(np.asarray(cond)) else self.else_graph
        outs = list(graph.function(xp)(*values))
        return outs[0] if len(outs) == 1 else outs   # (one output: the array itself)

    def vjp(self, node, output_grads):
        cond, inputs = node.inputs[0], node.inputs[1:]
        wrt = [i for i in inputs if i.dtype[0] in "fc"]
        if not wrt:
            return [None] * len(node.inputs)
        grads = [g if g is not None else zeros_like(o)
                 for g, o in zip(output_grads, node.outputs)]
        sides = [_branch_gradient(graph, inputs, wrt, grads)
                 for graph in (self.then_graph, self.else_graph)]
        chosen = ifelse(cond, sides[0], sides[1], name=f"grad_{self.label or 'ifelse'}")
        chosen = chosen if isinstance(chosen, list) else [chosen]
        by_input = dict(zip(wrt, chosen))
        return [None] + [by_input.get(i) for i in inputs]


def _branch_gradient(graph, inputs, wrt, grads):
    """The gradient of one branch's outputs (given ``grads``) in the outer
    inputs ``wrt``, built on the outer variables."""
    outputs, _ = clone_replace(list(graph.outputs), dict(zip(graph.inputs, inputs)))
    known = {}
    for out, g in zip(outputs, grads):
        known[out] = known[out] + g if out in known else g
    result = grad(None, wrt, known_grads=known, disconnected_inputs="ignore")
    return [r if r is not None else zeros_like(w) for r, w in zip(result, wrt)]


def _as_list(branch):
    if isinstance(branch, (list, tuple)):
        return [as_tensor_variable(b) for b in branch], True
    return [as_tensor_variable(branch)], False


def _merged_type(a, b, k):
    if a.dtype != b.dtype or a.ndim != b.ndim:
        raise TypeError(f"ifelse: output {k} of the then branch has type {a.type} and of "
                        f"the else branch {b.type}; they must have the same dtype and "
                        "number of dimensions (cast one of them)")
    shape = tuple(p if p == q else None for p, q in zip(a.type.shape, b.type.shape))
    return TensorType(a.dtype, shape)


def ifelse(condition, then_branch, else_branch, name=None):
    """Theano's lazy ``ifelse`` (see the module docstring): a variable, or a
    list when the branches are lists."""
    cond = as_tensor_variable(condition)
    if cond.ndim != 0:
        raise TypeError(f"ifelse: the condition must be a scalar, got {cond.type}")
    then_vars, many = _as_list(then_branch)
    else_vars, _ = _as_list(else_branch)
    if len(then_vars) != len(else_vars):
        raise ValueError(f"ifelse: the then branch has {len(then_vars)} outputs and the else "
                         f"branch {len(else_vars)}")
    out_types = [_merged_type(a, b, k) for k, (a, b) in enumerate(zip(then_vars, else_vars))]
    outer = [v for v in graph_inputs(then_vars + else_vars) if not isinstance(v, Constant)]
    inner = [v.type() for v in outer]
    then_in, _ = clone_replace(then_vars, dict(zip(outer, inner)))
    else_in, _ = clone_replace(else_vars, dict(zip(outer, inner)))
    op = IfElse(InnerGraph(inner, then_in), InnerGraph(inner, else_in), out_types, name)
    outs = op(cond, *outer)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return list(outs) if many else outs[0]
