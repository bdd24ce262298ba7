"""Theano's documented tutorial examples, ported as a user copies them
(``import tracegrad as theano``, ``import tracegrad.tensor as T``), with the
outputs the tutorial documents (issue 17).

Each test is one tutorial snippet (our own copy of its logic), in the order
of the tutorial pages: baby steps, more examples, derivatives, conditions,
loops, printing and debugging, configuration and modes, broadcasting, shape
information. The sparse page is tested in its own file. Where the tutorial
prints a timing, the test checks what the timing was meant to show.
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


def test_copying_random_state_between_graphs():
    from tracegrad.sandbox.rng_mrg import MRG_RandomStreams
    from tracegrad.tensor.shared_randomstreams import RandomStreams

    class Graph:
        def __init__(self, seed=123):
            self.rng = RandomStreams(seed)
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


# ------------------------------------------------------------------ derivatives
def test_gradient_of_x_squared():
    x = T.dscalar("x")
    y = x ** 2
    gy = T.grad(y, x)
    f = theano.function([x], gy)
    assert f(4) == 8.0
    assert numpy.allclose(f(94.2), 188.4)
    # after optimization the graph is ``2 * x`` (Theano prints
    # '(TensorConstant{2.0} * x)')
    printed = pp(f.maker.fgraph.outputs[0]).replace(" ", "")
    assert printed in ("(2.0*x)", "(x*2.0)"), printed


def test_gradient_of_the_logistic_function():
    x = T.dmatrix("x")
    s = T.sum(1 / (1 + T.exp(-x)))
    gs = T.grad(s, x)
    dlogistic = theano.function([x], gs)
    np.testing.assert_allclose(dlogistic([[0, 1], [-1, -2]]),
                               [[0.25, 0.19661193], [0.19661193, 0.10499359]], rtol=1e-7)


def test_jacobian_with_scan_and_with_theano_gradient_jacobian():
    x = T.dvector("x")
    y = x ** 2
    J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x),
                             sequences=T.arange(y.shape[0]), non_sequences=[y, x])
    f = theano.function([x], J, updates=updates)
    np.testing.assert_array_equal(f([4, 4]), [[8.0, 0.0], [0.0, 8.0]])
    J2 = theano.gradient.jacobian(y, x)
    np.testing.assert_array_equal(theano.function([x], J2)([4, 4]), [[8.0, 0.0], [0.0, 8.0]])


def test_hessian_with_scan_and_with_theano_gradient_hessian():
    x = T.dvector("x")
    y = x ** 2
    cost = y.sum()
    gy = T.grad(cost, x)
    H, updates = theano.scan(lambda i, gy, x: T.grad(gy[i], x),
                             sequences=T.arange(gy.shape[0]), non_sequences=[gy, x])
    f = theano.function([x], H, updates=updates)
    np.testing.assert_array_equal(f([4, 4]), [[2.0, 0.0], [0.0, 2.0]])
    H2 = theano.gradient.hessian(cost, x)
    np.testing.assert_array_equal(theano.function([x], H2)([4, 4]), [[2.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(theano.function([x], T.hessian(cost, x))([4, 4]),
                                  [[2.0, 0.0], [0.0, 2.0]])


def test_r_operator():
    W = T.dmatrix("W")
    V = T.dmatrix("V")
    x = T.dvector("x")
    y = T.dot(x, W)
    JV = T.Rop(y, W, V)
    f = theano.function([W, V, x], JV)
    np.testing.assert_array_equal(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2.0, 2.0])


def test_l_operator():
    W = T.dmatrix("W")
    v = T.dvector("v")
    x = T.dvector("x")
    y = T.dot(x, W)
    VJ = T.Lop(y, W, v)
    f = theano.function([v, x], VJ)
    np.testing.assert_array_equal(f([2, 2], [0, 1]), [[0.0, 0.0], [2.0, 2.0]])


def test_hessian_times_a_vector_two_ways():
    x = T.dvector("x")
    v = T.dvector("v")
    y = T.sum(x ** 2)
    gy = T.grad(y, x)
    vH = T.grad(T.sum(gy * v), x)
    f = theano.function([x, v], vH)
    np.testing.assert_array_equal(f([4, 4], [2, 2]), [4.0, 4.0])
    Hv = T.Rop(gy, x, v)
    f = theano.function([x, v], Hv)
    np.testing.assert_array_equal(f([4, 4], [2, 2]), [4.0, 4.0])


# ------------------------------------------------------------------ conditions
def test_ifelse_is_lazy_and_switch_evaluates_both(capsys):
    from tracegrad.ifelse import ifelse
    a, b = T.scalars("a", "b")
    x, y = T.matrices("x", "y")
    z_switch = T.switch(T.lt(a, b), T.mean(x), T.mean(y))
    z_lazy = ifelse(T.lt(a, b), T.mean(x), T.mean(y))
    f_switch = theano.function([a, b, x, y], z_switch, mode=theano.Mode(linker="vm"))
    f_lazyifelse = theano.function([a, b, x, y], z_lazy, mode=theano.Mode(linker="vm"))
    val1 = 0.
    val2 = 1.
    big_mat1 = numpy.ones((100, 10))
    big_mat2 = numpy.ones((100, 10)) * 2
    assert f_switch(val1, val2, big_mat1, big_mat2) == 1.0
    assert f_lazyifelse(val1, val2, big_mat1, big_mat2) == 1.0
    assert f_lazyifelse(val2, val1, big_mat1, big_mat2) == 2.0
    # The tutorial times the two: ifelse takes half as long because it
    # computes only one mean. Here, count: a Print in each branch says which ran.
    from tracegrad.printing import Print
    lazy = ifelse(T.lt(a, b), Print("then ran")(T.mean(x)), Print("else ran")(T.mean(y)))
    eager = T.switch(T.lt(a, b), Print("then ran")(T.mean(x)), Print("else ran")(T.mean(y)))
    theano.function([a, b, x, y], lazy)(val1, val2, big_mat1, big_mat2)
    printed = capsys.readouterr().out
    assert "then ran" in printed and "else ran" not in printed
    theano.function([a, b, x, y], eager)(val1, val2, big_mat1, big_mat2)
    printed = capsys.readouterr().out
    assert "then ran" in printed and "else ran" in printed


# ------------------------------------------------------------------ loops
def test_scan_power_of_a_vector():
    k = T.iscalar("k")
    A = T.vector("A")
    result, updates = theano.scan(fn=lambda prior_result, A: prior_result * A,
                                  outputs_info=T.ones_like(A), non_sequences=A, n_steps=k)
    final_result = result[-1]
    power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
    np.testing.assert_array_equal(power(range(10), 2), np.arange(10.0) ** 2)
    np.testing.assert_array_equal(power(range(10), 4), np.arange(10.0) ** 4)


def test_scan_polynomial_coefficients():
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    max_coefficients_supported = 10000
    full_range = T.arange(max_coefficients_supported)
    components, updates = theano.scan(
        fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
        outputs_info=None, sequences=[coefficients, full_range], non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
    test_coefficients = numpy.asarray([1, 0, 2], dtype=numpy.float32)
    test_value = 3
    assert calculate_polynomial(test_coefficients, test_value) == 19.0
    assert 1.0 * (3 ** 0) + 0.0 * (3 ** 1) + 2.0 * (3 ** 2) == 19.0


def test_scan_accumulating_into_a_scalar():
    up_to = T.iscalar("up_to")

    def accumulate_by_adding(arange_val, sum_to_date):
        return sum_to_date + arange_val
    seq = T.arange(up_to)
    outputs_info = T.as_tensor_variable(np.asarray(0, seq.dtype))
    scan_result, scan_updates = theano.scan(fn=accumulate_by_adding,
                                            outputs_info=outputs_info, sequences=seq)
    triangular_sequence = theano.function(inputs=[up_to], outputs=scan_result)
    some_num = 15
    np.testing.assert_array_equal(triangular_sequence(some_num),
                                  [n * (n + 1) // 2 for n in range(some_num)])


def test_scan_set_value_at_positions():
    location = T.imatrix("location")
    values = T.vector("values")
    output_model = T.matrix("output_model")

    def set_value_at_position(a_location, a_value, output_model):
        zeros = T.zeros_like(output_model)
        zeros_subtensor = zeros[a_location[0], a_location[1]]
        return T.set_subtensor(zeros_subtensor, a_value)
    result, updates = theano.scan(fn=set_value_at_position, outputs_info=None,
                                  sequences=[location, values], non_sequences=output_model)
    assign_values_at_positions = theano.function(inputs=[location, values, output_model],
                                                 outputs=result)
    test_locations = numpy.asarray([[1, 1], [2, 3]], dtype=numpy.int32)
    test_values = numpy.asarray([42, 50], dtype=numpy.float32)
    test_output_model = numpy.zeros((5, 5), dtype=numpy.float32)
    expected = np.zeros((2, 5, 5))
    expected[0, 1, 1] = 42
    expected[1, 2, 3] = 50
    np.testing.assert_array_equal(
        assign_values_at_positions(test_locations, test_values, test_output_model), expected)


def test_scan_elementwise_tanh_of_x_dot_w_plus_b():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
    compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
    x = np.eye(2, dtype=theano.config.floatX)
    w = np.ones((2, 2), dtype=theano.config.floatX)
    b = np.ones((2), dtype=theano.config.floatX)
    b[1] = 2
    out = compute_elementwise(x, w, b)
    np.testing.assert_allclose(out, np.tanh(x.dot(w) + b))
    np.testing.assert_allclose(out, [[0.96402758, 0.99505475], [0.96402758, 0.99505475]],
                               rtol=1e-7)


def test_scan_sequence_with_reversed_input():
    X = T.vector("X")
    W = T.matrix("W")
    U = T.matrix("U")
    Y = T.matrix("Y")
    V = T.matrix("V")
    P = T.matrix("P")
    results, updates = theano.scan(
        lambda y, p, x_tm1: T.tanh(T.dot(x_tm1, W) + T.dot(y, U) + T.dot(p, V)),
        sequences=[Y, P[::-1]], outputs_info=[X])
    compute_seq = theano.function(inputs=[X, W, Y, U, P, V], outputs=results)
    x = np.zeros((2), dtype=theano.config.floatX)
    x[1] = 1
    w = np.ones((2, 2), dtype=theano.config.floatX)
    y = np.ones((5, 2), dtype=theano.config.floatX)
    y[0, :] = -3
    u = np.ones((2, 2), dtype=theano.config.floatX)
    p = np.ones((5, 2), dtype=theano.config.floatX)
    p[0, :] = 3
    v = np.ones((2, 2), dtype=theano.config.floatX)
    x_res = np.zeros((5, 2), dtype=theano.config.floatX)
    x_res[0] = np.tanh(x.dot(w) + y[0].dot(u) + p[4].dot(v))
    for i in range(1, 5):
        x_res[i] = np.tanh(x_res[i - 1].dot(w) + y[i].dot(u) + p[4 - i].dot(v))
    out = compute_seq(x, w, y, u, p, v)
    np.testing.assert_allclose(out, x_res)
    np.testing.assert_allclose(out, [[-0.99505475, -0.99505475], [0.96471973, 0.96471973],
                                     [0.99998585, 0.99998585], [0.99998771, 0.99998771],
                                     [1.0, 1.0]], rtol=1e-7)


def test_scan_norms_of_rows_and_columns():
    X = T.matrix("X")
    results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X])
    compute_norm_lines = theano.function(inputs=[X], outputs=results)
    x = np.diag(np.arange(1, 6, dtype=theano.config.floatX), 1)
    np.testing.assert_array_equal(compute_norm_lines(x), [1.0, 2.0, 3.0, 4.0, 5.0, 0.0])
    np.testing.assert_array_equal(compute_norm_lines(x), np.sqrt((x ** 2).sum(1)))
    results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X.T])
    compute_norm_cols = theano.function(inputs=[X], outputs=results)
    np.testing.assert_array_equal(compute_norm_cols(x), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(compute_norm_cols(x), np.sqrt((x ** 2).sum(0)))


def test_scan_trace_of_a_matrix():
    floatX = "float32"
    X = T.matrix("X")
    results, updates = theano.scan(lambda i, j, t_f: T.cast(X[i, j] + t_f, floatX),
                                   sequences=[T.arange(X.shape[0]), T.arange(X.shape[1])],
                                   outputs_info=np.asarray(0., dtype=floatX))
    result = results[-1]
    compute_trace = theano.function(inputs=[X], outputs=result)
    x = np.eye(5, dtype=theano.config.floatX)
    x[0] = np.arange(5, dtype=theano.config.floatX)
    assert compute_trace(x) == 4.0 == np.diagonal(x).sum()
    assert compute_trace(x).dtype == np.float32


def test_scan_recurrence_with_two_taps():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    U = T.matrix("U")
    V = T.matrix("V")
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(
        lambda x_tm2, x_tm1: T.dot(x_tm2, U) + T.dot(x_tm1, V) + T.tanh(T.dot(x_tm1, W) + b_sym),
        n_steps=n_sym, outputs_info=[dict(initial=X, taps=[-2, -1])])
    compute_seq2 = theano.function(inputs=[X, U, V, W, b_sym, n_sym], outputs=results)
    x = np.zeros((2, 2), dtype=theano.config.floatX)   # the initial value must hold x[-2]
    x[1, 1] = 1
    w = 0.5 * np.ones((2, 2), dtype=theano.config.floatX)
    u = 0.5 * (np.ones((2, 2), dtype=theano.config.floatX) - np.eye(2, dtype=theano.config.floatX))
    v = 0.5 * np.ones((2, 2), dtype=theano.config.floatX)
    n = 10
    b = np.ones((2), dtype=theano.config.floatX)
    x_res = np.zeros((10, 2))
    x_res[0] = x[0].dot(u) + x[1].dot(v) + np.tanh(x[1].dot(w) + b)
    x_res[1] = x[1].dot(u) + x_res[0].dot(v) + np.tanh(x_res[0].dot(w) + b)
    for i in range(2, 10):
        x_res[i] = (x_res[i - 2].dot(u) + x_res[i - 1].dot(v) + np.tanh(x_res[i - 1].dot(w) + b))
    out = compute_seq2(x, u, v, w, b, n)
    np.testing.assert_allclose(out, x_res)
    np.testing.assert_allclose(out[[0, 1, 9]], [[1.40514825, 1.40514825],
                                                [2.88898899, 2.38898899],
                                                [54.28407732, 54.25282732]], rtol=1e-8)


def test_scan_jacobian_of_tanh():
    v = T.vector()
    A = T.matrix()
    y = T.tanh(T.dot(v, A))
    results, updates = theano.scan(lambda i: T.grad(y[i], v), sequences=[T.arange(y.shape[0])])
    compute_jac_t = theano.function([A, v], results, allow_input_downcast=True)
    x = np.eye(5, dtype=theano.config.floatX)[0]
    w = np.eye(5, 3, dtype=theano.config.floatX)
    w[2] = np.ones((3), dtype=theano.config.floatX)
    out = compute_jac_t(w, x)
    np.testing.assert_allclose(out, ((1 - np.tanh(x.dot(w)) ** 2) * w).T)
    np.testing.assert_allclose(out, [[0.41997434, 0, 0.41997434, 0, 0],
                                     [0, 1, 1, 0, 0], [0, 0, 1, 0, 0]], rtol=1e-7)


def test_scan_accumulates_a_shared_variable_with_updates():
    k = theano.shared(0)
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(lambda: {k: (k + 1)}, n_steps=n_sym)
    accumulator = theano.function([n_sym], [], updates=updates, allow_input_downcast=True)
    assert k.get_value() == 0
    accumulator(5)
    assert k.get_value() == 5


def test_scan_tanh_with_binomial_noise():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    trng = T.shared_randomstreams.RandomStreams(1234)
    d = trng.binomial(size=W[1].shape)
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym) * d, sequences=X)
    compute_with_bnoise = theano.function(inputs=[X, W, b_sym], outputs=results,
                                          updates=updates, allow_input_downcast=True)
    x = np.eye(10, 2, dtype=theano.config.floatX)
    w = np.ones((2, 2), dtype=theano.config.floatX)
    b = np.ones((2), dtype=theano.config.floatX)
    out = compute_with_bnoise(x, w, b)
    assert out.shape == (10, 2)
    clean = np.tanh(x.dot(w) + b)
    # each entry is the noiseless value or zero (the mask d)
    assert (np.isclose(out, clean) | (out == 0)).all()


def test_scan_until_powers_of_two():
    def power_of_2(previous_power, max_value):
        return previous_power * 2, theano.scan_module.until(previous_power * 2 > max_value)
    max_value = T.scalar()
    values, _ = theano.scan(power_of_2, outputs_info=T.constant(1.),
                            non_sequences=max_value, n_steps=1024)
    f = theano.function([max_value], values)
    np.testing.assert_array_equal(f(45), [2.0, 4.0, 8.0, 16.0, 32.0, 64.0])


def test_scan_gibbs_sampling_with_shared_weights_and_strict():
    rng = np.random.RandomState(0)
    W = theano.shared(rng.randn(4, 3), name="W")
    bvis = theano.shared(np.zeros(4), name="bvis")
    bhid = theano.shared(np.zeros(3), name="bhid")
    trng = T.shared_randomstreams.RandomStreams(1234)

    def OneStep(vsample):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)
    sample = T.vector()
    values, updates = theano.scan(OneStep, outputs_info=sample, n_steps=10)
    gibbs10 = theano.function([sample], values[-1], updates=updates)
    out = gibbs10(np.ones(4))
    assert out.shape == (4,) and set(np.unique(out)) <= {0.0, 1.0}

    # strict=True: every shared variable the step uses is passed explicitly
    # (the random streams' states, advanced each step, need not be)
    def OneStepStrict(vsample, W, bvis, bhid):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)
    values, updates = theano.scan(fn=OneStepStrict, outputs_info=sample,
                                  non_sequences=[W, bvis, bhid], n_steps=10, strict=True)
    out = theano.function([sample], values[-1], updates=updates)(np.ones(4))
    assert out.shape == (4,) and set(np.unique(out)) <= {0.0, 1.0}

    def OneStepDeterministic(vsample, W, bvis, bhid):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        return T.nnet.sigmoid(theano.dot(hmean, W.T) + bvis)
    values, updates = theano.scan(fn=OneStepDeterministic, outputs_info=sample,
                                  non_sequences=[W, bvis, bhid], n_steps=3, strict=True)
    v = np.ones(4)
    expected = []
    for _ in range(3):
        h = 1 / (1 + np.exp(-v.dot(W.get_value())))
        v = 1 / (1 + np.exp(-h.dot(W.get_value().T)))
        expected.append(v)
    np.testing.assert_allclose(theano.function([sample], values)(np.ones(4)), expected)
    # without them in non_sequences, strict scan refuses
    with pytest.raises(ValueError, match="strict=True.*W"):
        theano.scan(fn=lambda vsample: T.nnet.sigmoid(theano.dot(vsample, W)),
                    outputs_info=sample, n_steps=3, strict=True)


# ------------------------------------------------------------------ printing and debugging
def _logistic_prediction():
    rng = numpy.random.RandomState(1)
    feats = 4
    x = T.dmatrix("x")
    w = theano.shared(rng.randn(feats), name="w")
    b = theano.shared(0., name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    return x, w, b, p_1 > 0.5


def test_pprint_of_the_logistic_prediction():
    x, w, b, prediction = _logistic_prediction()
    # Theano: 'gt((TensorConstant{1} / (TensorConstant{1} + exp(((-(x \\dot w)) - b)))),
    #              TensorConstant{0.5})' -- tracegrad writes gt as '>' and dot as dot(x, w)
    text = theano.printing.pprint(prediction)
    assert text == "((1.0 / (1.0 + exp(((-dot(x, w)) - b)))) > 0.5)"
    assert theano.printing.pp(prediction) == text


def test_debugprint_of_the_prediction_before_and_after_compiling():
    x, w, b, prediction = _logistic_prediction()
    text = theano.printing.debugprint(prediction, file="str", print_type=False)
    lines = text.splitlines()
    # one line per variable, "[id A]" ids in order, " |" per level, as Theano
    assert lines[0] == "Elemwise{gt} [id A]"
    assert lines[1] == " |Elemwise{true_div} [id B]"
    assert [ln.strip(" |").split(" [")[0] for ln in lines if "x [" in ln or "w [" in ln] == \
        ["x", "w"]
    assert lines[-1].startswith(" |Constant{0.5}")
    predict = theano.function(inputs=[x], outputs=prediction)
    compiled = theano.printing.debugprint(predict, file="str", print_type=False)
    assert compiled.splitlines()[0].endswith("[id A]") and " |x [id" in compiled
    np.testing.assert_array_equal(
        predict(np.eye(4)), 1 / (1 + np.exp(-np.eye(4).dot(w.get_value()))) > 0.5)


def test_print_op_prints_at_run_time(capsys):
    x = T.dvector("x")
    x_printed = theano.printing.Print("this is a very important value")(x)
    f = theano.function([x], x * 5)
    f_with_print = theano.function([x], x_printed * 5)
    assert numpy.all(f([1, 2, 3]) == [5, 10, 15])      # runs without printing
    assert capsys.readouterr().out == ""
    assert numpy.all(f_with_print([1, 2, 3]) == [5, 10, 15])
    assert capsys.readouterr().out.strip() == "this is a very important value __str__ = [1. 2. 3.]"


@pytest.fixture
def restore_config():
    saved = {name: getattr(theano.config, name)
             for name in ("floatX", "compute_test_value", "print_test_value")}
    yield
    for name, value in saved.items():
        setattr(theano.config, name, value)


def test_test_values_find_the_shape_error_where_the_graph_is_built(restore_config):
    theano.config.compute_test_value = "off"        # the default
    rng = numpy.random.RandomState(2)
    W1 = theano.shared(rng.rand(2, 10, 10).astype(theano.config.floatX), "W1")
    W2 = theano.shared(rng.rand(15, 20).astype(theano.config.floatX), "W2")
    x = T.matrix("x")
    func_of_W1 = W1.dimshuffle(2, 0, 1).flatten(2).T      # (20, 10), unknown to the graph
    h1 = T.dot(x, func_of_W1)                            # the bug: (5, 10) dot (20, 10)
    h2 = T.dot(h1, W2.T)
    f = theano.function([x], h2)
    with pytest.raises(ValueError, match="not aligned"):
        f(rng.rand(5, 10))                               # found only when called

    theano.config.compute_test_value = "raise"
    x = T.matrix("x")
    x.tag.test_value = rng.rand(5, 10)
    func_of_W1 = W1.dimshuffle(2, 0, 1).flatten(2).T
    with pytest.raises(ValueError, match=r"\(5, 10\).*\(20, 10\)") as info:
        T.dot(x, func_of_W1)                             # found where it is written
    assert "test_theano_docs.py" in str(info.value)
    # an input without a test value is an error in 'raise' mode
    with pytest.raises(ValueError, match="test value"):
        T.dot(T.matrix("no_value"), func_of_W1)


def test_print_test_value_flag(restore_config):
    theano.config.compute_test_value = "warn"
    theano.config.print_test_value = True
    x = T.dvector("x")
    x.tag.test_value = numpy.ones(3)
    y = x ** 2 + 1
    assert y.tag.test_value.tolist() == [2.0, 2.0, 2.0]
    assert repr(y).splitlines()[-1] == repr(numpy.full(3, 2.0))


def test_monitor_mode_inspects_every_node(capsys):
    def inspect_inputs(i, node, fn):
        print(i, node, "input(s) value(s):", [input[0] for input in fn.inputs], end="")

    def inspect_outputs(i, node, fn):
        print(" output(s) value(s):", [output[0] for output in fn.outputs])

    x = T.dscalar("x")
    f = theano.function([x], [5 * x], mode=theano.compile.MonitorMode(
        pre_func=inspect_inputs, post_func=inspect_outputs))
    assert f(3) == [15.0]
    printed = capsys.readouterr().out.strip()
    # Theano: "0 Elemwise{mul,no_inplace}(TensorConstant{5.0}, x) input(s) value(s):
    #          [array(5.0), array(3.0)] output(s) value(s): [array(15.0)]"
    assert printed.startswith("0 ") and printed.count("\n") == 0
    assert printed.endswith("input(s) value(s): [array(5.), array(3.)] "
                            "output(s) value(s): [array(15.)]")


def test_monitor_mode_detects_the_first_nan(capsys):
    def detect_nan(i, node, fn):
        for output in fn.outputs:
            if (not isinstance(output[0], numpy.random.RandomState) and
                    numpy.isnan(output[0]).any()):
                print("*** NaN detected ***")
                theano.printing.debugprint(node)
                print("Inputs : %s" % [input[0] for input in fn.inputs])
                print("Outputs: %s" % [output[0] for output in fn.outputs])
                break

    x = T.dscalar("x")
    f = theano.function([x], [T.log(x) * x],
                        mode=theano.compile.MonitorMode(post_func=detect_nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        f(0)                                      # log(0) * 0 = -inf * 0 = NaN
    printed = capsys.readouterr().out
    assert printed.startswith("*** NaN detected ***\n")
    assert "Inputs : [array(0.)]" in printed and "Outputs: [array(nan)]" in printed
    # without fusion and in-place, the NaN is found at the mul, after log
    f = theano.function([x], [T.log(x) * x], mode=theano.compile.MonitorMode(
        post_func=detect_nan).excluding("local_elemwise_fusion", "inplace"))
    with np.errstate(divide="ignore", invalid="ignore"):
        f(0)
    printed = capsys.readouterr().out
    assert "Elemwise{mul}" in printed and "Inputs : [array(-inf), array(0.)]" in printed


def test_nan_guard_mode_names_the_node():
    from tracegrad.compile.nanguardmode import NanGuardMode
    x = T.matrix()
    w = theano.shared(numpy.random.RandomState(3).randn(5, 7).astype(theano.config.floatX))
    y = T.dot(x, w)
    fun = theano.function([x], y, mode=NanGuardMode(nan_is_error=True, inf_is_error=True,
                                                    big_is_error=True))
    with np.errstate(over="ignore"):
        infa = numpy.tile((numpy.asarray(100.) ** 1000000).astype(theano.config.floatX), (3, 5))
    with np.errstate(invalid="ignore"), pytest.raises(AssertionError,
                                                      match=r"NanGuardMode: (NaN|Inf) detected"):
        fun(infa)
    np.testing.assert_allclose(fun(np.ones((3, 5))), np.ones((3, 5)).dot(w.get_value()))


# ------------------------------------------------------------------ configuration and modes
def test_logistic_regression_in_float32(restore_config):
    theano.config.floatX = "float32"
    rng = numpy.random.RandomState(4)
    N, feats = 400, 784
    D = (rng.randn(N, feats).astype(theano.config.floatX),
         rng.randint(size=N, low=0, high=2).astype(theano.config.floatX))
    x = T.matrix("x")
    y = T.vector("y")
    w = theano.shared(rng.randn(feats).astype(theano.config.floatX), name="w")
    b = theano.shared(numpy.asarray(0., dtype=theano.config.floatX), name="b")
    x.tag.test_value = D[0]
    y.tag.test_value = D[1]
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                            updates=[(w, w - 0.01 * gw), (b, b - 0.01 * gb)], name="train")
    predict = theano.function(inputs=[x], outputs=prediction, name="predict")
    assert any(node.op.__class__.__name__ in ("TensorDot", "Dot", "Gemv")
               for node in train.maker.fgraph.toposort())
    # 20 steps against the same steps in float64 NumPy (the tutorial trains 10000)
    X, Y = D[0].astype(np.float64), D[1].astype(np.float64)
    w_ref, b_ref = w.get_value().astype(np.float64), float(b.get_value())
    first_err = None
    for i in range(20):
        p = 1 / (1 + np.exp(-X.dot(w_ref) - b_ref))
        w_ref, b_ref = (w_ref - 0.01 * (X.T.dot(p - Y) / N + 0.02 * w_ref),
                        b_ref - 0.01 * (p - Y).mean())
        pred, err = train(D[0], D[1])
        first_err = err.mean() if first_err is None else first_err
    assert err.dtype == np.float32 and w.get_value().dtype == np.float32
    assert b.get_value().dtype == np.float32
    # float32 arithmetic: agreement to float32 precision over 784-term dot products
    np.testing.assert_allclose(w.get_value(), w_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.get_value(), b_ref, rtol=1e-4, atol=1e-5)
    assert err.mean() < first_err
    np.testing.assert_array_equal(predict(D[0]), 1 / (1 + np.exp(-D[0].dot(w.get_value())
                                                               - b.get_value())) > 0.5)


def test_function_modes_by_name_and_object():
    x = T.dvector("x")
    y = T.exp(x) * 2 + 1
    expected = np.exp([0.0, 1.0]) * 2 + 1
    for mode in ("FAST_COMPILE", "FAST_RUN", "DebugMode", "DEBUG_MODE",
                 theano.Mode(linker="py", optimizer="fast_compile"),
                 theano.compile.mode.Mode(linker="cvm", optimizer="fast_run"),
                 theano.compile.DebugMode()):
        np.testing.assert_allclose(theano.function([x], y, mode=mode)([0.0, 1.0]), expected,
                                   err_msg=str(mode))


def test_profiling_a_function():
    x = T.dmatrix("x")
    f = theano.function([x], T.tanh(T.dot(x, x.T)).sum(), profile=True)
    for _ in range(3):
        f(np.ones((4, 4)))
    text = f.profile.summary()
    assert isinstance(text, str) and text


# ------------------------------------------------------------------ broadcasting
def test_broadcasting_rows_and_columns():
    r = T.row()
    assert r.broadcastable == (True, False)
    mtr = T.matrix()
    assert mtr.broadcastable == (False, False)
    f_row = theano.function([r, mtr], [r + mtr])
    R = np.arange(3).reshape(1, 3)
    M = np.arange(9).reshape(3, 3)
    out = f_row(R, M)
    assert isinstance(out, list) and len(out) == 1
    np.testing.assert_array_equal(out[0], [[0.0, 2.0, 4.0], [3.0, 5.0, 7.0], [6.0, 8.0, 10.0]])
    c = T.col()
    assert c.broadcastable == (False, True)
    f_col = theano.function([c, mtr], [c + mtr])
    C = np.arange(3).reshape(3, 1)
    np.testing.assert_array_equal(f_col(C, M)[0],
                                  [[0.0, 1.0, 2.0], [4.0, 5.0, 6.0], [8.0, 9.0, 10.0]])


# ------------------------------------------------------------------ shape information
def test_shape_of_a_compiled_graph_does_not_compute_the_values():
    x = theano.tensor.matrix("x")
    f = theano.function([x], (x ** 2).shape)
    # Theano: MakeVector(Shape_i{0}(x), Shape_i{1}(x)) -- no x ** 2
    text = theano.printing.debugprint(f, file="str", print_type=False)
    assert "sqr" not in text and "pow" not in text
    np.testing.assert_array_equal(f(np.ones((3, 4))), [3, 4])


def test_shape_of_a_join_of_mismatched_inputs():
    x = theano.tensor.matrix("x")
    y = theano.tensor.matrix("y")
    z = theano.tensor.join(0, x, y)
    xv = numpy.random.rand(5, 4)
    yv = numpy.random.rand(3, 3)
    f = theano.function([x, y], z.shape)
    # Theano returns [8, 4] here ("DOES NOT RAISE AN ERROR AS SHOULD BE");
    # tracegrad computes the join and raises as it should
    with pytest.raises(ValueError, match="concatenation axis"):
        f(xv, yv)
    f = theano.function([x, y], z)
    with pytest.raises(ValueError, match="concatenation axis"):
        f(xv, yv)
    np.testing.assert_array_equal(theano.function([x, y], z.shape)(xv, xv[:3]), [8, 4])


def test_specify_shape():
    x = T.matrix()
    x_specify_shape = T.specify_shape(x, (2, 2))
    f = theano.function([x], (x_specify_shape ** 2).shape)
    # Theano: DeepCopyOp(TensorConstant{(2,) of 2}) -- a constant
    assert all(n.op.name != "sqr" for n in f.maker.fgraph.toposort())
    np.testing.assert_array_equal(f(np.ones((2, 2))), [2, 2])
    g = theano.function([x], x_specify_shape ** 2)
    np.testing.assert_array_equal(g(np.full((2, 2), 3.0)), np.full((2, 2), 9.0))
    with pytest.raises(Exception, match="shape"):
        g(np.ones((3, 3)))


# ------------------------------------------------------------------ aliasing
def test_shared_borrow_semantics():
    np_array = numpy.ones(2, dtype="float32")
    s_default = theano.shared(np_array)
    s_false = theano.shared(np_array, borrow=False)
    s_true = theano.shared(np_array, borrow=True)
    np_array += 1                          # now an array of 2.0s
    np.testing.assert_array_equal(s_default.get_value(), [1.0, 1.0])
    np.testing.assert_array_equal(s_false.get_value(), [1.0, 1.0])
    np.testing.assert_array_equal(s_true.get_value(), [2.0, 2.0])

    s = theano.shared(np_array)
    v_false = s.get_value(borrow=False)
    v_true = s.get_value(borrow=True)
    v_internal = s.get_value(borrow=True, return_internal_type=True)
    assert v_false is not v_true and v_internal is v_true
    s.set_value(v_true * 3, borrow=True)
    np.testing.assert_array_equal(s.get_value(), [6.0, 6.0])


def test_borrowing_function_inputs_and_outputs():
    from tracegrad import Out
    x = T.matrix()
    y = 2 * x
    f1 = theano.function([In(x, borrow=True)], Out(y, borrow=True))
    f2 = theano.function([x], Out(y, borrow=False))
    v = np.ones((2, 2))
    np.testing.assert_array_equal(f1(v), 2 * v)
    a = f2(v)
    b = f2(v)
    assert a is not b                       # an unborrowed output is a fresh array


# ------------------------------------------------------------------ graph structures
def test_graph_structure_of_a_product():
    x = T.dmatrix("x")
    y = T.dmatrix("y")
    z = x + y
    assert z.owner.inputs[0] is x and z.owner.inputs[1] is y
    x = T.matrix("x")
    y = x * 2.
    assert isinstance(y.owner, theano.Apply)
    assert y.owner.op.name == "mul"             # Theano: 'Elemwise{mul,no_inplace}'
    assert len(y.owner.inputs) == 2
    assert y.owner.inputs[0] is x
    # Theano broadcasts the constant with DimShuffle{x,x}; tracegrad keeps
    # the 0-d constant (NumPy broadcasting)
    assert isinstance(y.owner.inputs[1], theano.Constant) and y.owner.inputs[1].data == 2.0


# ------------------------------------------------------------------ scan library page
def test_scan_polynomial_exercise_with_a_recurrence():
    X = T.scalar("X")
    coefficients = T.vector("coefficients")
    max_coefficients_supported = 10000

    def step(coeff, power, prior_value, free_var):
        return prior_value + (coeff * (free_var ** power))
    outputs_info = T.as_tensor_variable(numpy.asarray(0, "float64"))
    components, updates = theano.scan(
        fn=step, outputs_info=outputs_info,
        sequences=[coefficients, T.arange(max_coefficients_supported)], non_sequences=X)
    polynomial = components[-1]
    calculate_polynomial = theano.function(inputs=[coefficients, X], outputs=polynomial,
                                           updates=updates)
    test_coeff = numpy.asarray([1, 0, 2], dtype=numpy.float32)
    assert calculate_polynomial(test_coeff, 3) == 19.0


def test_scan_rnn_with_several_taps_and_strict():
    rng = np.random.RandomState(5)
    n_in, n_hid, n_out, steps = 2, 3, 2, 6
    W = theano.shared(rng.randn(n_hid, n_hid) * 0.5, name="W")
    W_in_1 = theano.shared(rng.randn(n_in, n_hid), name="W_in_1")
    W_in_2 = theano.shared(rng.randn(n_in, n_hid), name="W_in_2")
    W_feedback = theano.shared(rng.randn(n_out, n_hid), name="W_feedback")
    W_out = theano.shared(rng.randn(n_hid, n_out), name="W_out")
    u = T.matrix()     # it is a sequence of vectors
    x0 = T.matrix()    # initial state of x has to be a matrix: it needs 3 taps
    y0 = T.vector()    # y0 is just a vector, only the last value is needed

    def oneStep(u_tm4, u_t, x_tm3, x_tm1, y_tm1, W, W_in_1, W_in_2, W_feedback, W_out):
        x_t = T.tanh(theano.dot(x_tm1, W) + theano.dot(u_t, W_in_1) +
                     theano.dot(u_tm4, W_in_2) + theano.dot(y_tm1, W_feedback))
        y_t = theano.dot(x_tm3, W_out)
        return [x_t, y_t]

    ([x_vals, y_vals], updates) = theano.scan(
        fn=oneStep, sequences=dict(input=u, taps=[-4, -0]),
        outputs_info=[dict(initial=x0, taps=[-3, -1]), y0],
        non_sequences=[W, W_in_1, W_in_2, W_feedback, W_out], strict=True)
    f = theano.function([u, x0, y0], [x_vals, y_vals], updates=updates)

    uv, x0v, y0v = rng.randn(steps + 4, n_in), rng.randn(3, n_hid), rng.randn(n_out)
    w, w1, w2, wf, wo = (s.get_value() for s in (W, W_in_1, W_in_2, W_feedback, W_out))
    xs, ys = list(x0v), [y0v]
    for t in range(steps):
        u_tm4, u_t = uv[t], uv[t + 4]
        xs.append(np.tanh(xs[-1] @ w + u_t @ w1 + u_tm4 @ w2 + ys[-1] @ wf))
        ys.append(xs[-4] @ wo)
    got_x, got_y = f(uv, x0v, y0v)
    np.testing.assert_allclose(got_x, xs[3:])
    np.testing.assert_allclose(got_y, ys[1:])


def test_map_reduce_foldl_foldr():
    x = T.dvector("x")
    doubled, _ = theano.map(lambda v: v * 2, x)
    total, _ = theano.reduce(lambda v, acc: acc + v, x, T.constant(0.))
    left, _ = theano.foldl(lambda v, acc: acc * 10 + v, x, T.constant(0.))
    right, _ = theano.foldr(lambda v, acc: acc * 10 + v, x, T.constant(0.))
    f = theano.function([x], [doubled, total, left, right])
    d, t, lft, rgt = f([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(d, [2.0, 4.0, 6.0])
    assert (t, lft, rgt) == (6.0, 123.0, 321.0)
    assert theano.scan_module.map is theano.map


def test_scan_checkpoints_gives_scan_values_and_gradients():
    k = T.iscalar("k")
    A = T.dvector("A")
    result, _ = theano.scan_checkpoints(lambda prior, A: prior * A, outputs_info=T.ones_like(A),
                                        non_sequences=A, n_steps=k, save_every_N=2)
    cost = result[-1].sum()
    f = theano.function([A, k], [result[-1], T.grad(cost, A)])
    a = np.array([1.0, 2.0, 3.0])
    value, grad = f(a, 4)
    np.testing.assert_array_equal(value, a ** 4)
    np.testing.assert_allclose(grad, 4 * a ** 3)
    with pytest.raises(ValueError, match="tap -1"):
        theano.scan_checkpoints(lambda a, b: a + b, outputs_info=[dict(initial=A, taps=[-2])],
                                n_steps=k)
    with pytest.raises(ValueError, match="save_every_N"):
        theano.scan_checkpoints(lambda p: p, outputs_info=A, n_steps=k, save_every_N=0)
