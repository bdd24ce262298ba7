"""Run under ``mpiexec -n P`` by tests/test_distributed.py: one case per launch.

    mpiexec -n 3 python tests/distributed_worker.py collectives

Every rank draws rank-dependent inputs, runs the collectives compiled with
``tg.function`` and checks them against NumPy on the allgathered inputs
(mpi4py's pickled ``allgather``: the reference must not use the code under
test). Gradients are checked against finite differences of the **global**
cost, the sum over ranks of each rank's cost: rank ``s`` perturbs one entry
while the others hold still, and every rank evaluates. Each case prints
``OK <case> rank R`` at the end; any failed check raises, and the aborting
excepthook of tracegrad.distributed ends the job with a non-zero status.
"""
import sys

import numpy as np
from mpi4py import MPI

import tracegrad as tg
import tracegrad.distributed as dist
import tracegrad.tensor as T
from tracegrad.distributed import safety

COMM = MPI.COMM_WORLD
R, P = COMM.Get_rank(), COMM.Get_size()


def sym(dtype, ndim, name="x"):
    return T.TensorType(dtype, (None,) * ndim)(name)


def draw(shape, dtype, seed):
    rng = np.random.default_rng(1000 * seed + R)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    a = rng.uniform(-2, 2, size=shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.uniform(-2, 2, size=shape)
    return a.astype(dtype)


def chunk(a, axis):
    return np.split(a, P, axis=axis)[R]


# name -> (build, NumPy reference from every rank's input, shapes, dtypes)
def cases():
    root = P - 1
    big = [(2 * P, 3), (0, 3)]
    return {
        "allreduce-sum": (lambda x: dist.allreduce(x, "sum"), lambda xs: sum(xs),
                          big + [()], ("float64", "float32", "int64", "complex128")),
        "allreduce-mean": (lambda x: dist.allreduce(x, "mean"), lambda xs: sum(xs) / P,
                           big + [()], ("float64", "float32", "complex128")),
        "allreduce-max": (lambda x: dist.allreduce(x, "max"), lambda xs: np.max(xs, 0),
                          big + [()], ("float64", "int64")),
        "allreduce-min": (lambda x: dist.allreduce(x, "min"), lambda xs: np.min(xs, 0),
                          big + [()], ("float64", "int32")),
        "broadcast": (lambda x: dist.broadcast(x, root), lambda xs: xs[root],
                      big + [()], ("float64", "float32", "int64")),
        "reduce": (lambda x: dist.reduce(x, 0),
                   lambda xs: sum(xs) if R == 0 else np.zeros_like(xs[0]),
                   big + [()], ("float64", "float32")),
        "allgather-0": (lambda x: dist.allgather(x, 0), lambda xs: np.concatenate(xs, 0),
                        big, ("float64", "float32", "int64")),
        "allgather-1": (lambda x: dist.allgather(x, 1), lambda xs: np.concatenate(xs, 1),
                        big, ("float64",)),
        "reduce_scatter-0": (lambda x: dist.reduce_scatter(x, 0),
                             lambda xs: chunk(sum(xs), 0), big, ("float64", "float32")),
        "reduce_scatter-1": (lambda x: dist.reduce_scatter(x, 1),
                             lambda xs: chunk(sum(xs), 1), [(2, 3 * P)], ("float64",)),
    }


def check_value(name, build, ref, shape, dtype, device="cpu"):
    x = sym(dtype, len(shape))
    f = tg.function([x], build(x), device=device)
    a = draw(shape, dtype, seed=len(name))
    other = draw(shape, dtype, seed=len(name) + 50)
    f(other)            # (its result dropped: the next call reuses its buffers)
    got = f(a)
    f(other)            # (``got`` is kept: this call must not write over it)
    if device != "cpu":
        got = got.get()
    want = np.asarray(ref(COMM.allgather(a)))
    assert got.dtype == np.dtype(dtype), f"{name}: dtype {got.dtype} != {dtype}"
    assert got.shape == want.shape, f"{name} {dtype}: shape {got.shape} != {want.shape}"
    rtol = 1e-6 if dtype in ("float32", "complex64") else 1e-12
    np.testing.assert_allclose(got, want.astype(dtype), rtol=rtol, atol=rtol,
                               err_msg=f"{name} {dtype} {shape} rank {R}")


def global_fd_grad(cost_fn, a, eps=1e-6):
    """d(sum over ranks of cost_fn)/d(each rank's a), by central differences;
    returns this rank's part."""
    mine = np.zeros_like(a)
    for s in range(P):
        for i in range(a.size):
            vals = []
            for sign in (1, -1):
                b = a.copy()
                if s == R:
                    b.flat[i] += sign * eps
                vals.append(COMM.allreduce(float(cost_fn(b)), op=MPI.SUM))
            if s == R:
                mine.flat[i] = (vals[0] - vals[1]) / (2 * eps)
    return mine


def check_grad(name, build, shape):
    x = sym("float64", len(shape))
    y = build(x)
    w = T.constant(draw(tuple(n if n is not None else 0 for n in
                              _out_shape(build, shape)), "float64", seed=7))
    cost = T.sum(w * y)
    f_cost = tg.function([x], cost)
    f_grad = tg.function([x], tg.grad(cost, x))
    a = draw(shape, "float64", seed=3)
    np.testing.assert_allclose(f_grad(a), global_fd_grad(f_cost, a), rtol=1e-6, atol=1e-8,
                               err_msg=f"gradient of {name}, rank {R}")
    # forward mode: Rop against the local central difference along v
    v = draw(shape, "float64", seed=11)
    xv = sym("float64", len(shape), "v")
    f_out = tg.function([x], y)
    f_rop = tg.function([x, xv], tg.Rop(y, x, xv), on_unused_input="ignore")
    eps = 1e-6
    fd = (f_out(a + eps * v) - f_out(a - eps * v)) / (2 * eps)
    np.testing.assert_allclose(f_rop(a, v), fd, rtol=1e-6, atol=1e-8,
                               err_msg=f"Rop of {name}, rank {R}")


def _out_shape(build, shape):
    x = sym("float64", len(shape))
    return tg.function([x], build(x))(np.zeros(shape)).shape


def check_ties():
    """allreduce max: tied ranks share the gradient equally."""
    x = T.dvector("x")
    cost = T.sum(dist.allreduce(x, "max") * np.array([1.0, 2.0]))
    g = tg.function([x], tg.grad(cost, x))(np.array([1.0, float(R == 0)]))
    # entry 0: every rank ties (total P*1 shared by P); entry 1: rank 0 alone (P*2)
    want = np.array([1.0, 2.0 * P if R == 0 else 0.0])
    np.testing.assert_allclose(g, want, err_msg=f"ties, rank {R}")


def check_bucketing():
    xs = [T.dmatrix("a"), T.dvector("b"), T.dscalar("c")]
    outs = [xs[0] * 2, T.tanh(xs[1]), xs[2] + xs[1].sum(), xs[0].sum(0)]
    arrays = [draw((4, 3), "float64", 1), draw((5,), "float64", 2), draw((), "float64", 3)]
    results = {}
    for label, nbytes in (("per-tensor", 0), ("one bucket", 2**20), ("small buckets", 100)):
        red = dist.allreduce_many(outs, "mean", bucket_bytes=nbytes,
                                  nbytes=[96, 40, 8, 24])
        n_coll = sum(isinstance(v.owner.op, dist.Collective) for v in
                     {r.owner: r for r in red}.values())
        assert n_coll == {"per-tensor": 4, "one bucket": 1, "small buckets": 2}[label], \
            (label, n_coll)
        cost = sum(T.sum(r ** 2) for r in red)
        f = tg.function(xs, red + tg.grad(cost, xs))
        results[label] = f(*arrays)
    # plain allreduces, one per tensor, bucketed by the compile pass
    red = [dist.allreduce(o, "mean") for o in outs]
    cost = sum(T.sum(r ** 2) for r in red)
    f = tg.function(xs, red + tg.grad(cost, xs))
    assert sum(isinstance(s.node.op, dist.AllreduceBucket) for s in f.schedule.steps) >= 2
    results["compile pass"] = f(*arrays)
    for label in ("one bucket", "small buckets", "compile pass"):
        for got, want in zip(results[label], results["per-tensor"]):
            np.testing.assert_array_equal(got, want, err_msg=f"{label} != per-tensor")
    check_overlap(xs, outs, arrays, results["per-tensor"][:len(outs)])
    check_bucket_views()


def check_bucket_views():
    """Dense-layer gradients written into the bucket's buffer (views.py):
    after the first call no packing, the values those of one allreduce per
    tensor, bit for bit, at every call."""
    from tracegrad.distributed import views
    from tracegrad.distributed.views import IntoBucket
    w = [tg.shared(draw(s, "float64", 20 + k)) for k, s in enumerate([(4, 5), (5,)])]
    x = T.dmatrix("x")
    cost = T.sum(T.tanh(T.dot(x, w[0]) + w[1]) ** 2)
    grads = tg.grad(cost, w)
    fns = {}
    shapes = [(4, 5), (5,)]
    for label, build in (("views", lambda: dist.allreduce_many(grads, "mean")),
                         ("views, overlap", lambda: dist.allreduce_many(
                             grads, "mean", overlap=True, shapes=shapes)),
                         ("packed", lambda: dist.allreduce_many(grads, "mean")),
                         ("per-tensor", lambda: dist.allreduce_many(grads, "mean", 0))):
        views.set_bucket_views(label != "packed")
        try:
            fns[label] = tg.function([x], build())
        finally:
            views.set_bucket_views(True)
    for label in ("views", "views, overlap"):
        assert sum(isinstance(s.node.op, IntoBucket) for s in fns[label].schedule.steps) == 2
    for k in range(3):
        a = draw((6, 4), "float64", 30 + k)
        got = {label: f(a) for label, f in fns.items()}
        for label in ("views", "views, overlap", "packed"):
            for g, want in zip(got[label], got["per-tensor"]):
                np.testing.assert_array_equal(g, want, err_msg=f"{label}, call {k}")
    for label in ("views", "views, overlap"):
        bucket = next(s.node.op for s in fns[label].schedule.steps
                      if hasattr(s.node.op, "arena") and s.node.op.arena is not None)
        assert bucket.arena.packs == 1, (label, bucket.arena.packs)


def check_overlap(xs, outs, arrays, want):
    """Non-blocking buckets: equal values; every start runs before any wait."""
    from tracegrad.distributed.overlap import IallreduceStart, IallreduceWait
    shapes = [(4, 3), (5,), (), (3,)]
    for nbytes in (2**20, 100):
        red = dist.allreduce_many(outs, "mean", bucket_bytes=nbytes, nbytes=[96, 40, 8, 24],
                                  overlap=True, shapes=shapes)
        f = tg.function(xs, red)
        kinds = [type(s.node.op) for s in f.schedule.steps
                 if isinstance(s.node.op, (IallreduceStart, IallreduceWait))]
        n = kinds.count(IallreduceStart)
        assert n == (1 if nbytes > 1000 else 2) and kinds[:n] == [IallreduceStart] * n, kinds
        for _ in range(2):
            for got, w in zip(f(*arrays), want):
                np.testing.assert_array_equal(got, w, err_msg=f"overlap {nbytes}")


def check_shape_mismatch():
    x = T.dvector("x")
    f = tg.function([x], dist.allreduce(x))
    try:
        f(np.zeros(3 + R))
    except dist.DistributedError as exc:
        assert "shapes differ" in str(exc) and "rank 1: (4,)" in str(exc), str(exc)
    else:
        raise AssertionError("different shapes on the ranks did not raise")
    # a bucket: the check overlaps the packing (start_check / finish_check)
    ys = [T.dvector("y"), T.dmatrix("z")]
    for overlap in (False, True):
        g = tg.function(ys, dist.allreduce_many(ys, "sum", overlap=overlap,
                                                shapes=[(3 + R,), (2, 2)]))
        try:
            g(np.zeros(3 + R), np.zeros((2, 2)))
        except dist.DistributedError as exc:
            assert "shapes differ" in str(exc) and "rank 1: (4,), (2, 2)" in str(exc), str(exc)
        else:
            raise AssertionError(f"different bucket shapes (overlap={overlap}) did not raise")


def check_shape_messages_only_on_change():
    """A rank sends a shape check when an op's shapes differ from those it
    last verified, so fixed shapes cost one message, at the first call."""
    from tracegrad.distributed.checks import CHECKS_SENT
    xs = [T.dvector("a"), T.dmatrix("b")]
    f = tg.function(xs, dist.allreduce_many(xs, "sum") + [dist.allreduce(xs[0])])
    sent = []
    for n in (3, 3, 3, 5, 5):
        before = CHECKS_SENT[0]
        got = f(np.full(n, 1.0), np.ones((2, n)))
        sent.append(CHECKS_SENT[0] - before)
        np.testing.assert_array_equal(got[0], np.full(n, float(P)))
    assert sent == [2, 0, 0, 2, 0], sent        # (the bucket and the allreduce)


def check_passed_in_buckets():
    """A bucket of passed-in arrays gathered and reduced by one C call
    (``Arena.gather_reduce``): values equal to one allreduce per tensor bit
    for bit, per dtype, on COMM_WORLD and on a sub-communicator, across a
    shape change; a result the caller keeps is not written over (that call
    goes the Python way with a new buffer)."""
    from tracegrad.distributed import buffers
    from tracegrad.distributed.gather import reducer
    used = []
    real = buffers.Arena.gather_reduce

    def counted(self, arrays, comm):
        used.append(real(self, arrays, comm))
        return used[-1]
    buffers.Arena.gather_reduce = counted
    sub = COMM.Split(R % 2, R)
    try:
        for comm, dtype, op in ((COMM, "float64", "sum"), (COMM, "float32", "mean"),
                                (COMM, "int32", "sum"), (COMM, "complex128", "mean"),
                                (sub, "float64", "sum")):
            dist.set_comm(comm)
            try:
                xs = [sym(dtype, nd, f"x{k}") for k, nd in enumerate((1, 2, 0))]
                f = tg.function(xs, dist.allreduce_many(xs, op))
                plain = tg.function(xs, dist.allreduce_many(xs, op, 0))
            finally:
                dist.set_comm(COMM)
            del used[:]
            kept = None
            for k, n in enumerate((3, 3, 3, 5, 5, 5)):
                args = [draw((n,), dtype, 40 + k), draw((2, n), dtype, 50 + k),
                        draw((), dtype, 60 + k)]
                got, want = f(*args), plain(*args)
                for g, w in zip(got, want):
                    assert g.dtype == w.dtype and g.tobytes() == w.tobytes(), (dtype, op, k)
                if k == 1:
                    kept, kept_want = got, [w.copy() for w in want]
                del got, g     # (a result kept would make the next call take a new buffer)
            for g, w in zip(kept, kept_want):
                assert g.tobytes() == w.tobytes(), (dtype, op, "kept")
            # (calls 1, 4 and 5 run in C: call 0 made and verified the
            # layout, call 2 found call 1's results kept, call 3 changed
            # the shapes)
            if reducer() is not None:
                assert used == [False, True, False, False, True, True], (dtype, op, used)
        # a communicator freed after the C call served it: mpi4py's error,
        # not MPI called on a stale handle
        sub.Free()
        dist.set_on_error("raise")
        try:
            f(*args)
        except MPI.Exception:
            pass
        else:
            raise AssertionError("a call on a freed communicator did not raise")
        finally:
            dist.set_on_error("abort")
    finally:
        buffers.Arena.gather_reduce = real


def check_sub_communicator():
    """Ops built after ``set_comm(sub)`` reduce over ``sub`` only."""
    sub = COMM.Split(R % 2, R)
    dist.set_comm(sub)
    try:
        x = T.dvector("x")
        got = tg.function([x], dist.allreduce(x))(np.array([float(R)]))
    finally:
        dist.set_comm(COMM)
    assert got[0] == sum(r for r in range(P) if r % 2 == R % 2), (R, got)


def case_collectives():
    for name, (build, ref, shapes, dtypes) in cases().items():
        for shape in shapes:
            for dtype in dtypes:
                check_value(name, build, ref, shape, dtype)
        check_grad(name, build, shapes[0])
    check_ties()
    check_bucketing()
    check_shape_mismatch()
    check_shape_messages_only_on_change()
    check_passed_in_buckets()
    check_sub_communicator()
    check_scan()


def case_mismatch():
    x = T.dvector("x")
    y = x * 2 if R == 0 else T.exp(x)
    try:
        tg.function([x], dist.allreduce(y))
    except dist.DistributedError as exc:
        text = str(exc)
        assert "different graphs" in text and "rank 0:" in text and "exp" in text, text
        print(f"error on rank {R}: {text}")
    else:
        raise AssertionError("different graphs compiled without an error")


def check_scan():
    """Collectives inside a scan body: values and gradient of the global
    cost; the function is checked and guarded like any other."""
    x = T.dmatrix("x")

    def body(row, acc):
        return acc + dist.allreduce(T.tanh(row), "sum")

    ys, _ = tg.scan(body, sequences=[x], outputs_info=[T.zeros_like(x[0])])
    f = tg.function([x], ys)
    assert any(isinstance(n.op, dist.Collective) for _, n in
               safety.flat_steps([s.node for s in f.schedule.steps])), "collective not seen"
    a = draw((3, 2), "float64", seed=5)
    want = np.cumsum(sum(np.tanh(b) for b in COMM.allgather(a)), axis=0)
    np.testing.assert_allclose(f(a), want, rtol=1e-12, err_msg=f"scan value, rank {R}")
    cost = T.sum(ys[-1] * np.array([1.0, -2.0]))
    g = tg.function([x], tg.grad(cost, x))(a)
    np.testing.assert_allclose(g, global_fd_grad(tg.function([x], cost), a), rtol=1e-6,
                               atol=1e-8, err_msg=f"scan gradient, rank {R}")


def case_scan_mismatch():
    """Ranks whose scan bodies differ get the error at compile time: in the
    op before the collective, and a body without the collective at all
    (the outer graph has one elsewhere, so every rank checks)."""
    x = T.dmatrix("x")
    bodies = {"op": lambda row, acc: acc + dist.allreduce(T.exp(row)),
              "missing": lambda row, acc: acc + T.tanh(row)}
    for variant, other in bodies.items():
        body = (lambda row, acc: acc + dist.allreduce(T.tanh(row))) if R == 0 else other
        ys, _ = tg.scan(body, sequences=[x], outputs_info=[T.zeros_like(x[0])])
        try:
            tg.function([x], [ys, dist.allreduce(T.sum(x))])
        except dist.DistributedError as exc:
            text = str(exc)
            assert "different graphs" in text and " of inner of step " in text, text
            print(f"error on rank {R} ({variant}): {text}")
        else:
            raise AssertionError(f"different scan bodies ({variant}) compiled without an error")


def case_no_collective_on_one_rank():
    """Rank 1's graph has no collective at all (its scan body lacks the
    allreduce): rank 0 waits at most TRACEGRAD_GRAPH_CHECK_TIMEOUT, then aborts."""
    x = T.dmatrix("x")
    step = (lambda row, acc: acc + dist.allreduce(row)) if R == 0 else \
        (lambda row, acc: acc + row)
    ys, _ = tg.scan(step, sequences=[x], outputs_info=[T.zeros_like(x[0])])
    tg.function([x], ys)
    if R == 0:
        raise AssertionError("unreachable: rank 0 waits for rank 1 at the graph check")


def case_nccl():
    """``device='cuda'`` collectives through the NCCL runner, on the fake
    CuPy with the fake NCCL (tests/fake_nccl.py: real MPI data movement
    behind raw device pointers): values, gradients, buckets, and the
    communicator built from rank 0's broadcast unique id."""
    import fake_cupy
    import fake_nccl
    with fake_cupy.installed(modules=fake_nccl.modules()):
        for name, (build, ref, shapes, dtypes) in cases().items():
            for shape in shapes:
                for dtype in dtypes:
                    check_value(name, build, ref, shape, dtype, device="cuda")
        kinds = {c[0] for c in fake_nccl.CALLS}
        assert {"init", "allReduce", "broadcast", "reduce", "allGather",
                "reduceScatter"} <= kinds, kinds
        assert sum(c[0] == "init" for c in fake_nccl.CALLS) == 1, fake_nccl.CALLS[:3]
        check_device_gradients_and_buckets()
        try:
            fake_nccl.NcclCommunicator(P, fake_nccl.get_unique_id(), R)
        except fake_nccl.NcclError as exc:
            assert "different unique ids" in str(exc)
        else:
            raise AssertionError("ranks with their own unique ids formed a communicator")


def case_cuda_mpi():
    """``set_gpu_collectives('mpi')`` with a CUDA-aware MPI (the launch sets
    ``TRACEGRAD_CUDA_AWARE_MPI=1``): mpi4py gets the fake CuPy arrays
    themselves (``__cuda_array_interface__``, NumPy storage behind it) and
    MPI moves the data; no collective copies to the host."""
    import fake_cupy
    from tracegrad.distributed import ops
    from tracegrad.distributed.cudampi import MpiCudaRunner
    host = ops._host
    copies = []

    def counted(xp, x):
        if xp is not np:
            copies.append(x.shape)
        return host(xp, x)
    ops._host = counted
    dist.set_gpu_collectives("mpi")
    try:
        with fake_cupy.installed():
            for name, (build, ref, shapes, dtypes) in cases().items():
                for shape in shapes:
                    for dtype in dtypes:
                        check_value(name, build, ref, shape, dtype, device="cuda")
            check_device_buckets()
            from tracegrad.distributed.devices import runner
            assert type(runner(COMM, __import__("cupy"))) is MpiCudaRunner
    finally:
        ops._host = host
        dist.set_gpu_collectives("auto")
    assert not copies, f"host copies: {copies}"


def check_device_buckets():
    """Buckets of device arrays (one collective each, overlapped or not)."""
    xs = [T.dmatrix("a"), T.fvector("b"), T.dvector("c")]
    arrays = [draw((4, 3), "float64", 1), draw((5,), "float32", 2), draw((6,), "float64", 3)]
    want = [sum(COMM.allgather(v)) / P for v in arrays]
    for overlap in (False, True):
        red = dist.allreduce_many(xs, "mean", overlap=overlap,
                                  shapes=[(4, 3), (5,), (6,)] if overlap else None)
        got = tg.function(xs, red, device="cuda")(*arrays)
        for g, v in zip(got, want):
            np.testing.assert_allclose(g.get(), v, rtol=1e-6, err_msg=f"overlap={overlap}")


def check_device_gradients_and_buckets():
    import fake_nccl
    x = T.dmatrix("x")
    w = T.constant(draw((2 * P, 3), "float64", seed=7))
    outs = [dist.allreduce(x, "mean"), dist.allgather(x, 1), dist.reduce_scatter(x, 0),
            dist.broadcast(x, P - 1)]
    cost = sum(T.sum(w[:o_rows] * o) for o, o_rows in zip(outs[::2], (2 * P, 2)))
    cost = cost + T.sum(outs[1] ** 2) + T.sum(outs[3] * 3)
    a = draw((2 * P, 3), "float64", seed=3)
    host = tg.function([x], tg.grad(cost, x))(a)
    device = tg.function([x], tg.grad(cost, x), device="cuda")(a).get()
    np.testing.assert_allclose(device, host, rtol=1e-12, err_msg=f"device gradient, rank {R}")
    xs = [T.dmatrix("a"), T.fvector("b"), T.dvector("c")]
    arrays = [draw((4, 3), "float64", 1), draw((5,), "float32", 2), draw((6,), "float64", 3)]
    want = [sum(COMM.allgather(v)) / P for v in arrays]
    for overlap in (False, True):
        before = len(fake_nccl.CALLS)
        red = dist.allreduce_many(xs, "mean", overlap=overlap,
                                  shapes=[(4, 3), (5,), (6,)] if overlap else None)
        got = tg.function(xs, red, device="cuda")(*arrays)
        for g, v in zip(got, want):
            np.testing.assert_allclose(g.get(), v, rtol=1e-6, err_msg=f"overlap={overlap}")
        calls = fake_nccl.CALLS[before:]
        # one NCCL allreduce per dtype bucket: 18 float64 values, 5 float32
        assert sorted(c[1] for c in calls if c[0] == "allReduce") == [5, 18], calls


def case_shape_changes_alone():
    """Rank 1's shapes change at the second call and rank 0's do not: rank 1
    checks, rank 0 (nothing changed) goes on to the allreduce; rank 1 gives
    up after TRACEGRAD_CHECK_TIMEOUT and aborts the job with the reason."""
    x = T.dvector("x")
    f = tg.function([x], dist.allreduce(x))
    f(np.zeros(3))
    f(np.zeros(3 + R))
    raise AssertionError("unreachable: the ranks' shapes differ at the second call")


def case_raise():
    x = T.dmatrix("x")
    f = tg.function([x], dist.allreduce(T.dot(x, x)))
    f(np.ones((2, 2)) if R == 0 else np.ones((2, 3)))   # rank 1: shapes don't align
    raise AssertionError("unreachable: rank 0 waits in the allreduce, rank 1 raised")


if __name__ == "__main__":
    case = sys.argv[1]
    globals()[f"case_{case}"]()
    print(f"OK {case} rank {R}", flush=True)
