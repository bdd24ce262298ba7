"""Helpers shared by the rewrite tests: strict engine checks, op keys of a
graph, and the reference evaluator with floating-point warnings silenced."""
import warnings

import pytest

from tracegrad.evaluate import evaluate
from tracegrad.rewrite import engine
from tracegrad.rewrite.ieee import is_guard
from tracegrad.rewrite.pattern import op_key
from tracegrad.trace import toposort


@pytest.fixture(autouse=True)
def strict(monkeypatch):
    """Every rewrite in the test is checked (type kept, no self-reference)."""
    monkeypatch.setattr(engine, "STRICT", True)


def keys(outputs):
    """Op keys of the nodes computing ``outputs`` (a variable or a list)."""
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [op_key(n.op) for n in toposort(list(outputs))]


def unguarded_keys(outputs):
    """``keys(outputs)`` without the IEEE guards (``ieee.is_guard``: a
    factor 1 where a cancelled value's inputs are finite, else NaN where
    NumPy gives NaN) and what only they read: the computation the rewrite
    chose."""
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    kept, stack = set(), [v for v in outputs if not is_guard(v)]
    while stack:
        node = stack.pop().owner
        if node is None or node in kept:
            continue
        kept.add(node)
        stack.extend(v for v in node.inputs if not is_guard(v))
    return [op_key(n.op) for n in toposort(list(outputs)) if n in kept]


def run(outputs, values):
    """Reference values of ``outputs`` (naive forms may overflow: no warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(list(outputs), values)
