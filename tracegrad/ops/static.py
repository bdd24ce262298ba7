"""What is known of values while building the graph, and axis arguments.

The bottom of the ops layer: plain functions over variables and their static
types, importing no op module, so every op module (``base`` and up) can use
them. ``static_value`` sees through constants, ops answering
``static_output(node)`` from static types alone (``shape(x)`` of a fully
shaped ``x``) and small computations by ops marked ``foldable`` (elementwise,
indexing, ``MakeVector``...); ``static_entries`` reads a shape vector entry by
entry. ``tracegrad.ops.shape_static`` re-exports them.
"""
import operator
import threading

import numpy as np

from tracegrad.config import FOLD_MAX_NODES as _FOLD_MAX_NODES, FOLD_MAX_SIZE as _FOLD_MAX_SIZE
from tracegrad.evaluate import run_node
from tracegrad.tensor.variable import TensorConstant, as_tensor_variable
from tracegrad.trace import Constant, Variable


# ------------------------------------------------------------ axes
def normalize_axis(axis, ndim, opname="reduce"):
    """``axis`` (None, int, negative int, tuple) -> sorted tuple of axes.

    Raises NumPy's ``AxisError`` for an axis out of range and ``ValueError``
    for a repeated axis.
    """
    if axis is None:
        return tuple(range(ndim))
    items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    out = []
    for a in items:
        if isinstance(a, Variable):
            if not isinstance(a, TensorConstant):
                raise TypeError(f"{opname}: axis must be known when the graph is "
                                f"built, got the symbolic variable {a}")
            a = a.data.item()
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(f"{opname}: axis must be an integer or a tuple of "
                            f"integers, got {type(a).__name__}") from None
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{opname}: duplicate value in 'axis' ({axis})")
    return tuple(sorted(out))


def _axis(axis, ndim, opname):
    """One axis, negative allowed, as a non-negative int (AxisError if out of range)."""
    return normalize_axis(axis, ndim, opname)[0]


def _ints(vector):
    """A 1-d integer array (NumPy or CuPy) as a tuple of Python ints."""
    return tuple(int(v) for v in vector.tolist())


def _is_int(var):
    return var.dtype[0] in "iu"


# ------------------------------------------------------------ static values
# the budget of static folding: tracegrad.config.FOLD_MAX_NODES/FOLD_MAX_SIZE


def static_value(var):
    """``var``'s value (a NumPy array) when it is known while building the graph.

    Known are constants, outputs of ops that answer ``static_output(node)``
    from static types alone (``shape(x)`` of a fully shaped ``x``), and small
    computations on those by ops marked ``foldable`` (elementwise, indexing,
    ``MakeVector``...). Anything else gives ``None``; the walk is iterative and
    bounded, so asking is cheap. A Python number or a tuple of lengths
    (``x.shape``, whose known entries are ints) is read as the constant it
    makes.

    A ``static_output`` hook may ask again (``x[0]`` asks for the entries of
    ``x``): such a nested question shares the outer one's results, what it
    found unknown and its node budget, so a graph where each value reads the
    previous one twice (``y = sum(y) * y + y[0]``, n times) costs O(n)
    questions, not 2^n.
    """
    if not isinstance(var, Variable):
        try:
            var = as_tensor_variable(var)
        except (TypeError, ValueError):
            return None
    walk = getattr(_ACTIVE, "walk", None)
    if walk is not None:
        return walk.value(var)
    walk = _ACTIVE.walk = _Walk()
    try:
        return walk.value(var)
    finally:
        _ACTIVE.walk = None


_ACTIVE = threading.local()  # the outermost ``static_value`` walk of this thread


class _Walk:
    """One outermost ``static_value`` question: values found, variables found
    unknown and the node budget left, shared by the questions nested in it."""

    __slots__ = ("values", "unknown", "budget")

    def __init__(self):
        self.values = {}
        self.unknown = set()
        self.budget = _FOLD_MAX_NODES

    def value(self, var):
        values = self.values
        if var in values:
            return values[var]
        if var in self.unknown:
            return None
        stack = [(var, False)]
        while stack:
            v, ready = stack.pop()
            if v in values:
                continue
            if not self._step(v, ready, stack):
                self.unknown.add(v)
                self.unknown.add(var)
                return None
        return values[var]

    def _step(self, v, ready, stack):
        """Learn ``v``'s value or push what it needs; False when unknown."""
        values = self.values
        if isinstance(v, Constant):
            values[v] = np.asarray(v.data)
            return True
        node = v.owner
        if ready:  # its inputs are known now
            arrays = [values[i] for i in node.inputs]
            if any(a.size > _FOLD_MAX_SIZE for a in arrays):
                return False
            try:
                values.update(zip(node.outputs, run_node(node, arrays)))
            except Exception:
                return False
            return True
        if node is None or v in self.unknown:
            return False
        hook = getattr(node.op, "static_output", None)
        known = hook(node) if hook is not None else None
        if known is not None:
            values.update(zip(node.outputs, known))
            return True
        if not getattr(node.op, "foldable", False):  # (``Elemwise`` is foldable)
            return False
        self.budget -= 1
        if self.budget < 0:
            return False
        stack.append((v, True))
        stack.extend((i, False) for i in node.inputs if i not in values)
        return True


def static_int(var):
    """The value of the integer scalar ``var`` if known while building, else None."""
    value = static_value(var)
    return None if value is None else int(value)


def static_entries(vec, depth=8):
    """What is known of the entries of the 1-d ``vec``: a list with an int or
    ``None`` per entry, or ``None`` when its length is unknown.

    Ops that build shape vectors answer ``static_entries(node)`` (``shape``,
    ``MakeVector``, ``concatenate``, slicing), so partly known shapes stay
    partly known.
    """
    value = static_value(vec)
    if value is not None:
        return [int(v) for v in value]
    node = vec.owner
    hook = getattr(node.op, "static_entries", None) if node is not None else None
    if hook is not None and depth > 0:
        entries = hook(node, depth - 1)
        if entries is not None:
            return entries
    n = vec.type.shape[0]
    return None if n is None else [None] * n


def _check_shape_input(vec, ndim, fname):
    if vec.ndim != 1 or not _is_int(vec):
        raise TypeError(f"{fname}: the shape must be an integer vector, got {vec.type}")
    if vec.type.shape[0] not in (None, ndim):
        raise ValueError(f"{fname}: expected a shape of length {ndim}, got {vec.type}")
    return static_entries(vec) or [None] * ndim


def _check_runtime_length(shape, ndim, fname):
    if len(shape) != ndim:
        raise ValueError(f"{fname}: expected a shape of length {ndim}, got {shape}")
