"""Theano's ``theano.scan_module`` path: ``scan`` and ``until``."""
from tracegrad.scan import scan, until

__all__ = ["scan", "until"]
