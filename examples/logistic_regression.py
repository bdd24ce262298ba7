"""Logistic regression, as in the Theano tutorial: 400 examples x 784
features, `grad` of the cost, SGD updates applied in place to shared `w`, `b`.

    python examples/logistic_regression.py [--steps N] [--plot PATH | --no-plot]

Prints the cost every few epochs and the final training accuracy; plots the
cost and the training accuracy per epoch.
"""
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from _common import Progress, parse_args, plot


def main():
    args = parse_args(__doc__, default_steps=400)
    steps = args.steps
    rng = np.random.default_rng(1234)
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

    # Each step is one epoch: a pass over all 400 examples.
    progress = Progress(steps, label="epoch", rate_unit="epochs")
    costs, accuracies = [], []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        pred, err = train(*data)
        costs.append(err.mean())
        accuracies.append((pred == data[1]).mean())     # before this step's update
        progress(step, costs[-1], accuracy=accuracies[-1])
    elapsed = time.perf_counter() - start
    accuracy = (predict(data[0]) == data[1]).mean()
    print(f"trained {steps} steps in {elapsed:.2f} s; training accuracy {accuracy:.3f}")
    assert np.isfinite(w.get_value()).all() and np.isfinite(b.get_value()).all()
    plot(args, lambda plt: draw(plt, costs, accuracies))
    return accuracy


def draw(plt, costs, accuracies):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(costs) + 1)
    ax.semilogy(epochs, costs, "b-", label="mean cross-entropy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(epochs, accuracies, "g-", label="training accuracy")
    ax2.set_ylabel("training accuracy")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    ax.set_title("logistic regression (Theano tutorial)")
    return fig


if __name__ == "__main__":
    main()
