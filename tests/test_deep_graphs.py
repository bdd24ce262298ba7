"""A chain of 20,000 ops builds, prints, differentiates and evaluates with a
small recursion limit: nothing walks the graph recursively."""
import inspect
import sys
from contextlib import contextmanager

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.trace import toposort

N = 20_000


@contextmanager
def shallow_recursion(extra=300):
    """Allow only ``extra`` frames beyond the current depth."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + extra)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def build_chain(x, n=N):
    """n ops alternating sin and an affine map: x_{k+1} = sin(x_k) or 0.999 x_k + 0.01."""
    v = x
    for i in range(n // 3):
        v = T.sin(v)
        v = v * 0.999
        v = v + 0.01
    for _ in range(n - 3 * (n // 3)):
        v = T.sin(v)
    return v


def numpy_chain(p, n=N):
    """Value and derivative of the chain by forward-mode accumulation."""
    v, d = p, np.ones_like(p)
    for i in range(n // 3):
        d = d * np.cos(v) * 0.999
        v = np.sin(v) * 0.999 + 0.01
    for _ in range(n - 3 * (n // 3)):
        d = d * np.cos(v)
        v = np.sin(v)
    return v, d


@pytest.fixture(scope="module")
def chain():
    x = T.dvector("x")
    with shallow_recursion():
        v = build_chain(x)
    return x, v


def test_chain_has_the_expected_depth(chain):
    x, v = chain
    with shallow_recursion():
        assert len(toposort([v])) == N


def test_chain_prints(chain):
    x, v = chain
    with shallow_recursion():
        text = tg.pp(v, max_width=None)  # one line
        assert text.startswith("sin(sin(((sin(") and text.count("sin(") == N // 3 + N % 3
        assert text.count("(") == text.count(")")
        lines = tg.pp(v).splitlines()  # numbered lines of at most 100 characters
        assert len(lines) > N // 20 and max(len(ln) for ln in lines) <= 100
        assert sum(ln.count("sin(") for ln in lines) == N // 3 + N % 3
        tree = tg.printing.debugprint(v, file="str", print_type=False)
        dot = tg.printing.to_dot(v)
    edges = sum(len(node.inputs) for node in toposort([v]))
    lines = tree.splitlines()
    # One line per edge and the root, plus two per continuation of a deep branch.
    assert 1 + edges <= len(lines) <= 1 + edges + 2 * (N // 40 + 1)
    assert max(len(ln) for ln in lines) < 200
    assert dot.count("->") == edges + 1


@pytest.fixture(scope="module")
def chain_grad(chain):
    x, v = chain
    with shallow_recursion():
        return tg.grad(T.sum(v), x)


POINT = np.array([0.3, -1.2, 2.0])


def test_chain_differentiates_and_evaluates(chain, chain_grad):
    x, v = chain
    expected_v, expected_d = numpy_chain(POINT)
    with shallow_recursion():
        got_v, got_g = evaluate([v, chain_grad], {x: POINT})
        text = tg.pp(chain_grad)
    np.testing.assert_allclose(got_v, expected_v, rtol=1e-9)
    np.testing.assert_allclose(got_g, expected_d, rtol=1e-9)
    assert len(text) < 100 * N  # shared subexpressions are named, not repeated


def test_chain_compiles_and_runs(chain, chain_grad):
    x, v = chain
    expected_v, expected_d = numpy_chain(POINT)
    with shallow_recursion():
        f = tg.function([x], [v, chain_grad])
        got_v, got_g = f(POINT)
        tg.printing.debugprint(f, file="str")
    np.testing.assert_allclose(got_v, expected_v, rtol=1e-9)
    np.testing.assert_allclose(got_g, expected_d, rtol=1e-9)


def test_second_derivative_of_a_deep_chain():
    x = T.dscalar("x")
    with shallow_recursion():
        v = build_chain(x, n=3000)
        gg = tg.grad(tg.grad(v, x), x)
        value = evaluate([gg], {x: np.array(0.4)})[0]
    h = 1e-4
    d = [numpy_chain(np.array(0.4 + s * h), n=3000)[1] for s in (1, -1)]
    np.testing.assert_allclose(value, (d[0] - d[1]) / (2 * h), rtol=1e-5)
