"""Every name of shared/API.md's Modules, Types and Operations sections exists,
and the operators and methods listed there build graph nodes that compute
what NumPy computes."""
import importlib

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T

TOP_LEVEL = ["function", "shared", "In", "Out", "grad", "jacobian", "hessian", "Lop", "Rop",
             "scan", "until", "pp", "config", "jit", "value_and_grad", "Variable", "Constant",
             "Apply", "Op", "Type", "TensorType", "SharedVariable", "printing", "tensor",
             "random", "testing"]
ELEMENTWISE = """exp exp2 expm1 log log2 log10 log1p sqrt sqr square abs sign neg sin cos tan
arcsin arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh floor ceil round minimum
maximum clip where switch erf erfc erfinv gamma gammaln psi sigmoid softplus eq neq lt le gt ge
and_ or_ xor invert isnan isinf cast real imag conj""".split()
REDUCTIONS = "sum mean prod max min argmax argmin var std all any logsumexp".split()
LINALG = "dot matmul tensordot outer batched_dot diag trace".split()
SHAPE = """reshape flatten transpose dimshuffle concatenate stack split squeeze expand_dims
broadcast_to shape zeros_like ones_like zeros ones arange eye fill alloc""".split()
INDEXING = "set_subtensor inc_subtensor take".split()
NNET = ["sigmoid", "softplus", "softmax", "log_softmax", "relu", "binary_crossentropy",
        "categorical_crossentropy"]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_names(name):
    assert hasattr(tg, name), name


@pytest.mark.parametrize("name", ELEMENTWISE + REDUCTIONS + LINALG + SHAPE + INDEXING
                         + ["grad", "nnet", "TensorType", "tensor"])
def test_tensor_names(name):
    assert callable(getattr(T, name)) or name == "nnet", name


def test_modules_and_aliases():
    assert T.grad is tg.grad and tg.pp is tg.printing.pp
    for name in NNET:
        assert callable(getattr(T.nnet, name)), name
    for name in ["pp", "debugprint", "to_dot"]:
        assert callable(getattr(tg.printing, name))
    rs = importlib.import_module("tracegrad.tensor.shared_randomstreams")
    assert rs.RandomStreams is tg.random.RandomStreams
    assert callable(tg.testing.verify_grad)
    assert hasattr(importlib.import_module("tracegrad.testing.strategies"), "expressions")


BINARY_OPERATORS = [
    ("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b),
    ("/", lambda a, b: a / b), ("//", lambda a, b: a // b), ("%", lambda a, b: a % b),
    ("**", lambda a, b: a ** b), ("<", lambda a, b: a < b), ("<=", lambda a, b: a <= b),
    (">", lambda a, b: a > b), (">=", lambda a, b: a >= b),
]


@pytest.mark.parametrize("symbol,op", BINARY_OPERATORS, ids=[s for s, _ in BINARY_OPERATORS])
def test_binary_operators(symbol, op):
    x, y = T.dmatrices("x", "y")
    a = np.array([[1.5, 2.0], [3.0, 4.5]])
    b = np.array([[0.5, 1.5], [2.0, 0.75]])
    got = tg.function([x, y], op(x, y))(a, b)
    np.testing.assert_allclose(got, op(a, b))


def test_bitwise_and_unary_operators_and_matmul():
    i, j = T.imatrices("i", "j")
    a = np.array([[1, 6], [3, 12]], dtype="int32")
    b = np.array([[3, 5], [1, 10]], dtype="int32")
    f = tg.function([i, j], [i & j, i | j, i ^ j, ~i, -i, abs(-i), i @ j, i.T])
    for got, want in zip(f(a, b), [a & b, a | b, a ^ b, ~a, -a, abs(-a), a @ b, a.T]):
        np.testing.assert_array_equal(got, want)


def test_methods():
    x = T.dmatrix("x")
    a = np.arange(12.0).reshape(3, 4) - 4
    exprs = {
        "sum": (x.sum(axis=0), a.sum(axis=0)), "mean": (x.mean(), a.mean()),
        "max": (x.max(axis=1), a.max(axis=1)), "min": (x.min(), a.min()),
        "prod": (x.prod(axis=1), a.prod(axis=1)), "var": (x.var(axis=0), a.var(axis=0)),
        "std": (x.std(), a.std()), "argmax": (x.argmax(axis=1), a.argmax(axis=1)),
        "argmin": (x.argmin(), a.argmin()), "reshape": (x.reshape((4, 3)), a.reshape(4, 3)),
        "flatten": (x.flatten(), a.flatten()),
        "dimshuffle": (x.dimshuffle(1, "x", 0), a.T[:, None, :]),
        "astype": (x.astype("int32"), a.astype("int32")), "dot": (x.dot(x.T), a @ a.T),
        "clip": (x.clip(-1, 2), a.clip(-1, 2)), "repeat": (x.repeat(2, axis=0), a.repeat(2, 0)),
        "round": (x.round(), a.round()), "index": (x[1:, [0, 2]], a[1:, [0, 2]]),
    }
    f = tg.function([x], [e for e, _ in exprs.values()])
    for (name, (_, want)), got in zip(exprs.items(), f(a)):
        np.testing.assert_allclose(got, want, err_msg=name)
        assert got.dtype == np.asarray(want).dtype, name


def test_numpy_dispatch_functions():
    x = T.dmatrix("x")
    w = T.dvector("w")
    a = np.arange(6.0).reshape(2, 3)
    v = np.array([1.0, -1.0, 2.0])
    exprs = [np.dot(x, w), np.sum(x, axis=0), np.where(x > 2, x, 0), np.maximum(x, 1),
             np.concatenate([x, x], axis=1), np.exp(x).mean()]
    wants = [a @ v, a.sum(0), np.where(a > 2, a, 0), np.maximum(a, 1),
             np.concatenate([a, a], 1), np.exp(a).mean()]
    for e in exprs:
        assert isinstance(e, tg.Variable)
    for got, want in zip(tg.function([x, w], exprs)(a, v), wants):
        np.testing.assert_allclose(got, want)
    # (an unsupported function: np.fft.fft, then np.unique were the example
    # until they were added)
    with pytest.raises(TypeError, match="apply_along_axis"):
        np.apply_along_axis(np.sum, 0, w)
