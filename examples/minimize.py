"""Gradient descent on f(x, y) = x² + y² + xy − 2x, which has its minimum at
(4/3, −2/3), with a contour plot of the path.

    python examples/minimize.py [--steps N] [--lr 0.1]

The point lives in two shared variables; one compiled ``step`` computes the
gradient and moves the point in place (``updates``), returning the value of f
before the move.
"""
import numpy as np

import tracegrad as tg
from _common import Progress, parse_args, plot

MINIMUM = np.array([4 / 3, -2 / 3])


def objective(x, y):
    """Works on symbolic variables and on NumPy arrays alike."""
    return x ** 2 + y ** 2 + x * y - 2 * x


def main():
    args = parse_args(__doc__, default_steps=100,
                      lr=(float, 0.1, "learning rate (default 0.1)"))
    x = tg.shared(-1.5, name="x")
    y = tg.shared(1.5, name="y")
    f = objective(x, y)
    gx, gy = tg.grad(f, [x, y])
    # pp writes a subexpression used more than once on a line of its own (%1 = ...).
    print(f"df/dx:\n{tg.pp(gx)}\ndf/dy:\n{tg.pp(gy)}")
    step = tg.function([], f, updates=[(x, x - args.lr * gx), (y, y - args.lr * gy)])

    path = [(x.get_value().item(), y.get_value().item())]
    progress = Progress(args.steps)
    for i in range(1, args.steps + 1):
        value = step()
        path.append((x.get_value().item(), y.get_value().item()))
        progress(i, value, x=path[-1][0], y=path[-1][1])
    final = np.array(path[-1])
    distance = np.linalg.norm(final - MINIMUM)
    print(f"final point ({final[0]:.6f}, {final[1]:.6f}); exact minimum "
          f"(4/3, -2/3); distance {distance:.2e}; f_min = {objective(*MINIMUM):.6f}")
    if args.steps >= 100:
        assert distance < 1e-3, distance
    plot(args, lambda plt: draw(plt, np.array(path)))


def draw(plt, path):
    grid = np.linspace(-2.5, 2.5, 201)
    gx, gy = np.meshgrid(grid, grid)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contour(gx, gy, objective(gx, gy), levels=30, cmap="viridis")
    ax.plot(path[:, 0], path[:, 1], "r.-", markersize=3, label="gradient descent")
    ax.plot(*MINIMUM, "k*", markersize=12, label="(4/3, −2/3)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="upper right")
    ax.set_title("x² + y² + xy − 2x")
    return fig


if __name__ == "__main__":
    main()
