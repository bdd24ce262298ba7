"""Table-driven tests of the ``numpy.linalg`` decompositions and the rest of
``numpy.linalg`` (ops/decomp.py, ops/decomp_solve.py, ops/linalg_api.py):
forward against NumPy (float64, float32, int64, complex128; stacks; empty
matrices), gradients and jvps against finite differences.

Eigenvectors and singular vectors have a sign/phase gauge chosen by LAPACK,
so their rows differentiate gauge-invariant functions (as JAX's tests do):
``|v|``, projectors ``sum_k c_k v_k v_k^H``, ``u diag(s^2) vh``. ``eigh``
reads one triangle, so its gradient rows symmetrize inside the graph (its
gradient is the one with respect to a Hermitian matrix, like ``cholesky``)."""
import numpy as np
import pytest

import tracegrad.tensor as T
from optable import OpCase, table_tests, uncovered_functions

FLOATS = ("float64", "float32")
ALL = ("float64", "float32", "int64", "complex128")
COMPLEX = {"grad_dtypes": ("float64", "complex128")}


def _draw(rng, dtype, shape):
    if np.dtype(dtype).kind in "iub":
        return rng.integers(-3, 4, size=shape)
    x = rng.uniform(-1, 1, size=shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.uniform(-1, 1, size=shape)
    return x


def uniform(rng, dtype, shapes):
    return [np.asarray(_draw(rng, dtype, s)).astype(dtype) for s in shapes]


def well_conditioned(rng, dtype, shapes):
    """Square matrices ``R + 2 n I``; other shapes uniform."""
    out = []
    for shape in shapes:
        x = _draw(rng, dtype, shape)
        if len(shape) >= 2 and shape[-1] == shape[-2]:
            x = x + 2 * shape[-1] * np.eye(shape[-1], dtype=int)
        out.append(np.asarray(x).astype(dtype))
    return out


def low_rank(rng, dtype, shapes):
    """Matrices of rank about half their size (``B C`` with a thin inner axis)."""
    out = []
    for shape in shapes:
        if len(shape) < 2:
            out.append(np.asarray(_draw(rng, dtype, shape)).astype(dtype))
            continue
        r = max(1, min(shape[-2:]) // 2)
        b = _draw(rng, dtype, shape[:-1] + (r,))
        c = _draw(rng, dtype, shape[:-2] + (r, shape[-1]))
        out.append(np.asarray(b @ c).astype(dtype))
    return out


def _mH(x):
    return T.conj(T.swapaxes(x, -1, -2)) if x.dtype[0] == "c" else T.swapaxes(x, -1, -2)


def _herm(a):
    return 0.5 * (a + _mH(a))


def _np_herm(a):
    return 0.5 * (a + np.swapaxes(a, -1, -2).conj())


def _proj(v):
    """``sum_k (k + 1) v_k v_k^H``: invariant under the sign/phase of each column."""
    n = v.shape[-1]
    weights = T.cast(T.arange(n) + 1, "float64")
    return T.matmul(v * weights, _mH(v))


def _np_proj(v):
    n = v.shape[-1]
    return (v * np.arange(1, n + 1)) @ np.swapaxes(v, -1, -2).conj()


def _cdtype(a):
    real = np.result_type(a.dtype, np.float64 if a.dtype.kind in "iub" else a.dtype)
    return np.result_type(real, np.complex64)


def _np_eig(a, i):
    return np.linalg.eig(a)[i].astype(_cdtype(a))


def _np_rec(u, s, vh):
    return (u * s[..., None, :] ** 2) @ vh


def _rec(u, s, vh):
    return T.matmul(u * T.shape_padaxis(s, -2) ** 2, vh)


SQUARE = [[(3, 3)], [(2, 4, 4)], [(2, 1, 2, 2)], [(1, 1)], [(0, 0)], [(2, 0, 0)]]
SQUARE_GRAD = [[(3, 3)], [(2, 3, 3)]]
RECT = [[(3, 3)], [(4, 2)], [(2, 3, 5)], [(2, 1, 5, 3)], [(0, 3)], [(3, 0)]]
TALL = [[(4, 3)], [(3, 3)], [(2, 5, 3)]]
WC = {"make_inputs": well_conditioned}
U = {"make_inputs": uniform}

DECOMP_CASES = [
    # eigh / eigvalsh: forward of the raw input (NumPy reads one triangle), the
    # gradients of a symmetrized input.
    OpCase("eigh[w]", lambda a: T.eigh(a)[0], lambda a: np.linalg.eigh(a)[0], SQUARE, ALL,
           grad=False, **U),
    OpCase("eigh[v]", lambda a: T.eigh(a)[1], lambda a: np.linalg.eigh(a)[1], SQUARE, ALL,
           grad=False, **U),
    OpCase("eigh[UPLO=U]", lambda a: T.eigh(a, UPLO="U")[1],
           lambda a: np.linalg.eigh(a, UPLO="U")[1], [[(3, 3)], [(2, 4, 4)]], ALL, grad=False,
           **U),
    OpCase("eigh[herm,w]", lambda a: T.eigh(_herm(a))[0],
           lambda a: np.linalg.eigh(_np_herm(a))[0], SQUARE_GRAD, FLOATS, **U, **COMPLEX),
    OpCase("eigh[herm,projector]", lambda a: _proj(T.eigh(_herm(a))[1]),
           lambda a: _np_proj(np.linalg.eigh(_np_herm(a))[1]), SQUARE_GRAD,
           ("float64", "complex128"), **U, **COMPLEX),
    OpCase("eigh[herm,abs(v)]", lambda a: abs(T.eigh(_herm(a), UPLO="U")[1]),
           lambda a: abs(np.linalg.eigh(_np_herm(a), UPLO="U")[1]), SQUARE_GRAD,
           ("float64", "complex128"), **U, **COMPLEX),
    OpCase("eigh[herm,w*abs(v)]",
           lambda a: (lambda w, v: T.shape_padaxis(w, -2) * abs(v))(*T.eigh(_herm(a))),
           lambda a: (lambda w, v: w[..., None, :] * abs(v))(*np.linalg.eigh(_np_herm(a))),
           [[(4, 4)]], ("float64",), **U, **COMPLEX),
    OpCase("eigvalsh", T.eigvalsh, np.linalg.eigvalsh, SQUARE, ALL, grad=False, **U),
    OpCase("eigvalsh[herm]", lambda a: T.eigvalsh(_herm(a), "U"),
           lambda a: np.linalg.eigvalsh(_np_herm(a), "U"), SQUARE_GRAD, FLOATS, **U,
           **COMPLEX),
    # eig / eigvals: always complex.
    OpCase("eig[w]", lambda a: T.eig(a)[0], lambda a: _np_eig(a, 0), SQUARE, ALL, **U,
           **COMPLEX, grad_shapes=SQUARE_GRAD),
    OpCase("eig[v]", lambda a: T.eig(a)[1], lambda a: _np_eig(a, 1), SQUARE, ALL, **U,
           grad=False),
    OpCase("eig[abs(v)]", lambda a: abs(T.eig(a)[1]), lambda a: abs(np.linalg.eig(a)[1]),
           SQUARE_GRAD, ("float64",), **U, **COMPLEX),
    OpCase("eig[w*v^2]",
           lambda a: (lambda w, v: T.shape_padaxis(w, -2) * abs(v) ** 2)(*T.eig(a)),
           lambda a: (lambda w, v: w[..., None, :] * abs(v) ** 2)(*np.linalg.eig(a)),
           [[(3, 3)]], ("float64",), **U, **COMPLEX),
    OpCase("eigvals", T.eigvals, lambda a: np.linalg.eigvals(a).astype(_cdtype(a)), SQUARE,
           ALL, **U, **COMPLEX, grad_shapes=SQUARE_GRAD),
    # svd: forward of all three factors; gradients of invariant functions.
    OpCase("svd[u]", lambda a: T.svd(a)[0], lambda a: np.linalg.svd(a)[0], RECT, ALL,
           grad=False, **U),
    OpCase("svd[s]", lambda a: T.svd(a)[1], lambda a: np.linalg.svd(a)[1], RECT, ALL,
           grad=False, **U),
    OpCase("svd[vh]", lambda a: T.svd(a)[2], lambda a: np.linalg.svd(a)[2], RECT, ALL,
           grad=False, **U),
    OpCase("svd[reduced,u]", lambda a: T.svd(a, full_matrices=False)[0],
           lambda a: np.linalg.svd(a, full_matrices=False)[0], RECT, ALL, grad=False, **U),
    OpCase("svd[reduced,vh]", lambda a: T.svd(a, full_matrices=False)[2],
           lambda a: np.linalg.svd(a, full_matrices=False)[2], RECT, ALL, grad=False, **U),
    OpCase("svd[reduced,s]", lambda a: T.svd(a, full_matrices=False)[1],
           lambda a: np.linalg.svd(a, full_matrices=False)[1], [[(3, 3)], [(4, 2)],
                                                               [(2, 3, 5)]], FLOATS, **U,
           **COMPLEX),
    OpCase("svd[reduced,u s^2 vh]", lambda a: _rec(*T.svd(a, full_matrices=False)),
           lambda a: _np_rec(*np.linalg.svd(a, full_matrices=False)),
           [[(3, 3)], [(4, 2)], [(2, 3, 5)]], ("float64", "complex128"), **U, **COMPLEX),
    OpCase("svd[reduced,abs(u)]", lambda a: abs(T.svd(a, full_matrices=False)[0]),
           lambda a: abs(np.linalg.svd(a, full_matrices=False)[0]),
           [[(4, 3)], [(3, 5)], [(2, 3, 3)]], ("float64",), **U, **COMPLEX),
    OpCase("svd[reduced,abs(vh)]", lambda a: abs(T.svd(a, full_matrices=False)[2]),
           lambda a: abs(np.linalg.svd(a, full_matrices=False)[2]),
           [[(4, 3)], [(3, 5)], [(2, 3, 3)]], ("float64",), **U, **COMPLEX),
    OpCase("svd[full,square,abs(u)+abs(vh)]",
           lambda a: (lambda u, s, vh: abs(u) + abs(vh))(*T.svd(a)),
           lambda a: (lambda u, s, vh: abs(u) + abs(vh))(*np.linalg.svd(a)),
           [[(3, 3)], [(2, 3, 3)]], ("float64",), **U, **COMPLEX),
    OpCase("svd[compute_uv=False]", lambda a: T.svd(a, compute_uv=False),
           lambda a: np.linalg.svd(a, compute_uv=False), RECT[:4], ALL, **U,
           grad_shapes=[[(4, 2)]]),
    OpCase("svd[hermitian,s]", lambda a: T.svd(_herm(a), hermitian=True)[1],
           lambda a: np.linalg.svd(_np_herm(a), hermitian=True)[1],
           [[(3, 3)], [(2, 4, 4)]], ("float64", "complex128"), **U, grad=False),
    OpCase("svd[hermitian,u s^2 vh]", lambda a: _rec(*T.svd(_herm(a), hermitian=True)),
           lambda a: _np_rec(*np.linalg.svd(_np_herm(a), hermitian=True)),
           [[(3, 3)]], ("float64",), **U),
    # qr: Q and R are unique for LAPACK's Householder signs, so differentiated directly.
    OpCase("qr[q]", lambda a: T.qr(a)[0], lambda a: np.linalg.qr(a)[0], RECT, ALL, **U,
           **COMPLEX, grad_shapes=TALL),
    OpCase("qr[r]", lambda a: T.qr(a)[1], lambda a: np.linalg.qr(a)[1], RECT, ALL, **U,
           **COMPLEX, grad_shapes=TALL),
    OpCase("qr[complete,q]", lambda a: T.qr(a, "complete")[0],
           lambda a: np.linalg.qr(a, "complete")[0], RECT, ALL, **U, **COMPLEX,
           grad_shapes=[[(3, 3)], [(2, 3, 3)]]),
    OpCase("qr[complete,r]", lambda a: T.qr(a, "complete")[1],
           lambda a: np.linalg.qr(a, "complete")[1], RECT, ALL, **U,
           grad_shapes=[[(3, 3)]]),
    OpCase("qr[mode=r]", lambda a: T.qr(a, "r"), lambda a: np.linalg.qr(a, "r"), RECT, ALL,
           **U, **COMPLEX, grad_shapes=TALL[:2]),
]


def _lstsq_ref(i, rcond=None):
    return lambda a, b: np.linalg.lstsq(a, b, rcond=rcond)[i]


LSTSQ_SHAPES = [[(4, 3), (4,)], [(4, 3), (4, 2)], [(3, 3), (3,)], [(2, 4), (2,)],
                [(2, 4), (2, 3)]]
VEC = [[(5,), (5,)], [(2, 3), (2, 3)], [(2, 1, 3), (4, 3)], [(0,), (0,)]]

SOLVE_CASES = [
    OpCase("lstsq[x]", lambda a, b: T.lstsq(a, b)[0], _lstsq_ref(0), LSTSQ_SHAPES, ALL,
           **U, **COMPLEX),
    OpCase("lstsq[x,mixed dtypes]", lambda a, b: T.lstsq(a, b)[0], _lstsq_ref(0),
           [[(4, 3), (4,)]], FLOATS, input_dtypes=("float32", None), grad=False),
    OpCase("lstsq[residuals]", lambda a, b: T.lstsq(a, b)[1], _lstsq_ref(1),
           LSTSQ_SHAPES, ALL, **U, **COMPLEX, grad_shapes=LSTSQ_SHAPES[:2]),
    # empty residuals (square or wide a): gradient 0, the jvp an empty array
    OpCase("lstsq[residuals,empty]", lambda a, b: T.lstsq(a, b)[1] + T.sum(b) * 0,
           lambda a, b: np.linalg.lstsq(a, b)[1] + np.sum(b) * 0, LSTSQ_SHAPES[2:4],
           FLOATS, **U, **COMPLEX),
    OpCase("lstsq[residuals,rank-deficient]", lambda a, b: T.lstsq(a, b)[1], _lstsq_ref(1),
           [[(4, 4), (4, 2)], [(5, 4), (5,)]], FLOATS, grad=False, make_inputs=low_rank),
    OpCase("lstsq[rank]", lambda a, b: T.lstsq(a, b)[2], _lstsq_ref(2),
           [[(4, 3), (4,)], [(4, 4), (4, 2)], [(5, 4), (5,)]], FLOATS, grad=False,
           make_inputs=low_rank),
    OpCase("lstsq[s]", lambda a, b: T.lstsq(a, b)[3], _lstsq_ref(3), LSTSQ_SHAPES, ALL,
           **U, grad_shapes=LSTSQ_SHAPES[:2]),
    OpCase("lstsq[rcond,x]", lambda a, b: T.lstsq(a, b, rcond=0.3)[0],
           _lstsq_ref(0, 0.3), [[(4, 3), (4, 2)]], FLOATS, grad=False, **U),
    # rank 2 whatever the perturbation: a = f g with thin factors (x jumps where the rank does)
    OpCase("lstsq[rank-deficient,x]", lambda f, g, b: T.lstsq(T.matmul(f, g), b)[0],
           lambda f, g, b: np.linalg.lstsq(f @ g, b)[0],
           [[(4, 2), (2, 4), (4, 2)], [(5, 2), (2, 4), (5,)]], ("float64", "complex128"),
           **U, **COMPLEX),
    OpCase("matrix_rank", T.matrix_rank, np.linalg.matrix_rank,
           [[(3, 3)], [(4, 4)], [(2, 5, 4)], [(4,)], [(0, 0)]], ALL, grad=False,
           make_inputs=low_rank),
    OpCase("matrix_rank[tol,hermitian]", lambda a: T.matrix_rank(_herm(a), 1e-6, True),
           lambda a: np.linalg.matrix_rank(_np_herm(a), 1e-6, True),
           [[(4, 4)], [(2, 3, 3)]], ("float64", "complex128"), grad=False,
           make_inputs=low_rank),
    OpCase("matrix_rank[rtol]", lambda a: T.matrix_rank(a, rtol=0.5),
           lambda a: np.linalg.matrix_rank(a, rtol=0.5), [[(4, 3)]], FLOATS, grad=False,
           **U),
    OpCase("multi_dot", lambda a, b, c: T.multi_dot([a, b, c]),
           lambda a, b, c: np.linalg.multi_dot([a, b, c]),
           [[(2, 3), (3, 4), (4, 2)], [(5, 2), (2, 6), (6, 3)], [(3,), (3, 4), (4,)],
            [(3,), (3, 4), (4, 2)], [(2, 0), (0, 3), (3, 2)]], ALL, **U, **COMPLEX),
    OpCase("multi_dot[4]", lambda a, b, c, d: T.multi_dot([a, b, c, d]),
           lambda a, b, c, d: np.linalg.multi_dot([a, b, c, d]),
           [[(2, 3), (3, 4), (4, 2), (2,)]], ALL, **U),
    OpCase("multi_dot[2 vectors]", lambda a, b: T.multi_dot([a, b]),
           lambda a, b: np.linalg.multi_dot([a, b]), [[(3,), (3,)]], ALL, **U),
    OpCase("tensorsolve", T.tensorsolve, np.linalg.tensorsolve,
           [[(2, 3, 6), (2, 3)], [(6, 2, 3), (6,)], [(2, 2, 2, 2), (2, 2)]], ALL,
           make_inputs=lambda rng, dt, shapes: _tensor_wc(rng, dt, shapes), **COMPLEX),
    OpCase("tensorsolve[axes]", lambda a, b: T.tensorsolve(a, b, axes=(0,)),
           lambda a, b: np.linalg.tensorsolve(a, b, axes=(0,)), [[(6, 2, 3), (2, 3)]],
           FLOATS, make_inputs=lambda rng, dt, shapes: _tensor_wc(rng, dt, shapes, True)),
    OpCase("tensorinv", T.tensorinv, np.linalg.tensorinv, [[(2, 3, 6)], [(2, 2, 4)]], ALL,
           make_inputs=lambda rng, dt, shapes: _tensor_wc(rng, dt, shapes), **COMPLEX),
    OpCase("tensorinv[ind=1]", lambda a: T.tensorinv(a, ind=1),
           lambda a: np.linalg.tensorinv(a, ind=1), [[(6, 2, 3)]], FLOATS,
           make_inputs=lambda rng, dt, shapes: _tensor_wc(rng, dt, shapes)),
] + [
    OpCase(f"cond[p={p}]", lambda a, p=p: T.cond(a, p), lambda a, p=p: np.linalg.cond(a, p),
           [[(3, 3)], [(2, 4, 4)]] + ([[(3, 5)], [(4, 2)]] if p in (None, 2, -2) else []),
           ALL, **WC, **COMPLEX, grad_shapes=[[(3, 3)], [(2, 3, 3)]])
    for p in (None, 2, -2, "fro", "nuc", 1, -1, np.inf, -np.inf)
] + [
    OpCase("cond[singular]", T.cond, np.linalg.cond, [[(3, 3)]], FLOATS, grad=False,
           make_inputs=lambda rng, dt, shapes: [np.zeros(shapes[0], dt)]),
]


def _tensor_wc(rng, dtype, shapes, moved=False):
    """A well-conditioned matrix reshaped to the first shape (its leading
    axes the rows; with ``moved`` its first axis belongs to the columns)."""
    a_shape = shapes[0]
    n = int(np.sqrt(np.prod(a_shape)))
    m = well_conditioned(rng, dtype, [(n, n)])[0]
    if moved:
        a = np.moveaxis(m.reshape(a_shape[1:] + a_shape[:1]), -1, 0)
    else:
        a = m.reshape(a_shape)
    return [a] + uniform(rng, dtype, shapes[1:])


def _static(fn, *shapes):
    """Give the symbolic inputs static shapes (``cross`` needs its vector length)."""
    return lambda *xs: fn(*[T.reshape(x, s) for x, s in zip(xs, shapes)])


API_CASES = [
    OpCase("cross", _static(T.nlinalg.cross, (3,), (3,)), np.linalg.cross, [[(3,), (3,)]],
           ALL, **U, **COMPLEX),
    OpCase("cross[broadcast]", _static(T.nlinalg.cross, (4, 1, 3), (2, 3)), np.linalg.cross,
           [[(4, 1, 3), (2, 3)]], ALL, **U),
    OpCase("cross[axis=0]", _static(lambda a, b: T.nlinalg.cross(a, b, axis=0), (3, 2), (3, 2)),
           lambda a, b: np.linalg.cross(a, b, axis=0), [[(3, 2), (3, 2)]], ALL, **U),
    OpCase("diagonal", T.nlinalg.diagonal, np.linalg.diagonal,
           [[(3, 4)], [(2, 3, 3)], [(0, 2)]], ALL, **U, **COMPLEX),
    OpCase("diagonal[offset]", lambda a: T.nlinalg.diagonal(a, offset=-1),
           lambda a: np.linalg.diagonal(a, offset=-1), [[(3, 4)], [(2, 3, 3)]], ALL, **U),
    OpCase("outer", T.nlinalg.outer, np.linalg.outer, [[(3,), (4,)], [(0,), (2,)]], ALL,
           **U, **COMPLEX),
    OpCase("tensordot", T.nlinalg.tensordot, np.linalg.tensordot,
           [[(2, 3, 4), (3, 4, 5)], [(3, 4), (3, 4)]], ALL, **U, **COMPLEX),
    OpCase("tensordot[axes=1]", lambda a, b: T.nlinalg.tensordot(a, b, axes=1),
           lambda a, b: np.linalg.tensordot(a, b, axes=1), [[(2, 3), (3, 4)]], ALL, **U),
    OpCase("trace", T.nlinalg.trace, np.linalg.trace, [[(3, 4)], [(2, 3, 3)], [(0, 0)]],
           ALL, **U, **COMPLEX),
    OpCase("trace[offset,dtype]",
           lambda a: T.nlinalg.trace(a, offset=1, dtype="float64"),
           lambda a: np.linalg.trace(a, offset=1, dtype="float64"), [[(2, 3, 4)]],
           ("float64", "float32", "int64"), **U),
    OpCase("matrix_transpose", T.nlinalg.matrix_transpose, np.linalg.matrix_transpose,
           [[(3, 4)], [(2, 3, 4)], [(0, 2)]], ALL, **U, **COMPLEX),
    OpCase("vecdot", T.nlinalg.vecdot, np.linalg.vecdot, VEC, ALL, **U, **COMPLEX,
           grad_shapes=VEC[:3]),
    OpCase("vecdot[axis=0]", lambda a, b: T.nlinalg.vecdot(a, b, axis=0),
           lambda a, b: np.linalg.vecdot(a, b, axis=0), [[(3, 2), (3, 2)]], ALL, **U,
           **COMPLEX),
]

CASES = DECOMP_CASES + SOLVE_CASES + API_CASES
test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from tracegrad.ops import decomp, decomp_solve, linalg_api
    for module in (decomp, decomp_solve, linalg_api):
        missing = uncovered_functions(module.__all__, CASES)
        assert not missing, f"{module.__name__} functions without a table case: {missing}"


# ------------------------------------------------------------------ singular cases
def test_eigenvalue_gradients_at_repeated_eigenvalues_are_finite():
    a = T.dmatrix("a")
    av = np.diag([1.0, 1.0, 3.0])
    for w in (T.eigvalsh(a), T.eigh(a)[0]):
        g = T.grad(T.sum(w ** 2), a).eval({a: av})
        np.testing.assert_allclose(g, 2 * av, atol=1e-12)


def test_projector_onto_a_degenerate_eigenspace_has_the_right_gradient():
    from tracegrad.testing import verify_grad, verify_rop

    def cost(a):
        v = T.eigh(_herm(a))[1]
        return T.matmul(v * np.array([1.0, 1.0, 0.0]), v.T)
    point = np.diag([1.0, 1.0, 3.0])     # exactly repeated: the guard zeroes 1 / (1 - 1)
    verify_grad(cost, [point], rng=0)
    verify_rop(cost, [point], rng=0)


def test_singular_value_gradients_with_zero_and_repeated_values_are_finite():
    a = T.dmatrix("a")
    cases = [(np.diag([3.0, 2.0, 2.0]), True), (np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 0],
                                                         [0, 0, 0]]), False)]
    for av, full in cases:
        u, s, vh = T.svd(a, full_matrices=full)
        g = T.grad(s[0], a).eval({a: av})
        expected = np.zeros_like(av)
        expected[0, 0] = 1.0
        np.testing.assert_allclose(g, expected, atol=1e-12)


