"""Theano's documented tutorial examples (see test_theano_docs.py):
printing and debugging (pprint, debugprint, Print, test values,
MonitorMode, NanGuardMode), configuration and compilation modes,
broadcasting, shape information, memory aliasing and graph structures.
"""
import numpy as np
import numpy
import pytest

import tracegrad as theano
import tracegrad.tensor as T
from tracegrad import In


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
    # Theano's layout (its documented tree adds DimShuffle{x} nodes for the
    # broadcast constants, which tracegrad broadcasts without a node)
    assert lines[0] == "Elemwise{gt,no_inplace} [id A] ''"
    assert lines[1] == " |Elemwise{true_div,no_inplace} [id B] ''"
    assert " |   |Elemwise{exp,no_inplace} [id F] ''" in lines
    assert " |       | |dot [id I] ''" in lines
    assert " |       |   |x [id J]" in lines
    assert [ln.strip(" |").split(" [")[0] for ln in lines if "x [" in ln or "w [" in ln] == \
        ["x", "w"]
    assert lines[-1] == " |TensorConstant{0.5} [id M]"
    predict = theano.function(inputs=[x], outputs=prediction)
    compiled = theano.printing.debugprint(predict, file="str", print_type=False)
    # Theano: "Elemwise{Composite{GT(scalar_sigmoid(...), i2)}} [id A] ''   4":
    # a computed value ends with its position in the run order
    first = compiled.splitlines()[0]
    order = predict.maker.fgraph.toposort()
    assert first.endswith(f"[id A] ''   {order.index(predict.maker.fgraph.outputs[0].owner)}")
    assert " | |x [id" in compiled
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
    assert "test_theano_docs_debug.py" in str(info.value)
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
    assert "Elemwise{mul,no_inplace} [id A]" in printed and "Inputs : [array(-inf), array(0.)]" in printed


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


def test_function_dump_and_reload(tmp_path):
    import pickle
    x = T.dvector("x")
    s = theano.shared(np.zeros(2), name="s")
    path = str(tmp_path / "f.pkl")
    theano.function_dump(path, [x], T.exp(x) + s, updates=[(s, s + x)])
    with open(path, "rb") as fh:
        d = pickle.load(fh)
    f = theano.function(**d)
    np.testing.assert_allclose(f([0.0, 1.0]), np.exp([0.0, 1.0]))
    np.testing.assert_allclose(f([0.0, 1.0]), np.exp([0.0, 1.0]) + [0.0, 1.0])
    with pytest.raises(ValueError, match="accept_inplace"):
        theano.function_dump(path, [x], x, accept_inplace=True)


def test_unused_input_error_where_theano_raises_it():
    x, y = T.dscalars("x", "y")
    with pytest.raises(theano.compile.function_module.UnusedInputError, match="'y'"):
        theano.function([x, y], x * 2)
    with pytest.warns(UserWarning, match="'y'"):
        f = theano.function([x, y], x * 2, on_unused_input="warn")
    assert f(1.0, 5.0) == 2.0
    assert theano.function([x, y], x * 2, on_unused_input="ignore")(1.0, 5.0) == 2.0
