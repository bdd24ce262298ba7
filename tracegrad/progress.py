"""A progress line on stderr while a large graph compiles.

``tg.function`` opens a ``CompileProgress`` (``begin``) and each stage of
the pipeline reports itself (``stage(name, nodes)``: clone, each rewrite
phase, fusion, in-place planning, schedule). Nothing is printed until the
compile has run ``PROGRESS_AFTER_S`` seconds (tracegrad/config.py), and never when
``tg.config.progress`` is off or stderr is not a terminal (tests, CI, a
log file): then ``begin`` returns ``NO_PROGRESS``, whose methods do
nothing. The line goes through ``tqdm`` when it is installed, a plain
``\\r`` line otherwise.

Stages report at their boundaries, and the long loops inside them (a
rewrite pass, fusion's search and rebuild) report how many of their nodes
are done every ``every`` nodes (``PROGRESS_EVERY_NODES``) with
``advance(done, total)``; ``NO_PROGRESS.every`` is 0, so such a loop keeps a
counter that never matches and never calls it::

    report = progress.every or -1
    for k, node in enumerate(nodes):
        if k == report:
            report += progress.every
            progress.advance(k, len(nodes))
"""
import sys
import threading
import time

from tracegrad.config import PROGRESS_AFTER_S, PROGRESS_EVERY_NODES, config

__all__ = ["begin", "current", "CompileProgress", "NO_PROGRESS"]


class _NoProgress:
    """The progress of a compile that shows none."""

    every = 0  # (a loop's counter never reaches a report)

    def stage(self, name, nodes=None):
        pass

    def advance(self, done, total):
        pass

    def close(self):
        pass


NO_PROGRESS = _NoProgress()
_LOCAL = threading.local()  # (each thread compiles on its own)


def current():
    """The progress of the compile running now in this thread
    (``NO_PROGRESS`` if none)."""
    return getattr(_LOCAL, "progress", NO_PROGRESS)


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class CompileProgress:
    """The progress line of one compile of ``label`` (see the module doc)."""

    def __init__(self, label, stream, tqdm=None):
        self.every = PROGRESS_EVERY_NODES
        self.label = label
        self.stream = stream
        self.tqdm = tqdm
        self.start = time.perf_counter()
        self.count = 0
        self.name = None
        self.bar = None
        self.width = 0

    def stage(self, name, nodes=None):
        """Stage ``name`` starts, over a graph of ``nodes`` nodes."""
        self.count += 1
        self.name = name
        self._show(name if nodes is None else f"{name}, {nodes} nodes", True)

    def advance(self, done, total):
        """``done`` of the ``total`` nodes of the running stage's loop are
        through (a loop may visit a node again: ``done`` is capped)."""
        self._show(f"{self.name}, {min(done, total)}/{total} nodes", False)

    def _show(self, what, new_stage):
        elapsed = time.perf_counter() - self.start
        if self.bar is None and not self.width and elapsed < PROGRESS_AFTER_S:
            return
        if self.tqdm is not None:
            if self.bar is None:
                self.bar = self.tqdm(desc=f"tracegrad: compiling {self.label}",
                                     file=self.stream, unit="stage", leave=False)
            self.bar.set_postfix_str(what, refresh=not new_stage)
            if new_stage:
                self.bar.update(1)
            return
        text = (f"tracegrad: compiling {self.label}: stage {self.count} ({what}), "
                f"{elapsed:.1f} s")
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self):
        """The compile ended: clear the line."""
        if self.bar is not None:
            self.bar.close()
        elif self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        _LOCAL.progress = NO_PROGRESS


def begin(label):
    """The progress of a compile starting now (``NO_PROGRESS`` when off,
    when stderr is not a terminal, or inside another compile)."""
    if not config.progress or current() is not NO_PROGRESS:
        return NO_PROGRESS
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    try:
        if stream is None or isatty is None or not isatty():
            return NO_PROGRESS
    except ValueError:  # a closed stream
        return NO_PROGRESS
    progress = CompileProgress(label, stream, _tqdm())
    _LOCAL.progress = progress
    return progress
