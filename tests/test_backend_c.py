"""The compiled CPU tier (tracegrad/backend/c.py): results against the NumPy
tier for every elementwise row and dtype, special values included; layouts;
no compiler; the disk cache's trust rules; background compilation; NumPy's
warnings.

Accuracy: the tier calls glibc's vector math (libmvec, documented at most 4
ulp) where NumPy calls its own SIMD or scalar routines, so results may
differ in the last bits. Measured on this machine (max over ~20k values per
row, half of them over 1e-300..1e300): at most 3 ulp for float64 and 5 ulp
for float32 (exp, log, sin, cos, tan, tanh, erf, pow...), 0 for arithmetic,
comparisons, rounding, sqrt, min/max and where. ``ULPS`` below allows 8.
Exceptions with a measured reason: results below the smallest normal number
(erfc's far tail: subnormal vs 0) compare absolutely; ``logaddexp`` and
``logaddexp2`` cancel (``m + log1p(...)`` near 0), so their error is counted
in ulps of the operands' magnitude. ``erfc``: the NumPy tier's own
``special_math.erfc`` is up to ~500 ulp off for x > 20 (checked against
mpmath, where glibc's is within 1 ulp), so that row allows ``ERFC_ULPS``.
"""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.backend import c as c_tier
from tracegrad.backend import crun
from tracegrad.backend import ccompiler, csource, diskcache
from tracegrad.ops.base import _ROWS, Elemwise

pytestmark = pytest.mark.skipif(ccompiler.compiler() is None, reason="no C++ compiler")

N = 9000   # over NATIVE_MIN_SIZE: the compiled tier takes the call
ULPS = 8
ERFC_ULPS = 600
CANCELLING = ("logaddexp", "logaddexp2")
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e300, -1e300,
           1.0, -1.0, 0.5, 3.0]


