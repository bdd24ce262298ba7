"""The Hypothesis strategies of ``tracegrad.testing.strategies``."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.testing import strategies as tgst
from tracegrad.trace import toposort

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(tgst.shapes(min_dims=1, max_dims=4, min_side=2, max_side=6))
def test_shapes_respect_bounds(shape):
    assert isinstance(shape, tuple)
    assert 1 <= len(shape) <= 4
    assert all(2 <= s <= 6 for s in shape)


@FAST
@given(tgst.broadcastable_shape_pairs(max_dims=4))
def test_broadcastable_shape_pairs_broadcast(pair):
    a, b = pair
    assert len(a) <= 4 and len(b) <= 4
    np.broadcast_shapes(a, b)  # raises if they do not broadcast


def test_broadcastable_shape_pairs_cover_broadcasting():
    seen = set()

    @settings(max_examples=100, deadline=None, database=None)
    @given(tgst.broadcastable_shape_pairs(min_dims=1, min_side=2))
    def collect(pair):
        a, b = pair
        if len(a) != len(b):
            seen.add("ranks differ")
        if a != b and len(a) == len(b):
            seen.add("length-1 axes")

    collect()
    assert seen == {"ranks differ", "length-1 axes"}


@FAST
@given(st.data(), st.sampled_from(["float64", "float32", "int32", "bool", "complex128"]),
       tgst.shapes(max_dims=3))
def test_arrays_default_elements_are_bounded_and_finite(data, dtype, shape):
    a = data.draw(tgst.arrays(dtype, shape))
    assert a.dtype == np.dtype(dtype) and a.shape == shape
    if a.dtype.kind in "fc":
        assert np.all(np.isfinite(a)) and np.all(np.abs(a) <= 3.0)
    if a.dtype.kind == "i":
        assert np.all(np.abs(a) <= 10)


@FAST
@given(st.data())
def test_arrays_element_bounds_and_strategies(data):
    a = data.draw(tgst.arrays("float32", (3, 2), elements=(0.5, 2.0)))
    assert a.dtype == np.float32 and np.all((a >= 0.5) & (a <= 2.0))
    b = data.draw(tgst.arrays("int64", 5, elements=(-2, 2)))
    assert b.shape == (5,) and np.all(np.abs(b) <= 2)
    c = data.draw(tgst.arrays("float64", tgst.shapes(max_dims=2),
                              elements=st.just(7.0)))
    assert np.all(c == 7.0)


def _random_values(inputs, shapes, seed, bound=3.0):
    rng = np.random.default_rng(seed)
    return {v: rng.uniform(-bound, bound, size=s).astype(v.dtype)
            for v, s in zip(inputs, shapes)}


@settings(max_examples=60, deadline=None)
@given(st.data(), tgst.broadcastable_shape_pairs(max_dims=3, max_side=4),
       st.integers(0, 2 ** 32 - 1))
def test_expressions_on_static_shapes_evaluate_finite_and_bounded(data, pair, seed):
    x = T.TensorType("float64", pair[0])("x")
    y = T.TensorType("float64", pair[1])("y")
    expr = data.draw(tgst.expressions([x, y], max_depth=4))
    assert expr.dtype == "float64"
    value = evaluate([expr], _random_values([x, y], pair, seed))[0]
    assert np.all(np.isfinite(value))
    assert np.all(np.abs(value) <= 10.0 + 1e-9)
    for static, actual in zip(expr.type.shape, value.shape):
        assert static is None or static == actual


@settings(max_examples=60, deadline=None)
@given(st.data(), st.lists(st.integers(0, 5), min_size=5, max_size=5),
       st.integers(0, 2 ** 32 - 1))
def test_expressions_on_unknown_lengths_fit_any_lengths(data, lengths, seed):
    # Axes of unknown length are only combined in ways valid for any length.
    x = T.dmatrix("x")
    y = T.dvector("y")
    z = T.dscalar("z")
    w = T.TensorType("float64", (1, None))("w")
    expr = data.draw(tgst.expressions([x, y, z, w], max_depth=4))
    shapes = [(lengths[0], lengths[1]), (lengths[2],), (), (1, lengths[3])]
    value = evaluate([expr], _random_values([x, y, z, w], shapes, seed))[0]
    assert np.all(np.isfinite(value))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_expressions_given_runtime_shapes(data):
    x, y = T.dmatrix("x"), T.dvector("y")
    expr = data.draw(tgst.expressions([x, y], shapes=[(2, 3), (3,)], max_depth=3))
    value = evaluate([expr], _random_values([x, y], [(2, 3), (3,)], 0))[0]
    assert np.all(np.isfinite(value))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_expressions_limit_ops(data):
    x = T.TensorType("float64", (3,))("x")
    expr = data.draw(tgst.expressions([x], ops=["tanh", "add"], max_depth=3))
    ops = {node.op.name for node in toposort([expr])}
    assert ops <= {"tanh", "add", "mul"}  # mul: scaling that keeps values bounded


def test_expressions_use_the_structural_ops():
    """Over many draws, reductions, indexing, broadcasting and sharing occur."""
    seen = set()
    x = T.TensorType("float64", (3, 4))("x")
    y = T.TensorType("float64", (4,))("y")

    # Derandomized: a coverage claim over random draws must not be flaky.
    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(tgst.expressions([x, y], max_depth=4))
    def collect(expr):
        nodes = toposort([expr])
        for node in nodes:
            seen.add(type(node.op).__name__)
            seen.add(node.op.name)
            if len(node.inputs) == 2 and node.inputs[0].ndim != node.inputs[1].ndim:
                seen.add("broadcast")
        uses = {}
        for node in nodes:
            for i in node.inputs:
                uses[i] = uses.get(i, 0) + 1
        if any(n > 1 and v.owner is not None for v, n in uses.items()):
            seen.add("shared")

    collect()
    assert {"broadcast", "shared", "sum", "tanh", "add", "mul", "maximum"} <= seen
    if hasattr(T, "getitem"):
        assert any("tensor" in s.lower() or "index" in s.lower() for s in seen), seen


def _draw_once(strategy):
    @settings(max_examples=1, deadline=None, database=None)
    @given(strategy)
    def draw(value):
        pass
    draw()


def test_expressions_reject_bad_arguments():
    x = T.dvector("x")
    with pytest.raises(ValueError):
        _draw_once(tgst.expressions([], max_depth=2))
    with pytest.raises(ValueError):
        _draw_once(tgst.expressions([x], ops=["no_such_op"]))
    with pytest.raises(ValueError):
        _draw_once(tgst.expressions([x], shapes=[(2,), (3,)]))


def test_testing_imports_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import tracegrad.testing as t\n"
            "assert callable(t.verify_grad)\n"
            "try:\n    t.strategies\nexcept ImportError as e:\n"
            "    assert 'Hypothesis' in str(e); print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
