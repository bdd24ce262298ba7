"""``In`` and ``Out``, and binding a call's arguments to the inputs.

``In(x, value=2, name='w')`` gives input ``x`` a default and a keyword name;
``Out(y, borrow=True)`` lets the call return ``y``'s buffer even when it is
shared with an input, a constant or a shared variable.
"""
import ctypes
import threading

import numpy as np

from tracegrad.trace import Constant, Variable


class In:
    """An input of a compiled function with an optional default and name.

    ``value``: the default (``None`` = the argument is required); ``name``:
    the keyword it is passed by (default: the variable's name); ``strict``:
    refuse values of another dtype instead of casting them;
    ``allow_downcast``: overrides ``tg.function(allow_input_downcast=...)``
    for this input; ``borrow`` and ``mutable`` (Theano's) are accepted and
    change nothing: arguments are never kept nor overwritten.
    """

    def __init__(self, variable, name=None, value=None, strict=False, allow_downcast=None,
                 borrow=None, mutable=None):
        if not isinstance(variable, Variable):
            raise TypeError(f"In() needs a symbolic variable, got {type(variable).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"In(name=...) must be a string, got {name!r}")
        self.variable = variable
        self.name = variable.name if name is None else name
        self.value = value
        self.strict = strict
        self.allow_downcast = allow_downcast
        # Theano's borrow= and mutable= (may the function keep / overwrite the
        # argument's buffer): accepted; tracegrad never keeps an argument's
        # buffer past the call nor writes into it, whatever they say.
        self.borrow = borrow
        self.mutable = mutable

    @property
    def has_default(self):
        return self.value is not None

    def __repr__(self):
        default = f", value={self.value!r}" if self.has_default else ""
        return f"In({self.variable}, name={self.name!r}{default})"


class Param(In):
    """Theano's old ``theano.Param(variable, default=None, name=None, ...)``:
    an ``In`` whose default is passed as ``default=``."""

    def __init__(self, variable, default=None, name=None, mutable=False, strict=False,
                 allow_downcast=None, implicit=None, borrow=None):
        super().__init__(variable, name=name, value=default, strict=strict,
                         allow_downcast=allow_downcast, borrow=borrow, mutable=mutable)
        self.implicit = implicit


class Out:
    """An output of a compiled function; ``borrow=True`` allows the result
    to be the very buffer of an input, constant or shared variable."""

    def __init__(self, variable, borrow=False):
        self.variable = variable
        self.borrow = bool(borrow)

    def __repr__(self):
        return f"Out({self.variable}, borrow={self.borrow})"


def normalize_inputs(inputs):
    """A list of ``In`` from ``inputs`` (variables or ``In``), checked."""
    from tracegrad.shared import SharedVariable
    if isinstance(inputs, (Variable, In)):
        raise TypeError("tg.function: inputs must be a list of variables or In(...), "
                        f"got a single {type(inputs).__name__}; wrap it in a list")
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"tg.function: inputs must be a list, got {type(inputs).__name__}")
    specs = [item if isinstance(item, In) else In(item) if isinstance(item, Variable)
             else _bad_input(item) for item in inputs]
    seen = set()
    for k, spec in enumerate(specs):
        var = spec.variable
        if isinstance(var, SharedVariable):
            raise TypeError(
                f"tg.function: shared variable {var} cannot be an explicit input (#{k}); "
                "its value is used automatically, or substitute it with givens=")
        if isinstance(var, Constant):
            raise TypeError(f"tg.function: the constant {var} cannot be an input (#{k})")
        if var in seen:
            raise ValueError(f"tg.function: input {var} is listed twice")
        seen.add(var)
    first_default = None
    for k, spec in enumerate(specs):
        if spec.has_default and first_default is None:
            first_default = k
        elif not spec.has_default and first_default is not None:
            raise TypeError(
                f"tg.function: input #{k} ({spec.variable}) has no default but follows "
                f"input #{first_default} ({specs[first_default].variable}), which has one; "
                "inputs with defaults must come after those without")
    return specs


def _bad_input(item):
    raise TypeError(f"tg.function: each input must be a variable or In(...), "
                    f"got {type(item).__name__} {item!r}")


