"""``==`` / ``!=`` on symbolic variables, and their truth values.

Written ``x == y`` is elementwise (NumPy); the comparisons containers make
themselves (``in``, ``list.index``, ``.remove``, ``.count``, dict and set
lookups) compare identity; a truth test of a computed value is an error.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tracegrad as tg
import tracegrad.tensor as T


def test_eq_and_ne_are_elementwise():
    x, y = T.dvector("x"), T.dvector("y")
    f = tg.function([x, y], [x == y, x != y, x == 2.0, 2.0 != x])
    a, b = np.array([1.0, 2.0, np.nan]), np.array([1.0, 3.0, np.nan])
    eq, ne, eq2, ne2 = f(a, b)
    np.testing.assert_array_equal(eq, a == b)
    np.testing.assert_array_equal(ne, a != b)
    np.testing.assert_array_equal(eq2, a == 2.0)
    np.testing.assert_array_equal(ne2, 2.0 != a)
    assert eq.dtype == np.bool_


def test_eq_in_jit_traced_numpy_code_is_elementwise():
    @tg.jit
    def same(a, b):
        return a == b, a != b

    a, b = np.array([1, 2, 3]), np.array([1, 0, 3])
    eq, ne = same(a, b)
    np.testing.assert_array_equal(eq, a == b)
    np.testing.assert_array_equal(ne, a != b)


def test_variables_stay_dict_keys_and_set_members():
    x, y = T.dscalar("x"), T.dscalar("y")
    table = {x: 1, y: 2}
    assert table[y] == 2 and table[x] == 1
    assert y in table and len({x, y, x}) == 2
    w = tg.shared(np.float64(1.0), name="w")
    step = tg.function([x], w, updates={w: w + x}, givens={y: x})
    step(2.0)
    assert w.get_value() == 3.0


def test_container_comparisons_use_identity():
    x, y, z = T.dscalar("x"), T.dscalar("y"), T.dscalar("z")
    items = [x, y]
    assert y in items and z not in items and y in (x, y)
    assert items.index(y) == 1 and (x, y).index(y) == 1
    assert items.count(y) == 1 and items.count(z) == 0
    items.remove(y)
    assert len(items) == 1 and items[0] is x
    with pytest.raises(ValueError):
        items.remove(z)


@given(st.lists(st.integers(0, 4), max_size=8), st.integers(0, 4))
def test_list_methods_agree_with_identity(picks, query):
    pool = [T.dvector(f"v{i}") for i in range(5)]
    items = [pool[i] for i in picks]
    q = pool[query]
    assert (q in items) == any(v is q for v in items)
    assert items.count(q) == sum(v is q for v in items)
    if q in items:
        assert items.index(q) == next(i for i, v in enumerate(items) if v is q)


def test_comparison_with_none_or_objects_is_identity():
    x = T.dvector("x")
    assert (x == None) is False  # noqa: E711 - the point of the test
    assert (x != None) is True  # noqa: E711
    assert (x == "a") is False and (x != "a") is True


@pytest.mark.parametrize("test", [
    lambda x, y: bool(x == y),
    lambda x, y: not (x != y),
    lambda x, y: 1 if x == y else 0,
])
def test_truth_test_of_a_comparison_is_an_error(test):
    x, y = T.dvector("x"), T.dvector("y")
    with pytest.raises(TypeError, match="`is`"):
        test(x, y)


def test_truth_test_of_a_comparison_inside_jit_is_an_error():
    @tg.jit
    def branchy(a, b):
        if a == b:
            return a
        return b

    with pytest.raises(TypeError, match="truth value"):
        branchy(np.ones(2), np.zeros(2))


def test_inputs_and_shared_variables_are_truthy():
    x = T.dmatrix("x")
    w = tg.shared(np.zeros(2), name="w")
    assert bool(x) and bool(w)
    assert (w if w else None) is w  # Theano's ``if not W: W = ...``


@pytest.mark.parametrize("make", [
    lambda: T.dvector("x") + 1,
    lambda: T.constant(0.0),
    lambda: T.dvector("x") < 1,
])
def test_truth_of_a_computed_value_or_constant_raises(make):
    with pytest.raises(TypeError, match="np.where"):
        bool(make())


def test_truth_of_a_jit_argument_raises_naming_static_argnums():
    @tg.jit
    def pick(a, flag):
        return a if flag else -a

    with pytest.raises(TypeError, match="static_argnums"):
        pick(np.ones(2), 1)
    static = tg.jit(pick.__wrapped__, static_argnums=1)
    np.testing.assert_array_equal(static(np.ones(2), 0), -np.ones(2))