@pytest.fixture(autouse=True)
def _sync(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(tg.config, "cpu_codegen_sync", True)
    monkeypatch.setattr(tg.config, "cpu_codegen", "auto")
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernels"))


def _both(f, *args):
    """``f``'s results on the NumPy tier and on the compiled tier."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        tg.config.cpu_codegen = "numpy"
        ref = np.asarray(f(*args))
        tg.config.cpu_codegen = "auto"
        got = np.asarray(f(*args))
    return ref, got


def _assert_close(ref, got, dtype, scale=None, ulps=ULPS):
    assert ref.dtype == got.dtype and ref.shape == got.shape
    if ref.dtype.kind != "f":
        np.testing.assert_array_equal(ref, got)
        return
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(got))
    inf = np.isinf(ref)
    np.testing.assert_array_equal(ref[inf], got[inf])
    zero = ref == 0
    np.testing.assert_array_equal(np.signbit(ref[zero]) | (got[zero] != 0),
                                  np.signbit(got[zero]) | (got[zero] != 0))
    fin = np.isfinite(ref)
    magnitude = np.abs(ref[fin]) if scale is None else np.maximum(np.abs(ref[fin]), scale[fin])
    tiny = np.finfo(dtype).tiny
    allowed = ulps * np.spacing(magnitude.astype(dtype)).astype(np.float64)
    diff = np.abs(ref[fin].astype(np.float64) - got[fin])
    bad = (diff > allowed) & ~((np.abs(ref[fin]) < tiny) & (np.abs(got[fin]) < tiny))
    assert not bad.any(), (ref[fin][bad][:5], got[fin][bad][:5])


def _values(rng, dtype, arity, k):
    v = rng.uniform(-10, 10, N)
    half = N // 2
    v[half:] = rng.standard_normal(N - half) * 10.0 ** rng.integers(-300, 300, N - half)
    sp = np.array(SPECIAL)
    v[: sp.size ** 2] = np.repeat(sp, sp.size) if k == 0 else np.tile(sp, sp.size)
    with np.errstate(over="ignore"):
        return v.astype(dtype)


def _float_rows():
    return [r for r in _ROWS if r.c is not None and r.nin in (1, 2, 3)
            and r.name not in ("invert", "and_", "or_", "xor")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("row", _float_rows(), ids=lambda r: r.name)
def test_every_row_matches_the_numpy_tier(row, dtype):
    rng = np.random.default_rng(0)
    xs = [T.tensor(dtype, (None,), f"x{i}") for i in range(row.nin)]
    args = [_values(rng, dtype, row.nin, k) for k in range(row.nin)]
    if row.name == "switch":
        xs[0] = T.tensor("bool", (None,), "c")
        args[0] = args[0] > 0
    out = Elemwise(row)(*xs)
    # a second node, so the row is part of a fused cluster
    out = T.logical_not(out) if out.dtype == "bool" else -out
    f = tg.function(xs, out)
    ref, got = _both(f, *args)
    scale = None
    if row.name in CANCELLING:
        scale = np.max([np.abs(a) for a in args], axis=0)
    _assert_close(ref, got, dtype, scale, ERFC_ULPS if row.name == "erfc" else ULPS)


def test_the_compiled_tier_runs_and_is_vectorised(tmp_path, monkeypatch):
    velocity_alpha = T.dvector("velocity_alpha")
    f = tg.function([velocity_alpha], T.exp(-velocity_alpha * velocity_alpha)
                    * T.sin(3 * velocity_alpha))
    before = sum(isinstance(k, c_tier.Kernel) for k in c_tier._KERNELS.values())
    _both(f, np.linspace(-3, 3, N))
    assert sum(isinstance(k, c_tier.Kernel) for k in c_tier._KERNELS.values()) > before
    source = csource.contiguous_source(_spec_of(f), (False,))
    assert "#pragma omp simd" in source
    assert "velocity" not in source and "alpha" not in source   # names never enter
    assert "2.718" not in source.split('extern "C" int tg_contig')[1]  # constants are parameters
    if not ccompiler.has_libmvec():
        pytest.skip("no libmvec: scalar math")
    assert "declare simd" in source
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    ccompiler.build(source)
    (lib,) = [p for p in tmp_path.iterdir() if p.suffix == ".so"]
    data = lib.read_bytes()
    # the vector variants of exp and sin (libmvec's _ZGV<isa>N<lanes>v_<name>)
    assert b"v_exp" in data and b"v_sin" in data and b"_ZGV" in data


def _spec_of(f):
    from tracegrad.fuse import FusedElemwise
    for node in f.maker.fgraph.toposort():
        if isinstance(node.op, FusedElemwise):
            return node.op.spec
    raise AssertionError("no fused node")


def test_rows_of_a_broadcast_run_vectorised(tmp_path, monkeypatch):
    # a bias over rows (only an outer axis has stride 0): the strided
    # kernel's row loop is an omp simd loop calling libmvec, as tg_contig;
    # other layouts gather blocks into buffers and run the same simd loop
    x = T.fmatrix("x")
    b = T.fvector("b")
    f = tg.function([x, b], T.tanh(x + b))
    source = csource.strided_source(_spec_of(f))
    assert source.count("#pragma omp simd") == 2
    assert "const float in0 = r0[j];" in source and "const float in0 = b0[j];" in source
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((64, 300)).astype("float32")
    xv[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    ref, got = _both(f, xv, rng.standard_normal(300).astype("float32"))
    _assert_close(ref, got, "float32")
    if not ccompiler.has_libmvec():
        pytest.skip("no libmvec: scalar math")
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    ccompiler.build(source)
    (lib,) = [p for p in tmp_path.iterdir() if p.suffix == ".so"]
    assert b"v_tanhf" in lib.read_bytes()


@pytest.mark.parametrize("case", ["broadcast_row", "broadcast_column", "scalar", "transposed",
                                  "strided", "zero_size", "fortran", "0d_operand"])
def test_layouts(case):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((120, 90))
    b = rng.standard_normal((120, 90))
    x = T.dmatrix("x")
    y = T.dmatrix("y")
    if case == "broadcast_row":
        y = T.tensor("float64", (1, None), "y")
        b = b[:1]
    elif case == "broadcast_column":  # (stride 0 along the last axis: element by element)
        y = T.tensor("float64", (None, 1), "y")
        b = b[:, :1]
    elif case == "scalar":
        y = T.dscalar("y")
        b = np.float64(0.3)
    elif case == "transposed":
        a = np.ascontiguousarray(a.T).T
    elif case == "strided":
        a = rng.standard_normal((240, 180))[::2, ::2]
    elif case == "zero_size":
        a = np.zeros((0, 90))
        b = np.zeros((0, 90))
    elif case == "fortran":
        a, b = np.asfortranarray(a), np.asfortranarray(b)
    elif case == "0d_operand":
        y = T.tensor("float64", (1, 1), "y")
        b = b[:1, :1]
    # (a product: relative errors add, no cancellation to magnify them)
    f = tg.function([x, y], T.tanh(x) * y * T.exp(-x))
    ref, got = _both(f, a, b)
    _assert_close(ref, got, "float64")


def test_multiple_outputs_and_inplace_update():
    w = tg.shared(np.linspace(-1, 1, N), name="w")
    g = T.dvector("g")
    new = w - 0.1 * T.tanh(g) * w
    f = tg.function([g], [new * 2, T.exp(new)], updates=[(w, new)])
    gv = np.linspace(0, 2, N)
    w0 = w.get_value()
    tg.config.cpu_codegen = "numpy"
    r_np = f(gv)
    w_np = w.get_value()
    w.set_value(w0)
    tg.config.cpu_codegen = "auto"
    r_c = f(gv)
    _assert_close(w_np, w.get_value(), "float64")
    for a, b in zip(r_np, r_c):
        _assert_close(a, b, "float64")


def _sqrt_in_place():
    """A function whose fused kernel writes into a buffer it reads (the
    dead ``cumsum`` result, ``destroy_map``), with a correctly rounded op
    that can warn; and its expected result."""
    x = T.dvector("x")
    h = T.cumsum(x)
    f = tg.function([x], h - 0.5 * T.sqrt(h) * h)
    fused = [n for n in f.maker.fgraph.apply_nodes if n.op.destroy_map]
    assert [n.op.name.startswith("Fused") for n in fused] == [True]

    def expected(v):
        h = np.cumsum(v)
        with np.errstate(invalid="ignore"):
            return h - 0.5 * np.sqrt(h) * h
    return f, expected


def _spy_in_place(monkeypatch):
    calls = []
    run = crun._run_in_place

    def spy(*args):
        calls.append(args[4])   # (its size)
        return run(*args)
    monkeypatch.setattr(c_tier, "_run_in_place", spy)
    return calls


def test_a_kernel_writing_into_its_input_goes_block_by_block(monkeypatch):
    # Blocks of 256 elements, each stored once its flags are read (no
    # buffer of the call's size is allocated); the thread's range stops at
    # the block with a negative value and the rest is computed by the NumPy
    # program, which warns (or raises) exactly as NumPy does.
    monkeypatch.setattr(crun, "NATIVE_MIN_PER_THREAD", 4096)
    # (every call on the kernel: its TierChoice would hand some to NumPy)
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: True)
    calls = _spy_in_place(monkeypatch)
    f, expected = _sqrt_in_place()
    n = 5 * 8192 + 77
    v = np.full(n, 1e-3)
    np.testing.assert_array_equal(f(v), expected(v))
    assert calls == [n]
    v[3 * 8192 + 5] = -100.0     # the cumulative sum turns negative there
    with pytest.warns(RuntimeWarning, match="invalid value"):
        got = f(v)
    np.testing.assert_array_equal(got, expected(v))
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        f(v)
    assert len(calls) == 3


def test_a_kernel_writes_straight_into_its_input_when_numpy_reports_nothing(monkeypatch):
    calls = _spy_in_place(monkeypatch)
    f, expected = _sqrt_in_place()
    v = np.linspace(-1, 3, N)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(v)
    np.testing.assert_array_equal(got, expected(v))
    assert calls == []


def _spy_native(monkeypatch):
    sizes = []
    run = c_tier.NativeProgram.run_prepared

    def spy(self, operands, outs, shape, size, aliased=None, fallback=None):
        sizes.append(size)
        return run(self, operands, outs, shape, size, aliased, fallback)
    monkeypatch.setattr(c_tier.NativeProgram, "run_prepared", spy)
    return sizes


@pytest.mark.parametrize("in_place", [False, True])
def test_a_lone_elementwise_node_runs_on_the_compiled_tier(monkeypatch, in_place):
    sizes = _spy_native(monkeypatch)
    x = T.dvector("x")
    if in_place:   # (exp writes into the dead cumsum result)
        f = tg.function([x], T.exp(T.cumsum(x)))
        ref_of = lambda v: np.exp(np.cumsum(v))  # noqa: E731
    else:
        f = tg.function([x], T.exp(x))
        ref_of = np.exp
    (node,) = [n for n in f.maker.fgraph.apply_nodes if n.op.name.startswith("exp")]
    assert bool(node.op.destroy_map) == in_place
    v = np.linspace(-3, 3, N) / (N if in_place else 1)
    ref, got = _both(f, v)
    _assert_close(ref_of(v), got, "float64")
    _assert_close(ref, got, "float64")
    assert sizes == [N]
    small = v[:100]
    np.testing.assert_array_equal(f(small), ref_of(small))   # (the bare ufunc)
    assert sizes == [N]


def test_array_constants_and_integer_and_bool_inputs():
    x = T.dvector("x")
    i = T.ivector("i")
    b = T.tensor("bool", (None,), "b")
    c = np.linspace(0.5, 1.5, N)
    # (a product: relative errors add, no cancellation to magnify them)
    f = tg.function([x, i, b], T.exp(-x * c) * T.cast(i, "float64") * T.switch(b, x, 2.0))
    rng = np.random.default_rng(7)
    args = (rng.standard_normal(N), rng.integers(-5, 5, N).astype("int32"),
            rng.random(N) > 0.5)
    ref, got = _both(f, *args)
    _assert_close(ref, got, "float64")
    spec = _spec_of(f)
    assert [dt for dt, _ in spec.in_types] == ["float64", "int32", "bool"]
    assert isinstance(c_tier._KERNELS[(spec.structure, (False, False, False, False))],
                      c_tier.Kernel)


def test_background_compile_switches_with_identical_results(monkeypatch):
    # Arithmetic only: correctly rounded in both tiers, so bit for bit.
    monkeypatch.setattr(tg.config, "cpu_codegen_sync", False)
    x, y = T.dvectors("x", "y")
    f = tg.function([x, y], (x * 3.5 - y) / (y * y + 1.25) + x)
    a = np.random.default_rng(2).standard_normal(N)
    b = np.random.default_rng(3).standard_normal(N)
    expected = ((a * 3.5 - b) / (b * b + 1.25)) + a
    results = [f(a, b)]
    c_tier.wait_for_compiles()
    results.append(f(a, b))
    for r in results:
        np.testing.assert_array_equal(r, expected)
    assert isinstance(c_tier._KERNELS[(_spec_of(f).structure, (False, False))], c_tier.Kernel)


def test_numpy_warnings_are_kept():
    x = T.dvector("x")
    f = tg.function([x], T.log(x) * 2 + 1)
    v = np.linspace(-1, 1, N)
    with pytest.warns(RuntimeWarning, match="invalid value"):
        r = f(v)
    assert np.isnan(r[v < 0]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            f(v)
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        f(v)


def test_mode_numpy_and_no_compiler_give_the_numpy_results(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, tracegrad as tg, tracegrad.tensor as T
        from tracegrad.backend import c
        tg.config.cpu_codegen_sync = True
        x = T.dvector("x")
        f = tg.function([x], T.exp(-x * x) * T.sin(3 * x))
        v = np.linspace(-3, 3, {N})
        r = f(v)
        assert not any(isinstance(k, c.Kernel) for k in c._KERNELS.values()), c._KERNELS
        assert np.allclose(r, np.exp(-v * v) * np.sin(3 * v), rtol=1e-15, atol=0)
        print("ok")
    """)
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"),
               TRACEGRAD_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.strip() == "ok", out.stderr


