"""Pickling a ``FunctionGraph``: its nodes as one flat list, then its ends.

``graph_state`` lists every node in run order first (``trace_pickle``'s
prelude: each node saved shallowly, after the nodes it reads), so the inputs,
outputs and update targets that follow are short references and the pickler
never recurses along the graph. Variables keep their identity: a variable of
the graph pickled next to it loads as the same object.
"""
from tracegrad.compile.fgraph import FunctionGraph
from tracegrad.trace import Apply, Variable
from tracegrad.trace_pickle import graph_prelude


def graph_state(fgraph):
    """A picklable description of ``fgraph`` (see the module doc)."""
    return (graph_prelude(fgraph.outputs), list(fgraph.inputs), list(fgraph.outputs),
            list(fgraph.update_targets))


def rebuild_graph(state):
    """The ``FunctionGraph`` described by ``graph_state``."""
    if isinstance(state, dict):
        return _rebuild_numbered(state)
    _nodes, inputs, outputs, update_targets = state
    return FunctionGraph(inputs, outputs, update_targets, clone=False)


def _rebuild_numbered(state):
    # The format of older pickles: leaves, then per node its op, its inputs
    # by number and its outputs' (class, type, name, tag).
    table = list(state["leaves"])
    for op, input_ids, outputs, source in state["nodes"]:
        new_outputs = []
        for cls, vtype, name, tag in outputs:
            var = cls.__new__(cls)
            Variable.__init__(var, vtype, None, None, name)
            var.tag = tag
            new_outputs.append(var)
        Apply(op, [table[i] for i in input_ids], new_outputs, source=source)
        table.extend(new_outputs)
    outputs = [table[i] for i in state["outputs"]]
    return FunctionGraph(table[:state["n_inputs"]], outputs, state["update_targets"],
                         clone=False)
