"""``tracegrad.tensor.fft`` (``T.fft``): ``numpy.fft``'s names on symbolic
arrays: ``fft``, ``ifft``, ``rfft``, ``irfft``, ``hfft``, ``ihfft``, the 2-d and
n-d forms, ``fftshift``, ``ifftshift``, ``fftfreq``, ``rfftfreq`` (the ops live
in ``tracegrad/ops/fft.py``)."""
from tracegrad.ops.fft import *  # noqa: F401,F403
from tracegrad.ops.fft import __all__  # noqa: F401
