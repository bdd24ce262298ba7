"""A shared variable keeps its shape and dtype across updates (Theano's
rule): an error at compile time when the shapes are known then, a clear
error at call time otherwise, never a silent reallocation, unless the
variable was made with ``shared(..., shape_can_change=True)``."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T


def test_static_shape_change_is_a_compile_time_error():
    s = tg.shared(np.zeros(3), name="s")
    with pytest.raises(ValueError) as info:
        tg.function([], [], updates=[(s, T.ones((5,)))])
    assert str(info.value) == (
        "tg.function: the update of shared variable s has static shape (5,) but the "
        "variable's value has shape (3,); an update must keep the shape. Fix the "
        "update's expression, or create the variable with "
        "tg.shared(value, shape_can_change=True) if its shape may change")


def test_shape_change_at_call_time_is_an_error_and_changes_nothing():
    a = tg.shared(np.zeros(3), name="a")
    s = tg.shared(np.zeros(3), name="s")
    v = T.dvector("v")
    f = tg.function([v], [], updates=[(a, a + 1.0), (s, v)])
    f(np.ones(3))
    with pytest.raises(ValueError) as info:
        f(np.ones(5))
    assert str(info.value) == (
        "the update of shared variable s changes its shape from (3,) to (5,); no "
        "shared variable was changed. Fix the update's expression, or create the "
        "variable with tg.shared(value, shape_can_change=True) if its shape may change")
    np.testing.assert_array_equal(a.get_value(), np.ones(3))  # all or nothing
    np.testing.assert_array_equal(s.get_value(), np.ones(3))


def test_opt_in_allows_a_new_shape():
    s = tg.shared(np.zeros(2), shape_can_change=True)
    grow = tg.function([], [], updates=[(s, T.concatenate([s, s + 1]))])
    grow()
    np.testing.assert_array_equal(s.get_value(), [0.0, 0.0, 1.0, 1.0])
    assert tg.function([], [], updates=[(s, T.ones((7,)))]) is not None


def test_set_value_may_still_resize_then_updates_keep_that_shape():
    s = tg.shared(np.zeros(3))
    v = T.dvector("v")
    f = tg.function([v], [], updates=[(s, s + v)])
    s.set_value(np.zeros(5))
    f(np.ones(5))
    np.testing.assert_array_equal(s.get_value(), np.ones(5))


def test_dtype_change_is_a_compile_time_error():
    s = tg.shared(np.zeros(3, dtype="float32"), name="s")
    with pytest.raises(TypeError, match=r"update of shared variable s: .*float64.*"
                       r"without loss of precision; cast it explicitly"):
        tg.function([], [], updates=[(s, T.dvector("v") * 0 + s)])


def test_lossless_dtype_is_cast_and_kept():
    s = tg.shared(np.zeros(3))
    f = tg.function([], [], updates=[(s, T.ones((3,), dtype="int32"))])
    f()
    assert s.get_value().dtype == np.float64
    np.testing.assert_array_equal(s.get_value(), np.ones(3))
