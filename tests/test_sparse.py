"""``tracegrad.sparse`` (Theano's ``theano.sparse``) against scipy.sparse.

Forward: every op per format (csc, csr) and dtype (float64, float32)
against the same computation in scipy/NumPy, including the result's
format, dtype and stored pattern. Gradients: central finite differences
of a random projection of the (dense) result, taken with respect to the
stored values of each sparse input (``CSM`` of a data vector: the
structured gradient Theano gives) and to every dense input.
"""
import pickle
import subprocess
import sys

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

import tracegrad as tg  # noqa: E402
import tracegrad.sparse as S  # noqa: E402
import tracegrad.tensor as T  # noqa: E402

FORMATS = ["csc", "csr"]
DTYPES = ["float64", "float32"]
# float32 results are compared with float32 rounding; float64 near exactly
RTOL = {"float64": 1e-12, "float32": 2e-6}


def rand_sparse(m, n, fmt, dtype="float64", seed=0, low=0.1, high=0.9, density=0.4):
    rng = np.random.default_rng(seed)
    dense = rng.uniform(low, high, (m, n)) * (rng.uniform(size=(m, n)) < density)
    dense[0, 0] = low + (high - low) / 3   # never an empty matrix
    return sp.csc_matrix(dense.astype(dtype)) if fmt == "csc" else \
        sp.csr_matrix(dense.astype(dtype))


