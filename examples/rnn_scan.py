"""A small recurrent network trained with ``scan``: learn to echo the input
sequence ``DELAY`` steps late (it has to remember what it saw).

    python examples/rnn_scan.py [--steps N]

The recurrence ``h_t = tanh(x_t W_in + h_{t-1} W_rec + b)`` is a ``tg.scan``
over time (a batch of sequences at once); ``tg.grad`` differentiates through
the loop (backpropagation through time), and Adam's updates are written as
ordinary ``updates`` on shared variables. Prints the validation loss against
the loss of always predicting zero.
"""
import time

import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from _common import Progress, parse_args, plot

DELAY = 3


def make_batch(rng, length=20, batch=32):
    """Inputs (time, batch, 1) uniform in [-1, 1]; targets = inputs DELAY steps late."""
    x = rng.uniform(-1, 1, size=(length, batch, 1))
    y = np.zeros_like(x)
    y[DELAY:] = x[:-DELAY]
    return x, y


def adam(cost, params, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam as a list of updates: moments and step count are shared variables."""
    t = tg.shared(0.0, name="adam_t")
    t_new = t + 1
    updates = [(t, t_new)]
    scale = lr * T.sqrt(1 - beta2 ** t_new) / (1 - beta1 ** t_new)
    for p, g in zip(params, tg.grad(cost, params)):
        m = tg.shared(np.zeros_like(p.get_value()), name="m_" + p.name)
        v = tg.shared(np.zeros_like(p.get_value()), name="v_" + p.name)
        m_new = beta1 * m + (1 - beta1) * g
        v_new = beta2 * v + (1 - beta2) * g ** 2
        updates += [(m, m_new), (v, v_new), (p, p - scale * m_new / (T.sqrt(v_new) + eps))]
    return updates


def main():
    args = parse_args(__doc__, default_steps=300,
                      hidden=(int, 16, "hidden units (default 16)"))
    rng = np.random.default_rng(0)
    n_h = args.hidden
    w_in = tg.shared(rng.normal(0, 0.5, (1, n_h)), name="W_in")
    w_rec = tg.shared(rng.normal(0, 1 / np.sqrt(n_h), (n_h, n_h)), name="W_rec")
    b = tg.shared(np.zeros(n_h), name="b")
    w_out = tg.shared(rng.normal(0, 1 / np.sqrt(n_h), (n_h, 1)), name="W_out")
    b_out = tg.shared(np.zeros(1), name="b_out")
    params = [w_in, w_rec, b, w_out, b_out]

    x = T.dtensor3("x")        # (time, batch, 1)
    y = T.dtensor3("y")

    def step(x_t, h_prev, w_in, w_rec, b):
        # scan's argument order: sequence slices, previous outputs, non-sequences
        return T.tanh(T.dot(x_t, w_in) + T.dot(h_prev, w_rec) + b)

    h0 = T.zeros((x.shape[1], n_h))
    h, scan_updates = tg.scan(step, sequences=x, outputs_info=h0,
                              non_sequences=[w_in, w_rec, b], name="rnn")
    prediction = T.dot(h, w_out) + b_out                      # (time, batch, 1)
    loss = T.mean((prediction[DELAY:] - y[DELAY:]) ** 2)

    start = time.perf_counter()
    train = tg.function([x, y], loss, updates=adam(loss, params) + list(scan_updates.items()),
                        name="train")
    evaluate = tg.function([x, y], [loss, prediction], name="evaluate")
    print(f"compiled in {time.perf_counter() - start:.2f} s")

    x_val, y_val = make_batch(np.random.default_rng(99), batch=256)
    baseline = np.mean(y_val[DELAY:] ** 2)
    print(f"validation loss of always predicting 0: {baseline:.4f}")
    history = []
    progress = Progress(args.steps)
    start = time.perf_counter()
    for i in range(1, args.steps + 1):
        batch_loss = train(*make_batch(rng))
        if i % progress.every == 0 or i in (1, args.steps):
            val_loss = float(evaluate(x_val, y_val)[0])
            history.append((i, val_loss))
            progress(i, batch_loss, validation_loss=val_loss)
    elapsed = time.perf_counter() - start
    val_loss, val_pred = evaluate(x_val, y_val)
    print(f"trained {args.steps} steps in {elapsed:.2f} s; validation loss "
          f"{float(val_loss):.5f} ({float(val_loss) / baseline:.1%} of the baseline)")
    if args.steps >= 300:
        assert val_loss < 0.05 * baseline, (val_loss, baseline)
    plot(args, lambda plt: draw(plt, history, x_val, y_val, val_pred))


def draw(plt, history, x_val, y_val, val_pred):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps, losses = zip(*history)
    ax1.semilogy(steps, losses, "b.-")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("validation MSE")
    t = np.arange(len(x_val))
    ax2.plot(t, x_val[:, 0, 0], "k.:", label="input")
    ax2.plot(t, y_val[:, 0, 0], "g-", label=f"target (input {DELAY} steps late)")
    ax2.plot(t, val_pred[:, 0, 0], "r--", label="RNN output")
    ax2.set_xlabel("time step")
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)
    return fig


if __name__ == "__main__":
    main()
