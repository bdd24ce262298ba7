"""Data-parallel training of a small MLP over MPI (tracegrad.distributed).

    mpiexec -n 4 python examples/data_parallel.py [--steps N] [--save weights.npz]
    python examples/data_parallel.py            # one process, same result

Every rank builds the same graph (SPMD). Each global batch of ``--batch``
samples is cut into one shard per rank (``dist.shard``); a rank's cost is
its shard's summed loss divided by the *global* batch size times the number
of ranks, so the rank-averaged gradient that ``dist.data_parallel`` applies
(one bucketed allreduce per step) is exactly the gradient of the mean loss
over the global batch, whatever the shard sizes. The ranks start from
different random weights and ``dist.sync_shared`` gives them rank 0's.
In float64 the final weights equal a single-process run on the same global
batches up to the order of the sums (tests/test_distributed.py: 1e-10).
Prints each rank's throughput and the final loss; plots the loss on rank 0.
"""
import time

import numpy as np

import tracegrad as tg
import tracegrad.distributed as dist
import tracegrad.tensor as T
from _common import Progress, parse_args, plot


def synthetic(rng, n, n_in, n_classes):
    """A learnable classification problem: labels of a random teacher MLP."""
    x = rng.standard_normal((n, n_in))
    teacher = np.tanh(x @ rng.standard_normal((n_in, 32))) @ rng.standard_normal((32, n_classes))
    return x, teacher.argmax(1)


def init_params(rng, sizes):
    params = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params.append(tg.shared(rng.normal(0, 1 / np.sqrt(a), (a, b)), name=f"W{k}"))
        params.append(tg.shared(np.zeros(b), name=f"b{k}"))
    return params


def mlp(x, params):
    h = x
    for k in range(0, len(params) - 2, 2):
        h = T.tanh(T.dot(h, params[k]) + params[k + 1])
    return T.dot(h, params[-2]) + params[-1]


def main():
    args = parse_args(__doc__, default_steps=200,
                      batch=(int, 256, "global batch size (default 256)"),
                      lr=(float, 0.2, "learning rate (default 0.2)"),
                      save=(str, "", "write the final weights to this .npz (rank 0)"),
                      overlap=(int, 0, "1: non-blocking buckets (Iallreduce) overlapping "
                                       "backprop (default 0)"))
    rank, size = dist.rank(), dist.size()
    data_rng = np.random.default_rng(0)      # the same data set on every rank
    sizes = [20, 64, 64, 10]
    x_all, y_all = synthetic(data_rng, 32 * args.batch, sizes[0], sizes[-1])
    params = init_params(np.random.default_rng(1 + rank), sizes)
    dist.sync_shared(params)                 # every rank now holds rank 0's weights

    x, y = T.dmatrix("x"), T.lvector("y")
    losses = -T.log(T.nnet.softmax(mlp(x, params)))[T.arange(y.shape[0]), y]
    local = T.sum(losses) * (size / args.batch)   # averaged over ranks: the global mean
    global_loss = dist.allreduce(T.sum(losses), "sum") / args.batch
    step = tg.function([x, y], global_loss,
                       updates=dist.data_parallel(local, params, lr=args.lr,
                                                  overlap=bool(args.overlap)))

    curve = []
    n_batches = len(x_all) // args.batch
    # (rank 0 prints the progress lines: the loss is the global one)
    progress = Progress(args.steps) if rank == 0 else (lambda *a, **k: None)
    start = time.perf_counter()
    for i in range(args.steps):
        b = i % n_batches
        xb = x_all[b * args.batch:(b + 1) * args.batch]
        yb = y_all[b * args.batch:(b + 1) * args.batch]
        curve.append(float(step(dist.shard(xb), dist.shard(yb))))
        progress(i + 1, curve[-1])
    elapsed = time.perf_counter() - start
    mine = len(dist.shard(np.empty(args.batch)))
    print(f"rank {rank} of {size}: {args.steps} steps in {elapsed:.2f} s, "
          f"{args.steps * mine / max(elapsed, 1e-9):.0f} samples/s "
          f"({mine} samples per step)", flush=True)
    if rank == 0:
        print(f"final loss {curve[-1]:.6f} (initial {curve[0]:.6f}) on {size} process(es)")
        if args.save:
            np.savez(args.save, **{p.name: p.get_value() for p in params})
        plot(args, lambda plt: _draw(plt, curve, size))


def _draw(plt, curve, size):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(curve)
    ax.set_xlabel("step")
    ax.set_ylabel("global mean loss")
    ax.set_title(f"data-parallel MLP, {size} process(es)")
    return fig


if __name__ == "__main__":
    main()
