"""Theano's documented tutorial examples, ported as a user copies them
(``import tracegrad as theano``, ``import tracegrad.tensor as T``), with the
outputs the tutorial documents (issue 17).

Each test is one tutorial snippet (our own copy of its logic), in the order
of the tutorial pages. This file: baby steps, more examples (logistic
function, several outputs, default and named arguments, shared variables,
copying functions, random streams, logistic regression). Derivatives,
conditions and loops are in test_theano_docs_loops.py; printing, debugging,
configuration, modes, broadcasting, shapes and aliasing in
test_theano_docs_debug.py. The sparse page is tested in its own file.
"""
import numpy as np
import numpy
import pytest

import tracegrad as theano
import tracegrad.tensor as T
from tracegrad import In, function, pp, shared


# ------------------------------------------------------------------ baby steps
def test_adding_two_scalars():
    x = T.dscalar("x")
    y = T.dscalar("y")
    z = x + y
    f = function([x, y], z)
    assert f(2, 3) == 5.0 and f(2, 3).dtype == np.float64 and f(2, 3).shape == ()
    assert numpy.allclose(f(16.3, 12.1), 28.4)
    assert isinstance(x, T.TensorVariable)
    assert x.type == T.dscalar().type
    assert pp(z) == "(x + y)"
    np.testing.assert_allclose(z.eval({x: 16.3, y: 12.1}), 28.4)


def test_adding_two_matrices():
    x = T.dmatrix("x")
    y = T.dmatrix("y")
    z = x + y
    f = function([x, y], z)
    expected = np.array([[11.0, 22.0], [33.0, 44.0]])
    np.testing.assert_array_equal(f([[1, 2], [3, 4]], [[10, 20], [30, 40]]), expected)
    np.testing.assert_array_equal(
        f(numpy.array([[1, 2], [3, 4]]), numpy.array([[10, 20], [30, 40]])), expected)


def test_baby_steps_exercise():
    a = T.vector()
    out = a + a ** 10
    f = theano.function([a], out)
    np.testing.assert_array_equal(f([0, 1, 2]), [0.0, 2.0, 1026.0])
    b = T.vector()
    out2 = a ** 2 + b ** 2 + 2 * a * b
    g = theano.function([a, b], out2)
    np.testing.assert_array_equal(g([0, 1, 2], [1, 1, 1]), [1.0, 4.0, 9.0])


# ------------------------------------------------------------------ more examples
def test_logistic_function_two_ways():
    x = T.dmatrix("x")
    s = 1 / (1 + T.exp(-x))
    logistic = theano.function([x], s)
    documented = [[0.5, 0.73105858], [0.26894142, 0.11920292]]
    np.testing.assert_allclose(logistic([[0, 1], [-1, -2]]), documented, rtol=1e-7)
    s2 = (1 + T.tanh(x / 2)) / 2
    logistic2 = theano.function([x], s2)
    np.testing.assert_allclose(logistic2([[0, 1], [-1, -2]]), documented, rtol=1e-7)