def _entry_files(folder):
    names = sorted(os.listdir(folder))
    libs = [n for n in names if n.endswith(".so")]
    assert len(libs) == 1, names
    key = libs[0][:-3]
    return os.path.join(folder, key + ".so"), os.path.join(folder, key + ".ok"), key


SOURCE = csource.header() + 'extern "C" int tg_contig(long a, long b, char** p, const char* k)' \
    ' { return 7; }\n'


@pytest.mark.parametrize("damage", ["truncated", "altered", "group_writable", "record_missing"])
def test_a_damaged_or_unsafe_cache_entry_is_rebuilt(tmp_path, monkeypatch, damage):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(folder))
    ccompiler.build(SOURCE)
    lib, record, key = _entry_files(folder)
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    assert diskcache.lookup(key, lambda path: path) is not None
    if damage == "truncated":
        data = open(lib, "rb").read()
        open(lib, "wb").write(data[: len(data) // 2])
    elif damage == "altered":
        data = bytearray(open(lib, "rb").read())
        data[-10] ^= 0xFF
        open(lib, "wb").write(bytes(data))
    elif damage == "group_writable":
        os.chmod(lib, 0o660)
    else:
        os.unlink(record)
    assert diskcache.lookup(key, lambda path: path) is None
    built = ccompiler.build(SOURCE)   # rebuilt and stored again
    assert built.tg_contig(0, 0, None, None) == 7
    assert diskcache.lookup(key, lambda path: path) is not None
    assert not os.stat(lib).st_mode & 0o022


def test_an_unsafe_cache_folder_is_not_used(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(folder))
    lib = ccompiler.build(SOURCE)   # still works, uncached
    assert lib.tg_contig(0, 0, None, None) == 7
    assert not any(n.endswith(".so") for n in os.listdir(folder))


def test_two_processes_compiling_the_same_kernel(tmp_path, monkeypatch):
    script = textwrap.dedent("""
        import sys
        from tracegrad.backend import ccompiler, csource
        src = csource.header() + 'extern "C" int tg_contig(long a, long b, char** p, const char* k) { return 9; }'
        print(ccompiler.build(src).tg_contig(0, 0, None, None))
    """)
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [o[0].strip() for o in outs] == ["9", "9"], outs
    lib, record, key = _entry_files(tmp_path / "cache")
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "cache"))
    assert diskcache.lookup(key, lambda path: path) is not None


