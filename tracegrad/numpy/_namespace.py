"""The machinery of ``tracegrad.numpy``: a NumPy module's names, each
answering traced values with tracegrad's implementation and everything else
with NumPy's own.

Nothing here names an op: a NumPy function is answered by the function that
the op modules registered for it (``tracegrad.tensor.dispatch.FUNCTIONS`` and
``UFUNCS``, looked up on every call, so a registration made later counts),
and a few conversions and constructors that NumPy does not dispatch at all
(``np.array``, ``np.zeros(n)``, ``np.float32(x)``...) by ``EXTRAS`` of the
module that installs the namespace.
"""
import functools
import importlib

import numpy as np

from tracegrad.ops import api as _api
from tracegrad.tensor.dispatch import FUNCTIONS, ufunc_implementation
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable

__all__ = ["install", "is_traced", "any_traced", "unsupported"]


_PLAIN = frozenset([int, float, complex, bool, str, type(None), np.float64, np.int64])


def is_traced(obj):
    """Whether ``obj`` is a symbolic value or a list, tuple or object array
    holding one (at any depth)."""
    if isinstance(obj, Variable):
        return True
    if isinstance(obj, (list, tuple)):
        # (every call of a NumPy function asks: numbers are skipped cheaply)
        return any(type(o) not in _PLAIN and is_traced(o) for o in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return any(is_traced(o) for o in obj.flat)
    return False


def _unobject(obj):
    """``obj`` with NumPy object arrays (of traced values) made nested lists."""
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return obj.tolist()
    if type(obj) in (list, tuple):  # (not a namedtuple: kept as it is)
        return type(obj)(_unobject(o) for o in obj)
    return obj


def any_traced(args, kwargs):
    """Whether any positional or keyword argument holds a symbolic value."""
    return is_traced(args) or is_traced(tuple(kwargs.values()))


def unsupported(qualname, hint=""):
    """The ``TypeError`` for a NumPy name tracegrad cannot compute on traced values."""
    return TypeError(
        f"{qualname} is not supported on traced (symbolic) values: tracegrad has no "
        f"implementation of it{hint}. Call it on NumPy arrays outside the traced code "
        "(docs/numpy-coverage.md lists what is supported)")


def _tensors(args):
    """``args`` with each list/tuple/object array that holds a symbolic value
    made one tensor."""
    return [as_tensor_variable(_unobject(a))
            if isinstance(a, (list, tuple, np.ndarray)) and is_traced(a) else a
            for a in args]


# ------------------------------------------------------------ functions
def wrap_function(qualname, fn, extra=None, hint=""):
    """``fn`` (a NumPy function) answering traced arguments with the registered
    tracegrad function (``extra`` when NumPy does not dispatch ``fn``)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not any_traced(args, kwargs):
            return fn(*args, **kwargs)
        impl = FUNCTIONS.get(fn) or extra
        if impl is None:
            raise unsupported(qualname, hint)
        return impl(*[_unobject(a) for a in args],
                    **{k: _unobject(v) for k, v in kwargs.items()})

    module, _, name = qualname.rpartition(".")
    wrapper.__module__, wrapper.__qualname__, wrapper.__name__ = module, name, name
    wrapper.numpy_function = fn
    return wrapper


class Ufunc:
    """A NumPy ufunc that also takes lists of traced values (``np.exp([x, y])``);
    its attributes and methods are the ufunc's (``nin``, ``reduce``...)."""

    def __init__(self, ufunc, qualname):
        self.ufunc, self.qualname = ufunc, qualname
        self.__name__ = ufunc.__name__
        self.__doc__ = ufunc.__doc__

    def __call__(self, *args, **kwargs):
        if not any_traced(args, kwargs):
            return self.ufunc(*args, **kwargs)
        if ufunc_implementation(self.ufunc) is None:
            raise unsupported(self.qualname)
        # A symbolic argument makes NumPy hand the call to tracegrad
        # (``__array_ufunc__``), which also checks ``out=`` and keywords.
        return self.ufunc(*_tensors(args), **kwargs)

    def __getattr__(self, name):
        attr = getattr(self.ufunc, name)
        if name in ("reduce", "accumulate", "reduceat", "outer", "at"):
            @functools.wraps(attr)
            def method(*args, **kwargs):
                return attr(*_tensors(args), **kwargs)
            return method
        return attr

    def __repr__(self):
        return f"<ufunc {self.qualname!r} (tracegrad.numpy)>"


# ------------------------------------------------------------ scalar types
class ScalarType(type):
    """The metaclass of ``tracegrad.numpy.float32`` & co: subclasses of NumPy's
    scalar types that *are* them for NumPy and Python (``np.dtype``,
    ``isinstance``, ``issubclass``, ``==``, ``hash``, ``dtype=``); calling one
    on a traced value casts it (``np.float32(x)``), on anything else gives
    NumPy's scalar."""

    def __call__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and is_traced(args[0]):
            return _api.cast(as_tensor_variable(args[0]), cls.dtype_name)
        return cls.numpy_type(*args, **kwargs)

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.numpy_type)

    def __subclasscheck__(cls, other):
        return issubclass(other, cls.numpy_type)

    def __eq__(cls, other):
        return other is cls or other is cls.numpy_type

    def __hash__(cls):
        return hash(cls.numpy_type)

    def __repr__(cls):
        return f"<class 'tracegrad.numpy.{cls.__name__}' (numpy.{cls.numpy_type.__name__})>"


