"""Loops: ``scan`` and ``until`` (Theano's API), the ``Scan`` op, its
gradient (a reverse scan) and the rewrite that keeps only the last rows of
buffers whose history is never read."""
from tracegrad.scan.build import scan, until  # noqa: F401
from tracegrad.scan.checkpoints import scan_checkpoints  # noqa: F401
from tracegrad.scan.op import Scan, ScanSpec  # noqa: F401
from tracegrad.scan.views import foldl, foldr, map, reduce  # noqa: F401

__all__ = ["scan", "until", "scan_checkpoints", "Scan", "ScanSpec", "map", "reduce", "foldl",
           "foldr"]

from tracegrad.scan import memory  # noqa: F401,E402  (registers the rewrite)
