"""``python -m bench.gpu [--quick] [--json FILE] [--only G1,G2,G3]``: the GPU
workloads of ``shared/BENCHMARKS.md``, tracegrad (``device='cuda'``) side by
side with its GPU peers in one process.

- G1: W1 (``exp(-x*x)*sin(3*x) + log1p(abs(y))*tanh(x-y) + 0.5*x*y``) at
  N=1e8 float32 against CuPy eager (the baseline), ``cupy.fuse``,
  ``jax.jit`` and ``torch.compile`` on the GPU; each system's traffic (read
  x and y, write the result: 12 bytes per element) is also reported as a
  fraction of the device's copy bandwidth, measured in the same run by
  ``cupy.copyto`` between two device arrays (8 bytes per element);
- G2: W4 (MLP 784-256-10, tanh, softmax cross-entropy, SGD) at batch 4096;
- G3: W2 (the Theano tutorial's logistic regression step) at N=1e6 x 784
  float32 (``--quick``: 1e5).

For G2/G3 the baseline is CuPy with the hand-written gradient of
``bench.training``; every system's first step (outputs and weights) is
checked against it before timing. Inputs live on the device before timing
starts; each timed call ends with a device synchronisation, so the times
are those of finished work. A peer that is missing (no CuPy, no GPU, JAX
without CUDA, PyTorch without CUDA) is reported as missing.
"""
import argparse
import json
import platform
import sys
import time

import numpy as np

from bench import peers, training, w1
from bench.timing import Missing, interleaved

LR = training.LR


# ------------------------------------------------------------ devices
def cupy():
    cp = peers.require("cupy")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise Missing(f"CuPy finds no GPU ({exc})") from None
    if count < 1:
        raise Missing("CuPy finds no GPU")
    return cp


def jax_gpu():
    jax = peers.require("jax")
    try:
        device = jax.devices("gpu")[0]
    except Exception as exc:
        raise Missing(f"JAX has no GPU backend ({exc})") from None
    return jax, device


def torch_cuda():
    torch = peers.require("torch")
    if not torch.cuda.is_available():
        raise Missing("PyTorch without CUDA")
    return torch


def to_host(value):
    """A NumPy array from a CuPy, JAX or PyTorch array."""
    if hasattr(value, "get") and not isinstance(value, dict):
        return value.get()
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def synced(fn, sync):
    def run():
        result = fn()
        sync()
        return result
    return run


def _cupy_sync(cp):
    return cp.cuda.get_current_stream().synchronize


def _check_outputs(name, got, expected, rtol, limit=np.inf):
    """Results against the baseline's, where both are finite and the
    baseline's magnitude is below ``limit`` (the naive float32 cross-entropy
    of a saturated sigmoid is precision-limited above ~16: a stable
    formulation differs from it there, correctly)."""
    got = got if isinstance(got, (list, tuple)) else [got]
    for k, (g, e) in enumerate(zip(got, expected)):
        g, e = to_host(g), np.asarray(e)
        if g.shape != e.shape:
            raise AssertionError(f"{name}: result {k} has shape {g.shape}, expected {e.shape}")
        if e.dtype == bool:
            agree = np.mean(g == e)
            if agree < 0.99:
                raise AssertionError(f"{name}: result {k} agrees on {agree:.1%} of entries")
            continue
        finite = np.isfinite(e) & np.isfinite(g) & (np.abs(e) < limit)
        np.testing.assert_allclose(g[finite].astype(np.float64), e[finite].astype(np.float64),
                                   rtol=rtol, atol=rtol, err_msg=f"{name}: result {k}")


# ------------------------------------------------------------ G1: W1
def _w1_fn(m):
    return lambda x, y: m.exp(-x * x) * m.sin(3 * x) + m.log1p(m.abs(y)) * m.tanh(x - y) \
        + 0.5 * x * y


