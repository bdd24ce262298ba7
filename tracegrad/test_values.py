"""Theano's test values: with ``tg.config.compute_test_value`` set to
``'ignore'``, ``'warn'`` or ``'raise'`` (``'pdb'`` is ``'raise'``), every node
is computed as soon as an op builds it, on its inputs' test values:

    tg.config.compute_test_value = 'raise'
    x = T.dmatrix('x')
    x.tag.test_value = np.random.rand(5, 10)
    y = T.dot(x, w)          # a shape error is raised here, naming this line

An input's test value is ``var.tag.test_value`` (constants: their value;
shared variables: their current value). Each output gets its own. When an
input has none, ``'ignore'`` skips the node, ``'warn'`` warns, ``'raise'``
raises ``ValueError`` naming the input. ``'off'`` (the default) computes
nothing and costs nothing.
"""
import warnings

import numpy as np

from tracegrad.config import WATCHERS, config
from tracegrad.evaluate import run_node
from tracegrad.trace import NODE_HOOKS, Constant

__all__ = ["get_test_value", "MissingTestValue"]


class MissingTestValue(ValueError):
    """An input of a node has no test value (``compute_test_value='raise'``)."""


_NONE = object()


def _test_value(var):
    if isinstance(var, Constant):
        return var.data
    container = getattr(var, "container", None)   # a shared variable
    if container is not None:
        return np.asarray(container.value)
    tag = var._tag
    value = getattr(tag, "test_value", _NONE) if tag is not None else _NONE
    if value is _NONE:
        return _NONE
    value = np.asarray(value)
    if value.ndim != var.type.ndim:
        raise ValueError(f"the test value of {var} has {value.ndim} dimension(s), its type "
                         f"{var.type} has {var.type.ndim}")
    return value.astype(var.type.dtype, copy=False)


def get_test_value(var):
    """``var``'s test value (raises ``MissingTestValue`` when it has none)."""
    value = _test_value(var)
    if value is _NONE:
        raise MissingTestValue(f"{var} has no test value: set {var}.tag.test_value")
    return value


def _missing(node, var):
    message = (f"{node.op.name}: input {var} has no test value (set "
               f"{var}.tag.test_value, or tg.config.compute_test_value = 'off')")
    mode = config.compute_test_value
    if mode in ("raise", "pdb"):
        raise MissingTestValue(message)
    if mode == "warn":
        warnings.warn(message, stacklevel=4)


def compute_test_values(node):
    """Give ``node``'s outputs test values computed from its inputs'."""
    values = []
    for var in node.inputs:
        value = _test_value(var)
        if value is _NONE:
            _missing(node, var)
            return
        values.append(value)
    for var, value in zip(node.outputs, run_node(node, values)):
        var.tag.test_value = value


def _watch(mode):
    active = compute_test_values in NODE_HOOKS
    if mode != "off" and not active:
        NODE_HOOKS.append(compute_test_values)
    elif mode == "off" and active:
        NODE_HOOKS.remove(compute_test_values)


WATCHERS.setdefault("compute_test_value", []).append(_watch)
_watch(config.compute_test_value)
