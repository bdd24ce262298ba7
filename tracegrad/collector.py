"""Pausing Python's cyclic garbage collector around graph building.

Below every engine (``grad``, the compile pipeline, a function's first
call), so each can pause it without importing the others.
"""
import gc
from contextlib import contextmanager


@contextmanager
def paused():
    """Pause Python's cyclic garbage collector for the block (if it was on).

    Differentiating and compiling allocate millions of small objects
    (variables, nodes, rule results) that survive until the step ends, so
    the collector's automatic passes over the older generations walk them
    again and again for nothing: 20-50 % of the clone, rewrite and fusion
    time of a graph of 10^4-10^5 nodes, and a ``grad`` of such a graph grew
    as n^1.3 for it. The garbage made meanwhile (replaced nodes, which are
    cyclic) is collected as usual once the step is over.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
