"""``tg.jit``: trace NumPy-style functions on placeholders and compile them,
once per signature of the arguments. The machinery (``Compiled``) also runs
the function transforms of ``tracegrad.transforms`` (``tg.grad(fn)``...).

How arguments are traced (what a NumPy user expects to keep working):

- arrays (NumPy arrays and scalars, or anything with ``shape`` and
  ``dtype``) become placeholders of the same dtype and ndim; axes of length 1
  stay broadcastable, every other length is left free, so calls with other
  lengths reuse the compiled function;
- Python ``int``, ``float`` and ``complex`` become 0-d placeholders of the
  dtype NumPy gives such a number (int64, float64, complex128) that, like a
  Python number in NumPy 2, never upcasts the arrays it meets
  (``x_float32 * lr`` stays float32);
- lists, tuples, dicts, namedtuples and dataclass instances are traced
  element by element (``tracegrad.pytree``);
- everything else (``bool``, ``str``, ``None``, enums...) is static: its value
  is part of the cache key and ``fn`` sees the value itself. Arguments named
  in ``static_argnums`` / ``static_argnames`` are static too (needed for
  numbers used as axes or shapes).

**Static shapes.** Code that needs a length as a Python int while tracing
(``len(x)``, ``for row in x``, ``range(x.shape[0])``, ``np.zeros(x.shape)``)
cannot run on free lengths: they raise ``StaticShapeError``
(``tracegrad.tensor.type``). The signature is then traced again with every
argument's shape fixed (``x.shape`` of an argument is a tuple of ints, as in
NumPy), and from then on that signature is compiled once per distinct set of
argument shapes (the cache key gains the shapes).
"""
from __future__ import annotations

import functools
import inspect
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence, overload

import numpy as np

from tracegrad.compile import function
from tracegrad.frozen_random import no_frozen_draws
from tracegrad.ops.static import static_value
from tracegrad.pytree import Static, flatten, leaf_paths, unflatten
from tracegrad.tensor.type import StaticShapeError, TensorType
from tracegrad.tensor.protocols import ShapeTuple
from tracegrad.tensor.variable import (TensorVariable, as_tensor_variable,
                                       check_supported_value)
from tracegrad.trace import Variable

if TYPE_CHECKING:  # annotations only
    from tracegrad.compile.runtime import Function

__all__ = ["jit"]

_WEAK_DTYPES = {int: "int64", float: "float64", complex: "complex128"}


# ------------------------------------------------------------ argument trees
def _is_array(x):
    return isinstance(x, (np.ndarray, np.generic)) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__array__"))


class _SymbolicArgument(Exception):
    """A symbolic variable was passed: the caller is itself being traced."""


def _static(o, what):
    try:
        hash(o)
    except TypeError:
        raise TypeError(f"{what}: static argument {o!r} of type "
                        f"{type(o).__name__} is not hashable") from None
    return ("static", type(o), o)


def _flatten_argument(obj, static, name, what="jit"):
    """``(structure, leaves)`` of one argument: a hashable description of
    ``obj`` (static parts included) and its dynamic values in order."""
    if static:
        return _static(obj, what), []

    def classify(o, name):
        if isinstance(o, Variable):
            raise _SymbolicArgument()
        if type(o) in _WEAK_DTYPES:
            return ("weak", _WEAK_DTYPES[type(o)]), o
        if _is_array(o):
            check_supported_value(o, f"{what}: argument {name}")
            return ("array", np.dtype(o.dtype).name, tuple(s == 1 for s in o.shape)), o
        return _static(o, what), None

    return flatten(obj, classify, name)


# ------------------------------------------------------------- placeholders
class _FreeLength(TensorVariable):
    """A length of an argument traced with free lengths (``x.shape[0]``), and
    integer arithmetic on it: as an ``int`` (``range(n - 1)``) it raises
    ``StaticShapeError`` unless its value is known anyway."""

    def __index__(self):
        value = static_value(self)
        if value is None:
            raise StaticShapeError(f"{self} is a length of a traced argument, which is "
                                   "not known while tracing with free lengths")
        return int(value)

    __int__ = __index__


