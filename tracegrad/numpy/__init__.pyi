"""Type information for ``tracegrad.numpy`` (read by mypy and pyright).

Its names are NumPy's, made on first use (see the module): each answers
traced values with a symbolic result and anything else with NumPy's own,
so every name is ``Any`` to a type checker.
"""
from typing import Any

from tracegrad.numpy import fft as fft
from tracegrad.numpy import linalg as linalg
from tracegrad.numpy import random as random

def __getattr__(name: str) -> Any: ...
