"""Refuse NumPy random draws made while a function is being traced.

Tracing runs the user's function once, on placeholders; a call to
``np.random.normal(...)`` (or ``rng.normal(...)`` on a ``Generator`` or
``RandomState``) made then returns one concrete array, which enters the graph
as a constant: every later call of the compiled function would return that
same "random" draw. There is no hook into NumPy's generators (their methods
are Cython functions, invisible to profilers), so ``no_frozen_draws``
compares the state of every generator the function can reach before and
after tracing, and raises ``TypeError`` naming ``RandomStreams`` when one
moved (a warning instead when other threads are running and only the
shared global generator moved: one of them may have drawn from it):

- the global generator behind the legacy ``np.random.*`` functions (however
  they were imported);
- generators held by the function's module globals, closure, defaults, its
  bound ``self`` (``self.rng``), and the static arguments of the call.

A generator created inside the function with a fixed seed repeats its
numbers on every call in NumPy too, so it is not an error; one created
unseeded (``np.random.default_rng()``) is: NumPy seeds it from
``numpy.random.bit_generator.randbits``, which is wrapped (once, delegating
unchanged) to count, per thread, the seeds taken outside tracegrad's own code.
"""
import contextlib
import sys
import threading
import warnings

import numpy as np

__all__ = ["no_frozen_draws"]

_GENERATORS = (np.random.Generator, np.random.RandomState, np.random.BitGenerator)
_LOCAL = threading.local()  # .fresh_seeds: unseeded generators made by user code
_INSTALL_LOCK = threading.Lock()


def _count_fresh_seeds():
    """Wrap NumPy's entropy source (once) so that unseeded generators made
    while tracing are counted; a no-op where NumPy has no such hook."""
    from numpy.random import bit_generator
    with _INSTALL_LOCK:
        original = getattr(bit_generator, "randbits", None)
        if original is None or getattr(original, "_tracegrad_counting", False):
            return

        def randbits(k):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not caller.startswith("tracegrad."):  # RandomStreams seeds itself
                _LOCAL.fresh_seeds = getattr(_LOCAL, "fresh_seeds", 0) + 1
            return original(k)
        randbits._tracegrad_counting = True
        bit_generator.randbits = randbits


def _fresh_seeds():
    return getattr(_LOCAL, "fresh_seeds", 0)


def _state(gen):
    if isinstance(gen, np.random.RandomState):
        return gen.get_state(legacy=False)
    if isinstance(gen, np.random.Generator):
        gen = gen.bit_generator
    return gen.state


def _same(a, b):
    """Equality of two generator states (dicts of ints, strings, arrays)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _candidates(fn, static_values):
    """``(label, generator)`` for each generator ``fn`` can reach."""
    found = [("np.random (the global generator)", np.random.mtrand._rand)]
    values = []
    self = getattr(fn, "__self__", None)
    fn = getattr(fn, "__func__", fn)
    values += list(getattr(fn, "__globals__", {}).items())
    cells = getattr(fn, "__closure__", None) or ()
    names = getattr(getattr(fn, "__code__", None), "co_freevars", ())
    values += [(name, cell.cell_contents) for name, cell in zip(names, cells)
               if _filled(cell)]
    values += [(f"default {i}", v) for i, v in enumerate(getattr(fn, "__defaults__", None)
                                                          or ())]
    values += [(f"argument {i}", v) for i, v in enumerate(static_values)]
    if self is not None:
        values += [(f"self.{k}", v) for k, v in getattr(self, "__dict__", {}).items()]
    for label, value in values:
        if isinstance(value, _GENERATORS):
            found.append((label, value))
    return found


def _other_threads():
    """Whether threads other than this one and tracegrad's own workers
    (``backend/numpy/runner.py``'s pool, which never draws) are running."""
    me = threading.current_thread()
    return any(t is not me and not t.name.startswith("tracegrad-")
               for t in threading.enumerate())


def _filled(cell):
    try:
        cell.cell_contents
    except ValueError:  # a free variable not assigned yet
        return False
    return True


@contextlib.contextmanager
def no_frozen_draws(fn, what, static_values=()):
    """Run the body (the tracing of ``fn``); raise ``TypeError`` if it drew
    from a NumPy generator ``fn`` can reach. ``what`` names the tracer
    (``"jit"``, ``"scan"``) in the message."""
    _count_fresh_seeds()
    gens = _candidates(fn, static_values)
    before = [_state(g) for _, g in gens]
    seeds = _fresh_seeds()
    yield
    moved = [label for (label, g), s in zip(gens, before) if not _same(_state(g), s)]
    if _fresh_seeds() != seeds:
        moved.append("an unseeded generator made while tracing, e.g. default_rng()")
    if not moved:
        return
    name = getattr(fn, "__name__", "the function")
    message = (
        f"{what}: {name} drew random numbers from NumPy ({', '.join(moved)}) while "
        "being traced; tracing runs it once, so that draw would be frozen into the "
        "compiled graph and every call would return the same numbers. Draw inside "
        "the graph with tg.random.RandomStreams (srng = RandomStreams(seed); "
        "srng.normal(size)): new numbers on each call; or pass the random array in "
        "as an argument")
    if moved == [gens[0][0]] and _other_threads():
        # Another thread may have drawn from the shared global generator:
        # not certain enough to refuse the function.
        warnings.warn(message + " (or another thread used np.random meanwhile)",
                      RuntimeWarning, stacklevel=4)
        return
    raise TypeError(message)
