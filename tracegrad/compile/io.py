"""Theano's ``theano.compile.io`` path: ``In`` and ``Out``."""
from tracegrad.compile.inputs import In, Out, Param

__all__ = ["In", "Out", "Param"]
