"""``tracegrad.scipy``: SciPy's names over tracegrad ops (issue 16).

``tracegrad.scipy.special`` holds ``scipy.special``'s functions; each takes
symbolic (traced) values and falls through to SciPy itself for plain arrays.
SciPy is optional: only the fall-through and most forwards need it.
"""
from tracegrad.scipy import special  # noqa: F401

__all__ = ["special"]
