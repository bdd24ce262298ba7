"""Pickling a ``FunctionGraph`` as a flat list of nodes.

Pickling variables directly would recurse through ``owner`` and ``inputs``
once per node (deep graphs exceed Python's recursion limit). Instead the
graph is written as its leaves (inputs, shared variables, constants: no
owner, so they pickle shallowly) plus one record per node in run order, each
naming its inputs by number.
"""
from tracegrad.compile.fgraph import FunctionGraph
from tracegrad.trace import Apply, Variable


def graph_state(fgraph):
    """A picklable description of ``fgraph`` (see the module doc)."""
    inputs = set(fgraph.inputs)
    others = [v for v in fgraph.variables if v.owner is None and v not in inputs]
    leaves = list(fgraph.inputs) + sorted(others, key=str)
    index = {var: k for k, var in enumerate(leaves)}
    nodes = []
    for node in fgraph.toposort():
        outputs = []
        for out in node.outputs:
            index[out] = len(index)
            outputs.append((type(out), out.type, out.name, out.tag))
        nodes.append((node.op, [index[i] for i in node.inputs], outputs, node.source))
    return {
        "leaves": leaves,
        "n_inputs": len(fgraph.inputs),
        "nodes": nodes,
        "outputs": [index[o] for o in fgraph.outputs],
        "update_targets": list(fgraph.update_targets),
    }


def _new_variable(cls, vtype, name, tag):
    var = cls.__new__(cls)
    Variable.__init__(var, vtype, None, None, name)
    var.tag = tag
    return var


def rebuild_graph(state):
    """The ``FunctionGraph`` described by ``graph_state``."""
    table = list(state["leaves"])
    for op, input_ids, outputs, source in state["nodes"]:
        node = Apply.__new__(Apply)
        new_outputs = [_new_variable(*spec) for spec in outputs]
        Apply.__init__(node, op, [table[i] for i in input_ids], new_outputs, source=source)
        table.extend(new_outputs)
    inputs = table[:state["n_inputs"]]
    outputs = [table[i] for i in state["outputs"]]
    return FunctionGraph(inputs, outputs, state["update_targets"], clone=False)
