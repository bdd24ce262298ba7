"""Training steps: W2 (logistic regression of the Theano tutorial), W4 (MLP
784-256-10), and W6 (their steady-state memory and stability).

The baseline is NumPy with a hand-written gradient, updating its weights in
place. Every system starts from the same initial weights; its first step's
outputs and updated weights are checked against NumPy's before timing.
"""
import tracemalloc

import numpy as np

from bench import peers
from bench.timing import Missing

LR = 0.1


# ----------------------------------------------------------------- W2 data
def w2_data(n, dtype, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 784).astype(dtype)
    y = rng.randint(size=n, low=0, high=2).astype(dtype)
    w = rng.randn(784).astype(dtype)  # the tutorial's initialisation
    return x, y, w, np.asarray(0.0, dtype=dtype)


class State:
    """A system's step function plus a view of its current weights."""

    def __init__(self, step, weights):
        self.step = step
        self.weights = weights

    def __call__(self):
        return self.step()


def w2_hand_step(xp, x, y, w, b):
    """One W2 step with the hand-written gradient, in array module ``xp``
    (NumPy here, CuPy in ``bench.gpu``): updates ``w`` and ``b`` in place
    and returns ``(prediction, xent)``."""
    p = 1 / (1 + xp.exp(-(x @ w) - b))
    prediction = p > 0.5
    xent = -y * xp.log(p) - (1 - y) * xp.log(1 - p)
    gz = (p - y) / x.shape[0]
    gw = x.T @ gz + 0.02 * w
    gb = gz.sum()
    w[...] -= LR * gw
    b[...] -= LR * gb
    return prediction, xent


def w2_jax_step(jax, jnp):
    """The jitted W2 step ``(params, x, y) -> (params, (prediction, xent))``."""
    def loss(params, x, y):
        w, b = params
        p = 1 / (1 + jnp.exp(-(x @ w) - b))
        xent = -y * jnp.log(p) - (1 - y) * jnp.log(1 - p)
        return xent.mean() + 0.01 * (w ** 2).sum(), (p > 0.5, xent)

    @jax.jit
    def step(params, x, y):
        (_, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, x, y)
        return [p - LR * g for p, g in zip(params, grads)], aux
    return step


def w2_numpy(x, y, w0, b0):
    w, b = w0.copy(), b0.copy()
    return State(lambda: w2_hand_step(np, x, y, w, b), lambda: [w, b])


def w2_tracegrad(x, y, w0, b0):
    peers.tracegrad_function_available()
    import tracegrad as tg
    import tracegrad.tensor as T
    dtype = x.dtype.name
    xs = T.tensor(dtype, (None, None), "x")
    ys = T.tensor(dtype, (None,), "y")
    w = tg.shared(w0.copy(), name="w")
    b = tg.shared(b0.copy(), name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(xs, w) - b))
    prediction = p_1 > 0.5
    xent = -ys * T.log(p_1) - (1 - ys) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = tg.function([xs, ys], [prediction, xent],
                        updates=[(w, w - LR * gw), (b, b - LR * gb)])
    return State(lambda: train(x, y),
                 lambda: [w.get_value(borrow=True), b.get_value(borrow=True)])


def w2_pytensor(x, y, w0, b0):
    peers.pytensor()
    import pytensor
    import pytensor.tensor as pt
    dtype = x.dtype.name
    xs = pt.matrix("x", dtype=dtype)
    ys = pt.vector("y", dtype=dtype)
    w = pytensor.shared(w0.copy(), name="w")
    b = pytensor.shared(b0.copy(), name="b")
    p_1 = 1 / (1 + pt.exp(-pt.dot(xs, w) - b))
    xent = -ys * pt.log(p_1) - (1 - ys) * pt.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = pytensor.grad(cost, [w, b])
    lr = np.asarray(LR, dtype=dtype)
    train = pytensor.function([xs, ys], [p_1 > 0.5, xent],
                              updates=[(w, w - lr * gw), (b, b - lr * gb)])
    return State(lambda: train(x, y),
                 lambda: [w.get_value(borrow=True), b.get_value(borrow=True)])


