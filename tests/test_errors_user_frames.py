"""Errors name the user's own frames ("built at ..., called from ...") and
the function the user wrote (``numpy.dot``, not the ``tensordot`` op).

Expected messages are compared in full; the line numbers are read from this
file (the ``# [name]`` markers), so editing the file above a marker keeps
them right.
"""
import os
import re

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from markers import marker_line
from tracegrad.compile.mode import NanGuardMode
from tracegrad.trace import MAX_CALLERS

HERE = __file__
PACKAGE = os.path.dirname(tg.__file__)


def line(marker):
    """The line number of ``# [marker]`` in this file."""
    return marker_line(HERE, marker)


def layer(a, b):
    return np.dot(a, b)  # [layer]


def model(a, b):
    return layer(a, b) * 2  # [model]


def deep(a, b, depth):
    if depth == 0:
        return model(a, b)  # [deep0]
    return deep(a, b, depth - 1)  # [deepn]


def test_shape_error_names_numpy_dot_and_the_user_frames():
    x, y = T.dmatrix("x"), T.dmatrix("y")
    f = tg.function([x, y], model(x, y))  # [build]
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((4, 5)))
    name = "test_shape_error_names_numpy_dot_and_the_user_frames"
    assert str(info.value) == (
        "shapes (2,3) and (4,5) not aligned: 3 (dim 1) != 4 (dim 0)\n"
        "  while computing numpy.dot (op tensordot) with inputs of shapes "
        "[(2, 3) float64, (4, 5) float64]\n"
        f"  built at {HERE}:{line('layer')} in layer\n"
        f"    called from {HERE}:{line('model')} in model\n"
        f"    called from {HERE}:{line('build')} in {name}")


def test_reference_evaluator_gives_the_same_frames():
    x, y = T.dmatrix("x"), T.dmatrix("y")
    out = model(x, y)  # [eval]
    with pytest.raises(ValueError) as info:
        out.eval({x: np.ones((2, 3)), y: np.ones((4, 5))})
    text = str(info.value)
    assert text.endswith(
        f"  built at {HERE}:{line('layer')} in layer\n"
        f"    called from {HERE}:{line('model')} in model\n"
        f"    called from {HERE}:{line('eval')} in "
        "test_reference_evaluator_gives_the_same_frames")


def test_at_most_max_callers_and_no_tracegrad_or_runner_frames():
    x, y = T.dmatrix("x"), T.dmatrix("y")
    out = deep(x, y, 5)
    src = out.owner.inputs[0].owner.source  # (the dot under "* 2")
    assert (src.filename, src.lineno, src.function) == (HERE, line("layer"), "layer")
    assert src.callers == ((HERE, line("model"), "model"), (HERE, line("deep0"), "deep"),
                           (HERE, line("deepn"), "deep"))
    assert len(src.callers) == MAX_CALLERS
    with pytest.raises(ValueError) as info:
        tg.function([x, y], out)(np.ones((2, 3)), np.ones((4, 5)))
    frames = re.findall(r"(?:built at|called from) (\S+):\d+", str(info.value))
    assert frames == [HERE] * 4
    assert PACKAGE not in str(info.value)


def test_operator_and_tracegrad_function_names():
    x, y = T.dmatrix("x"), T.dmatrix("y")
    assert (x @ y).owner.source.called == "@"
    assert T.dot(x, y).owner.source.called == "dot"
    assert np.matmul(x, y).owner.source.called == "numpy.matmul"
    assert np.linalg.inv(x).owner.source.called == "numpy.linalg.inv"
    assert np.exp(x).owner.source.called == "numpy.exp"


def test_nan_guard_names_the_user_line():
    x = T.dvector("x")
    out = T.exp(x)  # [nan]
    f = tg.function([x], out, mode=NanGuardMode())
    with pytest.raises(AssertionError) as info:
        f(np.array([1000.0]))
    assert str(info.value).endswith(
        f"\n  built at {HERE}:{line('nan')} in test_nan_guard_names_the_user_line")


def test_an_op_named_as_written_is_not_repeated():
    x = T.dvector("x")
    out = np.log(x).reshape((2, 2))  # [log]
    with pytest.raises(ValueError) as info:
        out.eval({x: np.ones(3)})
    assert "while computing Reshape with inputs" in str(info.value)
    assert str(info.value).endswith(
        f"  built at {HERE}:{line('log')} in test_an_op_named_as_written_is_not_repeated")


def act(a, b):
    return np.tanh(a * 2 + b) + 1  # [act]


def test_an_error_inside_a_fused_kernel_is_described_once():
    x, y = T.dvector("x"), T.dvector("y")
    f = tg.function([x, y], act(x, y))  # [fused]
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones(4))
    text = str(info.value)
    assert text.count("while computing") == 1
    assert text.endswith(
        "  while computing + (op add) with inputs of shapes [(3,) float64, (4,) float64]\n"
        f"  built at {HERE}:{line('act')} in act\n"
        f"    called from {HERE}:{line('fused')} in "
        "test_an_error_inside_a_fused_kernel_is_described_once")


class _Twice(tg.Op):
    """A user-defined op whose vjp builds nodes in this file."""
    __props__ = ()
    name = "twice"

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return tg.Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        return 2 * x

    def vjp(self, node, output_grads):
        return [output_grads[0] * 2]  # [user vjp]


def _sources(outputs):
    from tracegrad.trace import toposort
    return [(node.op.name, node.source) for node in toposort(outputs)]


def test_gradient_nodes_have_the_sources_a_stack_walk_gives(monkeypatch):
    # grad finds its nodes' source once (``trace.anchor_sources``): every
    # node must get what walking the stack from it gives, a user-defined
    # op's vjp its own line.
    from tracegrad.grad import reverse
    x = T.dvector("x")
    cost = (T.sin(x[0]) * 3 + _Twice()(T.exp(x)).sum() + deep(x, x, 1)).sum()

    def gradient():
        return tg.grad(cost, x)  # [grad call]
    found = []
    for anchor in (reverse.anchor_sources, lambda frame: None):
        monkeypatch.setattr(reverse, "anchor_sources", anchor)
        found.append(_sources([gradient()]))
    anchored, walked = found
    assert anchored == walked
    by_line = {(src.filename, src.lineno) for _, src in anchored}
    assert (HERE, line("grad call")) in by_line and (HERE, line("user vjp")) in by_line
    assert all(src.called == "grad" for _, src in anchored
               if (src.filename, src.lineno) == (HERE, line("grad call")))
