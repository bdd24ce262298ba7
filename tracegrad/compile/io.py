"""Theano's ``theano.compile.io`` path: ``In`` and ``Out``."""
from tracegrad.compile.inputs import In, Out

__all__ = ["In", "Out"]
