"""``grad``, ``Lop``, ``Rop`` and ``jacobian`` against complex finite
differences on random graphs, for float64 and complex128 inputs.

The graphs share subexpressions (a binary op may take any earlier value, and
``dot`` may take one value twice), and the outputs are drawn with
repetition, an input among them at times: the cases where contributions must
add up rather than overwrite each other. Graphs over complex inputs mix
holomorphic functions (exp, sin, sqr, multiplication, division, dot, sums)
with real-valued ones (abs, real, imag, angle) and conj, and real values flow
back into complex ones, so every rule of the convention in
docs/user-guide.md ("Complex gradients") is on some path.

With ``D`` a random direction and ``F(X ± eps D)`` evaluated once:

- ``Rop(F, X, D)`` is the directional derivative ``(F(X+) - F(X-)) / 2eps``;
- ``Lop(F, X, U)`` and ``grad(real(sum(U * F)), X)`` pair with ``D`` as
  ``real(sum(G * D))``, the derivative of ``real(sum(U * F))`` along ``D``;
- the rows of ``jacobian(f, X)`` are the gradients of ``real(f[i])``.
"""
import math

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.printing import pp

SEEDS = st.integers(0, 2 ** 32 - 1)
DTYPES = st.sampled_from(["float64", "complex128"])
LIMIT = 8.0
EPS = 1e-6


class Value:
    """A generated variable with its (runtime) shape and a bound on |value|."""

    def __init__(self, var, shape, bound):
        self.var, self.shape, self.bound = var, tuple(shape), bound


def _squash(v, limit):
    if v.bound <= limit:
        return v
    return Value(v.var * (limit / v.bound), v.shape, limit)


# name -> (build(var), bound after(b), largest input bound)
UNARY = {
    "exp": (T.exp, math.exp, 2.0),
    "sin": (T.sin, math.cosh, 2.0),
    "cos": (T.cos, math.cosh, 2.0),
    "sqr": (T.sqr, lambda b: b * b, 2.5),
    "neg": (lambda v: -v, lambda b: b, None),
    "conj": (T.conj, lambda b: b, None),
    "real": (T.real, lambda b: b, None),
    "imag": (T.imag, lambda b: b, None),
    "abs": (abs, lambda b: b, None),
    "log1p_abs": (lambda v: T.log1p(abs(v)), math.log1p, None),
    "rotate": (lambda v: v * (0.6 - 0.8j), lambda b: b, None),
    # Shifted off the negative real axis (angle's branch cut) for values
    # whose imaginary part is exactly 0.
    "angle": (lambda v: T.angle(v + (0.5 + 1j)), lambda b: math.pi, None),
}

# name -> (build(a, b), bound after(ba, bb), largest bound of b)
BINARY = {
    "add": (lambda a, b: a + b, lambda x, y: x + y, None),
    "sub": (lambda a, b: a - b, lambda x, y: x + y, None),
    "mul": (lambda a, b: a * b, lambda x, y: x * y, None),
    "div_exp": (lambda a, b: a / T.exp(b), lambda x, y: x * math.exp(y), 1.5),
    "safe_div": (lambda a, b: a / (1.0 + T.sqr(abs(b))), lambda x, y: x, None),
}


def _unary(draw, a):
    build, bound, max_in = UNARY[draw(st.sampled_from(sorted(UNARY)))]
    if max_in is not None:
        a = _squash(a, max_in)
    return Value(build(a.var), a.shape, bound(a.bound))


def _binary(draw, a, pool):
    partners = [p for p in pool if _broadcast(a.shape, p.shape) is not None]
    b = draw(st.sampled_from(partners))
    if draw(st.booleans()):
        a, b = b, a
    build, bound, max_b = BINARY[draw(st.sampled_from(sorted(BINARY)))]
    if max_b is not None:
        b = _squash(b, max_b)
    return Value(build(a.var, b.var), _broadcast(a.shape, b.shape), bound(a.bound, b.bound))


def _reduce(draw, a):
    kind = draw(st.sampled_from(["sum", "mean"]))
    if a.shape and draw(st.booleans()):
        axis = draw(st.integers(0, len(a.shape) - 1))
        keepdims = draw(st.booleans())
        if kind == "mean" and a.shape[axis] == 0:
            kind = "sum"
        shape = list(a.shape)
        n = shape[axis]
        shape[axis:axis + 1] = [1] if keepdims else []
        var = getattr(T, kind)(a.var, axis=axis, keepdims=keepdims)
    else:
        n = math.prod(a.shape)
        kind = "sum" if n == 0 else kind
        shape, var = (), getattr(T, kind)(a.var)
    return Value(var, shape, a.bound * (max(n, 1) if kind == "sum" else 1))


def _dot(draw, a):
    """``a`` contracted with itself (one value used twice)."""
    if a.var.ndim == 1:
        return Value(T.dot(a.var, a.var), (), a.bound ** 2 * max(a.shape[0], 1))
    if a.var.ndim == 2:
        n, m = a.shape
        return Value(T.dot(a.var, a.var.T), (n, n), a.bound ** 2 * max(m, 1))
    return None


def _broadcast(s, t):
    try:
        return np.broadcast_shapes(s, t)
    except ValueError:
        return None


