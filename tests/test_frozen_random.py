"""NumPy random draws in traced code are refused, naming RandomStreams:
tracing runs the function once, so the draw would repeat on every call."""
import threading
import time

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.random import RandomStreams
from numpy.random import randn

RNG = np.random.default_rng(0)


def test_legacy_np_random_in_jit_raises_naming_randomstreams():
    f = tg.jit(lambda x: x + np.random.normal(size=3))
    with pytest.raises(TypeError, match=r"np\.random.*RandomStreams"):
        f(np.zeros(3))
    g = tg.jit(lambda x: x * randn(3))  # imported by name: still the global generator
    with pytest.raises(TypeError, match="RandomStreams"):
        g(np.zeros(3))


def test_generators_the_function_reaches_are_checked():
    module_level = tg.jit(lambda x: x + RNG.normal(size=3))
    with pytest.raises(TypeError, match="RNG"):
        module_level(np.zeros(3))
    local = np.random.RandomState(1)
    closure = tg.jit(lambda x: x + local.rand(3))
    with pytest.raises(TypeError, match="local"):
        closure(np.zeros(3))
    as_argument = tg.jit(lambda x, rng: x + rng.uniform(size=3))
    with pytest.raises(TypeError, match="argument 1"):
        as_argument(np.zeros(3), np.random.default_rng(2))

    class Model:
        def __init__(self):
            self.rng = np.random.default_rng(3)

        def noisy(self, x):
            return x + self.rng.normal(size=3)
    with pytest.raises(TypeError, match=r"self\.rng"):
        tg.jit(Model().noisy)(np.zeros(3))


def test_value_and_grad_and_scan_refuse_draws_too():
    vg = tg.value_and_grad(lambda w: (w * np.random.rand(3)).sum())
    with pytest.raises(TypeError, match="RandomStreams"):
        vg(np.ones(3))
    x = T.dvector("x")
    with pytest.raises(TypeError, match="scan.*RandomStreams"):
        tg.scan(lambda v: v + np.random.rand(), sequences=[x])


def test_randomstreams_in_jit_gives_new_draws_each_call():
    srng = RandomStreams(seed=5)
    f = tg.jit(lambda x: x + srng.normal((3,)))
    a, b = f(np.zeros(3)), f(np.zeros(3))
    assert not np.array_equal(a, b)


def test_unseeded_generator_made_while_tracing_raises():
    f = tg.jit(lambda x: x + np.random.default_rng().normal(size=3))
    with pytest.raises(TypeError, match="unseeded generator.*RandomStreams"):
        f(np.zeros(3))
    # RandomStreams() without a seed, made inside the function, is fine:
    # its draws are in the graph.
    g = tg.jit(lambda x: x + RandomStreams().uniform((3,)))
    assert not np.array_equal(g(np.zeros(3)), g(np.zeros(3)))


def test_numpy_randomness_outside_tracing_is_fine():
    data = np.random.rand(3)  # drawn before the call: an ordinary argument
    f = tg.jit(lambda x, seed: x + np.random.default_rng(seed).normal(size=3),
               static_argnums=1)
    # A generator made and seeded inside repeats in NumPy too: not an error.
    np.testing.assert_array_equal(f(data, 7), data + np.random.default_rng(7).normal(size=3))


def test_another_thread_drawing_gives_a_warning_not_an_error():
    started, stop = threading.Event(), threading.Event()

    def spin():
        while not stop.is_set():
            np.random.rand()
            started.set()
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        started.wait()
        with pytest.warns(RuntimeWarning, match="another thread"):
            # (the pause lets the other thread run while the function is traced)
            out = tg.jit(lambda x: (time.sleep(0.05), x * 2)[1])(np.ones(3))
    finally:
        stop.set()
        worker.join()
    np.testing.assert_array_equal(out, 2 * np.ones(3))
