"""``device='cuda'`` end to end, on two backends.

Every test here takes the ``device`` fixture and runs twice:

- ``fake``: the NumPy-backed CuPy of ``fake_cupy.py`` (strict about host /
  device mixing, C semantics for generated kernels): runs everywhere;
- ``cuda``: the real CuPy on a GPU, marked ``gpu`` (skipped without CuPy or
  a device; see ``conftest.py``).

The flow (inputs moved to the device, results and shared buffers on it,
``get_value`` on the host, updates written into the shared buffers by the
fused kernel, float16 computed in float32), the op table (every forward
row of the op test files) and random elementwise graphs (the fusion tests'
Hypothesis strategy) are compared with NumPy within dtype tolerance.
"""
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import fake_cupy
import tracegrad as tg
import tracegrad.tensor as T
from optable import DEFAULT_TOL, FORWARD_TOL, symbolic_like
from tracegrad.backend import DeviceMismatchError, get_backend
from tracegrad.random import RandomStreams
from tracegrad.trace import toposort

import test_fuse_cpu
import test_ops_elemwise
import test_ops_index
import test_ops_linalg
import test_ops_nnet
import test_ops_reduce
import test_ops_shape


class Device:
    """What a test needs to know about the device it runs on."""

    def __init__(self, kind, cp):
        self.kind = kind
        self.cp = cp

    def host(self, value):
        assert isinstance(value, self.cp.ndarray), f"expected a device array, got {type(value)}"
        return self.cp.asnumpy(value)


