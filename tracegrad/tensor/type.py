"""``TensorType`` and the type constructors (``T.dmatrix``, ``T.scalar``, ...).

A ``TensorType`` is a dtype plus a static shape: one entry per axis, an
``int`` when the length is known at graph-build time (``1`` marks a
broadcastable axis) or ``None`` when it is not.
"""
import numpy as np

from tracegrad.config import config
from tracegrad.dtype_names import dtype_name
from tracegrad.trace import Type

_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
}


class StaticShapeError(TypeError):
    """A length or other integer was needed while building the graph (``len(x)``,
    ``range(x.shape[0])``, ``np.zeros(x.shape)``) but is not known then.

    ``tg.jit`` and the function transforms trace with free lengths first and,
    when tracing raises this, trace again with every argument's shape fixed
    (compiled once per shape). Raised by ``len()`` of a variable whose first
    length is free; a ``TypeError``, so code catching that keeps working.
    """


_CANONICAL = {}  # dtype spelling -> name; np.dtype(...).name is slow


def canonical_dtype(dtype):
    """'floatX' or any NumPy dtype spelling -> its canonical name."""
    if dtype is None or dtype == "floatX":
        return config.floatX
    try:
        return _CANONICAL[dtype]
    except (KeyError, TypeError):
        pass
    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise TypeError(f"tracegrad does not support dtype {name!r}")
    try:
        _CANONICAL[dtype] = name
    except TypeError:  # an unhashable spelling
        pass
    return name


def _canonical_shape(shape, broadcastable):
    if broadcastable is not None:
        if shape is not None:
            raise TypeError("give a TensorType either shape or broadcastable, not both")
        return tuple(1 if b else None for b in broadcastable)
    if shape is None:
        return ()
    shape = tuple(shape)
    if all(isinstance(s, (bool, np.bool_)) for s in shape) and shape:
        # Theano spelling: TensorType('float64', (False, True))
        return tuple(1 if s else None for s in shape)
    out = []
    for s in shape:
        if s is None:
            out.append(None)
        else:
            s = int(s)
            if s < 0:
                raise ValueError(f"negative length {s} in shape {shape}")
            out.append(s)
    return tuple(out)


# Theano's names of broadcastable patterns (``TensorType.__str__``).
_THEANO_PATTERNS = {(): "scalar", (False,): "vector", (False, True): "col",
                    (True, False): "row", (False, False): "matrix"}


# ``TensorType(dtype, shape)`` spelled as a dtype name (a ``str``) or a NumPy
# dtype and ``None`` or a tuple of ``None`` and positive ``int`` lengths -> the
# one instance made for it (see ``_Interned``).
_INTERNED = {}
MAX_INTERNED = 10_000


def _internable(args):
    """Whether ``TensorType(*args)`` may be the instance made for equal
    ``args`` before: the dtype a NumPy dtype or a name other than
    ``floatX`` (whose meaning depends on the config at the time) and the
    shape spelled as it is stored. No lengths 0 either: ``(False,)``,
    Theano's spelling of ``(None,)``, is equal to ``(0,)`` as a key."""
    dtype = args[0]
    if type(dtype) is str:
        if dtype == "floatX":
            return False
    elif not isinstance(dtype, np.dtype):
        return False
    shape = args[1] if len(args) > 1 else None
    return shape is None or (type(shape) is tuple and all(
        s is None or (type(s) is int and s > 0) for s in shape))


class _Interned(type):
    """``TensorType``'s metaclass: ``TensorType(dtype, shape)`` (positional,
    no name) gives the same instance for equal arguments.

    A graph has one type per variable, nearly all of a few dtypes and
    shapes: sharing them leaves tens of thousands fewer objects for the
    garbage collector to walk in a graph of 10^4 nodes (and skips the
    canonicalization). Types are values: nothing writes to one after it is
    made, and every comparison is ``==`` (``is`` only tells apart types
    that are equal anyway). Subclasses, a ``name`` or ``broadcastable``
    make a new instance as before."""

    def __call__(cls, *args, **kwargs):
        # (a dtype None, ``config.floatX``, is never looked up: a NumPy
        # dtype key compares equal to it)
        if cls is not TensorType or kwargs or not 0 < len(args) <= 2 or args[0] is None:
            return type.__call__(cls, *args, **kwargs)
        try:
            found = _INTERNED.get(args)
        except TypeError:   # an unhashable spelling of the shape (a list)
            return type.__call__(cls, *args)
        if found is None:
            found = type.__call__(cls, *args)
            if len(_INTERNED) < MAX_INTERNED and _internable(args):
                _INTERNED[args] = found
        return found


