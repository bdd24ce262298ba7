"""Table-driven tests of the ``numpy.linalg`` ops (forward vs NumPy, gradients
vs finite differences on well-conditioned inputs), build errors and dispatch."""
import numpy as np
import pytest

import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
ALL = ("float64", "float32", "int64", "complex128")
COMPLEX = {"grad_dtypes": ("float64", "complex128")}


def _draw(rng, dtype, shape):
    if np.dtype(dtype).kind in "iub":
        return rng.integers(-2, 3, size=shape)
    x = rng.uniform(-1, 1, size=shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.uniform(-1, 1, size=shape)
    return x


def well_conditioned(rng, dtype, shapes):
    """Square inputs ``R + 2 n I`` (diagonally dominant), others uniform."""
    out = []
    for shape in shapes:
        x = _draw(rng, dtype, shape)
        if len(shape) >= 2 and shape[-1] == shape[-2]:
            x = x + 2 * shape[-1] * np.eye(shape[-1], dtype=int)
        out.append(np.asarray(x).astype(dtype))
    return out


def positive_definite(rng, dtype, shapes):
    """``R R^H + n I`` for each square input."""
    out = []
    for shape in shapes:
        r = _draw(rng, dtype, shape)
        x = r @ np.swapaxes(r, -1, -2).conj() + shape[-1] * np.eye(shape[-1])
        out.append(np.asarray(x).astype(dtype))
    return out


def _sym(a):
    return 0.5 * (a + np.swapaxes(a, -1, -2))


SQUARE = [[(3, 3)], [(2, 4, 4)], [(2, 1, 2, 2)], [(1, 1)], [(0, 0)], [(0, 3, 3)]]
SQUARE_GRAD = [[(3, 3)], [(2, 3, 3)]]
WC = {"make_inputs": well_conditioned}


def _vnorm(ord, axis=-1, keepdims=False):
    # NumPy's -inf norm of 0 elements raises (a min without identity), like ours
    empty = [] if ord == -np.inf else [[(2, 0)]]
    return OpCase(f"norm[ord={ord},axis={axis},keepdims={keepdims}]",
                  lambda x: T.norm(x, ord=ord, axis=axis, keepdims=keepdims),
                  lambda x: np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims),
                  [[(5,)], [(2, 4)]] + empty, ALL,
                  grad_shapes=[[(5,)], [(2, 4)]], domain=(0.2, 2.0), **COMPLEX)


def _mnorm(ord, axis=(-2, -1), keepdims=False, shapes=([(3, 4)], [(2, 3, 4)])):
    return OpCase(f"norm[matrix,ord={ord},axis={axis},keepdims={keepdims}]",
                  lambda x: T.norm(x, ord=ord, axis=axis, keepdims=keepdims),
                  lambda x: np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims),
                  list(shapes), ALL, domain=(0.2, 2.0), **COMPLEX)


