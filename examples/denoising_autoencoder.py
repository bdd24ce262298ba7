"""Denoising autoencoder, as in the Theano deep-learning tutorial (dA.py):
corrupt the input with binomial masking noise from ``MRG_RandomStreams``,
encode with tied weights, decode, and minimise the cross-entropy of the
reconstruction by SGD.

    python examples/denoising_autoencoder.py [--steps N]

The data is synthetic (binary 28×28 images made of a few random strokes per
class) so the example runs without downloads. Prints the reconstruction
cost per epoch, which falls, and plots the learned filters (the columns of
W as 28×28 images) with the cost per epoch.
"""
import os
import sys

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.sandbox.rng_mrg import MRG_RandomStreams

sys.path.insert(0, os.path.dirname(__file__))
from _common import Progress, parse_args, plot, show_filters  # noqa: E402


class dA:
    """The tutorial's class: tied weights W, hidden bias b, visible bias b_prime."""

    def __init__(self, rng, theano_rng, input, n_visible=784, n_hidden=500):
        bound = 4 * np.sqrt(6.0 / (n_hidden + n_visible))
        self.W = tg.shared(rng.uniform(-bound, bound, size=(n_visible, n_hidden)), name="W")
        self.b = tg.shared(np.zeros(n_hidden), name="b")
        self.b_prime = tg.shared(np.zeros(n_visible), name="b_prime")
        self.W_prime = self.W.T
        self.theano_rng = theano_rng
        self.x = input
        self.params = [self.W, self.b, self.b_prime]

    def get_corrupted_input(self, input, corruption_level):
        return self.theano_rng.binomial(size=input.shape, n=1, p=1 - corruption_level,
                                        dtype=tg.config.floatX) * input

    def get_hidden_values(self, input):
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_reconstructed_input(self, hidden):
        return T.nnet.sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_cost_updates(self, corruption_level, learning_rate):
        tilde_x = self.get_corrupted_input(self.x, corruption_level)
        y = self.get_hidden_values(tilde_x)
        z = self.get_reconstructed_input(y)
        L = -T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1)
        cost = T.mean(L)
        gparams = T.grad(cost, self.params)
        updates = [(p, p - learning_rate * g) for p, g in zip(self.params, gparams)]
        return cost, updates


def synthetic_binary_images(rng, n, classes=10):
    """Binary 28×28 images: each class a few random line strokes, pixels
    flipped with probability 0.05."""
    templates = np.zeros((classes, 28, 28))
    for k in range(classes):
        for _ in range(3):
            r0, c0 = rng.integers(4, 24, size=2)
            dr, dc = rng.integers(-1, 2, size=2)
            for t in range(10):
                r, c = np.clip(r0 + dr * t, 0, 27), np.clip(c0 + dc * t, 0, 27)
                templates[k, r, c] = 1
    labels = rng.integers(0, classes, size=n)
    flips = rng.random((n, 28, 28)) < 0.05
    images = np.abs(templates[labels] - flips)
    return images.reshape(n, 784)


def main(seed=123, batch_size=20, corruption=0.3, learning_rate=0.1):
    args = parse_args(__doc__, default_steps=5)
    epochs = args.steps
    rng = np.random.default_rng(seed)
    data = synthetic_binary_images(rng, 1000)
    x = T.dmatrix("x")
    da = dA(rng, MRG_RandomStreams(seed), x, n_visible=784, n_hidden=100)
    cost, updates = da.get_cost_updates(corruption, learning_rate)
    train = tg.function([x], cost, updates=updates, name="train_dA")
    costs = []
    batches = range(0, len(data), batch_size)
    progress = Progress(epochs, label="epoch", every=1, per_step=len(batches),
                        rate_unit="batches")
    for epoch in range(1, epochs + 1):
        epoch_costs = [train(data[i:i + batch_size]) for i in batches]
        costs.append(float(np.mean(epoch_costs)))
        progress(epoch, costs[-1])
    print(f"final reconstruction cost {costs[-1]:.2f} (first epoch {costs[0]:.2f})")
    filters = da.W.get_value().T.reshape(-1, 28, 28)
    plot(args, lambda plt: draw(plt, filters, costs, "denoising autoencoder"))
    return costs


def draw(plt, filters, costs, title):
    """The filters as tiles, and the cost per epoch (shared with rbm.py)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.5),
                                   gridspec_kw={"width_ratios": [3, 2]})
    show_filters(ax1, filters)
    ax1.set_title(f"{title}: filters")
    ax2.plot(np.arange(1, len(costs) + 1), costs, "b.-")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("cost")
    return fig


if __name__ == "__main__":
    main()