def test_computing_more_than_one_thing_at_the_same_time():
    a, b = T.dmatrices("a", "b")
    diff = a - b
    abs_diff = abs(diff)
    diff_squared = diff ** 2
    f = theano.function([a, b], [diff, abs_diff, diff_squared])
    out = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    assert isinstance(out, list) and len(out) == 3
    np.testing.assert_array_equal(out[0], [[1.0, 0.0], [-1.0, -2.0]])
    np.testing.assert_array_equal(out[1], [[1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_array_equal(out[2], [[1.0, 0.0], [1.0, 4.0]])


def test_setting_a_default_value_for_an_argument():
    x, y = T.dscalars("x", "y")
    z = x + y
    f = function([x, In(y, value=1)], z)
    assert f(33) == 34.0 and f(33, 2) == 35.0


def test_default_values_and_named_arguments():
    x, y, w = T.dscalars("x", "y", "w")
    z = (x + y) * w
    f = function([x, In(y, value=1), In(w, value=2, name="w_by_name")], z)
    assert f(33) == 68.0
    assert f(33, 2) == 70.0
    assert f(33, 0, 1) == 33.0
    assert f(33, w_by_name=1) == 34.0
    assert f(33, w_by_name=1, y=0) == 33.0


def test_shared_variable_accumulator_and_givens():
    state = shared(0)
    inc = T.iscalar("inc")
    accumulator = function([inc], state, updates=[(state, state + inc)])
    assert state.get_value() == 0
    assert accumulator(1) == 0 and state.get_value() == 1
    assert accumulator(300) == 1 and state.get_value() == 301
    state.set_value(-1)
    assert accumulator(3) == -1 and state.get_value() == 2
    decrementor = function([inc], state, updates=[(state, state - inc)])
    assert decrementor(2) == 2 and state.get_value() == 0

    fn_of_state = state * 2 + inc
    # the type of foo must match the shared variable replaced by ``givens``
    foo = T.scalar(dtype=state.dtype)
    skip_shared = function([inc, foo], fn_of_state, givens=[(state, foo)])
    assert skip_shared(1, 3) == 7          # 3 is used for the state
    assert state.get_value() == 0          # the old state is untouched


def test_copying_functions():
    state = theano.shared(0)
    inc = T.iscalar("inc")
    accumulator = theano.function([inc], state, updates=[(state, state + inc)])
    assert accumulator(10) == 0 and state.get_value() == 10
    new_state = theano.shared(0)
    new_accumulator = accumulator.copy(swap={state: new_state})
    assert new_accumulator(100) == 0
    assert new_state.get_value() == 100 and state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    assert null_accumulator(9000) == 10
    assert state.get_value() == 10


# ------------------------------------------------------------------ random numbers
def test_random_streams_draws_and_no_default_updates():
    from tracegrad.tensor.shared_randomstreams import RandomStreams
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n, no_default_updates=True)    # not updating rv_n.rng
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    f_val0, f_val1 = f(), f()
    assert f_val0.shape == (2, 2) and not np.array_equal(f_val0, f_val1)
    assert ((0 <= f_val0) & (f_val0 < 1)).all()
    np.testing.assert_array_equal(g(), g())            # same numbers each call
    # a random variable is drawn once per call, so this is (nearly) zero
    np.testing.assert_allclose(nearly_zeros(), np.zeros((2, 2)), atol=1e-15)


def test_seeding_one_stream_and_all_streams():
    from tracegrad.tensor.shared_randomstreams import RandomStreams
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n)

    rng_val = rv_u.rng.get_value(borrow=True)   # the generator of rv_u
    rng_val.seed(89234)                         # seeds it
    rv_u.rng.set_value(rng_val, borrow=True)    # assign back the seeded generator
    first = f()
    rng_val = rv_u.rng.get_value(borrow=True)
    rng_val.seed(89234)
    rv_u.rng.set_value(rng_val, borrow=True)
    np.testing.assert_array_equal(f(), first)

    srng.seed(902340)                           # seeds every stream, each differently
    u0, n0 = f(), g()
    srng.seed(902340)
    np.testing.assert_array_equal(f(), u0)
    np.testing.assert_array_equal(g(), n0)


def test_sharing_streams_between_functions():
    from tracegrad.tensor.shared_randomstreams import RandomStreams
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    f = function([], rv_u)
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    state_after_v0 = rv_u.rng.get_value().get_state()
    nearly_zeros()           # this affects rv_u's generator
    v1 = f()
    rng = rv_u.rng.get_value(borrow=True)
    rng.set_state(state_after_v0)
    rv_u.rng.set_value(rng, borrow=True)
    v2 = f()                 # v2 != v1
    v3 = f()                 # v3 == v1
    assert not np.array_equal(v1, v2)
    np.testing.assert_array_equal(v3, v1)


@pytest.mark.parametrize("mrg", [False, True])
def test_copying_random_state_between_graphs(mrg):
    from tracegrad.sandbox.rng_mrg import MRG_RandomStreams
    from tracegrad.tensor.shared_randomstreams import RandomStreams

    class Graph:
        def __init__(self, seed=123):
            self.rng = MRG_RandomStreams(seed) if mrg else RandomStreams(seed)
            self.y = self.rng.uniform(size=(1,))

    g1 = Graph(seed=123)
    f1 = theano.function([], g1.y)
    g2 = Graph(seed=987)
    f2 = theano.function([], g2.y)
    assert f1() != f2()              # by default the two are out of sync

    def copy_random_state(g1, g2):
        if isinstance(g1.rng, MRG_RandomStreams):
            g2.rng.rstate = g1.rng.rstate
        for (su1, su2) in zip(g1.rng.state_updates, g2.rng.state_updates):
            su2[0].set_value(su1[0].get_value())

    copy_random_state(g1, g2)
    np.testing.assert_array_equal(f1(), f2())


def test_mrg_random_streams_as_the_tutorial_uses_them():
    from tracegrad.sandbox.rng_mrg import MRG_RandomStreams
    srng = MRG_RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n, no_default_updates=True)
    assert not np.array_equal(f(), f())
    np.testing.assert_array_equal(g(), g())
    srng.seed(5)
    a = f()
    srng.seed(5)
    np.testing.assert_array_equal(f(), a)


def test_logistic_regression_example():
    rng = numpy.random.RandomState(0)
    N, feats = 400, 784
    D = (rng.randn(N, feats), rng.randint(size=N, low=0, high=2))
    training_steps = 1000         # the tutorial trains 10000 steps

    x = T.dmatrix("x")
    y = T.dvector("y")
    w = theano.shared(rng.randn(feats), name="w")
    b = theano.shared(0., name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))       # probability that target = 1
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                            updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
    predict = theano.function(inputs=[x], outputs=prediction)

    # one step against NumPy
    w0, b0 = w.get_value(), b.get_value()
    z = D[0].dot(w0) + b0
    p = 1 / (1 + np.exp(-z))
    pred, err = train(D[0], D[1])
    np.testing.assert_array_equal(pred, p > 0.5)
    # -log(p_1) = softplus(-z) and -log(1 - p_1) = softplus(z): tracegrad's
    # stability rewrites compute these without the log(0) the plain formula
    # gives in NumPy (as Theano's did), so the reference is the stable form.
    np.testing.assert_allclose(err, D[1] * np.logaddexp(0, -z) + (1 - D[1]) * np.logaddexp(0, z),
                               rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(w.get_value(),
                               w0 - 0.1 * (D[0].T.dot(p - D[1]) / N + 0.02 * w0), rtol=1e-6)
    np.testing.assert_allclose(b.get_value(), b0 - 0.1 * (p - D[1]).mean(), rtol=1e-6)
    for i in range(training_steps):
        pred, err = train(D[0], D[1])
    assert (predict(D[0]) == D[1]).mean() > 0.95
