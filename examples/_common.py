"""Helpers shared by the examples: the short-run setting and optional plots.

Every example takes ``--steps N`` (default: the environment variable
``TRACEGRAD_EXAMPLE_STEPS``, else the example's own default) so the smoke test
can run all of them in a few seconds each. Plots are written with matplotlib
when it is installed (to ``TRACEGRAD_EXAMPLE_OUTPUT``, else the current
directory) and skipped with a note when it is not.
"""
import argparse
import os


def parse_args(doc, default_steps, **extra):
    """Parse ``--steps`` (and ``extra`` ``name=(type, default, help)`` options)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    env = os.environ.get("TRACEGRAD_EXAMPLE_STEPS")
    parser.add_argument("--steps", type=int, default=int(env) if env else default_steps,
                        help=f"iterations to run (default {default_steps}; "
                             "TRACEGRAD_EXAMPLE_STEPS overrides)")
    parser.add_argument("--no-plot", action="store_true", help="do not write a PNG")
    for name, (kind, default, text) in extra.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=text)
    return parser.parse_args()


def pyplot():
    """``matplotlib.pyplot`` with a file-only backend, or ``None`` if missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, filename):
    """Write ``fig`` as a PNG into the output directory and say where."""
    folder = os.environ.get("TRACEGRAD_EXAMPLE_OUTPUT", ".")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, filename)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    fig.clf()
    print(f"saved {path}")
    return path


def plot(args, filename, draw):
    """Call ``draw(plt)`` (returning a figure) and save it, when plotting is
    wanted and matplotlib is installed."""
    if args.no_plot:
        return None
    plt = pyplot()
    if plt is None:
        print(f"matplotlib is not installed: skipping {filename} "
              "(pip install matplotlib)")
        return None
    fig = draw(plt)
    path = save_figure(fig, filename)
    plt.close(fig)
    return path
