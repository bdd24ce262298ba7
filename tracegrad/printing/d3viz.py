"""``d3viz``: a graph as an interactive HTML page (Theano's ``theano.d3viz``).

Theano's ``d3viz`` laid the graph out with Graphviz (through ``pydot``) and
drew it with d3.js files copied next to the page. This one needs neither:
the page is one self-contained file — the graph as JSON, a small layered
layout written for it (longest-path layers, barycentric ordering within a
layer) and an SVG view with pan (drag), zoom (wheel), the type and details
of each node on hover, and the steps of a fused op, or any node's details,
in a side panel on click. Nothing is fetched from the network.

``graph_data(obj)`` gives the JSON-ready description (also what the tests
read); ``d3write`` writes the graph's DOT text as Theano's did.
"""
import html
import json
import os

from tracegrad.printing.debug import _node_label, _roots_and_updates, update_label
from tracegrad.printing.dot import _fusion_spec, _type_text, to_dot
from tracegrad.printing.labels import _format_array, _leaf_text
from tracegrad.trace import Constant, toposort

_HERE = os.path.dirname(os.path.abspath(__file__))


class _Graph:
    """Collects the nodes and edges of ``graph_data``."""

    def __init__(self):
        self.ids = {}
        self.nodes = []
        self.edges = []

    def node_id(self, key):
        return self.ids.get(key)

    def add_node(self, key, label, kind, detail, steps=None):
        nid = f"n{len(self.nodes)}"
        self.ids[key] = nid
        entry = {"id": nid, "label": label, "kind": kind, "detail": detail}
        if steps is not None:
            entry["steps"] = steps
        self.nodes.append(entry)
        return nid

    def source(self, var):
        """The node an edge carrying ``var`` starts from (leaves added on
        first use)."""
        key = var.owner if var.owner is not None else var
        nid = self.ids.get(key)
        if nid is None:
            nid = self._leaf(var)
        return nid

    def _leaf(self, var):
        if isinstance(var, Constant):
            return self.add_node(var, _leaf_text(var), "constant",
                                 f"constant {_leaf_text(var)}\n{_type_text(var)}")
        kind = "shared" if hasattr(var, "get_value") else "input"
        name = var.name if var.name is not None else "<input>"
        return self.add_node(var, name, kind, f"{kind} {name}\n{_type_text(var)}")

    def edge(self, var, target, position=None, kind="data"):
        entry = {"source": self.source(var), "target": target, "kind": kind,
                 "type": _type_text(var)}
        if position is not None:
            entry["label"] = str(position)
        self.edges.append(entry)

    def apply_node(self, node):
        label = _node_label(node)
        lines = [label, f"{len(node.inputs)} input(s), {len(node.outputs)} output(s)"]
        lines += [f"output {k}: {_type_text(out)}" + (f" '{out.name}'" if out.name else "")
                  for k, out in enumerate(node.outputs)]
        spec = _fusion_spec(node.op)
        steps = _fused_steps(spec) if spec is not None else None
        nid = self.add_node(node, label, "apply" if spec is None else "fused",
                            "\n".join(lines), steps)
        several = len(node.inputs) > 1
        for k, inp in enumerate(node.inputs):
            self.edge(inp, nid, k if several else None)

    def output(self, k, out, update):
        if update is None:
            name = out.name if out.name is not None else f"output {k}"
            nid = self.add_node(("out", k), name, "output", f"{name}\n{_type_text(out)}")
        else:
            name = update_label(*update)
            nid = self.add_node(("out", k), name, "update", f"{name}\n{_type_text(out)}")
        self.edge(out, nid)
        if update is not None:
            self.edges.append({"source": nid, "target": self.source(update[0]),
                               "kind": "writes", "type": _type_text(out)})


def _fused_steps(spec):
    """The scalar program of a fused op, one line per step:
    ``t2 = mul(i0, t1)`` (``i``: the op's inputs, ``t``: earlier steps,
    ``c``: constants), the outputs last."""
    lines = []
    for j, instr in enumerate(spec.instrs):
        name = getattr(instr.row, "name", str(instr.row))
        args = ", ".join(f"{kind}{k}" for kind, k in instr.args)
        lines.append(f"t{j} = {name}({args})")
    lines += [f"c{k} = {_format_array(value)}" for k, value in enumerate(spec.constants)]
    lines.append("outputs: " + ", ".join(f"t{t}" for t in spec.outputs))
    return lines


def graph_data(obj):
    """The graph of ``obj`` (a compiled function, a variable, an ``Apply``
    or a list of them) as ``{"nodes": [...], "edges": [...]}``.

    A node is ``{"id", "label", "kind", "detail"}`` with ``kind`` one of
    ``input``, ``shared``, ``constant``, ``apply``, ``fused`` (with
    ``steps``: its scalar program), ``output`` and ``update`` (the new value
    of a compiled function's shared variable, with a ``writes`` edge to it).
    An edge is ``{"source", "target", "kind", "type"}`` (``kind`` ``data``
    or ``writes``), labelled with the input position where an op has
    several inputs.
    """
    roots, updates = _roots_and_updates(obj)
    graph = _Graph()
    for node in toposort(roots):
        graph.apply_node(node)
    for k, out in enumerate(roots):
        graph.output(k, out, updates.get(k))
    return {"nodes": graph.nodes, "edges": graph.edges}


def _template(name):
    with open(os.path.join(_HERE, "d3viz_static", name), encoding="utf-8") as f:
        return f.read()


def d3viz(fct, outfile, copy_deps=True, title=None):
    """Write the graph of ``fct`` (a compiled function, a variable or a list
    of them) to the HTML file ``outfile`` and return its path.

    Open the file in a browser: drag to pan, the wheel zooms, hovering a
    node shows its type, a click shows its details (a fused op: its steps)
    in the side panel. The page is self-contained, so ``copy_deps`` (Theano
    copied its d3.js files next to the page) is accepted and does nothing.
    Folders on the way to ``outfile`` are created.
    """
    del copy_deps  # (nothing to copy: the page embeds its script)
    data = graph_data(fct)
    title = title if title is not None else getattr(fct, "name", None) or "tracegrad graph"
    page = _template("page.html")
    page = page.replace("{{title}}", html.escape(str(title)))
    page = page.replace("{{layout}}", _template("layout.js"))
    page = page.replace("{{view}}", _template("view.js"))
    # (inside a <script> element "</" must not appear: JSON escapes it)
    page = page.replace("{{data}}", json.dumps(data).replace("</", "<\\/"))
    path = str(outfile)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def d3write(fct, path, *args, **kwargs):
    """Write the graph of ``fct`` as DOT text to ``path`` (Theano's
    ``d3write`` wrote pydot's DOT file); returns the path."""
    if args or kwargs:
        raise TypeError("d3write(fct, path) takes no options: tracegrad writes to_dot's DOT text")
    with open(str(path), "w", encoding="utf-8") as f:
        f.write(to_dot(fct))
    return str(path)
