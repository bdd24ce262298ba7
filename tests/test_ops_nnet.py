"""Table-driven tests of ``T.nnet`` (forward vs NumPy, gradients vs finite
differences), numerical stability, and the namespace."""
import numpy as np
import pytest

import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")


def np_softmax(x, axis=-1):
    if x.size == 0:
        return x.copy()
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    if x.size == 0:
        return x.copy()
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _probabilities(rng, dtype, shapes):
    coding_shape, target_shape = shapes
    coding = np_softmax(rng.normal(size=coding_shape)).astype(dtype)
    target = np_softmax(rng.normal(size=target_shape) * 2).astype(dtype)
    return [coding, target]


def _labels(rng, dtype, shapes):
    coding_shape, label_shape = shapes
    coding = np_softmax(rng.normal(size=coding_shape)).astype(dtype)
    return [coding, rng.integers(0, coding_shape[-1], size=label_shape).astype("int64")]


def _binary(rng, dtype, shapes):
    output = rng.uniform(0.05, 0.95, size=shapes[0]).astype(dtype)
    target = rng.uniform(0.0, 1.0, size=shapes[1]).astype(dtype)
    return [output, target]


def _labels_ref(coding, labels):
    picked = np.take_along_axis(coding, labels[..., None], axis=-1)[..., 0]
    return -np.log(picked)


CASES = [
    # axis=-1 explicit: T.nnet.softmax of a vector without axis= is Theano's
    # 1×n row (tests/test_theano_paths.py).
    OpCase("softmax", lambda x: T.nnet.softmax(x, axis=-1), np_softmax,
           [[(3, 4)], [(5,)], [(2, 3, 4)], [(0, 4)], [(3, 0)]], FLOATS, domain=(-3, 3)),
    OpCase("softmax[axis=1]", lambda x: T.nnet.softmax(x, axis=1),
           lambda x: np_softmax(x, axis=1), [[(2, 3, 4)]], FLOATS),
    OpCase("softmax[axis=None]", lambda x: T.nnet.softmax(x, axis=None),
           lambda x: np_softmax(x, axis=None), [[(2, 3)], [()]], FLOATS),
    OpCase("log_softmax", lambda x: T.nnet.log_softmax(x, axis=-1), np_log_softmax,
           [[(3, 4)], [(5,)], [(2, 3, 4)], [(0, 4)]], FLOATS, domain=(-3, 3)),
    OpCase("log_softmax[axis=0]", lambda x: T.nnet.log_softmax(x, axis=0),
           lambda x: np_log_softmax(x, axis=0), [[(3, 4)]], FLOATS),
    OpCase("relu", T.nnet.relu, lambda x: np.maximum(x, 0), [[(3, 4)], [()], [(0,)]],
           FLOATS + ("int32",)),
    OpCase("relu[alpha]", lambda x: T.nnet.relu(x, 0.1),
           lambda x: np.where(x > 0, x, x * x.dtype.type(0.1)), [[(3, 4)], [()]], FLOATS),
    OpCase("relu[symbolic alpha]", T.nnet.relu, lambda x, a: np.where(x > 0, x, a * x),
           [[(3, 4), ()], [(5,), (5,)]], FLOATS),
    OpCase("binary_crossentropy", T.nnet.binary_crossentropy,
           lambda o, t: -(t * np.log(o) + (1 - t) * np.log(1 - o)),
           [[(3, 4), (3, 4)], [(5,), (5,)], [(), ()]], FLOATS, make_inputs=_binary),
    OpCase("sigmoid_binary_crossentropy", T.nnet.sigmoid_binary_crossentropy,
           lambda x, t: np.logaddexp(0, x) - t * x,
           [[(3, 4), (3, 4)], [(5,), ()], [(), ()]], FLOATS, domain=(-3, 3)),
    OpCase("categorical_crossentropy[dist]", T.nnet.categorical_crossentropy,
           lambda c, t: -np.sum(t * np.log(c), axis=-1),
           [[(3, 4), (3, 4)], [(4,), (4,)], [(2, 3, 4), (2, 3, 4)]], FLOATS,
           make_inputs=_probabilities),
    OpCase("categorical_crossentropy[labels]", T.nnet.categorical_crossentropy, _labels_ref,
           [[(5, 4), (5,)], [(4,), ()], [(2, 3, 4), (2, 3)], [(0, 3), (0,)]], FLOATS,
           make_inputs=_labels),
]