def test_cache_command(tmp_path, monkeypatch, capsys):
    from tracegrad import cache
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "cache"))
    ccompiler.build(SOURCE)
    assert cache.main(["info"]) == 0
    assert "kernels: 1" in capsys.readouterr().out
    assert cache.main(["clear"]) == 0
    assert cache.info()[1] == 0
    assert cache.main(["bogus"]) == 2


def test_cpu_codegen_setting_is_validated():
    with pytest.raises(ValueError, match="cpu_codegen"):
        tg.config.cpu_codegen = "fortran"
    tg.config.cpu_codegen = "C"
    assert tg.config.cpu_codegen == "c"


def test_rows_left_to_numpy_are_refused_by_the_emitter():
    x = T.dvector("x")
    f = tg.function([x], T.gammaln(x) * 2 + 1)
    assert not csource.can_compile(_spec_of(f))
    ref, got = _both(f, np.linspace(0.5, 9, N))
    np.testing.assert_array_equal(ref, got)


def _w1_function():
    x, y = T.dvectors("x", "y")
    return tg.function([x, y], T.exp(-x * x) * T.sin(3 * x) + T.log1p(abs(y)) * T.tanh(x - y))


def test_threaded_calls_from_several_python_threads(monkeypatch):
    # the C runner serves one call at a time; concurrent calls run on their
    # own threads — every result must still be right
    import threading
    from tracegrad.backend import crunner
    if crunner.runner() is None:
        pytest.skip("no thread runner")
    monkeypatch.setattr(crun, "NATIVE_MIN_PER_THREAD", 1024)
    monkeypatch.setattr(tg.config, "num_threads", 4)
    f = _w1_function()
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(200_000), rng.standard_normal(200_000)
    expected = np.exp(-a * a) * np.sin(3 * a) + np.log1p(np.abs(b)) * np.tanh(a - b)
    f(a, b)
    errors = []

    def work():
        for _ in range(20):
            r = f(a, b)
            if not np.allclose(r, expected, rtol=1e-13, atol=1e-15):
                errors.append(np.max(np.abs(r - expected)))
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_can_use_the_threaded_runner(monkeypatch):
    # (OpenMP's runtime can hang in a forked child; ours makes new threads)
    monkeypatch.setattr(crun, "NATIVE_MIN_PER_THREAD", 1024)
    monkeypatch.setattr(tg.config, "num_threads", 2)
    f = _w1_function()
    a = np.linspace(-2, 2, 100_000)
    expected = f(a, a)
    pid = os.fork()
    if pid == 0:   # the child: one threaded call, then leave at once
        ok = False
        try:
            ok = np.allclose(f(a, a), expected, rtol=1e-13)
        finally:
            os._exit(0 if ok else 3)
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    raise AssertionError("the forked child hung")