def test_full_svd_and_wide_qr_gradients_are_refused():
    wide = T.tensor("float64", shape=(2, 3))
    with pytest.raises(NotImplementedError, match="full_matrices"):
        T.grad(T.sum(abs(T.svd(wide)[0])), wide)
    with pytest.raises(NotImplementedError, match="wide"):
        T.grad(T.sum(T.qr(wide)[1]), wide)
    tall = T.tensor("float64", shape=(3, 2))
    with pytest.raises(NotImplementedError, match="mode='complete'"):
        T.grad(T.sum(T.qr(tall, "complete")[1]), tall)
    # unknown shapes: refused when the gradient runs on a non-square value
    a = T.dmatrix("a")
    g = T.grad(T.sum(abs(T.svd(a)[2])), a)
    np.testing.assert_equal(np.isfinite(g.eval({a: np.eye(3) + 0.1})).all(), True)
    with pytest.raises(NotImplementedError, match="non-square"):
        g.eval({a: np.ones((3, 2))})
    g = T.grad(T.sum(T.qr(a)[0]), a)
    with pytest.raises(NotImplementedError, match="wide"):
        g.eval({a: np.ones((2, 3))})


def test_lstsq_residuals_gradient_is_zero_where_they_are_empty():
    a, b = T.dmatrix("a"), T.dvector("b")
    g = T.grad(T.sum(T.lstsq(a, b)[1]), [a, b])
    values = {a: np.random.default_rng(0).normal(size=(3, 4)), b: np.ones(3)}
    np.testing.assert_array_equal(g[0].eval(values), np.zeros((3, 4)))
    np.testing.assert_array_equal(g[1].eval(values), np.zeros(3))


