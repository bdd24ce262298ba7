"""Theano's module path ``theano.compile.function_module``: ``function``,
``Function``, ``FunctionMaker``, ``UnusedInputError`` (users catch it there)."""
from tracegrad.compile.function import FunctionMaker, UnusedInputError, function
from tracegrad.compile.runtime import Function

__all__ = ["function", "Function", "FunctionMaker", "UnusedInputError"]
