"""Printing graphs: ``pp`` (infix text), ``debugprint`` (indented tree) and
``to_dot`` (Graphviz DOT text, rendered by the ``dot`` program when installed).

Every function walks the graph iteratively, so graphs of any depth print
without touching Python's recursion limit. ``pp`` emits tokens from an explicit
stack, so its cost is linear in the length of the text it returns.
"""
import re
import shutil
import subprocess
import sys

import numpy as np

from tracegrad.trace import Apply, Constant, Op, Variable, toposort

__all__ = ["pp", "debugprint", "to_dot", "register_formatter"]

# ------------------------------------------------------------------ op labels
# (Operators: each elementwise row declares its own ``symbol``.)
_FUNCTION_NAMES = {"clip_": "clip"}

_FORMATTERS = {}  # Op subclass -> fn(node, inputs) -> list of str / Variable tokens


def register_formatter(op_class, formatter):
    """Make ``pp`` print nodes of ``op_class`` with ``formatter``.

    ``formatter(node, inputs)`` returns a list of tokens: strings are printed
    as they are, variables (items of ``inputs``) are replaced by their own
    text. Example for an infix op: ``lambda node, i: ['(', i[0], ' @ ', i[1], ')']``.
    """
    _FORMATTERS[op_class] = formatter


# Fallback formatters of ops whose modules register none, found by class
# name so that printing imports no op module.
def _tensordot(node, i):
    op = node.op
    label = op._label(i[0].ndim, i[1].ndim) if hasattr(op, "_label") else op.name
    if label == "dot":
        return ["dot(", i[0], ", ", i[1], ")"]
    return [f"{label}(", i[0], ", ", i[1], f", axes=({op.axes_a}, {op.axes_b}))"]


_FORMATTERS_BY_NAME = {
    "MatMul": lambda node, i: ["(", i[0], " @ ", i[1], ")"],
    "TensorDot": _tensordot,
}


def _scalar_row(op):
    return getattr(op, "scalar_op", None)


def _op_function_name(op):
    """The name an op has in ``pp``: the function that builds it."""
    row = _scalar_row(op)
    if row is not None:
        if getattr(row, "params", ()) and row.name.startswith("cast_"):
            return "cast"
        return _FUNCTION_NAMES.get(row.name, row.name)
    name = op.name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()  # SumTo -> sum_to


def _format_value(value):
    if isinstance(value, np.ndarray):
        return _format_array(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, str):
        return value
    return repr(value)


def _op_params(op):
    """``key=value`` strings for the op's properties that say something."""
    out = []
    for prop in getattr(op, "__props__", ()):
        value = getattr(op, prop, None)
        if value is None or value is False or prop == "scalar_op" or (
                isinstance(value, tuple) and not value):
            continue
        if isinstance(value, str) and value == op.name:
            continue  # e.g. Reduce(kind='sum') is already called sum
        if prop in ("axis", "axes"):
            prop = "axis"  # NumPy's keyword
            if isinstance(value, tuple) and len(value) == 1:
                value = value[0]
        out.append(f"{prop}={_format_value(value)}")
    return out


def _format_array(data, max_size=16):
    if data.ndim == 0:
        return repr(data.item())
    if data.size <= max_size:
        return repr(data.tolist())
    return f"constant{{shape={tuple(data.shape)}, dtype={data.dtype}}}"


def _leaf_text(var):
    if var.name is not None:
        return var.name
    if isinstance(var, Constant):
        return _format_array(np.asarray(var.data))
    return str(var)


