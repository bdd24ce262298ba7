"""``tracegrad.numpy.random``: ``numpy.random``'s names. Drawing happens in
NumPy (arguments that are not traced: ``np.random.normal(size=x.shape)`` of a
known shape works); random numbers *inside* a traced graph come from
``tg.random.RandomStreams``, which a traced argument is pointed to."""
import numpy.random as _numpy_random

from tracegrad.numpy._namespace import install as _install

_install(globals(), _numpy_random,
         hint=" (draw random numbers in a graph with tg.random.RandomStreams)")
