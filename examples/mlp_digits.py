"""A multilayer perceptron on scikit-learn's bundled digits (8x8 images, no
download; needs scikit-learn), trained with minibatch SGD + momentum; reaches
>= 95% test accuracy.

    python examples/mlp_digits.py [--steps EPOCHS]

Written the Theano-tutorial way: the data sit in shared variables, a
minibatch is chosen with ``givens`` and a symbolic ``index``, and the
parameters and their momenta are updated in place. Plots the loss curve.
"""
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from _common import Progress, parse_args, plot


def split_digits(seed=0, test_fraction=0.25):
    from sklearn.datasets import load_digits    # parse_args checked it is there
    digits = load_digits()
    x = (digits.data / 16.0).astype("float64")   # pixel values 0..16 -> 0..1
    y = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def layer(rng, n_in, n_out, name):
    """Glorot-uniform weights and zero biases, as shared variables."""
    bound = np.sqrt(6.0 / (n_in + n_out))
    w = tg.shared(rng.uniform(-bound, bound, (n_in, n_out)), name="W_" + name)
    b = tg.shared(np.zeros(n_out), name="b_" + name)
    return w, b


def main():
    args = parse_args(__doc__, default_steps=30,
                      hidden=(int, 128, "hidden units (default 128)"),
                      batch=(int, 32, "minibatch size (default 32)"),
                      lr=(float, 0.05, "learning rate (default 0.05)"),
                      needs={"sklearn": "scikit-learn"})
    rng = np.random.default_rng(1234)
    x_train, y_train, x_test, y_test = split_digits()
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of "
          f"{x_train.shape[1]} pixels")

    train_x, train_y = tg.shared(x_train, name="train_x"), tg.shared(y_train, name="train_y")
    x = T.dmatrix("x")
    y = T.lvector("y")
    w1, b1 = layer(rng, x_train.shape[1], args.hidden, "hidden")
    w2, b2 = layer(rng, args.hidden, 10, "out")
    params = [w1, b1, w2, b2]

    hidden = T.tanh(T.dot(x, w1) + b1)
    log_p = T.nnet.log_softmax(T.dot(hidden, w2) + b2)
    # Mean negative log-likelihood of the right class (the tutorial's indexing).
    nll = -T.mean(log_p[T.arange(y.shape[0]), y])
    cost = nll + 1e-4 * ((w1 ** 2).sum() + (w2 ** 2).sum())
    predict = T.argmax(log_p, axis=1)

    grads = tg.grad(cost, params)
    updates = []
    for p, g in zip(params, grads):
        velocity = tg.shared(np.zeros_like(p.get_value()), name="v_" + p.name)
        new_velocity = 0.9 * velocity - args.lr * g
        updates += [(velocity, new_velocity), (p, p + new_velocity)]

    index = T.lscalar("index")
    bs = args.batch
    start = time.perf_counter()
    train_batch = tg.function([index], nll, updates=updates, name="train_batch",
                              givens={x: train_x[index * bs:(index + 1) * bs],
                                      y: train_y[index * bs:(index + 1) * bs]})
    error_rate = tg.function([x, y], T.neq(predict, y).mean(), name="error_rate")
    print(f"compiled in {time.perf_counter() - start:.2f} s")

    n_batches = len(x_train) // bs
    losses, test_acc = [], []
    progress = Progress(args.steps, label="epoch", every=1, per_step=n_batches,
                        rate_unit="batches")
    start = time.perf_counter()
    for epoch in range(1, args.steps + 1):
        # Reshuffle the shared training set in place of the old one each epoch.
        order = rng.permutation(len(x_train))
        train_x.set_value(x_train[order])
        train_y.set_value(y_train[order])
        epoch_loss = np.mean([train_batch(i) for i in range(n_batches)])
        losses.append(epoch_loss)
        test_acc.append(1.0 - float(error_rate(x_test, y_test)))
        progress(epoch, epoch_loss, test_accuracy=test_acc[-1])
    elapsed = time.perf_counter() - start
    train_acc = 1.0 - float(error_rate(x_train, y_train))
    print(f"{args.steps} epochs in {elapsed:.2f} s; training accuracy {train_acc:.4f}, "
          f"test accuracy {test_acc[-1]:.4f}")
    if args.steps >= 30:
        assert test_acc[-1] >= 0.95, test_acc[-1]
    plot(args, lambda plt: draw(plt, losses, test_acc))


def draw(plt, losses, test_acc):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(losses) + 1)
    ax.semilogy(epochs, losses, "b.-", label="training loss (NLL)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, test_acc, "g.-", label="test accuracy")
    ax2.set_ylabel("test accuracy")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    ax.set_title("MLP on sklearn digits")
    return fig


if __name__ == "__main__":
    main()