def test_lstsq_gradient_is_the_normal_equations_one():
    # full column rank: x = (A^T A)^-1 A^T b
    rng = np.random.default_rng(3)
    av, bv = rng.normal(size=(5, 3)), rng.normal(size=5)
    a, b = T.dmatrix("a"), T.dvector("b")
    x = T.lstsq(a, b)[0]
    x_normal = T.solve(T.matmul(a.T, a), T.matmul(a.T, b))
    for wrt in (a, b):
        got = T.grad(T.sum(x * [1.0, -2.0, 0.5]), wrt).eval({a: av, b: bv})
        want = T.grad(T.sum(x_normal * [1.0, -2.0, 0.5]), wrt).eval({a: av, b: bv})
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn,np_fn", [
    (T.eigvalsh, np.linalg.eigvalsh), (T.eigvals, np.linalg.eigvals),
    (lambda a: T.svd(a)[1], lambda a: np.linalg.svd(a)[1]),
    (lambda a: T.qr(a)[1], lambda a: np.linalg.qr(a)[1]),
    (T.cond, np.linalg.cond), (T.matrix_rank, np.linalg.matrix_rank),
    (lambda a: T.lstsq(a, a)[0], lambda a: np.linalg.lstsq(a, a)[0]),
])
def test_nan_input_behaves_like_numpy(fn, np_fn):
    a = T.dmatrix("a")
    value = np.full((3, 3), np.nan)
    try:
        want = np_fn(value)
    except np.linalg.LinAlgError:
        with pytest.raises(np.linalg.LinAlgError):
            fn(a).eval({a: value})
    else:
        np.testing.assert_array_equal(fn(a).eval({a: value}), want)


