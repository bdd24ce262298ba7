"""``tg.scan``: the Theano tutorial loops, taps, ``until``, gradients (first
and second order, truncated), shared variables inside the body, the memory
bound for ``result[-1]``, and ``jacobian`` / ``hessian`` built on scan."""
import pickle
import tracemalloc

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.scan import Scan
from tracegrad.testing import verify_grad


def scan_nodes(f):
    return [n for n in f.maker.fgraph.toposort() if isinstance(n.op, Scan)]


# ------------------------------------------------------------ forward
def test_power_by_scan_tutorial():
    k = T.iscalar("k")
    A = T.vector("A")
    result, updates = tg.scan(fn=lambda prior_result, A: prior_result * A,
                              outputs_info=T.ones_like(A), non_sequences=A, n_steps=k)
    power = tg.function(inputs=[A, k], outputs=result[-1], updates=updates)
    np.testing.assert_allclose(power(range(10), 2), np.arange(10.0) ** 2)
    np.testing.assert_allclose(power(range(10), 4), np.arange(10.0) ** 4)


def test_polynomial_from_coefficients_and_arange():
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    components, updates = tg.scan(
        fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
        outputs_info=None, sequences=[coefficients, T.arange(100)], non_sequences=x)
    assert not updates
    polynomial = tg.function([coefficients, x], components.sum())
    # The loop runs over the shorter sequence (3 coefficients, not 100 powers).
    assert polynomial(np.asarray([1, 0, 2], dtype="float64"), 3) == pytest.approx(19.0)
    coeffs = np.random.default_rng(0).standard_normal(7)
    assert polynomial(coeffs, 0.7) == pytest.approx(np.polyval(coeffs[::-1], 0.7))
    assert tg.function([coefficients, x], components)(coeffs, 2.0).shape == (7,)


def test_fibonacci_with_two_taps():
    n = T.lscalar("n")
    fib, _ = tg.scan(lambda a, b: a + b,
                     outputs_info=dict(initial=np.asarray([0, 1]), taps=[-2, -1]), n_steps=n)
    f = tg.function([n], fib)
    assert fib.dtype == "int64"
    np.testing.assert_array_equal(f(10), [1, 2, 3, 5, 8, 13, 21, 34, 55, 89])
    assert f(0).shape == (0,)


def test_until_stops_after_the_step_that_meets_the_condition():
    def power_of_2(previous_power, max_value):
        return previous_power * 2, tg.until(previous_power * 2 > max_value)

    max_value = T.scalar("max_value")
    values, _ = tg.scan(power_of_2, outputs_info=T.constant(1.0), non_sequences=max_value,
                        n_steps=1024)
    f = tg.function([max_value], values)
    np.testing.assert_array_equal(f(45), [2, 4, 8, 16, 32, 64])
    np.testing.assert_array_equal(f(0.5), [2])