def _tokens(var):
    """The text of ``var`` one level deep: strings and input variables."""
    node = var.owner
    op = node.op
    inputs = node.inputs
    formatter = _FORMATTERS.get(type(op)) or _FORMATTERS_BY_NAME.get(type(op).__name__)
    if formatter is not None:
        tokens = list(formatter(node, inputs))
    else:
        row = _scalar_row(op)
        symbol = row.symbol if row is not None else None
        if symbol is not None and len(inputs) == 2:
            tokens = ["(", inputs[0], f" {symbol} ", inputs[1], ")"]
        elif symbol is not None and len(inputs) == 1:
            tokens = [f"({symbol}", inputs[0], ")"]
        elif row is not None and row.name.startswith("cast_"):
            tokens = ["cast(", inputs[0], f", {row.params[0]})"]
        else:
            tokens = [_op_function_name(op), "("]
            for k, inp in enumerate(inputs):
                if k:
                    tokens.append(", ")
                tokens.append(inp)
            params = [] if "{" in op.name else _op_params(op)  # Fused{...} names its own
            if params:
                tokens.append(", " if inputs else "")
                tokens.append(", ".join(params))
            tokens.append(")")
    if len(node.outputs) > 1:
        tokens.append(f"[{var.index}]")
    return tokens


# ------------------------------------------------------------------------ pp
_BIND_MIN_CHARS = 24


def pp(var):
    """Readable infix text of the expression computing ``var``.

    ``tg.pp(x + y)`` is ``'(x + y)'``; other ops print in function-call style
    (``exp(x)``, ``sum(x, axis=0)``), constants as their values, leaves by
    name. When writing the graph out as one expression would repeat shared
    subexpressions so much that the text grows far beyond the graph (typical
    of gradients of deep graphs), large shared subexpressions are bound to
    names ``%1, %2, ...`` listed on the lines before the final expression.
    A list of variables prints one expression per line.
    """
    if isinstance(var, (list, tuple)):
        return "\n".join(pp(v) for v in var)
    if not isinstance(var, Variable):
        raise TypeError(f"pp: expected a symbolic variable, got {type(var).__name__}")
    if var.owner is None:
        return _leaf_text(var)

    nodes = toposort([var])
    tokens = {}
    uses = {}
    for node in nodes:
        for out in node.outputs:
            tokens[out] = _tokens(out)
        for inp in node.inputs:
            uses[inp] = uses.get(inp, 0) + 1
    size, graph_size = _expanded_sizes(nodes, tokens)
    bound = {}
    if size[var] > 4 * graph_size + 200:
        bound = _bind_shared(nodes, tokens, uses, var)
    lines = [f"{name} = {_emit(v, tokens, bound, top=v)}" for v, name in bound.items()]
    lines.append(_emit(var, tokens, bound))
    return "\n".join(lines)


def _own_size(tokens, v):
    """The length of ``v``'s own text, without its inputs'."""
    return sum(len(t) for t in tokens[v] if isinstance(t, str))


def _expanded_sizes(nodes, tokens):
    """The length of each output's full expansion (capped, so that
    exponential blow-ups stay cheap), and the total of the own lengths."""
    cap = 10 ** 9
    size = {}
    graph_size = 0
    for node in nodes:
        for out in node.outputs:
            own = _own_size(tokens, out)
            graph_size += own
            size[out] = min(cap, own + sum(size.get(t, len(_leaf_text(t)))
                                           for t in tokens[out] if isinstance(t, Variable)))
    return size, graph_size


def _bind_shared(nodes, tokens, uses, var):
    """Names ``%1, %2, ...`` for the large subexpressions of ``var`` used
    more than once, bound bottom-up so each later size sees the names."""
    bound = {}
    eff = {}
    for node in nodes:
        for out in node.outputs:
            if out not in uses and out is not var:  # an unused sibling output
                continue
            s = _own_size(tokens, out) + sum(eff.get(t, len(_leaf_text(t)))
                                             for t in tokens[out] if isinstance(t, Variable))
            if out is not var and uses.get(out, 0) > 1 and s > _BIND_MIN_CHARS:
                bound[out] = f"%{len(bound) + 1}"
                s = len(bound[out])
            eff[out] = s
    return bound


def _emit(root, tokens, bound, top=None):
    """Expand ``root`` into text with an explicit stack (no recursion)."""
    out = []
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif item in bound and item is not top:
            out.append(bound[item])
        elif item.owner is None or item not in tokens:
            out.append(_leaf_text(item))
        else:
            stack.extend(reversed(tokens[item]))
            if item is top:
                top = None
    return "".join(out)


