"""Small calls of long clusters on the compiled CPU tier (backend/csmall.py,
``NativeProgram.run_small``): below ``NATIVE_MIN_SIZE`` elements a cluster
of ``NATIVE_SMALL_STEPS`` steps or more asks for its kernel after
``NATIVE_SMALL_AFTER`` calls and then runs whichever of the kernel and the
NumPy fast path measured faster; every call gives the NumPy tier's values
and warnings. Also: boolean rows on the tier, the tuple-reading caller.
"""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.backend import c as c_tier
from tracegrad.backend import crun
from tracegrad.backend import ccompiler, crunner, csmall, csource
from tracegrad.config import NATIVE_SMALL_AFTER

pytestmark = pytest.mark.skipif(ccompiler.compiler() is None, reason="no C++ compiler")

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, 1e300, -1e300, 40.0, -40.0]


@pytest.fixture(autouse=True)
def _sync(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(tg.config, "cpu_codegen_sync", True)
    monkeypatch.setattr(tg.config, "cpu_codegen", "auto")
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernels"))


def _spy_small(monkeypatch):
    """The sizes of the small calls the kernel computed."""
    sizes = []
    run = c_tier.NativeProgram._run_small

    def spy(self, kernel, arrays, shape, size):
        sizes.append(size)
        return run(self, kernel, arrays, shape, size)
    monkeypatch.setattr(c_tier.NativeProgram, "_run_small", spy)
    return sizes


def _assert_same(ref, got, ulps=8):
    """Equal NaN and inf positions, signed zeros; finite values within
    ``ulps`` (the tier's vector math differs from NumPy's in the last bits)."""
    ref, got = np.asarray(ref), np.asarray(got)
    assert ref.dtype == got.dtype and ref.shape == got.shape
    if ref.dtype.kind != "f":
        np.testing.assert_array_equal(ref, got)
        return
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(got))
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(ref[~fin & ~np.isnan(ref)], got[~fin & ~np.isnan(ref)])
    np.testing.assert_array_equal(np.signbit(ref[ref == 0]), np.signbit(got[ref == 0]))
    allowed = ulps * np.spacing(np.abs(ref[fin]))
    assert (np.abs(ref[fin] - got[fin]) <= allowed).all()


def _loss_function():
    """W2's loss cluster (sigmoid, softplus, comparisons, a boolean ``or``
    and a ``where`` in its gradient): one long fused node over a vector."""
    z = T.dvector("z")
    y = T.dvector("y")
    b = T.dscalar("b")
    p = T.nnet.sigmoid(z - b)
    xent = -y * T.log(p) - (1 - y) * T.log(1 - p)
    g = T.grad(xent.sum(), z)
    return tg.function([z, y, b], [p > 0.5, xent, g])


def _both(f, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        tg.config.cpu_codegen = "numpy"
        ref = f(*args)
        tg.config.cpu_codegen = "auto"
        got = f(*args)
    return ref, got


def test_small_calls_of_a_long_cluster_take_the_kernel_after_a_few_calls(monkeypatch):
    f = _loss_function()
    sizes = _spy_small(monkeypatch)
    rng = np.random.default_rng(3)
    z = np.concatenate([SPECIAL, rng.standard_normal(390) * 30])
    y = (rng.random(z.size) > 0.5).astype("float64")
    for k in range(NATIVE_SMALL_AFTER + 6):
        ref, got = _both(f, z, y, 0.25)
        for r, g in zip(ref, got):
            _assert_same(r, g)
        if k < NATIVE_SMALL_AFTER - 1:
            assert sizes == []      # (asks for no kernel before)
    assert sizes and set(sizes) == {z.size}


def test_the_kernel_and_the_fast_path_compete_per_size_class(monkeypatch):
    f = _loss_function()
    sizes = _spy_small(monkeypatch)
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: False)  # NumPy's turn
    z = np.linspace(-3, 3, 300)
    for _ in range(NATIVE_SMALL_AFTER + 4):
        f(z, np.ones(300), 0.0)
    assert sizes == []


