"""Reverse-mode gradients: ``grad``, ``Lop``, ``Rop``, ``jacobian``, ``hessian``
and ``verify_grad``.

Values are computed both by compiled functions and by the reference
evaluator, which must agree.
"""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.grad import DisconnectedInputError
from tracegrad.testing import verify_grad
from tracegrad.trace import Apply, Op


def run(inputs, outputs, *values):
    """Values of ``outputs``: compiled, and checked against the evaluator."""
    single = not isinstance(outputs, (list, tuple))
    outs = [outputs] if single else list(outputs)
    reference = evaluate(outs, dict(zip(inputs, values)))
    compiled = tg.function(inputs, outs, on_unused_input="ignore")(*values)
    for r, c in zip(reference, compiled):
        np.testing.assert_allclose(c, r, rtol=1e-12, atol=1e-12)
        assert np.asarray(c).dtype == r.dtype
    return compiled[0] if single else compiled


def _scan_available():
    try:
        tg.scan(lambda i: i * 2, sequences=T.arange(3))
    except NotImplementedError:
        return False
    return True


needs_scan = pytest.mark.skipif(not _scan_available(),
                                reason="tg.scan is not written yet (jacobian/hessian use it)")


# ------------------------------------------------------------ seed cases
def test_sin_derivative_is_cos():
    x = T.dvector("x")
    g = tg.grad(T.sum(T.sin(x)), x)
    points = np.linspace(0, 2 * np.pi, 50)
    np.testing.assert_allclose(run([x], g, points), np.cos(points), rtol=1e-12, atol=1e-15)


def test_sin_derivative_scalar_points():
    x = T.dscalar("x")
    g = tg.grad(T.sin(x), x)
    f = tg.function([x], g)
    for p in np.linspace(0, 2 * np.pi, 9):
        assert np.isclose(f(p), np.cos(p), rtol=1e-12, atol=1e-15)


def test_least_squares_gradient():
    A = T.dmatrix("A")
    x, y = T.dvectors("x", "y")
    cost = 0.5 * T.sum((T.dot(A, x) - y) ** 2)
    gx = tg.grad(cost, x)
    rng = np.random.default_rng(0)
    a, xv, yv = rng.normal(size=(6, 4)), rng.normal(size=4), rng.normal(size=6)
    np.testing.assert_allclose(run([A, x, y], gx, a, xv, yv), a.T @ (a @ xv - yv),
                               rtol=1e-12)
    # Same with the @ operator, and with respect to A and y too.
    cost2 = 0.5 * T.sum((A @ x - y) ** 2)
    ga, gx2, gy = tg.grad(cost2, [A, x, y])
    r = a @ xv - yv
    va, vx, vy = run([A, x, y], [ga, gx2, gy], a, xv, yv)
    np.testing.assert_allclose(va, np.outer(r, xv), rtol=1e-12)
    np.testing.assert_allclose(vx, a.T @ r, rtol=1e-12)
    np.testing.assert_allclose(vy, -r, rtol=1e-12)


def test_square_derivative_and_its_printout():
    x = T.dscalar("x")
    g = tg.grad(x ** 2, x)
    assert run([x], g, 4.0) == 8.0
    text = tg.pp(g)
    assert "x" in text and "<" not in text and "%" not in text
    assert len(text) < 200


# ---------------------------------------------------------- accumulation
def test_gradient_accumulates_over_several_uses():
    x = T.dscalar("x")
    cost = x * x * x + T.sin(x) * x + x
    g = tg.grad(cost, x)
    for p in (-1.3, 0.0, 2.5):
        assert np.isclose(run([x], g, p), 3 * p ** 2 + np.cos(p) * p + np.sin(p) + 1,
                          rtol=1e-12)


def test_gradient_accumulates_through_shared_subexpressions():
    x = T.dvector("x")
    e = T.exp(x)
    cost = T.sum(e * e) + T.sum(e)          # e used three times
    g = tg.grad(cost, x)
    p = np.array([0.1, -0.4, 1.2])
    np.testing.assert_allclose(run([x], g, p), 2 * np.exp(2 * p) + np.exp(p), rtol=1e-12)


