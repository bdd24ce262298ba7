"""Helpers shared by the examples: options, progress lines and the PNG.

Every example takes

* ``--steps N`` (default: the environment variable ``TRACEGRAD_EXAMPLE_STEPS``,
  else the example's own default), so the smoke test runs each in seconds;
* ``--plot PATH`` (default ``<example name>.png`` in the current directory)
  for the PNG of its result, written with matplotlib when it is installed;
* ``--no-plot`` to write no PNG.

Without matplotlib an example says so once, when it starts, and carries on.
Training loops report through :class:`Progress`: a line every few steps with
the step, the loss and the speed.
"""
import argparse
import importlib
import os
import sys
import time


def _example_name():
    return os.path.splitext(os.path.basename(sys.argv[0] or "example"))[0] or "example"


def parse_args(doc, default_steps, needs=None, **extra):
    """Parse ``--steps``, ``--plot``, ``--no-plot`` and the ``extra``
    ``name=(type, default, help)`` options.

    ``needs`` maps modules the example cannot run without to their pip
    names: a missing one ends the program with a one-line install hint and
    a non-zero status. ``args.plot`` is ``None`` when no PNG will be written
    (``--no-plot``, or matplotlib missing: said once, here).
    """
    name = _example_name()
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    env = os.environ.get("TRACEGRAD_EXAMPLE_STEPS")
    parser.add_argument("--steps", type=int, default=int(env) if env else default_steps,
                        help=f"iterations to run (default {default_steps}; "
                             "TRACEGRAD_EXAMPLE_STEPS overrides)")
    parser.add_argument("--plot", metavar="PATH", default=name + ".png",
                        help=f"where to write the PNG (default {name}.png)")
    parser.add_argument("--no-plot", action="store_true", help="do not write a PNG")
    for option, (kind, default, text) in extra.items():
        parser.add_argument("--" + option.replace("_", "-"), type=kind, default=default,
                            help=text)
    args = parser.parse_args()
    for module, package in (needs or {}).items():
        try:
            importlib.import_module(module)
        except ImportError:
            sys.exit(f"{name}.py needs {package}, which is not installed: "
                     f"pip install {package}  (or pip install 'tracegrad[examples]')")
    if args.no_plot:
        args.plot = None
    elif pyplot() is None:
        print(f"matplotlib is not installed: not writing {args.plot} "
              "(pip install matplotlib; --no-plot silences this)")
        args.plot = None
    return args


def pyplot():
    """``matplotlib.pyplot`` with a file-only backend, or ``None`` if missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(args, draw):
    """Call ``draw(plt)`` (returning a figure) and write it to ``args.plot``,
    unless that is ``None`` (no plot wanted, or no matplotlib)."""
    if args.plot is None:
        return None
    plt = pyplot()
    fig = draw(plt)
    folder = os.path.dirname(args.plot)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(args.plot, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"saved {args.plot}")
    return args.plot


class Progress:
    """Prints ``step 40/400  loss 0.1234  312.5 steps/s`` on the first and
    last step and every ``every`` steps in between (about ten lines a run).

    Call it with the step number (from 1), the loss (if any) and any extra
    ``name=value`` pairs to show. The speed is measured since the previous
    line; ``per_step`` and ``rate_unit`` turn it into e.g. batches/s when a
    "step" is an epoch of several batches.
    """

    def __init__(self, total, label="step", every=None, per_step=1, rate_unit=None):
        self.total = total
        self.label = label
        self.every = every or max(1, total // 10)
        self.per_step = per_step
        self.rate_unit = rate_unit or label + "s"
        self.width = len(str(total))
        self._last_step, self._last_time = 0, time.perf_counter()

    def __call__(self, step, loss=None, **extra):
        """Print the line for ``step`` if it is due; return whether it was."""
        if not (step == 1 or step == self.total or step % self.every == 0):
            return False
        now = time.perf_counter()
        rate = (step - self._last_step) * self.per_step / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        parts = [f"{self.label} {step:>{self.width}}/{self.total}"]
        if loss is not None:
            parts.append(f"loss {_fmt(loss, 5)}")
        parts += [f"{key.replace('_', ' ')} {_fmt(value, 4)}" for key, value in extra.items()]
        parts.append(f"{rate:.0f} {self.rate_unit}/s" if rate >= 100 else
                     f"{rate:.2g} {self.rate_unit}/s")
        print("  ".join(parts), flush=True)
        return True


def _fmt(value, digits):
    if isinstance(value, str):
        return value
    return f"{float(value):.{digits}g}"


def show_filters(ax, filters, columns=10):
    """Draw ``filters`` (n, h, w) as a grid of grey tiles on ``ax``, each
    scaled to its own range (as the Theano tutorials' ``tile_raster_images``)."""
    import numpy as np
    n, h, w = filters.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1))
    low = filters.min(axis=(1, 2), keepdims=True)
    span = np.ptp(filters, axis=(1, 2), keepdims=True)
    scaled = (filters - low) / np.where(span > 0, span, 1)
    for k in range(n):
        r, c = divmod(k, columns)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = scaled[k]
    ax.imshow(grid, cmap="gray", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
