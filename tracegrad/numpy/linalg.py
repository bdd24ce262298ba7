"""``tracegrad.numpy.linalg``: every public name of ``numpy.linalg``, answering traced
arguments with tracegrad's implementation and anything else with NumPy's
(see ``tracegrad.numpy``)."""
import numpy.linalg as _numpy_linalg

from tracegrad.numpy._extras import LINALG_EXTRAS as _LINALG_EXTRAS
from tracegrad.numpy._namespace import install as _install

_install(globals(), _numpy_linalg, extras=_LINALG_EXTRAS)
