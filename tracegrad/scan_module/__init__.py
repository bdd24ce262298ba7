"""Theano's ``theano.scan_module`` path: ``scan``, ``until``,
``scan_checkpoints`` and the views (``map``, ``reduce``, ``foldl``, ``foldr``)."""
from tracegrad.scan import foldl, foldr, map, reduce, scan, scan_checkpoints, until

__all__ = ["scan", "until", "scan_checkpoints", "map", "reduce", "foldl", "foldr"]