CASES = [
    OpCase("matrix_inverse", T.matrix_inverse, np.linalg.inv, SQUARE, ALL, **WC, **COMPLEX,
           grad_shapes=SQUARE_GRAD),
    OpCase("det", T.det, np.linalg.det, SQUARE, ALL, **WC, **COMPLEX,
           grad_shapes=SQUARE_GRAD),
    OpCase("slogdet[sign]", lambda a: T.slogdet(a)[0], lambda a: np.linalg.slogdet(a)[0],
           SQUARE, ALL, **WC, grad=False),
    OpCase("slogdet[logabsdet]", lambda a: T.slogdet(a)[1], lambda a: np.linalg.slogdet(a)[1],
           SQUARE, ALL, **WC, **COMPLEX, grad_shapes=SQUARE_GRAD),
    OpCase("slogdet[negative]", lambda a: T.slogdet(-a)[1] + T.slogdet(-a)[0],
           lambda a: np.linalg.slogdet(-a)[1] + np.linalg.slogdet(-a)[0],
           [[(3, 3)]], FLOATS, **WC),
    OpCase("solve", T.solve, np.linalg.solve,
           [[(3, 3), (3,)], [(2, 3, 3), (3,)], [(2, 3, 3), (2, 3, 2)], [(3, 3), (2, 3, 2)],
            [(2, 1, 3, 3), (4, 3, 1)], [(3, 3), (3, 4)], [(0, 0), (0,)],
            [(0, 3, 3), (0, 3, 2)]], ALL, **WC, **COMPLEX,
           grad_shapes=[[(3, 3), (3,)], [(2, 3, 3), (3,)], [(2, 3, 3), (2, 3, 2)],
                        [(3, 3), (2, 3, 2)], [(2, 1, 3, 3), (4, 3, 1)]]),
    OpCase("cholesky", T.cholesky, np.linalg.cholesky,
           [[(3, 3)], [(2, 4, 4)], [(1, 1)], [(0, 0)]], ALL, make_inputs=positive_definite,
           grad=False),
    OpCase("cholesky[upper]", lambda a: T.cholesky(a, upper=True),
           lambda a: np.linalg.cholesky(a, upper=True),
           [[(3, 3)], [(2, 4, 4)]], ("float64", "complex128"), make_inputs=positive_definite,
           grad=False),
    # the gradient with respect to a symmetric A: symmetrize inside the graph.
    OpCase("cholesky[sym]", lambda a: T.cholesky(0.5 * (a + T.swapaxes(a, -1, -2))),
           lambda a: np.linalg.cholesky(_sym(a)), [[(3, 3)], [(2, 4, 4)]], FLOATS,
           make_inputs=positive_definite),
    OpCase("cholesky[hermitian]",
           lambda a: T.cholesky(0.5 * (a + T.conj(T.swapaxes(a, -1, -2)))),
           lambda a: np.linalg.cholesky(0.5 * (a + np.swapaxes(a, -1, -2).conj())),
           [[(3, 3)], [(2, 4, 4)]], ("complex128",), make_inputs=positive_definite,
           grad_dtypes=("complex128",)),
    OpCase("cholesky[chain]", lambda a: T.sum(T.cholesky(0.5 * (a + a.T)) ** 2, axis=0),
           lambda a: np.sum(np.linalg.cholesky(_sym(a)) ** 2, axis=0), [[(4, 4)]], FLOATS,
           make_inputs=positive_definite),
    OpCase("norm", T.norm, np.linalg.norm, [[(5,)], [(2, 3)], [(2, 3, 4)], [(0,)], [()]],
           ALL, **COMPLEX, grad_shapes=[[(5,)], [(2, 3)], [(2, 3, 4)]]),
    OpCase("norm[keepdims]", lambda x: T.norm(x, keepdims=True),
           lambda x: np.linalg.norm(x, keepdims=True), [[(2, 3)], [(4,)]], ALL),
    _vnorm(None), _vnorm(2, 0), _vnorm(1), _vnorm(np.inf), _vnorm(-np.inf, keepdims=True),
    _vnorm(0), _vnorm(3), _vnorm(0.5), _vnorm(-2),
    OpCase("norm[ord=1,axis=None]", lambda x: T.norm(x, 1), lambda x: np.linalg.norm(x, 1),
           [[(5,)], [(3, 4)]], ALL, domain=(0.2, 2.0)),
    _mnorm(None), _mnorm("fro", (0, 2), shapes=([(2, 3, 4)],)), _mnorm(1), _mnorm(-1), _mnorm(np.inf),
    _mnorm(-np.inf, keepdims=True), _mnorm(1, (-1, -2), keepdims=True),
    _mnorm(np.inf, (-1, 0)), _mnorm(2), _mnorm(-2, (2, 0), shapes=([(2, 3, 4)],)),
    _mnorm("nuc", keepdims=True),
    OpCase("svdvals", T.svdvals, np.linalg.svdvals,
           [[(3, 3)], [(4, 2)], [(2, 3, 5)], [(0, 3)]], ALL, **COMPLEX,
           grad_shapes=[[(3, 3)], [(4, 2)], [(2, 3, 5)]]),
    OpCase("vector_norm", T.vector_norm, np.linalg.vector_norm,
           [[(5,)], [(2, 3)], [(2, 3, 4)], [()]], ALL, grad_shapes=[[(2, 3)]]),
    OpCase("vector_norm[ord=1,axis=(0,2),keepdims]",
           lambda x: T.vector_norm(x, ord=1, axis=(0, 2), keepdims=True),
           lambda x: np.linalg.vector_norm(x, ord=1, axis=(0, 2), keepdims=True),
           [[(2, 3, 4)]], ALL, domain=(0.2, 2.0)),
    OpCase("vector_norm[ord=inf]", lambda x: T.vector_norm(x, ord=np.inf),
           lambda x: np.linalg.vector_norm(x, ord=np.inf), [[(2, 3)]], ALL, domain=(0.2, 2.0)),
    OpCase("matrix_norm", T.matrix_norm, np.linalg.matrix_norm, [[(3, 4)], [(2, 3, 4)]],
           ALL),
    OpCase("matrix_norm[nuc,keepdims]", lambda x: T.matrix_norm(x, ord="nuc", keepdims=True),
           lambda x: np.linalg.matrix_norm(x, ord="nuc", keepdims=True),
           [[(3, 4)], [(2, 3, 4)]], ALL),
    OpCase("pinv", T.pinv, np.linalg.pinv,
           [[(3, 3)], [(4, 2)], [(2, 3)], [(2, 3, 5)], [(2, 5, 3)]], ALL, **COMPLEX,
           grad_shapes=[[(3, 3)], [(4, 2)], [(2, 3)], [(2, 5, 3)]]),
    # (NumPy keeps an integer dtype for 0 elements; tracegrad computes in float64)
    OpCase("pinv[empty]", T.pinv, np.linalg.pinv, [[(0, 3)], [(2, 0, 0)]], FLOATS,
           grad=False),
    OpCase("pinv[rank-deficient]", lambda a: T.pinv(T.dot(a, a.T)),
           lambda a: np.linalg.pinv(a @ a.T), [[(4, 2)]], ("float64",)),
    OpCase("pinv[rcond]", lambda a: T.pinv(a, rcond=0.3), lambda a: np.linalg.pinv(a, 0.3),
           [[(3, 4)]], FLOATS, grad=False),
    OpCase("pinv[hermitian,rtol]", lambda a: T.pinv(a, hermitian=True, rtol=1e-8),
           lambda a: np.linalg.pinv(a, hermitian=True, rtol=1e-8), [[(3, 3)]],
           ("float64", "complex128"), make_inputs=positive_definite, grad=False),
    OpCase("matrix_power[3]", lambda a: T.matrix_power(a, 3),
           lambda a: np.linalg.matrix_power(a, 3), [[(3, 3)], [(2, 4, 4)], [(0, 0)]], ALL,
           **COMPLEX),
    OpCase("matrix_power[1]", lambda a: T.matrix_power(a, 1),
           lambda a: np.linalg.matrix_power(a, 1), [[(3, 3)]], ALL),
    OpCase("matrix_power[0]", lambda a: T.matrix_power(a, 0),
           lambda a: np.linalg.matrix_power(a, 0), [[(3, 3)], [(2, 2, 2)]], ALL, grad=False),
    OpCase("matrix_power[-2]", lambda a: T.matrix_power(a, -2),
           lambda a: np.linalg.matrix_power(a, -2), [[(3, 3)], [(2, 4, 4)]],
           ("float64", "float32", "complex128"), **WC, **COMPLEX),
]


