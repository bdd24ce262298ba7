"""Theano's ``theano.d3viz``: ``d3viz(fct, outfile)`` writes the graph as an
interactive HTML page, ``d3write(fct, path)`` as DOT text (see
``tracegrad.printing.d3viz``; no Graphviz, pydot or d3.js files needed)."""
from tracegrad.printing.d3viz import d3viz, d3write, graph_data

__all__ = ["d3viz", "d3write", "graph_data"]
