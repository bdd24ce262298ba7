"""tracegrad: a tracing autodiff framework over NumPy and CuPy arrays.

    import tracegrad as tg
    import tracegrad.tensor as T
    x = T.dscalar('x')
    f = tg.function([x], tg.grad(x ** 2, x))

Names imported ``as`` themselves are explicit re-exports for type checkers
(``mypy --strict`` treats a plain ``from m import f`` here as private).
"""
from tracegrad.config import config as config  # noqa: F401
from tracegrad import test_values  # noqa: F401  (config.compute_test_value)
from tracegrad.trace import Apply as Apply, Constant as Constant, Op as Op, Type as Type  # noqa: F401
from tracegrad.trace import Variable as Variable  # noqa: F401
from tracegrad import tensor as tensor  # noqa: F401
from tracegrad.tensor.type import TensorType as TensorType  # noqa: F401
from tracegrad.shared import SharedVariable as SharedVariable, shared as shared  # noqa: F401
from tracegrad.grad import Lop, Rop  # noqa: F401
from tracegrad.compile.inputs import In as In, Out as Out  # noqa: F401
from tracegrad.compile.function import function as function  # noqa: F401
from tracegrad.scan import scan as scan, scan_checkpoints, until  # noqa: F401
from tracegrad import printing, random, testing  # noqa: F401
from tracegrad.printing import pp  # noqa: F401
from tracegrad.jit import jit as jit  # noqa: F401
# grad, jacobian, hessian: Theano's for variables, JAX's for callables
from tracegrad.transforms import (elementwise_grad, hessian, jacobian,  # noqa: F401
                                  jvp, make_jvp, make_vjp, vjp)
from tracegrad.transforms import grad as grad, value_and_grad as value_and_grad  # noqa: F401
from tracegrad.tensor import dot  # noqa: F401  (Theano's theano.dot)
# Theano's module paths reached as attributes (``theano.gradient.jacobian``,
# ``theano.scan_module.until``, ``theano.ifelse.ifelse``, ``theano.Mode``)
from tracegrad import gradient, ifelse, sandbox, scalar, scan_module  # noqa: F401,E402
from tracegrad.compile import Mode  # noqa: F401,E402
from tracegrad.compile import ProfileStats  # noqa: F401,E402  (theano.ProfileStats)
from tracegrad.compile.dump import function_dump  # noqa: F401,E402
from tracegrad.compile.ops import as_op  # noqa: F401,E402  (theano.as_op)
from tracegrad.scan import foldl, foldr, map, reduce  # noqa: F401,E402
from tracegrad.vmap import vmap  # noqa: F401  (JAX's vmap: batching by graph rewriting)
# Theano's graph and setting helpers (theano.clone, change_flags, OrderedUpdates,
# Param, shared_constructor)
from tracegrad.compile.clone import OrderedUpdates, clone  # noqa: F401,E402
from tracegrad.compile.inputs import Param  # noqa: F401,E402
from tracegrad.config import change_flags  # noqa: F401,E402
from tracegrad.shared import shared_constructor  # noqa: F401,E402

__version__ = "0.1.0"


def __getattr__(name):
    # ``tg.sparse`` (Theano's ``theano.sparse``) without ``import
    # tracegrad.sparse`` first: loaded on first use, so ``import tracegrad``
    # never imports scipy (an optional dependency).
    if name == "sparse":
        import importlib
        return importlib.import_module("tracegrad.sparse")
    raise AttributeError(f"module 'tracegrad' has no attribute {name!r}")