@st.composite
def graphs(draw, dtype, shapes):
    """``(inputs, outputs)``: symbolic inputs of ``dtype`` and ``shapes`` and
    1 to 3 outputs drawn with repetition from the values built on them."""
    inputs = [T.TensorType(dtype, (None,) * len(s))(f"x{i}") for i, s in enumerate(shapes)]
    pool = [Value(x, s, 1.5 * math.sqrt(2)) for x, s in zip(inputs, shapes)]
    for _ in range(draw(st.integers(1, 6))):
        a = pool[-1 - draw(st.integers(0, len(pool) - 1))]
        family = draw(st.sampled_from(["unary", "unary", "binary", "binary", "reduce", "dot"]))
        if family == "unary":
            new = _unary(draw, a)
        elif family == "binary":
            new = _binary(draw, a, pool)
        elif family == "reduce":
            new = _reduce(draw, a)
        else:
            new = _dot(draw, a)
        if new is not None:
            pool.append(_squash(new, LIMIT))
    built = pool[len(inputs):] or [_unary(draw, pool[0])]
    choices = built + pool[:len(inputs)]
    picks = draw(st.lists(st.integers(0, len(choices) - 1), min_size=1, max_size=3))
    picks = [min(k, len(built) - 1) if draw(st.integers(0, 3)) else k for k in picks]
    outputs = [choices[k].var for k in picks]
    note("outputs: " + "; ".join(pp(o) for o in outputs))
    return inputs, outputs


def _random(rng, shape, dtype):
    r = rng.uniform(-1.5, 1.5, size=shape)
    if np.dtype(dtype).kind == "c":
        r = r + 1j * rng.uniform(-1.5, 1.5, size=shape)
    return np.asarray(r, dtype=dtype)


def _like(var):
    return T.TensorType(var.dtype, (None,) * var.ndim)()


def _finite_differences(inputs, outputs, values, directions):
    """``(F(X + eps D) - F(X - eps D)) / 2eps`` for each output."""
    f = tg.function(inputs, outputs, on_unused_input="ignore")
    plus = f(*[v + EPS * d for v, d in zip(values, directions)])
    minus = f(*[v - EPS * d for v, d in zip(values, directions)])
    return [(np.asarray(p) - np.asarray(m)) / (2 * EPS) for p, m in zip(plus, minus)]


def _pairing(gradients, directions):
    """``real(sum(G * D))`` over every input."""
    return sum(float(np.real(np.sum(np.asarray(g) * d))) for g, d in zip(gradients, directions))


def _assert_close(got, want, what):
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


PAIRS = st.sampled_from([[(3,), (3,)], [(2, 3), (3,)], [(2, 1), (1, 3)], [(), (2,)],
                         [(2, 2), ()], [(0, 2), (2,)], [(1,), (3, 1)]])


@settings(max_examples=60, deadline=None)
@given(st.data(), DTYPES, PAIRS, SEEDS)
def test_grad_Lop_Rop_match_finite_differences(data, dtype, shapes, seed):
    inputs, outputs = data.draw(graphs(dtype, shapes))
    rng = np.random.default_rng(seed)
    values = [_random(rng, s, dtype) for s in shapes]
    directions = [_random(rng, s, dtype) for s in shapes]
    out_values = tg.function(inputs, outputs, on_unused_input="ignore")(*values)
    cotangents = [_random(rng, np.shape(o), o.dtype) for o in out_values]

    vs = [_like(x) for x in inputs]
    us = [_like(o) for o in outputs]
    rop = tg.Rop(outputs, inputs, vs, disconnected_inputs="ignore")
    lop = tg.Lop(outputs, inputs, us, disconnected_inputs="ignore")
    cost = sum(T.real(T.sum(u * o)) for u, o in zip(us, outputs))
    grads = tg.grad(cost, inputs, disconnected_inputs="ignore")
    f = tg.function(inputs + vs + us, rop + lop + grads, on_unused_input="ignore")
    got = f(*values, *directions, *cotangents)
    rop_v, lop_v, grad_v = got[:len(rop)], got[len(rop):-len(inputs)], got[-len(inputs):]

    numeric = _finite_differences(inputs, outputs, values, directions)
    for k, (r, n) in enumerate(zip(rop_v, numeric)):
        _assert_close(r, n, f"Rop of output {k}")
    along = sum(float(np.real(np.sum(u * n))) for u, n in zip(cotangents, numeric))
    _assert_close(_pairing(lop_v, directions), along, "Lop")
    _assert_close(_pairing(grad_v, directions), along, "grad")


@settings(max_examples=15, deadline=None)
@given(st.data(), DTYPES, st.sampled_from([[(3,), (3,)], [(2, 2), (2,)], [(), (2,)]]),
       SEEDS)
def test_jacobian_rows_match_finite_differences(data, dtype, shapes, seed):
    inputs, outputs = data.draw(graphs(dtype, shapes))
    rng = np.random.default_rng(seed)
    values = [_random(rng, s, dtype) for s in shapes]
    directions = [_random(rng, s, dtype) for s in shapes]
    jac = tg.jacobian(outputs[0], inputs, disconnected_inputs="ignore")
    jac_v = tg.function(inputs, jac, on_unused_input="ignore")(*values)
    numeric = _finite_differences(inputs, outputs[:1], values, directions)[0]
    # Row i of the Jacobian is the gradient of real(f[i]).
    along = sum(np.real(np.tensordot(j, d, axes=d.ndim)) for j, d in zip(jac_v, directions))
    _assert_close(along, np.real(numeric), "jacobian")
