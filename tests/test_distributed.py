"""tracegrad.distributed: collectives over MPI (issue 19).

The multi-rank checks start ``mpiexec -n 2`` and ``-n 3`` subprocesses
running tests/distributed_worker.py (one case per launch; every value and
gradient check is in that file). Here: the launches with their timeouts, the
single-process behaviour (``size() == 1``) in this process, and the import
rules. Skipped only when mpi4py or ``mpiexec`` is missing
(``pip install 'tracegrad[mpi]'``).
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
MPIEXEC = shutil.which("mpiexec")

dist = pytest.importorskip("tracegrad.distributed",
                           reason="mpi4py is not installed (pip install 'tracegrad[mpi]')")
needs_mpiexec = pytest.mark.skipif(MPIEXEC is None,
                                   reason="no mpiexec on PATH (pip install 'tracegrad[mpi]')")


def mpirun(n, *argv, timeout=120, env=None):
    """``mpiexec -n n python argv...`` from the repository root (``env``:
    more environment variables)."""
    env = dict(os.environ, **(env or {}), PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # MPICH busy-polls while it waits; with more ranks than free cores
        # (CI, a loaded laptop) yielding makes the -n 3 runs ~3x faster.
        MPIR_CVAR_ENABLE_HEAVY_YIELD="1", OMP_NUM_THREADS="1")
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *map(str, argv)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(proc, case, n):
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mpiexec -n {n} {case} failed:\n{out}"
    for r in range(n):
        assert f"OK {case} rank {r}" in proc.stdout, out


# ------------------------------------------------------------ under mpiexec
@needs_mpiexec
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_values_gradients_and_bucketing(n):
    # every collective's value (dtypes, 0-d, zero-size) and gradient against
    # finite differences of the global cost, Rop, ties, bucketed == unbucketed,
    # ranks with different shapes -> DistributedError on all of them
    _ok(mpirun(n, WORKER, "collectives"), "collectives", n)


@needs_mpiexec
@pytest.mark.parametrize("n", [2, 3])
def test_nccl_runner_on_the_fake_cupy(n):
    # device='cuda' collectives through NCCL calls on raw device pointers
    # (tests/fake_nccl.py moves the data with MPI): every collective's value,
    # device gradients == host ones, one NCCL allreduce per bucket, and the
    # communicator made from rank 0's MPI-broadcast unique id
    _ok(mpirun(n, WORKER, "nccl"), "nccl", n)


@needs_mpiexec
@pytest.mark.parametrize("n", [2, 3])
def test_cuda_aware_mpi_takes_the_device_arrays(n):
    # set_gpu_collectives('mpi'): mpi4py gets the (fake) CuPy arrays through
    # __cuda_array_interface__; every collective's value, buckets, no host copy
    _ok(mpirun(n, WORKER, "cuda_mpi", env={"TRACEGRAD_CUDA_AWARE_MPI": "1"}), "cuda_mpi", n)


@needs_mpiexec
def test_mismatched_graphs_give_the_error_on_every_rank():
    proc = mpirun(2, WORKER, "mismatch")
    _ok(proc, "mismatch", 2)
    assert proc.stdout.count("First difference at step 0") == 2, proc.stdout


@needs_mpiexec
def test_mismatched_scan_bodies_give_the_error_on_every_rank():
    # a different op before the body's collective, and a body without it
    proc = mpirun(2, WORKER, "scan_mismatch")
    _ok(proc, "scan_mismatch", 2)
    # (the ranks' lines may interleave in mpiexec's output: count substrings)
    out = proc.stdout
    for variant, step in (("op", 0), ("missing", 1)):
        for r in range(2):
            assert f"error on rank {r} ({variant}): " in out, out
        assert out.count(f"First difference at step {step} of inner of step 3: ") >= 2, out


@needs_mpiexec
def test_a_rank_whose_graph_has_no_collective_ends_the_job_after_the_timeout():
    # rank 1's scan body lacks the allreduce, so it never joins the check
    start = time.perf_counter()
    proc = mpirun(2, WORKER, "no_collective_on_one_rank", timeout=60,
                  env={"TRACEGRAD_GRAPH_CHECK_TIMEOUT": "2"})
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert "rank 0 of 2 waited 2 s" in proc.stderr and "MPI_Abort" in proc.stderr, proc.stderr
    assert "OK no_collective_on_one_rank rank 0" not in proc.stdout
    assert elapsed < 40, elapsed


@needs_mpiexec
def test_shapes_changing_on_one_rank_only_end_the_job_after_the_timeout():
    start = time.perf_counter()
    proc = mpirun(2, WORKER, "shape_changes_alone", timeout=60,
                  env={"TRACEGRAD_CHECK_TIMEOUT": "2"})
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert "rank 1 of 2: the shapes of allreduce{sum} changed at this call ((4,))" \
        in proc.stderr and "MPI_Abort" in proc.stderr, proc.stderr
    assert "OK shape_changes_alone" not in proc.stdout
    assert elapsed < 40, elapsed


@needs_mpiexec
def test_a_raising_rank_ends_the_job_within_seconds():
    start = time.perf_counter()
    proc = mpirun(2, WORKER, "raise", timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert "rank 1 of 2 raised ValueError" in proc.stderr, proc.stderr
    assert "OK raise" not in proc.stdout
    # (start-up of two interpreters included; a hang would hit the timeout)
    assert elapsed < 30, elapsed


@needs_mpiexec
def test_example_matches_single_process_training(tmp_path):
    example = ROOT / "examples" / "data_parallel.py"
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    args = ["--steps", "5", "--no-plot"]
    # (the 2-process run with non-blocking, overlapped buckets)
    proc = mpirun(2, example, *args, "--save", two, "--overlap", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "final loss" in proc.stdout and "samples/s" in proc.stdout, proc.stdout
    proc = subprocess.run([sys.executable, str(example), *args, "--save", str(one)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = np.load(one), np.load(two)
    assert sorted(a.files) == sorted(b.files) and a.files
    for k in a.files:
        # same global batches; only the order of the float64 sums differs
        np.testing.assert_allclose(b[k], a[k], rtol=1e-10, atol=0, err_msg=k)


# ------------------------------------------------------------ one process
# The op table (tests/optable.py) on one rank, where every collective is the
# identity (``size() == 1``): dtypes, 0-d and zero-size inputs, static shape
# rules, vjp and jvp through the harness. The multi-rank values and
# gradients are the mpiexec tests above.
_SHAPES = [[(2, 3)], [()], [(0, 3)]]
_GATHER_SHAPES = [[(2, 3)], [(0, 3)]]


def _same(a):
    return a


CASES = [
    OpCase("allreduce-sum", lambda x: dist.allreduce(x, "sum"), _same, _SHAPES,
           dtypes=("float64", "float32", "int64", "complex128")),
    OpCase("allreduce-mean", lambda x: dist.allreduce(x, "mean"), _same, _SHAPES),
    OpCase("allreduce-max", lambda x: dist.allreduce(x, "max"), _same, _SHAPES,
           dtypes=("float64", "int32")),
    OpCase("allreduce-min", lambda x: dist.allreduce(x, "min"), _same, _SHAPES),
    OpCase("broadcast", dist.broadcast, _same, _SHAPES, dtypes=("float64", "float16")),
    OpCase("reduce", dist.reduce, _same, _SHAPES),
    OpCase("allgather", lambda x: dist.allgather(x, 1), _same, _GATHER_SHAPES),
    OpCase("reduce_scatter", dist.reduce_scatter, _same, _GATHER_SHAPES),
    OpCase("allreduce_many", lambda x: dist.allreduce_many([x, 2 * x], "mean")[1],
           lambda a: 2 * a, _SHAPES),
]
test_forward, test_grad = table_tests(CASES)


def test_special_values_pass_through():
    x = T.dvector("x")
    a = np.array([np.nan, np.inf, -np.inf, -0.0])
    got = tg.function([x], [dist.allreduce(x), dist.allreduce(x, "max")])(a)
    for g in got:
        np.testing.assert_array_equal(g, a)
        assert np.signbit(g[3])


def test_check_shapes_policy_round_trips():
    assert dist.check_shapes_enabled()
    dist.set_check_shapes(False)
    try:
        assert not dist.check_shapes_enabled()
    finally:
        dist.set_check_shapes(True)


def test_single_process_collectives_are_the_identity():
    assert dist.rank() == 0 and dist.size() == 1
    x = T.dmatrix("x")
    outs = [dist.allreduce(x, "sum"), dist.allreduce(x, "mean"), dist.allreduce(x, "max"),
            dist.broadcast(x), dist.reduce(x), dist.allgather(x, 1), dist.reduce_scatter(x, 0)]
    a = np.arange(6.0).reshape(2, 3)
    for got in tg.function([x], outs)(a):
        np.testing.assert_array_equal(got, a)
    g = tg.function([x], tg.grad(T.sum(outs[0] * outs[6] ** 2), x))(a)
    np.testing.assert_allclose(g, 3 * a ** 2)


def test_single_process_helpers():
    data = np.arange(10).reshape(5, 2)
    assert dist.shard(data) is not data and np.array_equal(dist.shard(data), data)
    w = tg.shared(np.ones(3), name="w")
    dist.sync_shared([w])
    np.testing.assert_array_equal(w.get_value(), np.ones(3))
    x = T.dvector("x")
    cost = T.sum((w * x - 1.0) ** 2)
    step = tg.function([x], cost, updates=dist.data_parallel(cost, [w], lr=0.1))
    step(np.array([1.0, 2.0, 3.0]))
    want = 1 - 0.1 * 2 * (np.ones(3) * [1, 2, 3] - 1) * [1, 2, 3]
    np.testing.assert_allclose(w.get_value(), want)


def test_reused_buffers_never_overwrite_results_the_caller_keeps():
    xs = [T.dvector("a"), T.dvector("b")]
    f = tg.function(xs, dist.allreduce_many(xs, "mean") + [dist.allreduce(xs[0])])
    bucket = next(s.node.op for s in f.schedule.steps
                  if isinstance(s.node.op, dist.AllreduceBucket))
    f(np.zeros(3), np.zeros(2))
    flat = id(bucket.arena.flat)
    first = f(np.ones(3), np.ones(2))       # (the dropped result's buffer, reused)
    assert id(bucket.arena.flat) == flat
    second = f(np.full(3, 2.0), np.full(2, 2.0))
    for got, want in zip(first + second, [1, 1, 1, 2, 2, 2]):
        np.testing.assert_array_equal(got, np.full(got.shape, float(want)))
    assert not np.shares_memory(first[0], second[0])
    # a view of one result (not the result itself) keeps the buffer too
    part = f(np.full(3, 3.0), np.full(2, 3.0))[1][1:]
    third = f(np.full(3, 4.0), np.full(2, 4.0))
    np.testing.assert_array_equal(part, [3.0])
    np.testing.assert_array_equal(third[1], [4.0, 4.0])


def _dense_step(views_on, steps=4, keep=False, overlap=False):
    """A two-layer data-parallel SGD step (dense weight and bias gradients:
    ``dot`` and ``SumTo``/``sum``), run ``steps`` times; ``keep``: the
    caller keeps every call's averaged gradients."""
    from tracegrad.distributed import views
    rng = np.random.default_rng(5)
    params = [tg.shared(rng.standard_normal(s), name=f"p{k}")
              for k, s in enumerate([(4, 5), (5,), (5, 3), (3,)])]
    x = T.dmatrix("x")
    h = T.tanh(T.dot(x, params[0]) + params[1])
    cost = T.sum((T.dot(h, params[2]) + params[3]) ** 2)
    grads = dist.averaged_gradients(cost, params, overlap=overlap)
    views.set_bucket_views(views_on)
    try:
        f = tg.function([x], grads if keep else [], updates=None if keep else
                        [(p, p - 0.01 * g) for p, g in zip(params, grads)])
    finally:
        views.set_bucket_views(True)
    a = rng.standard_normal((6, 4))
    got = [f(a + k) for k in range(steps)]
    bucket = next(s.node.op for s in f.schedule.steps if hasattr(s.node.op, "arena"))
    return f, bucket, got, [p.get_value() for p in params]


