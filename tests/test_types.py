"""Tensor types, constructors, config and the graph core."""
import subprocess
import sys

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.trace import Apply, clone_graph, clone_replace, graph_inputs, toposort


@pytest.mark.parametrize("kind,ndim", [("scalar", 0), ("vector", 1), ("matrix", 2),
                                       ("row", 2), ("col", 2), ("tensor3", 3),
                                       ("tensor4", 4), ("tensor5", 5)])
@pytest.mark.parametrize("prefix,dtype", [("b", "int8"), ("w", "int16"), ("i", "int32"),
                                          ("l", "int64"), ("f", "float32"),
                                          ("d", "float64"), ("c", "complex128")])
def test_prefixed_constructors(kind, ndim, prefix, dtype):
    ctor = getattr(T, prefix + kind)
    assert isinstance(ctor, T.TensorType)
    x = ctor("x")
    assert x.type is ctor and x.dtype == dtype and x.ndim == ndim and x.name == "x"
    assert x.owner is None
    plural = getattr(T, prefix + ("matrices" if kind == "matrix" else kind + "s"))
    a, b = plural("a", "b")
    assert (a.name, b.name) == ("a", "b") and a.type == ctor


def test_row_and_col_broadcastable():
    assert T.row().broadcastable == (True, False)
    assert T.col().broadcastable == (False, True)
    assert T.dscalar().type == T.TensorType("float64", ())


def test_floatx_constructors_follow_config():
    old = tg.config.floatX
    try:
        assert T.matrix().dtype == "float64"
        tg.config.floatX = "float32"
        assert T.matrix().dtype == "float32" and T.scalar().dtype == "float32"
        assert isinstance(T.vector, T.TensorType)
    finally:
        tg.config.floatX = old


def test_config_rejects_unknown_values():
    with pytest.raises(ValueError, match="floatX"):
        tg.config.floatX = "float128"
    with pytest.raises(AttributeError, match="nonsense"):
        tg.config.nonsense = 1


def test_flags_environment_variable():
    code = "import tracegrad as tg; print(tg.config.floatX, tg.config.device)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"TRACEGRAD_FLAGS": "floatX=float32", "PATH": ""},
                         cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    assert out.stdout.split() == ["float32", "cpu"], out.stderr


def test_general_tensor_constructor():
    x = T.tensor(dtype="float32", shape=(None, 1), name="x")
    assert x.broadcastable == (False, True) and x.dtype == "float32" and x.name == "x"
    assert T.TensorType("float64", (False, True)).shape == (None, 1)


def test_variable_attributes_and_apply():
    x, y = T.dscalars("x", "y")
    z = x + y
    assert isinstance(z.owner, Apply) and z.owner.op.name == "add"
    assert z.owner.inputs == [x, y] and z.owner.outputs == [z]
    assert isinstance(z, tg.Variable) and isinstance(z.owner.op, tg.Op)


def test_source_location_points_at_user_line():
    x = T.dvector()
    y = T.exp(x)  # this line
    src = y.owner.source
    assert src.filename == __file__ and src.function == "test_source_location_points_at_user_line"
    lines = open(__file__).read().splitlines()
    assert "this line" in lines[src.lineno - 1]


def test_constants_from_numbers_and_arrays():
    c = T.as_tensor_variable(np.arange(6.0).reshape(2, 3))
    assert isinstance(c, tg.Constant) and c.type.shape == (2, 3)
    with pytest.raises(TypeError, match="tensor"):
        T.as_tensor_variable("text")


def test_toposort_clone_and_replace():
    x, y = T.dscalars("x", "y")
    z = (x + y) * x
    order = toposort([z])
    assert [n.op.name for n in order] == ["add", "mul"]
    assert set(graph_inputs([z])) == {x, y}
    (z2,), memo = clone_replace([z], {x: y})
    assert z2.eval({y: 3.0}) == 18.0
    ins, outs, _ = clone_graph([z], [x, y])
    assert outs[0].owner is not z.owner and outs[0].eval(dict(zip(ins, [1.0, 2.0]))) == 3.0


def test_deep_chain_toposort_is_iterative():
    x = T.dscalar("x")
    y = x
    for _ in range(20000):
        y = y + 1.0
    assert len(toposort([y])) == 20000
    assert y.eval({x: 0.0}) == 20000.0