def rand_dense(shape, dtype="float64", seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def check_sparse(got, want, fmt, dtype):
    """``got`` is a scipy sparse matrix of ``fmt``/``dtype`` equal to ``want``."""
    assert sp.issparse(got) and got.format == fmt and got.dtype == np.dtype(dtype)
    want = want.toarray() if sp.issparse(want) else np.asarray(want)
    np.testing.assert_allclose(got.toarray(), want, rtol=RTOL[dtype], atol=RTOL[dtype])


# ------------------------------------------------------------ types and values
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_input_passes_through_a_function(fmt, dtype):
    x = getattr(S, f"{fmt}_matrix")("x", dtype=dtype)
    assert x.type == S.SparseType(fmt, dtype) and x.format == fmt and x.dtype == dtype
    assert x.ndim == 2
    a = rand_sparse(5, 4, fmt, dtype)
    for mode in ("fast_run", "fast_compile"):
        out = tg.function([x], x, mode=mode)(a)
        check_sparse(out, a, fmt, dtype)
        assert out is not a     # the caller's matrix is never returned as is
    # another format is converted; the shape is a symbolic vector
    check_sparse(tg.function([x], x)(a.asformat("csr" if fmt == "csc" else "csc")),
                 a, fmt, dtype)
    np.testing.assert_array_equal(tg.function([x], x.shape)(a), [5, 4])


def test_constructors_and_as_sparse_variable():
    assert S.csr_matrix("x").dtype == tg.config.floatX
    assert S.csc_dmatrix("y").type == S.SparseType("csc", "float64")
    assert S.csr_fmatrix().dtype == "float32"
    a = rand_sparse(3, 3, "csr")
    c = S.as_sparse_variable(a)
    assert isinstance(c, S.SparseConstant) and c.format == "csr"
    np.testing.assert_allclose(tg.function([], c.toarray())(), a.toarray())
    assert S.as_sparse_variable(c) is c
    assert S.as_sparse_or_tensor_variable(a).type == c.type
    assert isinstance(S.as_sparse_or_tensor_variable(np.ones(2)).type, T.TensorType)
    coo = S.as_sparse_variable(a.tocoo())   # other formats become csr
    assert coo.format == "csr"


@pytest.mark.parametrize("shape", [(3, 4), (0, 4)])
def test_empty_and_zero_size_matrices(shape):
    x, w = S.csr_dmatrix("x"), T.dmatrix("w")
    e = sp.csr_matrix(shape)
    wv = rand_dense((4, 2))
    outs = [S.sp_sum(x), S.sp_sum(x, 0), S.structured_dot(x, w), S.sqr(x), x * x, x + x,
            x.T, S.sampling_dot(T.ones((shape[0], 2)), w, x)]
    got = tg.function([x, w], outs)(e, wv)
    assert got[0] == 0 and got[1].shape == (4,) and not got[1].any()
    np.testing.assert_array_equal(got[2], np.zeros((shape[0], 2)))
    for g in got[3:]:
        assert sp.issparse(g) and g.nnz == 0
    assert got[6].shape == shape[::-1] and got[7].shape == shape
    gx, gw = tg.function([x, w], tg.grad(S.structured_dot(x, w).sum(), [x, w]))(e, wv)
    assert gx.nnz == 0 and gx.shape == shape
    np.testing.assert_array_equal(gw, np.zeros((4, 2)))


def test_inputs_and_shared_values_are_never_overwritten():
    # csm_properties' arrays are views of the input (view_map): the in-place
    # planner must not write the elementwise results into them
    x = S.csr_dmatrix("x")
    a = rand_sparse(4, 4, "csr")
    before = a.copy()
    tg.function([x], [S.sqr(x), S.neg(S.structured_add(x, 1.0)),
                      S.sp_sum(S.sin(x) * 2.0)])(a)
    np.testing.assert_array_equal(a.toarray(), before.toarray())
    s = tg.shared(before.copy())
    tg.function([], S.neg(s))()
    np.testing.assert_array_equal(s.get_value().toarray(), before.toarray())


def test_scipy_sparse_arrays_are_taken_and_matrices_returned():
    x = S.csr_dmatrix("x")
    out = tg.function([x], S.sqr(x))(sp.csr_array(np.eye(3) * 2))
    assert type(out) is sp.csr_matrix
    np.testing.assert_array_equal(out.toarray(), np.eye(3) * 4)


# ------------------------------------------------------------ unary elementwise
UNARY = {  # name -> NumPy function on the stored values
    "sqr": np.square, "sqrt": np.sqrt, "abs_": np.abs, "neg": np.negative, "sin": np.sin,
    "tan": np.tan, "arcsin": np.arcsin, "arctan": np.arctan, "sinh": np.sinh,
    "tanh": np.tanh, "arcsinh": np.arcsinh, "arctanh": np.arctanh, "expm1": np.expm1,
    "log1p": np.log1p, "deg2rad": np.deg2rad, "rad2deg": np.rad2deg, "floor": np.floor,
    "ceil": np.ceil, "trunc": np.trunc, "rint": np.rint, "sgn": np.sign,
    "structured_sigmoid": lambda v: 1 / (1 + np.exp(-v)), "structured_exp": np.exp,
    "structured_log": np.log, "sp_ones_like": np.ones_like,
}
# no derivative, or zero almost everywhere
NOT_SMOOTH = {"floor", "ceil", "trunc", "rint", "sgn", "sp_ones_like"}


def _map_stored(a, fn):
    out = a.copy()
    out.data = fn(out.data).astype(a.dtype)
    return out


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_forward_keeps_the_pattern(name, fmt, dtype):
    x = S.SparseType(fmt, dtype)("x")
    y = getattr(S, name)(x)
    assert y.type == x.type
    a = rand_sparse(6, 5, fmt, dtype, seed=3, low=-0.9) if name not in (
        "sqrt", "structured_log", "log1p") else rand_sparse(6, 5, fmt, dtype, seed=3)
    got = tg.function([x], y)(a)
    check_sparse(got, _map_stored(a, UNARY[name]), fmt, dtype)
    np.testing.assert_array_equal(got.indices, a.indices)
    np.testing.assert_array_equal(got.indptr, a.indptr)


def test_structured_functions_with_arguments():
    x = S.csr_dmatrix("x")
    a = rand_sparse(4, 6, "csr", seed=5)
    cases = {
        S.structured_pow(x, 3): _map_stored(a, lambda v: v ** 3),
        S.structured_minimum(x, 0.5): _map_stored(a, lambda v: np.minimum(v, 0.5)),
        S.structured_maximum(x, 0.5): _map_stored(a, lambda v: np.maximum(v, 0.5)),
        S.structured_add(x, 2.0): _map_stored(a, lambda v: v + 2),
    }
    outs = tg.function([x], list(cases))(a)
    for got, want in zip(outs, cases.values()):
        check_sparse(got, want, "csr", "float64")
        assert got.nnz == a.nnz


def test_sp_zeros_like_stores_nothing():
    x = S.csc_fmatrix("x")
    a = rand_sparse(3, 7, "csc", "float32")
    z = tg.function([x], S.sp_zeros_like(x))(a)
    assert z.nnz == 0 and z.shape == a.shape and z.format == "csc" and z.dtype == np.float32


# ------------------------------------------------------------ structure ops
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conversions_transpose_and_csm(fmt, dtype):
    x = S.SparseType(fmt, dtype)("x")
    a = rand_sparse(4, 7, fmt, dtype)
    d = S.dense_from_sparse(x)
    assert S.todense is S.dense_from_sparse and S.CSC == S.CSM("csc")
    other = "csr" if fmt == "csc" else "csc"
    data, indices, indptr, shape = S.csm_properties(x)
    f = tg.function([x], [d, S.csr_from_dense(d), S.csc_from_dense(d), S.transpose(x), x.T,
                          data, indices, indptr, shape,
                          S.CSM(fmt)(data * 2, indices, indptr, shape),
                          S.CSM(other)(data, indices, indptr, shape[::-1])])
    (dense, csr, csc, t1, t2, gdata, gind, gptr, gshape, doubled, flipped) = f(a)
    assert dense.dtype == np.dtype(dtype) and type(dense) is np.ndarray
    np.testing.assert_array_equal(dense, a.toarray())
    check_sparse(csr, a, "csr", dtype)
    check_sparse(csc, a, "csc", dtype)
    check_sparse(t1, a.T, other, dtype)
    check_sparse(t2, a.T, other, dtype)
    np.testing.assert_array_equal(gdata, a.data)
    np.testing.assert_array_equal(gind, a.indices)
    np.testing.assert_array_equal(gptr, a.indptr)
    np.testing.assert_array_equal(gshape, a.shape)
    check_sparse(doubled, a * 2, fmt, dtype)
    check_sparse(flipped, a.T, other, dtype)   # the same arrays read the other way


@pytest.mark.parametrize("fmt", FORMATS)
def test_hstack_and_vstack(fmt):
    x, y = S.SparseType(fmt, "float64")("x"), S.SparseType(fmt, "float32")("y")
    a, b = rand_sparse(3, 4, fmt), rand_sparse(3, 2, fmt, "float32", seed=2)
    h = S.basic.hstack([x, y])
    assert h.format == "csc" and h.dtype == "float64"
    c = rand_sparse(5, 4, fmt, "float32", seed=4)
    z = S.SparseType(fmt, "float32")("z")
    v = S.basic.vstack([x, z], format=fmt, dtype="float32")
    hv, vv = tg.function([x, y, z], [h, v])(a, b, c)
    check_sparse(hv, sp.hstack([a, b]), "csc", "float64")
    check_sparse(vv, sp.vstack([a, c]), fmt, "float32")


# ------------------------------------------------------------ add, mul, scaling
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_add_sub_mul(fmt, dtype):
    x, y = S.SparseType(fmt, dtype)("x"), S.SparseType(fmt, dtype)("y")
    w = T.matrix("w", dtype=dtype)
    s = T.scalar("s", dtype=dtype)
    v = T.vector("v", dtype=dtype)
    a = rand_sparse(4, 5, fmt, dtype, seed=1, density=0.6)
    b = rand_sparse(4, 5, fmt, dtype, seed=2, density=0.6)
    assert a.multiply(b).nnz >= 5       # a real intersection for x * y
    wd = rand_dense((4, 5), dtype)
    sd = np.asarray(1.5, dtype)
    rows, cols = rand_dense((4,), dtype, 7), rand_dense((5,), dtype, 8)
    vec = T.vector("u", dtype=dtype)
    outs = [x + y, S.add(x, w), S.add(w, x), x - y, x - w, x * y, S.mul(x, w), S.mul(w, x),
            x * s, S.row_scale(x, v), S.col_scale(x, vec)]
    got = tg.function([x, y, w, s, v, vec], outs)(a, b, wd, sd, rows, cols)
    wants = [a + b, a.toarray() + wd, wd + a.toarray(), a - b, a.toarray() - wd,
             a.multiply(b), a.multiply(wd), a.multiply(wd), a * sd,
             a.multiply(rows[:, None]), a.multiply(cols[None, :])]
    for k, (g, want) in enumerate(zip(got, wants)):
        if sp.issparse(g):
            check_sparse(g, want, fmt, dtype)
        else:
            assert g.dtype == np.dtype(dtype), k
            np.testing.assert_allclose(g, want, rtol=RTOL[dtype])
    assert got[6].nnz <= a.nnz     # sparse * dense keeps x's pattern


def test_mixed_dtypes_upcast():
    x = S.csr_fmatrix("x")
    y = S.csr_dmatrix("y")
    assert (x + y).dtype == "float64" and (x * y).dtype == "float64"
    assert S.structured_dot(x, T.dmatrix()).dtype == "float64"


# ------------------------------------------------------------ products and sums
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_products(fmt, dtype):
    x = S.SparseType(fmt, dtype)("x")
    y = S.SparseType(fmt, dtype)("y")
    w = T.matrix("w", dtype=dtype)
    u = T.matrix("u", dtype=dtype)
    a, b = rand_sparse(4, 6, fmt, dtype, 1), rand_sparse(6, 3, fmt, dtype, 2)
    wd, ud = rand_dense((6, 3), dtype, 3), rand_dense((2, 4), dtype, 4)
    ad = a.toarray()
    m1, m2 = rand_dense((4, 5), dtype, 6), rand_dense((6, 5), dtype, 7)
    k1, k2 = T.matrix("k1", dtype=dtype), T.matrix("k2", dtype=dtype)
    outs = [S.structured_dot(x, w), S.structured_dot(u, x), S.structured_dot(x, y),
            S.dot(x, w), S.dot(u, x), S.dot(x, y), S.true_dot(x, y), S.true_dot(x, w),
            S.true_dot(u, x), S.sampling_dot(k1, k2, x), x @ w]
    got = tg.function([x, y, w, u, k1, k2], outs)(a, b, wd, ud, m1, m2)
    wants = [ad @ wd, ud @ ad, ad @ b.toarray(), ad @ wd, ud @ ad, ad @ b.toarray(),
             ad @ b.toarray(), ad @ wd, ud @ ad, None, ad @ wd]
    wants[9] = a.multiply(m1 @ m2.T)
    for k, (g, want) in enumerate(zip(got, wants)):
        if sp.issparse(g):
            assert g.format == outs[k].format, k
            check_sparse(g, want, g.format, dtype)
        else:
            assert type(g) is np.ndarray and g.dtype == np.dtype(dtype), k
            np.testing.assert_allclose(g, want, rtol=10 * RTOL[dtype], atol=10 * RTOL[dtype])
    assert outs[2].format == fmt and outs[6].format == fmt
    np.testing.assert_array_equal(got[9].indices, a.indices)   # p's pattern exactly


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_sp_sum(fmt, dtype, axis):
    x = S.SparseType(fmt, dtype)("x")
    a = rand_sparse(5, 3, fmt, dtype)
    got = tg.function([x], S.sp_sum(x, axis=axis))(a)
    want = np.asarray(a.sum(axis=axis)).ravel() if axis is not None else a.sum()
    assert got.dtype == np.dtype(dtype) and got.ndim == (0 if axis is None else 1)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype])