@pytest.mark.parametrize("fn", [lambda a: T.svd(a)[0], lambda a: T.lstsq(a, a)[0],
                                lambda a: T.lstsq(a, a)[1]])
def test_inf_input_raises_where_numpy_never_returns(fn):
    # NumPy's SVD with vectors, lstsq and pinv loop forever on an inf entry
    a = T.dmatrix("a")
    value = np.eye(3)
    value[0, 0] = np.inf
    with pytest.raises(np.linalg.LinAlgError, match="infs or NaNs"):
        fn(a).eval({a: value})


# ------------------------------------------------------------------ results, dispatch
def test_named_tuples_and_dtypes():
    a = T.tensor("float32", shape=(2, 4, 3))
    res = T.svd(a, full_matrices=False)
    assert res._fields == ("U", "S", "Vh")
    assert [v.type.shape for v in res] == [(2, 4, 3), (2, 3), (2, 3, 3)]
    assert [v.dtype for v in res] == ["float32"] * 3
    assert [v.type.shape for v in T.svd(a)] == [(2, 4, 4), (2, 3), (2, 3, 3)]
    q, r = T.qr(a)
    assert (q.type.shape, r.type.shape) == ((2, 4, 3), (2, 3, 3))
    sq = T.tensor("float32", shape=(2, 3, 3))
    assert T.eigh(sq)._fields == ("eigenvalues", "eigenvectors")
    assert T.eigh(T.tensor("complex64", shape=(3, 3))).eigenvalues.dtype == "float32"
    # eig is complex even where NumPy would return real arrays (real spectrum)
    w, v = T.eig(sq)
    assert (w.dtype, v.dtype, w.type.shape) == ("complex64", "complex64", (2, 3))
    m = T.dmatrix("m")
    assert T.eig(m)[0].eval({m: np.diag([1.0, 2.0])}).dtype == np.complex128
    assert T.matrix_rank(T.dtensor3()).dtype == "int64"