def test_sequence_taps_and_go_backwards():
    x = T.vector("x")
    out, _ = tg.scan(lambda a, b, c: a + 10 * b + 100 * c,
                     sequences=dict(input=x, taps=[-1, 0, 2]))
    xv = np.arange(8.0)
    # Theano: steps = len - (max(taps, 0) - min(taps, 0)); step t reads x[t+1+tap].
    expected = xv[0:5] + 10 * xv[1:6] + 100 * xv[3:8]
    np.testing.assert_allclose(tg.function([x], out)(xv), expected)
    rev, _ = tg.scan(lambda v, acc: acc * 2 + v, sequences=x,
                     outputs_info=T.constant(0.0), go_backwards=True)
    got = tg.function([x], rev)(np.asarray([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got, [3.0, 8.0, 17.0])


def test_several_outputs_and_non_sequences_passed_as_outer_variables():
    x = T.vector("x")
    w = T.scalar("w")
    seen = []

    def step(xt, acc, w):
        seen.append(w)
        return [acc + xt * w, T.sqr(xt)]

    (running, squares), _ = tg.scan(step, sequences=x, outputs_info=[T.constant(0.0), None],
                                    non_sequences=w)
    assert seen == [w]  # fn is traced once, on the outer variable itself
    f = tg.function([x, w], [running, squares])
    r, s = f(np.asarray([1.0, 2.0, 3.0]), 2.0)
    np.testing.assert_allclose(r, [2.0, 6.0, 12.0])
    np.testing.assert_allclose(s, [1.0, 4.0, 9.0])


def test_python_number_initial_value_takes_the_output_dtype():
    x = T.fvector("x")
    total, _ = tg.scan(lambda v, acc: acc + v, sequences=x, outputs_info=0)
    assert total.dtype == "float32"
    np.testing.assert_allclose(tg.function([x], total)(np.ones(3, "float32")), [1, 2, 3])


def test_errors_name_the_problem():
    x = T.vector("x")
    with pytest.raises(TypeError, match="dtype"):
        tg.scan(lambda v, acc: acc + v, sequences=x, outputs_info=T.constant(0, dtype="int32"))
    with pytest.raises(ValueError, match="n_steps"):
        tg.scan(lambda acc: acc + 1, outputs_info=T.constant(0.0))
    h0 = T.vector("h0")
    grow, _ = tg.scan(lambda v, acc: T.concatenate([acc, acc]), sequences=x, outputs_info=h0)
    f = tg.function([x, h0], grow)
    with pytest.raises(ValueError, match="same shape"):
        f(np.ones(3), np.ones(2))


def test_body_is_traced_once_and_compiled_once():
    calls = []

    def step(h):
        calls.append(1)
        return h * 2

    n = T.lscalar("n")
    out, _ = tg.scan(step, outputs_info=T.constant(1.0), n_steps=n)
    f = tg.function([n], out[-1])
    assert f(10) == 1024.0 and f(3) == 8.0
    assert len(calls) == 1
    node, = scan_nodes(f)
    compiled = node.op.inner.function(np)
    assert compiled is node.op.inner.function(np)
    assert hasattr(compiled, "maker")  # a tg.function: rewritten and fused like any graph


def test_loop_invariant_expressions_are_computed_outside_the_loop():
    W = T.matrix("W")
    x = T.matrix("x")
    out, _ = tg.scan(lambda xt, h, W: T.tanh(T.dot(W.T, h) + xt), sequences=x,
                     outputs_info=T.vector("h0"), non_sequences=W)
    op = out.owner.inputs[0].owner.op
    inner_nodes = [n.op.name for n in _inner_nodes(op)]
    assert not any("DimShuffle" in name or "ranspose" in name for name in inner_nodes), \
        inner_nodes


def _inner_nodes(op):
    from tracegrad.trace import toposort
    return toposort(op.inner.outputs, blockers=op.inner.inputs)


def test_shared_variables_inside_and_updates_from_fn():
    acc = tg.shared(0.0, name="acc")
    count = tg.shared(np.int64(0), name="count")
    x = T.vector("x")
    out, updates = tg.scan(lambda xt: (acc + xt, {acc: acc + xt, count: count + 1}),
                           sequences=x)
    f = tg.function([x], out, updates=updates)
    np.testing.assert_allclose(f(np.arange(4.0)), [0, 1, 3, 6])
    assert acc.get_value() == 6.0 and count.get_value() == 4
    np.testing.assert_allclose(f(np.ones(2)), [7, 8])
    assert acc.get_value() == 8.0 and count.get_value() == 6


def test_pickled_function_with_scan():
    x = T.vector("x")
    out, _ = tg.scan(lambda v, acc: acc * 0.5 + v, sequences=x, outputs_info=T.constant(0.0))
    f = tg.function([x], [out, tg.grad(out.sum(), x)])
    g = pickle.loads(pickle.dumps(f))
    xv = np.arange(5.0)
    for a, b in zip(f(xv), g(xv)):
        np.testing.assert_allclose(a, b)


# ------------------------------------------------------------ gradients
RNG = np.random.default_rng(42)


def test_verify_grad_sequence_state_and_non_sequence():
    def fn(x, h0, w):
        out, _ = tg.scan(lambda xt, h, w: T.tanh(xt * w + h * 0.5), sequences=x,
                         outputs_info=h0, non_sequences=w)
        return out
    verify_grad(fn, [RNG.standard_normal((5, 3)), RNG.standard_normal(3),
                     RNG.standard_normal(3)], rng=RNG)


def test_verify_grad_with_taps_on_sequences_and_outputs():
    def fn(x, h0, w):
        out, _ = tg.scan(lambda xm1, x0, xp1, hm2, hm1, w:
                         T.sin(xm1 + 2 * x0 * xp1) * w + hm2 * hm1 * 0.3,
                         sequences=dict(input=x, taps=[-1, 0, 1]),
                         outputs_info=dict(initial=h0, taps=[-2, -1]), non_sequences=w)
        return out
    verify_grad(fn, [RNG.standard_normal((7, 2)), RNG.standard_normal((3, 2)),
                     RNG.standard_normal(2)], rng=RNG)


def test_verify_grad_backwards_with_output_without_recurrence():
    def fn(x, w):
        (a, b), _ = tg.scan(lambda xt, h, w: [h + xt * w, T.exp(xt) * h], sequences=x,
                            outputs_info=[T.zeros_like(w), None], non_sequences=w,
                            go_backwards=True)
        return a[-1] * 2 + b.sum()
    verify_grad(fn, [RNG.standard_normal((4, 3)), RNG.standard_normal(3)], rng=RNG)


def test_verify_grad_of_an_until_loop():
    def fn(w):
        vals, _ = tg.scan(lambda p, w: (p * w, tg.until(p * w > 10)),
                          outputs_info=T.constant(1.0), non_sequences=w, n_steps=100)
        return vals.sum()
    verify_grad(fn, [np.asarray(2.1)], rng=RNG)


def test_gradient_wrt_shared_variable_used_inside():
    W = tg.shared(RNG.standard_normal((3, 3)), name="W")
    xs, h0 = T.matrix("xs"), T.vector("h0")
    hs, _ = tg.scan(lambda xt, h: T.tanh(T.dot(W, h) + xt), sequences=xs, outputs_info=h0)
    f = tg.function([xs, h0], tg.grad((hs ** 2).sum(), W))
    xv, hv, Wv = RNG.standard_normal((4, 3)), RNG.standard_normal(3), W.get_value()

    def cost(Wm):
        h, c = hv, 0.0
        for t in range(4):
            h = np.tanh(Wm @ h + xv[t])
            c += (h ** 2).sum()
        return c
    eps = 1e-6
    numeric = np.zeros((3, 3))
    for idx in np.ndindex(3, 3):
        e = np.zeros((3, 3))
        e[idx] = eps
        numeric[idx] = (cost(Wv + e) - cost(Wv - e)) / (2 * eps)
    np.testing.assert_allclose(f(xv, hv), numeric, rtol=1e-6, atol=1e-8)


def test_truncate_gradient_backpropagates_through_the_last_steps():
    x, h0, w = T.matrix("x"), T.vector("h0"), T.vector("w")
    out, _ = tg.scan(lambda xt, h, w: h * w + xt, sequences=x, outputs_info=h0,
                     non_sequences=w, truncate_gradient=2)
    f = tg.function([x, h0, w], tg.grad(out[-1].sum(), [x, h0, w]))
    xv, hv, wv = RNG.standard_normal((5, 3)), RNG.standard_normal(3), RNG.standard_normal(3)
    gx, gh, gw = f(xv, hv, wv)
    h = [hv]
    for t in range(5):
        h.append(h[-1] * wv + xv[t])
    # Only steps 3 and 4 are pulled back: h4 = (h2 w + x3) w + x4.
    np.testing.assert_allclose(gx, np.stack([0 * wv, 0 * wv, 0 * wv, wv, np.ones(3)]))
    np.testing.assert_allclose(gh, np.zeros(3))
    np.testing.assert_allclose(gw, h[4] + h[3] * wv)


def test_second_order_hessian_through_scan():
    x, h0 = T.vector("x"), T.vector("h0")
    out, _ = tg.scan(lambda h, w: T.tanh(h * w), outputs_info=h0, non_sequences=x, n_steps=3)
    cost = (out[-1] ** 2).sum()
    hess = tg.function([x, h0], tg.hessian(cost, x))
    grad = tg.function([x, h0], tg.grad(cost, x))
    xv, hv = RNG.standard_normal(4), RNG.standard_normal(4)
    eps = 1e-6
    numeric = np.stack([(grad(xv + eps * e, hv) - grad(xv - eps * e, hv)) / (2 * eps)
                        for e in np.eye(4)])
    np.testing.assert_allclose(hess(xv, hv), numeric, rtol=1e-6, atol=1e-8)


def test_verify_grad_of_a_gradient_through_scan():
    def fn(w, h):
        out, _ = tg.scan(lambda h, w: T.tanh(h * w), outputs_info=h, non_sequences=w,
                         n_steps=3)
        return tg.grad((out ** 2).sum(), w)
    verify_grad(fn, [RNG.standard_normal(3), RNG.standard_normal(3)], rng=RNG)


def test_gradient_through_a_shared_variable_updated_in_the_loop():
    acc = tg.shared(np.full(3, 0.5), name="acc")

    def fn(x, w):
        out, updates = tg.scan(lambda xt, w: (T.sin(acc) + xt, {acc: acc * w + xt}),
                               sequences=x, non_sequences=w)
        return updates[acc] * 2 + out[-1]
    verify_grad(fn, [RNG.standard_normal((4, 3)), RNG.standard_normal(3)], rng=RNG)


def test_gradient_of_a_trimmed_loop_recomputes_the_history():
    from tracegrad.scan.axis import axis_slice
    x, w = T.matrix("x"), T.vector("w")
    out, _ = tg.scan(lambda xt, h, w: T.tanh(h * w + xt), sequences=x,
                     outputs_info=T.zeros_like(w), non_sequences=w)
    node = out.owner.inputs[0].owner
    trimmed = node.op.with_spec(keep=(2,)).make_node(*node.inputs)
    last = axis_slice(trimmed.outputs[0], -1, squeeze=True)
    f = tg.function([x, w], tg.grad(last.sum(), [x, w]) + tg.grad(out[-1].sum(), [x, w]))
    gx1, gw1, gx2, gw2 = f(RNG.standard_normal((5, 3)), RNG.standard_normal(3))
    np.testing.assert_allclose(gx1, gx2)
    np.testing.assert_allclose(gw1, gw2)


def test_rop_through_scan_matches_jacobian_product():
    x, v = T.vector("x"), T.vector("v")
    out, _ = tg.scan(lambda h, w: T.tanh(h * w), outputs_info=T.ones_like(x), non_sequences=x,
                     n_steps=3)
    y = out[-1]
    f = tg.function([x, v], [tg.Rop(y, x, v), T.dot(tg.jacobian(y, x), v)])
    rop, jv = f(RNG.standard_normal(4), RNG.standard_normal(4))
    np.testing.assert_allclose(rop, jv, rtol=1e-10, atol=1e-12)


def test_rnn_training_with_scan_decreases_the_loss():
    rng = np.random.default_rng(0)
    n_in, n_h, steps = 3, 8, 12
    Wx = tg.shared(rng.standard_normal((n_in, n_h)) * 0.3, name="Wx")
    Wh = tg.shared(rng.standard_normal((n_h, n_h)) * 0.3, name="Wh")
    Wy = tg.shared(rng.standard_normal(n_h) * 0.3, name="Wy")
    x, y = T.matrix("x"), T.vector("y")
    hs, _ = tg.scan(lambda xt, h: T.tanh(T.dot(xt, Wx) + T.dot(h, Wh)), sequences=x,
                    outputs_info=T.zeros((n_h,)))
    loss = ((T.dot(hs, Wy) - y) ** 2).mean()
    params = [Wx, Wh, Wy]
    grads = tg.grad(loss, params)
    train = tg.function([x, y], loss, updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])
    xv = rng.standard_normal((steps, n_in))
    yv = np.sin(np.cumsum(xv[:, 0]))
    losses = [float(train(xv, yv)) for _ in range(25)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert all(b < a for a, b in zip(losses[:5], losses[1:6]))


# ------------------------------------------------------------ memory
def test_only_the_last_step_is_kept_when_only_result_last_is_used():
    v = T.vector("v")
    n = T.lscalar("n")
    out, _ = tg.scan(lambda h, v: h * 0.5 + v, outputs_info=T.zeros_like(v), non_sequences=v,
                     n_steps=n)
    last = tg.function([v, n], out[-1])
    node, = scan_nodes(last)
    assert node.op.spec.keep == (1,)
    vv = np.ones(1000)
    last(vv, 3)
    steps = 5000   # all rows would be 5000 x 1000 float64 = 40 MB
    tracemalloc.start()
    try:
        result = last(vv, steps)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(result, np.full(1000, 2.0))
    assert peak < 100 * 1000 * 8, peak   # a few rows of 1000 values, not 5000
    # When the whole result is used, every row is kept.
    whole = tg.function([v, n], [out, out[-1]])
    node, = scan_nodes(whole)
    assert node.op.spec.keep == (None,)
    full, final = whole(vv, 5)
    assert full.shape == (5, 1000)
    np.testing.assert_allclose(final, full[-1])


def test_trimming_also_happens_in_fast_compile_mode():
    n = T.lscalar("n")
    out, _ = tg.scan(lambda h: h + 1, outputs_info=T.constant(np.zeros(3)), n_steps=n)
    f = tg.function([n], out[-1], mode="fast_compile")
    node, = scan_nodes(f)
    assert node.op.spec.keep == (1,)
    np.testing.assert_allclose(f(4), [4, 4, 4])


def test_kept_rows_serve_taps_and_trailing_slices():
    n = T.lscalar("n")
    fib, _ = tg.scan(lambda a, b: a + b,
                     outputs_info=dict(initial=np.asarray([0, 1]), taps=[-2, -1]), n_steps=n)
    f = tg.function([n], [fib[-1], fib[-3:]])
    node, = scan_nodes(f)
    assert node.op.spec.keep == (3,)
    last, tail = f(30)
    assert last == 1346269
    np.testing.assert_array_equal(tail, [514229, 832040, 1346269])
    last, tail = f(2)
    np.testing.assert_array_equal(tail, [1, 2])


# ------------------------------------------------------------ jacobian / hessian
def test_jacobian_and_hessian_use_scan():
    x = T.vector("x")
    y = x ** 2 + T.sin(x)
    jac = tg.function([x], tg.jacobian(y, x))
    xv = RNG.standard_normal(4)
    np.testing.assert_allclose(jac(xv), np.diag(2 * xv + np.cos(xv)))
    A = T.matrix("A")
    jm = tg.function([A, x], tg.jacobian(T.dot(A, x), [A, x]))
    Av = RNG.standard_normal((2, 4))
    dA, dx = jm(Av, xv)
    assert dA.shape == (2, 2, 4)
    np.testing.assert_allclose(dx, Av)
    np.testing.assert_allclose(dA[1, 1], xv)
    np.testing.assert_allclose(dA[0, 1], 0)
    cost = (x ** 3).sum() + x[0] * x[1]
    hess = tg.function([x], tg.hessian(cost, x))
    expected = np.diag(6 * xv)
    expected[0, 1] = expected[1, 0] = 1
    np.testing.assert_allclose(hess(xv), expected)
