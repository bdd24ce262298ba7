"""Allreduce benchmarks of tracegrad.distributed (issue 19).

    mpiexec -n 2 python -m bench.distributed [--quick]

1. **Bandwidth**: the bucketed path (a compiled ``tg.function`` of
   ``allreduce_many`` over 64 float64 tensors: pack, one ``Allreduce`` per
   bucket, unpack; the shape check when shapes change) against raw
   mpi4py ``Allreduce`` on one flat buffer of the same total size (both
   summing), run in turn
   round by round, with raw in-place ``Allreduce`` beside them. Ratio =
   raw time / bucketed time, the median of the rounds' ratios with its
   interquartile range (1.0: no overhead; target >= 0.9). Beside them, what
   one writes by hand for 64 arrays: ``np.concatenate`` into a reused
   buffer and an in-place ``Allreduce``.
2. **Many small gradients**: the gradients of the example MLP
   (examples/data_parallel.py: 6 tensors, 6 k parameters) and of a deep MLP
   (40 layers of 64: 80 tensors), all-reduced with one bucket against one
   ``allreduce`` per tensor (``bucket_bytes=0``).

3. **Weak scaling (W4)**: one data-parallel SGD step of the W4 MLP
   (784-256-10, float32, 256 samples per rank, bench/training.py's data)
   on rank 0 alone (a size-1 sub-communicator) and on every rank: the step
   time ratio (1.0 is perfect weak scaling), and the same step with
   ``data_parallel(overlap=True)`` (non-blocking buckets). Run with ``OMP_NUM_THREADS=1``
   for one thread per process.

Each figure is the median over rounds of the slowest rank's time of one
call (ranks start together after a barrier). Bandwidth is the algorithm
bandwidth, bytes / time (docs/distributed.md relates it to the link speed).
"""
import argparse
import time

import numpy as np
from mpi4py import MPI

import tracegrad as tg
import tracegrad.distributed as dist
import tracegrad.tensor as T

COMM = MPI.COMM_WORLD


def timed(fn, rounds):
    """Median over ``rounds`` of the slowest rank's time of ``fn()``."""
    fn()                                        # warm up (buffers, caches)
    times = []
    for _ in range(rounds):
        COMM.Barrier()
        start = time.perf_counter()
        fn()
        times.append(COMM.allreduce(time.perf_counter() - start, op=MPI.MAX))
    return float(np.median(times))


def bucketed(shapes, bucket_bytes, op="mean", with_arrays=False):
    """A compiled allreduce of tensors of ``shapes``, called on its inputs
    (and the inputs, ``with_arrays``)."""
    xs = [T.TensorType("float64", (None,) * len(s))() for s in shapes]
    nbytes = [int(np.prod(s)) * 8 for s in shapes]
    fn = tg.function(xs, dist.allreduce_many(xs, op, bucket_bytes, nbytes))
    rng = np.random.default_rng(COMM.Get_rank())
    arrays = [rng.standard_normal(s) for s in shapes]

    def call():
        return fn(*arrays)
    return (call, arrays) if with_arrays else call