def test_a_short_cluster_or_an_unfit_call_keeps_the_numpy_fast_path(monkeypatch):
    sizes = _spy_small(monkeypatch)
    x = T.dvector("x")
    short = tg.function([x], T.exp(x) * 2.0)
    f = _loss_function()
    z = np.linspace(-3, 3, 801)
    for _ in range(NATIVE_SMALL_AFTER + 4):
        short(z)
        # strided and float32 arguments: not the kernel's layout (a cast or
        # a gather first), the general path runs them
        ref, got = _both(f, z[::2], np.ones(401)[::-1], 0.5)
        for r, g in zip(ref, got):
            _assert_same(r, g)
    assert sizes == []


def test_outputs_smaller_than_the_call_make_no_small_plan():
    # an output reading only a 0-d input is 0-d itself: no kernel layout
    x = T.dvector("x")
    s = T.dscalar("s")
    a = T.exp(s) * 2.0 + 1.0
    f = tg.function([x, s], [T.tanh(x) * a + T.sin(x) - a * x, T.cos(a) * 3.0 - a])
    from tracegrad.fuse import FusedElemwise
    hosts = [node.op.program(np) for node in f.maker.fgraph.toposort()
             if isinstance(node.op, FusedElemwise)]
    assert hosts
    for host in hosts:
        if any(deps is not None and not deps[0] for deps in host.spec.output_deps):
            assert csmall.small_plan(host) is None
    ref, got = _both(f, np.linspace(-1, 1, 50), 0.3)
    for r, g in zip(ref, got):
        _assert_same(r, g)


def test_a_small_kernel_call_gives_numpy_warnings(monkeypatch):
    sizes = _spy_small(monkeypatch)
    x = T.dvector("x")
    f = tg.function([x], T.log(x) * 2.0 - T.sqrt(x) + T.exp(x) * 3.0 - x / 7.0)
    good = np.linspace(0.5, 2, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(NATIVE_SMALL_AFTER + 4):
            f(good)
    assert sizes
    bad = good.copy()
    bad[7] = -1.0
    with pytest.warns(RuntimeWarning, match="invalid value"):
        got = f(bad)
    assert np.isnan(got[7]) and np.isfinite(np.delete(got, 7)).all()
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        f(bad)


def test_boolean_rows_run_on_the_tier_but_not_invert():
    a = T.tensor("bool", (None,), "a")
    b = T.tensor("bool", (None,), "b")
    x = T.dvector("x")
    logic = tg.function([a, b, x], T.switch(T.or_(T.xor(a, b), T.eq(a, b)), x, -x))
    from tracegrad.fuse import FusedElemwise
    specs = [node.op.spec for node in logic.maker.fgraph.toposort()
             if isinstance(node.op, FusedElemwise)]
    assert specs and all(csource.can_compile(s) for s in specs)
    inv = tg.function([a, x], T.switch(T.invert(a), x, 2.0 * x))
    specs = [node.op.spec for node in inv.maker.fgraph.toposort()
             if isinstance(node.op, FusedElemwise)]
    assert specs and not any(csource.can_compile(s) for s in specs)
    rng = np.random.default_rng(1)
    n = 9000   # (a large call: the kernel runs)
    args = (rng.random(n) > 0.5, rng.random(n) > 0.3, rng.standard_normal(n))
    ref, got = _both(logic, *args)
    _assert_same(ref, got)
    ref, got = _both(inv, args[0], args[2])
    _assert_same(ref, got)


def test_the_tuple_caller_reads_the_arrays_pointers():
    call = crunner.tuple_caller()
    assert call is not None   # (CPython's tuple and NumPy's array layouts)
    arrays = (np.arange(5.0), np.empty(3, np.float32)[::1], np.zeros((2, 3)))
    for a in arrays:
        assert csmall.address(a) == a.ctypes.data


def test_a_lone_node_runs_the_bare_ufunc_where_that_measures_faster(monkeypatch):
    # a large lone elementwise call (W4's bias (1024, 10) + (10,)) takes
    # the fused program or the bare ufunc, whichever its TierChoice finds
    # faster: with the ufunc's turn forced, no kernel runs
    prepared = []
    run = c_tier.NativeProgram.run_prepared

    def spy(self, *args, **kwargs):
        prepared.append(args[3])
        return run(self, *args, **kwargs)
    monkeypatch.setattr(c_tier.NativeProgram, "run_prepared", spy)
    x = T.fmatrix("x")
    b = T.fvector("b")
    f = tg.function([x, b], x + b)
    xv = np.random.default_rng(0).standard_normal((1024, 10)).astype("float32")
    bv = np.arange(10, dtype="float32")
    np.testing.assert_array_equal(f(xv, bv), xv + bv)   # (the first call: the program)
    assert prepared == [xv.size]
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: False)
    for _ in range(3):
        np.testing.assert_array_equal(f(xv, bv), xv + bv)
    assert prepared == [xv.size]