@pytest.fixture(params=["fake", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "fake":
        with fake_cupy.installed() as cp:
            yield Device("fake", cp)
    else:
        import cupy
        yield Device("cuda", cupy)


def _w1(x, y):
    return T.exp(-x * x) * T.sin(3 * x) + T.log1p(abs(y)) * T.tanh(x - y) + 0.5 * x * y


def _w1_np(x, y):
    return np.exp(-x * x) * np.sin(3 * x) + np.log1p(np.abs(y)) * np.tanh(x - y) + 0.5 * x * y


def _close(got, expected, dtype):
    rtol, atol = FORWARD_TOL.get(np.dtype(dtype).name, DEFAULT_TOL)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)


# ------------------------------------------------------------ the flow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_w1_results_are_device_arrays(device, dtype):
    x, y = T.tensor(dtype, (None,), "x"), T.tensor(dtype, (None,), "y")
    f = tg.function([x, y], _w1(x, y), device="cuda")
    rng = np.random.default_rng(0)
    xv, yv = (rng.standard_normal(1000).astype(dtype) for _ in range(2))
    got = f(xv, yv)                                   # NumPy inputs are moved
    assert isinstance(got, device.cp.ndarray) and got.dtype == dtype
    _close(device.host(got), _w1_np(xv, yv), dtype)
    again = f(device.cp.asarray(xv), device.cp.asarray(yv))   # device inputs as they are
    _close(device.host(again), device.host(got), dtype)


def test_w1_is_one_cached_kernel(device):
    x, y = T.fvectors("x", "y")
    f = tg.function([x, y], _w1(x, y), device="cuda")
    fused = [n for n in f.maker.fgraph.toposort() if type(n.op).__name__ == "FusedElemwise"]
    assert len(fused) == 1
    g = tg.function([x, y], _w1(x, y), device="cuda")   # equal structure: same kernel
    for fn in (f, g, f):
        fn(np.ones(4, "float32"), np.ones(4, "float32"))
    if device.kind == "fake":
        assert len(device.cp.kernels) == 1
        kernel, = device.cp.kernels
        assert kernel.calls == 3
        assert "exp(" in kernel.operation and kernel.in_text == "float32 in0, float32 in1"


def test_scalars_lists_and_0d_results(device):
    a, b = T.dscalars("a", "b")
    f = tg.function([a, b], a + b, device="cuda")
    r = f(2, 3)
    assert isinstance(r, device.cp.ndarray) and r.shape == () and float(r) == 5.0
    v = T.dvector("v")
    s = tg.function([v], [v.sum(), T.dot(v, v), v.max()], device="cuda")([1.0, 2.0, 3.0])
    assert [float(device.host(r)) for r in s] == [6.0, 14.0, 3.0]


def test_linear_algebra_and_reductions(device):
    x, w = T.fmatrix("x"), T.fmatrix("w")
    out = T.nnet.softmax(T.dot(x, w)).mean(axis=0)
    f = tg.function([x, w], out, device="cuda")
    rng = np.random.default_rng(1)
    xv = rng.standard_normal((8, 5)).astype("float32")
    wv = rng.standard_normal((5, 3)).astype("float32")
    z = xv @ wv
    e = np.exp(z - z.max(axis=1, keepdims=True))
    _close(device.host(f(xv, wv)), (e / e.sum(axis=1, keepdims=True)).mean(axis=0), "float32")


def test_shared_variables_live_on_the_device(device):
    value = np.arange(6.0).reshape(2, 3)
    w = tg.shared(value, name="w", device="cuda")
    assert w.device == "cuda"
    buf = w.get_value(borrow=True)
    assert isinstance(buf, device.cp.ndarray) and w.get_value(borrow=True) is buf
    host = w.get_value()
    assert type(host) is np.ndarray and np.array_equal(host, value)
    host[0, 0] = 99.0                       # a copy: the shared value does not change
    assert float(w.get_value()[0, 0]) == 0.0
    value[0, 1] = 42.0                      # shared() copied the NumPy array
    assert float(w.get_value()[0, 1]) == 1.0
    w.set_value(np.ones((4, 3)))            # a new shape, from the host
    assert isinstance(w.get_value(borrow=True), device.cp.ndarray)
    assert w.get_value().shape == (4, 3)
    w.set_value(device.cp.zeros((1, 3)))    # or from the device
    assert np.array_equal(w.get_value(), np.zeros((1, 3)))
    x = T.dmatrix("x")
    assert np.array_equal(device.host(tg.function([x], x + w, device="cuda")(np.ones((2, 3)))),
                          np.ones((2, 3)))
    evaluated = (w * 2.0 + 1.0).eval()      # the reference evaluator works on the host
    assert type(evaluated) is np.ndarray and np.array_equal(evaluated, np.ones((1, 3)))


def test_config_device_is_the_default(device, monkeypatch):
    monkeypatch.setattr(tg.config, "device", "cuda")
    s = tg.shared(np.float32(2.0))
    assert s.device == "cuda"
    x = T.fvector("x")
    f = tg.function([x], x * s)
    assert f.maker.backend.name == "cuda"
    assert isinstance(f([1, 2]), device.cp.ndarray)


def test_updates_are_written_into_the_buffer_by_the_fused_kernel(device):
    w = tg.shared(np.ones(5, "float32"), name="w", device="cuda")
    g = T.fvector("g")
    step = tg.function([g], [], updates=[(w, w - 0.5 * g * w)], device="cuda")
    (deferred,) = step.schedule.deferred
    assert type(deferred.op).__name__ == "FusedElemwise"
    assert not step.schedule.updates and not step.schedule.steps
    buf = w.get_value(borrow=True)
    step(np.arange(5, dtype="float32"))
    step(np.ones(5, dtype="float32"))
    expected = (1 - 0.5 * np.arange(5)) * 0.5
    assert w.get_value(borrow=True) is buf
    np.testing.assert_allclose(device.host(buf), expected)
    if device.kind == "fake":
        (kernel,) = device.cp.kernels
        assert kernel.calls == 2 and "out0" in kernel.out_text


def test_momentum_updates_share_one_kernel(device):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((3, 4))
    w = tg.shared(w0, name="w", device="cuda")
    v = tg.shared(np.zeros((3, 4)), name="v", device="cuda")
    g = T.dmatrix("g")
    v_new = 0.9 * v - 0.1 * g
    step = tg.function([g], [], updates={v: v_new, w: w + v_new}, device="cuda")
    assert len(step.schedule.deferred) == 1
    bufs = w.get_value(borrow=True), v.get_value(borrow=True)
    wv, vv = w0.copy(), np.zeros((3, 4))
    for _ in range(3):
        gv = rng.standard_normal((3, 4))
        step(gv)
        vv = 0.9 * vv - 0.1 * gv
        wv = wv + vv
    assert (w.get_value(borrow=True), v.get_value(borrow=True)) == bufs
    np.testing.assert_allclose(w.get_value(), wv, rtol=1e-12)
    np.testing.assert_allclose(v.get_value(), vv, rtol=1e-12)


def test_update_semantics_hold_on_the_device(device):
    x = tg.shared(np.array([1.0, 2.0]), name="x", device="cuda")
    y = tg.shared(np.array([10.0, 20.0]), name="y", device="cuda")
    swap = tg.function([], [], updates={x: y * 1.0 + 0.0, y: x * 2.0 - 0.0}, device="cuda")
    swap()
    assert np.array_equal(x.get_value(), [10.0, 20.0])
    assert np.array_equal(y.get_value(), [2.0, 4.0])
    # An update reading a transposed view of its own buffer is not written in place.
    m = tg.shared(np.arange(4.0).reshape(2, 2), name="m", device="cuda")
    t = tg.function([], [], updates={m: m.T * 2.0 + 1.0}, device="cuda")
    t()
    np.testing.assert_array_equal(m.get_value(), np.arange(4.0).reshape(2, 2).T * 2 + 1)
    # A new shape (set_value) or a broadcast to a bigger shape replaces the buffer.
    s = tg.shared(np.zeros(3), name="s", device="cuda")
    d = T.dmatrix("d")
    grow = tg.function([d], [], updates={s: (s + d * 2.0).sum(axis=0) * 1.0 + 0.5},
                       device="cuda")
    grow(np.ones((2, 3)))
    np.testing.assert_array_equal(s.get_value(), [4.5, 4.5, 4.5])
    s.set_value(np.zeros(5))
    grow(np.ones((1, 5)))
    np.testing.assert_array_equal(s.get_value(), np.full(5, 2.5))


def test_a_failing_call_changes_no_shared_variable(device):
    a = tg.shared(np.ones(3), name="a", device="cuda")
    b = tg.shared(np.ones(3), name="b", device="cuda")
    u, v = T.dvectors("u", "v")
    f = tg.function([u, v], [], updates={a: a * 2.0 + u, b: b * 3.0 + u * v}, device="cuda")
    with pytest.raises(ValueError, match="shapes"):
        f(np.ones(3), np.ones(4))
    assert np.array_equal(a.get_value(), np.ones(3)) and np.array_equal(b.get_value(),
                                                                         np.ones(3))
    f(np.ones(3), np.ones(3))
    assert np.array_equal(a.get_value(), [3.0] * 3) and np.array_equal(b.get_value(),
                                                                       [4.0] * 3)


def test_devices_do_not_mix(device):
    cpu_w = tg.shared(np.ones(3), name="cpu_w", device="cpu")
    gpu_w = tg.shared(np.ones(3), name="gpu_w", device="cuda")
    x = T.dvector("x")
    with pytest.raises(DeviceMismatchError, match="cpu_w.*'cpu'") as info:
        tg.function([x], x * cpu_w, device="cuda")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert "device='cuda'" in str(info.value)
    with pytest.raises(DeviceMismatchError, match="gpu_w"):
        tg.function([x], x * gpu_w, device="cpu")
    with pytest.raises(DeviceMismatchError):
        tg.function([x], [], updates={gpu_w: gpu_w + x}, device="cpu")
    # A device array given to a CPU function is copied to the host.
    f = tg.function([x], x * 2, device="cpu")
    assert type(f(device.cp.asarray([1.0, 2.0]))) is np.ndarray


def test_float16_computes_in_float32_inside_the_kernel(device):
    x, y = T.tensor("float16", (None,), "x"), T.tensor("float16", (None,), "y")
    f = tg.function([x, y], _w1(x, y), device="cuda")
    rng = np.random.default_rng(3)
    xv, yv = (rng.uniform(-2, 2, 2000).astype("float16") for _ in range(2))
    got = device.host(f(xv, yv))
    assert got.dtype == np.float16
    once = _w1_np(xv.astype("float32"), yv.astype("float32")).astype("float16")
    # Rounded to half precision once, at the store: within one half ulp of
    # the float32 result (the op-by-op float16 evaluation is not).
    ulp = np.spacing(np.abs(once).astype("float16")).astype("float32")
    assert np.all(np.abs(got.astype("float32") - once.astype("float32")) <= ulp)
    if device.kind == "fake":
        (kernel,) = device.cp.kernels
        assert kernel.in_text == "float16 in0, float16 in1"
        assert "const float v" in kernel.operation and "half" not in kernel.operation


def test_random_streams_draw_on_the_device(device, monkeypatch):
    monkeypatch.setattr(tg.config, "device", "cuda")
    srng = RandomStreams(seed=7)
    u = srng.uniform((1000,), low=2.0, high=3.0)
    n = srng.normal((2, 3), dtype="float32")
    f = tg.function([], [u, n])
    first = f()
    assert all(isinstance(r, device.cp.ndarray) for r in first)
    uh = device.host(first[0])
    assert uh.min() >= 2.0 and uh.max() < 3.0 and 2.4 < uh.mean() < 2.6
    assert first[1].dtype == np.float32
    second = f()
    assert not np.array_equal(uh, device.host(second[0]))   # the stream advanced
    srng.seed(7)
    np.testing.assert_array_equal(device.host(f()[0]), uh)  # same seed, same numbers


def test_special_functions_on_the_device(device):
    x = T.dvector("x")
    sp = pytest.importorskip("scipy.special", reason="SciPy gives the reference values")
    f = tg.function([x], [T.erf(x), T.gammaln(x), T.psi(x)], device="cuda")
    xv = np.linspace(0.5, 4.0, 9)
    # cupyx.scipy.special and SciPy differ by a few ulps, not more.
    for got, ref in zip(f(xv), [sp.erf(xv), sp.gammaln(xv), sp.psi(xv)]):
        np.testing.assert_allclose(device.host(got), ref, rtol=1e-12, atol=1e-14)


def test_errors_name_the_op_and_shapes(device):
    a, b = T.dvectors("a", "b")
    f = tg.function([a, b], T.exp(a) * b + 1.0, device="cuda")
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones(4))
    assert "(3,)" in str(info.value) and "(4,)" in str(info.value)
    assert "test_gpu.py" in str(info.value)


