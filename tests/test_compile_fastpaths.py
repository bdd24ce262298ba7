"""Per-call fast paths: the generated call function (``compile/runtime.py``,
``compile/schedule.py``), the generated in-place fused call
(``fuse/codegen.py``) and the count of a mean read from its operands'
shapes (``ReductionCount`` over several inputs, ``rewrite/shapes.py``)."""

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.fuse import FusedElemwise, fuse_outputs
from tracegrad.backend.numpy import cpu_program
from tracegrad.fuse.op import InplaceFusedElemwise
from tracegrad.ops.reduce import ReductionCount
from threadcheck import run_in_threads


# ------------------------------------------------------ generated call code
def test_error_in_a_late_step_names_that_node_with_updates():
    x, y = T.dvectors("x", "y")
    w = tg.shared(np.zeros(3), name="w")
    early = T.exp(x) * 2 + 1
    late = T.dot(T.outer(early, y), early)  # raises when y is not x's length
    f = tg.function([x, y], [early, late], updates=[(w, w + early)])
    before = w.get_value().copy()
    with pytest.raises(ValueError) as info:
        f([1.0, 2.0, 3.0], [1.0, 2.0])
    message = str(info.value)
    assert "tensordot" in message and "(3, 2)" in message and "(3,)" in message
    assert "test_compile_fastpaths.py" in message
    np.testing.assert_array_equal(w.get_value(), before)  # all or nothing
    got = f([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(got[0], np.exp([1.0, 2.0, 3.0]) * 2 + 1)
    np.testing.assert_allclose(w.get_value(), got[0])


def test_error_in_first_step_without_updates_names_that_node():
    x, y = T.dvectors("x", "y")
    f = tg.function([x, y], T.dot(x, y) + 1)
    with pytest.raises(ValueError) as info:
        f([1.0, 2.0], [1.0, 2.0, 3.0])
    assert "tensordot" in str(info.value) and "(2,)" in str(info.value)


def test_multi_output_op_returning_wrong_count_is_reported():
    from tracegrad.trace import Apply, Op

    class Two(Op):
        __props__ = ()

        def make_node(self, a):
            return Apply(self, [a], [a.type(), a.type()])

        def impl(self, xp, a):
            return (a,)

    x = T.dvector("x")
    first, second = Two()(x)
    f = tg.function([x], [first * 1, second * 1], mode="None")
    with pytest.raises(ValueError, match="returned 1 results for 2 outputs"):
        f([1.0])


def test_exact_outputs_are_stored_as_returned_and_counted():
    from tracegrad.trace import Apply, Op

    class Split(Op):
        __props__ = ("n",)
        exact_outputs = True    # (returns n arrays of its input's dtype)

        def __init__(self, n):
            self.n = n

        def make_node(self, a):
            return Apply(self, [a], [a.type() for _ in range(2)])

        def impl(self, xp, a):
            return tuple(a[k::2].copy() for k in range(self.n))

    x = T.dvector("x")
    first, second = Split(2)(x)
    f = tg.function([x], [first * 1, second + 1], mode="None")
    got = f([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(got[0], [1.0, 3.0])
    np.testing.assert_array_equal(got[1], [3.0, 5.0])
    first, second = Split(1)(x)     # (one result for two outputs: still reported)
    g = tg.function([x], [first * 1, second * 1], mode="None")
    with pytest.raises(ValueError, match="returned 1 results for 2 outputs"):
        g([1.0, 2.0])


def test_results_are_cast_to_output_dtypes_and_scalars_become_arrays():
    from tracegrad.trace import Apply, Op

    class Half(Op):
        __props__ = ()

        def make_node(self, a):
            return Apply(self, [a], [T.TensorType("float32", ())()])

        def impl(self, xp, a):
            return float(a.sum()) / 2  # a Python float: the step makes it float32

    x = T.dvector("x")
    f = tg.function([x], Half()(x), mode="None")
    got = f([1.0, 2.0])
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got == 1.5


def test_profiled_and_plain_calls_agree_and_count_nodes():
    x = T.dmatrix("x")
    w = tg.shared(np.ones((3, 2)), name="w")
    out = T.tanh(T.dot(x, w)).sum()
    plain = tg.function([x], out, updates=[(w, w * 0.5)])
    w2 = tg.shared(np.ones((3, 2)), name="w2")
    profiled = tg.function([x], T.tanh(T.dot(x, w2)).sum(), updates=[(w2, w2 * 0.5)],
                           profile=True)
    xv = np.arange(6.0).reshape(2, 3) / 10
    for _ in range(3):
        np.testing.assert_allclose(plain(xv), profiled(xv))
    np.testing.assert_array_equal(w.get_value(), w2.get_value())
    assert profiled.profile.calls == 3


def test_generated_call_is_thread_safe_with_updates():
    x = T.dvector("x")
    acc = tg.shared(np.zeros(4), name="acc")
    f = tg.function([x], (x * 2).sum(), updates=[(acc, acc + x)])

    def work(_):
        for _ in range(50):
            f(np.ones(4))

    run_in_threads(work, 8)
    np.testing.assert_array_equal(acc.get_value(), np.full(4, 400.0))


# ------------------------------------------------- in-place fused fast path
def _update_op():
    w, g = T.dvectors("w", "g")
    (fused,) = fuse_outputs([w - 0.1 * (g + 0.02 * w)])
    order = list(fused.owner.inputs)
    op = InplaceFusedElemwise(fused.owner.op.spec, None, order.index(g))
    return op, order, w, g


def test_inplace_fast_path_writes_into_the_destroyed_input():
    op, order, w, g = _update_op()
    run = op.impl_for(np)
    rng = np.random.default_rng(0)
    wv, gv = rng.standard_normal(7), rng.standard_normal(7)
    expected = wv - 0.1 * (gv + 0.02 * wv)
    target = gv.copy()
    got = run(*[wv if v is w else target for v in order])
    assert got is target
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    code = cpu_program(op.spec).inplace_code(op.destroyed)
    assert code.fast is not None


@pytest.mark.parametrize("case", ["readonly", "broadcast", "dtype", "large"])
def test_inplace_fast_path_falls_back_to_a_correct_result(case):
    op, order, w, g = _update_op()
    run = op.impl_for(np)
    rng = np.random.default_rng(1)
    n = 200_000 if case == "large" else 5
    wv, gv = rng.standard_normal(n), rng.standard_normal(n)
    if case == "readonly":
        gv.flags.writeable = False
    elif case == "broadcast":
        gv = gv[:1].copy()  # (1,): the result does not fit its buffer
    elif case == "dtype":
        gv = gv.astype(np.float32)
    expected = wv - 0.1 * (gv.astype(np.float64) + 0.02 * wv)
    got = run(*[wv if v is w else gv for v in order])
    np.testing.assert_allclose(got, expected, rtol=1e-6 if case == "dtype" else 1e-15)
    if case in ("readonly", "broadcast", "dtype"):
        assert got is not gv


def test_one_element_constants_keep_the_fast_path():
    w = T.dvector("w")
    one = T.as_tensor_variable(np.array([0.02]))  # shape (1,)
    (fused,) = fuse_outputs([w * one + w])
    assert any(c.shape == (1,) for c in fused.owner.op.spec.constants)
    program = cpu_program(fused.owner.op.spec)
    assert program.fast is not None
    wv = np.arange(4.0)
    got = program.fast(wv)
    np.testing.assert_allclose(got[0], wv * 0.02 + wv)


# ----------------------------------------------------- the count of a mean
def test_reduction_count_reads_the_broadcast_of_its_inputs():
    a, b = T.dmatrices("a", "b")
    f = tg.function([a, b], ReductionCount((0, 1))(a, b), mode="None")
    assert f(np.zeros((1, 4)), np.zeros((3, 1))) == 12
    assert f(np.zeros((3, 4)), np.zeros((3, 4))) == 12
    assert f(np.zeros((0, 4)), np.zeros((1, 4))) == 0
    g = tg.function([a], ReductionCount((1,), ddof=1)(a), mode="None")
    assert g(np.zeros((2, 5))) == 4


def test_mean_gradient_count_does_not_wait_for_the_elementwise_result():
    x = T.dvector("x")
    y = T.dvector("y")
    cost = T.exp(x * y).mean()
    gy = tg.grad(cost, y)
    f = tg.function([x, y], [cost, gy])
    counts = [nd for nd in f.maker.fgraph.toposort() if isinstance(nd.op, ReductionCount)]
    assert counts and all(v.owner is None for nd in counts for v in nd.inputs)
    assert sum(isinstance(nd.op, FusedElemwise) for nd in f.maker.fgraph.toposort()) == 1
    # Run-time broadcasting: x of length 1 next to y of length 3.
    for xv, yv in ((np.array([0.5]), np.array([1.0, 2.0, 3.0])),
                   (np.array([0.5, 1.0, 1.5]), np.array([2.0])),
                   (np.array([0.5, 1.0]), np.array([2.0, 1.0]))):
        cv, gv = f(xv, yv)
        n = max(xv.size, yv.size)
        np.testing.assert_allclose(cv, np.exp(xv * yv).mean(), rtol=1e-14)
        ref = evaluate([tg.grad(cost, y)], {x: xv, y: yv})[0]
        np.testing.assert_allclose(gv, ref, rtol=1e-14)
        full = xv * np.exp(xv * yv) / n
        expected = full if yv.size == n else full.sum(keepdims=True)
        np.testing.assert_allclose(gv, expected, rtol=1e-14)


def test_cross_entropy_forward_and_gradient_are_one_kernel():
    rng = np.random.default_rng(3)
    x, y = T.dmatrix("x"), T.dvector("y")
    w = tg.shared(rng.standard_normal(5), name="w")
    p = T.sigmoid(T.dot(x, w))
    loss = -(y * T.log(p) + (1 - y) * T.log1p(-p))
    train = tg.function([x, y], loss, updates=[(w, w - 0.5 * tg.grad(loss.mean(), w))])
    nodes = train.maker.fgraph.toposort()
    inputs = train.maker.fgraph.inputs
    fused = [nd for nd in nodes if isinstance(nd.op, FusedElemwise) and inputs[1] in nd.inputs]
    assert len(fused) == 1 and len(fused[0].outputs) == 2  # the loss and its gradient
    X, Y = rng.standard_normal((9, 5)), rng.integers(0, 2, 9).astype(float)
    wv = w.get_value().copy()
    got = train(X, Y)
    z = X @ wv
    np.testing.assert_allclose(got, np.logaddexp(0, -z) * Y + np.logaddexp(0, z) * (1 - Y),
                               rtol=1e-12)
    gz = (1 / (1 + np.exp(-z)) - Y) / 9
    np.testing.assert_allclose(w.get_value(), wv - 0.5 * (X.T @ gz), rtol=1e-12)
