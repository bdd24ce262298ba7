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
    graph ``f.maker.fgraph`` is printed) or a list of those. Each line shows
    the op (``Elemwise{add}``), an id (``[id A]``), the type and the name::

        Elemwise{add} [id A] <TensorType(float64, scalar)> 'z'
         |x [id B] <TensorType(float64, scalar)>
         |y [id C] <TensorType(float64, scalar)>

    A subtree used more than once is printed the first time and afterwards
    only referred to by its id. ``depth`` (``-1``: no limit) cuts the tree;
    subtrees deeper than ``max_indent`` levels are printed as separate trees
    below (``...`` marks where they continue), so deep graphs print in
    linear space. ``file``: ``None`` writes to ``sys.stdout``, ``'str'``
    returns the text, anything else with ``write`` receives it. Returns the
    text for ``'str'``, else the file written to.

    For a compiled function, the tree of each update's new value ends its
    first line with ``-> update of W (how)``: which shared variable it
    writes, and whether ``in place`` or ``copied`` (see ``update_kinds``).
    """
    roots, updates = _roots_and_updates(obj)
    ids = {}
    expanded = set()
    deferred = set()
    lines = []

    def ident(var):
        key = var.owner if var.owner is not None else var
        if key not in ids:
            ids[key] = _id_string(len(ids))
        return ids[key]

    def head(var):
        if var.owner is None:
            label = f"Constant{{{_leaf_text(var)}}}" if isinstance(var, Constant) \
                else (var.name if var.name is not None else "<input>")
        else:
            label = _debug_label(var.owner.op)
            if len(var.owner.outputs) > 1:
                label += f".{var.index}"
        text = f"{label} [id {ident(var)}]"
        if print_type:
            text += f" <{var.type}>"
        if var.owner is not None and var.name is not None:
            text += f" '{var.name}'"
        return text

    pending = [(root, updates.get(k)) for k, root in enumerate(roots)]
    while pending:
        root, update = pending.pop(0)
        stack = [(root, 0)]
        while stack:
            var, level = stack.pop()
            line = " |" * level + head(var)
            if level == 0 and update is not None:
                line += " -> " + update_label(*update)
            node = var.owner
            if node is None or node in expanded or (0 <= depth <= level):
                lines.append(line)
                continue
            if level >= max_indent and var is not root:
                lines.append(line + " ...")
                if node not in deferred:
                    deferred.add(node)
                    pending.append((var, None))
                continue
            lines.append(line)
            expanded.add(node)
            for inp in reversed(node.inputs):
                stack.append((inp, level + 1))
    text = "\n".join(lines) + "\n"
    if file == "str":
        return text
    stream = sys.stdout if file is None else file
    stream.write(text)
    return stream