def test_scan_on_the_device(device):
    x = T.dvector("x")
    out, updates = tg.scan(lambda v, acc: acc + v * 2.0, sequences=[x],
                           outputs_info=[T.constant(0.0)])
    f = tg.function([x], out[-1], updates=updates, device="cuda")
    assert float(device.host(f(np.arange(4.0)))) == 12.0


def test_functions_pickle_with_their_device(device):
    w = tg.shared(np.ones(2), name="w", device="cuda")
    x = T.dvector("x")
    g = pickle.loads(pickle.dumps(tg.function([x], x * w, device="cuda")))
    assert g.maker.backend is get_backend("cuda")
    got = g(np.full(2, 3.0))
    assert isinstance(got, device.cp.ndarray) and np.array_equal(device.host(got), [3.0, 3.0])


# ------------------------------------------------------------ the op table
def _op_cases():
    params = []
    for module in (test_ops_elemwise, test_ops_reduce, test_ops_shape, test_ops_index,
                   test_ops_linalg, test_ops_nnet):
        for case in module.CASES:
            for dtype in case.dtypes:
                for k, shapes in enumerate(case.shapes):
                    params.append(pytest.param(case, dtype, shapes,
                                               id=f"{case.name}-{dtype}-{k}"))
    return params


@pytest.mark.parametrize("case,dtype,shapes", _op_cases())
def test_op_table_matches_numpy(device, case, dtype, shapes):
    """Every forward row of the op tables, compiled for the device, against
    the row's NumPy reference (dtype, shape and values within tolerance)."""
    rng = np.random.default_rng(0)
    arrays = case.inputs(rng, dtype, shapes)
    variables = [symbolic_like(a, f"x{i}") for i, a in enumerate(arrays)]
    out = case.sym(*variables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(case.ref(*arrays))
        f = tg.function(variables, out, device="cuda", on_unused_input="ignore")
        got = device.host(f(*arrays))
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    rtol, atol = case.tol or FORWARD_TOL.get(expected.dtype.name, DEFAULT_TOL)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=f"{case.name} {dtype} {shapes}")


