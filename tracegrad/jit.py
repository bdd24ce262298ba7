"""``tg.jit`` and ``tg.value_and_grad``: trace NumPy-style functions on
placeholders and compile them, once per signature of the arguments.

How arguments are traced (what a NumPy user expects to keep working):

- arrays (NumPy arrays and scalars, or anything with ``shape`` and
  ``dtype``) become placeholders of the same dtype and ndim; axes of length 1
  stay broadcastable, every other length is left free, so calls with other
  lengths reuse the compiled function;
- Python ``int``, ``float`` and ``complex`` become 0-d placeholders of the
  dtype NumPy gives such a number (int64, float64, complex128) that, like a
  Python number in NumPy 2, never upcasts the arrays it meets
  (``x_float32 * lr`` stays float32);
- lists, tuples and dicts are traced element by element;
- everything else (``bool``, ``str``, ``None``, enums...) is static: its value
  is part of the cache key and ``fn`` sees the value itself. Arguments named
  in ``static_argnums`` / ``static_argnames`` are static too (needed for
  numbers used as axes or shapes).
"""
import functools
import inspect
import threading

import numpy as np

from tracegrad.compile import function
from tracegrad.frozen_random import no_frozen_draws
from tracegrad.grad import grad
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, check_supported_value
from tracegrad.trace import Variable

__all__ = ["jit", "value_and_grad"]

_WEAK_DTYPES = {int: "int64", float: "float64", complex: "complex128"}


# ------------------------------------------------------------ argument trees
def _is_array(x):
    return isinstance(x, (np.ndarray, np.generic)) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__array__"))


class _SymbolicArgument(Exception):
    """A symbolic variable was passed: the caller is itself being traced."""


def _flatten(obj, static=False, name="argument"):
    """``(structure, leaves)``: a hashable description of ``obj`` and its
    dynamic values in order. Static parts are kept in the structure.
    ``name`` names ``obj`` in messages."""
    leaves = []

    def walk(o, static, name):
        if static:
            try:
                hash(o)
            except TypeError:
                raise TypeError(f"jit: static argument {o!r} of type "
                                f"{type(o).__name__} is not hashable") from None
            return ("static", type(o), o)
        if type(o) in (list, tuple):
            return (type(o).__name__,
                    tuple(walk(e, False, f"{name}[{i}]") for i, e in enumerate(o)))
        if type(o) is dict:
            keys = tuple(sorted(o, key=repr))
            return ("dict", keys, tuple(walk(o[k], False, f"{name}[{k!r}]") for k in keys))
        if isinstance(o, Variable):
            raise _SymbolicArgument()
        if type(o) in _WEAK_DTYPES:
            leaves.append(o)
            return ("weak", _WEAK_DTYPES[type(o)])
        if _is_array(o):
            check_supported_value(o, f"jit: argument {name}")
            leaves.append(o)
            shape = tuple(o.shape)
            return ("array", np.dtype(o.dtype).name, tuple(s == 1 for s in shape))
        return walk(o, True, name)

    return walk(obj, static, name), leaves


def _unflatten(structure, leaves):
    """Rebuild the object described by ``structure`` from ``leaves``."""
    it = iter(leaves)

    def build(s):
        kind = s[0]
        if kind == "static":
            return s[2]
        if kind in ("weak", "array", "out"):
            return next(it)
        if kind == "dict":
            return {k: build(c) for k, c in zip(s[1], s[2])}
        items = [build(c) for c in s[1]]
        return items if kind == "list" else tuple(items)

    return build(structure)


def _placeholders(structure, prefix):
    """Placeholders for the dynamic leaves of ``structure``, named after
    their place in the argument (``x``, ``params['w']``, ``xs[1]``)."""
    out = []
    stack = [(structure, prefix)]
    while stack:
        s, name = stack.pop()
        kind = s[0]
        if kind == "weak":
            var = TensorType(s[1], ())(name)
            var.weak = True  # promoted like a Python number (tensor.variable.resolve_weak)
            out.append(var)
        elif kind == "array":
            out.append(TensorType(s[1], tuple(1 if b else None for b in s[2]))(name))
        if kind in ("weak", "array"):
            out[-1].traced_argument = True  # its truth value depends on data
        elif kind == "dict":
            stack.extend(reversed([(c, f"{name}[{k!r}]") for k, c in zip(s[1], s[2])]))
        elif kind in ("list", "tuple"):
            stack.extend(reversed([(c, f"{name}[{i}]") for i, c in enumerate(s[1])]))
    return out


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


