"""W9: one training step of the contractive autoencoder of the Theano
deep-learning tutorial (``examples/contractive_autoencoder.py``): batch 20,
784 visible, 500 hidden, tied weights, the Jacobian penalty
``sum(J ** 2) // batch`` over the (20, 784, 500) tensor ``J``.

The baseline is NumPy written by hand: the same forward pass (``J`` built in
a buffer kept between steps, squared in place and summed) and the gradient
of the same cost (the floor division's is zero, as in Theano, so the
penalty adds nothing to it), updating the weights in place. "numpy
(factored J)" is the same step with ``sum(J ** 2)`` computed as
``(h(1-h))^2`` summed over the batch dotted with ``W^2`` summed over the
visible axis (and, with ``/``, its gradient as ``W`` or ``h(1-h)`` times
such sums): shown for reference, it is a different algorithm. The
"/batch" cases divide truly, so the penalty has a gradient: the NumPy
baseline then also forms ``J * h(1-h)`` and ``J * W`` in a second buffer
and sums them over the batch and the visible axis. "tracegrad
(1 thread)" runs tracegrad's step with ``num_threads=1``, as the NumPy
baselines run (one BLAS thread): on a shared, loaded 2-core machine its
fused kernels' two threads wait for each other. "tracegrad fast_math"
compiles the step in mode 'fast_math', where factors constant along a sum's
axes move out of it (``rewrite/factor_sum.py``; PyTensor does the same by
default): the gradient never forms the (20, 784, 500) product.
"""
from functools import partial

import numpy as np

from bench import peers
from bench.training import State, _case

LR = 0.01
CONTRACTION = 0.1
BATCH, VISIBLE, HIDDEN = 20, 784, 500


def w9_data(dtype, seed=0):
    """Inputs in [0, 1) and the tutorial's initialisation."""
    rng = np.random.RandomState(seed)
    x = rng.rand(BATCH, VISIBLE).astype(dtype)
    bound = 4 * np.sqrt(6.0 / (HIDDEN + VISIBLE))
    w = rng.uniform(-bound, bound, size=(VISIBLE, HIDDEN)).astype(dtype)
    return x, [w, np.zeros(HIDDEN, dtype), np.zeros(VISIBLE, dtype)]


def _sigmoid(a):
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    return np.reciprocal(a, out=a)


def _penalty(s, w, bufs, factored, true_div):
    """``sum(J ** 2)`` with ``J = s[:, None, :] * w[None]`` and, for the
    true division, ``(d/dW, d/ds)`` of it (``None`` for ``//``). ``bufs``:
    two (batch, visible, hidden) buffers kept between steps."""
    if factored:
        s2, w2 = (s * s).sum(axis=0), (w * w).sum(axis=0)
        grads = (w * (2 * s2), s * (2 * w2)) if true_div else None
        return s2 @ w2, grads
    jac, tmp = bufs
    np.multiply(s[:, None, :], w[None, :, :], out=jac)
    if not true_div:
        np.square(jac, out=jac)
        return jac.sum(), None
    total = np.multiply(jac, jac, out=tmp).sum()
    gw = np.multiply(jac, s[:, None, :], out=tmp).sum(axis=0)
    gs = np.multiply(jac, w[None, :, :], out=tmp).sum(axis=1)
    return total, (2 * gw, 2 * gs)


def w9_hand_step(x, params, bufs, factored=False, true_div=False):
    """One step, updating ``params`` (W, b, b_prime) in place; returns
    ``(mean L_rec, L_jacob)``. ``L_jacob = sum(J ** 2) // batch`` as in the
    tutorial (no gradient), or ``/ batch`` with ``true_div``."""
    w, b, bp = params
    batch = x.shape[0]
    h = _sigmoid(x @ w + b)
    z = _sigmoid(h @ w.T + bp)
    l_rec = -(x * np.log(z) + (1 - x) * np.log1p(-z)).sum(axis=1)
    s = h * (1 - h)
    total, grads = _penalty(s, w, bufs, factored, true_div)
    l_jacob = total / batch if true_div else np.floor_divide(total, batch)
    gz = (z - x) / batch  # d mean(L_rec) / d(decoder pre-activation)
    gh = gz @ w
    if grads is not None:  # d(CONTRACTION * sum(J ** 2) / batch)
        k = CONTRACTION / batch
        gh += k * grads[1] * (1 - 2 * h)  # (d s / d h = 1 - 2 h)
    ga = gh * s  # into the encoder pre-activation
    gw = gz.T @ h
    gw += x.T @ ga
    if grads is not None:
        gw += (CONTRACTION / batch) * grads[0]
    w -= LR * gw
    b -= LR * ga.sum(axis=0)
    bp -= LR * gz.sum(axis=0)
    return l_rec.mean(), l_jacob


