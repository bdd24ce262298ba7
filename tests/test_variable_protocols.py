"""Python's protocols on symbolic arrays: ``x.shape`` (a tuple, ints where
static), ``len``, iteration, and the conversions that cannot work on a traced
value (``float(x)``, ``int(x)``, ``complex(x)``, ``bool(x)``, an index), which
say why and what to write instead."""
import operator
import pickle

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.tensor.type import StaticShapeError
from tracegrad.tensor.variable import ShapeTuple


def test_static_shape_is_a_tuple_of_ints():
    x = T.tensor("float64", shape=(2, 3), name="x")
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert all(type(n) is int for n in x.shape)
    assert x.shape[0] == 2 and type(x.shape[-1]) is int
    assert x.size == 6 and type(x.size) is int
    assert np.zeros(x.shape).shape == (2, 3)  # plain NumPy takes it
    assert x.shape + (1,) == (2, 3, 1) and x.shape[1:] == (3,)
    n, m = x.shape
    assert (n, m) == (2, 3)


def test_free_lengths_are_symbolic_entries():
    x = T.tensor("float64", shape=(3, None), name="x")
    assert len(x.shape) == 2 and x.shape[0] == 3 and type(x.shape[0]) is int
    free = x.shape[1]
    assert isinstance(free, T.TensorVariable) and free.dtype == "int64" and free.ndim == 0
    value = np.ones((3, 5))
    assert free.eval({x: value}) == 5
    assert x.size.eval({x: value}) == 15


def test_shape_is_theanos_vector_where_a_tensor_is_wanted():
    x, y = T.dmatrix("x"), T.dvector("y")
    f = tg.function([x, y], [x.shape, T.reshape(y, x.shape), T.zeros(x.shape)])
    shape, reshaped, zeros = f(np.ones((2, 3)), np.arange(6.0))
    np.testing.assert_array_equal(shape, [2, 3])
    assert shape.dtype == np.int64
    np.testing.assert_array_equal(reshaped, np.arange(6.0).reshape(2, 3))
    assert zeros.shape == (2, 3)
    single = tg.function([x], x.shape)(np.ones((4, 1)))  # one output, not two
    np.testing.assert_array_equal(single, [4, 1])
    np.testing.assert_array_equal(x.shape.eval({x: np.ones((5, 2))}), [5, 2])


def test_zero_d_shape_is_an_empty_int_vector():
    s = T.dscalar("s")
    assert s.shape == () and s.size == 1
    out = tg.function([s], s.shape)(1.0)
    assert out.shape == (0,) and out.dtype == np.int64


def test_shape_slices_and_pickles():
    x = T.tensor("float64", shape=(None, 4, 5), name="x")
    tail = x.shape[1:]
    assert isinstance(tail, ShapeTuple) and tail == (4, 5)
    np.testing.assert_array_equal(T.as_tensor_variable(tail).eval(), [4, 5])
    again = pickle.loads(pickle.dumps(x.shape))
    assert isinstance(again, ShapeTuple) and again[1:] == (4, 5)


def test_len_and_iteration_over_a_static_leading_axis():
    x = T.tensor("float64", shape=(3, None), name="x")
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3 and all(r.ndim == 1 for r in rows)
    value = np.arange(6.0).reshape(3, 2)
    f = tg.function([x], sum(row * row for row in x))
    np.testing.assert_allclose(f(value), (value ** 2).sum(axis=0))


def test_len_of_a_free_or_0d_axis_says_why():
    with pytest.raises(StaticShapeError, match="not known while building the graph"):
        len(T.dmatrix("m"))
    with pytest.raises(TypeError, match="0-d"):
        len(T.dscalar("s"))
    with pytest.raises(TypeError, match="0-d"):
        iter(T.dscalar("s")).__next__()


@pytest.mark.parametrize("convert, kind, hint", [
    (float, "float", "T.cast"), (int, "int", "T.cast"), (complex, "complex", "T.cast"),
    (operator.index, "an index", "symbolic indexing"), (range, "an index", "tg.jit"),
    (lambda v: [1, 2, 3][v], "an index", "x\\[i\\]"),
])
def test_conversions_of_traced_values_say_why_and_what_instead(convert, kind, hint):
    x = T.dscalar("x")
    y = T.exp(x)
    for v in (x, y):
        with pytest.raises(TypeError) as info:
            convert(v)
        msg = str(info.value)
        assert kind in msg and "traced" in msg and "not known until" in msg
        assert "tg.function" in msg and ".eval()" in msg
        assert pytest.importorskip("re").search(hint, msg)


def test_truth_of_computed_values_raises_and_inputs_stay_truthy():
    x = T.dscalar("x")
    w = tg.shared(np.zeros(2), name="w")
    assert x and w  # Theano's ``if not W:`` idiom on inputs and shared variables
    with pytest.raises(TypeError, match="not known until the function runs"):
        bool(x * 2)


def test_constants_convert_like_numpy_scalars():
    assert int(T.constant(3)) == 3 and float(T.constant(2.5)) == 2.5
    assert complex(T.constant(1 + 2j)) == 1 + 2j
    assert range(T.constant(2)) == range(2)
    with pytest.raises(TypeError):
        operator.index(T.constant(2.5))  # as NumPy: a float is no index
    with pytest.raises(TypeError, match="0-d"):
        float(T.constant([1.0, 2.0]))


def test_jit_conversion_errors_and_static_lengths():
    def needs_float(x):
        return float(x) * 2

    with pytest.raises(TypeError, match="T.cast"):
        tg.jit(needs_float)(np.float64(1.0))

    @tg.jit
    def by_rows(x):
        return sum(x[i] * (i + 1) for i in range(x.shape[0]))

    np.testing.assert_allclose(by_rows(np.ones(3)), 6.0)