@pytest.mark.parametrize("overlap", [False, True])
def test_gradients_are_written_into_the_bucket(overlap):
    from tracegrad.distributed.views import IntoBucket
    _dense_step(False, 1)                   # (warm-up: the first call of the process)
    f, bucket, _, with_views = _dense_step(True, overlap=overlap)
    wrapped = [s.node for s in f.schedule.steps if isinstance(s.node.op, IntoBucket)]
    assert len(wrapped) == 4, [str(s.node.op) for s in f.schedule.steps]
    # only the first call packs (it makes the layout); later ones reduce in place
    assert bucket.arena.packs == 1
    _, plain, _, packed = _dense_step(False, overlap=overlap)
    assert plain.arena.packs == 4
    for got, want in zip(with_views, packed):
        np.testing.assert_array_equal(got, want)


def test_functions_writing_into_buckets_pickle():
    import pickle
    f, bucket, got, _ = _dense_step(True, steps=2, keep=True)
    g = pickle.loads(pickle.dumps(f))
    ops = [s.node.op for s in g.schedule.steps]
    arenas = {id(op.arena) for op in ops if hasattr(op, "arena")}
    assert len(arenas) == 1 and bucket.arena.flat is not None    # (one arena, shared)
    new = next(op for op in ops if isinstance(op, dist.AllreduceBucket))
    assert new.arena.flat is None
    a = np.random.default_rng(5).standard_normal((6, 4))
    for got, want in zip(g(a), f(a)):
        np.testing.assert_array_equal(got, want)


