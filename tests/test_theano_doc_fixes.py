"""Regression tests for what Theano's tutorial examples (tests/test_theano_docs.py)
found missing: ``Rop`` keeps ``wrt`` an input, ``scan(strict=True)``, the
``tracegrad.gradient`` / ``scan_module`` / ``Mode`` paths."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T


def test_rop_of_a_linear_function_still_takes_wrt_as_an_input():
    W, V = T.dmatrices("W", "V")
    x = T.dvector("x")
    jv = tg.Rop(T.dot(x, W), W, V)
    f = tg.function([W, V, x], jv)
    w, v, xv = np.ones((2, 3)), np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0])
    np.testing.assert_array_equal(f(w, v, xv), xv @ v)
    # W's values are never read: only its shape
    np.testing.assert_array_equal(f(np.full((2, 3), np.nan), v, xv), xv @ v)
    # a non-linear f already depends on W: no extra term
    jv2 = tg.Rop(T.tanh(T.dot(x, W)), W, V)
    assert "prod" not in tg.pp(jv2)


def test_rop_float32_keeps_its_dtype():
    W, V = T.fmatrices("W", "V")
    x = T.fvector("x")
    jv = tg.Rop(T.dot(x, W), W, V)
    assert jv.dtype == "float32"


def test_scan_strict_refuses_shared_variables_not_passed_as_non_sequences():
    W = tg.shared(np.eye(2), name="W")
    s = T.dvector("s")
    with pytest.raises(ValueError, match=r"strict=True.*\bW\b.*non_sequences"):
        tg.scan(lambda v: T.dot(v, W), outputs_info=s, n_steps=2, strict=True)
    out, _ = tg.scan(lambda v, W: T.dot(v, W), outputs_info=s, non_sequences=W,
                     n_steps=2, strict=True)
    np.testing.assert_array_equal(tg.function([s], out)([1.0, 2.0]), [[1.0, 2.0]] * 2)
    # a shared variable the step updates is loop state, allowed under strict
    k = tg.shared(0, name="k")
    _, upd = tg.scan(lambda: {k: k + 1}, n_steps=3, strict=True)
    tg.function([], [], updates=upd)()
    assert k.get_value() == 3


def test_theano_module_paths_as_attributes():
    from tracegrad.grad import DisconnectedInputError
    assert tg.gradient.DisconnectedInputError is DisconnectedInputError
    x = T.dvector("x")
    np.testing.assert_array_equal(tg.function([x], tg.gradient.jacobian(x ** 2, x))([1.0, 2.0]),
                                  [[2.0, 0.0], [0.0, 4.0]])
    assert tg.scan_module.until is tg.until
    assert tg.Mode is tg.compile.Mode
    assert tg.ifelse.ifelse(T.lt(1, 2), x, x * 2).ndim == 1


@pytest.fixture
def float32_floatx():
    old = tg.config.floatX
    tg.config.floatX = "float32"
    yield
    tg.config.floatX = old


def test_python_float_goes_into_a_floatx_scalar(float32_floatx):
    # Theano's allow_input_downcast=None rule: a Python float into floatX
    x, v = T.scalar("x"), T.vector("v")
    f = tg.function([x], x * 2)
    assert f(0.1) == np.float32(0.1) * 2 and f(0.1).dtype == np.float32
    s = tg.shared(np.float32(0))
    s.set_value(0.1)
    assert s.get_value() == np.float32(0.1)
    # only a Python float: not lists, not float64 scalars, not an overflow
    with pytest.raises(TypeError, match="loss of precision"):
        tg.function([v], v)([0.1])
    with pytest.raises(TypeError, match="loss of precision"):
        f(np.float64(0.1))
    with pytest.raises(TypeError, match="loss of precision"):
        f(1e300)
    with pytest.raises(TypeError, match="loss of precision"):
        tg.function([x], x, allow_input_downcast=False)(0.1)


def test_python_float_into_a_float32_that_is_not_floatx_is_refused():
    x = T.fscalar("x")
    assert tg.config.floatX == "float64"
    with pytest.raises(TypeError, match="loss of precision"):
        tg.function([x], x)(0.1)


@pytest.fixture
def test_values_on():
    old = tg.config.compute_test_value, tg.config.print_test_value
    tg.config.compute_test_value = "raise"
    yield
    tg.config.compute_test_value, tg.config.print_test_value = old


def test_print_test_value_shows_the_value_in_repr(test_values_on):
    x = T.dvector("x")
    x.tag.test_value = np.ones(3)
    y = x * 2
    assert repr(y) == "TensorVariable(mul.out, float64, shape=(None,))"  # off by default
    tg.config.print_test_value = True
    assert repr(y) == f"{y}\n{np.full(3, 2.0)!r}"
    assert repr(x) == f"x\n{np.ones(3)!r}"
    assert repr(T.constant(3.0)).endswith("array(3.)")
    # without a value: the usual repr
    assert repr(T.dvector("no_value")) == "TensorVariable(no_value, float64, shape=(None,))"
    with pytest.raises(AttributeError, match="print_test_values"):
        tg.config.print_test_values = True


def test_shape_of_an_elementwise_result_reads_its_input():
    x = T.dmatrix("x")
    f = tg.function([x], (x ** 2).shape)
    nodes = f.maker.fgraph.toposort()
    assert [n.op.name for n in nodes] == ["Shape"] and nodes[0].inputs[0] is f.maker.fgraph.inputs[0]
    np.testing.assert_array_equal(f(np.ones((3, 4))), [3, 4])
    # (the elementwise result, when also an output, is still computed)
    g = tg.function([x], [(x ** 2).shape, x ** 2])
    np.testing.assert_array_equal(g(np.full((1, 2), 3.0))[1], [[9.0, 9.0]])


def test_scan_mode_compiles_the_body_with_it():
    import pickle
    from tracegrad.compile import MonitorMode
    seen = []
    x = T.dvector("x")
    watched = MonitorMode(post_func=lambda i, node, fn: seen.append(float(fn.outputs[0][0])))
    out, _ = tg.scan(lambda v: T.exp(v) * 2, sequences=x, mode=watched)
    f = tg.function([x], out)
    np.testing.assert_allclose(f([0.0, 1.0]), 2 * np.exp([0.0, 1.0]))
    np.testing.assert_allclose(seen, 2 * np.exp([0.0, 1.0]))       # one node per step
    g = pickle.loads(pickle.dumps(f))                                # hooks not pickled
    np.testing.assert_allclose(g([0.0]), [2.0])
    assert len(seen) == 2
    from tracegrad.compile.debugmode import BadThunkOutput
    from tracegrad.trace import Apply, Op

    class Drifting(Op):
        __props__ = ()
        calls = 0

        def make_node(self, v):
            return Apply(self, [v], [v.type()])

        def impl(self, xp, v):
            Drifting.calls += 1
            return v + Drifting.calls
    out, _ = tg.scan(lambda v: Drifting()(v), sequences=x, mode="DebugMode")
    with pytest.raises(BadThunkOutput, match="Drifting"):
        tg.function([x], out)([0.0, 1.0])


def test_theano_module_paths_reachable_after_plain_imports():
    # (a fresh interpreter: an earlier test's ``from x.y import z`` must not
    # be what makes ``x.y`` an attribute)
    import subprocess
    import sys
    code = ("import tracegrad as theano, tracegrad.tensor as T\n"
            "assert T.shared_randomstreams.RandomStreams is theano.random.RandomStreams\n"
            "theano.sandbox.rng_mrg.MRG_RandomStreams\n"
            "theano.compile.nanguardmode.NanGuardMode, theano.compile.monitormode.MonitorMode\n"
            "theano.compile.debugmode.DebugMode, theano.compile.io.In, theano.compile.MonitorMode\n"
            "theano.scalar.upcast, theano.gradient.jacobian, theano.scan_module.until\n"
            "theano.ifelse.ifelse, theano.printing.Print, theano.Mode, theano.map\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_exception_verbosity_high_adds_the_failing_graph():
    x, y = T.dmatrices("x", "y")
    f = tg.function([x, y], T.exp(T.dot(x, y)))
    old = tg.config.exception_verbosity
    try:
        with pytest.raises(ValueError) as low:
            f(np.ones((2, 3)), np.ones((2, 3)))
        assert "failing node's graph" not in str(low.value) and "while computing dot (op tensordot)" in str(low.value)
        tg.config.exception_verbosity = "high"
        with pytest.raises(ValueError, match=r"(?s)failing node's graph:.*\|x \[id B\].*\|y") as high:
            f(np.ones((2, 3)), np.ones((2, 3)))
        assert "test_theano_doc_fixes.py" in str(high.value)
        with pytest.raises(ValueError, match="'low' or 'high'"):
            tg.config.exception_verbosity = "medium"
    finally:
        tg.config.exception_verbosity = old


def test_mrg_rstate_copy_makes_future_draws_match():
    from tracegrad.sandbox.rng_mrg import MRG_RandomStreams
    a, b = MRG_RandomStreams(1), MRG_RandomStreams(2)
    a.uniform((3,))                       # a has made one draw, b none
    b.rstate = a.rstate
    assert b.rstate.tolist() == a.rstate.tolist() == [1, 1]
    fa = tg.function([], a.normal((4,)))
    fb = tg.function([], b.normal((4,)))
    np.testing.assert_array_equal(fa(), fb())
    b.seed(5)                              # seed() resets the draw indices
    assert b.rstate.tolist() == [5, 1]
    with pytest.raises(ValueError, match="rstate"):
        b.rstate = np.zeros(3)
