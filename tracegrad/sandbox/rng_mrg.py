"""``MRG_RandomStreams``: Theano's ``theano.sandbox.rng_mrg`` streams.

Theano's MRG streams drew from the MRG31k3p generator so that CPU and GPU
gave the same numbers; tracegrad's ``RandomStreams`` already gives the same
numbers on both devices, so this class is ``RandomStreams`` with the MRG
signatures and semantics the tutorials rely on:

- ``uniform(size, low, high, ndim, dtype, nstreams)``: dtype
  ``upcast(floatX, low, high)`` (a Python number does not upcast);
- ``normal(size, avg, std, ndim, dtype, nstreams, truncate=False)``:
  ``truncate=True`` keeps draws within two standard deviations (by inverting
  the normal CDF on the truncated interval, so every draw is used);
- ``binomial(size, n=1, p=0.5, ndim, dtype='int64', nstreams)``: ``n == 1``
  is ``uniform < p`` as in Theano (larger ``n`` draws a true binomial);
- ``multinomial(size=None, n=1, pvals, ndim, dtype='int64', nstreams)``:
  ``pvals`` is a matrix, one distribution per row; the result has its shape
  and counts the ``n`` draws of each row (one-hot rows for ``n == 1``);
- ``choice(size=1, a=None, replace=False, p, ndim, dtype='int64')`` with a
  matrix ``p``: ``size`` draws without replacement per row of ``p``, shape
  ``(rows, size)`` (Theano's ``multinomial_wo_replacement``); other
  arguments draw as ``RandomStreams.choice``.

``nstreams`` (the number of parallel MRG streams) is accepted and has no
effect: it changed only which numbers Theano drew, not their distribution.
"""
import numpy as np

from tracegrad.config import config
from tracegrad.ops.api import argsort, cast, cumsum, erfinv, expand_dims, log
from tracegrad.ops.api import sum as tsum
from tracegrad.random import RandomStreams
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["MRG_RandomStreams"]

_PHI_2 = 0.022750131948179195   # Φ(−2): the normal CDF two deviations below the mean


def _dtype_of(value):
    """The dtype ``value`` contributes to Theano's ``upcast``: ``None`` for a
    Python number (it never upcasts floatX)."""
    if isinstance(value, (bool, int, float)):
        return None
    return as_tensor_variable(value).dtype


def _float_dtype(dtype, *params):
    if dtype is not None:
        return dtype
    dtypes = [config.floatX] + [d for d in map(_dtype_of, params) if d is not None]
    return np.result_type(*dtypes).name