def test_kept_gradients_are_not_written_over_by_later_calls():
    _, bucket, kept, _ = _dense_step(True, keep=True)
    _, _, want, _ = _dense_step(False, keep=True)
    assert bucket.arena.packs == 1         # (a new buffer per call, producers write into it)
    for got_call, want_call in zip(kept, want):
        for got, w in zip(got_call, want_call):
            np.testing.assert_array_equal(got, w)
    assert not np.shares_memory(kept[0][0], kept[1][0])


def test_wrapped_producers_keep_their_aliasing_declarations():
    # (the fallback runs op.impl, which for SumTo may return its input)
    from tracegrad.distributed.buffers import Arena
    from tracegrad.distributed.views import IntoBucket
    from tracegrad.ops.base import SumTo
    from tracegrad.ops.linalg import TensorDot
    assert IntoBucket(SumTo(), Arena(), 0).view_map == {0: [0]}
    assert IntoBucket(TensorDot((1,), (0,)), Arena(), 1).view_map == {}


def test_arena_uses_tensors_in_place_only_when_all_are_its_views():
    from tracegrad.distributed.buffers import Arena
    arena = Arena()
    shapes = ((2,), (3, 1))
    assert arena.view_for(0) is None        # (no layout before the first pack)
    first = arena.layout(shapes, np.dtype(np.float64))
    assert arena.holds(first) and not arena.holds([first[0], np.zeros((3, 1))])
    del first
    # a call that stopped after slot 0, then a whole call
    v0 = arena.view_for(0)
    del v0
    v0, v1 = arena.view_for(0), arena.view_for(1)
    assert arena.holds((v0, v1))
    # the caller keeps a view of a result: the next call gets a new buffer
    part = v1[1:]
    old = arena.flat
    del v0, v1
    w0, w1 = arena.view_for(0), arena.view_for(1)
    assert arena.flat is not old and not np.shares_memory(w0, part)
    assert arena.holds((w0, w1)) and not arena.holds((w1, w0))