def _compile(inputs, outputs):
    return function(inputs, outputs, on_unused_input="ignore")


def _flatten_outputs(result, fname):
    """``(structure, variables)`` of what ``fn`` returned."""
    variables = []

    def walk(o):
        if type(o) in (list, tuple):
            return (type(o).__name__, tuple(walk(e) for e in o))
        if type(o) is dict:
            keys = tuple(sorted(o, key=repr))
            return ("dict", keys, tuple(walk(o[k]) for k in keys))
        if o is None:
            return ("static", type(None), None)
        if not isinstance(o, Variable):
            try:
                o = as_tensor_variable(o)
            except TypeError:
                raise TypeError(f"jit: {fname} returned a {type(o).__name__}; return "
                                "arrays, numbers, or lists/tuples/dicts of them") from None
        variables.append(o)
        return ("out",)

    return walk(result), variables


class _Signature:
    """Split a call's arguments into static structure and dynamic values."""

    def __init__(self, fn, static_argnums, static_argnames):
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self.static_argnums = frozenset(static_argnums)
        self.static_argnames = frozenset(static_argnames)
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
            s, lv = _flatten(a, static, self.arg_name(i))
            arg_structs.append(s)
            leaves.append(lv)
        kw_structs = []
        for k in sorted(kwargs):
            s, lv = _flatten(kwargs[k], k in self.static_argnames, k)
            kw_structs.append((k, s))
            leaves.append(lv)
        return (tuple(arg_structs), tuple(kw_structs)), leaves

    def placeholders(self, key):
        arg_structs, kw_structs = key
        per_arg = [_placeholders(s, self.arg_name(i)) for i, s in enumerate(arg_structs)]
        per_arg += [_placeholders(s, k) for k, s in kw_structs]
        return per_arg

    @staticmethod
    def rebuild(key, per_arg):
        arg_structs, kw_structs = key
        args = [_unflatten(s, v) for s, v in zip(arg_structs, per_arg)]
        kwargs = {k: _unflatten(s, v)
                  for (k, s), v in zip(kw_structs, per_arg[len(arg_structs):])}
        return args, kwargs


def _call_traced(fn, args, kwargs, key):
    """Run ``fn`` on placeholders, with a hint when a traced number was misused."""
    try:
        return fn(*args, **kwargs)
    except TypeError as exc:
        traced_numbers = any(s[0] == "weak" for s in key[0]) or any(
            s[0] == "weak" for _, s in key[1])
        if traced_numbers:
            raise TypeError(
                f"{exc}\n  (while tracing {getattr(fn, '__name__', fn)} for tg.jit: Python "
                "numbers are traced as symbolic 0-d inputs; a number used as an axis, "
                "shape or loop count must be static: tg.jit(fn, static_argnums=...) or "
                "static_argnames=...)") from exc
        raise


class _Compiled:
    """The callable made by ``jit`` / ``value_and_grad``: a cache of compiled
    functions keyed by the arguments' signature."""

    def __init__(self, fn, build, static_argnums, static_argnames, inline=False):
        self._fn = fn
        self._inline = inline
        self._build = build
        self._sig = _Signature(fn, static_argnums, static_argnames)
        self._cache = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn)

    def _lookup(self, args, kwargs):
        key, leaves = self._sig.split(args, kwargs)
        traced = self._cache.get(key)
        if traced is None:
            with self._lock:
                traced = self._cache.get(key)
                if traced is None:
                    traced = self._trace(key)
                    self._cache[key] = traced
        return traced, [v for lv in leaves for v in lv]

    def _trace(self, key):
        per_arg = self._sig.placeholders(key)
        args, kwargs = _Signature.rebuild(key, per_arg)
        with no_frozen_draws(self._fn, "jit", list(args) + list(kwargs.values())):
            result = _call_traced(self._fn, args, kwargs, key)
        inputs = [v for vs in per_arg for v in vs]
        out_structure, outputs = self._build(result, per_arg, key)
        return _Traced(inputs, outputs, out_structure, _compile(inputs, outputs))

    def __call__(self, *args, **kwargs):
        try:
            traced, values = self._lookup(args, kwargs)
        except _SymbolicArgument:
            if not self._inline:
                raise TypeError(f"{self.__name__} compiles its own graph and cannot be "
                                "called on symbolic variables") from None
            # Called while tracing another function: become part of its graph.
            return self._fn(*args, **kwargs)
        if traced.int_checks:
            traced.check_ints(values)
        results = traced.function(*values) if traced.outputs else []
        return _unflatten(traced.out_structure, list(results))

    def compiled(self, *args, **kwargs):
        """The compiled ``tg.function`` these arguments' signature uses
        (``tg.printing.debugprint(f.compiled(x))`` shows its graph)."""
        return self._lookup(args, kwargs)[0].function

    @property
    def cache_size(self):
        """How many signatures have been traced and compiled."""
        return len(self._cache)

    def clear_cache(self):
        """Forget every compiled signature (the next call traces again)."""
        with self._lock:
            self._cache.clear()


