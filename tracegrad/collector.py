"""Pausing Python's cyclic garbage collector around graph building.

Below every engine (``grad``, the compile pipeline, a function's first
call), so each can pause it without importing the others.
"""
import gc
from contextlib import contextmanager

# Net new container objects of a paused block above which its survivors
# are collected into the oldest generation at once (see ``paused``):
# below it a pass costs little either way.
MANY_NEW_OBJECTS = 100_000


@contextmanager
def paused():
    """Pause Python's cyclic garbage collector for the block (if it was on).

    Differentiating and compiling allocate millions of small objects
    (variables, nodes, rule results) that survive until the step ends, so
    the collector's automatic passes over the older generations walk them
    again and again for nothing: 20-50 % of the clone, rewrite and fusion
    time of a graph of 10^4-10^5 nodes, and a ``grad`` of such a graph grew
    as n^1.3 for it. The garbage made meanwhile (replaced nodes, which are
    cyclic) is collected once the step is over: after a block that made
    more than ``MANY_NEW_OBJECTS`` objects, by one pass over the young and
    middle generations (its survivors then sit in the oldest), not by a
    young pass followed, a few thousand allocations later, by a middle one
    walking the same objects again (0.1-0.25 s in the first call of W7's
    4k-term sum).
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            if gc.get_count()[0] > MANY_NEW_OBJECTS:
                # The block's survivors would be walked by a young
                # collection, then again by the middle generation's a few
                # allocations later (often inside the function's first
                # call): one pass over both puts them in the oldest
                # generation at once (same objects kept, same garbage freed).
                gc.collect(1)