def test_arena_gathers_arrays_of_its_layout_in_one_call():
    from tracegrad.distributed.buffers import Arena
    from tracegrad.distributed.gather import gatherer
    arena = Arena()
    a, b = np.arange(2.0), np.arange(3.0).reshape(3, 1) + 10
    assert not arena.gather((a, b))         # (no layout yet)
    arena.layout(((2,), (3, 1)), np.dtype(np.float64))     # (the views: dropped)
    if gatherer() is None:
        assert not arena.gather((a, b))     # (no compiler: NumPy packs)
        return
    packs = arena.packs
    assert arena.gather((a, b)) and arena.packs == packs + 1 and all(arena.handed)
    np.testing.assert_array_equal(arena.flat, [0, 1, 10, 11, 12])
    assert arena.holds(arena.views)
    for misfit in ((a, b.ravel()),                      # another shape
                   (a, b.astype(np.float32)),           # another dtype
                   (a.astype(np.int64), b),             # same item size, another dtype
                   (a, np.arange(6.0).reshape(6, 1)[::2]),  # not contiguous
                   (a,), (a, b, b), [a, b], (a, "no buffer")):
        assert not arena.gather(misfit), misfit
    kept = arena.views[1]                   # (a result the caller keeps)
    assert not arena.gather((a, b))
    del kept
    assert arena.gather((a + 1, b + 1))
    np.testing.assert_array_equal(arena.flat, [1, 2, 11, 12, 13])


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "complex128", "int32"])
def test_bucket_outputs_are_exact_with_and_without_the_c_gather(dtype, monkeypatch):
    """The bucket's outputs (stored unchecked: ``Op.exact_outputs``) are
    arrays of their dtype on every host path: gathered, packed with NumPy
    (no compiler), float16 through float32, a shape change."""
    from tracegrad.distributed import buffers
    from tracegrad.distributed.gather import gatherer
    xs = [T.TensorType(dtype, (None,) * nd)() for nd in (1, 2, 0)]
    f = tg.function(xs, dist.allreduce_many(xs, "sum"))
    plain = tg.function(xs, dist.allreduce_many(xs, "sum", 0))
    gathered, real, real_reduce = [], buffers.Arena.gather, buffers.Arena.gather_reduce

    def counted(self, arrays):
        gathered.append(real(self, arrays))
        return gathered[-1]

    def counted_reduce(self, arrays, comm):     # (gather and reduce in one C call)
        gathered.append(real_reduce(self, arrays, comm))
        return gathered[-1]
    monkeypatch.setattr(buffers.Arena, "gather", counted)
    monkeypatch.setattr(buffers.Arena, "gather_reduce", counted_reduce)
    c_gather = gatherer() is not None
    for gather in (True, False):
        if not gather:
            monkeypatch.setattr(buffers, "gatherer", lambda: None)
            f = tg.function(xs, dist.allreduce_many(xs, "sum"))
        del gathered[:]
        for n in (3, 3, 4, 4):
            args = [np.arange(n).astype(dtype), np.ones((2, n), dtype), np.asarray(5, dtype)]
            got = f(*args)
            for g, want in zip(got, plain(*args)):
                assert type(g) is np.ndarray and g.dtype == np.dtype(dtype), (gather, g)
                np.testing.assert_array_equal(g, want)
                assert g.tobytes() == want.tobytes()
            del got, g      # (kept results would make each call take a new buffer)
        # (the second call of each shape is copied in by the C call: float16
        # travels as float32, packed apart)
        wire = dtype != "float16"
        assert gathered.count(True) == (2 if gather and c_gather and wire else 0), gathered


