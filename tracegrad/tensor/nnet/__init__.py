"""``T.nnet``: neural-network functions (defined in ``tracegrad.ops.nnet`` and
``tracegrad.ops.conv``), with Theano's submodules ``T.nnet.conv`` and
``T.nnet.abstract_conv``."""
from tracegrad.ops.nnet import *  # noqa: F401,F403
from tracegrad.ops.elemwise import sigmoid, softplus  # noqa: F401
from tracegrad.ops.conv import conv2d  # noqa: F401
from tracegrad.ops.theano_extra import (crossentropy_categorical_1hot, elu,  # noqa: F401
                                        hard_sigmoid, logsoftmax, selu, softsign,
                                        ultra_fast_sigmoid, crossentropy_softmax_1hot)
from tracegrad.ops.nnet_extra import h_softmax, images2neibs, neibs2images  # noqa: F401
from tracegrad.ops.nnet_xent import crossentropy_softmax_1hot_with_bias_dx  # noqa: F401
from tracegrad.tensor.nnet import abstract_conv, conv  # noqa: F401,E402
from tracegrad.tensor.nnet import bn, neighbours  # noqa: F401,E402
from tracegrad.tensor.nnet.abstract_conv import conv2d_transpose, conv3d  # noqa: F401,E402
