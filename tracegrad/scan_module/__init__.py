"""Theano's ``theano.scan_module`` path: ``scan``, ``until``, the views
(``map``, ``reduce``, ``foldl``, ``foldr``) and ``scan_checkpoints``."""
from tracegrad.scan import foldl, foldr, map, reduce, scan, scan_checkpoints, until

__all__ = ["scan", "until", "map", "reduce", "foldl", "foldr", "scan_checkpoints"]
