"""Pickling (and ``copy.deepcopy``) of graphs without recursion.

Left to itself, ``pickle`` saves an object by saving everything it refers to
first, depth first: a variable's owner, that node's inputs, their owners...
one level of Python recursion per node, so a graph a few hundred nodes deep
raises ``RecursionError``. Here:

- every ``Apply`` is saved *shallowly* -- its op, its input variables and a
  description of its outputs -- but only after the nodes computing its inputs
  have been saved, so each input is a short reference to an object the
  pickler has already seen (its memo);
- the first time the pickler meets a node (directly, or as the owner of a
  variable), the node is saved as its *prelude*: all the nodes it depends on,
  in run order, ending with itself. The pickler then saves that flat list
  one node after the other, at constant depth;
- a variable with an owner is saved as ``(owner, index)``; ownerless ones
  (inputs, constants, shared variables) as their attributes.

A node knows whether to save itself shallowly (inside a prelude) or as a
prelude (anywhere else) by looking itself up in this thread's table of
scheduled nodes; a second table records the nodes saved so far, which later
preludes of the same stream leave out (so pickling every variable of a graph
costs the size of the graph, not its square). Both tables hold weak
references to preludes, and a prelude lives exactly as long as the memo of
the pickler (or ``deepcopy``) that saved it: entries of a finished or failed
pickle are dead and ignored. Whatever the tables say, the result is the same
graph; only the recursion depth and the size depend on them.

The pickler's memo keeps sharing: a variable reached twice, or a node shared
by two pickled outputs, is saved once and loads as one object. A node's
outputs are rebuilt with it, and their attributes (like an ownerless
variable's) are restored after the object is in the memo, so they may refer
back to it (a shared variable's ``default_update`` reads the variable).
"""
import threading
import weakref

from tracegrad.postorder import postorder

_local = threading.local()
_SLOT_NAMES = {}  # class -> the names of its slots (all bases), computed once


def _table(name):
    """This thread's ``scheduled`` or ``saved`` table: ``{id(node): weak
    reference to a prelude}``. Entries of dead preludes are dropped from
    time to time (when the table has doubled)."""
    table = getattr(_local, name, None)
    if table is None:
        table = {}
        setattr(_local, name, table)
        setattr(_local, name + "_limit", 1024)
    limit = getattr(_local, name + "_limit")
    if len(table) > limit:
        for key in [k for k, ref in table.items() if ref() is None]:
            del table[key]
        setattr(_local, name + "_limit", max(1024, 2 * len(table)))
    return table


def slot_names(cls):
    """The attribute names stored in ``cls``'s slots (every base's)."""
    names = _SLOT_NAMES.get(cls)
    if names is None:
        names = []
        for base in reversed(cls.__mro__):
            slots = base.__dict__.get("__slots__", ())
            if isinstance(slots, str):
                slots = (slots,)
            names += [n for n in slots if n not in ("__weakref__", "__dict__")]
        names = _SLOT_NAMES[cls] = tuple(names)
    return names


def object_state(obj, skip=()):
    """A dict of ``obj``'s slot and ``__dict__`` attributes (less ``skip``)."""
    state = {}
    for name in slot_names(type(obj)):
        if name not in skip:
            try:
                state[name] = getattr(obj, name)
            except AttributeError:  # a slot never assigned
                pass
    attrs = getattr(obj, "__dict__", None)
    if attrs:
        state.update(attrs)
    return state


def set_object_state(obj, state):
    """Restore what ``object_state`` returned (or Python's default state,
    ``(dict or None, slots dict)``, which older tracegrad pickles hold)."""
    if isinstance(state, tuple):
        attrs, slots = state
        state = dict(attrs or {}, **(slots or {}))
    for name, value in state.items():
        object.__setattr__(obj, name, value)


def _new_object(cls, state):
    obj = cls.__new__(cls)
    set_object_state(obj, state)
    return obj


def copy_object(obj):
    """``copy.copy`` of a slotted object: the same attributes, not copied."""
    return _new_object(type(obj), object_state(obj))