def _dtype_of_type(obj):
    """The dtype name a concrete numeric NumPy scalar type stands for, else ``None``."""
    if not (isinstance(obj, type) and issubclass(obj, np.generic)):
        return None
    try:
        dtype = np.dtype(obj)
    except TypeError:  # abstract: np.floating, np.number...
        return None
    return dtype.name if dtype.type is obj and dtype.kind in "biufc" else None


_SCALAR_TYPES = {}  # NumPy type -> its stand-in (np.bool and np.bool_ share one)


def scalar_type(obj, module):
    """The stand-in of NumPy's numeric scalar type ``obj``; other classes as they are."""
    dtype = _dtype_of_type(obj)
    if dtype is None:
        return obj
    if obj not in _SCALAR_TYPES:
        _SCALAR_TYPES[obj] = ScalarType(obj.__name__, (obj,), {
            "numpy_type": obj, "dtype_name": dtype, "__module__": module,
            "__doc__": f"NumPy's ``{obj.__name__}``; on a traced value, a cast to {dtype}."})
    return _SCALAR_TYPES[obj]


# ------------------------------------------------------------ r_ / c_
class ConcatIndexer:
    """``np.r_[...]`` / ``np.c_[...]`` that also take traced entries: each entry
    (a number, array, traced value, or a ``start:stop:step`` slice, which gives
    NumPy's range) is joined along the first axis (``r_``) or as columns
    along the last axis (``c_``)."""

    def __init__(self, numpy_indexer, name):
        self.numpy_indexer, self.name = numpy_indexer, name

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        if not is_traced(items):
            return self.numpy_indexer[key]
        parts = []
        for item in items:
            if isinstance(item, str):
                raise TypeError(f"tracegrad.numpy.{self.name}[...] with traced values "
                                f"takes no directive string (got {item!r}): use "
                                "np.concatenate / np.stack with axis=")
            if isinstance(item, slice):
                if is_traced((item.start, item.stop, item.step)):
                    raise TypeError(f"tracegrad.numpy.{self.name}[...]: a slice's bounds "
                                    "must be known while tracing; use np.arange")
                item = np.r_[item]
            parts.append(self._part(as_tensor_variable(item)))
        return _api.concatenate(parts, axis=0 if self.name == "r_" else -1)

    def _part(self, v):
        if self.name == "r_":
            return _api.atleast_1d(v)
        if v.ndim == 0:
            return _api.reshape(v, (1, 1))
        return _api.reshape(v, (-1, 1)) if v.ndim == 1 else v

    def __len__(self):
        return 0  # (as NumPy's)


# ------------------------------------------------------------ the module
def _translate(obj, qualname, extras, submodules, hint):
    name = qualname.rpartition(".")[2]
    if name in submodules:
        return importlib.import_module(submodules[name])
    if isinstance(obj, np.ufunc):
        return Ufunc(obj, qualname)
    if isinstance(obj, type):
        return scalar_type(obj, qualname.rpartition(".")[0])
    if obj is np.r_ or obj is np.c_:
        return ConcatIndexer(obj, name)
    if callable(obj) and not isinstance(obj, type(np)):
        return wrap_function(qualname, obj, extras.get(name), hint)
    return obj


def public_names(module):
    """NumPy's public names of ``module`` (its ``dir()`` less underscores)."""
    return sorted(n for n in dir(module) if not n.startswith("_"))


def install(namespace, numpy_module, extras=None, submodules=None, hint=""):
    """Give the module whose globals are ``namespace`` every public name of
    ``numpy_module``, made on first use (module ``__getattr__``) and kept.

    ``extras``: ``{name: function}`` answering traced arguments of NumPy
    functions that NumPy does not dispatch (the registry wins where both
    have one); ``submodules``: ``{name: module path}`` of tracegrad's own
    sub-namespaces (``linalg``); ``hint`` ends the error of an unsupported
    function.
    """
    extras, submodules = extras or {}, submodules or {}
    modname = namespace["__name__"]

    def __getattr__(name):
        if name.startswith("_") and name != "__version__":
            raise AttributeError(f"module {modname!r} has no attribute {name!r}")
        try:
            obj = getattr(numpy_module, name)
        except AttributeError:
            raise AttributeError(f"module {modname!r} has no attribute {name!r} "
                                 f"({numpy_module.__name__} has none either)") from None
        out = _translate(obj, f"{modname}.{name}", extras, submodules, hint)
        namespace[name] = out
        return out

    def __dir__():
        return sorted(set(namespace) | set(public_names(numpy_module)) | set(submodules))

    namespace["__getattr__"] = __getattr__
    namespace["__dir__"] = __dir__
    # ``from tracegrad.numpy import *`` gives what ``from numpy import *`` does
    namespace["__all__"] = [n for n in getattr(numpy_module, "__all__",
                                               public_names(numpy_module))
                            if not n.startswith("_")]
