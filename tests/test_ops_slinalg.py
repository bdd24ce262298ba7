"""Op table of Theano's ``tensor.slinalg`` (tracegrad/ops/slinalg.py):
forward vs SciPy per dtype, gradients and jvps vs finite differences."""
import numpy as np
import pytest

sl = pytest.importorskip("scipy.linalg")

import tracegrad as tg  # noqa: E402
import tracegrad.tensor as T  # noqa: E402
from tracegrad.tensor import slinalg  # noqa: E402
from optable import OpCase, table_tests  # noqa: E402

FLOATS = ("float64", "float32")
TOL32 = (2e-4, 1e-5)


def _pd(rng, dtype, shapes):
    """A positive definite first matrix (``R R^T + n I``), the rest uniform."""
    r = rng.uniform(-1, 1, shapes[0])
    out = [r @ r.T + shapes[0][0] * np.eye(shapes[0][0])]
    out += [rng.uniform(-1, 1, s) for s in shapes[1:]]
    return [a.astype(dtype) for a in out]


def _tri(rng, dtype, shapes):
    """A well-conditioned square matrix (``R + 2 n I``), then uniform ones."""
    n = shapes[0][0]
    out = [rng.uniform(-1, 1, shapes[0]) + 2 * n * np.eye(n)]
    out += [rng.uniform(-1, 1, s) for s in shapes[1:]]
    return [a.astype(dtype) for a in out]


def _gen_eig(rng, dtype, shapes):
    """A symmetric ``a`` and a positive definite ``b``."""
    a = rng.uniform(-1, 1, shapes[0])
    r = rng.uniform(-1, 1, shapes[1])
    b = r @ r.T + shapes[1][0] * np.eye(shapes[1][0])
    return [(a + a.T).astype(dtype), b.astype(dtype)]


def _small(rng, dtype, shapes):
    return [rng.uniform(-1, 1, s).astype(dtype) for s in shapes]


def _sym(a):
    return 0.5 * (a + a.T)


SQ = [[(3, 3)], [(1, 1)]]
SOLVE = [[(3, 3), (3,)], [(3, 3), (3, 2)]]

CASES = [
    OpCase("cholesky", lambda a: slinalg.cholesky(_sym(a)),
           lambda a: sl.cholesky(_sym(a), lower=True), SQ, FLOATS, make_inputs=_pd,
           tol=TOL32),
    OpCase("cholesky[upper]", lambda a: slinalg.cholesky(_sym(a), lower=False),
           lambda a: sl.cholesky(_sym(a), lower=False), SQ, FLOATS, make_inputs=_pd,
           tol=TOL32),
    OpCase("solve", slinalg.solve, sl.solve, SOLVE, FLOATS, make_inputs=_tri, tol=TOL32),
    OpCase("solve_triangular", lambda a, b: slinalg.solve_triangular(a, b, lower=True),
           lambda a, b: sl.solve_triangular(a, b, lower=True), SOLVE, FLOATS,
           make_inputs=_tri, tol=TOL32),
    OpCase("solve_triangular[upper,T]",
           lambda a, b: slinalg.solve_triangular(a, b, trans="T"),
           lambda a, b: sl.solve_triangular(a, b, trans="T"), SOLVE, FLOATS,
           make_inputs=_tri, tol=TOL32),
    OpCase("solve_triangular[unit]",
           lambda a, b: slinalg.solve_triangular(a, b, lower=True, unit_diagonal=True),
           lambda a, b: sl.solve_triangular(a, b, lower=True, unit_diagonal=True),
           SOLVE, FLOATS, make_inputs=_small, tol=TOL32),
    OpCase("solve_lower_triangular", slinalg.solve_lower_triangular,
           lambda a, b: sl.solve_triangular(a, b, lower=True), SOLVE, FLOATS,
           make_inputs=_tri, tol=TOL32),
    OpCase("solve_upper_triangular", slinalg.solve_upper_triangular,
           lambda a, b: sl.solve_triangular(a, b, lower=False), SOLVE, FLOATS,
           make_inputs=_tri, tol=TOL32),
    OpCase("solve_symmetric", lambda a, b: slinalg.solve_symmetric(_sym(a), b),
           lambda a, b: sl.solve(_sym(a), b, assume_a="sym"), SOLVE, FLOATS,
           make_inputs=_pd, tol=TOL32),
    OpCase("eigvalsh", lambda a: slinalg.eigvalsh(_sym(a), None),
           lambda a: sl.eigvalsh(_sym(a)), [[(3, 3)]], FLOATS, tol=TOL32),
    OpCase("eigvalsh[b]", lambda a, b: slinalg.eigvalsh(a, b),
           lambda a, b: sl.eigvalsh(a, b, lower=True), [[(3, 3), (3, 3)], [(1, 1), (1, 1)]],
           FLOATS, make_inputs=_gen_eig, tol=TOL32),
    OpCase("eigvalsh[b,upper]", lambda a, b: slinalg.eigvalsh(a, b, lower=False),
           lambda a, b: sl.eigvalsh(a, b, lower=False), [[(3, 3), (3, 3)]],
           FLOATS, make_inputs=_gen_eig, tol=TOL32),
    OpCase("expm", slinalg.expm, sl.expm, [[(3, 3)], [(1, 1)], [(0, 0)]], FLOATS,
           make_inputs=_small, tol=TOL32, grad_shapes=[[(3, 3)], [(1, 1)]]),
    OpCase("kron", slinalg.kron, np.kron, [[(2, 3), (3, 2)], [(1, 2), (2, 2)]], FLOATS),
]

test_forward, test_grad = table_tests(CASES)


def test_expm_without_scipy_matches():
    from tracegrad.ops import slinalg as ops_slinalg
    rng = np.random.default_rng(0)
    for scale in (0.1, 1.0, 6.0):
        a = rng.uniform(-1, 1, (4, 4)) * scale
        want = sl.expm(a)
        np.testing.assert_allclose(ops_slinalg._expm_pade(a), want, rtol=1e-12,
                                   atol=1e-12 * np.abs(want).max())


def test_expm_second_derivative():
    a = T.dmatrix("a")
    cost = T.sum(slinalg.expm(a) ** 2)
    h = tg.function([a], tg.grad(T.sum(tg.grad(cost, a)), a))
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 3))
    eps = 1e-6
    g = tg.function([a], T.sum(tg.grad(cost, a)))
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        num[i] = (g(x + d) - g(x - d)) / (2 * eps)
    np.testing.assert_allclose(h(x), num, rtol=1e-5, atol=1e-7)


def test_triangular_gradient_reaches_only_the_triangle():
    a, b = T.dmatrix("a"), T.dvector("b")
    ga = tg.grad(T.sum(slinalg.solve_lower_triangular(a, b)), a)
    x = np.eye(3) * 3 + np.tril(np.ones((3, 3)))
    got = ga.eval({a: x, b: np.ones(3)})
    assert np.all(np.triu(got, 1) == 0) and np.any(np.tril(got) != 0)


def test_errors():
    with pytest.raises(ValueError, match="trans"):
        slinalg.solve_triangular(T.dmatrix(), T.dvector(), trans=3)
    with pytest.raises(ValueError, match="matrix"):
        slinalg.expm(T.dtensor3())