def test_numpy_dispatch():
    rng = np.random.default_rng(0)
    a, b, v = T.dmatrix("a"), T.dmatrix("b"), T.dvector("v")
    av = rng.normal(size=(3, 3)) + 4 * np.eye(3)
    bv, vv = rng.normal(size=(3, 2)), rng.normal(size=3)
    sv = av + av.T
    cases = [
        (np.linalg.eigh(a).eigenvalues, np.linalg.eigh(sv).eigenvalues, sv),
        (np.linalg.eigvalsh(a, UPLO="U"), np.linalg.eigvalsh(sv, UPLO="U"), sv),
        (np.linalg.eigvals(a), np.linalg.eigvals(sv).astype(complex), sv),
        (np.linalg.eig(a)[1], np.linalg.eig(sv)[1].astype(complex), sv),
        (np.linalg.svd(a)[0], np.linalg.svd(av)[0], av),
        (np.linalg.svd(a, compute_uv=False), np.linalg.svd(av, compute_uv=False), av),
        (np.linalg.qr(a).R, np.linalg.qr(av).R, av),
        (np.linalg.qr(a, mode="r"), np.linalg.qr(av, mode="r"), av),
        (np.linalg.matrix_rank(a), np.linalg.matrix_rank(av), av),
        (np.linalg.multi_dot([a, a, v]), np.linalg.multi_dot([av, av, vv]), av),
        (np.linalg.cond(a), np.linalg.cond(av), av),
        (np.linalg.cond(a, "fro"), np.linalg.cond(av, "fro"), av),
        (np.linalg.tensorinv(a, ind=1), np.linalg.tensorinv(av, ind=1), av),
        (np.linalg.tensorsolve(a, v), np.linalg.tensorsolve(av, vv), av),
        (np.linalg.diagonal(a, offset=1), np.linalg.diagonal(av, offset=1), av),
        (np.linalg.trace(a), np.linalg.trace(av), av),
        (np.linalg.matrix_transpose(a), np.linalg.matrix_transpose(av), av),
        (np.linalg.vecdot(a, v), np.linalg.vecdot(av, vv), av),
        (np.linalg.outer(v, v), np.linalg.outer(vv, vv), av),
        (np.linalg.tensordot(a, a, axes=1), np.linalg.tensordot(av, av, axes=1), av),
    ]
    for got, want, value in cases:
        assert isinstance(got, T.TensorVariable)
        np.testing.assert_allclose(got.eval({a: value, v: vv}),
                                   want, rtol=1e-10, atol=1e-12)
    x, resid, rank, s = np.linalg.lstsq(b, v)
    ref = np.linalg.lstsq(bv, vv)
    for got, want in zip((x, resid, rank, s), ref):
        np.testing.assert_allclose(got.eval({b: bv, v: vv}),
                                   want, rtol=1e-10)
    c = T.tensor("float64", shape=(3,))
    np.testing.assert_allclose(np.linalg.cross(c, c).eval({c: vv}), np.zeros(3))