# ------------------------------------------------------------ gradients
def _fd_check(cost_fn, values, analytic, eps=1e-6, rtol=1e-6, atol=1e-7):
    """Central differences of ``cost_fn(*values)`` for each array in
    ``values`` against ``analytic`` (same structure)."""
    for k, (v, g) in enumerate(zip(values, analytic)):
        num = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            up = [w.copy() for w in values]
            down = [w.copy() for w in values]
            up[k][i] += eps
            down[k][i] -= eps
            num[i] = (cost_fn(*up) - cost_fn(*down)) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=rtol, atol=atol, err_msg=f"input {k}")


def _grad_case(fmt, build, sparse_values, dense_values):
    """Gradient of ``sum(W * dense(build(*sparse, *dense)))`` with respect to
    the stored values of every sparse input and to every dense input."""
    datas = [T.dvector(f"d{k}") for k in range(len(sparse_values))]
    sparse_vars = [S.CSM(a.format)(d, a.indices, a.indptr, np.array(a.shape))
                   for d, a in zip(datas, sparse_values)]
    dense_vars = [T.dmatrix(f"w{k}") if np.ndim(v) == 2 else T.dvector(f"w{k}")
                  for k, v in enumerate(dense_values)]
    out = build(*sparse_vars, *dense_vars)
    dense_out = S.dense_from_sparse(out) if S.basic.is_sparse_variable(out) else out
    inputs = datas + dense_vars
    values = [a.data.copy() for a in sparse_values] + [np.asarray(v, float)
                                                          for v in dense_values]
    shape = tg.function(inputs, dense_out)(*values).shape
    weights = np.random.default_rng(11).uniform(-1, 1, shape)
    cost = (dense_out * weights).sum()
    f_cost = tg.function(inputs, cost)
    grads = tg.function(inputs, tg.grad(cost, inputs))(*values)
    _fd_check(lambda *v: float(f_cost(*v)), values, grads)
    del fmt


