"""Trees of arguments and results for ``tg.jit`` and the function transforms.

A tree is nested lists, tuples, dicts (``OrderedDict`` too), namedtuples and
dataclass instances (every field, frozen or not); anything else is a leaf.
``flatten`` describes a tree by a hashable *structure* (nested tuples, so it
can be a cache key) and a list of its dynamic leaves; ``unflatten`` rebuilds
it. What a leaf is (dynamic or static, and how it is described) is decided
by a ``classify`` function, so ``tg.jit``'s argument signatures, the results
of a traced function and the symbolic arguments of a nested transform share
one walk.

Structures: ``("list", children)``, ``("tuple", children)``, ``("dict",
keys, children)``, ``("odict", keys, children)``, ``("namedtuple", cls,
children)``, ``("dataclass", cls, names, children)`` and leaves: ``("static",
type, value)`` (part of the structure; ``fn`` sees the value), or a dynamic
leaf described by its classifier (``("array", dtype, broadcastable)``,
``("weak", dtype)``, ``("var",)``, ``("out",)``).
"""
import dataclasses
from collections import OrderedDict

__all__ = ["Static", "flatten", "unflatten", "leaf_paths", "map_leaves", "is_container",
           "CONTAINERS"]

CONTAINERS = frozenset(["list", "tuple", "dict", "odict", "namedtuple", "dataclass"])


class Static:
    """Marks a value a transform returns as is, not as an array (a ``None``
    or a string kept in the gradient of a tree that held it)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _children(o):
    """``(header, [(label, child)...])`` of a container, or ``None`` for a leaf.
    Labels name children in messages and placeholders (``[0]``, ``['w']``, ``.b``)."""
    t = type(o)
    if t is list or t is tuple:
        return (t.__name__,), [(f"[{i}]", e) for i, e in enumerate(o)]
    if t is dict or t is OrderedDict:
        # A dict's structure does not depend on insertion order (JAX sorts too).
        keys = tuple(sorted(o, key=repr)) if t is dict else tuple(o)
        return ("dict" if t is dict else "odict", keys), [(f"[{k!r}]", o[k]) for k in keys]
    if isinstance(o, tuple) and hasattr(t, "_fields"):
        return ("namedtuple", t), [(f".{f}", e) for f, e in zip(t._fields, o)]
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        names = tuple(f.name for f in dataclasses.fields(o))
        return ("dataclass", t, names), [(f".{n}", getattr(o, n)) for n in names]
    return None


def is_container(o):
    """Whether ``o`` is a tree node (list, tuple, dict, namedtuple, dataclass)."""
    return _children(o) is not None


def _rebuild(structure, items):
    kind = structure[0]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    if kind == "dict":
        return dict(zip(structure[1], items))
    if kind == "odict":
        return OrderedDict(zip(structure[1], items))
    if kind == "namedtuple":
        return structure[1](*items)
    # A dataclass: its fields are set directly, without running __init__ or
    # __post_init__ on placeholders, and frozen ones too.
    cls, names = structure[1], structure[2]
    obj = cls.__new__(cls)
    for n, v in zip(names, items):
        object.__setattr__(obj, n, v)
    return obj


def flatten(obj, classify, name="argument"):
    """``(structure, leaves)`` of the tree ``obj``.

    ``classify(leaf, name)`` returns ``(description, value)``: a description
    ``("static", type, value)`` keeps the leaf in the structure (``value`` is
    ignored); any other description marks a dynamic leaf and ``value`` is
    appended to ``leaves``. ``name`` is the tree's name in messages
    (``params['w']``).
    """
    leaves = []

    def walk(o, name):
        node = _children(o)
        if node is None:
            description, value = classify(o, name)
            if description[0] != "static":
                leaves.append(value)
            return description
        header, items = node
        return header + (tuple(walk(c, name + label) for label, c in items),)

    return walk(obj, name), leaves


def unflatten(structure, leaves, static=lambda value: value):
    """Rebuild the tree described by ``structure`` from its dynamic ``leaves``
    (any objects, in order). ``static(value)`` gives what a static leaf
    becomes (its value, unless given)."""
    it = iter(leaves)

    def build(s):
        if s[0] in CONTAINERS:
            return _rebuild(s, [build(c) for c in s[-1]])
        if s[0] == "static":
            return static(s[2])
        return next(it)

    return build(structure)


def leaf_paths(structure, prefix):
    """``[(description, name)]`` of the dynamic leaves, in ``flatten``'s
    order, each named after its place in the tree (``xs[1]``, ``p.w``)."""
    out = []

    def walk(s, name):
        kind = s[0]
        if kind in CONTAINERS:
            labels = _labels(s)
            for label, c in zip(labels, s[-1]):
                walk(c, name + label)
        elif kind != "static":
            out.append((s, name))

    walk(structure, prefix)
    return out


def _labels(structure):
    kind, children = structure[0], structure[-1]
    if kind in ("list", "tuple"):
        return [f"[{i}]" for i in range(len(children))]
    if kind in ("dict", "odict"):
        return [f"[{k!r}]" for k in structure[1]]
    if kind == "namedtuple":
        return [f".{f}" for f in structure[1]._fields]
    return [f".{n}" for n in structure[2]]


def map_leaves(structure, fn):
    """``structure`` with each dynamic leaf's description replaced by ``fn(description)``."""
    kind = structure[0]
    if kind in CONTAINERS:
        return structure[:-1] + (tuple(map_leaves(c, fn) for c in structure[-1]),)
    if kind == "static":
        return structure
    return fn(structure)
