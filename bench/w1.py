"""W1: the elementwise chain
``exp(-x*x)*sin(3*x) + log1p(abs(y))*tanh(x-y) + 0.5*x*y``."""
import numpy as np

from bench import peers
from bench.timing import Missing

EXPR = "exp(-x*x)*sin(3*x) + log1p(abs(y))*tanh(x-y) + 0.5*x*y"


def numpy_eager(x, y):
    return np.exp(-x * x) * np.sin(3 * x) + np.log1p(np.abs(y)) * np.tanh(x - y) + 0.5 * x * y


def numpy_out_chain(x, y):
    """NumPy with ``out=`` into two reused temporaries (no blocking)."""
    t = np.multiply(x, x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    u = np.multiply(x, 3)
    np.sin(u, out=u)
    np.multiply(t, u, out=t)
    np.abs(y, out=u)
    np.log1p(u, out=u)
    v = np.subtract(x, y)
    np.tanh(v, out=v)
    np.multiply(u, v, out=u)
    np.add(t, u, out=t)
    np.multiply(x, 0.5, out=u)
    np.multiply(u, y, out=u)
    np.add(t, u, out=t)
    return t


def tracegrad_graph(dtype):
    import tracegrad.tensor as T
    x = T.tensor(dtype, (None,), "x")
    y = T.tensor(dtype, (None,), "y")
    return x, y, T.exp(-x * x) * T.sin(3 * x) + T.log1p(abs(y)) * T.tanh(x - y) + 0.5 * x * y


def systems(dtype):
    """name -> (builder(x, y) -> callable() or raises Missing)."""

    def tracegrad_function(x, y, tier="auto"):
        import tracegrad as tg
        xs, ys, out = tracegrad_graph(dtype)
        try:
            f = tg.function([xs, ys], out)
        except NotImplementedError as exc:
            raise Missing(f"tg.function not written yet: {exc}") from None
        if tier == "auto":
            # The compiled kernel is built before timing (a first call
            # otherwise runs the NumPy program while it compiles).
            sync = tg.config.cpu_codegen_sync
            tg.config.cpu_codegen_sync = True
            try:
                f(x, y)
            finally:
                tg.config.cpu_codegen_sync = sync
            return lambda: f(x, y)

        def numpy_tier():
            tg.config.cpu_codegen = "numpy"
            try:
                return f(x, y)
            finally:
                tg.config.cpu_codegen = "auto"
        return numpy_tier

    def hand_c(x, y):
        from bench import handc
        return handc.w1(x, y)

    def tracegrad_fused_op(x, y):
        from tracegrad.fuse import FusedElemwise, fuse_outputs
        xs, ys, out = tracegrad_graph(dtype)
        (fused,) = fuse_outputs([out], target="cpu")
        node = fused.owner
        assert isinstance(node.op, FusedElemwise)
        args = [x if v is xs else y for v in node.inputs]
        return lambda: node.op.impl(np, *args)

    def out_chain(x, y):
        return lambda: numpy_out_chain(x, y)

    def numexpr(x, y):
        ne = peers.numexpr()
        return lambda: ne.evaluate(EXPR, local_dict={"x": x, "y": y})

    def pytensor(x, y):
        peers.pytensor()
        import pytensor as pt
        import pytensor.tensor as ptt
        xs = ptt.vector("x", dtype=dtype)
        ys = ptt.vector("y", dtype=dtype)
        out = ptt.exp(-xs * xs) * ptt.sin(3 * xs) + ptt.log1p(abs(ys)) * ptt.tanh(xs - ys) \
            + 0.5 * xs * ys
        f = pt.function([xs, ys], out)
        return lambda: f(x, y)

    def jax_jit(x, y):
        jax = peers.jax()
        jnp = peers.jnp()
        f = jax.jit(lambda a, b: jnp.exp(-a * a) * jnp.sin(3 * a)
                    + jnp.log1p(jnp.abs(b)) * jnp.tanh(a - b) + 0.5 * a * b)
        f(x, y).block_until_ready()
        # Results come back as NumPy arrays, like every other system's.
        return lambda: np.asarray(f(x, y))

    return {
        "numpy eager": lambda x, y: (lambda: numpy_eager(x, y)),
        "numpy out= chain": out_chain,
        "numexpr": numexpr,
        "pytensor": pytensor,
        "jax.jit": jax_jit,
        "hand C": hand_c,
        "tracegrad": tracegrad_function,
        "tracegrad numpy tier": lambda x, y: tracegrad_function(x, y, "numpy"),
        "tracegrad fused op": tracegrad_fused_op,
    }


def cases(quick):
    sizes = [10 ** 3, 10 ** 5, 10 ** 6, 10 ** 7]
    return [(n, dt) for dt in ("float32", "float64") for n in sizes]


def run(quick, rounds, wid="W1"):
    """The cases of W1 (dicts read by ``bench.__main__.run_case``)."""
    for n, dtype in cases(quick):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(n).astype(dtype)
        y = rng.standard_normal(n).astype(dtype)
        expected = numpy_eager(x, y)
        rtol = 2e-5 if dtype == "float32" else 1e-10
        yield dict(workload="W1", case=f"N={n:.0e} {dtype}", systems=systems(dtype),
                   args=(x, y), expected=expected, rtol=rtol, atol=rtol,
                   baseline="numpy eager",
                   budget_s=(4.0 if quick else 20.0) * max(1.0, n / 1e6) ** 0.5)
