"""Property-based gradient checks: Hypothesis builds random expression graphs
(unary functions, broadcasting binary ops, reductions, indexing, shared
subexpressions) and ``verify_grad`` compares their gradients, and second
derivatives, with finite differences.

Hypothesis chooses the structure and shapes; the input values come from a
seeded generator, so they are in general position (no ties for maximum,
no zeros for abs) where finite differences are meaningful.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.testing import strategies as tgst
from tracegrad.testing import verify_grad
from tracegrad.trace import clone_replace

SEEDS = st.integers(0, 2 ** 32 - 1)
PAIRS = tgst.broadcastable_shape_pairs(max_dims=3, min_side=0, max_side=3)


def symbolic(shape, name):
    return T.TensorType("float64", (None,) * len(shape))(name)


def as_function(expr, inputs):
    """``fn(*new_inputs)`` rebuilding ``expr`` on ``verify_grad``'s inputs."""
    def fn(*new):
        return clone_replace([expr], dict(zip(inputs, new)))[0][0]
    return fn


def draw_case(data, pair, seed, max_depth, **kw):
    x, y = symbolic(pair[0], "x"), symbolic(pair[1], "y")
    expr = data.draw(tgst.expressions([x, y], shapes=pair, max_depth=max_depth, **kw))
    rng = np.random.default_rng(seed)
    values = [rng.uniform(-2.5, 2.5, size=s) for s in pair]
    return [x, y], expr, values, rng


@settings(max_examples=100, deadline=None)
@given(st.data(), PAIRS, SEEDS)
def test_first_derivatives_match_finite_differences(data, pair, seed):
    inputs, expr, values, rng = draw_case(data, pair, seed, max_depth=4)
    verify_grad(as_function(expr, inputs), values, rng=rng)


@settings(max_examples=50, deadline=None)
@given(st.data(), tgst.shapes(max_dims=2, min_side=1, max_side=3), SEEDS)
def test_single_input_expressions(data, shape, seed):
    x = symbolic(shape, "x")
    expr = data.draw(tgst.expressions([x], shapes=[shape], max_depth=3))
    rng = np.random.default_rng(seed)
    verify_grad(as_function(expr, [x]), [rng.uniform(-2.5, 2.5, size=shape)], rng=rng)


@settings(max_examples=50, deadline=None)
@given(st.data(), PAIRS, SEEDS)
def test_second_derivatives_match_finite_differences(data, pair, seed):
    inputs, expr, values, rng = draw_case(data, pair, seed, max_depth=3)
    wrt = data.draw(st.sampled_from([0, 1]))

    def first_derivative(*new):
        e = as_function(expr, inputs)(*new)
        return tg.grad(T.sum(e), new[wrt], disconnected_inputs="ignore")

    verify_grad(first_derivative, values, rng=rng)


@settings(max_examples=30, deadline=None)
@given(st.data(), PAIRS, SEEDS)
def test_Rop_is_the_adjoint_of_Lop(data, pair, seed):
    """<u, J v> from Rop equals <Lop(u), v> (J the Jacobian of the expression)."""
    inputs, expr, values, rng = draw_case(data, pair, seed, max_depth=3)
    vs = [symbolic(s, f"v{i}") for i, s in enumerate(pair)]
    u = T.TensorType("float64", (None,) * expr.ndim)("u")
    jv = tg.Rop(expr, inputs, vs, disconnected_inputs="ignore")
    lu = tg.Lop(expr, inputs, u, disconnected_inputs="ignore")
    lhs = T.sum(u * jv)
    rhs = T.sum(lu[0] * vs[0]) + T.sum(lu[1] * vs[1])
    f = tg.function(inputs + vs + [u], [lhs, rhs], on_unused_input="ignore")
    out_value = tg.function(inputs, expr, on_unused_input="ignore")(*values)
    u_value = rng.normal(size=np.shape(out_value))
    v_values = [rng.normal(size=s) for s in pair]
    a, b = f(*values, *v_values, u_value)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
