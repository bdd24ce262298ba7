"""Testing helpers for users and for tracegrad itself.

- ``verify_grad``: symbolic gradients against finite differences;
- ``verify_rop``: Jacobian-vector products (``Rop``) against finite differences;
- ``strategies``: Hypothesis strategies (shapes, arrays, random expression
  graphs). Hypothesis is an optional dependency: the submodule is imported on
  first use, so ``import tracegrad.testing`` works without it.
"""
import importlib

from tracegrad.testing.gradcheck import verify_grad, verify_rop  # noqa: F401

__all__ = ["verify_grad", "verify_rop", "strategies"]


def __getattr__(name):
    if name == "strategies":
        return importlib.import_module("tracegrad.testing.strategies")
    raise AttributeError(f"module 'tracegrad.testing' has no attribute {name!r}")