# ------------------------------------------------------------ the Program protocol
def test_the_c_program_runs_like_the_numpy_program(monkeypatch):
    # One protocol (fuse.targets.Program): backend.c's program(spec).run
    # takes what the NumPy program's run takes, for any size, into fresh
    # buffers or into given ones (one of them an input's very buffer).
    from tracegrad.backend import numpy as numpy_backend
    from tracegrad.fuse import fuse_outputs
    sizes = _spy_native(monkeypatch)
    x, y = T.dvectors("x", "y")
    (out,) = fuse_outputs([T.exp(-x * x) * T.sin(3 * x) + 0.5 * x * y], target="cpu")
    spec = out.owner.op.spec
    native, host = c_tier.program(spec), numpy_backend.program(spec)
    rng = np.random.default_rng(1)
    for n in (0, 5, N):
        a, b = rng.standard_normal(n), rng.standard_normal(n)
        with tg.config.change_flags(cpu_codegen="numpy"):
            (want,) = host.run([a, b])
        # (each call may run the kernel or NumPy's program, whichever its
        # TierChoice picks: the sum cancels, so errors count in ulps of
        # its terms)
        terms = np.abs(np.exp(-a * a) * np.sin(3 * a)) + np.abs(0.5 * a * b)
        (got,) = native.run([a, b])
        _assert_close(want, got, np.float64, scale=terms)
        buf = np.empty(n)
        assert native.run([a, b], outs=[buf])[0] is buf
        _assert_close(want, buf, np.float64, scale=terms)
        (into_a,) = native.run([a, b], outs=[a])
        assert into_a is a
        _assert_close(want, a, np.float64, scale=terms)
    assert sorted(set(sizes)) == [5, N]   # (small calls too; none for an empty one)


