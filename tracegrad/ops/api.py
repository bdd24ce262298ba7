"""Every op function in one namespace: the union of the op modules' ``__all__``.

``tracegrad.tensor`` re-exports it (with the types). Code of the layers
between the ops and the tensor namespace (``rewrite``, ``scan``, ``compile``)
builds graphs through this module, never through ``tracegrad.tensor``, so no
layer imports one above it (docs/ARCHITECTURE.md, "Layers").

Importing it also gives symbolic arrays their operators and methods
(``x + y``, ``x.sum()``): ``tensor.variable`` sits below the ops, so the op
functions are handed to it here (``bind_ops``) instead of being imported there.
"""
import sys

from tracegrad.ops import (alloc as _alloc, conv as _conv, cumulative as _cumulative,
                           elemwise as _elemwise,
                           elemwise_numpy as _elemwise_numpy, index as _index,
                           linalg as _linalg, manip as _manip, nlinalg as _nlinalg,
                           nnet as _nnet, reduce as _reduce,
                           shape as _shape, shape_static as _shape_static,
                           theano_shape as _theano_shape)
from tracegrad.ops.elemwise import *  # noqa: F401,F403
from tracegrad.ops.elemwise_numpy import *  # noqa: F401,F403
from tracegrad.ops.reduce import *  # noqa: F401,F403
from tracegrad.ops.shape_static import *  # noqa: F401,F403
from tracegrad.ops.alloc import *  # noqa: F401,F403
from tracegrad.ops.shape import *  # noqa: F401,F403
from tracegrad.ops.index import *  # noqa: F401,F403
from tracegrad.ops.linalg import *  # noqa: F401,F403
from tracegrad.ops.nlinalg import *  # noqa: F401,F403
from tracegrad.ops.nnet import *  # noqa: F401,F403
from tracegrad.ops.manip import *  # noqa: F401,F403
from tracegrad.ops.cumulative import *  # noqa: F401,F403
from tracegrad.ops.theano_shape import *  # noqa: F401,F403
from tracegrad.ops.conv import *  # noqa: F401,F403
from tracegrad.ops import einsum as _einsum_mod  # noqa: E402
from tracegrad.ops.einsum import *  # noqa: F401,F403,E402
from tracegrad.ops import numpy_stats as _numpy_stats  # noqa: E402
from tracegrad.ops.numpy_stats import *  # noqa: F401,F403,E402
from tracegrad.ops import numpy_misc as _numpy_misc, numpy_signal as _numpy_signal  # noqa: E402
from tracegrad.ops.numpy_misc import *  # noqa: F401,F403,E402
from tracegrad.ops.numpy_signal import *  # noqa: F401,F403,E402
from tracegrad.ops import numpy_pad as _numpy_pad  # noqa: E402
from tracegrad.ops.numpy_pad import *  # noqa: F401,F403,E402
from tracegrad.ops import numpy_ufuncs as _numpy_ufuncs  # noqa: E402
from tracegrad.ops.numpy_ufuncs import *  # noqa: F401,F403,E402
from tracegrad.tensor.variable import as_tensor_variable, bind_ops, constant  # noqa: F401
# numpy.fft: a sub-namespace (``T.fft.fft``), not star-exported: ``T.fft`` is
# the module, like ``np.fft``. Importing it registers ``np.fft.*`` dispatch.
from tracegrad.ops import fft  # noqa: F401,E402
# numpy.linalg decompositions and the rest of numpy.linalg (T.eigh, T.svd, ...)
from tracegrad.ops import decomp as _decomp  # noqa: E402
from tracegrad.ops import decomp_solve as _decomp_solve  # noqa: E402
from tracegrad.ops.decomp import *  # noqa: F401,F403,E402
from tracegrad.ops.decomp_solve import *  # noqa: F401,F403,E402
from tracegrad.ops import linalg_api  # noqa: F401,E402  (np.linalg.* dispatch; T.nlinalg)

# (the order of the star imports above: a later module's name wins)
_MODULES = (_elemwise, _elemwise_numpy, _reduce, _shape_static, _alloc, _shape, _index,
            _linalg, _nlinalg, _nnet, _manip, _cumulative, _theano_shape, _conv)
_MODULES += (_decomp, _decomp_solve)
_MODULES += (_einsum_mod, _numpy_stats, _numpy_misc, _numpy_signal, _numpy_pad,
             _numpy_ufuncs)
# Theano names written with other ops (T.sgn, T.inv, T.iround, T.xlogx, ...)
from tracegrad.ops import theano_extra as _theano_extra  # noqa: E402
from tracegrad.ops.theano_extra import *  # noqa: F401,F403,E402
_MODULES += (_theano_extra,)
# Theano's tensor.extra_ops and index functions (T.bincount, T.nonzero, T.choose, ...)
from tracegrad.ops import extra_ops as _extra_ops  # noqa: E402
from tracegrad.ops.extra_ops import *  # noqa: F401,F403,E402
_MODULES += (_extra_ops,)
__all__ = list(dict.fromkeys(name for m in _MODULES for name in m.__all__))

# scipy.special's ufuncs (issue 16): T.xlogy, T.jn, T.ndtr...; also registers
# scipy.special.<name>(variable) dispatch, bound once SciPy is imported.
from tracegrad.ops import special as _special  # noqa: E402
from tracegrad.ops.special import *  # noqa: F401,F403,E402
__all__ += [name for name in _special.__all__ if name not in __all__]

bind_ops(sys.modules[__name__])