def _keeps_length(name):
    method = getattr(TensorVariable, name)

    def keep(self, *args):
        out = method(self, *args)
        if type(out) is TensorVariable and out.ndim == 0 and out.dtype[0] in "iu":
            out.__class__ = _FreeLength
        return out

    keep.__name__ = name
    return keep


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__floordiv__", "__rfloordiv__", "__mod__", "__neg__"):
    setattr(_FreeLength, _name, _keeps_length(_name))


class _FreeArgument(TensorVariable):
    """A placeholder for an argument traced with free lengths: ``x.shape`` is
    a tuple as everywhere (``tensor.protocols.ShapeTuple``), whose free
    entries are ``_FreeLength`` (as an ``int`` they ask for static shapes)."""

    @property
    def shape(self):
        entries = []
        for n in TensorVariable.shape.fget(self):
            if type(n) is TensorVariable:
                n.__class__ = _FreeLength
            entries.append(n)
        return ShapeTuple(entries, self)


class _StaticArgument(TensorVariable):
    """A placeholder traced with its argument's shape fixed: ``shape`` and
    ``size`` are Python ints, as on a NumPy array."""

    @property
    def shape(self):
        return self.type.shape

    @property
    def size(self):
        return int(np.prod(self.type.shape, dtype=np.int64))


def _placeholder(description, name, shape=None):
    kind, dtype = description[0], description[1]
    if kind == "weak":
        static = ()
    elif shape is None:
        static = tuple(1 if b else None for b in description[2])
    else:
        static = tuple(shape)
    cls = _FreeArgument if shape is None else _StaticArgument
    var = cls(TensorType(dtype, static), name=name)
    if kind == "weak":
        var.weak = True  # promoted like a Python number (tensor.variable.resolve_weak)
    var.traced_argument = True  # its truth value depends on data
    return var


# ------------------------------------------------------------------ results
def flatten_outputs(result, fname, what="jit"):
    """``(structure, variables)`` of what a traced function returned; ``None``
    and ``pytree.Static`` values stay as they are."""
    def classify(o, name):
        if isinstance(o, Static):
            return ("static", type(o.value), o.value), None
        if o is None:
            return ("static", type(None), None), None
        if not isinstance(o, Variable):
            try:
                o = as_tensor_variable(o)
            except TypeError:
                raise TypeError(f"{what}: {fname} returned a {type(o).__name__}; return "
                                "arrays, numbers, or lists/tuples/dicts/namedtuples/"
                                "dataclasses of them") from None
        return ("out",), o

    return flatten(result, classify, "result")


def _strip_static(result):
    """A transform's symbolic result without its ``Static`` markers."""
    def classify(o, name):
        if isinstance(o, Static):
            return ("static", type(o.value), o.value), None
        return ("leaf",), o

    structure, leaves = flatten(result, classify)
    return unflatten(structure, leaves)


def call_traced(fn, args, kwargs):
    """``fn(*args, **kwargs)`` on placeholders, with a hint when a traced
    Python number was used as an axis, shape or loop count."""
    try:
        return fn(*args, **kwargs)
    except StaticShapeError:
        raise  # traced again with static shapes
    except TypeError as exc:
        _, leaves = flatten((args, kwargs), lambda o, n: (("leaf",), o))
        if any(getattr(v, "weak", False) and getattr(v, "traced_argument", False)
               for v in leaves if isinstance(v, Variable)):
            raise TypeError(
                f"{exc}\n  (while tracing {getattr(fn, '__name__', fn)} for tg.jit: Python "
                "numbers are traced as symbolic 0-d inputs; a number used as an axis, "
                "shape or loop count must be static: tg.jit(fn, static_argnums=...) or "
                "static_argnames=...)") from exc
        raise


