"""Constant folding: a node whose inputs are all constants becomes a constant.

The value is computed once with the reference implementation
(``evaluate.run_node``). Not folded:

- ops marked ``op.is_random = True`` or ``op.constant_foldable = False``;
- results larger than ``FOLD_MAX_BYTES`` that are also larger than the
  inputs together (``zeros((10000, 10000))`` stays a small node instead of
  becoming an 800 MB constant);
- nodes whose computation raises (the error then happens, with its context,
  when the function runs).

Ops answering ``static_output(node)`` (``shape(x)`` of a fully shaped ``x``)
are folded to that value even when their inputs are not constants.
"""
import numpy as np

from tracegrad.evaluate import run_node
from tracegrad.rewrite.engine import Rule, register
from tracegrad.trace import Constant

from tracegrad.config import FOLD_MAX_BYTES  # (a tunable: tracegrad/config.py)


def foldable(op):
    """Whether nodes of ``op`` may be replaced by their value."""
    return not op.is_random and op.constant_foldable


def _static_outputs(node):
    """Values an op knows from the static types alone (``shape(x)`` of a
    fully shaped ``x``), through its ``static_output(node)`` hook."""
    hook = node.op.static_output
    if hook is None or not foldable(node.op):
        return None
    try:
        values = hook(node)
    except Exception:
        return None
    return None if values is None else _as_constants(node, values, 0)


def _as_constants(node, values, in_bytes):
    from tracegrad.tensor.variable import TensorConstant
    replacements = []
    for var, value in zip(node.outputs, values):
        value = np.asarray(value)
        if value.nbytes > max(FOLD_MAX_BYTES, in_bytes):
            return None
        matches = getattr(var.type, "value_matches", None)
        if matches is None or not matches(value):
            return None
        # a copy: the result may be a view of an input's data
        replacements.append(TensorConstant(var.type, np.array(value, copy=True)))
    return replacements


def fold_constants(node, ctx):
    inputs = node.inputs
    for inp in inputs:
        if not isinstance(inp, Constant):
            return _static_outputs(node)
    if not foldable(node.op):
        return None
    arrays = [inp.data for inp in inputs]
    with np.errstate(all="ignore"):
        try:
            results = run_node(node, arrays)
        except Exception:
            return None
    return _as_constants(node, results, sum(np.asarray(a).nbytes for a in arrays))


register("constant_fold", Rule("constant_fold", None, fold_constants))
