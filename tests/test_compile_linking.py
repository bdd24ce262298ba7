"""Linking a big schedule: the loop over a step table (``runtime.run_table``)
does what the generated straight-line runner does, errors included."""
import numpy as np
import pytest

import tracegrad.tensor as T
from tracegrad import function
from tracegrad.compile import runtime
from tracegrad.trace import Apply, Op


class TwoOut(Op):
    """``(x + 1, x * 2)``: a step of two outputs."""

    def make_node(self, x):
        return Apply(self, [x], [x.type(), x.type()])

    def impl(self, xp, x):
        return x + 1, x * 2


class AsFloat32(Op):
    """Returns float32 for a float64 output: the runner must cast."""

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        return x.astype(np.float32)


class PlainNumber(Op):
    """Returns a Python float for a 0-d output: the runner makes it an array."""

    def make_node(self, x):
        return Apply(self, [x], [T.dscalar()])

    def impl(self, xp, x):
        return float(x.sum())


class Fails(Op):
    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        raise ValueError("boom")


def _graph():
    x = T.dvector("x")
    a, b = TwoOut()(T.exp(x))
    c = AsFloat32()(a * b)
    total = PlainNumber()(c) + T.sum(x[1:] * 3.0)
    return [x], [total, c, T.sin(b) / (a + 1.0), x[0]]


@pytest.mark.parametrize("mode", ["fast_run", "fast_compile"])
def test_table_runner_matches_the_straight_line_runner(monkeypatch, mode):
    inputs, outputs = _graph()
    arg = np.linspace(-1.0, 2.0, 7)
    expected = function(inputs, outputs, mode=mode)(arg)
    monkeypatch.setattr(runtime, "STRAIGHT_LINE_STEPS", 0)
    f = function(inputs, outputs, mode=mode)
    for _ in range(2):  # freed slots are refilled on the next call
        got = f(arg)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert type(g) is np.ndarray and g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(g, e)


def test_table_runner_is_used_past_the_threshold(monkeypatch):
    inputs, outputs = _graph()
    monkeypatch.setattr(runtime, "STRAIGHT_LINE_STEPS", 2)
    f = function(inputs, outputs, mode="fast_compile")
    assert len(f.schedule.steps) > 2
    runner = getattr(f._run, "__wrapped__", f._run)  # (before the first call)
    assert "run_table" in runner.__code__.co_names
    monkeypatch.setattr(runtime, "STRAIGHT_LINE_STEPS", 10 ** 6)
    g = function(inputs, outputs, mode="fast_compile")
    assert "run_table" not in getattr(g._run, "__wrapped__", g._run).__code__.co_names


@pytest.mark.parametrize("limit", [0, 10 ** 6])
def test_table_runner_errors_name_the_failing_node(monkeypatch, limit):
    monkeypatch.setattr(runtime, "STRAIGHT_LINE_STEPS", limit)
    x = T.dvector("x")
    bad = Fails()(T.exp(x) + 1.0)
    f = function([x], [T.sum(bad) * 2.0, T.cos(x)])
    with pytest.raises(ValueError, match="boom") as info:
        f(np.ones(3))
    assert isinstance(info.value.tracegrad_node.op, Fails)