# ------------------------------------------------------------ random graphs
RANDOM_GRAPH_TOL = {"float16": 1e-2, "float32": 1e-6, "float64": 1e-12}
RANDOM_GRAPH_TOL_GPU = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(case=test_fuse_cpu.graphs())
def test_random_graphs_match_numpy(device, case):
    """Random elementwise graphs (fused into generated kernels on the
    device) against the same graphs compiled for the CPU."""
    outputs, values = case
    inputs = list(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tg.function(inputs, outputs, device="cpu", on_unused_input="ignore")(
            *values.values())
        got = tg.function(inputs, outputs, device="cuda", on_unused_input="ignore")(
            *values.values())
    # float16 values are held in float inside a kernel and rounded only when
    # stored, where NumPy rounds after every op: any float16 in the graph
    # bounds the agreement by half precision.
    half = any(o.type.dtype == "float16" for n in toposort(outputs) for o in n.outputs)
    for r, g in zip(ref, got):
        g = device.host(g)
        assert g.dtype == r.dtype and g.shape == r.shape, (g.dtype, r.dtype, g.shape, r.shape)
        if r.dtype.kind in "fc":
            # The fake runs NumPy's own math; a GPU's differs by a few ulps.
            tol = (RANDOM_GRAPH_TOL_GPU if device.kind == "cuda"
                   else RANDOM_GRAPH_TOL)["float16" if half else r.real.dtype.name]
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, r)
