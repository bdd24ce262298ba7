"""Theano's documented tutorial examples (see test_theano_docs.py): the
derivatives, conditions and loop pages, and the scan library page. Where
the tutorial prints a timing, the test checks what the timing was meant to
show.
"""
import numpy as np
import numpy
import pytest

import tracegrad as theano
import tracegrad.tensor as T
from tracegrad import pp


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


def test_scan_return_list_and_truncate_gradient():
    x = T.dvector("x")
    out, _ = theano.scan(lambda v: v * 2, sequences=x, return_list=True)
    assert isinstance(out, list) and len(out) == 1
    np.testing.assert_array_equal(theano.function([x], out[0])([1.0, 2.0]), [2.0, 4.0])
    # truncate_gradient=1: the gradient of the last state flows back one step only
    w = T.dscalar("w")
    states, _ = theano.scan(lambda acc, w: acc * w, outputs_info=T.constant(1.0),
                            non_sequences=w, n_steps=3, truncate_gradient=1)
    full, _ = theano.scan(lambda acc, w: acc * w, outputs_info=T.constant(1.0),
                          non_sequences=w, n_steps=3)
    g = theano.function([w], [T.grad(states[-1], w), T.grad(full[-1], w)])
    truncated, exact = g(2.0)
    assert exact == 3 * 2.0 ** 2          # d(w**3)/dw
    assert truncated == 2.0 ** 2          # only the last step's factor w: acc_2 = w**2