def w2_jax(x, y, w0, b0):
    jax = peers.jax()
    jnp = peers.jnp()
    step = w2_jax_step(jax, jnp)
    params = [jnp.asarray(w0), jnp.asarray(b0)]
    xd, yd = jnp.asarray(x), jnp.asarray(y)
    box = [params]

    def run():
        box[0], (pred, xent) = step(box[0], xd, yd)
        return np.asarray(pred), np.asarray(xent)
    return State(run, lambda: [np.asarray(p) for p in box[0]])


def w2_autograd(x, y, w0, b0):
    anp, grad = peers.autograd()
    params = [w0.copy(), b0.copy()]
    n = x.shape[0]

    def loss(w, b):
        p = 1 / (1 + anp.exp(-anp.dot(x, w) - b))
        xent = -y * anp.log(p) - (1 - y) * anp.log(1 - p)
        return anp.mean(xent) + 0.01 * anp.sum(w ** 2)

    dloss = grad(loss, [0, 1])
    del n

    def run():
        w, b = params
        p = 1 / (1 + np.exp(-(x @ w) - b))
        xent = -y * np.log(p) - (1 - y) * np.log(1 - p)
        gw, gb = dloss(w, b)
        params[0] = w - LR * gw
        params[1] = b - LR * gb
        return p > 0.5, xent
    return State(run, lambda: list(params))


W2_SYSTEMS = {"numpy (hand grad)": w2_numpy, "pytensor": w2_pytensor, "jax.jit": w2_jax,
              "autograd": w2_autograd, "tracegrad": w2_tracegrad}


