"""Table-driven tests of the linear-algebra ops (forward vs NumPy, gradients
vs finite differences), build-time shape errors and NumPy dispatch."""
import numpy as np
import pytest

import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
WITH_INTS = ("float64", "float32", "int32")
# Contractions of complex operands: forward and gradients also for complex128
# (complex finite differences; no conjugation, docs/user-guide.md).
COMPLEX = {"grad_dtypes": ("float64", "complex128")}
WITH_COMPLEX = WITH_INTS + ("complex128",)


def _batched_dot_ref(a, b):
    if a.ndim == 1 or b.ndim == 1:
        return (a.reshape(a.shape + (1,) * (b.ndim - 1)) *
                b.reshape(b.shape + (1,) * (a.ndim - 1)))
    if len(a) == 0:
        inner = np.dot(np.zeros(a.shape[1:], a.dtype), np.zeros(b.shape[1:], b.dtype))
        return np.zeros((0,) + inner.shape, inner.dtype)
    return np.stack([np.dot(x, y) for x, y in zip(a, b)])


CASES = [
    OpCase("dot", T.dot, np.dot,
           [[(3, 4), (4, 5)], [(4,), (4,)], [(3, 4), (4,)], [(4,), (4, 5)],
            [(2, 3, 4), (4, 5)], [(2, 3, 4), (5, 4, 2)], [(), (3,)], [(2, 3), ()],
            [(0, 3), (3, 2)], [(3, 0), (0, 2)], [(2, 3, 4), (4,)]], WITH_COMPLEX, **COMPLEX,
           grad_shapes=[[(3, 4), (4, 5)], [(4,), (4,)], [(3, 4), (4,)], [(4,), (4, 5)],
                        [(2, 3, 4), (5, 4, 2)], [(), (3,)], [(2, 3, 4), (4,)]]),
    OpCase("matmul", T.matmul, np.matmul,
           [[(3, 4), (4, 5)], [(2, 3, 4), (4, 5)], [(2, 1, 3, 4), (5, 4, 2)],
            [(4,), (2, 4, 3)], [(2, 3, 4), (4,)], [(4,), (4,)], [(4,), (4, 3)],
            [(3, 4), (4,)], [(0, 3, 4), (4, 2)]], WITH_COMPLEX, **COMPLEX,
           grad_shapes=[[(3, 4), (4, 5)], [(2, 3, 4), (4, 5)], [(2, 1, 3, 4), (5, 4, 2)],
                        [(4,), (2, 4, 3)], [(2, 3, 4), (4,)], [(4,), (4,)],
                        [(1, 3, 4), (2, 4, 2)]]),
    OpCase("matmul_operator", lambda a, b: a @ b, lambda a, b: a @ b,
           [[(3, 4), (4, 5)]], FLOATS),
    OpCase("tensordot[2]", lambda a, b: T.tensordot(a, b), np.tensordot,
           [[(2, 3, 4), (3, 4, 5)], [(3, 4), (3, 4)]], WITH_COMPLEX, **COMPLEX),
    OpCase("tensordot[pairs]", lambda a, b: T.tensordot(a, b, axes=([1, 0], [0, 2])),
           lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 2])),
           [[(3, 2, 4), (2, 5, 3)]], WITH_INTS),
    OpCase("tensordot[neg]", lambda a, b: T.tensordot(a, b, axes=(-1, -2)),
           lambda a, b: np.tensordot(a, b, axes=(-1, -2)), [[(2, 3), (4, 3, 5)]], FLOATS),
    OpCase("tensordot[0]", lambda a, b: T.tensordot(a, b, axes=0),
           lambda a, b: np.tensordot(a, b, axes=0), [[(2, 3), (4,)], [(), (2,)]], FLOATS),
    OpCase("outer", T.outer, np.outer, [[(3,), (4,)], [(2, 2), (3,)], [(), (2,)]],
           WITH_COMPLEX, **COMPLEX),
    OpCase("batched_dot", T.batched_dot, _batched_dot_ref,
           [[(2, 3, 4), (2, 4, 5)], [(2, 3), (2, 3)], [(2, 3, 4), (2, 4)],
            [(2, 4), (2, 4, 5)], [(2, 3, 4, 5), (2, 5, 6)], [(2, 3, 5), (2, 4, 5, 6)],
            [(3,), (3, 4)], [(2, 3, 4), (2,)], [(0, 3, 4), (0, 4, 2)]], WITH_COMPLEX,
           **COMPLEX, grad_shapes=[[(2, 3, 4), (2, 4, 5)], [(2, 3), (2, 3)], [(2, 3, 4), (2, 4)],
                        [(2, 4), (2, 4, 5)], [(2, 3, 4, 5), (2, 5, 6)],
                        [(2, 3, 5), (2, 4, 5, 6)], [(3,), (3, 4)]]),
    OpCase("batched_tensordot", lambda a, b: T.batched_tensordot(a, b, axes=[[1, 3], [2, 1]]),
           lambda a, b: np.stack([np.tensordot(x, y, axes=([0, 2], [1, 0]))
                                  for x, y in zip(a, b)]),
           [[(2, 3, 4, 5), (2, 5, 3, 6)]], FLOATS),
    OpCase("diag[vector]", T.diag, np.diag, [[(4,)], [(1,)], [(0,)]], WITH_INTS),
    OpCase("diag[vector,k=1]", lambda v: T.diag(v, 1), lambda v: np.diag(v, 1), [[(3,)]],
           WITH_INTS),
    OpCase("diag[vector,k=-2]", lambda v: T.diag(v, k=-2), lambda v: np.diag(v, -2),
           [[(3,)]], FLOATS),
    OpCase("diag[matrix]", T.diag, np.diag, [[(3, 4)], [(4, 3)], [(0, 2)]], WITH_INTS),
    OpCase("diag[matrix,k=1]", lambda m: T.diag(m, 1), lambda m: np.diag(m, 1),
           [[(3, 4)], [(4, 2)]], FLOATS),
    OpCase("diag[matrix,k=-1]", lambda m: T.diag(m, -1), lambda m: np.diag(m, -1),
           [[(3, 4)], [(2, 5)]], FLOATS),
    OpCase("diag[matrix,k=9]", lambda m: T.diag(m, 9), lambda m: np.diag(m, 9),
           [[(3, 4)]], FLOATS),
    OpCase("diagonal[3d]", lambda x: T.diagonal(x, 1, 2, 0),
           lambda x: np.diagonal(x, 1, 2, 0), [[(3, 2, 4)]], FLOATS),
    OpCase("trace", T.trace, np.trace, [[(3, 4)], [(4, 3)], [(0, 0)]], WITH_INTS),
    OpCase("trace[offset]", lambda x: T.trace(x, offset=-1), lambda x: np.trace(x, -1),
           [[(3, 4)]], WITH_INTS),
    OpCase("trace[3d]", lambda x: T.trace(x, 0, 1, 2), lambda x: np.trace(x, 0, 1, 2),
           [[(2, 3, 3)]], WITH_INTS),
]