class TensorType(Type, metaclass=_Interned):
    """The type of an n-dimensional array of ``dtype`` with static ``shape``.

    Equal types made with ``TensorType(dtype, shape)`` may be one instance
    (``_Interned``): never set attributes on a type."""

    array_values = True

    def __init__(self, dtype, shape=None, broadcastable=None, name=None):
        self.dtype = canonical_dtype(dtype)
        self.shape = _canonical_shape(shape, broadcastable)
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def broadcastable(self):
        return tuple(s == 1 for s in self.shape)

    # ``TensorVariable``: set by ``tensor/variable.py``, which builds on this
    # module (layers import downward).
    variable_class = None

    def clone(self, dtype=None, shape=None):
        return TensorType(dtype or self.dtype, self.shape if shape is None else shape)

    def __call__(self, name=None):
        var = self.variable_class(self, name=name)
        return var

    def __eq__(self, other):
        return (isinstance(other, TensorType) and self.dtype == other.dtype
                and self.shape == other.shape)

    def __hash__(self):
        return hash((TensorType, self.dtype, self.shape))

    def is_super(self, other):
        """True when every value of ``other`` is also a value of ``self``."""
        return (isinstance(other, TensorType) and self.dtype == other.dtype
                and self.ndim == other.ndim
                and all(s is None or s == o for s, o in zip(self.shape, other.shape)))

    def shape_str(self):
        return "(" + ", ".join("?" if s is None else str(s) for s in self.shape) + \
            ("," if self.ndim == 1 else "") + ")"

    def __str__(self):
        # Theano's spelling where the type is one of Theano's (every length
        # free or 1): TensorType(float64, matrix) / row / 3D / (True, False, True);
        # a static length other than 1 (tracegrad's) shows the shape.
        if any(s is not None and s != 1 for s in self.shape):
            return f"TensorType({self.dtype}, shape={self.shape_str()})"
        pattern = tuple(s == 1 for s in self.shape)
        named = _THEANO_PATTERNS.get(pattern)
        if named is None:
            named = str(pattern) if any(pattern) else f"{self.ndim}D"
        return f"TensorType({self.dtype}, {named})"

    __repr__ = __str__

    # ------------------------------------------------------------ values
    def value_matches(self, value):
        """Cheap check that an array already fits this type."""
        return (dtype_name(value.dtype) == self.dtype and value.ndim == self.ndim and
                all(s is None or s == v for s, v in zip(self.shape, value.shape)))


class _FloatXTensorType(TensorType):
    """``T.scalar``, ``T.matrix``...: a TensorType whose dtype is
    ``config.floatX`` at the time a variable is made."""

    def __init__(self, shape):
        self._shape = _canonical_shape(shape, None)
        self.name = None

    @property
    def dtype(self):
        return config.floatX

    @property
    def shape(self):
        return self._shape

    def __call__(self, name=None, dtype=None):
        return TensorType(dtype or config.floatX, self._shape)(name)


_SHAPES = {
    "scalar": (), "vector": (None,), "matrix": (None, None), "row": (1, None),
    "col": (None, 1), "tensor3": (None,) * 3, "tensor4": (None,) * 4,
    "tensor5": (None,) * 5,
}
_PREFIXES = {"b": "int8", "w": "int16", "i": "int32", "l": "int64",
             "f": "float32", "d": "float64", "c": "complex128",
             "z": "complex128"}   # Theano's z prefix (zmatrix, zscalar...)


def _plural(single):
    def make_many(*names):
        if len(names) == 1 and isinstance(names[0], int):
            return [single() for _ in range(names[0])]
        if len(names) == 1 and isinstance(names[0], str):
            text = names[0]
            if "," in text or " " in text:
                names = text.replace(",", " ").split()
            elif len(text) == 1:
                return single(text)      # Theano: one name gives one variable
            else:
                names = list(text)       # Theano: 'xyz' names x, y and z
        return [single(n) for n in names]
    make_many.__doc__ = (f"Several variables of type {single}: ``a, b = f('a', 'b')``, "
                         "``f('a, b')``, or Theano's ``x, y, z = f('xyz')``; ``f('x')`` "
                         "alone is one variable, as in Theano.")
    return make_many


def _plural_name(kind):
    return {"matrix": "matrices"}.get(kind, kind + "s")


def _build_constructors():
    table = {}
    for kind, shape in _SHAPES.items():
        table[kind] = _FloatXTensorType(shape)
        table[_plural_name(kind)] = _plural(table[kind])
        for prefix, dtype in _PREFIXES.items():
            ctor = TensorType(dtype, shape)
            table[prefix + kind] = ctor
            table[prefix + _plural_name(kind)] = _plural(ctor)
    return table


CONSTRUCTORS = _build_constructors()
globals().update(CONSTRUCTORS)


def tensor(dtype=None, shape=None, name=None, broadcastable=None):
    """A new symbolic variable: ``T.tensor('float32', shape=(None, 1), name='x')``."""
    if shape is None and broadcastable is None:
        raise TypeError("T.tensor needs shape= (e.g. (None, 3)) or broadcastable=")
    return TensorType(dtype, shape, broadcastable)(name)


__all__ = ["TensorType", "tensor", *CONSTRUCTORS]
