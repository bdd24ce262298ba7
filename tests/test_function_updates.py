"""Compiled functions with updates: order, in place, all or nothing, defaults."""
from collections import OrderedDict

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad import function, shared


def test_tutorial_accumulator_and_decrementor():
    state = shared(0)
    inc = T.iscalar("inc")
    accumulator = function([inc], state, updates=[(state, state + inc)])
    assert state.get_value() == 0
    assert accumulator(1) == 0  # returns the value before the update
    assert state.get_value() == 1
    assert accumulator(300) == 1
    assert state.get_value() == 301
    state.set_value(-1)
    assert accumulator(3) == -1
    assert state.get_value() == 2
    decrementor = function([inc], state, updates=[(state, state - inc)])
    assert decrementor(2) == 2
    assert state.get_value() == 0
    assert state.get_value().dtype == np.int64


def test_update_forms():
    a = shared(0.0)
    b = shared(0.0)
    x = T.dscalar("x")
    for updates in ([(a, a + x), (b, b - x)], {a: a + x, b: b - x},
                    OrderedDict([(a, a + x), (b, b - x)]), ((a, a + x), (b, b - x))):
        function([x], [], updates=updates)(1.0)
    assert a.get_value() == 4.0 and b.get_value() == -4.0


def test_update_with_a_parameter_and_output_of_new_value():
    w = shared(np.array([1.0, 2.0]), name="w")
    lr = T.dscalar("lr")
    new = w - lr * w
    step = function([lr], new, updates=[(w, new)])
    out = step(0.5)
    np.testing.assert_array_equal(out, [0.5, 1.0])
    np.testing.assert_array_equal(w.get_value(), [0.5, 1.0])
    out[0] = 99.0  # the result is the caller's, not the buffer
    np.testing.assert_array_equal(w.get_value(), [0.5, 1.0])


