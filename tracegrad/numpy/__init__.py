"""``tracegrad.numpy``: NumPy's namespace on traced values, the one-line port
(``import tracegrad.numpy as np``), as ``jax.numpy`` and ``autograd.numpy``.

Every public name of ``numpy`` is here, made on first use from ``dir(numpy)``:

- a function answers arguments that hold a traced value (a symbolic variable,
  or a list/tuple holding one: ``np.array([x, y])``, ``np.stack([a, b])``,
  ``np.mean([a, b])``) with the tracegrad function registered for it
  (``tracegrad.tensor.dispatch``), and anything else with NumPy itself; one
  tracegrad cannot compute on traced values raises ``TypeError`` naming it;
- a ufunc likewise (its methods and attributes are NumPy's);
- constants, dtypes and classes are NumPy's own (``np.pi``, ``np.newaxis``,
  ``np.ndarray``, ``np.dtype``), except that the numeric scalar types
  (``np.float32``, ``np.int64``...) are stand-ins that NumPy and Python take
  for them (``np.dtype``, ``isinstance``, ``==``) and that cast a traced value
  (``np.float32(x)``);
- ``np.r_[...]`` and ``np.c_[...]`` take traced entries;
- ``linalg``, ``fft`` and ``random`` are the same over ``numpy.linalg``,
  ``numpy.fft`` and ``numpy.random``; other submodules are NumPy's.

Functions registered in the dispatch registry after this module was imported
are used too: the registry is read on every call.
"""
import numpy as _numpy

from tracegrad.numpy._extras import EXTRAS as _EXTRAS
from tracegrad.numpy._namespace import install as _install

_install(globals(), _numpy, extras=_EXTRAS,
         submodules={"linalg": "tracegrad.numpy.linalg", "fft": "tracegrad.numpy.fft",
                     "random": "tracegrad.numpy.random"})