def jit(fn=None, *, static_argnums=(), static_argnames=()):
    """Compile ``fn`` for each signature of its arguments.

    ``f = tg.jit(fn)``: the first call with given input dtypes, ndims and
    broadcastable (length-1) axes traces ``fn`` on symbolic placeholders and
    compiles the result with ``tg.function``; later calls with the same
    signature reuse it. ``fn`` may use ``numpy`` functions (they dispatch to
    tracegrad on placeholders) or ``tracegrad.tensor``. It may return an
    array, a number, or a tuple / list / dict of them; the call returns
    arrays in the same structure. See the module docstring for how each kind
    of argument is traced. Usable as ``@tg.jit`` or
    ``@tg.jit(static_argnames=('axis',))``.
    """
    if fn is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames)

    def build(result, per_arg, key):
        return _flatten_outputs(result, getattr(fn, "__name__", "fn"))

    return _Compiled(fn, build, static_argnums, static_argnames, inline=True)


def value_and_grad(fn, argnums=0, *, static_argnums=(), static_argnames=()):
    """A compiled callable returning ``(value, grads)`` of the scalar ``fn``.

    ``grads`` is the gradient with respect to argument ``argnums`` (shaped
    like that argument: an array, or a list/tuple/dict of arrays), or a tuple
    of them when ``argnums`` is a tuple. ``fn`` must return a scalar (0-d)
    float value (``TypeError`` otherwise); the differentiated arguments must
    be float arrays or Python floats. Compiled once per argument signature,
    like ``jit``.
    """
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError("value_and_grad: argnums is empty")
    fname = getattr(fn, "__name__", "fn")

    def build(result, per_arg, key):
        arg_structs = key[0]
        if isinstance(result, (list, tuple, dict)) or result is None:
            raise TypeError(f"value_and_grad: {fname} must return a scalar, got a "
                            f"{type(result).__name__}")
        cost = result if isinstance(result, Variable) else as_tensor_variable(result)
        if cost.ndim != 0:
            raise TypeError(f"value_and_grad: {fname} must return a scalar (0-d) value, "
                            f"got ndim {cost.ndim}")
        if cost.dtype[0] not in "fc":
            raise TypeError(f"value_and_grad: {fname} returned dtype {cost.dtype}; "
                            "gradients need a float value")
        wrt, structures = [], []
        for n in nums:
            if not -len(arg_structs) <= n < len(arg_structs):
                raise ValueError(f"value_and_grad: argnums {n} but {fname} was called "
                                 f"with {len(arg_structs)} positional arguments")
            n = n % len(arg_structs)
            if arg_structs[n][0] == "static":
                raise TypeError(f"value_and_grad: argument {n} is static and has no "
                                "gradient")
            for var in per_arg[n]:
                if var.dtype[0] not in "fc":
                    raise TypeError(
                        f"value_and_grad: argument {n} ({var.name}) has dtype {var.dtype}; "
                        "gradients need float inputs")
            wrt.extend(per_arg[n])
            structures.append(arg_structs[n])
        grads = grad(cost, wrt, disconnected_inputs="ignore") if wrt else []
        grad_structs = tuple(_as_output_structure(s) for s in structures)
        out_structure = ("tuple", (("out",), grad_structs[0] if single
                                   else ("tuple", grad_structs)))
        return out_structure, [cost] + list(grads)

    return _Compiled(fn, build, static_argnums, static_argnames)


def _as_output_structure(structure):
    """The argument's structure with each dynamic leaf becoming an output."""
    kind = structure[0]
    if kind in ("weak", "array"):
        return ("out",)
    if kind == "static":
        return structure
    if kind == "dict":
        return ("dict", structure[1], tuple(_as_output_structure(c) for c in structure[2]))
    return (kind, tuple(_as_output_structure(c) for c in structure[1]))
