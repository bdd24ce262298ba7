"""Random draws: ``RandomVariable`` ops over an explicit generator state.

A draw is a node ``(state, size, *params) -> (new state, sample)``. The state
is an int64 vector ``[key, counter]``: the sample comes from a counter-based
generator (NumPy's Philox keyed by ``key``, at block ``counter``; on CuPy a
generator seeded from both), and ``new state`` is ``[key, counter + 1]``. A
draw is therefore a pure function of its inputs -- the same state gives the
same numbers on the same device -- and streams never overlap. Who advances
the state is the caller's business (``tracegrad.random.RandomStreams`` makes
the state a shared variable whose ``default_update`` is ``new state``).

One table row per distribution says how it samples (written once against the
generator interface below, so NumPy and CuPy share it), its parameters, the
sample dtype and how the shape follows from the parameters when no ``size``
is given. Draws have no gradient and opt out of merging and constant folding
(``is_random``).
"""
from collections import namedtuple

import numpy as np

from tracegrad.ops.elemwise import broadcast_static, cast
from tracegrad.ops.shape import stack
from tracegrad.ops.static import static_entries, static_int
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable, constant
from tracegrad.trace import Apply, Op

__all__ = []


# ------------------------------------------------------------ generators
class _CupyGenerator:
    """The few ``numpy.random.Generator`` methods the table uses, on CuPy."""

    def __init__(self, cupy, seed):
        self._rs = cupy.random.RandomState(seed)

    def random(self, size, dtype="float64"):
        return self._rs.random_sample(size, dtype=dtype)

    def standard_normal(self, size, dtype="float64"):
        return self._rs.standard_normal(size, dtype=dtype)

    def binomial(self, n, p, size):
        return self._rs.binomial(n, p, size)

    def integers(self, low, high, size):
        return self._rs.randint(low, high, size, dtype="int64")

    def choice(self, a, size, replace=True, p=None):
        return self._rs.choice(a, size, replace, p)


def generator(xp, key, counter):
    """The generator of state ``[key, counter]`` for the array module ``xp``."""
    if xp is np:
        return np.random.Generator(np.random.Philox(key=key, counter=[0, 0, 0, counter]))
    seed = np.random.SeedSequence([key, counter]).generate_state(1, np.uint32)[0]
    return _CupyGenerator(xp, int(seed))


# ------------------------------------------------------------ the table
def _float_kind(dtype):
    return "float32" if dtype == "float32" else "float64"


def _uniform(xp, gen, size, dtype, low, high):
    return low + (high - low) * gen.random(size, dtype=_float_kind(dtype))


def _normal(xp, gen, size, dtype, avg, std):
    return avg + std * gen.standard_normal(size, dtype=_float_kind(dtype))


def _binomial(xp, gen, size, dtype, n, p):
    return gen.binomial(n, p, size)


def _integers(xp, gen, size, dtype, low, high):
    return gen.integers(low, high, size)


def _choice(xp, gen, size, dtype, a, *p, replace=True):
    a = int(a) if a.ndim == 0 else a
    return gen.choice(a, size, replace=replace, p=p[0] if p else None)


def _permutation(xp, gen, size, dtype, n):
    if n.ndim == 0:
        # argsort of uniform keys: a uniformly random permutation per row,
        # vectorized over ``size`` and the same code on NumPy and CuPy.
        return xp.argsort(gen.random(tuple(size or ()) + (int(n),)), axis=-1)
    order = xp.argsort(gen.random((n.shape[0],)))
    return n[order]


Dist = namedtuple("Dist", "name sample nparams shape")

DISTRIBUTIONS = {
    "uniform": Dist("uniform", _uniform, 2, "broadcast"),
    "normal": Dist("normal", _normal, 2, "broadcast"),
    "binomial": Dist("binomial", _binomial, 2, "broadcast"),
    "integers": Dist("integers", _integers, 2, "broadcast"),
    "choice": Dist("choice", _choice, None, "size"),
    "permutation": Dist("permutation", _permutation, 1, "permutation"),
}


