"""Hamiltonian Monte Carlo written with tracegrad, sampling a correlated 2-D
Gaussian (after the Deep Learning Tutorials' HMC sampler).

    python examples/hmc.py [--steps N]

One compiled function ``hmc_step`` runs a whole HMC transition for many chains
at once: fresh momenta from ``RandomStreams.normal``, leapfrog integration as a
``scan`` whose body takes ``tg.grad`` of the energy (the negative
log-density), and a Metropolis accept/reject with ``RandomStreams.uniform``.
The chains' positions are a shared variable updated in place. Prints the
acceptance rate and the error of the sample mean and covariance.
"""
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.random import RandomStreams
from _common import Progress, parse_args, plot

MU = np.array([1.0, -1.0])
COV = np.array([[1.0, 0.9],
                [0.9, 1.0]])
PRECISION = np.linalg.inv(COV)


def energy(pos):
    """−log p(pos) up to a constant, per chain; ``pos`` is (chains, 2)."""
    d = pos - MU
    return 0.5 * (T.dot(d, PRECISION) * d).sum(axis=1)


def kinetic(vel):
    return 0.5 * (vel ** 2).sum(axis=1)


def leapfrog(pos, vel, step):
    """One full leapfrog step (scan body: previous outputs, then non-sequences)."""
    dE_dpos = tg.grad(energy(pos).sum(), pos)
    new_vel = vel - step * dE_dpos
    new_pos = pos + step * new_vel
    return [new_pos, new_vel], {}      # outputs, and no updates


def simulate_dynamics(pos0, vel0, step, n_leapfrog):
    """Integrate Hamilton's equations for ``n_leapfrog`` steps."""
    # Half step for the velocity, full step for the position, ...
    vel_half = vel0 - 0.5 * step * tg.grad(energy(pos0).sum(), pos0)
    pos_full = pos0 + step * vel_half
    # ... n_leapfrog - 1 full steps in a scan (only the last step is used, so
    # only the last step is kept in memory) ...
    (all_pos, all_vel), scan_updates = tg.scan(
        leapfrog, outputs_info=[pos_full, vel_half], non_sequences=[step],
        n_steps=n_leapfrog - 1, name="leapfrog")
    final_pos = all_pos[-1]
    # ... and a final half step for the velocity.
    final_vel = all_vel[-1] - 0.5 * step * tg.grad(energy(final_pos).sum(), final_pos)
    return final_pos, final_vel, scan_updates


def build_sampler(n_chains, n_leapfrog, seed):
    """A compiled HMC transition and the shared positions it updates."""
    rng = np.random.default_rng(seed)
    positions = tg.shared(rng.standard_normal((n_chains, 2)), name="positions")
    srng = RandomStreams(seed=seed)
    step = T.dscalar("step")

    vel0 = srng.normal(size=(n_chains, 2))
    final_pos, final_vel, scan_updates = simulate_dynamics(positions, vel0, step, n_leapfrog)
    h0 = energy(positions) + kinetic(vel0)
    h1 = energy(final_pos) + kinetic(final_vel)
    # Metropolis: accept with probability min(1, exp(h0 - h1)).
    accept = T.exp(h0 - h1) >= srng.uniform(size=(n_chains,))
    new_pos = T.switch(accept.dimshuffle(0, "x"), final_pos, positions)
    updates = dict(scan_updates)
    updates[positions] = new_pos
    hmc_step = tg.function([step], [new_pos, T.cast(accept, "float64").mean()],
                           updates=updates, name="hmc_step")
    return hmc_step, positions


def main():
    args = parse_args(__doc__, default_steps=400,
                      chains=(int, 50, "parallel chains (default 50)"),
                      leapfrog=(int, 20, "leapfrog steps per transition (default 20)"),
                      stepsize=(float, 0.15, "leapfrog step size (default 0.15)"))
    start = time.perf_counter()
    hmc_step, _ = build_sampler(args.chains, args.leapfrog, seed=2024)
    print(f"compiled the sampler in {time.perf_counter() - start:.2f} s")

    jitter = np.random.default_rng(7)
    burn_in = min(50, args.steps // 4)
    samples, accepted = [], []
    progress = Progress(args.steps, label="transition")
    start = time.perf_counter()
    for i in range(1, args.steps + 1):
        # A jittered step size keeps trajectories from resonating with the
        # target's periods (a fixed one can make some chains return to their start).
        pos, rate = hmc_step(args.stepsize * jitter.uniform(0.8, 1.2))
        accepted.append(float(rate))
        if i > burn_in:
            samples.append(pos.copy())
        d = pos - MU                    # a sampler has no loss: show its mean energy
        progress(i, acceptance=np.mean(accepted),
                 mean_energy=np.mean(0.5 * ((d @ PRECISION) * d).sum(axis=1)))
    elapsed = time.perf_counter() - start
    samples = np.concatenate(samples) if samples else np.empty((0, 2))
    print(f"{args.steps} transitions x {args.chains} chains in {elapsed:.2f} s")
    print(f"acceptance rate {np.mean(accepted):.3f}")
    if len(samples) > 2:
        mean_err = np.abs(samples.mean(axis=0) - MU).max()
        cov_err = np.abs(np.cov(samples.T) - COV).max()
        print(f"{len(samples)} samples: sample mean {np.round(samples.mean(axis=0), 3)} "
              f"(true {MU}), max error {mean_err:.3f}")
        print(f"sample covariance {np.round(np.cov(samples.T), 3).tolist()} "
              f"(true {COV.tolist()}), max error {cov_err:.3f}")
        if args.steps >= 400:
            assert mean_err < 0.1 and cov_err < 0.15, (mean_err, cov_err)
    plot(args, lambda plt: draw(plt, samples))


def draw(plt, samples):
    fig, ax = plt.subplots(figsize=(5, 5))
    shown = samples[:: max(1, len(samples) // 4000)]
    ax.plot(shown[:, 0], shown[:, 1], ".", markersize=2, alpha=0.4, label="HMC samples")
    # The true 1- and 2-sigma ellipses.
    vals, vecs = np.linalg.eigh(COV)
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    for k in (1, 2):
        ellipse = MU[:, None] + vecs @ (k * np.sqrt(vals)[:, None] * circle)
        ax.plot(ellipse[0], ellipse[1], "k-", linewidth=1)
    ax.set_aspect("equal")
    ax.set_title("HMC on a correlated Gaussian (1σ, 2σ contours)")
    ax.legend(loc="upper left")
    return fig


if __name__ == "__main__":
    main()