def normalize_outputs(outputs):
    """``(list of Out, single)``: ``single`` when the call returns one array."""
    from tracegrad.tensor.variable import ShapeTuple, as_tensor_variable
    if outputs is None:
        return [], False
    # ``x.shape`` is a tuple but one output: Theano's shape vector
    single = not isinstance(outputs, (list, tuple)) or isinstance(outputs, ShapeTuple)
    items = [outputs] if single else list(outputs)
    specs = []
    for item in items:
        if not isinstance(item, Out):
            item = Out(item)
        if not isinstance(item.variable, Variable):
            try:
                item.variable = as_tensor_variable(item.variable)
            except TypeError:
                raise TypeError(f"tg.function: an output must be a variable, got "
                                f"{type(item.variable).__name__} {item.variable!r}") from None
        specs.append(item)
    return specs, single


def input_label(spec, k):
    """``input 'x' (#0)`` for messages."""
    return f"input '{spec.name}' (#{k})" if spec.name else f"input #{k}"


def describe_input(spec, k, fname):
    """``input 'x' (#0) of function 'f'`` for messages."""
    return f"{input_label(spec, k)} of function {fname}"


class Binder:
    """Maps a call's ``(args, kwargs)`` to one value per input."""

    def __init__(self, specs, defaults, fname):
        self.n = len(specs)
        self.defaults = defaults  # per input: converted default or None
        self.n_required = sum(1 for d in defaults if d is None)
        self.fname = fname
        names = {}
        for k, spec in enumerate(specs):
            if spec.name:
                names[spec.name] = k if spec.name not in names else None  # None: ambiguous
        self.names = names

    def bind(self, args, kwargs):
        n_args = len(args)
        if n_args > self.n:
            raise TypeError(f"function {self.fname} takes at most {self.n} argument"
                            f"{'s' if self.n != 1 else ''} ({n_args} given)")
        values = list(args) + [None] * (self.n - n_args)
        given = [True] * n_args + [False] * (self.n - n_args)
        for key, value in kwargs.items():
            k = self.names.get(key, -1)
            if k == -1:
                known = ", ".join(repr(n) for n in self.names) or "none"
                raise TypeError(f"function {self.fname} got an unexpected keyword "
                                f"argument {key!r}; inputs it takes by name: {known}")
            if k is None:
                raise TypeError(f"function {self.fname}: several inputs are named {key!r}; "
                                "pass them by position")
            if given[k]:
                raise TypeError(f"function {self.fname} got multiple values for input "
                                f"{key!r} (#{k})")
            values[k] = value
            given[k] = True
        missing = []
        for k in range(self.n):
            if not given[k]:
                if self.defaults[k] is None:
                    missing.append(k)
                else:
                    values[k] = self.defaults[k]
        if missing:
            names = ", ".join(self._label(k) for k in missing)
            raise TypeError(f"function {self.fname} is missing {len(missing)} required "
                            f"input{'s' if len(missing) > 1 else ''}: {names}")
        return values

    def _label(self, k):
        for name, j in self.names.items():
            if j == k:
                return f"{name!r} (#{k})"
        return f"#{k}"


# Calls of at least this many inputs check them in one pass (``batch_filter``).
BATCH_INPUTS = 8


def batch_filter(filters, ndarray):
    """``check(args) -> list``: the call's arguments through ``filters``,
    for a function of ``BATCH_INPUTS`` or more inputs whose filters all say
    what passes untouched (``casting.make_filter``'s ``passes``); else
    ``None``. One test of every argument (class, dtype, ndim, static
    lengths) returns them as they are when all pass, the common case; else
    each goes through its filter. For NumPy arrays the test is one C call
    (``CHECK_SOURCE``) where a compiler is found, else one generated
    Python expression.

    Why: one call of a function per input (64 inputs: 64 filter calls)
    cost 5 us with everything in cache, and ~35 us in a 2-process MPI
    bench where each call's own data and code were evicted between calls
    (docs/distributed.md, "Measured"); one code object and no call per
    input touch less. The generated expression still took 4.9 us for 64
    float64 vectors (four attribute tests each); the C test 0.5 with the
    ctypes call."""
    specs = [getattr(f, "passes", None) for f in filters]
    if len(filters) < BATCH_INPUTS or any(p is None or p[0] is not ndarray for p in specs):
        return None
    env = {"ndarray": ndarray}
    c_test = _c_test(specs, env, ndarray)
    tests = c_test or _python_tests(specs, env)
    for k, f in enumerate(filters):
        env[f"f{k}"] = f
    names = ", ".join(f"a{k}" for k in range(len(filters)))
    unpack = f"    {names}, = args\n"
    # (the C test takes ``args`` whole; Python's names the arrays first)
    before, after = ("", unpack) if c_test else (unpack, "")
    source = ("def check(args):\n" + before
              + f"    if ({' and '.join(tests)}):\n        return list(args)\n" + after
              + f"    return [{', '.join(f'f{k}(a{k})' for k in range(len(filters)))}]\n")
    exec(compile(source, "<tracegrad input check>", "exec"), env)
    return env["check"]


