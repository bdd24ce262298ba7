"""``to_dot`` (Graphviz DOT text of a graph) and ``pydotprint`` (the picture,
rendered by Graphviz when it is installed)."""
import os
import shutil
import subprocess

from tracegrad.printing.debug import _roots_and_updates, update_label
from tracegrad.printing.labels import _debug_label, _format_array, _leaf_text
from tracegrad.trace import Constant, toposort

# The formats the ``dot`` program writes that pydotprint accepts by name.
FORMATS = ("png", "svg", "pdf", "ps", "jpg", "jpeg", "gif", "dot")

_INSTALL_HINT = (
    "install Graphviz (the 'dot' program): 'apt-get install graphviz' (Debian/Ubuntu), "
    "'brew install graphviz' (macOS), 'conda install graphviz', or the installer from "
    "https://graphviz.org/download/ (pip install graphviz alone is not enough: it "
    "needs the program)")


def _dot_quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _type_text(var):
    t = var.type
    shape = t.shape_str() if hasattr(t, "shape_str") else ""
    return f"{getattr(t, 'dtype', t)} {shape}".strip()


def _fusion_spec(op):
    """The ``FusionSpec`` of a fused op (found by its attributes, so that
    printing imports no fusion module), or ``None``."""
    spec = getattr(op, "spec", None)
    return spec if hasattr(spec, "instrs") and hasattr(spec, "outputs") else None