# ------------------------------------------------------------ variables
def reduce_variable(var):
    """``__reduce_ex__`` of a ``Variable`` (see the module doc)."""
    if var.owner is not None:
        return (_output_of, (var.owner, var.index))
    # The attributes come as the state, which pickle saves once the variable
    # is in its memo: a shared variable's default_update reads the variable.
    return (_blank, (type(var),), object_state(var))


def _blank(cls):
    return cls.__new__(cls)


def _output_of(node, index):
    return node.outputs[index]


# ------------------------------------------------------------ apply nodes
class _Prelude:
    """The nodes one node depends on, in run order, ending with itself."""

    __slots__ = ("nodes", "__weakref__")

    def __init__(self, nodes):
        self.nodes = nodes

    def __reduce__(self):
        # The end marker is saved after every node: it unschedules them.
        return (_first, (self.nodes, _EndOfPrelude(self)))


class _EndOfPrelude:
    __slots__ = ("prelude",)

    def __init__(self, prelude):
        self.prelude = prelude

    def __reduce__(self):
        table = _table("scheduled")
        for node in self.prelude.nodes:
            ref = table.get(id(node))
            if ref is not None and ref() is self.prelude:
                del table[id(node)]
        return (_none, ())


def _first(nodes, _end):
    return nodes


def _none():
    return None


def _last(nodes):
    return nodes[-1]


def _live(table, node):
    ref = table.get(id(node))
    # A dead prelude belongs to a pickler that is gone (finished or failed).
    return ref is not None and ref() is not None


def _unsaved_nodes(outputs):
    """The nodes computing ``outputs`` in run order, less those this stream
    has saved already (see ``reduce_apply``)."""
    saved = _table("saved")
    return postorder(outputs, stop=lambda node: _live(saved, node))


def graph_prelude(outputs):
    """An object that pickles (and deep-copies) as every node computing
    ``outputs``, each saved shallowly in run order. Save it before the
    variables it covers, which are then short references."""
    return _schedule(_unsaved_nodes(outputs))


def _schedule(nodes):
    prelude = _Prelude(nodes)
    ref = weakref.ref(prelude)
    scheduled = _table("scheduled")
    for n in nodes:
        scheduled[id(n)] = ref
    return prelude


def reduce_apply(node):
    """``__reduce_ex__`` of an ``Apply`` (see the module doc).

    A node saved (shallowly) by a prelude the pickler still holds is in its
    memo, so later preludes of the same stream leave it out: pickling many
    variables of one graph costs the size of the graph, not its square. The
    pickler never asks a node it has in its memo, so being asked about a
    node recorded as saved means another pickler is at work (nested, or the
    first one kept alive): the records are then not to be trusted.
    """
    scheduled = _table("scheduled")
    saved = _table("saved")
    if not _live(scheduled, node):
        if _live(saved, node):
            saved.clear()
        return (_last, (_schedule(_unsaved_nodes(node.outputs) or [node]),))
    saved[id(node)] = scheduled.pop(id(node))
    # The outputs' attributes (name, tag...) come as the state, saved once
    # the node is in the memo, so they may refer back to the node.
    states = [object_state(out, skip=("owner", "index")) for out in node.outputs]
    return (_build_apply, (type(node), node.op, node.inputs, [type(out) for out in node.outputs],
                           node.source), states)


def _build_apply(cls, op, inputs, output_classes, source):
    # The class comes with the node, so this module needs no import of
    # ``trace`` (which imports it: layers import downward).
    node = cls.__new__(cls)
    node.op = op
    node.inputs = list(inputs)
    node.outputs = [cls.__new__(cls) for cls in output_classes]
    for index, out in enumerate(node.outputs):
        out.owner = node
        out.index = index
    node.source = source
    return node


def set_output_states(node, states):
    """``Apply.__setstate__``: the attributes of the outputs."""
    if isinstance(states, tuple):  # an older pickle: the node's own slots
        set_object_state(node, states)
        return
    for out, state in zip(node.outputs, states):
        set_object_state(out, state)
