"""A long block function runs from a table before it is compiled
(``fuse/interp.py``): the same calls on the same arrays, so the results are
bit-identical to the compiled function's."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.fuse import FusedElemwise, fuse_outputs
from tracegrad.backend.numpy import interp
from tracegrad.backend.numpy import CPU_PROGRAMS, cpu_program
from tracegrad.trace import toposort


# (the NumPy program's table interpreter: calls on the NumPy tier)
pytestmark = pytest.mark.usefixtures("numpy_tier")


@pytest.fixture
def interpret_everything(monkeypatch):
    monkeypatch.setattr(interp, "INTERPRET_LINES", 0)
    monkeypatch.setattr(interp, "COMPILE_AFTER", 2)
    CPU_PROGRAMS.clear()
    yield
    CPU_PROGRAMS.clear()


def _program(outputs):
    (node,) = [n for n in toposort(fuse_outputs(outputs)) if isinstance(n.op, FusedElemwise)]
    return node, cpu_program(node.op.spec)


def _chain(x, y, n):
    z = x
    for k in range(n):
        z = T.sin(z) * (1.0 + k / 100.0) + y
        z = T.maximum(z, y - 1.0)  # (a ufunc called with ``out=``)
    return z


def test_interpreted_block_matches_the_compiled_one(interpret_everything):
    x, y = T.dvectors("x", "y")
    out = _chain(x, y, 12)
    node, program = _program([out, T.exp(out) * x])
    fn = program.direct.fn
    assert isinstance(fn, interp.Tiered)
    args = [np.linspace(-2.0, 3.0, 50), np.linspace(0.5, 1.5, 50)]
    results = [program.run_general(list(args)) for _ in range(4)]
    # Two interpreted runs, then the compiled function took over.
    assert not isinstance(program.direct.fn, interp.Tiered)
    for got in results[1:]:
        for a, b in zip(results[0], got):
            assert a.tobytes() == b.tobytes()
    expected = tg.function([x, y], [out, T.exp(out) * x], mode="fast_compile")(*args)
    for a, b in zip(results[0], expected):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_compiled_function_gives_the_same_results(interpret_everything, monkeypatch):
    x, y = T.dvectors("x", "y")
    out = _chain(x, y, 7) * 3.0
    f = tg.function([x, y], out)
    args = [np.linspace(-1.0, 1.0, 200_000), np.linspace(0.0, 2.0, 200_000)]
    interpreted = [f(*args) for _ in range(3)]
    (node,) = [n for n in f.maker.fgraph.toposort() if isinstance(n.op, FusedElemwise)]
    assert node.op.program(np).direct._fn is not None  # the block function ran
    monkeypatch.setattr(interp, "INTERPRET_LINES", 10 ** 9)
    CPU_PROGRAMS.clear()
    compiled = tg.function([x, y], out)(*args)
    for got in interpreted:
        assert got.tobytes() == compiled.tobytes()


def test_only_call_lines_are_interpreted():
    env = {"f0": np.add, "k0": np.float64(2.0), "copyto": np.copyto}
    run = interp.interpreted("def block(i0, o0):\n    f0(i0, k0, o0)\n    f0(o0, i0, out=o0)\n", env)
    a, out = np.arange(3.0), np.empty(3)
    run(a, out)
    np.testing.assert_array_equal(out, 2 * np.arange(3.0) + 2)
    with pytest.raises(TypeError):
        run(a)
    for source in ("def block(i0, o0):\n    r1 = asarray(f0(np, i0), dtype=d1)\n",
                   "def block(i0, o0):\n    copyto(o0, f0(np, i0), casting='unsafe')\n",
                   "def block(i0, o0):\n    missing(i0, o0)\n",
                   "def block(i0, o0):\n    f0(i0, unknown)\n"):
        assert interp.interpreted(source, env) is None


def test_a_source_compiled_already_is_not_interpreted(interpret_everything):
    # Specs equal up to their constants share the generated source: once one
    # of them has compiled it, the others run the compiled code at once.
    x, y = T.dvectors("x", "y")
    first = _program([_chain(x, y, 5) * 2.0])[1]
    for _ in range(3):
        first.run_general([np.ones(4), np.ones(4)])
    assert not isinstance(first.direct.fn, interp.Tiered)
    second = _program([_chain(x, y, 5) * 3.0])[1]
    assert second.direct.source == first.direct.source
    assert not isinstance(second.direct.fn, interp.Tiered)
