"""Gradient rules of elementwise rows that take more than one expression
(``abs``, ``angle``, ``pow``) and ``match_gradient_dtype``.

They moved next to the rows they use (``ops.elemwise``; ``match_gradient_dtype``
to ``ops.base``) so that the ops import one another without a cycle; this
module keeps the old import path.
"""
from tracegrad.ops.base import match_gradient_dtype  # noqa: F401
from tracegrad.ops.elemwise import (abs_grad, angle_grad, pow_grad_base,  # noqa: F401
                                    pow_grad_exponent)