test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import nlinalg
    missing = uncovered_functions(nlinalg.__all__, CASES)
    assert not missing, f"nlinalg functions without a table case: {missing}"


# ------------------------------------------------------------------ dispatch, names
def test_numpy_dispatch():
    rng = np.random.default_rng(0)
    a, b, v = T.dmatrix("a"), T.dmatrix("b"), T.dvector("v")
    av = rng.normal(size=(3, 3)) + 4 * np.eye(3)
    bv, vv = rng.normal(size=(3, 2)), rng.normal(size=3)
    spd = av @ av.T
    sign, logdet = np.linalg.slogdet(a)
    cases = [
        (np.linalg.inv(a), np.linalg.inv(av)), (np.linalg.det(a), np.linalg.det(av)),
        (sign, np.linalg.slogdet(av)[0]), (logdet, np.linalg.slogdet(av)[1]),
        (np.linalg.solve(a, b), np.linalg.solve(av, bv)),
        (np.linalg.solve(a, v), np.linalg.solve(av, vv)),
        (np.linalg.solve(av, v), np.linalg.solve(av, vv)),
        (np.linalg.norm(v), np.linalg.norm(vv)), (np.linalg.norm(a, "fro"), np.linalg.norm(av)),
        (np.linalg.norm(a, axis=1, ord=3), np.linalg.norm(av, axis=1, ord=3)),
        (np.linalg.matrix_power(a, 5), np.linalg.matrix_power(av, 5)),
        (np.linalg.pinv(b), np.linalg.pinv(bv)), (np.linalg.svdvals(b), np.linalg.svdvals(bv)),
        (np.linalg.vector_norm(b), np.linalg.vector_norm(bv)),
        (np.linalg.matrix_norm(a, ord=2), np.linalg.matrix_norm(av, ord=2)),
        (np.linalg.norm(a, "nuc"), np.linalg.norm(av, "nuc")),
    ]
    for got, want in cases:
        assert isinstance(got, T.TensorVariable)
        np.testing.assert_allclose(got.eval({a: av, b: bv, v: vv}), want, rtol=1e-10)
    chol = np.linalg.cholesky(a)
    np.testing.assert_allclose(chol.eval({a: spd}), np.linalg.cholesky(spd), rtol=1e-12)


def test_slogdet_is_a_named_tuple():
    a = T.dmatrix("a")
    av = -3 * np.eye(3)
    result = np.linalg.slogdet(a)
    assert result.sign.eval({a: av}) == -1.0
    np.testing.assert_allclose(result.logabsdet.eval({a: av}), 3 * np.log(3))


