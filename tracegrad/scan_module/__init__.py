"""Theano's ``theano.scan_module`` path: ``scan``, ``until`` and
``scan_checkpoints``."""
from tracegrad.scan import scan, scan_checkpoints, until

__all__ = ["scan", "until", "scan_checkpoints"]