# ------------------------------------------------------------ the op
class RandomVariable(Op):
    """A draw from distribution ``dist``: ``(state, [size], *params) ->
    (new state, sample)``. ``has_size``: whether the input after the state is
    the sample's shape (an int64 vector); otherwise the shape follows from
    the parameters."""

    __props__ = ("dist", "dtype", "has_size", "replace")
    is_random = True
    constant_foldable = False

    def __init__(self, dist, dtype, has_size, replace=True):
        if dist not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {dist!r}")
        self.dist = dist
        self.dtype = canonical_dtype(dtype)
        self.has_size = has_size
        self.replace = replace

    @property
    def name(self):
        return f"RandomVariable{{{self.dist}, {self.dtype}}}"

    def make_node(self, state, *rest):
        state = as_tensor_variable(state)
        if state.dtype != "int64" or state.ndim != 1:
            raise TypeError(f"{self.name}: the state must be an int64 vector, got {state.type}")
        rest = [as_tensor_variable(r) for r in rest]
        size, params = (rest[0], rest[1:]) if self.has_size else (None, rest)
        row = DISTRIBUTIONS[self.dist]
        if row.nparams is not None and len(params) != row.nparams:
            raise TypeError(f"{self.name}: expected {row.nparams} parameters, got {len(params)}")
        if size is not None:
            if size.ndim != 1 or size.dtype[0] not in "iu" or size.type.shape[0] is None:
                raise TypeError(f"{self.name}: size must be an integer vector of known "
                                f"length, got {size.type}")
            shape = tuple(static_entries(size))
        elif row.shape == "broadcast":
            shape = broadcast_static([p.type.shape for p in params], self.name)
        else:
            shape = ()
        if row.shape == "permutation":
            n = params[0]
            if n.ndim == 0:
                shape = shape + (static_int(n),)
            else:
                if size is not None:
                    raise TypeError("permutation of an array takes no size")
                shape = n.type.shape
        if row.shape == "broadcast" and size is not None:
            # NumPy: the parameters must broadcast to ``size``.
            broadcast_static([shape] + [p.type.shape for p in params], self.name)
        sample = TensorType(self.dtype, shape)()
        return Apply(self, [state, *rest], [state.type(), sample])

    def impl(self, xp, state, *rest):
        key, counter = (int(v) for v in state[:2].tolist())
        gen = generator(xp, key, counter)
        size, params = (rest[0], rest[1:]) if self.has_size else (None, rest)
        size = None if size is None else tuple(int(s) for s in size.tolist())
        row = DISTRIBUTIONS[self.dist]
        if row.shape == "broadcast":
            size = _check_broadcast(self.name, size, [p.shape for p in params])
        kwargs = {"replace": self.replace} if self.dist == "choice" else {}
        sample = row.sample(xp, gen, size, self.dtype, *params, **kwargs)
        sample = xp.asarray(sample)
        new_state = xp.asarray([key, counter + 1], dtype=np.int64)
        return new_state, sample.astype(self.dtype, copy=False)

    def vjp(self, node, output_grads):
        return [None] * len(node.inputs)


def _check_broadcast(name, size, shapes):
    """The sample shape: ``size``, which the parameters must broadcast to
    (NumPy's rule), or their broadcast shape when no size is given."""
    try:
        joint = np.broadcast_shapes(*shapes)
        if size is None:
            return joint
        if np.broadcast_shapes(size, joint) == size:
            return size
    except ValueError:
        pass
    raise ValueError(f"{name}: parameters of shapes {[tuple(s) for s in shapes]} do not "
                     f"broadcast to size {size}")


def size_vector(size):
    """``size`` (an int, a tuple of ints / integer scalars, or an integer
    vector of known length) as an int64 vector variable, or ``None``."""
    if size is None:
        return None
    if isinstance(size, (list, tuple)):
        if all(isinstance(s, (int, np.integer)) for s in size):
            return constant(np.asarray(size, dtype=np.int64).reshape(len(size)))
        parts = [as_tensor_variable(s) for s in size]
        for p in parts:
            if p.ndim != 0 or p.dtype[0] not in "iu":
                raise TypeError(f"size entries must be integer scalars, got {p.type}")
        return stack([cast(p, "int64") for p in parts])
    var = as_tensor_variable(size)
    if var.dtype[0] not in "iu":
        raise TypeError(f"size must be integers, got {var.type}")
    if var.ndim == 0:
        return cast(stack([var]), "int64")
    if var.ndim != 1 or var.type.shape[0] is None:
        raise TypeError(f"size must be a tuple or an integer vector of known length, "
                        f"got {var.type}")
    return cast(var, "int64")