def interleaved(fns, rounds):
    """``timed`` for several functions run in turn, round by round (so a
    load change on a shared machine hits them alike): per function, its
    times over the rounds (the slowest rank's, as an array)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, mine in zip(fns, times):
            COMM.Barrier()
            start = time.perf_counter()
            fn()
            mine.append(COMM.allreduce(time.perf_counter() - start, op=MPI.MAX))
    return [np.array(t) for t in times]


def bandwidth(total_mb, rounds, report):
    """Raw out-of-place ``Allreduce`` (the target's baseline), raw in-place
    (MPICH skips its send-to-receive copy: the floor for anything that
    must pack) and the bucketed path, interleaved."""
    n = 64
    per = int(total_mb * 2**20 / 8 / n)
    flat = np.random.default_rng(0).standard_normal(per * n)
    out = np.empty_like(flat)
    work = flat.copy()
    packed = flat.copy()
    call, arrays = bucketed([(per,)] * n, dist.BUCKET_BYTES, "sum", with_arrays=True)

    def by_hand():      # (what one writes without tracegrad for 64 arrays)
        np.concatenate(arrays, out=packed)
        COMM.Allreduce(MPI.IN_PLACE, packed, op=MPI.SUM)
    raw, raw_in_place, hand, ours = interleaved(
        [lambda: COMM.Allreduce(flat, out, op=MPI.SUM),
         lambda: COMM.Allreduce(MPI.IN_PLACE, work, op=MPI.SUM), by_hand, call], rounds)
    ratios = raw / ours
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    mb = flat.nbytes / 1e9
    report(f"{total_mb:7.1f} MB in {n} tensors: raw Allreduce {np.median(raw) * 1e3:8.2f} ms "
           f"({mb / np.median(raw):5.2f} GB/s), in place {np.median(raw_in_place) * 1e3:8.2f} "
           f"ms, NumPy pack + in place {np.median(hand) * 1e3:8.2f} ms; bucketed "
           f"{np.median(ours) * 1e3:8.2f} ms ({mb / np.median(ours):5.2f} GB/s); "
           f"ratio raw/bucketed {med:5.2f} (IQR {q1:.2f}-{q3:.2f}), in place/bucketed "
           f"{np.median(raw_in_place / ours):5.2f}, pack by hand/bucketed "
           f"{np.median(hand / ours):5.2f}")


def produced(n, per, views_on):
    """A compiled bucketed allreduce of ``n`` tensors the graph computes
    (``x_k.sum(axis=0)`` of a (1, per) input: a producer costing about one
    copy, as a gradient's last op), with gradient as bucket view on or off."""
    try:
        from tracegrad.distributed.views import set_bucket_views
    except ImportError:     # (a tracegrad before gradient as bucket view: always packs)
        def set_bucket_views(on):
            pass
    xs = [T.dmatrix() for _ in range(n)]
    set_bucket_views(views_on)
    try:
        fn = tg.function(xs, dist.allreduce_many([x.sum(axis=0) for x in xs], "sum",
                                                 nbytes=[per * 8] * n))
    finally:
        set_bucket_views(True)
    rng = np.random.default_rng(COMM.Get_rank())
    arrays = [rng.standard_normal((1, per)) for _ in range(n)]
    return lambda: fn(*arrays), arrays


def bandwidth_produced(total_mb, rounds, report):
    """The tensors computed in the graph: tracegrad with gradient as bucket
    view (producers write into the bucket, reduced in place) and without it
    (pack), against NumPy writing the same sums into one flat buffer
    (``out=`` views) and a raw out-of-place ``Allreduce`` of it."""
    n = 64
    per = int(total_mb * 2**20 / 8 / n)
    ours, arrays = produced(n, per, True)
    packed, _ = produced(n, per, False)
    flat = np.empty(per * n)
    out = np.empty_like(flat)
    parts = [flat[k * per:(k + 1) * per] for k in range(n)]

    def raw():
        for a, part in zip(arrays, parts):
            np.add.reduce(a, axis=0, out=part)
        COMM.Allreduce(flat, out, op=MPI.SUM)
    base, with_views, without = interleaved([raw, ours, packed], rounds)
    mb = flat.nbytes / 1e9
    report(f"{total_mb:7.1f} MB in {n} computed tensors: NumPy into one buffer + raw "
           f"Allreduce {np.median(base) * 1e3:8.2f} ms; bucket views "
           f"{np.median(with_views) * 1e3:8.2f} ms ({mb / np.median(with_views):5.2f} GB/s, "
           f"ratio {np.median(base / with_views):5.2f}); packed "
           f"{np.median(without) * 1e3:8.2f} ms (ratio {np.median(base / without):5.2f})")


def mlp_shapes(sizes):
    shapes = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        shapes += [(a, b), (b,)]
    return shapes


def small_tensors(name, shapes, rounds, report):
    one = timed(bucketed(shapes, dist.BUCKET_BYTES), rounds)
    each = timed(bucketed(shapes, 0), rounds)
    n = sum(int(np.prod(s)) for s in shapes)
    report(f"{name}: {len(shapes)} tensors, {n} parameters ({n * 8 / 1e6:.2f} MB): "
           f"one bucket {one * 1e6:8.1f} us, one allreduce per tensor {each * 1e6:8.1f} us, "
           f"bucketing {each / one:5.1f}x faster")


def w4_step(comm, batch=256, overlap=False):
    """A compiled W4 data-parallel step on ``comm`` and its inputs."""
    from bench.training import w4_data
    x_np, y_np, weights = w4_data(batch, seed=COMM.Get_rank())
    dist.set_comm(comm)
    try:
        params = [tg.shared(w, name=f"p{k}") for k, w in enumerate(weights)]
        dist.sync_shared(params)
        x, y = T.fmatrix("x"), T.lvector("y")
        w1, b1, w2, b2 = params
        logits = T.dot(T.tanh(T.dot(x, w1) + b1), w2) + b2
        cost = -T.mean(T.log(T.nnet.softmax(logits))[T.arange(y.shape[0]), y])
        step = tg.function([x, y], cost, updates=dist.data_parallel(cost, params, lr=0.01,
                                                                overlap=overlap))
    finally:
        dist.set_comm(COMM)
    return lambda: step(x_np, y_np)


def weak_scaling(rounds, report):
    solo = COMM.Split(0 if COMM.Get_rank() == 0 else MPI.UNDEFINED, 0)
    alone = None
    if COMM.Get_rank() == 0:
        fn = w4_step(solo)
        fn()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        alone = float(np.median(times))
        solo.Free()
    together = timed(w4_step(COMM), rounds)
    overlapped = timed(w4_step(COMM, overlap=True), rounds)
    report(f"W4 weak scaling (256 samples per rank): 1 process {alone * 1e3:7.2f} ms/step, "
           f"{COMM.Get_size()} processes {together * 1e3:7.2f} ms/step "
           f"(ratio {together / alone:5.2f}); with overlap=True {overlapped * 1e3:7.2f} "
           f"ms/step" if alone is not None else "")


def no_huge_pages():
    """Stop NumPy asking for transparent huge pages on large arrays. With
    THP on 'madvise' and few huge pages free, the buffers allocated first
    get them and run ~1.5x faster in MPICH (16 MB: 14.5 vs 23 ms here), so
    the comparison favoured whichever side allocated first; without them
    both sides use the same pages. (A private NumPy switch: skipped if gone.)"""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return
    _set_madvise_hugepage(False)


def w4_only(rounds, report):
    """The W4 step on all of ``COMM`` (run under ``mpiexec -n 1`` and
    ``-n 2`` in turn for the weak-scaling ratio: no rank idles in MPI while
    another measures), plain and with ``overlap=True``, and, as a control,
    every rank running the step alone at the same time (a size-1
    communicator: the same CPU contention, no communication); interleaved."""
    solo = COMM.Split(COMM.Get_rank(), 0)
    plain, overlapped, alone = interleaved(
        [w4_step(COMM), w4_step(COMM, overlap=True), w4_step(solo)], rounds)
    report(f"W4 step (256 samples per rank), {COMM.Get_size()} processes: "
           f"{np.median(plain) * 1e3:7.2f} ms/step (IQR {np.percentile(plain, 25) * 1e3:.2f}-"
           f"{np.percentile(plain, 75) * 1e3:.2f}); overlap=True "
           f"{np.median(overlapped) * 1e3:7.2f} ms/step; each rank alone at the same time "
           f"{np.median(alone) * 1e3:7.2f} ms/step (step / alone "
           f"{np.median(plain / alone):5.2f})")


def main():
    no_huge_pages()
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--part", choices=("all", "bandwidth", "w4"), default="all",
                        help="bandwidth: the allreduce rows only; w4: the W4 step on "
                             "every rank only (mpiexec -n 1, then -n 2)")
    args = parser.parse_args()
    rounds = 5 if args.quick else 20

    def report(line):
        if COMM.Get_rank() == 0:
            print(line, flush=True)

    report(f"tracegrad.distributed allreduce, {COMM.Get_size()} processes "
           f"({MPI.Get_library_version().splitlines()[0]})")
    if args.part == "w4":
        w4_only(rounds * 5, report)
        return
    for checked in (True, False):
        dist.set_check_shapes(checked)
        report(f"-- shape checks (when shapes change): {checked} (set_check_shapes)")
        for total_mb in ((1, 16) if args.quick else (1, 16, 64)):
            bandwidth(total_mb, rounds, report)
        for total_mb in ((1, 16) if args.quick else (1, 16, 64)):
            bandwidth_produced(total_mb, rounds, report)
        if args.part == "all":
            small_tensors("example MLP 20-64-64-10", mlp_shapes([20, 64, 64, 10]),
                          rounds * 5, report)
            small_tensors("deep MLP 40 x 64", mlp_shapes([64] * 41), rounds * 5, report)
    dist.set_check_shapes(True)
    if args.part == "all":
        weak_scaling(rounds * 2, report)


if __name__ == "__main__":
    main()