SMOOTH_UNARY = sorted(set(UNARY) - NOT_SMOOTH)
BINARY_GRADS = {
    "structured_dot": (lambda x, w: S.structured_dot(x, w), 1, [(5, 3)]),
    "structured_dot_dense_left": (lambda x, u: S.structured_dot(u, x), 1, [(2, 4)]),
    "dot": (lambda x, w: S.dot(x, w), 1, [(5, 3)]),
    "dot_sparse_sparse": (lambda x, y: S.dot(x, y.T), 2, []),
    "true_dot": (lambda x, w: S.true_dot(x, w), 1, [(5, 3)]),
    "true_dot_sparse_sparse": (lambda x, y: S.true_dot(x, S.transpose(y)), 2, []),
    "mul_ss": (lambda x, y: x * y, 2, []),
    "mul_sd": (lambda x, w: S.mul(x, w), 1, [(4, 5)]),
    "mul_scalar": (lambda x, s: x * s.sum(), 1, [(1, 1)]),
    "add_ss": (lambda x, y: x + y, 2, []),
    "add_sd": (lambda x, w: S.add(x, w), 1, [(4, 5)]),
    "sub_ss": (lambda x, y: x - y, 2, []),
    "row_scale": (lambda x, v: S.row_scale(x, v), 1, [(4,)]),
    "col_scale": (lambda x, v: S.col_scale(x, v), 1, [(5,)]),
    "sp_sum_all": (lambda x: S.sp_sum(x), 1, []),
    "sp_sum_0_sparse_grad": (lambda x: S.sp_sum(x, 0, sparse_grad=True), 1, []),
    "sp_sum_1": (lambda x: S.sp_sum(x, 1), 1, []),
    "sampling_dot": (lambda p, m1, m2: S.sampling_dot(m1, m2, p), 1, [(4, 3), (5, 3)]),
    "transpose": (lambda x: x.T, 1, []),
    "hstack": (lambda x, y: S.basic.hstack([x, y]), 2, []),
    "vstack": (lambda x, y: S.basic.vstack([x, y], format="csc"), 2, []),
    "csr_from_dense": (lambda x, w: S.csr_from_dense(w * S.dense_from_sparse(x)), 1,
                       [(4, 5)]),
    "structured_pow": (lambda x: S.structured_pow(x, 3), 1, []),
}


