"""Op table of the Theano names written with other ops
(tracegrad/ops/theano_extra.py): forward vs NumPy per dtype and shape,
gradients and jvps vs finite differences; Theano's definitions as the
references."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
UNARY = [[(3, 4)], [()], [(0, 3)], [(5,)]]
BINARY = [[(3, 4), (3, 4)], [(3, 1), (1, 4)], [(), (2, 3)]]


def _away_from_zero(x):
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype("int64")


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(x))


def _ultra_fast_sigmoid(x):
    t = 0.5 * np.abs(x)
    z = np.where(t < 1.7, 1.5 * t / (1 + t),
                 np.where(t < 3.0, 0.935409070603099 + 0.0458812946797165 * (t - 1.7),
                          0.99505475368673))
    return 0.5 * (1 + np.sign(x) * z)


def _log_softmax(x):
    m = x - x.max(axis=-1, keepdims=True)
    return m - np.log(np.exp(m).sum(axis=-1, keepdims=True))


def _fill_diagonal(a):
    out = a.copy()
    np.fill_diagonal(out, 5.0)
    return out


def _one_hot_xent(p, y):
    return -np.log(p[np.arange(len(y)), y])


def _probabilities(rng, dtype, shapes):
    p = rng.uniform(0.1, 1.0, shapes[0]).astype(dtype)
    return [p / p.sum(axis=1, keepdims=True), rng.integers(0, shapes[0][1], shapes[1][0])]


CASES = [
    OpCase("sgn", T.sgn, np.sign, UNARY, FLOATS + ("int64",), grad=False),
    OpCase("inv", T.inv, np.reciprocal, UNARY, FLOATS, domain=(0.5, 2.0)),
    OpCase("iround", T.iround, _away_from_zero, UNARY, FLOATS, domain=(-3.0, 3.0), grad=False),
    OpCase("int_div", T.int_div, np.floor_divide, BINARY, ("int64", "float64"),
           domain=(1.0, 9.0), grad=False),
    OpCase("largest", lambda a, b, c: T.largest(a, b, c), lambda a, b, c: np.maximum(
        np.maximum(a, b), c), [[(3, 4), (3, 4), (3, 4)], [(3, 1), (1, 4), ()]], FLOATS),
    OpCase("smallest", lambda a, b: T.smallest(a, b), np.minimum, BINARY, FLOATS),
    OpCase("second", T.second, lambda a, b: np.broadcast_to(b, np.broadcast(a, b).shape),
           [[(3, 4), ()], [(3, 4), (1, 4)]], FLOATS),
    OpCase("xlogx", T.xlogx, lambda x: x * np.log(x), UNARY, FLOATS, domain=(0.2, 3.0)),
    OpCase("complex", T.complex, lambda a, b: a + 1j * b, BINARY, FLOATS,
           grad_dtypes=("float64",)),
    OpCase("complex_from_polar", T.complex_from_polar,
           lambda r, t: r * (np.cos(t) + 1j * np.sin(t)), BINARY, ("float64",)),
    OpCase("identity_like", T.identity_like, lambda a: np.eye(*a.shape, dtype=a.dtype),
           [[(3, 4)], [(2, 2)], [(0, 3)]], FLOATS, grad=False),
    OpCase("fill_diagonal", lambda a: T.fill_diagonal(a, 5.0), _fill_diagonal,
           [[(3, 4)], [(4, 3)], [(2, 2)]], FLOATS),
    OpCase("addbroadcast", lambda a: T.addbroadcast(a, 0) * 2, lambda a: a * 2,
           [[(1, 4)], [(1, 0)]], FLOATS),
    OpCase("patternbroadcast", lambda a: T.patternbroadcast(a, (True, False)) + 1,
           lambda a: a + 1, [[(1, 3)]], FLOATS),
    OpCase("unbroadcast", lambda a: T.unbroadcast(a, 0) * 3, lambda a: a * 3,
           [[(1, 3)], [(2, 3)]], FLOATS),
    OpCase("elu", T.nnet.elu, _elu, UNARY, FLOATS),
    OpCase("elu[alpha]", lambda x: T.nnet.elu(x, 0.5), lambda x: _elu(x, 0.5), UNARY, FLOATS),
    OpCase("selu", T.nnet.selu, lambda x: 1.0507009873554804934193349852946 * _elu(
        x, 1.6732632423543772848170429916717), UNARY, FLOATS),
    OpCase("softsign", T.nnet.softsign, lambda x: x / (1 + np.abs(x)), UNARY, FLOATS),
    OpCase("hard_sigmoid", T.nnet.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1),
           UNARY, FLOATS, domain=(-4.0, 4.0)),
    OpCase("ultra_fast_sigmoid", T.nnet.ultra_fast_sigmoid, _ultra_fast_sigmoid, UNARY,
           FLOATS, domain=(-8.0, 8.0)),
    OpCase("logsoftmax", T.nnet.logsoftmax, _log_softmax, [[(3, 4)], [(1, 5)]], FLOATS),
    OpCase("crossentropy_categorical_1hot", T.nnet.crossentropy_categorical_1hot,
           _one_hot_xent, [[(4, 3), (4,)]], FLOATS, input_dtypes=(None, "int64"),
           make_inputs=_probabilities),
    OpCase("chi2sf", T.chi2sf, lambda x, k: _scipy_special().chdtrc(k, x),
           [[(3, 4), (3, 4)], [(5,), ()]], ("float64",), domain=(0.5, 4.0),
           grad=False),
    OpCase("chi2sf[k=3]", lambda x: T.chi2sf(x, 3), lambda x: _scipy_special().chdtrc(3, x),
           [[(3, 4)], [()]], ("float64",), domain=(0.5, 4.0)),
    OpCase("crossentropy_softmax_1hot", lambda x, y: T.nnet.crossentropy_softmax_1hot(x, y)[0],
           lambda x, y: -_log_softmax(x)[np.arange(len(y)), y], [[(4, 3), (4,)]], FLOATS,
           make_inputs=_probabilities),
    OpCase("crossentropy_softmax_1hot[sm]",
           lambda x, y: T.nnet.crossentropy_softmax_1hot(x, y)[1],
           lambda x, y: np.exp(_log_softmax(x)), [[(4, 3), (4,)]], FLOATS,
           make_inputs=_probabilities),
    OpCase("alloc_diag", T.nlinalg.alloc_diag, np.diag, [[(3,)], [(0,)]], FLOATS),
    OpCase("extract_diag", T.nlinalg.extract_diag, np.diagonal, [[(3, 4)], [(2, 2)]], FLOATS),
    OpCase("matrix_dot", lambda a, b, c: T.nlinalg.matrix_dot(a, b, c),
           lambda a, b, c: a @ b @ c, [[(2, 3), (3, 4), (4, 2)]], FLOATS),
]


def _scipy_special():
    return pytest.importorskip("scipy.special")

test_forward, test_grad = table_tests(CASES)


def test_ultra_fast_sigmoid_is_close_to_the_sigmoid():
    x = np.linspace(-10, 10, 2001)
    f = tg.function([(v := T.dvector("v"))], T.nnet.ultra_fast_sigmoid(v))
    assert np.max(np.abs(f(x) - 1 / (1 + np.exp(-x)))) < 0.03


def test_addbroadcast_checks_the_length_at_run_time():
    x = T.dmatrix("x")
    f = tg.function([x], T.addbroadcast(x, 0))
    assert T.addbroadcast(x, 0).type.shape[0] == 1
    with pytest.raises(Exception, match="shape|length"):
        f(np.ones((2, 3)))


def test_errors_name_what_was_wrong():
    x = T.dmatrix("x")
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        T.addbroadcast(x, 2)
    with pytest.raises(ValueError, match="pattern"):
        T.patternbroadcast(x, (True,))
    with pytest.raises(ValueError, match="matrix"):
        T.identity_like(T.dvector("v"))
    with pytest.raises(TypeError, match="at least one"):
        T.largest()


def test_theano_paths():
    from tracegrad.tensor import nnet
    for name in ("elu", "selu", "softsign", "hard_sigmoid", "ultra_fast_sigmoid",
                 "logsoftmax", "crossentropy_categorical_1hot"):
        assert callable(getattr(nnet, name))
    for name in ("sgn", "inv", "iround", "int_div", "largest", "smallest", "second",
                 "xlogx", "complex", "complex_from_polar", "identity_like", "fill_diagonal",
                 "addbroadcast", "unbroadcast", "patternbroadcast"):
        assert callable(getattr(T, name))


def test_get_scalar_constant_value():
    x = T.tensor("float64", shape=(3, None), name="x")
    assert T.get_scalar_constant_value(T.constant(2.5) * 2) == 5.0
    assert T.get_scalar_constant_value(x.shape[0] + 1) == 4
    assert isinstance(T.get_scalar_constant_value(3), np.ndarray)
    for bad in (x.sum(), T.shape(x)[1], T.constant([1.0, 2.0])):
        with pytest.raises(T.NotScalarConstantError):
            T.get_scalar_constant_value(bad)


def test_get_mode():
    from tracegrad.compile import DebugMode, Mode, get_mode
    assert get_mode("FAST_COMPILE").optimizer == "fast_compile"
    assert isinstance(get_mode("DebugMode"), DebugMode)
    m = Mode(optimizer="None")
    assert get_mode(m) is m and get_mode(None).optimizer == tg.config.optimizer
    with pytest.raises(ValueError):
        get_mode("NO_SUCH_MODE")