def test_gradient_accumulates_through_broadcasting():
    x = T.dvector("x")
    M = T.dmatrix("M")
    cost = T.sum((M + x) * x)            # x broadcast over the rows of M, used twice
    gx, gM = tg.grad(cost, [x, M])
    m = np.arange(6.0).reshape(2, 3)
    p = np.array([0.5, -1.0, 2.0])
    vx, vM = run([x, M], [gx, gM], p, m)
    np.testing.assert_allclose(vx, (m + 2 * p).sum(0), rtol=1e-12)
    np.testing.assert_allclose(vM, np.broadcast_to(p, (2, 3)), rtol=1e-12)


def test_wrt_forms_and_intermediate_variables():
    x = T.dscalar("x")
    y = T.exp(x)
    cost = y * y
    assert isinstance(tg.grad(cost, x), T.TensorVariable)
    assert isinstance(tg.grad(cost, [x]), list)
    assert isinstance(tg.grad(cost, (x, y)), list)
    gx, gy = tg.grad(cost, [x, y])
    vx, vy = run([x], [gx, gy], 0.3)
    assert np.isclose(vy, 2 * np.exp(0.3)) and np.isclose(vx, 2 * np.exp(0.6))
    assert T.grad is tg.grad


def test_gradient_keeps_float32():
    x = T.fvector("x")
    g = tg.grad(T.sum(T.tanh(x) * 2), x)
    assert g.dtype == "float32"
    p = np.array([0.1, 0.7], dtype="float32")
    v = run([x], g, p)
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, 2 * (1 - np.tanh(p) ** 2), rtol=1e-6)


def test_gradient_of_shared_variable():
    w = tg.shared(np.array([1.0, -2.0]), name="w")
    x = T.dvector("x")
    cost = T.sum(w * x) ** 2
    g = tg.grad(cost, w)
    xv = np.array([3.0, 0.5])
    np.testing.assert_allclose(run([x], g, xv), 2 * (w.get_value() @ xv) * xv, rtol=1e-12)


# ---------------------------------------------------- grad's options
def test_consider_constant():
    x = T.dscalar("x")
    y = x ** 2
    cost = x * y
    assert np.isclose(run([x], tg.grad(cost, x), 3.0), 27.0)
    assert np.isclose(run([x], tg.grad(cost, x, consider_constant=[y]), 3.0), 9.0)


def test_known_grads():
    x = T.dvector("x")
    y = T.tanh(x)
    g_y = T.dvector("g_y")
    gx = tg.grad(None, x, known_grads={y: g_y})
    p, gv = np.array([0.2, -1.0]), np.array([2.0, 3.0])
    np.testing.assert_allclose(run([x, g_y], gx, p, gv), gv * (1 - np.tanh(p) ** 2),
                               rtol=1e-12)
    # Combined with a cost: both contributions add up.
    cost = T.sum(x)
    gx2 = tg.grad(cost, x, known_grads={y: g_y})
    np.testing.assert_allclose(run([x, g_y], gx2, p, gv),
                               1 + gv * (1 - np.tanh(p) ** 2), rtol=1e-12)


def test_disconnected_inputs():
    x, y = T.dscalars("x", "y")
    cost = x * 2
    with pytest.raises(DisconnectedInputError, match="y"):
        tg.grad(cost, [x, y])
    with pytest.raises(ValueError):  # DisconnectedInputError is a ValueError
        tg.grad(cost, y, disconnected_inputs="raise")
    with pytest.warns(UserWarning, match="disconnected"):
        gy = tg.grad(cost, y, disconnected_inputs="warn")
    assert run([x, y], gy, 1.0, 2.0) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gx, gy = tg.grad(cost, [x, y], disconnected_inputs="ignore")
    assert list(run([x, y], [gx, gy], 1.0, 2.0)) == [2.0, 0.0]
    with pytest.raises(ValueError):
        tg.grad(cost, x, disconnected_inputs="sometimes")