def test_theano_paths():
    import tracegrad.tensor.nlinalg as nlinalg
    assert nlinalg.eigh is T.eigh and nlinalg.svd is T.svd and nlinalg.qr is T.qr
    assert nlinalg.lstsq is T.lstsq and nlinalg.cond is T.cond
    # the array-API variants live in T.nlinalg only (T.diagonal stays np.diagonal)
    assert nlinalg.diagonal is not T.diagonal and not hasattr(T, "vecdot")


@pytest.mark.parametrize("build,error,match", [
    (lambda: T.eigh(T.dvector()), np.linalg.LinAlgError, "two-dimensional"),
    (lambda: T.eigh(T.tensor("float64", shape=(3, 4))), np.linalg.LinAlgError, "square"),
    (lambda: T.eigh(T.dmatrix(), UPLO="X"), ValueError, "UPLO"),
    (lambda: T.eig(T.tensor("float16", shape=(3, 3))), TypeError, "float16"),
    (lambda: T.svd(T.dvector()), np.linalg.LinAlgError, "two-dimensional"),
    (lambda: T.qr(T.dmatrix(), "raw"), ValueError, "raw"),
    (lambda: T.qr(T.dmatrix(), "economic"), ValueError, "mode"),
    (lambda: T.lstsq(T.dtensor3(), T.dvector()), np.linalg.LinAlgError, "two-dimensional"),
    (lambda: T.lstsq(T.tensor("float64", shape=(3, 2)), T.tensor("float64", shape=(4,))),
     np.linalg.LinAlgError, "incompatible"),
    (lambda: T.multi_dot([T.dmatrix()]), ValueError, "two arrays"),
    (lambda: T.multi_dot([T.dmatrix(), T.dtensor3(), T.dmatrix()]), np.linalg.LinAlgError,
     "array 1"),
    (lambda: T.tensorinv(T.dtensor3(), ind=0), ValueError, "ind"),
    (lambda: T.tensorsolve(T.tensor("float64", shape=(2, 3, 4)),
                           T.tensor("float64", shape=(2, 3))), np.linalg.LinAlgError, "square"),
    (lambda: T.cond(T.tensor("float64", shape=(0, 3))), np.linalg.LinAlgError, "empty"),
    (lambda: T.cond(T.tensor("float64", shape=(2, 3)), 1), np.linalg.LinAlgError, "square"),
    (lambda: T.matrix_rank(T.dmatrix(), tol=T.dscalar()), TypeError, "tol"),
    (lambda: T.nlinalg.cross(T.tensor("float64", shape=(2,)), T.tensor("float64", shape=(2,))),
     ValueError, "3-dimensional"),
    (lambda: T.nlinalg.outer(T.dmatrix(), T.dvector()), ValueError, "one-dimensional"),
    (lambda: T.nlinalg.matrix_transpose(T.dvector()), ValueError, "2-dimensional"),
])
def test_build_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_second_derivatives_go_through_the_decompositions():
    from tracegrad.testing import verify_grad
    rng = np.random.default_rng(5)

    def grad_of(cost):
        return lambda a: T.grad(cost(a), a)
    costs = [lambda a: T.sum(T.eigvalsh(_herm(a)) ** 3),
             lambda a: T.sum(abs(T.eigh(_herm(a))[1]) * T.arange(3)),
             lambda a: T.sum(T.svd(a, full_matrices=False)[1] ** 3),
             lambda a: T.sum(T.qr(a)[0] * T.arange(2)),
             lambda a: T.sum(T.real(T.eigvals(a)) ** 3)]
    shapes = [(3, 3), (3, 3), (4, 2), (4, 2), (3, 3)]
    for cost, shape in zip(costs, shapes):
        verify_grad(grad_of(cost), [rng.normal(size=shape)], rng=rng)
