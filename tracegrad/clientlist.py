"""``ClientList``: the readers of one variable, with O(1) removal.

Graphs keep, per variable, the ``(node, input index)`` pairs reading it. A
plain list makes removing a reader O(readers), so pruning the n readers of
one variable (a constant or an input read by n nodes) one at a time was
O(n^2). This keeps the pairs as the keys of an insertion-ordered dict
instead: the same order a list would have, O(1) ``append`` and ``remove``,
and the list behaviour callers use (iteration, ``len``, indexing, ``==``
with a list).

It is a ``dict`` subclass (pairs -> ``None``) rather than a wrapper of one:
a graph makes one per variable, and creating one and ``append`` then run in
C (no Python frame), which a graph load of ~30k nodes feels.
"""


class ClientList(dict):
    """An ordered collection of distinct ``(node, index)`` pairs (the keys)."""

    __slots__ = ()

    def __init__(self, pairs=()):
        # (the pairs are keys, not ``dict``'s (key, value) items; the usual
        # ``ClientList()`` returns at once)
        if pairs:
            self.update(dict.fromkeys(pairs))

    # Add ``pair`` at the end (a pair already present is kept where it is):
    # ``setdefault(pair)`` stores ``None`` for a new key, in C.
    append = dict.setdefault

    def remove(self, pair):
        """Drop ``pair``; ``ValueError`` when absent (as ``list.remove``)."""
        try:
            del self[pair]
        except KeyError:
            raise ValueError(f"{pair!r} is not a client") from None

    def __getitem__(self, index):
        if index == 0 and self:
            return next(iter(self))
        return list(self)[index]

    def __eq__(self, other):
        if isinstance(other, (ClientList, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None

    def __repr__(self):
        return repr(list(self))

    def __reduce__(self):
        return (ClientList, (list(self),))