class MRG_RandomStreams(RandomStreams):
    """Theano's ``MRG_RandomStreams`` (see the module docstring)."""

    def __init__(self, seed=12345, use_cuda=None):
        # Theano's default seed is 12345; use_cuda was about GPU placement,
        # which follows tg.config.device here.
        super().__init__(seed)

    @property
    def rstate(self):
        """Theano's ``rstate``: where the next draws' states come from, as
        ``[seed, index of the next draw]``. Assigning another stream's
        ``rstate`` makes the draws made from now on the same as its next
        ones (Theano's tutorial copies it with the ``state_updates``)."""
        return np.array([self.default_instance_seed,
                         len(self.state_updates) + getattr(self, "_index_offset", 0)],
                        dtype=np.int64)

    @rstate.setter
    def rstate(self, value):
        value = np.asarray(value)
        if value.shape != (2,) or value.dtype.kind not in "iu":
            raise ValueError("MRG_RandomStreams.rstate takes another stream's rstate "
                             f"(2 integers), got {value.dtype} of shape {value.shape}")
        self.default_instance_seed = int(value[0])
        self._index_offset = int(value[1]) - len(self.state_updates)

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None):
        """Uniform draws in ``(low, high)``."""
        dtype = _float_dtype(dtype, low, high)
        return super().uniform(size, cast(low, dtype), cast(high, dtype), ndim, dtype)

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None,
               truncate=False):
        """Normal draws; ``truncate=True``: only within ``avg ± 2·std``."""
        dtype = _float_dtype(dtype, avg, std)
        if not truncate:
            return super().normal(size, cast(avg, dtype), cast(std, dtype), ndim, dtype)
        u = super().uniform(size, 0.0, 1.0, ndim, dtype)
        # Φ⁻¹(Φ(−2) + u·(Φ(2) − Φ(−2))) with Φ⁻¹(q) = √2·erfinv(2q − 1)
        q = _PHI_2 + u * (1.0 - 2.0 * _PHI_2)
        z = cast(np.sqrt(2.0) * erfinv(2.0 * q - 1.0), dtype)
        return cast(avg, dtype) + cast(std, dtype) * z

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", nstreams=None):
        """Successes in ``n`` trials of probability ``p`` (``n == 1``: Bernoulli)."""
        if isinstance(n, (int, np.integer)) and n == 1:
            p = as_tensor_variable(p)
            u = self.uniform(size, ndim=ndim, dtype=_float_dtype(None, p))
            return cast(u < p, dtype)
        return super().binomial(size, n, p, ndim, dtype)

    def multinomial(self, size=None, n=1, pvals=None, ndim=None, dtype="int64",
                    nstreams=None):
        """Counts of ``n`` draws from each row of the matrix ``pvals``."""
        if pvals is None:
            raise TypeError("MRG_RandomStreams.multinomial: you have to specify pvals")
        pvals = as_tensor_variable(pvals)
        if pvals.ndim != 2:
            raise NotImplementedError(
                "MRG_RandomStreams.multinomial: pvals must be a matrix (one distribution "
                f"per row), got {pvals.ndim} dimension(s)")
        if size is not None or ndim is not None:
            raise ValueError("MRG_RandomStreams.multinomial does not use the size and ndim "
                             "arguments: the result has the shape of pvals")
        n = int(n)
        if n < 1:
            raise ValueError(f"MRG_RandomStreams.multinomial: n must be >= 1, got {n}")
        cdf = cumsum(pvals, axis=1)
        below = cdf - pvals
        # One uniform per row and draw; a row's draw lands in the bin whose
        # [cdf − p, cdf) interval holds it.
        u = self.uniform((n, pvals.shape[0]), dtype=_float_dtype(None, pvals))
        u = expand_dims(u, 2)
        hits = cast((below <= u) & (u < cdf), dtype)
        return tsum(hits, axis=0)

    def choice(self, size=1, a=None, replace=True, p=None, ndim=None, dtype="int64",
               nstreams=None):
        """With a matrix ``p``: ``size`` indices per row drawn without
        replacement (Theano's MRG ``choice``); otherwise ``RandomStreams.choice``."""
        p_var = None if p is None else as_tensor_variable(p)
        if p_var is None or p_var.ndim != 2:
            return super().choice(size, 2 if a is None else a, replace, p, ndim, dtype)
        if a is not None:
            raise NotImplementedError("MRG_RandomStreams.choice with a matrix p draws "
                                      "indices of p's columns: a must be None")
        if replace:
            raise NotImplementedError("MRG_RandomStreams.choice with a matrix p draws "
                                      "without replacement: pass replace=False")
        return self.multinomial_wo_replacement(size, pvals=p_var, dtype=dtype)

    def multinomial_wo_replacement(self, size=1, n=None, pvals=None, ndim=None,
                                   dtype="int64", nstreams=None):
        """``size`` distinct column indices per row of ``pvals``, each draw
        picking among the columns left with probability proportional to
        ``pvals`` (Gumbel top-k: sort ``log p + Gumbel noise``)."""
        pvals = as_tensor_variable(pvals)
        size = int(size if n is None else n)
        u = self.uniform(pvals.shape, dtype=_float_dtype(None, pvals))
        # An exact 0 from the [0, 1) uniform gives the key -inf: that column
        # is then drawn last, an event of probability 2**-53 per entry.
        keys = log(pvals) - log(-log(u))
        order = argsort(-keys, axis=1)
        return cast(order[:, :size], dtype)

