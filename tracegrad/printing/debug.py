"""``debugprint``: the graph as an indented tree (Theano's format), with
the updates of a compiled function labelled."""
import sys

from tracegrad.printing.labels import _debug_label, _leaf_text
from tracegrad.trace import Apply, Constant, Variable


def _roots(obj):
    """The output variables to print for a variable, Apply, function or list."""
    return _roots_and_updates(obj)[0]


def _roots_and_updates(obj):
    """The output variables to print, and ``{position: (shared, how)}`` for
    those that are the new value of a compiled function's shared variable."""
    items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    roots = []
    updates = {}
    for item in items:
        if isinstance(item, Variable):
            roots.append(item)
        elif isinstance(item, Apply):
            roots.extend(item.outputs)
        elif hasattr(item, "maker") and hasattr(item.maker, "fgraph"):
            fgraph = item.maker.fgraph
            first = len(roots) + len(fgraph.outputs) - len(getattr(fgraph, "update_targets", ()))
            for k, found in enumerate(update_kinds(item)):
                updates[first + k] = found
            roots.extend(fgraph.outputs)
        elif hasattr(item, "outputs") and isinstance(item.outputs, (list, tuple)):
            roots.extend(item.outputs)
        else:
            raise TypeError(f"cannot print {type(item).__name__}: give a variable, an "
                            "Apply, a compiled function or a list of them")
    return roots, updates


def update_kinds(fn):
    """``[(shared variable, how)]`` for each update of the compiled function
    ``fn``, in ``fn.maker.fgraph.update_targets`` order. ``how`` is
    ``'in place'`` (a fused kernel writes the new value into the shared
    buffer itself: no temporary), ``'copied'`` (the value is computed into
    a new array, then copied into the buffer, or replaces it when the shape
    changed), ``'snapshot, copied'`` (as ``'copied'``, and first copied
    aside because it reads another updated shared variable) or
    ``'unchanged'`` (the update is the variable itself)."""
    fgraph = fn.maker.fgraph
    if not hasattr(fgraph, "update_pairs"):
        return []
    schedule = getattr(fn, "schedule", None)
    in_place = {plan.shared for d in getattr(schedule, "deferred", ()) for plan in d.plans}
    snapshot = {plan.shared for plan in getattr(schedule, "updates", ()) if plan.snapshot}
    kinds = []
    for shared, value in fgraph.update_pairs():
        if value is shared:
            how = "unchanged"
        elif shared in in_place:
            how = "in place"
        elif shared in snapshot:
            how = "snapshot, copied"
        else:
            how = "copied"
        kinds.append((shared, how))
    return kinds


def update_label(shared, how):
    """``'update of W (in place)'``: what a printer says of an update."""
    return f"update of {shared} ({how})"


def _id_string(k):
    """Theano-style ids: A..Z, BA..BZ, CA... (base 26, letters as digits)."""
    digits = []
    while True:
        digits.append(chr(ord("A") + k % 26))
        k //= 26
        if k == 0:
            break
    return "".join(reversed(digits))


def debugprint(obj, file=None, depth=-1, print_type=True, max_indent=40):
    """Print the graph of ``obj`` as an indented tree, one line per variable.

    ``obj`` is a variable, an ``Apply``, a compiled function (its optimized
    graph ``f.maker.fgraph`` is printed) or a list of those. The layout is
    Theano's: each line shows the op (``Elemwise{add,no_inplace}``), an id
    (``[id A]``), the type and the name of a computed value (``''`` when it
    has none); a child's subtree hangs from a ``|`` column, which the last
    child's subtree leaves blank::

        Elemwise{mul,no_inplace} [id A] <TensorType(float64, scalar)> 'z'
         |x [id B] <TensorType(float64, scalar)>
         |Elemwise{exp,no_inplace} [id C] <TensorType(float64, scalar)> ''
           |y [id D] <TensorType(float64, scalar)>

    For a compiled function each computed value's line ends with its node's
    position in the run order (Theano's ``''   3``), and the tree of each
    update's new value ends its first line with ``-> update of W (how)``:
    which shared variable it writes, and whether ``in place`` or ``copied``
    (see ``update_kinds``).

    A subtree used more than once is printed the first time and afterwards
    only referred to by its id. ``depth`` (``-1``: no limit) cuts the tree;
    subtrees deeper than ``max_indent`` levels are printed as separate trees
    below (``...`` marks where they continue), so deep graphs print in
    linear space. ``file``: ``None`` writes to ``sys.stdout``, ``'str'``
    returns the text, anything else with ``write`` receives it. Returns the
    text for ``'str'``, else the file written to.
    """
    roots, updates = _roots_and_updates(obj)
    lines = _Tree(print_type, _run_positions(obj)).lines(roots, updates, depth, max_indent)
    text = "\n".join(lines) + "\n"
    if file == "str":
        return text
    stream = sys.stdout if file is None else file
    stream.write(text)
    return stream


