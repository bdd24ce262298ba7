"""Restricted Boltzmann machine trained by persistent contrastive divergence
(PCD-k), as in the Theano deep-learning tutorial (rbm.py): Gibbs sampling
with ``scan`` and binomial draws from ``RandomStreams``, the free-energy
cost with ``consider_constant`` on the chain's end, and the tutorial's
pseudo-likelihood monitoring cost.

    python examples/rbm.py [--steps N]

The data is synthetic (binary 28×28 stroke images, as in the denoising
autoencoder example). Prints the pseudo-likelihood cost per epoch, which
rises (it is a log-likelihood proxy), and plots the learned filters with
the cost per epoch.
"""
import os
import sys

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.tensor.shared_randomstreams import RandomStreams

sys.path.insert(0, os.path.dirname(__file__))
from _common import Progress, parse_args, plot  # noqa: E402
from denoising_autoencoder import draw, synthetic_binary_images  # noqa: E402


class RBM:
    def __init__(self, input, n_visible, n_hidden, rng, theano_rng):
        bound = 4 * np.sqrt(6.0 / (n_hidden + n_visible))
        self.W = tg.shared(rng.uniform(-bound, bound, size=(n_visible, n_hidden)), name="W")
        self.hbias = tg.shared(np.zeros(n_hidden), name="hbias")
        self.vbias = tg.shared(np.zeros(n_visible), name="vbias")
        self.input = input
        self.theano_rng = theano_rng
        self.params = [self.W, self.hbias, self.vbias]

    def free_energy(self, v_sample):
        wx_b = T.dot(v_sample, self.W) + self.hbias
        vbias_term = T.dot(v_sample, self.vbias)
        hidden_term = T.sum(T.log(1 + T.exp(wx_b)), axis=1)
        return -hidden_term - vbias_term

    def propup(self, vis):
        pre = T.dot(vis, self.W) + self.hbias
        return [pre, T.nnet.sigmoid(pre)]

    def sample_h_given_v(self, v0_sample):
        pre_h1, h1_mean = self.propup(v0_sample)
        h1_sample = self.theano_rng.binomial(size=h1_mean.shape, n=1, p=h1_mean,
                                             dtype=tg.config.floatX)
        return [pre_h1, h1_mean, h1_sample]

    def propdown(self, hid):
        pre = T.dot(hid, self.W.T) + self.vbias
        return [pre, T.nnet.sigmoid(pre)]

    def sample_v_given_h(self, h0_sample):
        pre_v1, v1_mean = self.propdown(h0_sample)
        v1_sample = self.theano_rng.binomial(size=v1_mean.shape, n=1, p=v1_mean,
                                             dtype=tg.config.floatX)
        return [pre_v1, v1_mean, v1_sample]

    def gibbs_hvh(self, h0_sample):
        pre_v1, v1_mean, v1_sample = self.sample_v_given_h(h0_sample)
        pre_h1, h1_mean, h1_sample = self.sample_h_given_v(v1_sample)
        return [pre_v1, v1_mean, v1_sample, pre_h1, h1_mean, h1_sample]

    def get_cost_updates(self, lr=0.1, persistent=None, k=1):
        pre_sigmoid_ph, ph_mean, ph_sample = self.sample_h_given_v(self.input)
        chain_start = ph_sample if persistent is None else persistent
        ([pre_sigmoid_nvs, nv_means, nv_samples, pre_sigmoid_nhs, nh_means, nh_samples],
         updates) = tg.scan(self.gibbs_hvh,
                            outputs_info=[None, None, None, None, None, chain_start],
                            n_steps=k, name="gibbs_hvh")
        chain_end = nv_samples[-1]
        cost = T.mean(self.free_energy(self.input)) - T.mean(self.free_energy(chain_end))
        gparams = T.grad(cost, self.params, consider_constant=[chain_end])
        for gparam, param in zip(gparams, self.params):
            updates[param] = param - gparam * T.cast(lr, dtype=tg.config.floatX)
        if persistent is not None:
            updates[persistent] = nh_samples[-1]
            monitoring_cost = self.get_pseudo_likelihood_cost(updates)
        else:
            monitoring_cost = T.mean(self.free_energy(self.input))
        return monitoring_cost, updates

    def get_pseudo_likelihood_cost(self, updates):
        bit_i_idx = tg.shared(value=0, name="bit_i_idx")
        xi = T.round(self.input)
        fe_xi = self.free_energy(xi)
        xi_flip = T.set_subtensor(xi[:, bit_i_idx], 1 - xi[:, bit_i_idx])
        fe_xi_flip = self.free_energy(xi_flip)
        n_visible = self.W.get_value(borrow=True).shape[0]
        cost = T.mean(n_visible * T.log(T.nnet.sigmoid(fe_xi_flip - fe_xi)))
        updates[bit_i_idx] = (bit_i_idx + 1) % n_visible
        return cost


def main(seed=123, batch_size=20, n_hidden=64, k=5, learning_rate=0.1):
    args = parse_args(__doc__, default_steps=5)
    epochs = args.steps
    rng = np.random.default_rng(seed)
    data = synthetic_binary_images(rng, 600)
    x = T.dmatrix("x")
    persistent_chain = tg.shared(np.zeros((batch_size, n_hidden)), name="persistent_chain")
    rbm = RBM(x, 784, n_hidden, rng, RandomStreams(seed))
    cost, updates = rbm.get_cost_updates(lr=learning_rate, persistent=persistent_chain, k=k)
    train = tg.function([x], cost, updates=updates, name="train_rbm")
    costs = []
    batches = range(0, len(data), batch_size)
    progress = Progress(epochs, label="epoch", every=1, per_step=len(batches),
                        rate_unit="batches")
    for epoch in range(1, epochs + 1):
        epoch_costs = [train(data[i:i + batch_size]) for i in batches]
        costs.append(float(np.mean(epoch_costs)))
        progress(epoch, pseudo_likelihood_cost=costs[-1])    # rises: not a loss
    print(f"final pseudo-likelihood cost {costs[-1]:.1f} (first epoch {costs[0]:.1f})")
    filters = rbm.W.get_value().T.reshape(-1, 28, 28)
    plot(args, lambda plt: draw(plt, filters, costs, "RBM (PCD-5)"))
    return costs


if __name__ == "__main__":
    main()