def test_integer_inputs_get_zero_gradient():
    x = T.dscalar("x")
    i = T.iscalar("i")
    cost = x * i + T.cast(i, "float64") ** 2
    gx, gi = tg.grad(cost, [x, i])
    assert gi.dtype == tg.config.floatX
    vx, vi = run([x, i], [gx, gi], 1.5, 3)
    assert vx == 3.0 and vi == 0.0
    v = T.ivector("v")
    gv = tg.grad(T.sum(T.cast(v, "float64") * x), v)
    np.testing.assert_array_equal(run([x, v], gv, 1.0, np.array([1, 2], dtype="int32")),
                                  [0.0, 0.0])


def test_cost_must_be_a_float_scalar():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="scalar"):
        tg.grad(x * 2, x)
    with pytest.raises(TypeError):
        tg.grad(T.sum(x), 3.0)
    i = T.iscalar("i")
    with pytest.raises(TypeError):
        tg.grad(i * 2, i)


# --------------------------------------------------- higher order
def test_second_derivatives():
    x = T.dscalar("x")
    g = tg.grad(x ** 3, x)
    gg = tg.grad(g, x)
    assert np.isclose(run([x], gg, 2.0), 12.0)
    s2 = tg.grad(tg.grad(T.sin(x), x), x)
    assert np.isclose(run([x], s2, 0.7), -np.sin(0.7), rtol=1e-12)
    s3 = tg.grad(s2, x)
    assert np.isclose(run([x], s3, 0.7), -np.cos(0.7), rtol=1e-12)


def test_mixed_second_derivative():
    x, y = T.dscalars("x", "y")
    cost = x * y * y + T.exp(x * y)
    gx = tg.grad(cost, x)
    gxy = tg.grad(gx, y)
    xv, yv = 0.3, -1.1
    expected = 2 * yv + np.exp(xv * yv) * (1 + xv * yv)
    assert np.isclose(run([x, y], gxy, xv, yv), expected, rtol=1e-12)


def test_second_derivative_through_reductions_and_dot():
    x = T.dvector("x")
    A = T.dmatrix("A")
    cost = 0.5 * T.sum(T.dot(A, x) ** 2)
    v = T.dvector("v")
    # Hessian-vector product: grad(grad(cost) . v) = A^T A v
    hv = tg.grad(T.sum(tg.grad(cost, x) * v), x)
    rng = np.random.default_rng(1)
    a, xv, vv = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=3)
    np.testing.assert_allclose(run([x, A, v], hv, xv, a, vv), a.T @ a @ vv, rtol=1e-10)


def _jacobian_tanh_affine(w, xv):
    t = np.tanh(w @ xv)
    return (1 - t ** 2)[:, None] * w


def test_Lop():
    W = T.dmatrix("W")
    x = T.dvector("x")
    f = T.tanh(T.dot(W, x))
    u = T.dvector("u")
    lop = tg.Lop(f, x, u)
    rng = np.random.default_rng(2)
    w, xv, uv = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    np.testing.assert_allclose(run([W, x, u], lop, w, xv, uv),
                               uv @ _jacobian_tanh_affine(w, xv), rtol=1e-12)


def test_Rop():
    W = T.dmatrix("W")
    x = T.dvector("x")
    f = T.tanh(T.dot(W, x))
    v = T.dvector("v")
    rop = tg.Rop(f, x, v)
    rng = np.random.default_rng(3)
    w, xv, vv = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4)
    np.testing.assert_allclose(run([W, x, v], rop, w, xv, vv),
                               _jacobian_tanh_affine(w, xv) @ vv, rtol=1e-12)


def test_Rop_several_wrt_and_elementwise():
    x, y = T.dvectors("x", "y")
    f = x ** 2 * T.sin(y)
    vx, vy = T.dvectors("vx", "vy")
    rop = tg.Rop(f, [x, y], [vx, vy])
    p, q = np.array([0.5, -1.0]), np.array([0.3, 2.0])
    a, b = np.array([1.0, 2.0]), np.array([-0.5, 0.25])
    expected = 2 * p * np.sin(q) * a + p ** 2 * np.cos(q) * b
    np.testing.assert_allclose(run([x, y, vx, vy], rop, p, q, a, b), expected, rtol=1e-12)