def test_threads_share_chunks_each_exactly_once(monkeypatch):
    # crunner.tg_run: threads claim chunks as they come free. Writing
    # ``x <- 2 * x + 1`` into x's own buffer shows a chunk computed twice
    # (or never) at once; many small chunks and calls give the claims many
    # chances to race, and a second Python thread competes for the runner.
    import threading
    from tracegrad.backend import crunner
    from tracegrad.fuse import fuse_outputs
    if crunner.runner() is None:
        pytest.skip("no thread runner")
    monkeypatch.setattr(crun, "NATIVE_MIN_PER_THREAD", 1024)
    monkeypatch.setattr(crun, "NATIVE_CHUNK_MIN", 256)
    monkeypatch.setattr(crun, "NATIVE_CHUNK_MAX", 512)
    monkeypatch.setattr(c_tier.ThreadChoice, "threaded", lambda self: True)
    monkeypatch.setattr(tg.config, "num_threads", 3)
    assert crun.chunk_size(100_000, 3) == 512
    x = T.dvector("x")
    (out,) = fuse_outputs([2.0 * x + 1.0], target="cpu")
    native = c_tier.program(out.owner.op.spec)
    errors = []

    def work(n, calls):
        v = np.zeros(n)
        with np.errstate(all="ignore"):   # (the kernel then writes straight in)
            for k in range(calls):
                native.run([v], outs=[v])
                if (v != v[0]).any():
                    errors.append((n, k))
                    return
        if v[0] != 2.0 ** calls - 1:
            errors.append((n, "total", v[0]))
    other = threading.Thread(target=work, args=(30_001, 200))
    other.start()
    work(100_003, 400)
    other.join()
    assert not errors


def _drive(choice, calls, first_way_ns, other_way_ns):
    """Make ``calls`` decisions of ``choice``, each recording the time its
    way takes; the ways taken (``True``: threads / the kernel)."""
    ways = []
    for _ in range(calls):
        way = choice.threaded()
        ways.append(way)
        choice.record(way, first_way_ns if way else other_way_ns)
    return ways


def _warm(choice):
    """``choice`` with the first call of each way already made (those
    calls' times are dropped: see ``test_first_call_of_each_way_is_not_counted``)."""
    choice.cold = [False, False]
    return choice


def _one_probe(monkeypatch):
    """One measured call of each way starts a choice (the retries' tests:
    test_each_way_starts_from_the_least_of_its_probes has the probes)."""
    monkeypatch.setattr(c_tier, "NATIVE_PROBES", 1)


def test_each_way_starts_from_the_least_of_its_probes(monkeypatch):
    # one NumPy call of W4's step, delayed by another process, measured
    # 32.6 ns an element against ~0.95 and kept the kernel (1.6 ns) for
    # ~3000 calls: the ways alternate NATIVE_PROBES measured calls each,
    # and each way starts from the least of them
    monkeypatch.setattr(c_tier, "NATIVE_PROBES", 3)
    for kind in (c_tier.ThreadChoice, c_tier.TierChoice):
        choice = _warm(kind())
        times = {True: [1.6, 1.7, 1.6], False: [32.6, 0.96, 0.95]}
        ways = []
        for _ in range(6):
            way = choice.threaded()
            ways.append(way)
            choice.record(way, times[way].pop(0))
        assert ways == [True, False] * 3
        assert (choice.threads, choice.alone) == (1.6, 0.95)
        assert choice.threaded() is False   # NumPy's program / one thread: faster


