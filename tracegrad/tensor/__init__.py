"""``tracegrad.tensor`` (imported as ``T``): types, constructors and every op.

Each op module lists its public functions in ``__all__``; this namespace is
their union, so adding an op never touches this file.
"""
from tracegrad.tensor.type import *  # noqa: F401,F403
from tracegrad.tensor.type import TensorType, tensor  # noqa: F401
from tracegrad.tensor.variable import (TensorConstant, TensorVariable,  # noqa: F401
                                       as_tensor_variable, constant)
from tracegrad.ops.elemwise import *  # noqa: F401,F403
from tracegrad.ops.elemwise_numpy import *  # noqa: F401,F403
from tracegrad.ops.reduce import *  # noqa: F401,F403
from tracegrad.ops.shape_static import *  # noqa: F401,F403
from tracegrad.ops.alloc import *  # noqa: F401,F403
from tracegrad.ops.shape import *  # noqa: F401,F403
from tracegrad.ops.index import *  # noqa: F401,F403
from tracegrad.ops.linalg import *  # noqa: F401,F403
from tracegrad.ops.nnet import *  # noqa: F401,F403
from tracegrad.tensor import nnet  # noqa: F401,E402
from tracegrad.grad import grad, jacobian, hessian, Lop, Rop  # noqa: F401,E402

as_tensor = as_tensor_variable
