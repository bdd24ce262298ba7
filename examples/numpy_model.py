"""Plain NumPy model code trained through tracegrad without changing it.

    python examples/numpy_model.py [--steps N]

``predict`` and ``loss`` below are ordinary NumPy functions: they run on
arrays as they are. ``tg.value_and_grad(loss, argnums=...)`` traces them once
on symbolic placeholders (``np.tanh``, ``@`` and ``np.mean`` build graph
nodes), differentiates and compiles; ``tg.jit(predict)`` does the same
without the gradient. The training loop itself is NumPy too. Fits a small
network to ``sin(3x)`` and plots the fit.
"""
import time

import numpy as np

import tracegrad as tg
from _common import Progress, parse_args, plot


# ---- the model: nothing here knows about tracegrad ------------------------
def predict(params, x):
    hidden = np.tanh(x @ params["w1"] + params["b1"])
    return hidden @ params["w2"] + params["b2"]


def loss(params, x, y):
    return np.mean((predict(params, x) - y) ** 2)


def init(rng, hidden=32):
    return {"w1": rng.normal(0, 1.0, (1, hidden)), "b1": np.zeros(hidden),
            "w2": rng.normal(0, 1 / np.sqrt(hidden), (hidden, 1)), "b2": np.zeros(1)}
# ---------------------------------------------------------------------------


def main():
    args = parse_args(__doc__, default_steps=2000,
                      lr=(float, 0.05, "learning rate (default 0.05)"))
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 128).reshape(-1, 1)
    y = np.sin(3 * x) + 0.05 * rng.standard_normal(x.shape)
    params = init(rng)

    # Gradient with respect to argument 0, a dict of arrays: grads is a dict too.
    loss_and_grads = tg.value_and_grad(loss, argnums=0)
    fast_predict = tg.jit(predict)

    value, grads = loss_and_grads(params, x, y)
    eager = loss(params, x, y)                       # the same code on NumPy arrays
    print(f"initial loss: traced {float(value):.6f}, plain NumPy {eager:.6f}")
    assert np.allclose(value, eager)
    # One gradient entry against a central finite difference.
    eps = 1e-6
    bumped = {k: v.copy() for k, v in params.items()}
    lowered = {k: v.copy() for k, v in params.items()}
    bumped["w1"][0, 0] += eps
    lowered["w1"][0, 0] -= eps
    numeric = (loss(bumped, x, y) - loss(lowered, x, y)) / (2 * eps)
    print(f"d loss / d w1[0, 0]: tracegrad {grads['w1'][0, 0]:.8f}, "
          f"finite difference {numeric:.8f}")
    assert np.isclose(grads["w1"][0, 0], numeric, rtol=1e-5, atol=1e-8)

    # Gradient descent with momentum, written in NumPy.
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    progress = Progress(args.steps)
    losses = []
    start = time.perf_counter()
    for i in range(1, args.steps + 1):
        value, grads = loss_and_grads(params, x, y)
        for k in params:
            velocity[k] = 0.9 * velocity[k] - args.lr * grads[k]
            params[k] += velocity[k]
        losses.append(float(value))
        progress(i, value)
    elapsed = time.perf_counter() - start
    final = float(loss_and_grads(params, x, y)[0])
    print(f"{args.steps} steps in {elapsed:.2f} s ({elapsed / max(args.steps, 1) * 1e6:.0f} "
          f"us per step); final loss {final:.6f} (noise level {0.05 ** 2:.4f})")
    fitted = fast_predict(params, x)
    assert np.allclose(fitted, predict(params, x))
    if args.steps >= 2000:
        assert final < 0.01, final
    plot(args, lambda plt: draw(plt, x, y, fitted, losses))


def draw(plt, x, y, fitted, losses):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.semilogy(np.arange(1, len(losses) + 1), losses, "b-")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (MSE)")
    ax2.plot(x[:, 0], y[:, 0], "k.", markersize=3, label="data: sin(3x) + noise")
    ax2.plot(x[:, 0], fitted[:, 0], "r-", label="network (tg.jit(predict))")
    ax2.legend()
    return fig


if __name__ == "__main__":
    main()