# ----------------------------------------------------------------- W4 (MLP)
def w4_data(batch, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.rand(batch, 784).astype("float32")
    y = rng.randint(0, 10, size=batch).astype("int64")
    w1 = (rng.randn(784, 256) * np.sqrt(1 / 784)).astype("float32")
    b1 = np.zeros(256, "float32")
    w2 = (rng.randn(256, 10) * np.sqrt(1 / 256)).astype("float32")
    b2 = np.zeros(10, "float32")
    return x, y, [w1, b1, w2, b2]


def w4_hand_step(xp, x, y, params, onehot):
    """One W4 step with the hand-written gradient, in array module ``xp``:
    updates ``params`` (w1, b1, w2, b2) in place and returns the loss (as
    ``xp`` computed it)."""
    batch = x.shape[0]
    w1, b1, w2, b2 = params
    h = xp.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    logits = logits - logits.max(axis=1, keepdims=True)
    e = xp.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -xp.mean(xp.log(p[xp.arange(batch), y]))
    g = (p - onehot) / batch
    gw2 = h.T @ g
    gb2 = g.sum(axis=0)
    gz = (g @ w2.T) * (1 - h * h)
    gw1 = x.T @ gz
    gb1 = gz.sum(axis=0)
    for prm, grd in zip(params, (gw1, gb1, gw2, gb2)):
        prm -= LR * grd
    return loss


def w4_jax_step(jax, jnp):
    """The jitted W4 step ``(params, x, y) -> (params, loss)``."""
    def loss(params, x, y):
        w1, b1, w2, b2 = params
        h = jnp.tanh(x @ w1 + b1)
        logp = jax.nn.log_softmax(h @ w2 + b2)
        return -jnp.mean(logp[jnp.arange(x.shape[0]), y])

    @jax.jit
    def step(params, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        return [p - np.float32(LR) * g for p, g in zip(params, grads)], value
    return step


def w4_numpy(x, y, params0):
    params = [p.copy() for p in params0]
    onehot = np.eye(10, dtype="float32")[y]

    def step():
        return np.asarray(w4_hand_step(np, x, y, params, onehot), dtype="float32")
    return State(step, lambda: params)


def w4_tracegrad(x, y, params0):
    peers.tracegrad_function_available()
    import tracegrad as tg
    import tracegrad.tensor as T
    xs = T.fmatrix("x")
    ys = T.lvector("y")
    shared = [tg.shared(p.copy(), name=n) for p, n in zip(params0, ["w1", "b1", "w2", "b2"])]
    w1, b1, w2, b2 = shared
    h = T.tanh(T.dot(xs, w1) + b1)
    p = T.nnet.softmax(T.dot(h, w2) + b2)
    loss = T.nnet.categorical_crossentropy(p, ys).mean()
    grads = T.grad(loss, shared)
    train = tg.function([xs, ys], loss,
                        updates=[(s, s - LR * g) for s, g in zip(shared, grads)])
    return State(lambda: train(x, y), lambda: [s.get_value(borrow=True) for s in shared])


def w4_pytensor(x, y, params0):
    peers.pytensor()
    import pytensor
    import pytensor.tensor as pt
    xs = pt.matrix("x", dtype="float32")
    ys = pt.vector("y", dtype="int64")
    shared = [pytensor.shared(p.copy()) for p in params0]
    w1, b1, w2, b2 = shared
    h = pt.tanh(pt.dot(xs, w1) + b1)
    p = pt.special.softmax(pt.dot(h, w2) + b2, axis=-1)
    loss = -pt.mean(pt.log(p[pt.arange(ys.shape[0]), ys]))
    grads = pytensor.grad(loss, shared)
    train = pytensor.function([xs, ys], loss,
                              updates=[(s, s - np.float32(LR) * g)
                                       for s, g in zip(shared, grads)])
    return State(lambda: train(x, y), lambda: [s.get_value(borrow=True) for s in shared])


def w4_jax(x, y, params0):
    jax = peers.jax()
    jnp = peers.jnp()
    step = w4_jax_step(jax, jnp)
    box = [[jnp.asarray(p) for p in params0]]
    xd, yd = jnp.asarray(x), jnp.asarray(y)

    def run():
        box[0], value = step(box[0], xd, yd)
        return np.asarray(value)
    return State(run, lambda: [np.asarray(p) for p in box[0]])


def w4_autograd(x, y, params0):
    anp, grad = peers.autograd()
    params = [p.copy() for p in params0]
    batch = x.shape[0]

    def loss(params):
        w1, b1, w2, b2 = params
        h = anp.tanh(anp.dot(x, w1) + b1)
        logits = anp.dot(h, w2) + b2
        logits = logits - anp.max(logits, axis=1, keepdims=True)
        logp = logits - anp.log(anp.sum(anp.exp(logits), axis=1, keepdims=True))
        return -anp.mean(logp[np.arange(batch), y])

    dloss = grad(loss)

    def run():
        value = loss(params)
        grads = dloss(params)
        params[:] = [p - np.float32(LR) * g for p, g in zip(params, grads)]
        return np.asarray(value, dtype="float32")
    return State(run, lambda: list(params))


W4_SYSTEMS = {"numpy (hand grad)": w4_numpy, "pytensor": w4_pytensor, "jax.jit": w4_jax,
              "autograd": w4_autograd, "tracegrad": w4_tracegrad}


# ------------------------------------------------------------------ checks
def _check_step(reference, rtol):
    """Compare a system's first step (outputs where finite, and weights)."""
    ref_out, ref_weights = reference

    def check(name, got, state):
        got = got if isinstance(got, (list, tuple)) else [got]
        for k, (g, e) in enumerate(zip(got, ref_out)):
            g, e = np.asarray(g), np.asarray(e)
            if e.dtype == bool:
                agree = np.mean(g == e)
                if agree < 0.99:
                    raise AssertionError(f"{name}: output {k} agrees with NumPy on "
                                         f"{agree:.1%} of entries")
                continue
            finite = np.isfinite(e) & np.isfinite(g)
            np.testing.assert_allclose(g[finite], e[finite], rtol=rtol, atol=rtol,
                                       err_msg=f"{name}: output {k}")
        for k, (g, e) in enumerate(zip(state.weights(), ref_weights)):
            np.testing.assert_allclose(np.asarray(g), e, rtol=rtol, atol=rtol,
                                       err_msg=f"{name}: weight {k} after one step")
    return check


def _case(wid, label, systems, make_args, make_check_args, rtol, budget_s):
    """A case whose systems are checked on ``make_check_args()`` (well
    conditioned) and then timed from ``make_args()``."""
    ref_state = systems["numpy (hand grad)"](*make_check_args())
    ref_out = ref_state()
    ref_out = ref_out if isinstance(ref_out, (list, tuple)) else [ref_out]
    reference = (ref_out, [np.array(w) for w in ref_state.weights()])
    check = _check_step(reference, rtol)

    def builder(name, fn):
        def build():
            probe = fn(*make_check_args())
            check(name, probe(), probe)
            return fn(*make_args())
        return build
    return dict(workload=wid, case=label,
                systems={name: builder(name, fn) for name, fn in systems.items()},
                check=lambda name, got, case: None,
                baseline="numpy (hand grad)", budget_s=budget_s, target_s=0.02)


def run(quick, rounds, wid):
    budget = 6.0 if quick else 30.0
    if wid == "W2":
        for n, dtype, rtol in ((400, "float64", 1e-6), (10000, "float32", 2e-3)):
            def make(n=n, dtype=dtype, scale=1.0):
                x, y, w, b = w2_data(n, dtype)
                return x, y, (w * scale).astype(dtype), b
            yield _case("W2", f"N={n} {dtype}", W2_SYSTEMS, make,
                        lambda make=make: make(scale=0.01), rtol, budget)
    elif wid == "W4":
        for batch in (128, 1024):
            yield _case("W4", f"batch={batch} float32", W4_SYSTEMS,
                        lambda batch=batch: w4_data(batch),
                        lambda batch=batch: w4_data(batch), 2e-3, budget)
    elif wid == "W6":
        yield dict(rows=memory_rows())


# ------------------------------------------------------------------ W6
def memory_rows():
    """Bytes allocated during one steady-state step, shared buffers kept,
    stability on the tutorial's initialisation."""
    rows = []
    cases = [("W2 N=400 float64", w2_tracegrad, w2_numpy, lambda: w2_data(400, "float64")),
             ("W4 batch=128", w4_tracegrad, w4_numpy, lambda: w4_data(128))]
    for label, tg_fn, np_fn, make in cases:
        for system, fn in (("numpy (hand grad)", np_fn), ("tracegrad", tg_fn)):
            row = dict(workload="W6", case=label, system=system)
            try:
                state = fn(*make())
                for _ in range(3):
                    state()
                before_ids = [w.__array_interface__["data"][0] for w in state.weights()]
                tracemalloc.start()
                start, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                out = state()
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                outs = out if isinstance(out, (list, tuple)) else [out]
                out_bytes = sum(np.asarray(o).nbytes for o in outs)
                after_ids = [w.__array_interface__["data"][0] for w in state.weights()]
                finite = all(np.isfinite(np.asarray(o)).all() for o in outs
                             if np.asarray(o).dtype.kind == "f")
                weights_finite = all(np.isfinite(w).all() for w in state.weights())
                row.update(status="ok",
                           step_peak_bytes=int(peak - start),
                           beyond_outputs_bytes=int(max(0, peak - start - out_bytes)),
                           new_weight_buffers=sum(a != b for a, b in zip(before_ids, after_ids)),
                           outputs_finite=bool(finite), weights_finite=bool(weights_finite))
            except Missing as exc:
                row["status"] = f"missing: {exc}"
            except Exception as exc:
                row["status"] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
            finally:
                if tracemalloc.is_tracing():
                    tracemalloc.stop()
            rows.append(row)
    return rows