def test_overlapped_buckets_gather_passed_in_arrays(monkeypatch):
    from tracegrad.distributed import buffers
    from tracegrad.distributed.gather import gatherer
    xs = [T.dvector("a"), T.dmatrix("b")]
    f = tg.function(xs, dist.allreduce_many(xs, "mean", overlap=True, shapes=[(3,), (2, 2)]))
    gathered, real = [], buffers.Arena.gather

    def counted(self, arrays):
        gathered.append(real(self, arrays))
        return gathered[-1]
    monkeypatch.setattr(buffers.Arena, "gather", counted)
    for k in range(3):
        a, b = np.arange(3.0) + k, np.full((2, 2), float(k))
        got = f(a, b)
        np.testing.assert_array_equal(got[0], a)
        np.testing.assert_array_equal(got[1], b)
        del got     # (a result kept would make the next call take a new buffer)
    # (the first call lays the buffer out; then one C call packs both)
    assert gathered == ([False, True, True] if gatherer() is not None else [False] * 3)


def test_graph_check_lists_scan_bodies_and_ifelse_branches():
    from tracegrad.distributed.safety import flat_steps
    from tracegrad.ifelse import ifelse
    x = T.dvector("x")
    ys, _ = tg.scan(lambda v, acc: acc + dist.allreduce(v), sequences=[x],
                    outputs_info=[T.constant(0.0)])
    z = ifelse(T.gt(x[0], 0), dist.broadcast(x), x * 2)
    f = tg.function([x], [ys, z])
    steps = flat_steps([s.node for s in f.schedule.steps])
    labels = {type(n.op).__name__: label for label, n in steps}
    assert " of inner of step " in labels["Allreduce"], labels
    assert " of then_graph of step " in labels["Broadcast"], labels
    # (only inner graphs hold collectives here; link_hook finds them all the same)
    assert not any(isinstance(s.node.op, dist.Collective) for s in f.schedule.steps)
    np.testing.assert_array_equal(f(np.array([1.0, 2.0]))[0], [1.0, 3.0])


