"""Theano's module path ``theano.compile.monitormode``: ``MonitorMode``."""
from tracegrad.compile.mode import MonitorMode

__all__ = ["MonitorMode"]
