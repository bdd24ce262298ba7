"""``T.nnet``: neural-network functions (defined in ``tracegrad.ops.nnet``)."""
from tracegrad.ops.nnet import *  # noqa: F401,F403
from tracegrad.ops.elemwise import sigmoid, softplus  # noqa: F401