def _dx_inputs(rng, dtype, shapes):
    dy_shape, sm_shape, y_shape = shapes
    dy = rng.uniform(-2, 2, size=dy_shape).astype(dtype)
    sm = np_softmax(rng.normal(size=sm_shape)).astype(dtype)
    return [dy, sm, rng.integers(-sm_shape[-1], sm_shape[-1], size=y_shape).astype("int64")]


def np_xent_dx(dy, sm, y):
    onehot = np.zeros_like(sm)
    np.put_along_axis(onehot, (y % sm.shape[-1])[..., None], 1, axis=-1)
    return np.broadcast_to(dy, y.shape)[..., None] * (sm - onehot)


def _xent_dx(dy, sm, y, x=None):
    from tracegrad.tensor.nnet import crossentropy_softmax_1hot_with_bias_dx
    return crossentropy_softmax_1hot_with_bias_dx(dy, sm, y, x)


# (not in nnet.__all__: ops/nnet_xent.py, the rewrite's op, in T.nnet only)
CASES.append(OpCase("crossentropy_softmax_1hot_with_bias_dx", _xent_dx, np_xent_dx,
                    [[(5,), (5, 4), (5,)], [(1,), (5, 4), (5,)], [(), (4,), ()],
                     [(2, 3), (2, 3, 4), (2, 3)], [(0,), (0, 3), (0,)]], FLOATS,
                    make_inputs=_dx_inputs))


def _dx_logit_inputs(rng, dtype, shapes):
    dy, sm, y = _dx_inputs(rng, dtype, shapes[:3])
    return [dy, sm, y, rng.normal(size=shapes[3]).astype(dtype)]


# with the logits (finite here: they change nothing; -inf targets in
# tests/test_rewrite_softmax_grad.py); they have no gradient to check
CASES.append(OpCase("crossentropy_softmax_1hot_with_bias_dx[logits]", _xent_dx,
                    lambda dy, sm, y, x: np_xent_dx(dy, sm, y),
                    [[(5,), (5, 4), (5,), (5, 4)], [(2, 3), (2, 3, 4), (2, 3), (2, 3, 4)]],
                    FLOATS, make_inputs=_dx_logit_inputs, grad=False))


test_forward, test_grad = table_tests(CASES)


def test_namespace():
    import tracegrad.tensor.nnet as nnet
    for name in ("sigmoid", "softplus", "softmax", "log_softmax", "relu",
                 "binary_crossentropy", "categorical_crossentropy"):
        assert callable(getattr(nnet, name)), name
    assert T.nnet is nnet and nnet.sigmoid is T.sigmoid
    assert T.softmax is nnet.softmax


def _grad(cost, x, value):
    return T.grad(cost, x).eval({x: value})


def test_softmax_stability():
    x = T.dmatrix("x")
    value = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    sm = T.nnet.softmax(x).eval({x: value})
    np.testing.assert_allclose(sm, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)
    lsm = T.nnet.log_softmax(x).eval({x: value})
    np.testing.assert_allclose(lsm, [[0, -1000, -2000], [-np.log(3)] * 3])
    # Gradients are finite and exact far outside exp's range.
    g = _grad((T.nnet.log_softmax(x) * [0.0, 0.0, 1.0]).sum(), x, value)
    np.testing.assert_allclose(g, [[-1, 0, 1], [-1 / 3, -1 / 3, 2 / 3]], atol=1e-12)
    g = _grad((T.nnet.softmax(x) * [1.0, 2.0, 3.0]).sum(), x, value)
    assert np.all(np.isfinite(g))
    f = T.fmatrix("f")
    out = T.nnet.softmax(f).eval({f: value.astype("float32")})
    assert out.dtype == np.float32 and np.all(np.isfinite(out))