def test_svdvals_second_derivative_is_refused():
    a = T.dmatrix("a")
    g = T.grad(T.sum(T.svdvals(a)), a)
    with pytest.raises(NotImplementedError, match="singular vectors"):
        T.grad(T.sum(g), a)


def test_theano_path():
    import tracegrad.tensor.nlinalg as nlinalg
    assert nlinalg.matrix_inverse is T.matrix_inverse and nlinalg.det is T.det
    assert T.nlinalg.solve is T.solve


def test_grad_through_inverse_matches_closed_form():
    a = T.dmatrix("a")
    av = np.random.default_rng(1).normal(size=(3, 3)) + 3 * np.eye(3)
    g = T.grad(T.sum(T.matrix_inverse(a)), a).eval({a: av})
    inv = np.linalg.inv(av)
    np.testing.assert_allclose(g, -inv.T @ np.ones((3, 3)) @ inv.T, rtol=1e-10)
    g = T.grad(T.det(a), a).eval({a: av})
    np.testing.assert_allclose(g, np.linalg.det(av) * inv.T, rtol=1e-10)


def test_norm_gradient_at_zero_is_zero():
    x = T.dvector("x")
    for ord in (None, 2):
        g = T.grad(T.norm(x, ord), x).eval({x: np.zeros(3)})
        np.testing.assert_array_equal(g, np.zeros(3))
    m = T.dmatrix("m")
    g = T.grad(T.norm(m, "fro"), m).eval({m: np.zeros((2, 2))})
    np.testing.assert_array_equal(g, np.zeros((2, 2)))


def test_forward_mode_from_vjp():
    a, u = T.dmatrix("a"), T.dmatrix("u")
    av = np.random.default_rng(2).normal(size=(3, 3)) + 3 * np.eye(3)
    uv = np.random.default_rng(3).normal(size=(3, 3))
    jvp = T.Rop(T.det(a), a, u).eval({a: av, u: uv})
    np.testing.assert_allclose(jvp, np.linalg.det(av) * np.trace(np.linalg.solve(av, uv)),
                               rtol=1e-8)


def test_dtypes_and_static_shapes():
    f = T.tensor("float32", shape=(2, 3, 3))
    assert T.matrix_inverse(f).dtype == "float32"
    assert T.matrix_inverse(f).type.shape == (2, 3, 3)
    assert T.det(f).type.shape == (2,)
    assert T.matrix_inverse(T.lmatrix()).dtype == "float64"
    assert T.slogdet(T.cmatrix())[1].dtype == "float64"
    assert T.solve(f, T.fvector()).type.shape == (2, 3)
    assert T.solve(f, T.tensor("float32", shape=(4, 1, 3, 5))).type.shape == (4, 2, 3, 5)
    assert T.norm(T.fmatrix()).dtype == "float32"
    assert T.pinv(T.tensor("float32", shape=(2, 3, 5))).type.shape == (2, 5, 3)
    assert T.norm(T.cmatrix(), 1).dtype == "float64"
    assert T.norm(T.imatrix(), axis=0).dtype == "float64"


@pytest.mark.parametrize("build,error,match", [
    (lambda: T.matrix_inverse(T.dvector()), np.linalg.LinAlgError, "two-dimensional"),
    (lambda: T.det(T.tensor("float64", shape=(3, 4))), np.linalg.LinAlgError, "square"),
    (lambda: T.matrix_inverse(T.tensor("float16", shape=(3, 3))), TypeError, "float16"),
    (lambda: T.solve(T.tensor("float64", shape=(3, 3)), T.tensor("float64", shape=(4,))),
     ValueError, r"\(3, 3\)"),
    (lambda: T.norm(T.dvector(), "fro"), ValueError, "ord"),
    (lambda: T.norm(T.dmatrix(), 3), ValueError, "ord"),
    (lambda: T.svdvals(T.dvector()), np.linalg.LinAlgError, "two-dimensional"),
    (lambda: T.norm(T.dtensor3(), 1), ValueError, "dimensions"),
    (lambda: T.norm(T.dtensor3(), axis=(0, 0)), ValueError, "axis"),
    (lambda: T.matrix_power(T.dmatrix(), 1.5), TypeError, "n must be an integer"),
])
def test_build_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_singular_matrix_raises_at_run_time():
    a = T.dmatrix("a")
    with pytest.raises(np.linalg.LinAlgError):
        T.matrix_inverse(a).eval({a: np.ones((2, 2))})
    with pytest.raises(np.linalg.LinAlgError):
        T.cholesky(a).eval({a: -np.eye(2)})