def w9_numpy(x, params0, factored=False, true_div=False):
    params = [p.copy() for p in params0]
    shape = (x.shape[0],) + params[0].shape
    bufs = None if factored else (np.empty(shape, x.dtype),
                                  np.empty(shape, x.dtype) if true_div else None)
    return State(lambda: w9_hand_step(x, params, bufs, factored, true_div), lambda: params)


def _cost_and_updates(T, grad, x, shared, true_div=False):
    """The tutorial's cost (``T``: tracegrad.tensor or pytensor.tensor);
    ``true_div``: ``sum(J ** 2) / batch`` instead of ``//``."""
    w, b, bp = shared
    h = T.sigmoid(T.dot(x, w) + b)
    z = T.sigmoid(T.dot(h, w.T) + bp)
    jac = (T.reshape(h * (1 - h), (BATCH, 1, HIDDEN))
           * T.reshape(w, (1, VISIBLE, HIDDEN)))
    l_rec = -T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), axis=1)
    l_jacob = T.sum(jac ** 2) / BATCH if true_div else T.sum(jac ** 2) // BATCH
    cost = T.mean(l_rec) + CONTRACTION * T.mean(l_jacob)
    grads = grad(cost, shared)
    return [T.mean(l_rec), l_jacob], [(p, p - LR * g) for p, g in zip(shared, grads)]


def w9_tracegrad(x, params0, threads=None, true_div=False, mode=None):
    """tracegrad's compiled step; ``threads``: ``tg.config.num_threads``
    during each call (default: as configured); ``mode``: ``tg.function``'s."""
    peers.tracegrad_function_available()
    import tracegrad as tg
    import tracegrad.tensor as T
    xs = T.matrix("x", dtype=x.dtype.name)
    shared = [tg.shared(p.copy(), name=n) for p, n in zip(params0, ["W", "b", "b_prime"])]
    outputs, updates = _cost_and_updates(T, T.grad, xs, shared, true_div)
    train = tg.function([xs], outputs, updates=updates, mode=mode)
    # The compiled kernels are built before timing (a first call otherwise
    # runs the NumPy programs while they compile); the weights are reset.
    with tg.config.change_flags(cpu_codegen_sync=True):
        train(x)
    for s, p in zip(shared, params0):
        s.set_value(p.copy())
    step = lambda: train(x)  # noqa: E731
    if threads is not None:
        def step():
            with tg.config.change_flags(num_threads=threads):
                return train(x)
    return State(step, lambda: [s.get_value(borrow=True) for s in shared])


def w9_pytensor(x, params0, true_div=False):
    peers.pytensor()
    import pytensor
    import pytensor.tensor as pt
    # floatX as the data (as the tutorial is run for float32): Python floats
    # such as the learning rate are then constants of that dtype, not float64
    # ones that upcast the float32 updates
    with pytensor.config.change_flags(floatX=x.dtype.name):
        xs = pt.matrix("x", dtype=x.dtype.name)
        shared = [pytensor.shared(p.copy()) for p in params0]
        outputs, updates = _cost_and_updates(pt, pytensor.grad, xs, shared, true_div)
        train = pytensor.function([xs], outputs, updates=updates)
    return State(lambda: train(x), lambda: [s.get_value(borrow=True) for s in shared])


def w9_systems(true_div):
    """name -> builder(x, params0) of each system, for one penalty."""
    return {"numpy (hand grad)": partial(w9_numpy, true_div=true_div),
            "numpy (factored J)": partial(w9_numpy, factored=True, true_div=true_div),
            "pytensor": partial(w9_pytensor, true_div=true_div),
            "tracegrad": partial(w9_tracegrad, true_div=true_div),
            "tracegrad (1 thread)": partial(w9_tracegrad, threads=1, true_div=true_div),
            "tracegrad fast_math": partial(w9_tracegrad, true_div=true_div, mode="fast_math")}


def run(quick, rounds, wid):
    budget = 10.0 if quick else 40.0
    for true_div in (False, True):
        for dtype, rtol in (("float64", 1e-7), ("float32", 2e-3)):
            label = f"cA step{' /batch' if true_div else ''} {dtype}"
            yield _case(wid, label, w9_systems(true_div), lambda dtype=dtype: w9_data(dtype),
                        lambda dtype=dtype: w9_data(dtype), rtol, budget)