def test_updates_read_values_from_before_the_call():
    x = shared(np.array([1.0, 2.0]))
    y = shared(np.array([3.0, 4.0]))
    swap = function([], [], updates={x: y, y: x})
    swap()
    np.testing.assert_array_equal(x.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(y.get_value(), [1.0, 2.0])
    swap()
    np.testing.assert_array_equal(x.get_value(), [1.0, 2.0])
    a, b = shared(1.0), shared(10.0)
    both = function([], [a * 1, b * 1], updates=[(a, a + b), (b, a * b)])
    assert both() == [1.0, 10.0]
    assert a.get_value() == 11.0 and b.get_value() == 10.0


def test_updates_are_written_in_place():
    w = shared(np.zeros((3, 2)), name="w")
    buffer = w.get_value(borrow=True)
    step = function([], [], updates=[(w, w + 1)])
    for k in range(1, 6):
        step()
        assert w.get_value(borrow=True) is buffer
        np.testing.assert_array_equal(buffer, np.full((3, 2), float(k)))


def test_training_loop_keeps_weight_buffers():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((20, 3))
    target = data @ np.array([1.0, -2.0, 0.5])
    x = T.dmatrix("x")
    y = T.dvector("y")
    w = shared(np.zeros(3), name="w")
    b = shared(0.0, name="b")
    cost = T.mean(T.sqr(T.dot(x, w) + b - y))
    gw, gb = tg.grad(cost, [w, b])
    buffers = (w.get_value(borrow=True), b.get_value(borrow=True))
    train = function([x, y], cost, updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
    first = train(data, target)
    for _ in range(200):
        last = train(data, target)
    assert last < first * 1e-3
    assert w.get_value(borrow=True) is buffers[0]
    assert b.get_value(borrow=True) is buffers[1]
    np.testing.assert_allclose(buffers[0], [1.0, -2.0, 0.5], atol=1e-2)


def test_update_to_a_new_shape_replaces_the_buffer():
    v = shared(np.zeros(2), shape_can_change=True)
    grow = function([], [], updates=[(v, T.concatenate([v, v + 1]))])
    grow()
    np.testing.assert_array_equal(v.get_value(), [0.0, 0.0, 1.0, 1.0])
    grow()
    assert v.get_value().shape == (8,)


def test_update_from_an_input_does_not_keep_the_callers_array():
    v = shared(np.zeros(2), shape_can_change=True)
    x = T.dvector("x")
    put = function([x], [], updates=[(v, x)])
    arg = np.array([1.0, 2.0, 3.0])  # a new shape: the buffer is replaced
    put(arg)
    arg[0] = 50.0
    np.testing.assert_array_equal(v.get_value(), [1.0, 2.0, 3.0])


def test_failing_call_changes_no_shared_variable():
    a = shared(np.zeros(2), name="a")
    b = shared(np.zeros(2), name="b")
    x = T.dvector("x")
    y = T.dvector("y")
    f = function([x, y], [], updates=[(a, a + x), (b, b + x * y)])
    f(np.ones(2), np.ones(2))
    with pytest.raises(ValueError):
        f(np.ones(2), np.ones(3))  # the second update's node fails
    with pytest.raises(TypeError):
        f(np.ones(2), np.ones((2, 2)))  # an input fails its check
    np.testing.assert_array_equal(a.get_value(), [1.0, 1.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 1.0])


def test_update_type_checks():
    state = shared(0, name="state")
    f64 = shared(np.zeros(2), name="vec")
    with pytest.raises(TypeError, match="state.*float64"):
        function([], [], updates=[(state, state + 0.5)])
    with pytest.raises(TypeError, match="vec.*ndim"):
        function([], [], updates=[(f64, T.dmatrix("m"))])
    with pytest.raises(TypeError, match="shared variables"):
        function([], [], updates=[(T.dscalar("x"), 1.0)])
    with pytest.raises(ValueError, match="two updates"):
        function([], [], updates=[(state, state + 1), (state, state + 2)])
    f32 = shared(np.zeros(2, dtype=np.float32), name="f32")
    with pytest.raises(TypeError, match="f32"):
        function([], [], updates=[(f32, T.dvector("d"))])


def test_lossless_update_casts():
    state = shared(0, name="state")  # int64
    inc = T.iscalar("inc")  # int32
    function([inc], [], updates=[(state, inc)])(5)
    assert state.get_value() == 5 and state.get_value().dtype == np.int64
    function([], [], updates=[(state, 7)])()
    assert state.get_value() == 7
    f32 = shared(np.zeros(2, dtype=np.float32))
    function([], [], updates=[(f32, f32 + 0.5)])()
    assert f32.get_value().dtype == np.float32
    np.testing.assert_array_equal(f32.get_value(), [0.5, 0.5])
    d = shared(0.0)
    h = T.fscalar("h")
    function([h], [], updates=[(d, h * 2)])(0.25)
    assert d.get_value() == 0.5 and d.get_value().dtype == np.float64


def test_default_updates():
    counter = shared(0, name="counter")
    counter.default_update = counter + 1
    x = T.lscalar("x")
    f = function([x], x + counter)
    assert f(10) == 10
    assert f(10) == 11
    assert counter.get_value() == 2
    frozen = function([x], x + counter, no_default_updates=True)
    assert frozen(0) == 2 and frozen(0) == 2
    listed = function([x], x + counter, no_default_updates=[counter])
    assert listed(0) == 2 and counter.get_value() == 2
    explicit = function([x], x + counter, updates=[(counter, counter + 100)])
    explicit(0)
    assert counter.get_value() == 102


def test_default_update_chain():
    seed = shared(1, name="seed")
    step = shared(0, name="step")
    seed.default_update = seed * 2 + step
    step.default_update = step + 1
    f = function([], seed * 1)
    assert f() == 1
    assert seed.get_value() == 2 and step.get_value() == 1
    assert f() == 2
    assert seed.get_value() == 5 and step.get_value() == 2


def test_identity_update_is_harmless():
    s = shared(np.ones(2))
    buffer = s.get_value(borrow=True)
    function([], s * 2, updates=[(s, s)])()
    assert s.get_value(borrow=True) is buffer


def test_two_updates_from_one_value_do_not_share_a_buffer():
    a = shared(np.zeros(1), shape_can_change=True)
    b = shared(np.zeros(1), shape_can_change=True)
    x = T.dvector("x")
    function([x], [], updates=[(a, x * 2), (b, x * 2)])(np.ones(3))  # both replaced
    a.get_value(borrow=True)[0] = 100.0
    np.testing.assert_array_equal(b.get_value(), [2.0, 2.0, 2.0])