test_forward, test_grad = table_tests(CASES)


# ------------------------------------------------------------------ inference
def test_dtypes():
    f, d, i = T.fmatrix(), T.dmatrix(), T.imatrix()
    assert T.dot(f, f).dtype == "float32"
    assert T.dot(f, d).dtype == "float64"
    assert T.dot(i, i).dtype == "int32"
    assert T.dot(i, f).dtype == "float64"
    assert T.matmul(f, f).dtype == "float32"
    assert (f @ f).dtype == "float32"
    assert T.dot(f, 2.0).dtype == "float32"      # a Python number does not upcast
    assert T.trace(i).dtype == "int64"            # like np.trace / np.sum
    assert T.batched_dot(T.ftensor3(), T.ftensor3()).dtype == "float32"


def test_static_shapes():
    a = T.tensor("float64", shape=(3, 4))
    b = T.tensor("float64", shape=(None, 5))
    assert T.dot(a, b).type.shape == (3, 5)
    assert T.dot(T.dvector(), b).type.shape == (5,)
    assert T.dot(T.tensor("float64", shape=(2, 3, 4)), T.tensor("float64", shape=(6, 4, 7))
                 ).type.shape == (2, 3, 6, 7)
    assert T.matmul(T.tensor("float64", shape=(2, 1, 3, 4)),
                    T.tensor("float64", shape=(5, 4, None))).type.shape == (2, 5, 3, None)
    assert T.matmul(T.tensor("float64", shape=(4,)), b).type.shape == (5,)
    assert T.tensordot(T.tensor("float64", shape=(2, 3, 4)),
                       T.tensor("float64", shape=(3, 4, 5))).type.shape == (2, 5)
    assert T.outer(T.tensor("float64", shape=(3,)), T.dvector()).type.shape == (3, None)
    assert T.batched_dot(T.tensor("float64", shape=(None, 3, 4)),
                         T.tensor("float64", shape=(7, 4, 5))).type.shape == (7, 3, 5)
    assert T.diag(T.tensor("float64", shape=(3,)), 2).type.shape == (5, 5)
    assert T.diag(T.tensor("float64", shape=(3, 5)), 1).type.shape == (3,)
    assert T.diag(T.tensor("float64", shape=(3, 5)), -1).type.shape == (2,)
    assert T.trace(T.tensor("float64", shape=(2, 3, 3)), 0, 1, 2).type.shape == (2,)