def _device_collectives():
    x = T.dmatrix("x")
    outs = [dist.allreduce(x, "mean"), dist.broadcast(x), dist.reduce(x),
            dist.allgather(x, 1), dist.reduce_scatter(x)] + dist.allreduce_many([x, 2 * x])
    return tg.function([x], outs, device="cuda")


def test_gpu_collectives_policy_picks_nccl_or_the_host():
    import fake_cupy
    import fake_nccl
    a = np.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match="mode must be one of"):
        dist.set_gpu_collectives("gloo")
    try:
        with fake_cupy.installed(modules=fake_nccl.modules()):
            for mode, via_nccl in (("auto", True), ("host", False), ("nccl", True)):
                dist.set_gpu_collectives(mode)
                before = len(fake_nccl.CALLS)
                got = _device_collectives()(a)
                assert (len(fake_nccl.CALLS) > before) == via_nccl, mode
                want = [a, a, a, a, a, a, 2 * a]
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(fake_cupy.to_host(g), w)
        with fake_cupy.installed():     # (a CuPy without NCCL)
            dist.set_gpu_collectives("auto")
            np.testing.assert_array_equal(fake_cupy.to_host(_device_collectives()(a)[0]), a)
            dist.set_gpu_collectives("nccl")
            with pytest.raises(RuntimeError, match="cupy.cuda.nccl is not available"):
                _device_collectives()(a)
    finally:
        dist.set_gpu_collectives("auto")


def test_gpu_collectives_policy_with_a_cuda_aware_mpi(monkeypatch):
    import fake_cupy
    import fake_nccl
    from tracegrad.distributed import cudampi, devices
    a = np.arange(6.0).reshape(2, 3)
    try:
        with fake_cupy.installed() as cupy:       # (a CuPy without NCCL)
            for aware, mode, kind in (("1", "mpi", cudampi.MpiCudaRunner),
                                      ("1", "auto", cudampi.MpiCudaRunner),
                                      ("0", "auto", type(None)), ("1", "host", type(None))):
                monkeypatch.setenv("TRACEGRAD_CUDA_AWARE_MPI", aware)
                dist.set_gpu_collectives(mode)
                assert type(devices.runner(dist.comm, cupy)) is kind, (aware, mode)
                got = _device_collectives()(a)
                for g, w in zip(got, [a, a, a, a, a, a, 2 * a]):
                    np.testing.assert_array_equal(fake_cupy.to_host(g), w)
            monkeypatch.setenv("TRACEGRAD_CUDA_AWARE_MPI", "0")
            dist.set_gpu_collectives("mpi")
            with pytest.raises(RuntimeError, match="does not say it is CUDA-aware"):
                _device_collectives()(a)
        with fake_cupy.installed(modules=fake_nccl.modules()) as cupy:
            monkeypatch.setenv("TRACEGRAD_CUDA_AWARE_MPI", "1")
            dist.set_gpu_collectives("auto")        # (NCCL first where both are there)
            assert type(devices.runner(dist.comm, cupy)).__name__ == "NcclRunner"
    finally:
        dist.set_gpu_collectives("auto")
    monkeypatch.delenv("TRACEGRAD_CUDA_AWARE_MPI")
    assert cudampi.cuda_aware() is bool(getattr(cudampi.MPI, "Query_cuda_support",
                                                lambda: False)())


@pytest.mark.gpu
def test_nccl_collectives_on_a_real_gpu():
    # one rank (NCCL refuses two ranks on one device): the NCCL calls run
    import cupy
    dist.set_gpu_collectives("nccl")
    try:
        a = np.arange(6.0).reshape(2, 3)
        got = _device_collectives()(a)
        assert all(isinstance(g, cupy.ndarray) for g in got)
        for g, w in zip(got, [a, a, a, a, a, a, 2 * a]):
            np.testing.assert_array_equal(cupy.asnumpy(g), w)
    finally:
        dist.set_gpu_collectives("auto")


def _collective_names(f):
    return [str(s.node.op) for s in f.schedule.steps if isinstance(s.node.op, dist.Collective)]