def g1_systems():
    def cupy_eager(x, y):
        cp = cupy()
        xd, yd = cp.asarray(x), cp.asarray(y)
        fn = _w1_fn(cp)
        return synced(lambda: fn(xd, yd), _cupy_sync(cp))

    def cupy_fuse(x, y):
        cp = cupy()
        xd, yd = cp.asarray(x), cp.asarray(y)
        fn = cp.fuse()(_w1_fn(cp))
        return synced(lambda: fn(xd, yd), _cupy_sync(cp))

    def jax_jit(x, y):
        jax, device = jax_gpu()
        import jax.numpy as jnp
        xd, yd = jax.device_put(x, device), jax.device_put(y, device)
        fn = jax.jit(_w1_fn(jnp))
        return lambda: fn(xd, yd).block_until_ready()

    def torch_compile(x, y):
        torch = torch_cuda()
        xd, yd = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
        fn = torch.compile(_w1_fn(torch))
        return synced(lambda: fn(xd, yd), torch.cuda.synchronize)

    def tracegrad_cuda(x, y):
        cp = cupy()
        import tracegrad as tg
        xs, ys, out = w1.tracegrad_graph(x.dtype.name)
        f = tg.function([xs, ys], out, device="cuda")
        xd, yd = cp.asarray(x), cp.asarray(y)
        return synced(lambda: f(xd, yd), _cupy_sync(cp))

    return {"cupy eager": cupy_eager, "cupy.fuse": cupy_fuse, "jax.jit (gpu)": jax_jit,
            "torch.compile (gpu)": torch_compile, "tracegrad (cuda)": tracegrad_cuda}


def copy_seconds(n, dtype, rounds):
    """Median seconds of a device-to-device copy of ``n`` elements."""
    cp = cupy()
    src = cp.ones(n, dtype)
    dst = cp.empty_like(src)
    sync = _cupy_sync(cp)
    return interleaved({"copy": synced(lambda: cp.copyto(dst, src), sync)}, rounds,
                       target_s=0.02)["copy"]


def g1_cases(quick):
    n = 10 ** 7 if quick else 10 ** 8
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    expected = w1.numpy_eager(x, y)
    yield dict(workload="G1", case=f"W1 N={n:.0e} float32", systems=g1_systems(),
               args=(x, y), baseline="cupy eager", target_s=0.02,
               budget_s=10.0 if quick else 40.0, n=n, itemsize=4,
               check=lambda name, got, case: _check_outputs(name, got, [expected], 2e-5))


# ------------------------------------------------------------ G2/G3: training
# The steps are bench.training's, run on the device; ``State.weights`` gives
# host arrays, for the check.
State = training.State


def _torch_sgd(torch, params, grads):
    """``p -= LR * g`` in place for each parameter, then a device sync."""
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(LR * g)
    torch.cuda.synchronize()


def w2_cupy(x, y, w0, b0):
    cp = cupy()
    xd, yd = cp.asarray(x), cp.asarray(y)
    w, b = cp.asarray(w0), cp.asarray(b0)
    return State(synced(lambda: training.w2_hand_step(cp, xd, yd, w, b), _cupy_sync(cp)),
                 lambda: [to_host(w), to_host(b)])


def w2_tracegrad(x, y, w0, b0):
    cp = cupy()
    import tracegrad as tg
    import tracegrad.tensor as T
    dtype = x.dtype.name
    xs = T.tensor(dtype, (None, None), "x")
    ys = T.tensor(dtype, (None,), "y")
    w = tg.shared(w0, name="w", device="cuda")
    b = tg.shared(b0, name="b", device="cuda")
    p_1 = 1 / (1 + T.exp(-T.dot(xs, w) - b))
    xent = -ys * T.log(p_1) - (1 - ys) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = tg.function([xs, ys], [p_1 > 0.5, xent], device="cuda",
                        updates=[(w, w - LR * gw), (b, b - LR * gb)])
    xd, yd = cp.asarray(x), cp.asarray(y)
    return State(synced(lambda: train(xd, yd), _cupy_sync(cp)),
                 lambda: [w.get_value(), b.get_value()])


def w2_jax(x, y, w0, b0):
    jax, device = jax_gpu()
    import jax.numpy as jnp
    step = training.w2_jax_step(jax, jnp)
    box = [[jax.device_put(w0, device), jax.device_put(b0, device)]]
    xd, yd = jax.device_put(x, device), jax.device_put(y, device)

    def run():
        box[0], aux = step(box[0], xd, yd)
        jax.block_until_ready(aux)
        return aux
    return State(run, lambda: [to_host(p) for p in box[0]])


