"""Logistic regression, as in the Theano tutorial: 400 examples x 784
features, `grad` of the cost, SGD updates applied in place to shared `w`, `b`.

    python examples/logistic_regression.py [--steps N]

Prints the cost every epoch block and the final training accuracy.
"""
import argparse
import os
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T


def main(steps=400, seed=1234):
    rng = np.random.default_rng(seed)
    n, feats = 400, 784
    data = (rng.standard_normal((n, feats)), rng.integers(0, 2, size=n).astype("float64"))

    x = T.dmatrix("x")
    y = T.dvector("y")
    # The tutorial's own initialisation: w = randn (large logits early on).
    w = tg.shared(rng.standard_normal(feats), name="w")
    b = tg.shared(0.0, name="b")

    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))          # probability of class 1
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)  # cross-entropy per example
    cost = xent.mean() + 0.01 * (w ** 2).sum()         # with L2 penalty
    gw, gb = tg.grad(cost, [w, b])

    train = tg.function([x, y], [prediction, xent],
                        updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)], name="train")
    predict = tg.function([x], prediction, name="predict")

    start = time.perf_counter()
    report_every = max(1, steps // 10)
    for step in range(1, steps + 1):
        _, err = train(*data)
        if step % report_every == 0 or step == 1:
            # Each step is one epoch: a pass over all 400 examples.
            print(f"epoch {step:4d}  mean cross-entropy {err.mean():.4f}  "
                  f"all finite {np.isfinite(err).all()}")
    elapsed = time.perf_counter() - start
    accuracy = (predict(data[0]) == data[1]).mean()
    print(f"trained {steps} steps in {elapsed:.2f} s; training accuracy {accuracy:.3f}")
    assert np.isfinite(w.get_value()).all() and np.isfinite(b.get_value()).all()
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int,
                        default=int(os.environ.get("TRACEGRAD_EXAMPLE_STEPS", 400)))
    main(parser.parse_args().steps)
