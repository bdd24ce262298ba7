"""Pausing Python's cyclic garbage collector around graph building.

Below every engine (``grad``, the compile pipeline, a function's first
call), so each can pause it without importing the others.
"""
import gc
import sys
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
    4k-term sum); or by a full collection when that pass would make one
    due right after (``_full_due``).
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            new = gc.get_count()[0]
            # (decided before the collector is on again: the allocations of
            # deciding must not start an automatic young pass first)
            generation = None
            if new > MANY_NEW_OBJECTS:
                # The block's survivors would be walked by a young
                # collection, then again by the middle generation's a few
                # allocations later (often inside the function's first
                # call): one pass over both puts them in the oldest
                # generation at once (same objects kept, same garbage freed).
                # When that pass would make a full collection due, the
                # full one is made instead (``_full_due``).
                generation = 2 if _full_due(new) else 1
            gc.enable()
            if generation is not None:
                gc.collect(generation)


def _full_due(new):
    """Whether CPython's next automatic collection would be a full one
    once ``new`` young survivors were moved to the oldest generation by
    ``gc.collect(1)``: its rule (CPython 3.8-3.13) is more middle-generation
    collections since the last full one than the oldest's threshold, and
    more objects moved to the oldest since then than a quarter of those
    it kept. The second is not readable; ``new`` being over a quarter of
    every other tracked object is enough for it (counted as the blocks of
    Python's allocator, which nearly all of them are: 0.1 ms, where
    ``len(gc.get_objects())`` took 15-30 ms). A full collection is then
    made at once: the block's objects are walked once, not by the middle
    pass and again by the full collection right after (at the end of a
    4k-term sum's compile the young pass took 0.11-0.14 s CPU, then the
    first call's full collection 0.26-0.3 s walking them again)."""
    threshold0, _, threshold2 = gc.get_threshold()
    if not threshold0 or gc.get_count()[2] + 1 <= threshold2:
        return False
    blocks = sys.getallocatedblocks() or len(gc.get_objects())  # (0: no pymalloc)
    return 5 * new > blocks