def w2_torch(x, y, w0, b0):
    torch = torch_cuda()
    xd, yd = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    params = [torch.from_numpy(w0.copy()).cuda(), torch.from_numpy(b0.copy()).cuda()]

    def loss(w, b, x, y):
        p = 1 / (1 + torch.exp(-(x @ w) - b))
        xent = -y * torch.log(p) - (1 - y) * torch.log(1 - p)
        return xent.mean() + 0.01 * (w ** 2).sum(), (p > 0.5, xent)

    grad_fn = torch.compile(torch.func.grad_and_value(loss, argnums=(0, 1), has_aux=True))

    def run():
        grads, (_, aux) = grad_fn(*params, xd, yd)
        _torch_sgd(torch, params, grads)
        return aux
    return State(run, lambda: [to_host(p) for p in params])


def w4_cupy(x, y, params0):
    cp = cupy()
    params = [cp.asarray(p) for p in params0]
    xd, yd = cp.asarray(x), cp.asarray(y)
    onehot = cp.eye(10, dtype="float32")[yd]
    sync = _cupy_sync(cp)

    def step():
        loss = training.w4_hand_step(cp, xd, yd, params, onehot)
        sync()
        return loss.astype("float32")
    return State(step, lambda: [to_host(p) for p in params])


def w4_tracegrad(x, y, params0):
    cp = cupy()
    import tracegrad as tg
    import tracegrad.tensor as T
    xs = T.fmatrix("x")
    ys = T.lvector("y")
    shared = [tg.shared(p, name=n, device="cuda")
              for p, n in zip(params0, ["w1", "b1", "w2", "b2"])]
    w1_, b1, w2, b2 = shared
    h = T.tanh(T.dot(xs, w1_) + b1)
    p = T.nnet.softmax(T.dot(h, w2) + b2)
    loss = T.nnet.categorical_crossentropy(p, ys).mean()
    grads = T.grad(loss, shared)
    train = tg.function([xs, ys], loss, device="cuda",
                        updates=[(s, s - LR * g) for s, g in zip(shared, grads)])
    xd, yd = cp.asarray(x), cp.asarray(y)
    return State(synced(lambda: train(xd, yd), _cupy_sync(cp)),
                 lambda: [s.get_value() for s in shared])


def w4_jax(x, y, params0):
    jax, device = jax_gpu()
    import jax.numpy as jnp
    step = training.w4_jax_step(jax, jnp)
    box = [[jax.device_put(p, device) for p in params0]]
    xd, yd = jax.device_put(x, device), jax.device_put(y, device)

    def run():
        box[0], value = step(box[0], xd, yd)
        return value.block_until_ready()
    return State(run, lambda: [to_host(p) for p in box[0]])


def w4_torch(x, y, params0):
    torch = torch_cuda()
    params = [torch.from_numpy(p.copy()).cuda() for p in params0]
    xd, yd = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def loss(w1_, b1, w2, b2, x, y):
        h = torch.tanh(x @ w1_ + b1)
        return torch.nn.functional.cross_entropy(h @ w2 + b2, y)

    grad_fn = torch.compile(torch.func.grad_and_value(loss, argnums=(0, 1, 2, 3)))

    def run():
        grads, value = grad_fn(*params, xd, yd)
        _torch_sgd(torch, params, grads)
        return value
    return State(run, lambda: [to_host(p) for p in params])


G2_SYSTEMS = {"cupy (hand grad)": w4_cupy, "jax.jit (gpu)": w4_jax,
              "torch.compile (gpu)": w4_torch, "tracegrad (cuda)": w4_tracegrad}
G3_SYSTEMS = {"cupy (hand grad)": w2_cupy, "jax.jit (gpu)": w2_jax,
              "torch.compile (gpu)": w2_torch, "tracegrad (cuda)": w2_tracegrad}