def test_a_delayed_call_counts_at_most_outlier_times_the_average(monkeypatch):
    # after the probes, one call 100x slower (preempted) moves the average
    # by a quarter of NATIVE_OUTLIER times it, not by 25x: the way stays chosen
    _one_probe(monkeypatch)
    monkeypatch.setattr(c_tier, "NATIVE_OUTLIER", 4.0)
    choice = _warm(c_tier.TierChoice())
    choice.record(True, 1.0)
    choice.record(False, 2.0)
    choice.record(True, 100.0)
    assert choice.threads == 1.0 + (4.0 - 1.0) / 4
    assert choice.threaded() is True
    # a way that really got slower gets there within a few calls
    for _ in range(8):
        choice.record(True, 6.0)
    assert choice.threads > 5.0 and choice.threaded() is False
    # a retry's time replaces the average, capped too: a retry of W2's
    # loss kernel once took 2 ms (5072 ns an element against ~17) and kept
    # NumPy's program for the ~9600 calls its retry cost then asked for
    retried = _warm(c_tier.TierChoice())
    retried.record(True, 1.0)
    retried.record(False, 2.0)
    retried.retrying = True
    retried.record(True, 300.0)
    assert retried.threads == 4.0 and retried._retry_cost() == (4.0 / 2.0 - 1) / c_tier.NATIVE_RETRY_COST


def test_first_call_of_each_way_is_not_counted(monkeypatch):
    # a first call pays the library's symbol binding, page faults, thread
    # starts: W2's loss kernel took 50 us once and 7 us after. Its time is
    # dropped and the way is tried again.
    _one_probe(monkeypatch)
    for kind in (c_tier.ThreadChoice, c_tier.TierChoice):
        choice = kind()
        ways = []
        for ns in (500.0, 1.0, 900.0, 3.0):
            way = choice.threaded()
            ways.append(way)
            choice.record(way, ns)
        assert ways == [True, True, False, False]
        assert (choice.threads, choice.alone) == (1.0, 3.0)
        assert choice.threaded() is True


def test_thread_choice_follows_the_measured_times(monkeypatch):
    # Each way is tried first; then the faster runs, the other every
    # NATIVE_RETRY calls; threads must win by NATIVE_THREADS_GAIN.
    _one_probe(monkeypatch)
    monkeypatch.setattr(c_tier, "NATIVE_RETRY", 4)
    choice = _warm(c_tier.ThreadChoice())
    ways = _drive(choice, 12, 1.0, 2.0)   # threads twice as fast
    assert ways[:2] == [True, False]
    assert ways[2:] == [True, False, True, True, True, False, True, True, True, False]
    slow = _warm(c_tier.ThreadChoice())
    slow.record(True, 1.95)
    slow.record(False, 2.0)    # threads only 2.5% faster: one thread
    assert [slow.threaded() for _ in range(3)] == [False, False, False]
    for _ in range(6):          # more calls alone: their average moves a quarter a call
        slow.record(False, 2.0)
    assert slow.threaded() is True   # (the 4th call: a retry of the threads)
    slow.record(True, 0.5)           # the other core is free now: the retry's time counts whole
    assert [slow.threaded() for _ in range(3)] == [True, True, True]


def test_both_ways_give_the_same_results(monkeypatch):
    monkeypatch.setattr(crun, "NATIVE_MIN_PER_THREAD", 1024)
    monkeypatch.setattr(tg.config, "num_threads", 2)
    # (the kernel's turn every call: NumPy's program differs in the last bits)
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: True)
    f = _w1_function()
    a = np.linspace(-2, 2, 50_001)
    b = np.cos(a)
    results = [f(a, b) for _ in range(6)]   # (threads, alone, then the faster)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_an_in_place_call_in_pieces_has_a_tier_choice(monkeypatch):
    # (NumPy's error state acts on flags: the kernel would write in pieces
    # through a scratch, so the NumPy program competes)
    f, _ = _sqrt_in_place()
    native = c_tier.program(_spec_of(f))
    if native is None:
        pytest.skip("no C++ compiler")
    native.run([np.full(20_000, 1e-3)])   # (builds the contiguous kernel)
    monkeypatch.setattr(c_tier.TierChoice, "threaded", lambda self: False)  # NumPy's turn
    handed_back = []

    def call(outs, aliased):
        out = outs[0]
        return native.run_prepared([out], outs, out.shape, out.size, aliased,
                                   lambda: handed_back.append(True))
    aliased = object()   # (never run: the kernel's pieces are not reached)
    same = np.full(20_000, 1e-3)
    assert call([same], aliased) and handed_back == [True]
    # straight in (every flag ignored), or into fresh outputs: the kernel
    # competes with NumPy's program too, each layout with its own choice
    with np.errstate(all="ignore"):
        assert call([same], aliased) and handed_back == [True, True]
    assert call([np.empty(20_000)], None) and handed_back == [True, True, True]
    kernel = native._kernels[(False,)]
    assert {(20_000 .bit_length(), True), (20_000 .bit_length(), False)} <= set(kernel.tiers)


