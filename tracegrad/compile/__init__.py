"""Compiled functions: ``tg.function``, ``In``, ``Out``, ``Mode``.

Modules, one stage each: ``inputs`` (In/Out, argument binding), ``casting``
(value -> array rules), ``updates`` (updates, givens, default updates),
``fgraph`` (the mutable ``FunctionGraph`` passes work on), ``pipeline``
(clone -> rewrite -> fuse -> plan in-place), ``schedule`` (flat steps over a
list storage, aliasing decisions), ``runtime`` (the callable ``Function``),
``profile``, ``serialize`` (pickling graphs flat).
"""
from tracegrad.compile.fgraph import FunctionGraph, MissingInputError  # noqa: F401
from tracegrad.compile.function import FunctionMaker, UnusedInputError, function  # noqa: F401
from tracegrad.compile.inputs import In, Out  # noqa: F401
from tracegrad.compile.mode import Mode  # noqa: F401
from tracegrad.compile.mode import MonitorMode, NanGuardMode  # noqa: F401
from tracegrad.compile.debugmode import DebugMode  # noqa: F401
# Theano's module paths reached as attributes (``theano.compile.io.In``...)
from tracegrad.compile import (debugmode, function_module, io, monitormode,  # noqa: F401,E402
                               nanguardmode, ops)
from tracegrad.compile.profile import ProfileStats  # noqa: F401
from tracegrad.compile.runtime import Function  # noqa: F401
# Theano's theano.compile.shared / SharedVariable / as_op / get_mode
from tracegrad.shared import SharedVariable, shared  # noqa: F401,E402
from tracegrad.compile.ops import as_op  # noqa: F401,E402
from tracegrad.compile.modes import get_mode  # noqa: F401,E402
from tracegrad.scan.body import set_body_compiler

# Scan bodies compile with ``function``: ``scan`` sits below ``compile``, so
# it is handed over here instead of imported there.
set_body_compiler(function)

__all__ = ["function", "In", "Out", "Function", "FunctionMaker", "FunctionGraph",
           "MissingInputError", "UnusedInputError", "ProfileStats", "Mode",
           "MonitorMode", "NanGuardMode", "DebugMode"]