def test_Rop_when_wrt_share_a_gradient():
    # The vjp of x + y hands both inputs the same variable: its terms add up.
    x, y, vx, vy = T.dscalars("x", "y", "vx", "vy")
    rop = tg.Rop(y + x, [x, y], [vx, vy])
    assert run([x, y, vx, vy], rop, 1.0, 2.0, 3.0, 5.0) == 8.0
    lop = tg.Lop(x * y, [x, y], vx)
    assert list(run([x, y, vx], lop, 2.0, 3.0, 0.5)) == [1.5, 1.0]


@needs_scan
def test_jacobian():
    x = T.dvector("x")
    J = tg.jacobian(T.tanh(x) * x[0], x)
    p = np.array([0.2, -0.5, 1.0])
    t = np.tanh(p)
    expected = np.diag((1 - t ** 2) * p[0])
    expected[:, 0] += t
    np.testing.assert_allclose(run([x], J, p), expected, rtol=1e-12)


@needs_scan
def test_hessian():
    x = T.dvector("x")
    A = T.dmatrix("A")
    cost = T.sum(T.dot(A, x) ** 2) + T.sum(T.sin(x))
    H = tg.hessian(cost, x)
    rng = np.random.default_rng(4)
    a, p = rng.normal(size=(3, 3)), rng.normal(size=3)
    np.testing.assert_allclose(run([x, A], H, p, a), 2 * a.T @ a - np.diag(np.sin(p)),
                               rtol=1e-10)


# ----------------------------------------------------------- verify_grad
def test_verify_grad_accepts_correct_gradients():
    rng = np.random.default_rng(5)
    verify_grad(lambda a, b: T.tanh(a * b) + T.exp(b) / (1 + a ** 2),
                [rng.normal(size=(3, 2)), rng.normal(size=(3, 2))], rng=rng)
    verify_grad(lambda a: T.sum(T.sin(a), axis=0), [rng.normal(size=(4, 3))], rng=rng)
    verify_grad(lambda a, b: T.dot(a, b), [rng.normal(size=(2, 3)), rng.normal(size=3)],
                rng=rng)
    verify_grad(lambda a: a * 3.0, [np.array(1.5)])
    verify_grad(lambda a: a + 1.0, [np.array([1.0, 2.0], dtype="float32")], rng=0)


class WrongSquare(Op):
    """x**2 whose vjp is off by a factor of 1.5."""

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        return x * x

    def vjp(self, node, output_grads):
        return [output_grads[0] * node.inputs[0] * 3.0]


def test_verify_grad_catches_wrong_gradients():
    with pytest.raises(AssertionError, match="input 0"):
        verify_grad(lambda a: WrongSquare()(a), [np.array([0.5, 1.0, -2.0])], rng=0)
    with pytest.raises(TypeError):
        verify_grad(lambda a: a > 0, [np.array([1.0])])


def _new_3d(grads, forward):
    """The 3-d variables of ``grads``' graphs that ``forward`` does not compute."""
    from tracegrad.trace import ancestors
    known = set(ancestors([forward]))
    return [a for a in ancestors(grads) if a.ndim == 3 and a not in known]


def test_zero_gradient_stays_symbolic_through_the_chain():
    # floor_div's gradient is zero (Theano's IntDiv too): the walk passes the
    # zero on without asking the vjps under it, so no gradient graph is built
    # for what feeds the floor division (the contractive autoencoder's
    # ``sum(J ** 2) // batch`` cost three (batch, 784, 500) tensors of zeros).
    x = T.dmatrix("x")
    w = T.dmatrix("w")
    penalty = T.sum((T.exp(x)[:, None, :] * w[None, :, :]) ** 2) // 3
    cost = penalty + T.sum(x * 2) + T.sum(w)
    gx, gw = T.grad(cost, [x, w])
    assert _new_3d([gx, gw], cost) == []
    xv, wv = np.ones((2, 4)), np.ones((3, 4))
    np.testing.assert_array_equal(run([x, w], gx, xv, wv), np.full((2, 4), 2.0))
    np.testing.assert_array_equal(run([x, w], gw, xv, wv), np.ones((3, 4)))