def test_tier_choice_runs_the_faster_of_kernel_and_numpy_program(monkeypatch):
    # a strided call: the kernel first, the NumPy program next, then the
    # faster (no margin), the other after NATIVE_RETRY calls, and after
    # twice as many each time a retry confirms the choice (no wait for
    # the retries' cost here: test_retries_of_a_much_slower_way_wait_longer)
    _one_probe(monkeypatch)
    monkeypatch.setattr(c_tier, "NATIVE_RETRY", 4)
    monkeypatch.setattr(c_tier, "NATIVE_RETRY_COST", 1e9)
    ways = _drive(_warm(c_tier.TierChoice()), 31, 3.0, 1.0)   # NumPy three times as fast
    assert [k + 1 for k, w in enumerate(ways) if w] == [1, 6, 14, 30]
    # a retry that finds the kernel faster now switches, and the wait resets
    flip = _warm(c_tier.TierChoice())
    _drive(flip, 14, 3.0, 1.0)
    assert flip.interval == 16 and flip.threaded() is False
    flip.record(False, 1.0)
    for _ in range(14):
        assert flip.threaded() is False
        flip.record(False, 1.0)
    assert flip.threaded() is True       # the retry
    flip.record(True, 0.5)               # the kernel is faster now
    assert flip.interval == 4 and flip.threaded() is True
    even = _warm(c_tier.TierChoice())
    even.record(True, 1.0)
    even.record(False, 1.0)
    assert even.threaded() is True   # a tie keeps the kernel


def test_retries_of_a_much_slower_way_wait_longer(monkeypatch):
    # NumPy's program 9x slower: a retry costs 8 kernel calls, so at 1% it
    # waits 800 calls at least (the doubling wait alone: 4, 8, 16...)
    _one_probe(monkeypatch)
    monkeypatch.setattr(c_tier, "NATIVE_RETRY", 4)
    monkeypatch.setattr(c_tier, "NATIVE_RETRY_COST", 0.01)
    ways = _drive(_warm(c_tier.TierChoice()), 2000, 1.0, 9.0)
    retries = [k for k, w in enumerate(ways) if not w][1:]
    assert retries and all(b - a >= 800 for a, b in zip([1] + retries, retries))
    # 10% apart: a retry costs 0.1 call, so 10 calls at least; the longer
    # of that and the doubling wait (4, 8, 16) between retries
    close = _drive(_warm(c_tier.TierChoice()), 40, 1.0, 1.1)
    assert [k for k, w in enumerate(close) if not w][1:] == [12, 23, 39]


@pytest.mark.parametrize("shape", [(1000, 10), (40, 700)])
def test_strided_calls_give_the_same_values_through_either_tier(monkeypatch, shape):
    # short rows (NumPy may win) and long rows (the kernel does): every call,
    # whichever tier its TierChoice picked, equals the NumPy tier's values
    monkeypatch.setattr(c_tier, "NATIVE_RETRY", 3)
    x = T.fmatrix("x")
    b = T.fvector("b")
    f = tg.function([x, b], T.exp(-x * x) * T.tanh(x + b))
    rng = np.random.default_rng(5)
    xv = rng.standard_normal(shape).astype("float32")
    xv[0, :2] = [np.nan, -0.0]
    bv = rng.standard_normal(shape[1]).astype("float32")
    with tg.config.change_flags(cpu_codegen="numpy"):
        ref = tg.function([x, b], T.exp(-x * x) * T.tanh(x + b))(xv, bv)
    seen = set()
    orig = c_tier.TierChoice.threaded

    def spy(self):
        way = orig(self)
        seen.add(way)
        return way
    monkeypatch.setattr(c_tier.TierChoice, "threaded", spy)
    for _ in range(8):
        _assert_close(ref, f(xv, bv), "float32")
    assert seen == {True, False}   # both tiers ran