@pytest.mark.parametrize("build", [
    lambda: T.dot(T.tensor("float64", shape=(3, 4)), T.tensor("float64", shape=(5, 2))),
    lambda: T.dot(T.tensor("float64", shape=(4,)), T.tensor("float64", shape=(5,))),
    lambda: T.matmul(T.tensor("float64", shape=(3, 4)), T.tensor("float64", shape=(5, 2))),
    lambda: T.tensor("float64", shape=(3, 4)) @ T.tensor("float64", shape=(5, 2)),
    lambda: T.tensordot(T.tensor("float64", shape=(3, 4)), T.tensor("float64", shape=(5, 2)),
                        axes=1),
    lambda: T.batched_dot(T.tensor("float64", shape=(2, 3, 4)),
                          T.tensor("float64", shape=(2, 5, 2))),
])
def test_shape_mismatch_raises_at_build_time(build):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    shapes = [s for s in ("(3, 4)", "(5, 2)", "(4,)", "(5,)", "(2, 3, 4)", "(2, 5, 2)")
              if s in message]
    assert len(shapes) == 2, message


def test_other_build_errors():
    with pytest.raises(ValueError, match="batch"):
        T.matmul(T.tensor("float64", shape=(2, 3, 4)), T.tensor("float64", shape=(3, 4, 5)))
    with pytest.raises(ValueError, match="enough dimensions"):
        T.matmul(T.dscalar(), T.dmatrix())
    with pytest.raises(ValueError, match="batch|aligned"):
        T.batched_dot(T.tensor("float64", shape=(2, 3, 4)), T.tensor("float64", shape=(3, 4, 5)))
    with pytest.raises(ValueError):
        T.diag(T.dtensor3())
    with pytest.raises(TypeError):
        T.batched_dot(T.dscalar(), T.dmatrix())


def test_runtime_mismatch_names_op_and_shapes():
    a, b = T.dmatrices("a", "b")
    for out in (T.dot(a, b), T.matmul(a, b), T.batched_dot(a, b)):
        with pytest.raises(ValueError) as info:
            out.eval({a: np.ones((3, 4)), b: np.ones((5, 2))})
        assert "(3, 4)" in str(info.value) and "(5, 2)" in str(info.value)


def test_dot_float32_stays_float32():
    x, w = T.fmatrix("x"), T.fmatrix("w")
    out = T.dot(x, w)
    value = out.eval({x: np.ones((2, 3), "float32"), w: np.ones((3, 4), "float32")})
    assert value.dtype == np.float32
    assert T.grad(out.sum(), w).dtype == "float32"
    v = T.fvector("v")
    assert T.grad(T.dot(v, T.dmatrix()).sum(), v).dtype == "float32"


# ------------------------------------------------------------------ dispatch
def test_numpy_dispatch():
    rng = np.random.default_rng(0)
    x, w = T.dmatrix("x"), T.dmatrix("w")
    xv, wv = rng.normal(size=(3, 4)), rng.normal(size=(4, 3))
    wconst = rng.normal(size=(4, 2))
    cases = [
        (np.dot(x, w), xv @ wv), (x @ w, xv @ wv), (x.dot(w), xv @ wv),
        (np.matmul(x, w), xv @ wv), (wv @ x, wv @ xv),   # ndarray @ variable
        (np.matmul(x, wconst), xv @ wconst), (np.dot(x, wconst), xv @ wconst),
        (np.tensordot(x, w, axes=([1], [0])), xv @ wv), (np.trace(x), np.trace(xv)),
        (np.trace(x, 1), np.trace(xv, 1)), (np.diag(x), np.diag(xv)),
        (np.diagonal(x, -1), np.diagonal(xv, -1)),
        (np.outer(np.diag(x), np.diag(w)), np.outer(np.diag(xv), np.diag(wv))),
        (np.linalg.matmul(x, w), xv @ wv),
    ]
    for got, want in cases:
        assert isinstance(got, T.TensorVariable)
        np.testing.assert_allclose(got.eval({x: xv, w: wv}), want, rtol=1e-12)
    with pytest.raises(TypeError, match="out="):
        np.dot(x, w, out=np.zeros((3, 3)))


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import linalg
    missing = uncovered_functions(linalg.__all__, CASES)
    assert not missing, f"linalg functions without a table case: {missing}"
