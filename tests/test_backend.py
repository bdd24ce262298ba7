"""Backends without a GPU: device names and flags, the lazy import of CuPy,
the ``RuntimeError`` saying what is missing, host <-> device helpers, the
fused in-place update plan (on NumPy), and the C semantics of the fake
CuPy that ``test_gpu.py`` runs on."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fake_cupy
import tracegrad as tg
import tracegrad.tensor as T
from cinterp import CTYPE_OF_DTYPE, CompileError, CProgram
from tracegrad.backend import CPU, canonical_device, get_backend
from tracegrad.config import Config, parse_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_python(code, flags=None):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TRACEGRAD_FLAGS", None)
    if flags is not None:
        env["TRACEGRAD_FLAGS"] = flags
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------ names and flags
@pytest.mark.parametrize("name,expected", [("cpu", "cpu"), ("CPU", "cpu"), ("cuda", "cuda"),
                                           ("cuda0", "cuda"), ("cuda:1", "cuda"),
                                           ("gpu", "cuda"), ("GPU", "cuda")])
def test_device_names(name, expected):
    assert canonical_device(name) == expected


def test_unknown_devices_are_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        canonical_device("tpu")
    config = Config()
    with pytest.raises(ValueError, match="device"):
        config.device = "tpu"
    config.device = "gpu"
    assert config.device == "cuda"
    config.device = "cuda0"
    assert config.device == "cuda"


def test_flags_parse():
    assert parse_flags("floatX=float32, device=cuda") == {"floatX": "float32",
                                                          "device": "cuda"}
    assert parse_flags("") == {}
    with pytest.raises(ValueError, match="name=value"):
        parse_flags("device")


def test_importing_tracegrad_never_imports_cupy():
    result = _run_python("""
        import sys
        import numpy as np
        import tracegrad as tg
        import tracegrad.tensor as T
        x = T.dvector("x")
        w = tg.shared(np.ones(3))
        f = tg.function([x], [T.exp(x) * w + 1.0], updates={w: w * 2.0})
        f(np.ones(3))
        print("cupy" in sys.modules, "cupyx" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_flags_select_cuda_and_asking_for_it_says_what_is_missing():
    result = _run_python("""
        import sys
        sys.modules["cupy"] = None           # CuPy absent, whatever this machine has
        import tracegrad as tg
        import tracegrad.tensor as T
        print(tg.config.device, tg.config.floatX)
        x = T.vector("x")                    # building graphs needs no device
        y = T.exp(x) + 1
        try:
            tg.function([x], y)
        except RuntimeError as exc:
            print("RuntimeError:", exc)
    """, flags="floatX=float32,device=cuda")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "cuda float32"
    assert lines[1].startswith("RuntimeError:") and "CuPy is not installed" in lines[1]
    assert "pip install tracegrad[gpu]" in lines[1]


def test_bad_flags_fail_at_import():
    result = _run_python("import tracegrad", flags="device=tpu")
    assert result.returncode != 0 and "device" in result.stderr


# ------------------------------------------------------------ what is missing
def test_without_cupy_every_entry_point_says_so():
    with fake_cupy.installed(modules={"cupy": None}):
        for ask in (lambda: get_backend("cuda"),
                    lambda: tg.shared(1.0, device="cuda"),
                    lambda: tg.function([T.dscalar()], T.dscalar() * 2, device="cuda",
                                        on_unused_input="ignore")):
            with pytest.raises(RuntimeError, match="CuPy is not installed") as info:
                ask()
            assert "pip install tracegrad[gpu]" in str(info.value)
            assert "device='cpu'" in str(info.value)


class _BrokenCupyFinder:
    """Makes ``import cupy`` fail as a CuPy built for another CUDA does."""

    def find_spec(self, name, path=None, target=None):
        if name != "cupy":
            return None
        import importlib.machinery
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("libcudart.so.12: cannot open shared object file")


def test_a_broken_cupy_install_is_reported_with_its_cause():
    finder = _BrokenCupyFinder()
    with fake_cupy.installed(modules={}):
        sys.meta_path.insert(0, finder)
        try:
            with pytest.raises(RuntimeError, match="CuPy cannot be imported") as info:
                get_backend("cuda")
        finally:
            sys.meta_path.remove(finder)
            sys.modules.pop("cupy", None)
    assert "libcudart.so.12" in str(info.value)
    assert "pip install tracegrad[gpu]" in str(info.value)


def test_cupy_without_a_gpu_says_there_is_no_gpu():
    with fake_cupy.installed(device_count=0):
        with pytest.raises(RuntimeError, match="finds no usable GPU") as info:
            tg.shared(np.ones(2), device="cuda")
        assert "cudaErrorNoDevice" in str(info.value)
        assert "CuPy is not installed" not in str(info.value)
    with fake_cupy.installed(device_count=0, device_error="cudaErrorInsufficientDriver"):
        with pytest.raises(RuntimeError, match="cudaErrorInsufficientDriver"):
            get_backend("cuda")


def test_a_failed_lookup_is_not_remembered():
    with fake_cupy.installed(modules={"cupy": None}):
        with pytest.raises(RuntimeError):
            get_backend("cuda")
    with fake_cupy.installed() as cp:
        backend = get_backend("cuda")
        assert backend.xp is cp and get_backend("gpu") is backend
        assert backend.name == "cuda" and backend.fused_updates
        assert backend.device_name() == "Fake GPU (NumPy)"


# ------------------------------------------------------------ host <-> device
def test_host_and_device_helpers():
    with fake_cupy.installed() as cp:
        gpu = get_backend("cuda")
        host = np.arange(3.0)
        dev = gpu.asarray(host)
        assert isinstance(dev, cp.ndarray)
        host[0] = 7.0                          # a transfer copies
        assert float(dev[0]) == 0.0
        assert gpu.asarray(dev) is dev
        assert type(gpu.to_host(dev)) is np.ndarray
        copy = gpu.host_copy(dev)
        copy[1] = 9.0
        assert float(dev[1]) == 1.0
        # The CPU backend takes device arrays by copying them to the host.
        assert type(CPU.asarray(dev)) is np.ndarray
        assert np.array_equal(CPU.to_host(dev), [0.0, 1.0, 2.0])
        assert CPU.to_host(host) is host
        s = tg.shared(dev, device="cpu")
        assert type(s.get_value(borrow=True)) is np.ndarray
        s.set_value(cp.asarray([4.0, 5.0]))
        assert np.array_equal(s.get_value(), [4.0, 5.0])


# ------------------------------------------------------------ fused in-place updates
@pytest.fixture
def cpu_fused_updates(monkeypatch):
    """The in-place plan is backend-neutral: check its semantics on NumPy."""
    monkeypatch.setattr(CPU, "fused_updates", True)


def test_plan_on_numpy_writes_into_the_buffer(cpu_fused_updates):
    w = tg.shared(np.ones(4), name="w")
    g = T.dvector("g")
    f = tg.function([g], w.sum(), updates={w: w - 0.5 * g * w})
    assert len(f.schedule.deferred) == 1
    buf = w.get_value(borrow=True)
    out = f(np.arange(4.0))
    assert float(out) == 4.0                       # outputs read the old value
    assert w.get_value(borrow=True) is buf
    np.testing.assert_array_equal(buf, 1 - 0.5 * np.arange(4.0))


def test_plan_keeps_update_semantics_on_numpy(cpu_fused_updates):
    x = tg.shared(np.array([1.0, 2.0]), name="x")
    y = tg.shared(np.array([10.0, 20.0]), name="y")
    swap = tg.function([], [], updates={x: y * 1.0 + 0.0, y: x * 2.0 - 0.0})
    assert not swap.schedule.deferred              # each reads the other's buffer
    swap()
    assert np.array_equal(x.get_value(), [10.0, 20.0]) and np.array_equal(
        y.get_value(), [2.0, 4.0])
    # A value also returned as an output is not written in place.
    z = tg.shared(np.zeros(2), name="z")
    new = z * 2.0 + 1.0
    both = tg.function([], new, updates={z: new})
    assert not both.schedule.deferred
    assert np.array_equal(both(), [1.0, 1.0]) and np.array_equal(z.get_value(), [1.0, 1.0])


def test_plan_falls_back_when_the_buffer_does_not_fit(cpu_fused_updates):
    s = tg.shared(np.zeros(1), name="s", shape_can_change=True)
    d = T.dvector("d")
    f = tg.function([d], [], updates={s: (s + d) * 2.0})
    assert len(f.schedule.deferred) == 1
    f(np.ones(3))                                  # (1,) + (3,): a bigger value
    assert s.get_value().shape == (3,)             # replaced the buffer
    buf = s.get_value(borrow=True)
    f(np.ones(3))                                  # now it fits: in place
    assert s.get_value(borrow=True) is buf
    np.testing.assert_array_equal(buf, [6.0, 6.0, 6.0])


def test_plan_is_all_or_nothing(cpu_fused_updates):
    a = tg.shared(np.ones(3), name="a")
    b = tg.shared(np.ones(3), name="b")
    u, v = T.dvectors("u", "v")
    f = tg.function([u, v], [], updates={a: a * 2.0 + u, b: b * 3.0 + v * u})
    assert len(f.schedule.deferred) == 2
    with pytest.raises(ValueError):
        f(np.ones(3), np.ones(4))
    assert np.array_equal(a.get_value(), np.ones(3))
    assert np.array_equal(b.get_value(), np.ones(3))


def test_plan_refuses_inputs_overlapping_a_target(cpu_fused_updates):
    w = tg.shared(np.arange(4.0), name="w")
    x = T.dvector("x")
    f = tg.function([x], [], updates={w: w + x * 2.0})
    buf = w.get_value(borrow=True)
    (d,) = f.schedule.deferred
    arrays = [buf if v.name == "w" else buf[::-1] for v in d.node.inputs]
    assert not d.fits(arrays, [buf], np.ndarray, np.may_share_memory)
    assert d.fits([buf if v.name == "w" else buf.copy() for v in d.node.inputs], [buf],
                  np.ndarray, np.may_share_memory)
    f(buf[::-1])                                   # x is w's own buffer, reversed
    np.testing.assert_array_equal(w.get_value(), [6.0, 5.0, 4.0, 3.0])


# ------------------------------------------------------------ the fake's C semantics
def _run_c(body, inputs, out_type="float32", preamble=""):
    """Run a kernel body on ``{name: (array, C type)}``; returns ``out0``."""
    out = np.zeros(np.broadcast_shapes(*[np.shape(v) for v, _ in inputs.values()]),
                   out_type)
    env = {k: (np.asarray(v), t) for k, (v, t) in inputs.items()}
    with np.errstate(all="ignore"):
        CProgram(body, preamble, list(inputs) + ["out0"]).run(
            env, {"out0": (out, CTYPE_OF_DTYPE[out_type])})
    return out


def test_fake_kernels_follow_c_not_numpy():
    a = (np.array([-7, 7, 7, -7], "int32"), "int")
    b = (np.array([2, 2, -2, 0], "int32"), "int")
    assert list(_run_c("out0 = in0 / in1;", {"in0": a, "in1": b}, "int32")) == [-3, 3, -3, -1]
    assert list(_run_c("out0 = in0 % in1;", {"in0": a, "in1": b}, "int32")) == [-1, 1, 1, -7]
    t = (np.array([True, False]), "bool")
    assert list(_run_c("out0 = (~in0);", {"in0": t}, "bool")) == [True, True]
    nan = (np.array([np.nan, 1.0], "float32"), "float")
    one = (np.array([0.5, 2.0], "float32"), "float")
    assert list(_run_c("out0 = max(in0, in1);", {"in0": nan, "in1": one})) == [0.5, 2.0]
    big = (np.array([np.nan, 3e9, -3e9, -2.7], "float32"), "float")
    assert list(_run_c("out0 = ((int)in0);", {"in0": big}, "int32")) == [
        0, 2 ** 31 - 1, -2 ** 31, -2]
    half = (np.array([1.0], "float16"), "float16")
    assert _run_c("const float v0 = (((float)in0) / ((float)3.0));\nout0 = v0;",
                  {"in0": half}, "float16")[0] == np.float16(np.float32(1) / np.float32(3))


def test_fake_kernels_refuse_what_nvrtc_refuses():
    i = (np.array([1, 2], "int32"), "int")
    f = (np.array([1.0, 2.0], "float32"), "float")
    with pytest.raises(CompileError, match="overloaded"):
        _run_c("out0 = exp(in0);", {"in0": i})
    with pytest.raises(CompileError, match="template"):
        _run_c("out0 = tg_f(in0, in1);", {"in0": i, "in1": f},
               preamble="template <typename T> __device__ __forceinline__ T tg_f(T a, T b) "
                        "{ return a + b; }")
    with pytest.raises(CompileError, match="undefined"):
        _run_c("out0 = in7;", {"in0": i})
