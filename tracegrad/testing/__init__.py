"""Testing helpers for users and for tracegrad itself: ``verify_grad`` and
Hypothesis ``strategies``."""
from tracegrad.testing.gradcheck import verify_grad  # noqa: F401
