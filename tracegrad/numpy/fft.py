"""``tracegrad.numpy.fft``: every public name of ``numpy.fft``, answering traced
arguments with tracegrad's implementation and anything else with NumPy's
(see ``tracegrad.numpy``)."""
import numpy.fft as _numpy_fft

from tracegrad.numpy._namespace import install as _install

_install(globals(), _numpy_fft)
