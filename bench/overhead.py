"""W3 (per-call overhead of ``f(2, 3) = x + y``) and W5 (compile time in a
fresh process)."""
import os
import subprocess
import sys

import numpy as np

from bench import peers
from bench.timing import Missing


# ------------------------------------------------------------------ W3
def _w3_systems():
    def tracegrad_fn():
        peers.tracegrad_function_available()
        import tracegrad as tg
        import tracegrad.tensor as T
        x, y = T.dscalars("x", "y")
        f = tg.function([x, y], x + y)
        return lambda: f(2, 3)

    def pytensor_fn():
        peers.pytensor()
        import pytensor
        import pytensor.tensor as pt
        x, y = pt.dscalars("x", "y")
        f = pytensor.function([x, y], x + y)
        return lambda: f(2, 3)

    def jax_fn():
        jax = peers.jax()
        f = jax.jit(lambda x, y: x + y)
        f(2.0, 3.0).block_until_ready()
        return lambda: np.asarray(f(2.0, 3.0))

    return {
        "numpy eager": lambda: (lambda: np.add(np.float64(2), np.float64(3))),
        "python function": lambda: (lambda: (lambda x, y: x + y)(2.0, 3.0)),
        "pytensor": pytensor_fn,
        "jax.jit": jax_fn,
        "tracegrad": tracegrad_fn,
    }


# ------------------------------------------------------------------ W5
# The same program for tracegrad and PyTensor (same API; ``T.grad`` is
# ``tg.grad``): ``{lib}`` names the package.
_W2_THEANO_LIKE = """
import time, numpy as np
import {lib} as lib, {lib}.tensor as T
t0 = time.perf_counter()
x = T.dmatrix("x"); y = T.dvector("y")
w = lib.shared(np.zeros(784), name="w"); b = lib.shared(0.0, name="b")
p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
cost = xent.mean() + 0.01 * (w ** 2).sum()
gw, gb = lib.grad(cost, [w, b])
train = lib.function([x, y], [p_1 > 0.5, xent], updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
print(time.perf_counter() - t0)
"""
_W2_TRACEGRAD = _W2_THEANO_LIKE.format(lib="tracegrad")
_W2_PYTENSOR = _W2_THEANO_LIKE.format(lib="pytensor")

_CHAIN_TRACEGRAD = """
import time
import tracegrad as tg, tracegrad.tensor as T
t0 = time.perf_counter()
x = T.dvector("x"); out = x
for k in range(50):
    out = T.tanh(out) * 1.01 if k % 2 else out + 0.5
f = tg.function([x], out)
print(time.perf_counter() - t0)
"""

_W2_JAX = """
import time, numpy as np
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
x = np.random.rand(400, 784); y = (np.random.rand(400) > 0.5) * 1.0
t0 = time.perf_counter()
def loss(params, x, y):
    w, b = params
    p = 1 / (1 + jnp.exp(-(x @ w) - b))
    xent = -y * jnp.log(p) - (1 - y) * jnp.log(1 - p)
    return xent.mean() + 0.01 * (w ** 2).sum(), (p > 0.5, xent)
@jax.jit
def step(params, x, y):
    (_, aux), g = jax.value_and_grad(loss, has_aux=True)(params, x, y)
    return [p - 0.1 * d for p, d in zip(params, g)], aux
jax.block_until_ready(step([jnp.zeros(784), jnp.asarray(0.0)], x, y))
print(time.perf_counter() - t0)
"""

_CHAIN_JAX = """
import time, numpy as np
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
x = np.random.rand(1000)
t0 = time.perf_counter()
def f(x):
    out = x
    for k in range(50):
        out = jnp.tanh(out) * 1.01 if k % 2 else out + 0.5
    return out
jax.block_until_ready(jax.jit(f)(x))
print(time.perf_counter() - t0)
"""


def _fresh_process(script, repeats):
    """Median seconds printed by ``script`` run in new interpreters."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_PLATFORMS", "cpu")
    values = []
    for _ in range(repeats):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                text=True, env=env, timeout=600)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["?"])[-1]
            if "ModuleNotFoundError" in tail or "NotImplementedError" in tail:
                raise Missing(tail[:200])
            raise RuntimeError(tail[:200])
        values.append(float(result.stdout.strip().splitlines()[-1]))
    return float(np.median(values))


def compile_rows(quick):
    repeats = 1 if quick else 3
    rows = []
    for case, system, script, required in [
            ("W2 graph+grad+function", "tracegrad", _W2_TRACEGRAD, None),
            ("W2 graph+grad+function", "pytensor (warm cache)", _W2_PYTENSOR, "pytensor"),
            ("W2 graph+grad+function", "jax.jit first call", _W2_JAX, "jax"),
            ("50-op chain", "tracegrad", _CHAIN_TRACEGRAD, None),
            ("50-op chain", "jax.jit first call", _CHAIN_JAX, "jax")]:
        row = dict(workload="W5", case=case, system=system)
        try:
            if required is not None:
                peers.require(required)
            if system.startswith("pytensor"):
                _fresh_process(script, 1)  # warm pytensor's compile cache
            row["seconds"] = _fresh_process(script, repeats)
            row["status"] = "ok"
            row["ratio"] = None
        except Missing as exc:
            row["status"] = f"missing: {exc}"
        except Exception as exc:
            row["status"] = f"error: {type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def run(quick, rounds, wid):
    if wid == "W3":
        yield dict(workload="W3", case="f(2, 3) float64", systems=_w3_systems(),
                   args=(), expected=np.asarray(5.0), rtol=0, baseline="numpy eager",
                   budget_s=3.0 if quick else 10.0, target_s=0.002)
    elif wid == "W5":
        yield dict(rows=compile_rows(quick))
