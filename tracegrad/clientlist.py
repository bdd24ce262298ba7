"""``ClientList``: the readers of one variable, with O(1) removal.

Graphs keep, per variable, the ``(node, input index)`` pairs reading it. A
plain list makes removing a reader O(readers), so pruning the n readers of
one variable (a constant or an input read by n nodes) one at a time was
O(n^2). This keeps the pairs in an insertion-ordered dict instead: the same
order a list would have, O(1) ``append`` and ``remove``, and the list
behaviour callers use (iteration, ``len``, indexing, ``==`` with a list).
"""


class ClientList:
    """An ordered collection of distinct ``(node, index)`` pairs."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs=()):
        self._pairs = dict.fromkeys(pairs)

    def append(self, pair):
        """Add ``pair`` at the end (a pair already present is kept where it is)."""
        self._pairs[pair] = None

    def remove(self, pair):
        """Drop ``pair``; ``ValueError`` when absent (as ``list.remove``)."""
        try:
            del self._pairs[pair]
        except KeyError:
            raise ValueError(f"{pair!r} is not a client") from None

    def __contains__(self, pair):
        return pair in self._pairs

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def __bool__(self):
        return bool(self._pairs)

    def __getitem__(self, index):
        if index == 0 and self._pairs:
            return next(iter(self._pairs))
        return list(self._pairs)[index]

    def __eq__(self, other):
        if isinstance(other, ClientList):
            return list(self._pairs) == list(other._pairs)
        if isinstance(other, (list, tuple)):
            return list(self._pairs) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return repr(list(self._pairs))

    def __reduce__(self):
        return (ClientList, (list(self._pairs),))
