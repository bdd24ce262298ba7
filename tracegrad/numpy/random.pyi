"""Type information for ``tracegrad.numpy.random``: ``numpy.random``'s names, made
on first use, each ``Any`` to a type checker (see tracegrad/numpy/__init__.pyi)."""
from typing import Any

def __getattr__(name: str) -> Any: ...
