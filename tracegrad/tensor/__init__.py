"""``tracegrad.tensor`` (imported as ``T``): types, constructors and every op.

Each op module lists its public functions in ``__all__``; ``tracegrad.ops.api``
is their union and this namespace re-exports it (with the types, ``nnet`` and
the gradient functions), so adding an op never touches this file. The top
layer: nothing inside tracegrad imports it (docs/ARCHITECTURE.md, "Layers").
"""
from tracegrad.tensor.type import *  # noqa: F401,F403
from tracegrad.tensor.type import TensorType, tensor  # noqa: F401
from tracegrad.tensor.variable import (TensorConstant, TensorVariable,  # noqa: F401
                                       as_tensor_variable, constant)
from tracegrad.ops.api import *  # noqa: F401,F403
from tracegrad.tensor import nnet  # noqa: F401,E402
from tracegrad.tensor import nlinalg  # noqa: F401,E402
from tracegrad.tensor import fft  # noqa: F401,E402
from tracegrad.tensor import signal  # noqa: F401,E402
from tracegrad.tensor import extra_ops  # noqa: F401,E402
from tracegrad.tensor import slinalg  # noqa: F401,E402
from tracegrad.grad import Lop, Rop  # noqa: F401,E402
# the same objects as tg.grad, tg.jacobian, tg.hessian (callables too)
from tracegrad.transforms import grad, jacobian, hessian  # noqa: F401,E402

as_tensor = as_tensor_variable
# Theano's T.verify_grad (tracegrad.testing.verify_grad)
from tracegrad.testing.gradcheck import verify_grad  # noqa: F401,E402
# Theano's ``T.shared_randomstreams.RandomStreams`` (its scan tutorial spelling)
from tracegrad.tensor import shared_randomstreams  # noqa: F401,E402
