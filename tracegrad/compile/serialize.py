"""Where pickles of a ``FunctionGraph`` find their loader.

The code lives in ``tracegrad/fgraph.py`` (next to the class, so neither module
imports the other); the names stay here for pickles that refer to them.
"""
from tracegrad.compile.fgraph import graph_state, rebuild_graph

__all__ = ["graph_state", "rebuild_graph"]
