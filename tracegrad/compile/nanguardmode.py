"""Theano's module path ``theano.compile.nanguardmode``: ``NanGuardMode``."""
from tracegrad.compile.mode import NanGuardMode

__all__ = ["NanGuardMode"]