# ---------------------------------------------------------------- debugprint
def _roots(obj):
    """The output variables to print for a variable, Apply, function or list."""
    items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    roots = []
    for item in items:
        if isinstance(item, Variable):
            roots.append(item)
        elif isinstance(item, Apply):
            roots.extend(item.outputs)
        elif hasattr(item, "maker") and hasattr(item.maker, "fgraph"):
            roots.extend(item.maker.fgraph.outputs)
        elif hasattr(item, "outputs") and isinstance(item.outputs, (list, tuple)):
            roots.extend(item.outputs)
        else:
            raise TypeError(f"cannot print {type(item).__name__}: give a variable, an "
                            "Apply, a compiled function or a list of them")
    return roots


def _id_string(k):
    """Theano-style ids: A..Z, BA..BZ, CA... (base 26, letters as digits)."""
    digits = []
    while True:
        digits.append(chr(ord("A") + k % 26))
        k //= 26
        if k == 0:
            break
    return "".join(reversed(digits))


def _debug_label(op):
    row = _scalar_row(op)
    if row is not None:
        return f"Elemwise{{{row.name}}}"
    if "{" in op.name:  # the op already names its parameters (Subtensor{1:})
        return op.name
    params = _op_params(op)
    return f"{op.name}{{{','.join(params)}}}" if params else op.name


def debugprint(obj, file=None, depth=-1, print_type=True, max_indent=40):
    """Print the graph of ``obj`` as an indented tree, one line per variable.

    ``obj`` is a variable, an ``Apply``, a compiled function (its optimized
    graph ``f.maker.fgraph`` is printed) or a list of those. Each line shows
    the op (``Elemwise{add}``), an id (``[id A]``), the type and the name::

        Elemwise{add} [id A] <TensorType(float64, shape=())> 'z'
         |x [id B] <TensorType(float64, shape=())>
         |y [id C] <TensorType(float64, shape=())>

    A subtree used more than once is printed the first time and afterwards
    only referred to by its id. ``depth`` (``-1``: no limit) cuts the tree;
    subtrees deeper than ``max_indent`` levels are printed as separate trees
    below (``...`` marks where they continue), so deep graphs print in
    linear space. ``file``: ``None`` writes to ``sys.stdout``, ``'str'``
    returns the text, anything else with ``write`` receives it. Returns the
    text for ``'str'``, else the file written to.
    """
    roots = _roots(obj)
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

    pending = list(roots)
    while pending:
        root = pending.pop(0)
        stack = [(root, 0)]
        while stack:
            var, level = stack.pop()
            line = " |" * level + head(var)
            node = var.owner
            if node is None or node in expanded or (0 <= depth <= level):
                lines.append(line)
                continue
            if level >= max_indent and var is not root:
                lines.append(line + " ...")
                if node not in deferred:
                    deferred.add(node)
                    pending.append(var)
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


# ------------------------------------------------------------------- to_dot
def _dot_quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _type_text(var):
    t = var.type
    shape = t.shape_str() if hasattr(t, "shape_str") else ""
    return f"{getattr(t, 'dtype', t)} {shape}".strip()