@pytest.mark.parametrize("name", SMOOTH_UNARY)
def test_unary_gradients_on_stored_values(name):
    low = -0.8 if name not in ("sqrt", "structured_log", "log1p") else 0.1
    _grad_case("csr", getattr(S, name), [rand_sparse(4, 5, "csr", low=low, high=0.8)], [])


@pytest.mark.parametrize("name", sorted(BINARY_GRADS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_gradients(name, fmt):
    build, n_sparse, dense_shapes = BINARY_GRADS[name]
    sparse_values = [rand_sparse(4, 5, fmt, seed=k + 1, low=-0.9) for k in range(n_sparse)]
    dense_values = [rand_dense(s, seed=20 + k) for k, s in enumerate(dense_shapes)]
    _grad_case(fmt, build, sparse_values, dense_values)


@pytest.mark.parametrize("fmt", FORMATS)
def test_rop_and_second_order_through_sparse_ops(fmt):
    a = rand_sparse(4, 5, fmt, seed=6, low=-0.9)
    d, w = T.dvector("d"), T.dmatrix("w")
    x = S.CSM(fmt)(d, a.indices, a.indptr, np.array(a.shape))
    out = S.structured_dot(S.sin(x), w)
    ed, ew = T.dvector("ed"), T.dmatrix("ew")
    dv, wv = a.data.copy(), rand_dense((5, 3), seed=7)
    edv, ewv = rand_dense(dv.shape, seed=8), rand_dense((5, 3), seed=9)
    f = tg.function([d, w], out)
    got = tg.function([d, w, ed, ew], tg.Rop(out, [d, w], [ed, ew]))(dv, wv, edv, ewv)
    eps = 1e-6
    num = (f(dv + eps * edv, wv + eps * ewv) - f(dv - eps * edv, wv - eps * ewv)) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)
    # Hessian-vector product of sum((x * x) ** 2) over the stored values: 12 d^2 v
    cost = (S.dense_from_sparse(S.mul(x, x)) ** 2).sum()
    hv = tg.grad((tg.grad(cost, d) * ed).sum(), d)
    np.testing.assert_allclose(tg.function([d, ed], hv)(dv, edv), 12 * dv ** 2 * edv,
                               rtol=1e-12)


def test_gradient_with_respect_to_a_sparse_variable_is_structured():
    # Theano: the gradient of structured_dot, mul and sp_sum(sparse_grad=True)
    # with respect to a sparse input is sparse with that input's pattern.
    x = S.csc_dmatrix("x")
    w = T.dmatrix("w")
    a = rand_sparse(4, 5, "csc", seed=3)
    wv = rand_dense((5, 2), seed=4)
    g_dot = tg.grad(S.structured_dot(x, w).sum(), x)
    g_mul = tg.grad(S.sp_sum(S.mul(x, x), sparse_grad=True), x)
    assert g_dot.type == x.type and g_mul.type == x.type
    gd, gm = tg.function([x, w], [g_dot, g_mul])(a, wv)
    for g in (gd, gm):
        np.testing.assert_array_equal(g.indices, a.indices)
        np.testing.assert_array_equal(g.indptr, a.indptr)
    # d/dx_ij sum(x @ w) = sum_k w_jk at stored (i, j); d/dx sum(x*x) = 2x
    rows, cols = a.nonzero()
    np.testing.assert_allclose(gd.toarray()[rows, cols], wv.sum(axis=1)[cols])
    np.testing.assert_allclose(gm.toarray(), 2 * a.toarray())


def test_regular_dot_gradient_is_dense_everywhere():
    x = S.csr_dmatrix("x")
    w = T.dmatrix("w")
    g = tg.grad(S.dot(x, w).sum(), x)
    assert isinstance(g.type, T.TensorType)
    a, wv = rand_sparse(3, 4, "csr"), rand_dense((4, 2))
    np.testing.assert_allclose(tg.function([x, w], g)(a, wv), np.tile(wv.sum(axis=1), (3, 1)))


def test_dense_operators_defer_to_the_sparse_operand():
    # Theano: a tensor's operator returns NotImplemented for a sparse operand
    x, w = S.csr_dmatrix("x"), T.dmatrix("w")
    a, wv = rand_sparse(3, 4, "csr"), rand_dense((3, 4))
    outs = [w + x, w - x, w * x, w.T @ x, x.sum(), x.sum(axis=1)]
    assert [isinstance(o.type, S.SparseType) for o in outs] == [False, False, True, False,
                                                                 False, False]
    got = tg.function([x, w], outs)(a, wv)
    ad = a.toarray()
    for g, want in zip(got, [wv + ad, wv - ad, wv * ad, wv.T @ ad, ad.sum(), ad.sum(axis=1)]):
        np.testing.assert_allclose(g.toarray() if sp.issparse(g) else g, want)


def test_dense_and_sparse_gradient_terms_add_up():
    # sp_sum(sparse_grad=True) gives a sparse term, dot a dense one
    x, w = S.csr_dmatrix("x"), T.dmatrix("w")
    a, wv = rand_sparse(3, 3, "csr"), rand_dense((3, 3))
    for cost in (S.sp_sum(x, sparse_grad=True) + S.dot(x, w).sum(),
                 S.dot(x, w).sum() + S.sp_sum(x, sparse_grad=True)):
        g = tg.function([x, w], tg.grad(cost, x))(a, wv)
        np.testing.assert_allclose(g, np.tile(wv.sum(axis=1), (3, 1)) + (a.toarray() != 0))


def test_functions_with_sparse_values_pickle():
    x, w = S.csc_dmatrix("x"), T.dmatrix("w")
    f = tg.function([x, w], [S.structured_dot(x, w), S.sqr(x)])
    a, wv = rand_sparse(3, 4, "csc"), rand_dense((4, 2))
    g = pickle.loads(pickle.dumps(f))
    for want, got in zip(f(a, wv), g(a, wv)):
        if sp.issparse(want):
            check_sparse(got, want, "csc", "float64")
        else:
            np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ shared variables
def test_sparse_shared_variable_get_set_and_updates():
    a = rand_sparse(3, 4, "csr")
    s = tg.shared(a, name="s")
    assert isinstance(s, S.SparseSharedVariable) and s.type == S.csr_dmatrix
    got = s.get_value()
    check_sparse(got, a, "csr", "float64")
    got.data[:] = 0                      # a copy: the shared value is unchanged
    check_sparse(s.get_value(), a, "csr", "float64")
    f = tg.function([], S.sp_sum(s), updates=[(s, s * 2.0)])
    assert np.isclose(f(), a.sum()) and np.isclose(f(), 2 * a.sum())
    check_sparse(s.get_value(), a * 4, "csr", "float64")
    s.set_value(a.tocsc())               # converted to the variable's format
    check_sparse(s.get_value(borrow=True), a, "csr", "float64")
    with pytest.raises(TypeError, match="without loss of precision"):
        s.set_value(a.astype("complex128"))
    with pytest.raises(TypeError, match="scipy.sparse"):
        s.set_value(a.toarray())
    c = S.shared(a, format="csc", name="c")
    assert c.format == "csc"
    assert np.isclose(S.sp_sum(c).eval(), a.sum())


# ------------------------------------------------------------ Theano's tutorial
def test_tutorial_dense_and_back():
    x = S.csc_matrix(name="x", dtype="float32")
    y = S.dense_from_sparse(x)
    z = S.csc_from_dense(y)
    a = sp.csc_matrix(np.asarray([[0, 1, 1], [0, 0, 0], [1, 0, 0]], dtype="float32"))
    out = tg.function([x], z)(a)
    check_sparse(out, a, "csc", "float32")


def test_tutorial_csm_properties_read_as_csr_transpose():
    x = S.csc_matrix(name="x", dtype="float32")
    data, indices, indptr, shape = S.csm_properties(x)
    y = S.CSR(data, indices, indptr, shape)
    f = tg.function([x], y)
    a = sp.csc_matrix(np.asarray([[0, 1, 1], [0, 0, 0], [1, 0, 0]], dtype="float32"))
    np.testing.assert_array_equal(f(a).toarray(), [[0, 0, 1], [1, 0, 0], [1, 0, 0]])


def test_tutorial_structured_add():
    x = S.csc_matrix(name="x", dtype="float32")
    y = S.structured_add(x, 2)
    f = tg.function([x], y)
    a = sp.csc_matrix(np.asarray([[0, 0, -1], [0, -2, 1], [3, 0, 0]], dtype="float32"))
    np.testing.assert_array_equal(f(a).toarray(), [[0, 0, 1], [0, 0, 3], [5, 0, 0]])
    assert f(a).dtype == np.float32


def test_tutorial_transpose_and_structured_dot_gradient():
    x = S.csc_matrix("x", dtype="float64")
    y = T.dmatrix("y")
    z = S.structured_dot(x, y)
    gy = tg.grad(z.sum(), y)
    a = sp.csc_matrix(np.asarray([[1.0, 0, 2], [0, 0, 3]]))
    b = np.arange(6.0).reshape(3, 2)
    out, g = tg.function([x, y], [z, gy])(a, b)
    np.testing.assert_allclose(out, a @ b)
    np.testing.assert_allclose(g, np.tile(a.toarray().sum(axis=0)[:, None], (1, 2)))
    check_sparse(tg.function([x], x.T)(a), a.T, "csr", "float64")


def test_eval_and_tg_sparse_path():
    assert tg.sparse is S
    x = S.csr_dmatrix("x")
    a = rand_sparse(2, 3, "csr")
    check_sparse(S.sqr(x).eval({x: a}), a.multiply(a), "csr", "float64")


# ------------------------------------------------------------ errors
def test_format_mismatch_is_refused():
    x, y = S.csc_dmatrix("x"), S.csr_dmatrix("y")
    for fn in (S.add, S.mul):
        with pytest.raises(TypeError, match="same format.*csc and csr"):
            fn(x, y)


def test_dense_where_sparse_is_required():
    w = T.dmatrix("w")
    with pytest.raises(TypeError, match="must be sparse"):
        S.csm_properties(w)
    with pytest.raises(TypeError, match="must be sparse"):
        S.dense_from_sparse(w)
    with pytest.raises(TypeError, match="needs at least one sparse"):
        S.structured_dot(w, w)
    with pytest.raises(TypeError, match="needs a sparse argument"):
        S.add(w, w)
    with pytest.raises(TypeError, match="is not sparse"):
        S.as_sparse_variable(w)
    with pytest.raises(TypeError, match="is not a tensor"):
        T.exp(S.csr_dmatrix("x"))        # dense ops refuse sparse variables
    with pytest.raises(TypeError, match="must be dense"):
        S.csr_from_dense(S.csr_dmatrix("x"))


def test_input_values_are_checked():
    x = S.csr_fmatrix("x")
    f = tg.function([x], S.sp_sum(x))
    a = rand_sparse(2, 3, "csr")
    with pytest.raises(TypeError, match="takes a scipy.sparse matrix, got ndarray"):
        f(a.toarray())
    with pytest.raises(TypeError, match="without loss of precision"):
        f(a)                                          # float64 into float32
    assert np.isclose(tg.function([x], S.sp_sum(x), allow_input_downcast=True)(a), a.sum(),
                      rtol=1e-6)
    assert np.isclose(f(a.astype("float32")), a.sum(), rtol=1e-6)
    strict = tg.function([tg.In(x, strict=True)], S.sp_sum(x))
    with pytest.raises(TypeError, match="strict"):
        strict(a.astype("float32").tocsc())


def test_runtime_shape_errors_name_the_op():
    x, w = S.csr_dmatrix("x"), T.dmatrix("w")
    f = tg.function([x, w], S.structured_dot(x, w))
    with pytest.raises(ValueError, match="not aligned"):
        f(rand_sparse(3, 4, "csr"), np.ones((3, 2)))
    with pytest.raises(ValueError, match="differ"):
        tg.function([x, w], S.add(x, w))(rand_sparse(3, 4, "csr"), np.ones((4, 3)))


def test_compiling_sparse_ops_for_a_gpu_is_refused():
    import fake_cupy
    x = S.csr_dmatrix("x")
    with fake_cupy.installed():
        with pytest.raises(TypeError, match="live on the CPU.*device='cpu'"):
            tg.function([x], S.sqr(x), device="cuda")
    with pytest.raises(TypeError, match="CPU only"):
        tg.shared(rand_sparse(2, 2, "csr"), device="cuda")


def test_structured_dot_of_two_sparse_has_no_gradient():
    x, y = S.csr_dmatrix("x"), S.csr_dmatrix("y")
    z = S.structured_dot(x, y)
    with pytest.raises(NotImplementedError, match="no gradient"):
        tg.grad(S.sp_sum(z), x)


def test_import_needs_scipy_and_tracegrad_never_imports_it():
    code = ("import sys; sys.modules['scipy'] = None\n"
            "import tracegrad, tracegrad.tensor\n"
            "try:\n    import tracegrad.sparse\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install tracegrad[scipy]" in out
    clean = subprocess.run(
        [sys.executable, "-c", "import sys, tracegrad, tracegrad.tensor, tracegrad.compile; "
         "print('scipy' in sys.modules)"], capture_output=True, text=True, check=True)
    assert clean.stdout.strip() == "False"


def test_verify_grad_sparse_dense_and_structured():
    """Theano's ``verify_grad_sparse``: passes for a correct gradient, in
    both modes, and fails for a wrong one."""
    import scipy.sparse as scipy_sparse
    import tracegrad.sparse as tsp
    from tracegrad.ops.gradient_ops import grad_scale
    rng = np.random.default_rng(0)
    a = scipy_sparse.random(4, 3, density=0.5, format="csr", random_state=1)
    w = rng.uniform(-1, 1, (3, 2))
    tsp.verify_grad_sparse(tsp.structured_dot, [a, w], structured=True, rng=rng)
    tsp.verify_grad_sparse(lambda x, y: tsp.dot(x, y), [a.tocsc(), w], rng=rng)
    tsp.verify_grad_sparse(lambda x: tsp.mul(x, x), [a], structured=True, rng=rng)
    with pytest.raises(AssertionError):
        tsp.verify_grad_sparse(lambda x, y: grad_scale(tsp.dot(x, y), 2.0), [a, w], rng=rng)