def training_case(wid, label, systems, make_args, rtol, budget_s):
    """A case whose systems are checked against the CuPy baseline's first
    step (outputs and weights) before timing."""
    args = make_args()
    ref = systems["cupy (hand grad)"](*args)
    ref_out = ref()
    ref_out = [to_host(o) for o in (ref_out if isinstance(ref_out, (list, tuple))
                                    else [ref_out])]
    ref_weights = ref.weights()
    states = {}

    def builder(name, fn):
        def build(*_):
            states[name] = fn(*args)
            return states[name]
        return build

    def check(name, got, case):
        _check_outputs(name, got, ref_out, rtol, limit=10.0)
        for k, (g, e) in enumerate(zip(states[name].weights(), ref_weights)):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol,
                                       err_msg=f"{name}: weight {k} after one step")

    return dict(workload=wid, case=label, check=check, baseline="cupy (hand grad)",
                systems={name: builder(name, fn) for name, fn in systems.items()},
                budget_s=budget_s, target_s=0.02)


def training_cases(wid, quick):
    budget = 10.0 if quick else 40.0
    if wid == "G2":
        yield training_case("G2", "W4 batch=4096 float32", G2_SYSTEMS,
                            lambda: training.w4_data(4096), 2e-3, budget)
    else:
        n = 10 ** 5 if quick else 10 ** 6
        yield training_case("G3", f"W2 N={n:.0e} float32", G3_SYSTEMS,
                            lambda: training.w2_data(n, "float32"), 2e-3, budget)


# ------------------------------------------------------------ main
def run(wid, quick, rounds, log):
    from bench.__main__ import run_case
    rows = []
    cases = g1_cases(quick) if wid == "G1" else training_cases(wid, quick)
    for case in cases:
        case_rows = run_case(case, rounds, log)
        if wid == "G1" and any("seconds" in row for row in case_rows):
            _bandwidth(case, case_rows, rounds, log)
        rows.extend(case_rows)
    return rows


def _bandwidth(case, rows, rounds, log):
    """Add each system's share of the device's copy bandwidth to its row."""
    n, itemsize = case["n"], case["itemsize"]
    copy_s = copy_seconds(n, "float32", rounds)
    copy_bw = 2 * n * itemsize / copy_s
    log(f"G1 device copy: {copy_s * 1e3:.3f} ms, {copy_bw / 1e9:.0f} GB/s "
        f"(read + write {2 * n * itemsize / 1e9:.1f} GB)")
    for row in rows:
        if "seconds" in row:
            achieved = 3 * n * itemsize / row["seconds"]
            row["GB_per_s"] = achieved / 1e9
            row["copy_bandwidth_fraction"] = achieved / copy_bw
            log(f"G1 {row['system']:<24} {achieved / 1e9:7.0f} GB/s = "
                f"{row['copy_bandwidth_fraction']:.0%} of copy bandwidth")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--json", metavar="FILE", help="also write all rows as JSON")
    parser.add_argument("--only", metavar="G1,G2,G3", help="comma-separated workloads")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per case")
    args = parser.parse_args(argv)
    selected = args.only.upper().split(",") if args.only else ["G1", "G2", "G3"]
    unknown = [w for w in selected if w not in ("G1", "G2", "G3")]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from G1, G2, G3")
    rounds = args.rounds or (5 if args.quick else 15)

    def log(line):
        print(line, flush=True)

    import tracegrad as tg
    from tracegrad.backend import get_backend
    try:
        device = get_backend("cuda").device_name()
    except RuntimeError as exc:
        device = f"unavailable ({exc})"
    log(f"tracegrad {tg.__version__}, numpy {np.__version__}, python "
        f"{platform.python_version()}, GPU: {device}")
    started = time.perf_counter()
    rows = []
    for wid in selected:
        log(f"--- {wid}")
        try:
            rows.extend(run(wid, args.quick, rounds, log))
        except Missing as exc:
            log(f"{wid} missing: {exc}")
            rows.append(dict(workload=wid, status=f"missing: {exc}"))
    log(f"done in {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(python=platform.python_version(), numpy=np.__version__,
                           device=device, argv=sys.argv[1:], rows=rows), f, indent=1,
                      default=str)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