def to_dot(obj, file=None):
    """Graphviz DOT text of the graph of ``obj`` (variable, function or list).

    Ops are boxes, graph inputs ellipses, constants dashed boxes and outputs
    blue ellipses; an edge into an op with several inputs is labelled with the
    input's position. ``file`` ending in ``.dot``/``.gv`` receives the text;
    another extension (``'g.png'``, ``'g.svg'``, ``'g.pdf'``) is rendered with
    the Graphviz ``dot`` program, and ``RuntimeError`` is raised when Graphviz
    is not installed. Always returns the DOT text.
    """
    roots = _roots(obj)
    names = {}

    def node_id(key):
        if key not in names:
            names[key] = f"n{len(names)}"
        return names[key]

    lines = ["digraph tracegrad {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
    leaves = []
    seen_leaves = set()
    for node in toposort(roots):
        label = _dot_quote(f"{_debug_label(node.op)}")
        lines.append(f"  {node_id(node)} [label={label}, shape=box];")
        for k, inp in enumerate(node.inputs):
            src = inp.owner if inp.owner is not None else inp
            if inp.owner is None and inp not in seen_leaves:
                seen_leaves.add(inp)
                leaves.append(inp)
            attrs = [f"label={_dot_quote(k)}"] if len(node.inputs) > 1 else []
            attrs.append(f"tooltip={_dot_quote(_type_text(inp))}")
            lines.append(f"  {node_id(src)} -> {node_id(node)} [{', '.join(attrs)}];")
    for leaf in leaves + [r for r in roots if r.owner is None and r not in seen_leaves]:
        text = f"{_leaf_text(leaf)}\n{_type_text(leaf)}"
        style = "shape=box, style=dashed" if isinstance(leaf, Constant) \
            else "shape=ellipse, style=filled, fillcolor=lightgreen"
        lines.append(f"  {node_id(leaf)} [label={_dot_quote(text)}, {style}];")
    for k, out in enumerate(roots):
        name = out.name if out.name is not None else f"output {k}"
        oid = f"out{k}"
        lines.append(f"  {oid} [label={_dot_quote(name + chr(10) + _type_text(out))}, "
                     "shape=ellipse, style=filled, fillcolor=lightblue];")
        src = out.owner if out.owner is not None else out
        lines.append(f"  {node_id(src)} -> {oid};")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if file is not None:
        _write_dot(text, str(file))
    return text


def _write_dot(text, path):
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext in ("dot", "gv"):
        with open(path, "w") as f:
            f.write(text)
        return
    if not ext:
        raise ValueError(f"to_dot: cannot tell the format of {path!r}; use a name ending "
                         "in .dot, .png, .svg or .pdf")
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(
            f"to_dot: rendering {path!r} needs Graphviz (the 'dot' program), which is not "
            "installed; install Graphviz (e.g. apt-get install graphviz), or write DOT "
            "text with file='graph.dot' (to_dot(...) without file returns the text)")
    result = subprocess.run([program, f"-T{ext}", "-o", path], input=text.encode(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"to_dot: Graphviz failed to render {path!r}: "
                           f"{result.stderr.decode(errors='replace').strip()}")


# --------------------------------------------------------------- Print (Theano)
pprint = pp   # Theano's spelling: ``theano.printing.pprint(var)``


def _print_fn(op, value):
    """Theano's default ``global_fn``: print each of ``op.attrs`` of the value."""
    for attr in op.attrs:
        found = getattr(value, attr)
        print(op.message, attr, "=", found() if callable(found) else found)


class Print(Op):
    """Theano's ``Print``: an identity op that prints its input's value each
    time a compiled function computes it.

    ``Print('x is')(x)`` returns a variable equal to ``x``; when it is
    computed, ``print('x is', '__str__', '=', str(value))`` runs. ``attrs``
    names the value's attributes (or methods, called) to print, e.g.
    ``('shape', 'sum')``; ``global_fn(op, value)`` replaces the printing.
    The gradient passes through unchanged; the op is never constant-folded,
    so a Print of a constant still prints at run time.
    """
    __props__ = ("message", "attrs", "global_fn")
    view_map = {0: [0]}
    constant_foldable = False

    def __init__(self, message="", attrs=("__str__",), global_fn=_print_fn):
        self.message = message
        self.attrs = tuple(attrs)
        self.global_fn = global_fn

    def make_node(self, x):
        if not isinstance(x, Variable):
            raise TypeError(f"Print: expected a symbolic variable, got {type(x).__name__} "
                            "(wrap it with tracegrad.tensor.as_tensor_variable)")
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        self.global_fn(self, x)
        return x

    def vjp(self, node, output_grads):
        return [output_grads[0]]
