"""Theano's ``theano.clone`` and ``theano.OrderedUpdates``.

``clone(output, replace=None, strict=True, share_inputs=True)`` copies the
graph of ``output`` (every node is new, so a rewrite of the copy never
touches the original), with ``replace``'s variables substituted.
"""
from collections import OrderedDict

from tracegrad.shared import SharedVariable
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable, toposort


def _replace_pairs(replace):
    if replace is None:
        return []
    pairs = list(replace.items()) if isinstance(replace, dict) else list(replace)
    for item in pairs:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"clone: replace must be a dict or a list of pairs, got {item!r}")
        if not isinstance(item[0], Variable):
            raise TypeError(f"clone: the keys of replace must be variables, got {item[0]!r}")
    return pairs


def _check_strict(old, new):
    """Theano's ``strict=True``: the replacement keeps the type (a static
    length may become known, not change)."""
    ot, nt = old.type, new.type
    same = type(ot) is type(nt) and getattr(ot, "dtype", None) == getattr(nt, "dtype", None)
    oshape, nshape = getattr(ot, "shape", None), getattr(nt, "shape", None)
    if same and oshape is not None and nshape is not None:
        same = len(oshape) == len(nshape) and all(
            a is None or a == b for a, b in zip(oshape, nshape))
    if not same:
        raise TypeError(f"clone: the replacement of {old} has type {nt}, not {ot} "
                        f"(pass strict=False to rebuild the graph on another type)")


def _fresh_inputs(nodes, outputs, memo):
    """New variables for the graph's inputs (not its shared variables,
    nor what ``memo`` already replaces): ``share_inputs=False``."""
    ownerless = [v for node in nodes for v in node.inputs] + list(outputs)
    for var in ownerless:
        if var.owner is None and var not in memo and not isinstance(var, SharedVariable):
            memo[var] = var.clone()


def clone(output, replace=None, strict=True, share_inputs=True, copy_inputs=None):
    """A copy of the graph of ``output`` (a variable or a list/tuple of them)
    with ``replace`` (a dict or pairs ``old -> new``) applied.

    ``strict=True`` requires each replacement to have its original's type;
    ``strict=False`` re-infers the types of the nodes above it.
    ``share_inputs=True`` keeps the graph's inputs; ``False`` gives the copy
    new input variables (shared variables are kept, as in Theano).
    ``copy_inputs`` is Theano's deprecated name for ``share_inputs``.
    """
    if copy_inputs is not None:
        share_inputs = copy_inputs
    many = isinstance(output, (list, tuple))
    outputs = list(output) if many else [output]
    memo = {}
    for old, new in _replace_pairs(replace):
        new = new if isinstance(new, Variable) else as_tensor_variable(new)
        if strict:
            _check_strict(old, new)
        memo[old] = new
    nodes = toposort(outputs, blockers=set(memo))
    if not share_inputs:
        _fresh_inputs(nodes, outputs, memo)
    for node in nodes:
        new_node = node.clone_with_new_inputs([memo.get(i, i) for i in node.inputs])
        for old, new in zip(node.outputs, new_node.outputs):
            if new.name is None:
                new.name = old.name
            memo.setdefault(old, new)
    result = [memo.get(o, o) for o in outputs]
    return type(output)(result) if many else result[0]


class OrderedUpdates(OrderedDict):
    """Theano's ``OrderedUpdates``: an ordered dict of ``shared -> new
    value``, accepted wherever ``updates=`` is. Adding two of them (or
    ``update``) refuses a key given two different values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key in self:
            self._check_key(key)

    @staticmethod
    def _check_key(key):
        if not isinstance(key, SharedVariable):
            raise TypeError(f"OrderedUpdates: the keys must be shared variables, got {key!r}")

    def __setitem__(self, key, value):
        self._check_key(key)
        super().__setitem__(key, value)

    def update(self, other=None):
        """Add ``other``'s pairs; a key already present with another value
        raises ``KeyError`` (Theano's rule)."""
        if other is None:
            return
        items = other.items() if isinstance(other, dict) else other
        for key, value in items:
            if key in self and self[key] is not value:
                raise KeyError(f"OrderedUpdates: {key} is already updated (collision)")
            self[key] = value

    def __add__(self, other):
        out = OrderedUpdates()
        out.update(self)
        out.update(other)
        return out

    def __radd__(self, other):
        out = OrderedUpdates()
        out.update(other)
        out.update(self)
        return out
