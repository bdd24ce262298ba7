"""A tour of tracegrad: the basics of the Theano tutorial, runnable.

    python examples/tour.py

1. scalars, vectors, matrices: symbolic variables and compiled functions;
2. symbolic matrices and ``dot``, and what the static shapes say;
3. a shape error, and how to read its message;
4. a derivative with ``tg.grad``, checked (and plotted) against its formula;
5. shared variables and updates: an accumulator, ``givens``, default inputs.
"""
import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from _common import parse_args, plot


def section(title):
    print(f"\n== {title} ==")


def scalars_vectors_matrices():
    section("1. scalars, vectors, matrices")
    x, y = T.dscalars("x", "y")           # 0-d float64 placeholders
    z = x + y                             # a graph, not a number
    f = tg.function([x, y], z)
    print("x.type:", x.type, "| pp(z):", tg.pp(z), "| f(2, 3) =", repr(f(2, 3)))

    a, b = T.dmatrices("a", "b")
    add = tg.function([a, b], a + b)
    print("matrix sum:\n", add([[1, 2], [3, 4]], [[10, 20], [30, 40]]))

    # The logistic function applied elementwise, and several outputs at once.
    s = 1 / (1 + T.exp(-a))
    logistic = tg.function([a], s)
    print("logistic([[0, 1], [-1, -2]]):\n", logistic([[0, 1], [-1, -2]]))
    diff = a - b
    f3 = tg.function([a, b], [diff, abs(diff), diff ** 2])
    d, ad, d2 = f3([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    print("diff / abs / squared:", d.tolist(), ad.tolist(), d2.tolist())

    v = T.fvector("v")                    # float32 stays float32: 2 is a weak scalar
    print("T.fvector() * 2 ->", (v * 2).dtype, "| T.iscalar() + 1.5 ->",
          (T.iscalar() + 1.5).dtype)


def matrices_and_dot():
    section("2. symbolic matrices and dot")
    x = T.dmatrix("x")
    w = T.tensor("float64", shape=(3, None), name="w")   # 3 rows known, columns not
    y = T.dot(x, w)
    print("x:", x.type, "\nw:", w.type, "\ndot(x, w):", y.type)
    f = tg.function([x, w], y)
    out = f(np.ones((2, 3)), np.arange(12.0).reshape(3, 4))
    print("f(ones(2, 3), arange(12).reshape(3, 4)) ->\n", out)
    # NumPy spellings build the same graph on symbolic variables.
    print("np.dot(x, w) and x @ w are symbolic too:",
          type(np.dot(x, w)).__name__, type(x @ w).__name__)


def shape_errors():
    section("3. a shape error, and how to read it")
    # Lengths fixed in the type are checked while the graph is built ...
    p = T.tensor("float64", shape=(2, 3), name="p")
    q = T.tensor("float64", shape=(4, 5), name="q")
    try:
        T.dot(p, q)
    except ValueError as exc:
        print("while building:", exc)
    # ... lengths only known at call time are checked when the function runs.
    # The message names the operation, every input's shape and dtype, and the
    # line of *your* code that built the failing node.
    x, w = T.dmatrices("x", "w")
    f = tg.function([x, w], T.dot(x, w))
    try:
        f(np.ones((2, 3)), np.ones((4, 5)))
    except ValueError as exc:
        print("while running:", exc)


def derivative(args):
    section("4. a derivative, against its formula")
    s = T.dscalar("s")
    gs = tg.grad(s ** 2, s)
    f_gs = tg.function([s], gs)
    print("d(s**2)/ds as built:   ", tg.pp(gs))
    print("after compilation:     ", tg.pp(f_gs.maker.fgraph.outputs[0]))
    print("at s = 4:", f_gs(4))

    x = T.dvector("x")
    y = T.sin(x) * T.exp(-x ** 2 / 4)
    # y is elementwise, so the gradient of its sum is the pointwise derivative.
    dy = tg.grad(y.sum(), x)
    f = tg.function([x], [y, dy])
    xs = np.linspace(-5, 5, 201)
    ys, dys = f(xs)
    exact = np.exp(-xs ** 2 / 4) * (np.cos(xs) - xs / 2 * np.sin(xs))
    err = np.abs(dys - exact).max()
    print(f"max |tg.grad - analytic| over 201 points: {err:.2e}")
    assert err < 1e-12

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(xs, ys, label="y = sin(x) exp(-x²/4)")
        ax.plot(xs, dys, label="tg.grad(y, x)", linewidth=3, alpha=0.5)
        ax.plot(xs, exact, "k--", label="analytic dy/dx", linewidth=1)
        ax.legend()
        ax.set_xlabel("x")
        return fig
    plot(args, draw)


def shared_and_updates():
    section("5. shared variables and updates")
    state = tg.shared(0, name="state")                 # an int64 scalar
    inc = T.iscalar("inc")
    accumulator = tg.function([inc], state, updates=[(state, state + inc)])
    print("accumulator(1) returns the old value:", accumulator(1),
          "| state now:", state.get_value())
    accumulator(300)
    print("after accumulator(300):", state.get_value())
    state.set_value(-1)
    decrementor = tg.function([inc], state, updates=[(state, state - inc)])
    decrementor(2)
    print("after set_value(-1) and decrementor(2):", state.get_value())

    # givens: compute with another value in place of the shared variable.
    fn_of_state = state * 2 + inc
    foo = T.scalar(dtype=state.dtype, name="foo")
    skip_shared = tg.function([inc, foo], fn_of_state, givens=[(state, foo)])
    print("skip_shared(1, 3) =", skip_shared(1, 3), "| state untouched:", state.get_value())

    # Default values and keyword names with tg.In.
    x, y, w = T.dscalars("x", "y", "w")
    f = tg.function([x, tg.In(y, value=1), tg.In(w, value=2, name="w_by_name")],
                    (x + y) * w)
    print("f(33) =", f(33), "| f(33, 2) =", f(33, 2), "| f(33, w_by_name=1) =",
          f(33, w_by_name=1))


def main():
    args = parse_args(__doc__, default_steps=1)
    scalars_vectors_matrices()
    matrices_and_dot()
    shape_errors()
    derivative(args)
    shared_and_updates()


if __name__ == "__main__":
    main()
