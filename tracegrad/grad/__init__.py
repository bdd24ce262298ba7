"""Symbolic differentiation: ``grad``, ``jacobian``, ``hessian``, ``Lop``, ``Rop``."""
from tracegrad.grad.reverse import DisconnectedInputError, grad  # noqa: F401
from tracegrad.grad.forward import Lop, Rop, hessian, jacobian  # noqa: F401