def test_compile_pass_buckets_independent_allreduces():
    w = [tg.shared(np.ones((3, 2)), name="W"), tg.shared(np.ones(2), name="b"),
         tg.shared(np.ones(2, np.float32), name="c")]
    x = T.dmatrix("x")
    cost = T.sum(T.dot(x, w[0]) ** 2 + w[1]) + T.sum(T.cast(w[2], "float64"))
    red = [dist.allreduce(g, "mean") for g in tg.grad(cost, w)]
    dependent = dist.allreduce(red[0] * 2)
    a = np.arange(12.0).reshape(4, 3)
    f = tg.function([x], red + [dependent])
    # the two float64 gradients share a bucket; float32 and the allreduce
    # reading a reduced value stay apart
    assert sorted(_collective_names(f)) == ["allreduce_bucket{mean}", "allreduce{mean}",
                                            "allreduce{sum}"], _collective_names(f)
    dist.set_auto_bucket_bytes(0)
    try:
        plain = tg.function([x], red + [dependent])
    finally:
        dist.set_auto_bucket_bytes(dist.BUCKET_BYTES)
    assert _collective_names(plain).count("allreduce{mean}") == 3
    for got, want in zip(f(a), plain(a)):
        np.testing.assert_array_equal(got, want)
    # not in fast_compile; never for allreduce_many(bucket_bytes=0)
    fast = tg.function([x], red, mode="fast_compile")
    assert _collective_names(fast).count("allreduce{mean}") == 3
    each = tg.function([x], dist.allreduce_many(tg.grad(cost, w), "mean", bucket_bytes=0))
    assert _collective_names(each).count("allreduce{mean}") == 3
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        dist.set_auto_bucket_bytes(-1)


def test_bucket_planning():
    from tracegrad.distributed.training import _buckets
    xs = [T.dvector(), T.dvector(), T.fvector(), T.dvector(), T.dvector()]
    got = _buckets(xs, [40, 40, 40, 100, 30], bucket_bytes=90)
    # consecutive per dtype; a tensor at least bucket_bytes is alone
    assert got == [[0, 1], [2], [3], [4]]
    assert dist.allreduce_many([], "sum") == []
    with pytest.raises(ValueError, match="op must be 'sum' or 'mean'"):
        dist.allreduce_many([T.dvector()], "max")


def test_bad_arguments_name_what_was_wrong():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.allreduce(T.dvector(), "prod")
    with pytest.raises(TypeError, match="needs a float or complex"):
        dist.allreduce(T.lvector(), "mean")
    with pytest.raises(ValueError, match="root 1 is not a rank"):
        dist.broadcast(T.dvector(), root=1)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        dist.allgather(T.dmatrix(), axis=2)
    with pytest.raises(TypeError, match="intra-communicator"):
        dist.set_comm("world")
    with pytest.raises(ValueError, match="policy must be one of"):
        dist.set_on_error("ignore")


def test_collectives_are_not_constant_folded():
    f = tg.function([], dist.allreduce(T.constant(np.ones(2))))
    assert any(isinstance(s.node.op, dist.Allreduce) for s in f.schedule.steps)


def test_set_comm_swaps_the_communicator_of_new_ops():
    from mpi4py import MPI
    sub = MPI.COMM_WORLD.Split(0, 0)
    try:
        dist.set_comm(sub)
        assert dist.comm is sub and dist.allreduce(T.dvector()).owner.op.comm is sub
    finally:
        dist.set_comm(MPI.COMM_WORLD)
    assert dist.comm is MPI.COMM_WORLD


def test_functions_with_collectives_pickle():
    import pickle
    x = T.dvector("x")
    f = pickle.loads(pickle.dumps(tg.function([x], dist.allreduce(2 * x, "mean"))))
    np.testing.assert_array_equal(f(np.array([1.0, -3.0])), [2.0, -6.0])
    assert any(s.node.op.comm is dist.comm for s in f.schedule.steps
               if isinstance(s.node.op, dist.Collective))


def test_importing_tracegrad_does_not_import_mpi4py():
    code = "import sys, tracegrad, tracegrad.tensor; print('mpi4py' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


def test_without_mpi4py_the_import_error_names_the_extra():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "try:\n    import tracegrad.distributed\n"
            "except ImportError as e:\n    print(e)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert "pip install 'tracegrad[mpi]'" in proc.stdout, proc.stdout + proc.stderr
