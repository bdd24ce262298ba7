"""Theano's test values (``tg.config.compute_test_value``, ``x.tag.test_value``)."""
import pickle
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.test_values import MissingTestValue, get_test_value
from tracegrad.trace import NODE_HOOKS


@pytest.fixture
def test_values():
    def use(mode):
        tg.config.compute_test_value = mode
    yield use
    tg.config.compute_test_value = "off"


def test_shape_errors_are_raised_where_the_graph_is_built(test_values):
    test_values("raise")
    x = T.dmatrix("x")
    x.tag.test_value = np.ones((5, 10))
    w1 = tg.shared(np.ones((10, 4)))
    w2 = tg.shared(np.ones((5, 3)))
    h = T.dot(x, w1)
    np.testing.assert_array_equal(get_test_value(h), np.full((5, 4), 10.0))
    with pytest.raises(ValueError, match=r"not aligned[\s\S]*built at .*test_test_values.py"):
        T.dot(h, w2)


def test_constants_and_shared_values_count_as_test_values(test_values):
    test_values("raise")
    s = tg.shared(np.arange(3.0))
    y = (s * 2 + 1).sum()
    assert get_test_value(y) == 9.0


def test_missing_test_values_per_mode(test_values):
    y = T.dvector("y")
    test_values("raise")
    with pytest.raises(MissingTestValue, match="input y has no test value"):
        y * 2
    test_values("warn")
    with pytest.warns(UserWarning, match="input y has no test value"):
        z = y * 2
    test_values("ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = y * 2
    with pytest.raises(MissingTestValue):
        get_test_value(z)


def test_off_costs_nothing_and_changes_nothing():
    assert tg.config.compute_test_value == "off"
    from tracegrad.test_values import compute_test_values
    assert compute_test_values not in NODE_HOOKS
    y = T.dvector("y")
    assert np.array_equal(tg.function([y], y * 2)([1.0]), [2.0])


def test_test_values_of_the_wrong_ndim_are_refused(test_values):
    test_values("raise")
    x = T.dmatrix("x")
    x.tag.test_value = np.ones(3)
    with pytest.raises(ValueError, match="1 dimension"):
        x + 1


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="compute_test_value must be one of"):
        tg.config.compute_test_value = "sometimes"


def test_tags_survive_pickling():
    x = T.dvector("x")
    x.tag.note = "kept"
    assert pickle.loads(pickle.dumps(x)).tag.note == "kept"
