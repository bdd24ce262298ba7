"""Per-example gradients of an MLP: ``tg.vmap(tg.grad(loss))`` against a
Python loop of ``tg.grad(loss)`` calls (and, for scale, a hand-batched
NumPy gradient and one ``tg.grad`` of the mean loss).

``python -m bench.vmap [--batch 256] [--sizes 64,128,10]`` prints the best
of several runs of each, in ms. Figures are in docs/user-guide.md
("Vectorizing with vmap").
"""
import argparse
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T


def loss(p, x, y):
    """Cross-entropy of a two-layer tanh MLP on one example."""
    h = np.tanh(x @ p["w0"] + p["b0"])
    logits = h @ p["w1"] + p["b1"]
    return -(logits[y] - np.log(np.sum(np.exp(logits))))


def mean_loss(p, xs, ys):
    h = np.tanh(xs @ p["w0"] + p["b0"])
    logits = h @ p["w1"] + p["b1"]
    picked = logits[T.arange(xs.shape[0]), ys]
    return -np.mean(picked - np.log(np.sum(np.exp(logits), axis=1)))


def params(rng, sizes):
    p = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        p[f"w{i}"] = rng.normal(size=(m, n)) / np.sqrt(m)
        p[f"b{i}"] = np.zeros(n)
    return p


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--sizes", default="64,128,10")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    rng = np.random.default_rng(0)
    p = params(rng, sizes)
    xs = rng.normal(size=(args.batch, sizes[0]))
    ys = rng.integers(0, sizes[-1], size=args.batch)

    per_example = tg.vmap(tg.grad(loss), in_axes=(None, 0, 0))
    single = tg.grad(loss)
    batch_mean = tg.grad(mean_loss)
    got = per_example(p, xs, ys)  # compile, and check against the loop
    loop = [single(p, x, y) for x, y in zip(xs, ys)]
    for k in p:
        np.testing.assert_allclose(got[k], np.stack([g[k] for g in loop]), rtol=1e-9,
                                   atol=1e-12)
    batch_mean(p, xs, ys)

    t_vmap = best(lambda: per_example(p, xs, ys), args.repeat)
    t_loop = best(lambda: [single(p, x, y) for x, y in zip(xs, ys)], max(2, args.repeat // 3))
    t_mean = best(lambda: batch_mean(p, xs, ys), args.repeat)
    print(f"MLP {sizes}, batch {args.batch}, float64")
    print(f"  vmap(grad(loss)), per-example   {t_vmap * 1e3:9.2f} ms")
    print(f"  loop of grad(loss) calls        {t_loop * 1e3:9.2f} ms  "
          f"({t_loop / t_vmap:.0f}x the vmap)")
    print(f"  grad(mean loss) (not per-ex.)   {t_mean * 1e3:9.2f} ms")
    return t_vmap, t_loop, t_mean


if __name__ == "__main__":
    main()