def test_crossentropy_of_softmax_is_stable_enough():
    x = T.dmatrix("x")
    y = T.lvector("y")
    cost = T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean()
    value = np.array([[2.0, 1.0, 0.5], [0.1, 3.0, -1.0]])
    labels = np.array([0, 1])
    g = T.grad(cost, x).eval({x: value, y: labels})
    expected = (np_softmax(value) - np.eye(3)[labels]) / 2
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_crossentropy_errors():
    with pytest.raises(TypeError, match="class indices"):
        T.nnet.categorical_crossentropy(T.dmatrix(), T.dvector())
    with pytest.raises(ValueError, match="do not match"):
        T.nnet.categorical_crossentropy(T.tensor("float64", shape=(3, 4)),
                                        T.tensor("int64", shape=(5,)))
    x, y = T.dmatrix("x"), T.lvector("y")
    with pytest.raises(IndexError):
        T.nnet.categorical_crossentropy(x, y).eval({x: np.full((2, 3), 1 / 3),
                                                    y: np.array([0, 3])})


def test_dtypes():
    f = T.fmatrix()
    for out in (T.nnet.softmax(f), T.nnet.log_softmax(f), T.nnet.relu(f),
                T.nnet.relu(f, 0.2), T.nnet.binary_crossentropy(f, f),
                T.nnet.categorical_crossentropy(f, f),
                T.nnet.categorical_crossentropy(f, T.ivector())):
        assert out.dtype == "float32", out
    assert T.nnet.softmax(T.imatrix()).dtype == "float64"
    assert T.nnet.relu(T.imatrix()).dtype == "int32"
    assert T.nnet.softmax(T.tensor("float32", shape=(3, None))).type.shape == (3, None)


def test_relu_gradient():
    x = T.dvector("x")
    value = np.array([-2.0, -0.5, 0.5, 3.0])
    np.testing.assert_allclose(_grad(T.nnet.relu(x).sum(), x, value), [0, 0, 1, 1])
    np.testing.assert_allclose(_grad(T.nnet.relu(x, 0.1).sum(), x, value),
                               [0.1, 0.1, 1, 1])


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import nnet
    missing = uncovered_functions(nnet.__all__, CASES)
    assert not missing, f"nnet functions without a table case: {missing}"



@pytest.mark.parametrize("ydtype", ["int64", "int32", "uint8"])
def test_xent_dx_rows_path_equals_the_general_path(ydtype):
    # 1-d targets all within [0, n) take the flat-index path (W4's gradient:
    # 11.8 -> 7.9 us); anything else the general one. Both give the same.
    from tracegrad.ops.nnet_xent import CrossentropySoftmax1HotWithBiasDx
    op = CrossentropySoftmax1HotWithBiasDx()
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 10)).astype("float32")
    sm = np_softmax(logits).astype("float32")
    y = rng.integers(0, 10, size=64).astype(ydtype)
    x = logits.copy()
    x[3, y[3]] = -np.inf   # (a -inf target logit: that row is NaN)
    for dy in (np.array([0.25], "float32"), rng.uniform(-2, 2, 64).astype("float32"),
               np.array([0.25])):
        # (the same targets counted from the end: the general path)
        general = y.astype("int64") - 10
        for s in (sm, np.asfortranarray(sm)):
            got = op.impl(np, dy, s, y, x)
            expected = op.impl(np, dy, s, general, x)
            assert got.dtype == np.result_type(dy, s) and got.flags.c_contiguous
            assert np.isnan(got[3]).all() and not np.isnan(np.delete(got, 3, 0)).any()
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(op.impl(np, dy, s, y), op.impl(np, dy, s, general))
            np.testing.assert_allclose(op.impl(np, dy, s, y), np_xent_dx(dy, s, y), rtol=1e-6,
                                       atol=1e-7)
    with pytest.raises(IndexError):
        op.impl(np, dy, sm, y + 10)
