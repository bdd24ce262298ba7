"""The CPU program's lowering and fast paths: rows with an ``expand``
(sigmoid, softplus) inlined as SIMD ufuncs with shared steps, the fast path
for 0-d, bias-row and broadcasting inputs, whole-row blocks, and ``SumTo``
nodes fused under a run-time shape check. Each structurally (what the
generated program holds) and numerically (against the reference evaluator
on the unfused graph)."""
import warnings
from functools import partial

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.backend import numpy as cpu
from tracegrad.fuse import FusedElemwise, fuse_outputs
from tracegrad.backend.numpy import CPU_PROGRAMS, cpu_program
from tracegrad.backend.numpy.lower import lower
from tracegrad.fuse.spec import SUM_TO
from tracegrad.ops.elemwise import SumTo, row_by_name
from tracegrad.trace import toposort
from fusecheck import compare_fused
from threadcheck import run_in_threads

TOL = {"float32": 2e-6, "float64": 1e-13}


@pytest.fixture(autouse=True)
def fresh_programs():
    CPU_PROGRAMS.clear()
    yield
    CPU_PROGRAMS.clear()


def _fused_nodes(outputs):
    return [n for n in toposort(outputs) if isinstance(n.op, FusedElemwise)]


# Unfused (reference evaluator) against fused: dtypes, shapes, values.
_compare = partial(compare_fused, tol=TOL)


# ------------------------------------------------------------ expansions
EDGES = [-1e4, -800.0, -40.0, -1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0, 40.0, 800.0, 1e4,
         np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_sigmoid_and_softplus_are_stable_and_precise(dtype):
    x = np.concatenate([np.array(EDGES), np.linspace(-50, 50, 2001)]).astype(dtype)
    ref_x = x.astype(np.longdouble)
    with np.errstate(all="ignore"):
        sig_ref = (1 / (1 + np.exp(-ref_x))).astype(dtype)
        sp_ref = np.logaddexp(np.longdouble(0), ref_x).astype(dtype)
        sig = row_by_name("sigmoid").impl(np, x)
        sp = row_by_name("softplus").impl(np, x)
    assert sig.dtype == x.dtype and sp.dtype == x.dtype
    # Non-finite inputs and the saturated ends exactly; a few ulps elsewhere.
    for got, ref in ((sig, sig_ref), (sp, sp_ref)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        exact = ~np.isfinite(x)
        np.testing.assert_array_equal(got[exact], ref[exact])
        ok = np.isfinite(ref) & (np.abs(ref) >= np.finfo(dtype).tiny)
        np.testing.assert_allclose(got[ok], ref[ok], rtol=4 * np.finfo(dtype).eps, atol=0)
    assert sig[0] == 0 and sig[11] == 1 and sp[0] == 0 and sp[11] == np.float64(1e4).astype(dtype)


def test_sigmoid_of_integers_keeps_numpys_dtype():
    row = row_by_name("sigmoid")
    got = row.impl(np, np.arange(-3, 4, dtype="int8"))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.arange(-3.0, 4.0))), rtol=1e-15)
    assert row.output_dtype(["int32"]) == "float64"


def test_expansions_are_inlined_and_share_exp_of_abs():
    z = T.dvector("z")
    # The stabilised cross-entropy and its gradient need all four.
    nz = -z
    parts = [T.sigmoid(nz), T.softplus(nz), T.sigmoid(-nz), T.softplus(-nz)]
    outs = [parts[0] * parts[1] + parts[2] - parts[3], parts[0]]
    (node,) = _fused_nodes(fuse_outputs(outs))
    lowered = lower(node.op.spec)
    names = [i.row.name for i in lowered.instrs]
    assert "sigmoid" not in names and "softplus" not in names
    assert names.count("exp") == 1 and names.count("log1p") == 1 and names.count("abs") == 1
    # Every step of the generated program is a ufunc called with ``out=``.
    source = cpu_program(node.op.spec).source
    assert "asarray" not in source and "copyto" not in source
    values = np.concatenate([np.array(EDGES), np.linspace(-30, 30, 101)])
    _compare(outs, {z: values})


def test_expansion_is_not_used_for_integer_arguments():
    k = T.ivector("k")
    out = T.sigmoid(k) * 2.0
    (node,) = _fused_nodes(fuse_outputs([out]))
    names = [i.row.name for i in lower(node.op.spec).instrs]
    assert "sigmoid" in names
    _compare([out], {k: np.arange(-5, 5, dtype="int32")})


