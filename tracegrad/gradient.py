"""Theano's ``theano.gradient`` module path: ``grad``, ``jacobian``,
``hessian``, ``Lop``, ``Rop`` on symbolic variables, ``verify_grad`` and
``DisconnectedInputError``, so ``theano.gradient.jacobian(y, x)`` ports
unchanged (``tg.jacobian`` also takes Python callables, JAX style)."""
from tracegrad.grad import DisconnectedInputError, Lop, Rop, grad, hessian, jacobian
from tracegrad.testing.gradcheck import verify_grad

__all__ = ["grad", "jacobian", "hessian", "Lop", "Rop", "verify_grad",
           "DisconnectedInputError"]