def _run_positions(obj):
    """``{node: position in the run order}`` of a compiled function's graph
    (of every compiled function in a list); empty for variables."""
    positions = {}
    for item in (obj if isinstance(obj, (list, tuple)) else [obj]):
        fgraph = getattr(getattr(item, "maker", None), "fgraph", None)
        if fgraph is not None and hasattr(fgraph, "toposort"):
            positions.update((node, k) for k, node in enumerate(fgraph.toposort()))
    return positions


class _Tree:
    """The lines of ``debugprint``: ids handed out in print order, each
    node expanded once."""

    def __init__(self, print_type, positions):
        self.print_type = print_type
        self.positions = positions
        self.ids = {}
        self.expanded = set()
        self.deferred = set()

    def ident(self, var):
        key = var.owner if var.owner is not None else var
        if key not in self.ids:
            self.ids[key] = _id_string(len(self.ids))
        return self.ids[key]

    def head(self, var):
        """``label [id X] <type> 'name'   position`` of one variable."""
        node = var.owner
        if node is None:
            label = _leaf_label(var)
        else:
            label = _node_label(node)
            if len(node.outputs) > 1:
                label += f".{var.index}"
        text = f"{label} [id {self.ident(var)}]"
        if self.print_type:
            text += f" <{var.type}>"
        if node is not None:
            text += f" '{var.name}'" if var.name is not None else " ''"
            if node in self.positions:
                text += f"   {self.positions[node]}"
        return text

    def lines(self, roots, updates, depth, max_indent):
        lines = []
        pending = [(root, updates.get(k)) for k, root in enumerate(roots)]
        while pending:
            root, update = pending.pop(0)
            self._tree(root, update, depth, max_indent, lines, pending)
        return lines

    def _tree(self, root, update, depth, max_indent, lines, pending):
        # (variable, level, prefix of its line, prefix of its children's lines)
        stack = [(root, 0, "", "")]
        while stack:
            var, level, prefix, child_prefix = stack.pop()
            line = prefix + self.head(var)
            if level == 0 and update is not None:
                line += " -> " + update_label(*update)
            node = var.owner
            if node is None or node in self.expanded or (0 <= depth <= level):
                lines.append(line)
                continue
            if level >= max_indent and var is not root:
                lines.append(line + " ...")
                if node not in self.deferred:
                    self.deferred.add(node)
                    pending.append((var, None))
                continue
            lines.append(line)
            self.expanded.add(node)
            last = len(node.inputs) - 1
            for k in range(last, -1, -1):
                below = child_prefix + ("  " if k == last else " |")
                stack.append((node.inputs[k], level + 1, child_prefix + " |", below))


def _node_label(node):
    """The op's debug label; a ``TensorDot`` that is a plain ``dot`` of its
    inputs reads ``dot`` (as in Theano and ``pp``)."""
    op = node.op
    if hasattr(op, "_label") and len(node.inputs) == 2 and \
            op._label(node.inputs[0].ndim, node.inputs[1].ndim) == "dot":
        return "dot"
    return _debug_label(op)


def _leaf_label(var):
    """``x``, ``TensorConstant{2.0}`` or ``<input>`` (an unnamed input)."""
    if isinstance(var, Constant):
        kind = "TensorConstant" if type(var.type).__name__ == "TensorType" else "Constant"
        return f"{kind}{{{_leaf_text(var)}}}"
    return var.name if var.name is not None else "<input>"
