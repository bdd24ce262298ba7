"""``RandomStreams``: symbolic random numbers whose state advances each call.

    srng = RandomStreams(seed=234)
    u = srng.uniform((2, 2))
    f = tg.function([], u)          # new numbers on every call
    g = tg.function([], u, no_default_updates=True)   # the same numbers each call

Each draw (``srng.uniform(...)``...) gets its own generator state: a shared
int64 vector ``[key, counter]`` whose ``default_update`` is the state after
the draw, so every compiled function that computes the draw advances it
(unless ``no_default_updates``). Keys derive from the stream's seed and the
draw's index, so ``seed(n)`` resets every draw and the same seed gives the
same numbers on the same device. Inside ``scan`` the state is advanced every
step (scan treats shared variables with a ``default_update`` as loop state).
"""
import numpy as np

from tracegrad.config import config
from tracegrad.ops.random import RandomVariable, size_vector
from tracegrad.shared import SharedVariable, shared
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["RandomStreams", "GeneratorState", "RandomStateSharedVariable"]


def _key(seed, index):
    """A 63-bit generator key from the stream seed and the draw index."""
    word = np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0]
    return int(word >> np.uint64(1))


def _check_seed(seed):
    if seed is None:
        return int(np.random.SeedSequence().entropy % (1 << 63))
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"RandomStreams: the seed must be >= 0, got {seed}")
    return seed


class GeneratorState(np.ndarray):
    """The value of a draw's ``rng`` (``rv.rng.get_value()``): the int64
    state vector ``[key, counter]``, with the methods of Theano's
    ``numpy.random.RandomState`` that its tutorial calls on it:

        rng_val = rv_u.rng.get_value(borrow=True)
        rng_val.seed(89234)                      # reseed this one draw
        rv_u.rng.set_value(rng_val, borrow=True)

    ``get_state()`` is a copy of the state, ``set_state(s)`` restores one.
    ``seed``/``set_state`` change this array in place; ``set_value`` hands it
    back to the draw (with ``borrow=True`` on the CPU the array *is* the
    draw's state already)."""

    def seed(self, seed=None):
        """Reset this generator from ``seed`` (a non-negative int or None)."""
        self[...] = [_key(_check_seed(seed), 0), 0]

    def get_state(self):
        """A copy of the state (give it to ``set_state`` to replay)."""
        return np.array(self, dtype=np.int64)

    def set_state(self, state):
        """Restore a state from ``get_state()``."""
        state = np.asarray(state)
        if state.shape != self.shape or state.dtype.kind not in "iu":
            raise ValueError(f"set_state: expected an integer state of shape {self.shape} "
                             f"(from get_state()), got {state.dtype} of shape {state.shape}")
        self[...] = state


class RandomStateSharedVariable(SharedVariable):
    """The shared variable of a draw's generator state; ``get_value()``
    returns a ``GeneratorState`` (a host array on every device)."""

    def get_value(self, borrow=False, return_internal_type=False):
        value = SharedVariable.get_value(self, borrow, return_internal_type)
        if not isinstance(value, np.ndarray):        # a device buffer: its host copy
            value = self.backend.host_copy(value)
        return value.view(GeneratorState)

    def set_value(self, value, borrow=False):
        if isinstance(value, GeneratorState):
            value = value.view(np.ndarray)
        SharedVariable.set_value(self, value, borrow)


class RandomStreams:
    """A source of symbolic random draws (Theano's ``RandomStreams``).

    ``seed``: a non-negative int (``None``: fresh entropy). Each method
    returns a symbolic sample; ``size`` is a tuple of ints or integer
    scalars, or an integer vector of known length (``x.shape``); with
    ``size=None`` the sample has the parameters' broadcast shape.
    """

    def __init__(self, seed=None):
        self.default_instance_seed = _check_seed(seed)
        self.state_updates = []   # [(state shared variable, its new value)]
        # Draw k gets the key of index k + _index_offset; MRG's ``rstate``
        # setter moves it (seed() resets it).
        self._index_offset = 0

    # ------------------------------------------------------------ state
    def seed(self, seed=None):
        """Re-seed every draw made so far (and those to come) from ``seed``."""
        self.default_instance_seed = _check_seed(seed)
        self._index_offset = 0
        for index, (state, _) in enumerate(self.state_updates):
            state.set_value(np.asarray([_key(self.default_instance_seed, index), 0],
                                       dtype=np.int64))

    def updates(self):
        """``[(state, new state)]`` of every draw (what ``default_update`` applies)."""
        return list(self.state_updates)

    def _draw(self, dist, size, params, dtype, replace=True):
        index = len(self.state_updates) + getattr(self, "_index_offset", 0)
        plain = shared(np.asarray([_key(self.default_instance_seed, index), 0], dtype=np.int64),
                       name=f"random_state_{index}")
        state = RandomStateSharedVariable(plain.type, None, name=plain.name,
                                          device=plain.device, container=plain.container)
        size = size_vector(size)
        op = RandomVariable(dist, dtype, size is not None, replace)
        inputs = [state] + ([size] if size is not None else []) + list(params)
        new_state, sample = op(*inputs)
        state.default_update = new_state
        self.state_updates.append((state, new_state))
        return sample

    # ------------------------------------------------------------ draws
    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None):
        """Uniform on ``[low, high)``; dtype ``floatX`` unless given."""
        return self._draw("uniform", size, [_param(low), _param(high)],
                          dtype or config.floatX)

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None):
        """Normal with mean ``avg`` and standard deviation ``std``."""
        return self._draw("normal", size, [_param(avg), _param(std)], dtype or config.floatX)

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64"):
        """Number of successes in ``n`` trials of probability ``p``."""
        return self._draw("binomial", size, [_param(n), _param(p)], dtype)

    def integers(self, size=None, low=0, high=None, dtype="int64"):
        """Integers in ``[low, high)`` (NumPy's ``Generator.integers``);
        ``integers(size, high)`` draws from ``[0, high)``."""
        if high is None:
            low, high = 0, low
        return self._draw("integers", size, [_param(low), _param(high)], dtype)

    def random_integers(self, size=None, low=0, high=1, ndim=None, dtype="int64"):
        """Theano's name: integers in ``[low, high]`` (both included)."""
        return self._draw("integers", size, [_param(low), _param(high) + 1], dtype)

    def choice(self, size=None, a=2, replace=True, p=None, ndim=None, dtype=None):
        """Draws from ``range(a)`` (an int) or the entries of the vector ``a``,
        with probabilities ``p`` (uniform by default)."""
        a = as_tensor_variable(a)
        if a.ndim > 1:
            raise TypeError(f"choice: a must be an int or a vector, got {a.type}")
        params = [a] if p is None else [a, as_tensor_variable(p)]
        dtype = dtype or (a.dtype if a.ndim == 1 else "int64")
        return self._draw("choice", size, params, dtype, replace=bool(replace))

    def permutation(self, size=None, n=1, ndim=None, dtype=None):
        """A random permutation of ``range(n)`` (one per entry of ``size``),
        or of the rows of ``n`` when it is an array."""
        n = as_tensor_variable(n)
        dtype = dtype or (n.dtype if n.ndim else "int64")
        return self._draw("permutation", size, [n], dtype)


def _param(value):
    return as_tensor_variable(value)