class _DotWriter:
    """Assigns node ids and collects the lines of the DOT text."""

    def __init__(self):
        self.names = {}
        self.lines = ["digraph tracegrad {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
        self.leaves = []
        self.seen_leaves = set()

    def node_id(self, key):
        if key not in self.names:
            self.names[key] = f"n{len(self.names)}"
        return self.names[key]

    def source(self, var):
        """The DOT node an edge carrying ``var`` starts from."""
        node = var.owner
        if node is None:
            if var not in self.seen_leaves:
                self.seen_leaves.add(var)
                self.leaves.append(var)
            return self.node_id(var)
        spec = _fusion_spec(node.op)
        if spec is not None:
            return f"{self.node_id(node)}_t{spec.outputs[var.index]}"
        return self.node_id(node)

    def edge(self, var, target, position=None):
        attrs = [] if position is None else [f"label={_dot_quote(position)}"]
        attrs.append(f"tooltip={_dot_quote(_type_text(var))}")
        self.lines.append(f"  {self.source(var)} -> {target} [{', '.join(attrs)}];")

    def op_node(self, node):
        nid = self.node_id(node)
        self.lines.append(f"  {nid} [label={_dot_quote(_debug_label(node.op))}, shape=box];")
        for k, inp in enumerate(node.inputs):
            self.edge(inp, nid, k if len(node.inputs) > 1 else None)

    def fused_cluster(self, node, spec):
        """A fused op as a box (``subgraph cluster_…``) holding its steps."""
        nid = self.node_id(node)
        self.lines.append(f"  subgraph cluster_{nid} {{")
        self.lines.append(f"    label={_dot_quote(_debug_label(node.op))}; "
                          'style="rounded,filled"; fillcolor="#eef2ff"; color="#4455aa";')
        for j, instr in enumerate(spec.instrs):
            name = getattr(instr.row, "name", str(instr.row))
            self.lines.append(f"    {nid}_t{j} [label={_dot_quote(name)}, shape=box];")
        for k, value in enumerate(spec.constants):
            self.lines.append(f"    {nid}_c{k} [label={_dot_quote(_format_array(value))}, "
                              "shape=box, style=dashed];")
        self.lines.append("  }")
        for j, instr in enumerate(spec.instrs):
            target = f"{nid}_t{j}"
            several = len(instr.args) > 1
            for pos, (kind, k) in enumerate(instr.args):
                if kind == "i":
                    self.edge(node.inputs[k], target, pos if several else None)
                    continue
                src = f"{nid}_t{k}" if kind == "t" else f"{nid}_c{k}"
                label = f" [label={_dot_quote(pos)}]" if several else ""
                self.lines.append(f"  {src} -> {target}{label};")

    def output(self, k, out, update):
        oid = f"out{k}"
        if update is None:
            name = out.name if out.name is not None else f"output {k}"
            color = "lightblue"
        else:
            name = update_label(*update).replace(" (", "\n(")
            color = "orange"
        self.lines.append(f"  {oid} [label={_dot_quote(name + chr(10) + _type_text(out))}, "
                          f"shape=ellipse, style=filled, fillcolor={color}];")
        self.lines.append(f"  {self.source(out)} -> {oid};")
        if update is not None:
            shared = update[0]
            self.lines.append(f"  {oid} -> {self.source(shared)} "
                              '[style=dashed, color=orange, label="writes", constraint=false];')

    def leaf_lines(self):
        for leaf in self.leaves:
            text = f"{_leaf_text(leaf)}\n{_type_text(leaf)}"
            style = "shape=box, style=dashed" if isinstance(leaf, Constant) \
                else "shape=ellipse, style=filled, fillcolor=lightgreen"
            self.lines.append(f"  {self.node_id(leaf)} [label={_dot_quote(text)}, {style}];")


def to_dot(obj, file=None):
    """Graphviz DOT text of the graph of ``obj`` (variable, function or list).

    Ops are boxes, graph inputs ellipses, constants dashed boxes and outputs
    blue ellipses; an edge into an op with several inputs is labelled with the
    input's position. A fused op is drawn as a box (a ``subgraph cluster``)
    around its elementwise steps. For a compiled function, the new value of
    each shared variable is an orange ellipse ``update of W (in place)`` or
    ``(copied)``, with a dashed ``writes`` edge to ``W``. ``file`` ending in
    ``.dot``/``.gv`` receives the text; another extension (``'g.png'``,
    ``'g.svg'``, ``'g.pdf'``) is rendered with Graphviz (see ``pydotprint``;
    ``RuntimeError`` saying how to install it when it is missing). Always
    returns the DOT text.
    """
    roots, updates = _roots_and_updates(obj)
    writer = _DotWriter()
    for node in toposort(roots):
        spec = _fusion_spec(node.op)
        if spec is None:
            writer.op_node(node)
        else:
            writer.fused_cluster(node, spec)
    for k, out in enumerate(roots):
        writer.source(out)  # (an output that is an input is a leaf too)
        writer.output(k, out, updates.get(k))
    writer.leaf_lines()
    writer.lines.append("}")
    text = "\n".join(writer.lines) + "\n"
    if file is not None:
        path = str(file)
        ext = path.rsplit(".", 1)[-1].lower() if "." in os.path.basename(path) else ""
        if not ext:
            raise ValueError(f"to_dot: cannot tell the format of {path!r}; use a name ending "
                             "in .dot, .png, .svg or .pdf")
        _render(text, path, "dot" if ext == "gv" else ext, "to_dot")
    return text


def pydotprint(obj, outfile=None, format="png"):
    """Draw the graph of ``obj`` (a compiled function, a variable or a list
    of them) to ``outfile`` in ``format`` (``'png'``, ``'svg'``, ``'pdf'``,
    ...; ``'dot'`` writes the DOT text) and return the file's path.

    Theano's ``theano.printing.pydotprint``. The picture is ``to_dot``'s:
    fused ops are boxes around their steps, and updates say which shared
    variable they write and how. ``outfile`` defaults to
    ``'tracegrad_graph.<format>'``. Rendering uses Graphviz's ``dot``
    program (on ``PATH``, or found by the ``graphviz`` Python package when
    that is installed); without it a ``RuntimeError`` says how to install
    it (the DOT text is still available from ``to_dot``).
    """
    if format not in FORMATS:
        raise ValueError(f"pydotprint: format must be one of {', '.join(FORMATS)}, "
                         f"got {format!r}")
    path = str(outfile) if outfile is not None else f"tracegrad_graph.{format}"
    _render(to_dot(obj), path, format, "pydotprint")
    return path


def _render(text, path, fmt, who):
    """Write ``text`` to ``path`` as DOT (``fmt='dot'``) or rendered by Graphviz."""
    if fmt == "dot":
        with open(path, "w") as f:
            f.write(text)
        return
    program = shutil.which("dot")
    if program is not None:
        result = subprocess.run([program, f"-T{fmt}", "-o", path], input=text.encode(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise RuntimeError(f"{who}: Graphviz failed to render {path!r}: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return
    if _render_with_package(text, path, fmt):
        return
    raise RuntimeError(
        f"{who}: rendering {path!r} needs Graphviz, which is not installed; {_INSTALL_HINT}. "
        "Or write DOT text with a file name ending in .dot (to_dot(...) without "
        "file returns the text)")


def _render_with_package(text, path, fmt):
    """Render through the ``graphviz`` Python package when it is installed
    and finds the program where ``PATH`` does not; ``False`` otherwise."""
    try:
        import graphviz
    except ImportError:
        return False
    try:
        data = graphviz.Source(text).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        return False
    with open(path, "wb") as f:
        f.write(data)
    return True
