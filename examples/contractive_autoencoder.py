"""Contractive autoencoder, as in the Theano deep-learning tutorial (cA.py):
encode with tied weights, decode, and minimise the cross-entropy of the
reconstruction plus the squared Frobenius norm of the encoder's Jacobian
(``contraction_level`` times it) by SGD over minibatches.

    python examples/contractive_autoencoder.py [--steps N]

The Jacobian of ``h = sigmoid(x W + b)`` for each example is
``h * (1 - h)`` times ``W`` column by column: one (batch, 784, 500) tensor
per minibatch. The penalty is written as the tutorial writes it,
``T.sum(J ** 2) // batch_size``: a floor division, whose gradient is zero in
Theano (and here), so the penalty is reported but does not steer training.

The data is synthetic (binary 28×28 stroke images, as in the denoising
autoencoder example) so the example runs without downloads. Prints the
reconstruction cost and the Jacobian norm per epoch and plots the learned
filters with the cost per epoch.
"""
import os
import sys

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T

sys.path.insert(0, os.path.dirname(__file__))
from _common import Progress, parse_args, plot  # noqa: E402
from denoising_autoencoder import draw, synthetic_binary_images  # noqa: E402


class cA:
    """The tutorial's class: tied weights W, hidden bias b, visible bias
    b_prime, for minibatches of ``n_batchsize`` rows."""

    def __init__(self, numpy_rng, input, n_visible=784, n_hidden=500, n_batchsize=20,
                 dtype="float64"):
        self.n_visible, self.n_hidden, self.n_batchsize = n_visible, n_hidden, n_batchsize
        bound = 4 * np.sqrt(6.0 / (n_hidden + n_visible))
        initial_W = numpy_rng.uniform(-bound, bound, size=(n_visible, n_hidden)).astype(dtype)
        self.W = tg.shared(initial_W, name="W", borrow=True)
        self.b = tg.shared(np.zeros(n_hidden, dtype), name="b", borrow=True)
        self.b_prime = tg.shared(np.zeros(n_visible, dtype), name="b_prime", borrow=True)
        self.W_prime = self.W.T
        self.x = input
        self.params = [self.W, self.b, self.b_prime]

    def get_hidden_values(self, input):
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_jacobian(self, hidden, W):
        """d hidden / d input for each example of the minibatch:
        (n_batchsize, n_visible, n_hidden)."""
        return (T.reshape(hidden * (1 - hidden), (self.n_batchsize, 1, self.n_hidden))
                * T.reshape(W, (1, self.n_visible, self.n_hidden)))

    def get_reconstructed_input(self, hidden):
        return T.nnet.sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_cost_updates(self, contraction_level, learning_rate):
        """The cost and the SGD updates; also sets ``L_rec`` (per example)
        and ``L_jacob`` (the minibatch's mean squared Jacobian norm)."""
        y = self.get_hidden_values(self.x)
        z = self.get_reconstructed_input(y)
        J = self.get_jacobian(y, self.W)
        self.L_rec = -T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1)
        self.L_jacob = T.sum(J ** 2) // self.n_batchsize
        cost = T.mean(self.L_rec) + contraction_level * T.mean(self.L_jacob)
        gparams = T.grad(cost, self.params)
        updates = [(p, p - learning_rate * g) for p, g in zip(self.params, gparams)]
        return cost, updates


def build_training_step(data, batch_size=20, n_hidden=500, contraction_level=0.1,
                        learning_rate=0.01, seed=123, dtype="float64"):
    """The compiled step ``train(index) -> [mean L_rec, L_jacob]`` over the
    rows ``data[index * batch_size:(index + 1) * batch_size]`` (a shared
    variable, as the tutorial's ``givens``), and the model."""
    index = T.lscalar("index")
    x = T.matrix("x", dtype=dtype)
    train_set_x = tg.shared(np.asarray(data, dtype=dtype), name="train_set_x", borrow=True)
    ca = cA(np.random.RandomState(seed), x, n_visible=data.shape[1], n_hidden=n_hidden,
            n_batchsize=batch_size, dtype=dtype)
    cost, updates = ca.get_cost_updates(contraction_level, learning_rate)
    train = tg.function([index], [T.mean(ca.L_rec), ca.L_jacob], updates=updates,
                        givens={x: train_set_x[index * batch_size:(index + 1) * batch_size]},
                        name="train_cA")
    return train, ca


def main(seed=123, batch_size=20):
    args = parse_args(__doc__, default_steps=5)
    epochs = args.steps
    data = synthetic_binary_images(np.random.default_rng(seed), 500)
    train, ca = build_training_step(data, batch_size=batch_size, seed=seed)
    n_batches = len(data) // batch_size
    progress = Progress(epochs, label="epoch", every=1, per_step=n_batches,
                        rate_unit="batches")
    costs = []
    for epoch in range(1, epochs + 1):
        c = np.array([train(i) for i in range(n_batches)])
        costs.append(float(c[:, 0].mean()))
        progress(epoch, costs[-1], jacobian_norm=float(np.sqrt(c[:, 1]).mean()))
    print(f"final reconstruction cost {costs[-1]:.2f} (first epoch {costs[0]:.2f})")
    filters = ca.W.get_value().T[:100].reshape(-1, 28, 28)
    plot(args, lambda plt: draw(plt, filters, costs, "contractive autoencoder"))
    return costs


if __name__ == "__main__":
    main()
