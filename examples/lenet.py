"""LeNet, as in the Theano deep-learning tutorial (convolutional_mlp.py):
two convolution + max-pooling layers, a tanh hidden layer and a softmax
layer, trained by minibatch SGD on 28×28 images.

    python examples/lenet.py [--steps N]

The data is synthetic so the example runs without downloads: ten classes of
"digits", each a random smooth template, drawn shifted by up to 3 pixels
and with noise (a convolutional net handles the shifts). Prints the
training loss and validation error per epoch and the final test accuracy
(chance: 10%); plots the first layer's filters and the curves.
"""
import os
import sys
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.tensor.nnet import conv2d
from tracegrad.tensor.signal import pool

sys.path.insert(0, os.path.dirname(__file__))
from _common import Progress, parse_args, plot, show_filters  # noqa: E402


def synthetic_digits(rng, n, templates):
    """``n`` images (n, 1, 28, 28) and labels: shifted, noisy templates."""
    labels = rng.integers(0, len(templates), size=n)
    images = np.zeros((n, 1, 28, 28))
    for i, k in enumerate(labels):
        dy, dx = rng.integers(-3, 4, size=2)
        images[i, 0] = np.roll(templates[k], (dy, dx), axis=(0, 1))
    images += 0.3 * rng.standard_normal(images.shape)
    return images, labels


def make_templates(rng, classes=10):
    coarse = rng.standard_normal((classes, 7, 7))
    big = np.kron(coarse, np.ones((3, 3)))[:, :, :]           # 21×21, smooth blocks
    templates = np.zeros((classes, 28, 28))
    templates[:, 3:24, 3:24] = np.tanh(big)
    return templates


class LeNetConvPoolLayer:
    """Convolution (filter_shape), then max-pooling (poolsize), then tanh."""

    def __init__(self, rng, input, filter_shape, poolsize=(2, 2)):
        fan_in = np.prod(filter_shape[1:])
        fan_out = filter_shape[0] * np.prod(filter_shape[2:]) // np.prod(poolsize)
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        self.W = tg.shared(rng.uniform(-bound, bound, size=filter_shape), name="W")
        self.b = tg.shared(np.zeros(filter_shape[0]), name="b")
        conv_out = conv2d(input, self.W, filter_shape=filter_shape)
        pooled = pool.pool_2d(conv_out, ws=poolsize, ignore_border=True)
        self.output = T.tanh(pooled + self.b.dimshuffle("x", 0, "x", "x"))
        self.params = [self.W, self.b]


class HiddenLayer:
    def __init__(self, rng, input, n_in, n_out):
        bound = np.sqrt(6.0 / (n_in + n_out))
        self.W = tg.shared(rng.uniform(-bound, bound, size=(n_in, n_out)), name="W")
        self.b = tg.shared(np.zeros(n_out), name="b")
        self.output = T.tanh(T.dot(input, self.W) + self.b)
        self.params = [self.W, self.b]


class LogisticRegression:
    def __init__(self, input, n_in, n_out):
        self.W = tg.shared(np.zeros((n_in, n_out)), name="W")
        self.b = tg.shared(np.zeros(n_out), name="b")
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        return T.mean(T.neq(self.y_pred, y))


def main(seed=23455, nkerns=(8, 16), batch_size=50, learning_rate=0.1):
    args = parse_args(__doc__, default_steps=4)
    epochs = args.steps
    rng = np.random.default_rng(seed)
    templates = make_templates(rng)
    train_x, train_y = synthetic_digits(rng, 2000, templates)
    valid_x, valid_y = synthetic_digits(rng, 500, templates)
    test_x, test_y = synthetic_digits(rng, 500, templates)

    x = T.dtensor4("x")
    y = T.lvector("y")
    layer0 = LeNetConvPoolLayer(rng, x, (nkerns[0], 1, 5, 5))            # 28 → 24 → 12
    layer1 = LeNetConvPoolLayer(rng, layer0.output, (nkerns[1], nkerns[0], 5, 5))  # → 8 → 4
    layer2 = HiddenLayer(rng, layer1.output.flatten(2), nkerns[1] * 4 * 4, 100)
    layer3 = LogisticRegression(layer2.output, 100, 10)
    params = layer3.params + layer2.params + layer1.params + layer0.params
    cost = layer3.negative_log_likelihood(y)
    grads = tg.grad(cost, params)
    train = tg.function([x, y], cost, name="train",
                        updates=[(p, p - learning_rate * g) for p, g in zip(params, grads)])
    errors = tg.function([x, y], layer3.errors(y), name="errors")

    start = time.perf_counter()
    batches = len(train_x) // batch_size
    progress = Progress(epochs, label="epoch", every=1, per_step=batches, rate_unit="batches")
    losses, valid_errors = [], []
    for epoch in range(1, epochs + 1):
        epoch_losses = []
        for i in range(batches):
            sl = slice(i * batch_size, (i + 1) * batch_size)
            epoch_losses.append(train(train_x[sl], train_y[sl]))
        losses.append(float(np.mean(epoch_losses)))
        valid_errors.append(float(errors(valid_x, valid_y)))
        progress(epoch, losses[-1], validation_error=f"{100 * valid_errors[-1]:.1f}%")
    elapsed = time.perf_counter() - start
    accuracy = 1 - errors(test_x, test_y)
    print(f"test accuracy {100 * accuracy:.1f}% (chance 10%), trained in {elapsed:.1f} s")
    filters = layer0.W.get_value()[:, 0]
    plot(args, lambda plt: draw(plt, filters, losses, valid_errors))
    return accuracy


def draw(plt, filters, losses, valid_errors):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5),
                                   gridspec_kw={"width_ratios": [1, 2]})
    show_filters(ax1, filters, columns=4)
    ax1.set_title("first-layer filters")
    epochs = np.arange(1, len(losses) + 1)
    ax2.plot(epochs, losses, "b.-", label="training loss (NLL)")
    ax2.plot(epochs, valid_errors, "g.-", label="validation error")
    ax2.set_xlabel("epoch")
    ax2.legend()
    return fig


if __name__ == "__main__":
    main()
