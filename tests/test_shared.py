"""Shared variables: construction, get/set_value, devices, pickling."""
import pickle

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad import SharedVariable, shared


def test_python_numbers_and_dtypes():
    s = shared(0)
    assert isinstance(s, SharedVariable)
    assert s.dtype == "int64" and s.ndim == 0
    assert shared(0.0).dtype == "float64"
    assert shared(True).dtype == "bool"
    assert shared(np.zeros(3, dtype=np.float32)).dtype == "float32"
    assert shared(np.float32(1.5)).dtype == "float32"
    assert shared([1, 2, 3]).dtype == "int64"
    assert shared(np.zeros((2, 3), dtype=">f8")).dtype == "float64"


def test_static_shape_is_unknown():
    s = shared(np.zeros((1, 3)), name="W")
    assert s.type.shape == (None, None)
    assert s.broadcastable == (False, False)
    assert s.name == "W" and str(s) == "W"
    assert s.owner is None


def test_get_value_copies_unless_borrowed():
    value = np.arange(3.0)
    s = shared(value)
    assert s.get_value(borrow=True) is not value  # shared() copied
    value[0] = 100.0
    assert s.get_value()[0] == 0.0
    copy = s.get_value()
    copy[1] = 50.0
    assert s.get_value()[1] == 1.0
    buffer = s.get_value(borrow=True)
    assert s.get_value(borrow=True) is buffer


def test_borrow_uses_the_array():
    value = np.arange(3.0)
    s = shared(value, borrow=True)
    assert s.get_value(borrow=True) is value


def test_set_value_new_shape_same_ndim():
    s = shared(np.zeros((2, 2)))
    s.set_value(np.ones((3, 5)))
    assert s.get_value().shape == (3, 5)
    with pytest.raises(TypeError, match=r"TensorType\(float64, matrix\).*shape=\(3,\).*dimensions"):
        s.set_value(np.ones(3))


def test_set_value_casts_only_losslessly():
    f64 = shared(np.zeros(2), name="f64")
    f64.set_value(np.array([1, 2], dtype=np.int32))
    assert f64.get_value().dtype == np.float64
    f64.set_value([3, 4])
    np.testing.assert_array_equal(f64.get_value(), [3.0, 4.0])
    f32 = shared(np.zeros(2, dtype=np.float32), name="f32")
    with pytest.raises(TypeError, match="'f32'.*float64"):
        f32.set_value(np.zeros(2))
    f32.set_value([0.5, 0.25])
    assert f32.get_value().dtype == np.float32
    with pytest.raises(TypeError, match="'f32'"):
        f32.set_value([0.1])
    i = shared(0, name="i")
    i.set_value(7)
    assert i.get_value() == 7
    with pytest.raises(TypeError, match="'i'"):
        i.set_value(1.5)
    with pytest.raises(TypeError):
        i.set_value("seven")


def test_set_value_copies_unless_borrowed():
    s = shared(np.zeros(2))
    value = np.ones(2)
    s.set_value(value)
    value[0] = 9.0
    assert s.get_value()[0] == 1.0
    s.set_value(value, borrow=True)
    assert s.get_value(borrow=True) is value


def test_evaluate_reads_the_container():
    s = shared(np.array([1.0, 2.0]))
    expr = s * 2
    np.testing.assert_array_equal(expr.eval(), [2.0, 4.0])
    s.set_value(np.array([5.0]))
    np.testing.assert_array_equal(expr.eval(), [10.0])


def test_devices():
    assert shared(1.0, device="cpu").device == "cpu"
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="CuPy"):
            shared(1.0, device="cuda")
    with pytest.raises(ValueError, match="device"):
        shared(1.0, device="abacus")


def test_rejects_non_numbers_and_variables():
    with pytest.raises(TypeError):
        shared("text")
    with pytest.raises(TypeError, match="symbolic"):
        shared(T.dscalar("x"))


def test_pickle_round_trip_is_independent():
    s = shared(np.arange(3.0), name="w")
    s2 = pickle.loads(pickle.dumps(s))
    assert isinstance(s2, SharedVariable) and s2.name == "w"
    assert s2.type == s.type
    np.testing.assert_array_equal(s2.get_value(), [0.0, 1.0, 2.0])
    s2.set_value(np.zeros(3))
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])
    assert s2.default_update is None


def test_clone_shares_the_state():
    s = shared(np.zeros(2))
    c = s.clone()
    assert c is not s and c.container is s.container
    c.set_value(np.ones(2))
    np.testing.assert_array_equal(s.get_value(), [1.0, 1.0])


def test_shared_in_expressions_and_functions():
    w = shared(np.array([1.0, 2.0]), name="w")
    x = T.dvector("x")
    f = tg.function([x], x * w)
    np.testing.assert_array_equal(f(np.array([3.0, 4.0])), [3.0, 8.0])
    w.set_value(np.array([0.5, 0.5, 0.5]))  # new shape, same function
    np.testing.assert_array_equal(f(np.ones(3)), [0.5, 0.5, 0.5])