def test_zero_gradient_only_path_gives_connected_zeros():
    # A variable reached only through zero gradients gets zeros of its own
    # shape and dtype, also past several nodes and for an intermediate wrt.
    x = T.fmatrix("x")
    h = T.exp(x) * 2
    cost = T.floor(h.sum() * 3).sum()
    gx, gh = T.grad(cost, [x, h], return_disconnected="none")
    for g in (gx, gh):
        assert g is not None and g.dtype == "float32" and g.ndim == 2
        value = tg.function([x], g)(np.ones((2, 3), "float32"))
        assert value.shape == (2, 3) and value.dtype == np.float32 and not value.any()


def test_zero_gradient_is_exact_where_the_chain_overflows():
    # As JAX's symbolic zeros: zero times an infinite local derivative is
    # zero, not 0 * inf = nan.
    x = T.dvector("x")
    g = T.grad(T.floor(T.exp(x) * 2).sum() + x.sum(), x)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(run([x], g, np.array([1.0, 800.0])), [1.0, 1.0])


# ------------------------------------------------------------ indexed leaves
def _ops_of(outputs):
    from tracegrad.trace import toposort
    return [node.op for node in toposort(outputs)]


def test_indexed_terms_of_a_leaf_chain_their_scatters():
    # grad(sum(f(x[i]))) builds one scatter per term onto the running total
    # (Op.accumulate_onto), not zeros + scatter + add per term.
    from tracegrad.ops.alloc import Alloc
    from tracegrad.ops.index import IncSubtensor
    x = T.dvector("x")
    n = 6
    cost = sum(T.sin(x[i]) * (i + 1) for i in range(n))
    g = tg.grad(cost, x)
    ops = _ops_of([g])
    scatters = [op for op in ops if isinstance(op, IncSubtensor)]
    assert len(scatters) == n
    # one zeros for the whole chain, and no addition of scatter terms
    assert sum(isinstance(op, Alloc) for op in ops) <= 2   # (the seed's ones, one zeros)
    node = g.owner
    assert isinstance(node.op, IncSubtensor)
    depth = 0
    while isinstance(node.op, IncSubtensor):
        depth += 1
        node = node.inputs[0].owner
    assert depth == n
    value = np.array([0.3, -1.2, 2.0, 0.0, 5.5, -0.7, 9.0])
    want = np.zeros_like(value)
    want[:n] = np.cos(value[:n]) * np.arange(1, n + 1)
    for mode in ("fast_run", "fast_compile"):
        np.testing.assert_allclose(tg.function([x], g, mode=mode)(value), want, rtol=1e-13)


def test_repeated_and_mixed_terms_of_a_leaf_add_up():
    # A repeated index accumulates; a term that is not a scatter (x * x) is
    # added to the chain; a set (not an increment) is never chained.
    x = T.dvector("x")
    cost = T.sin(x[1]) + 3 * x[1] + T.sum(x * x) + x[2] ** 2
    g = tg.grad(cost, x)
    value = np.array([0.5, 1.5, -2.0])
    want = 2 * value
    want[1] += np.cos(1.5) + 3
    want[2] += 2 * -2.0
    np.testing.assert_allclose(tg.function([x], g)(value), want, rtol=1e-13)
    y = T.set_subtensor(x[0], 2.0)
    cost = T.sum(y * y) + T.set_subtensor(x[0], 0.0)[0] + x[0] * 4
    g = tg.grad(cost, x)
    value = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tg.function([x], g)(value), [4.0, 4.0, 6.0], rtol=1e-13)


def test_chaining_matches_finite_differences_on_random_indexed_sums():
    rng = np.random.default_rng(3)
    x = T.dvector("x")
    idx = rng.integers(0, 5, size=12)
    cost = sum(T.tanh(x[int(i)] * (k + 1)) for k, i in enumerate(idx)) + T.sum(T.exp(x))
    g = tg.function([x], tg.grad(cost, x))
    f = tg.function([x], cost)
    value = rng.normal(size=5)
    eps = 1e-6
    fd = np.array([(f(value + eps * e) - f(value - eps * e)) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(g(value), fd, rtol=1e-6, atol=1e-8)