def _python_tests(specs, env):
    """``[test]``: Python expressions testing the arguments ``a0``, ``a1``...
    against ``specs`` (``env`` gets the dtypes they name)."""
    tests = []
    for k, (_, dtype, ndim, static) in enumerate(specs):
        env[f"dt{k}"] = dtype
        tests.append(f"type(a{k}) is ndarray and a{k}.dtype is dt{k} and a{k}.ndim == {ndim}")
        tests += [f"a{k}.shape[{axis}] == {n}" for axis, n in static]
    return tests


CHECK_SOURCE = r"""
#include <Python.h>

// tg_array: NumPy's array object (ccompiler.NDARRAY_STRUCT, put before).

// 1 when `args` (a tuple or list) holds spec[0] arrays, each of type
// `spec[1]` exactly, with (per array, from spec[2] on) the dtype object
// `descr`, `ndim` dimensions and their lengths (-1: any); else 0.
extern "C" int tg_check_inputs(PyObject* args, const Py_ssize_t* spec) {
    Py_ssize_t n = spec[0];
    PyObject** items;
    if (PyTuple_CheckExact(args) && PyTuple_GET_SIZE(args) == n)
        items = ((PyTupleObject*)args)->ob_item;
    else if (PyList_CheckExact(args) && PyList_GET_SIZE(args) == n)
        items = ((PyListObject*)args)->ob_item;
    else
        return 0;
    const Py_ssize_t* s = spec + 2;
    for (Py_ssize_t i = 0; i < n; ++i) {
        if ((Py_ssize_t)Py_TYPE(items[i]) != spec[1]) return 0;
        tg_array* a = (tg_array*)items[i];
        if ((Py_ssize_t)a->descr != s[0] || a->nd != s[1]) return 0;
        for (int d = 0; d < a->nd; ++d)
            if (s[2 + d] >= 0 && a->dimensions[d] != s[2 + d]) return 0;
        s += 2 + s[1];
    }
    return 1;
}
"""

_lock = threading.Lock()
_CHECKER = []


def _checker():
    """``tg_check_inputs`` as a ctypes function (built once, cached on disk
    by ``ccompiler``), or ``None`` without a compiler."""
    if not _CHECKER:
        with _lock:
            if not _CHECKER:
                _CHECKER.append(_build_checker())
    return _CHECKER[0]


def _build_checker():
    from tracegrad.backend import ccompiler
    source = CHECK_SOURCE.replace("#include <Python.h>\n",
                                  "#include <Python.h>\n" + ccompiler.NDARRAY_STRUCT, 1)
    fn = ccompiler.python_function(source, "tg_check_inputs")
    if fn is None:      # (no compiler, no Python headers: the Python test)
        return None
    fn.argtypes = [ctypes.py_object, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


def _c_test(specs, env, ndarray):
    """``[test]``: the Python expression calling ``tg_check_inputs`` on
    ``specs`` (``env`` gets what it names), or ``None`` for arrays other
    than NumPy's or without a compiler. The dtypes the spec points at live
    in ``env`` as long as the check."""
    fn = _checker() if ndarray is np.ndarray else None
    if fn is None:
        return None
    words = [len(specs), id(np.ndarray)]
    for k, (_, dtype, ndim, static) in enumerate(specs):
        env[f"dt{k}"] = dtype
        lengths = [-1] * ndim
        for axis, n in static:
            lengths[axis] = n
        words += [id(dtype), ndim] + lengths
    env["spec"] = spec = np.array(words, np.intp)
    env["c_check"], env["c_spec"] = fn, ctypes.c_void_p(spec.ctypes.data)
    return ["c_check(args, c_spec)"]