# ------------------------------------------------------------------ tracing
class _Traced:
    """What one signature compiled to."""

    __slots__ = ("inputs", "outputs", "out_structure", "function", "int_checks")

    def __init__(self, inputs, outputs, out_structure, function):
        self.inputs = inputs
        self.outputs = outputs
        self.out_structure = out_structure
        self.function = function
        # Traced Python ints that meet smaller integer arrays: NumPy raises
        # OverflowError when the number does not fit (``uint8 + 300``); the
        # graph would wrap it, so each call checks (tensor.variable.resolve_weak).
        self.int_checks = tuple(
            (k, var.name, dtype, int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
            for k, var in enumerate(inputs)
            for dtype in sorted(getattr(var, "int_targets", ())))

    def check_ints(self, values):
        """``OverflowError`` like NumPy's for a traced Python int that does
        not fit an integer dtype it is converted to."""
        for k, name, dtype, low, high in self.int_checks:
            if not low <= values[k] <= high:
                raise OverflowError(f"Python integer {values[k]} out of bounds for {dtype} "
                                    f"(argument {name})")


class _Signature:
    """Split a call's arguments into static structure and dynamic values."""

    def __init__(self, fn, static_argnums, static_argnames, what):
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self.static_argnums = frozenset(static_argnums)
        self.static_argnames = frozenset(static_argnames)
        self.what = what
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        self.positional = [p.name for p in params
                           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def arg_name(self, i):
        return self.positional[i] if i < len(self.positional) else f"arg{i}"

    def split(self, args, kwargs):
        arg_structs, leaves = [], []
        for i, a in enumerate(args):
            static = (i in self.static_argnums or i - len(args) in self.static_argnums
                      or self.arg_name(i) in self.static_argnames)
            s, lv = _flatten_argument(a, static, self.arg_name(i), self.what)
            arg_structs.append(s)
            leaves.append(lv)
        kw_structs = []
        for k in sorted(kwargs):
            s, lv = _flatten_argument(kwargs[k], k in self.static_argnames, k, self.what)
            kw_structs.append((k, s))
            leaves.append(lv)
        return (tuple(arg_structs), tuple(kw_structs)), leaves

    def placeholders(self, key, shapes=None):
        """Placeholders per argument, named after their place in it
        (``x``, ``params['w']``, ``xs[1]``); with free lengths, or the
        given ``shapes`` (one per dynamic leaf)."""
        arg_structs, kw_structs = key
        named = [(s, self.arg_name(i)) for i, s in enumerate(arg_structs)]
        named += [(s, k) for k, s in kw_structs]
        shape_of = iter(shapes) if shapes is not None else None
        return [[_placeholder(d, n, next(shape_of) if shape_of else None)
                 for d, n in leaf_paths(s, name)] for s, name in named]

    @staticmethod
    def rebuild(key, per_arg):
        arg_structs, kw_structs = key
        args = [unflatten(s, v) for s, v in zip(arg_structs, per_arg)]
        kwargs = {k: unflatten(s, v)
                  for (k, s), v in zip(kw_structs, per_arg[len(arg_structs):])}
        return args, kwargs


class Compiled:
    """The callable made by ``jit`` and the function transforms: a cache of
    compiled functions keyed by the arguments' signature.

    ``transform(args, kwargs)`` gives the result tree of variables for
    symbolic arguments (default: ``fn`` itself); it is traced on placeholders
    and compiled for concrete arguments, and run directly (inlined) when the
    call is itself being traced, so transforms nest (``tg.grad(tg.grad(f))``,
    ``tg.jit(tg.grad(f))``). ``signature_of`` names the call's parameters
    (default ``fn``); ``what`` names the transform in messages.
    """

    def __init__(self, fn, transform=None, *, static_argnums=(), static_argnames=(),
                 what="jit", signature_of=None):
        # First: it copies ``fn.__dict__``, which for a wrapped ``Compiled``
        # (``tg.grad(tg.grad(f))``) holds that one's attributes.
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._what = what
        self._transform = transform
        self._sig = _Signature(signature_of or fn, static_argnums, static_argnames, what)
        self._cache = {}         # free-length signature -> _Traced
        self._needs_static = set()  # signatures that needed static shapes
        self._static = {}        # (signature, shapes) -> _Traced
        self._lock = threading.Lock()

    def _run(self, args, kwargs):
        if self._transform is None:
            return call_traced(self._fn, args, kwargs)
        return self._transform(args, kwargs)

    def _lookup(self, args, kwargs):
        key, leaves = self._sig.split(args, kwargs)
        values = [v for lv in leaves for v in lv]
        traced = self._cache.get(key)
        if traced is None and key in self._needs_static:
            traced = self._static.get((key, _shapes(values)))
        if traced is None:
            with self._lock:
                traced = self._trace_new(key, values)
        return traced, values

    def _trace_new(self, key, values):
        """Trace ``key`` with free lengths, or with the shapes of ``values``
        when it needs static shapes (holding the lock)."""
        if key not in self._needs_static:
            traced = self._cache.get(key)
            if traced is not None:
                return traced
            try:
                traced = self._cache[key] = self._trace(key)
                return traced
            except StaticShapeError:
                self._needs_static.add(key)
        skey = (key, _shapes(values))
        traced = self._static.get(skey)
        if traced is None:
            try:
                traced = self._static[skey] = self._trace(key, skey[1])
            except StaticShapeError as exc:
                raise StaticShapeError(f"{exc}, also with the arguments' shapes fixed (it "
                                       "depends on their values)") from exc
        return traced

    def _trace(self, key, shapes=None):
        per_arg = self._sig.placeholders(key, shapes)
        args, kwargs = _Signature.rebuild(key, per_arg)
        with no_frozen_draws(self._fn, self._what, list(args) + list(kwargs.values())):
            result = self._run(args, kwargs)
        inputs = [v for vs in per_arg for v in vs]
        out_structure, outputs = flatten_outputs(result, self.__name__, self._what)
        return _Traced(inputs, outputs, out_structure,
                       function(inputs, outputs, on_unused_input="ignore"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` compiled for these arguments' signature (traced and
        compiled on the first call with it); inlined while tracing."""
        try:
            traced, values = self._lookup(args, kwargs)
        except _SymbolicArgument:
            # Called while tracing another function: become part of its graph.
            if self._transform is None:
                return self._fn(*args, **kwargs)
            return _strip_static(self._transform(list(args), kwargs))
        if traced.int_checks:
            traced.check_ints(values)
        results = traced.function(*values) if traced.outputs else []
        return unflatten(traced.out_structure, list(results))

    def compiled(self, *args: Any, **kwargs: Any) -> Function:
        """The compiled ``tg.function`` these arguments' signature uses
        (``tg.printing.debugprint(f.compiled(x))`` shows its graph)."""
        return self._lookup(args, kwargs)[0].function

    @property
    def cache_size(self) -> int:
        """How many signatures (and shapes, where needed) have been traced and compiled."""
        return len(self._cache) + len(self._static)

    def clear_cache(self) -> None:
        """Forget every compiled signature (the next call traces again)."""
        with self._lock:
            self._cache.clear()
            self._static.clear()
            self._needs_static.clear()


def _shapes(values):
    return tuple(np.shape(v) for v in values)


# The earlier private names of the argument-tree helpers.
_flatten, _unflatten, _flatten_outputs = _flatten_argument, unflatten, flatten_outputs


def _placeholders(structure, prefix):
    return [_placeholder(d, n) for d, n in leaf_paths(structure, prefix)]


@overload
def jit(fn: Callable[..., Any], *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = ()) -> Compiled: ...
@overload
def jit(fn: None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = ()) -> Callable[[Callable[..., Any]], Compiled]: ...


def jit(fn: Callable[..., Any] | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = ()) -> Any:
    """Compile ``fn`` for each signature of its arguments.

    ``f = tg.jit(fn)``: the first call with given input dtypes, ndims and
    broadcastable (length-1) axes traces ``fn`` on symbolic placeholders and
    compiles the result with ``tg.function``; later calls with the same
    signature reuse it. ``fn`` may use ``numpy`` functions (they dispatch to
    tracegrad on placeholders) or ``tracegrad.tensor``. It may return an
    array, a number, or a tuple / list / dict / namedtuple / dataclass of
    them; the call returns arrays in the same structure. See the module
    docstring for how each kind of argument is traced, and for code that
    needs static lengths (``range(x.shape[0])``: compiled once per shape).
    Usable as ``@tg.jit`` or ``@tg.jit(static_argnames=('axis',))``.
    """
    if fn is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames)
    return Compiled(fn, static_argnums=static_argnums, static_argnames=static_argnames)