def test_maximum_gets_out_by_keyword_no_deprecation_warning():
    x = T.dvector("x")
    (fused,) = fuse_outputs([T.softplus(x) + 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fused.owner.op.impl(np, np.linspace(-3, 3, 7))
    assert "out=" in cpu_program(fused.owner.op.spec).source


def test_true_divide_is_a_plain_ufunc_step():
    x, y = T.dvectors("x", "y")
    (fused,) = fuse_outputs([T.exp(x) / y])
    assert "asarray" not in cpu_program(fused.owner.op.spec).source


# ------------------------------------------------------------ fast path
def test_fast_path_takes_scalars_bias_rows_and_broadcast_columns():
    x = T.dmatrix("x")
    b = T.dvector("b")
    s = T.dscalar("s")
    c = T.tensor("float64", (None, 1), "c")
    first = T.tanh(x * s + b) - c
    outs = [first, first * T.exp(x) * c]
    fused = fuse_outputs(outs)
    (node,) = _fused_nodes(fused)
    program = cpu_program(node.op.spec)
    assert program.fast is not None
    rng = np.random.default_rng(0)
    X, B, C = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal((5, 1))
    order = {x: X, b: B, s: np.array(0.5), c: C}
    args = [order[v] for v in node.inputs]
    assert program.fast(*args) is not None  # (5, 1) broadcasts against (5, 3)
    _compare(outs, order, fused)
    # Layouts the fast path leaves to the general one, with equal results.
    for values in ({x: np.asfortranarray(rng.standard_normal((5, 3))), b: B,
                    s: np.array(0.5), c: C},
                   {x: rng.standard_normal((1, 3)), b: B, s: np.array(2.0),
                    c: rng.standard_normal((4, 1))},
                   {x: rng.standard_normal((0, 3)), b: B, s: np.array(2.0),
                    c: rng.standard_normal((0, 1))}):
        args = [values[v] for v in node.inputs]
        taken = program.fast(*args) is not None
        # (1, 3) against (4, 1) broadcasts to (4, 3): taken; Fortran order
        # and empty arrays: left to the general path.
        assert taken == (values[x].shape == (1, 3))
        _compare(outs, values, fused)


def test_fast_path_refuses_values_of_another_ndim():
    x, y = T.dvectors("x", "y")
    (fused,) = fuse_outputs([T.exp(x) * y])
    op = fused.owner.op
    program = cpu_program(op.spec)
    xv = np.linspace(0, 1, 4)
    args = [xv if v is x else np.array(2.0) for v in fused.owner.inputs]
    assert program.fast(*args) is None
    np.testing.assert_allclose(op.impl(np, *args), np.exp(xv) * 2.0, rtol=1e-15)


# ------------------------------------------------------------ blocks
@pytest.mark.parametrize("threads", [1, 2])
def test_row_blocks_with_a_bias_row_equal_the_reference(monkeypatch, threads, numpy_tier):
    monkeypatch.setattr(cpu, "BLOCK_MIN_NS", 0)
    monkeypatch.setattr(cpu, "THREAD_MIN_NS", 1_000)
    monkeypatch.setattr(tg.config, "num_threads", threads)
    x = T.fmatrix("x")
    b = T.fvector("b")
    h = T.tanh(x + b)
    outs = [h, 1 - h * h]
    fused = fuse_outputs(outs)
    (node,) = _fused_nodes(fused)
    program = cpu_program(node.op.spec)
    rows = 3 * program.block // 64 + 5  # several blocks of whole rows
    rng = np.random.default_rng(1)
    values = {x: rng.standard_normal((rows, 64)).astype("float32"),
              b: rng.standard_normal(64).astype("float32")}
    from tracegrad.backend.numpy import runner
    calls = []
    original = runner._leading_axis_layout
    monkeypatch.setattr(runner, "_leading_axis_layout",
                        lambda *a: calls.append(1) or original(*a))
    _compare(outs, values, fused)
    assert calls  # the bias row is passed whole to each block of rows


# ------------------------------------------------------------ SumTo fused
def test_sum_to_of_a_product_gradient_joins_the_cluster():
    y, z = T.dvectors("y", "z")
    cost = (y * T.softplus(-z) + (1 - y) * T.softplus(z)).mean()
    g = tg.grad(cost, z)
    fused = fuse_outputs([g])
    sum_tos = [n for n in toposort(fused) if isinstance(n.op, SumTo)]
    fused_rows = [i.row for n in _fused_nodes(fused) for i in n.op.spec.instrs]
    assert SUM_TO in fused_rows and not sum_tos
    rng = np.random.default_rng(2)
    _compare([g], {y: rng.integers(0, 2, 7).astype(float), z: rng.standard_normal(7)}, fused)


@pytest.mark.parametrize("shapes", [((6,), (6,)), ((1,), (6,)), ((6,), (1,))])
def test_fused_sum_to_sums_when_shapes_differ_at_run_time(shapes):
    # Static shapes (?,) for both: only the run time tells whether the
    # gradient of y * exp(z) sums anything; both answers are right.
    y, z = T.dvectors("y", "z")
    prod = y * T.exp(z)
    gy, gz = tg.grad(prod.sum() * 3.0, [y, z])
    outs = [gy * 2.0, gz + 1.0]
    fused = fuse_outputs(outs)
    assert any(i.row is SUM_TO for n in _fused_nodes(fused) for i in n.op.spec.instrs)
    rng = np.random.default_rng(3)
    values = {y: rng.standard_normal(shapes[0]), z: rng.standard_normal(shapes[1])}
    _compare(outs, values, fused)


def test_fused_sum_to_in_a_compiled_function_and_its_gradient():
    x = T.dmatrix("x")
    v = T.dmatrix("v")
    cost = (T.nnet.softmax(x) * v).sum()
    g = tg.grad(cost, x)
    f = tg.function([x, v], g)
    f_ref = tg.function([x, v], g, mode="fast_compile")
    rng = np.random.default_rng(4)
    for shape_v in ((3, 4), (1, 4)):
        X, V = rng.standard_normal((3, 4)), rng.standard_normal(shape_v)
        np.testing.assert_allclose(f(X, V), f_ref(X, V), rtol=1e-12, atol=1e-15)
    # The fused op's own gradient rebuilds the SumTo (second order).
    fused = fuse_outputs([T.exp(x) * v])
    hess = tg.grad(tg.grad((fused[0] * x).sum(), x).sum(), v)
    hess_ref = tg.grad(tg.grad((T.exp(x) * v * x).sum(), x).sum(), v)
    values = {x: rng.standard_normal((3, 4)), v: rng.standard_normal((3, 4))}
    np.testing.assert_allclose(evaluate([hess], values)[0], evaluate([hess_ref], values)[0],
                               rtol=1e-12)


def test_sum_to_that_cannot_be_vouched_for_runs_the_reference():
    # SUM_TO(s * [1.0], x): its first operand reads nothing of the full
    # ndim, so no run-time check can show it sums nothing.
    from tracegrad.fuse.spec import FusionSpec, Instr
    spec = FusionSpec([("float64", 0), ("float64", 1)], [np.ones(1)],
                      [Instr(row_by_name("mul"), [("i", 0), ("c", 0)], "float64"),
                       Instr(SUM_TO, [("t", 0), ("i", 1)], "float64"),
                       Instr(row_by_name("add"), [("t", 1), ("i", 1)], "float64")], [2])
    program = cpu_program(spec)
    assert program.reference_only and program.fast is None
    op = FusedElemwise(spec)
    np.testing.assert_array_equal(op.impl(np, np.array(1.5), np.array([2.0])), [3.5])


def test_inplace_fused_sum_to_checks_shapes():
    # Written into z's buffer; the SumTo sums when y has length 1.
    from tracegrad.fuse.op import InplaceFusedElemwise
    y, z = T.dvectors("y", "z")
    out = SumTo()(y * T.exp(z), y) * 2.0 + z
    (fused,) = fuse_outputs([out])
    assert any(i.row is SUM_TO for i in fused.owner.op.spec.instrs)
    order = list(fused.owner.inputs)
    op = InplaceFusedElemwise(fused.owner.op.spec, None, order.index(z))
    rng = np.random.default_rng(5)
    for yv in (rng.standard_normal(5), rng.standard_normal(1)):
        zv = rng.standard_normal(5)
        expected = evaluate([out], {y: yv, z: zv})[0]
        target = zv.copy()
        got = op.impl(np, *[yv if v is y else target for v in order])
        np.testing.assert_allclose(got, expected, rtol=1e-14)
        assert got is target


# ------------------------------------------------------------ the tutorial
def test_logistic_regression_step_fuses_forward_and_gradient():
    rng = np.random.default_rng(6)
    n, feats = 50, 7
    x = T.dmatrix("x")
    y = T.dvector("y")
    w = tg.shared(rng.standard_normal(feats), name="w")  # the tutorial's own init
    b = tg.shared(0.0, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = tg.grad(cost, [w, b])
    train = tg.function([x, y], [p_1 > 0.5, xent],
                        updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
    nodes = train.maker.fgraph.toposort()
    assert not [nd for nd in nodes if isinstance(nd.op, SumTo) and nd.outputs[0].ndim == 1]
    fused = [nd for nd in nodes if isinstance(nd.op, FusedElemwise)]
    lowered = [lower(nd.op.spec) for nd in fused]
    assert sum(i.row.name == "log1p" for sp in lowered for i in sp.instrs) == 1
    X = rng.standard_normal((n, feats)) * 20
    Y = rng.integers(0, 2, n).astype(float)
    wv, bv = w.get_value(), 0.0
    for _ in range(3):
        pred, xe = train(X, Y)
        z = X @ wv + bv
        p = 1 / (1 + np.exp(-z))
        xe_ref = np.logaddexp(0, -z) * Y + np.logaddexp(0, z) * (1 - Y)
        np.testing.assert_array_equal(pred, p > 0.5)
        np.testing.assert_allclose(xe, xe_ref, rtol=1e-12, atol=1e-300)
        gz = (p - Y) / n
        wv, bv = wv - 0.1 * (X.T @ gz + 0.02 * wv), bv - 0.1 * gz.sum()
        np.testing.assert_allclose(w.get_value(), wv, rtol=1e-10)
        np.testing.assert_allclose(b.get_value(), bv, rtol=1e-10, atol=1e-15)
        assert np.isfinite(xe).all()


# ------------------------------------------------------------ second / fill
def test_mean_gradient_broadcast_joins_the_kernel():
    from tracegrad.fuse.spec import FILL
    from tracegrad.ops.shape import BroadcastTo
    from tracegrad.ops.shape_static import Shape
    y, z = T.dvectors("y", "z")
    cost = (y * T.softplus(z) - T.exp(z)).mean()
    g = tg.grad(cost, z) * 2.0
    f = tg.function([y, z], g)
    f_ref = tg.function([y, z], g, mode="fast_compile")
    nodes = f.maker.fgraph.toposort()
    assert not [n for n in nodes if isinstance(n.op, (BroadcastTo, Shape))]
    assert any(i.row is FILL for n in nodes if isinstance(n.op, FusedElemwise)
               for i in n.op.spec.instrs)
    rng = np.random.default_rng(7)
    for ny, nz in ((6, 6), (1, 6), (6, 1)):
        yv, zv = rng.standard_normal(ny), rng.standard_normal(nz)
        np.testing.assert_allclose(f(yv, zv), f_ref(yv, zv), rtol=1e-13)


def test_fill_row_values_dtype_and_gradient():
    from tracegrad.fuse.spec import FILL
    from tracegrad.ops.elemwise import Elemwise
    a = T.fmatrix("a")
    b = T.fscalar("b")
    out = Elemwise(FILL)(a, b)
    assert out.dtype == "float32" and out.ndim == 2
    av = np.zeros((2, 3), "float32")
    got = evaluate([out], {a: av, b: np.float32(-0.0)})[0]
    assert got.shape == (2, 3) and np.signbit(got).all() and got.flags.writeable
    gb = tg.grad((out * T.constant(np.arange(6.0).reshape(2, 3).astype("float32"))).sum(), b)
    assert float(evaluate([gb], {a: av, b: np.float32(1.0)})[0]) == 15.0
    # Fused, a lone second is still the value broadcast against its model.
    (fused,) = fuse_outputs([out * 2.0])
    np.testing.assert_array_equal(evaluate([fused], {a: av, b: np.float32(1.5)})[0],
                                  np.full((2, 3), 3.0, "float32"))


def test_functions_with_fused_sum_to_and_fill_pickle():
    import pickle
    y, z = T.dvectors("y", "z")
    g = tg.grad((y * T.exp(z)).mean(), z)
    f = tg.function([y, z], g)
    rng = np.random.default_rng(8)
    yv, zv = rng.standard_normal(4), rng.standard_normal(4)
    again = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(again(yv, zv), f(yv, zv))


# ------------------------------------------------------------ random gradients
_UNARY = [T.exp, T.tanh, T.sigmoid, T.softplus, T.sin, lambda v: v * v, abs]
_BINARY = [lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / (1.5 + b * b),
           lambda a, b: T.maximum(a, b)]


@pytest.mark.parametrize("seed", range(12))
def test_random_gradients_with_run_time_broadcasting(seed):
    # Gradients hold SumTo nodes whose effect only the run-time shapes
    # decide (static shapes are (?,) or (?, ?)): fused programs must agree
    # with the reference evaluator whatever broadcasts.
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(1, 3))
    names = "abc"
    inputs = [T.tensor("float64", (None,) * ndim, names[k]) for k in range(3)]
    pool = list(inputs)
    for _ in range(int(rng.integers(3, 8))):
        if rng.random() < 0.4:
            pool.append(_UNARY[rng.integers(len(_UNARY))](pool[rng.integers(len(pool))]))
        else:
            a, b = rng.integers(len(pool), size=2)
            pool.append(_BINARY[rng.integers(len(_BINARY))](pool[a], pool[b]))
    cost = (pool[-1] * pool[-2]).mean() + pool[-1].sum() * 0.5
    grads = tg.grad(cost, inputs, disconnected_inputs="ignore")
    outs = [pool[-1]] + [g for g in grads if g is not None]
    f = tg.function(inputs, outs, on_unused_input="ignore")
    f_ref = tg.function(inputs, outs, mode="fast_compile", on_unused_input="ignore")
    full = (5,) if ndim == 1 else (3, 4)
    for trial in range(4):
        shapes = []
        for k in range(3):
            shape = list(full)
            if trial and rng.random() < 0.5:
                shape[int(rng.integers(ndim))] = 1
            shapes.append(tuple(shape))
        values = [rng.uniform(-2, 2, s) for s in shapes]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got, ref = f(*values), f_ref(*values)
        for g, r in zip(got, ref):
            assert g.shape == r.shape, (shapes, g.shape, r.shape)
            np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-13)


# ------------------------------------------------------------ output buffers
def test_intermediate_values_live_in_the_output_buffer():
    w, g = T.fmatrices("w", "g")
    (fused,) = fuse_outputs([w - 0.1 * g])
    op = fused.owner.op
    program = cpu_program(op.spec)
    assert program.direct.slot_dtypes == ()
    order = list(fused.owner.inputs)
    k_g, k_w = order.index(g), order.index(w)
    # Written into g's buffer: 0.1 * g goes there too, once g is read.
    into_g = program.inplace_code(k_g)
    assert into_g is not None and into_g.slot_dtypes == ()
    # Into w's buffer: w is read by the last step only, so 0.1 * g needs
    # scratch until then.
    into_w = program.inplace_code(k_w)
    assert into_w is not None and len(into_w.slot_dtypes) == 1
    rng = np.random.default_rng(9)
    for k in (k_g, k_w):
        from tracegrad.fuse.op import InplaceFusedElemwise
        vals = {w: rng.standard_normal((5, 3)).astype("float32"),
                g: rng.standard_normal((5, 3)).astype("float32")}
        expected = vals[w] - np.float32(0.1) * vals[g]
        args = [vals[v].copy() for v in order]
        got = InplaceFusedElemwise(op.spec, None, k).impl(np, *args)
        assert got is args[k]
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_program_reading_the_input_after_its_output_gets_no_inplace_code():
    x = T.dvector("x")
    a = T.exp(x)
    b = a * x  # reads x after a is computed
    fused = fuse_outputs([a, b])
    (node,) = _fused_nodes(fused)
    program = cpu_program(node.op.spec)
    k = list(node.inputs).index(x)
    spec = node.op.spec
    assert spec.instrs[spec.outputs[0]].row.name == "exp"
    assert program.inplace_code(k) is None
    # run() into a buffer that is that input still computes the right values.
    xv = np.linspace(-1, 1, 9)
    buf = xv.copy()
    other = np.empty(9)
    args = [buf if v is x else None for v in node.inputs]
    got = node.op.run(np, args, outs=[buf, other])
    np.testing.assert_allclose(got[0], np.exp(xv), rtol=1e-15)
    np.testing.assert_allclose(got[1], np.exp(xv) * xv, rtol=1e-15)


def test_impl_for_numpy_matches_impl_and_is_safe_at_first_call():
    x, y = T.dvectors("x", "y")
    (fused,) = fuse_outputs([T.sigmoid(x) * y - 1])
    op = fused.owner.op
    run = op.impl_for(np)
    rng = np.random.default_rng(10)
    values = [(rng.standard_normal(50), rng.standard_normal(50)) for _ in range(8)]
    got = [None] * len(values)

    def call(k):
        got[k] = run(*values[k])

    run_in_threads(call, len(values))
    for (xv, yv), g in zip(values, got):
        args = [xv if v is x else yv for v in fused.owner.inputs]
        np.testing.assert_array_equal(g, op.impl(np, *args))