def test_sigmoid_and_softplus_kernels_raise_no_overflow_beyond_exps_range(monkeypatch):
    # both sides of a vectorised ?: are computed: the old templates' exp(-x)
    # of the side not taken overflowed (float32 x < -88), and every such
    # call ran again on NumPy. One exp(-|x|) now: no flag, NumPy's values.
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: True)   # the kernel's turn
    fallbacks = []
    run = c_tier.NativeProgram.run_prepared

    def spy(self, operands, outs, shape, size, aliased=None, fallback=None):
        def counted():
            fallbacks.append(size)
            fallback()
        return run(self, operands, outs, shape, size, aliased, counted)
    monkeypatch.setattr(c_tier.NativeProgram, "run_prepared", spy)
    x = T.fvector("x")
    f = tg.function([x], [T.nnet.sigmoid(x) * 2.0, T.nnet.softplus(x) * 3.0])
    v = np.linspace(-300, 300, 9001).astype("float32")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = f(v)
    assert fallbacks == []
    ref, _ = _both(f, v)
    for r, g in zip(ref, got):
        _assert_same(r, g)


def test_a_kernel_whose_flags_numpy_reports_is_charged_the_rerun(monkeypatch):
    # the call runs again on NumPy's program (which warns), and that time
    # counts against the kernel's way, so a kernel that always raises
    # such flags loses to NumPy's program
    x = T.dvector("x")
    f = tg.function([x], T.log(x) * 2.0 + T.exp(x) * 0.5)
    v = np.linspace(-1, 2, 9000)
    for _ in range(2):      # (the kernel's first call is not counted)
        with pytest.warns(RuntimeWarning, match="invalid value"):
            f(v)
    from tracegrad.fuse import FusedElemwise
    (node,) = [n for n in f.maker.fgraph.toposort() if isinstance(n.op, FusedElemwise)]
    native = node.op.program(np)._native
    (kernel,) = [k for k in native._kernels.values() if k]
    (choice,) = kernel.tiers.values()
    assert choice.threads > 0 and choice.alone == 0


@pytest.mark.parametrize("threads", [True, False])
def test_an_in_place_kernel_stops_each_range_at_a_flag_numpy_reports(monkeypatch, threads):
    # tg_commit: blocks stored only when their flags are clean; each
    # thread's chunk stops at a block NumPy must judge and NumPy's in-place
    # program computes every untouched range from intact inputs
    monkeypatch.setattr(crun, "NATIVE_MIN_PER_THREAD", 4096)
    monkeypatch.setattr(tg.config, "num_threads", 2)
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: True)   # the kernel
    monkeypatch.setattr(c_tier.ThreadChoice, "threaded", lambda self: threads)
    x = T.dvector("x")
    h = T.cumsum(x)
    f = tg.function([x], h - 0.5 * T.sqrt(h) * h)
    assert [n.op.name.startswith("Fused") for n in f.maker.fgraph.apply_nodes
            if n.op.destroy_map] == [True]
    n = 6 * 8192 + 77
    v = np.full(n, 1e-3)
    for bad in (2 * 8192 + 300, n - 3):
        v[:] = 1e-3
        v[bad] = -100.0            # the cumulative sum is negative from there on
        c = np.cumsum(v)
        with np.errstate(invalid="ignore"):
            want = c - 0.5 * np.sqrt(c) * c
        with pytest.warns(RuntimeWarning, match="invalid value"):
            got = f(v)
        np.testing.assert_array_equal(got, want)
    clean = np.full(n, 1e-3)
    c = np.cumsum(clean)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(f(clean), c - 0.5 * np.sqrt(c) * c)
