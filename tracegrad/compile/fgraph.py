"""``FunctionGraph`` under its compile-layer name.

The class lives in ``tracegrad/fgraph.py`` (the trace layer), so the rewriter
works on the same graph object the compile passes do (see "ONE GRAPH" in
docs/ARCHITECTURE.md); the names stay importable here, pickles made before
the move included (they name ``tracegrad.compile.fgraph.rebuild_graph``).
"""
from tracegrad.fgraph import (FunctionGraph, MissingInputError,  # noqa: F401
                              graph_state, rebuild_graph)

__all__ = ["FunctionGraph", "MissingInputError", "graph_state", "rebuild_graph"]
