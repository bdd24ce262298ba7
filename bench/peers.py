"""Optional peers (the ``bench`` extra): imported lazily, reported missing
when not installed. Never imported by the tracegrad package itself."""
import importlib

from bench.timing import Missing


def require(module):
    """Import ``module`` or raise ``Missing`` with the reason."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        raise Missing(f"{module} not available ({type(exc).__name__}: {exc})") from None


def jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax


def jnp():
    jax()
    return require("jax.numpy")


def pytensor():
    pt = require("pytensor")
    return pt


def numexpr():
    return require("numexpr")


def autograd():
    require("autograd")
    return require("autograd.numpy"), require("autograd").grad


def tracegrad_function_available():
    """``tg.function`` and ``tg.grad`` exist and work on a tiny graph."""
    import tracegrad as tg
    import tracegrad.tensor as T
    try:
        x = T.dscalar("x")
        f = tg.function([x], tg.grad(x * x, x))
        return float(f(3.0)) == 6.0
    except NotImplementedError as exc:
        raise Missing(f"tracegrad part not written yet: {exc}") from None
