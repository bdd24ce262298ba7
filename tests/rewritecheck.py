"""Helpers shared by the rewrite tests: strict engine checks, op keys of a
graph, and the reference evaluator with floating-point warnings silenced."""
import warnings

import pytest

from tracegrad.evaluate import evaluate
from tracegrad.rewrite import engine
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


def run(outputs, values):
    """Reference values of ``outputs`` (naive forms may overflow: no warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(list(outputs), values)
