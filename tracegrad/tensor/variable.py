"""``TensorVariable``: operators, methods and NumPy dispatch on symbolic arrays.

Operators and methods forward to the op functions (``_ops.add``...), which
``tracegrad.ops.api`` hands over when imported (``bind_ops``): this module
sits below the ops and imports none of them.
``__array_ufunc__`` / ``__array_function__`` make ``np.exp(x)``,
``np.sum(x, axis=0)`` ... build graph nodes; the tables that map NumPy
callables to tracegrad functions live in ``tracegrad.tensor.dispatch`` and are
filled by the op modules next to each op.
"""
import operator
from functools import lru_cache

import numpy as np

from tracegrad.evaluate import evaluate
from tracegrad.tensor.dispatch import dispatch_function, dispatch_ufunc
from tracegrad.trace import Constant, Variable
from tracegrad.tensor.protocols import (ShapeTuple, comparison as _comparison,
                                        item_assignment_error,
                                        known_number as _known_number,
                                        truth_message as _truth_message,
                                        written_as_operator as _written_as_operator)
from tracegrad.tensor.type import StaticShapeError, TensorType


class _Unbound:
    """Stands for the op functions until ``tracegrad.ops.api`` hands them over."""

    def __getattr__(self, name):
        raise RuntimeError(f"no op function {name!r} yet: tracegrad.ops.api binds them "
                           "when imported (import tracegrad does)")


# The op functions the operators and methods build with (``x + y`` is
# ``_ops.add(x, y)``). This module sits below the ops, which import it, so it
# cannot import them: ``tracegrad.ops.api`` hands its namespace over through
# ``bind_ops`` when imported (``import tracegrad`` does, before any graph).
_ops = _Unbound()


def bind_ops(namespace):
    """Make ``namespace`` (``tracegrad.ops.api``) the op functions that the
    operators and methods of symbolic arrays call."""
    global _ops
    _ops = namespace


class _TensorMixin:
    """Everything a symbolic array offers; shared by variables and constants."""

    __array_priority__ = 1000

    # ------------------------------------------------------------ type info
    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return self.type.ndim

    @property
    def broadcastable(self):
        return self.type.broadcastable

    @property
    def shape(self):
        """One entry per axis, as NumPy's ``shape``: a Python int where the
        length is known while building the graph (the static shape), else
        the symbolic int64 length ``T.shape(x)[i]`` (a ``ShapeTuple``)."""
        known = self.type.shape
        if None not in known:
            return ShapeTuple(known, self)
        vector = _ops.shape(self)
        return ShapeTuple((n if n is not None else vector[i] for i, n in enumerate(known)),
                          self)

    @property
    def size(self):
        """The number of elements: an int when every length is known."""
        known = self.type.shape
        if None not in known:
            return int(np.prod(known, dtype=np.int64))
        return _ops.prod(_ops.shape(self))

    @property
    def T(self):
        return _ops.transpose(self)

    @property
    def real(self):
        return _ops.real(self)

    @property
    def imag(self):
        return _ops.imag(self)

    # ------------------------------------------------------------ operators
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.true_div(self, other)
    def __rtruediv__(self, other): return _ops.true_div(other, self)
    def __floordiv__(self, other): return _ops.floor_div(self, other)
    def __rfloordiv__(self, other): return _ops.floor_div(other, self)
    def __mod__(self, other): return _ops.mod(self, other)
    def __rmod__(self, other): return _ops.mod(other, self)
    def __pow__(self, other):
        if type(other) is int and other == 2 and self.dtype == "bool":
            # ndarray ** 2 is np.square, which runs bool in int8 (NumPy's
            # fast path; np.power(b, 2) is int64): same dtype as NumPy.
            return _ops.sqr(self)
        return _ops.pow(self, other)

    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)
    def __invert__(self): return _ops.invert(self)
    def __lt__(self, other): return _ops.lt(self, other)
    def __le__(self, other): return _ops.le(self, other)
    def __gt__(self, other): return _ops.gt(self, other)
    def __ge__(self, other): return _ops.ge(self, other)
    def __and__(self, other): return _ops.and_(self, other)
    def __rand__(self, other): return _ops.and_(other, self)
    def __or__(self, other): return _ops.or_(self, other)
    def __ror__(self, other): return _ops.or_(other, self)
    def __xor__(self, other): return _ops.xor(self, other)
    def __rxor__(self, other): return _ops.xor(other, self)

    # ``x == y`` written in code is elementwise (NumPy); the comparisons that
    # containers make themselves (``in``, ``list.index``...) stay identity, so
    # variables work as dict keys, set members and list items (see
    # ``_written_as_operator``). Defining ``__eq__`` would drop the hash.
    __hash__ = object.__hash__

    def __eq__(self, other):
        if other is None or not _written_as_operator():
            return NotImplemented  # Python then compares identity
        return _comparison(_ops.eq, self, other)

    def __ne__(self, other):
        if other is None or not _written_as_operator():
            return NotImplemented
        return _comparison(_ops.neq, self, other)

    def __bool__(self):
        # Theano code writes ``if not W:`` for a parameter defaulting to None:
        # graph inputs and shared variables are truthy. A computed value's
        # truth (and a tg.jit argument's) depends on data not known yet.
        if self.owner is None and not isinstance(self, Constant) and \
                not getattr(self, "traced_argument", False):
            return True
        raise TypeError(_truth_message(self))

    def __len__(self):
        if not self.ndim:
            raise TypeError(f"len() of unsized object: {self} is 0-d")
        length = self.type.shape[0]
        if length is None:
            raise StaticShapeError(
                f"len() of {self} is not known while building the graph (its first "
                "length is free): use x.shape[0] (a symbolic length), give it a static "
                "shape (T.tensor(dtype, shape=(3, None))), or call the code through "
                "tg.jit, which traces again with static shapes")
        return length

    def __iter__(self):
        if not self.ndim:
            raise TypeError(f"iteration over a 0-d array: {self} is 0-d")
        for i in range(len(self)):
            yield self[i]

    # Python numbers from a symbolic value: only a constant has one while the
    # graph is built (jit's free lengths answer ``__index__`` themselves).
    def __float__(self):
        return float(_known_number(self, "float"))

    def __int__(self):
        return int(_known_number(self, "int"))

    def __complex__(self):
        return complex(_known_number(self, "complex"))

    def __index__(self):
        return operator.index(_known_number(self, "index"))

    def __getitem__(self, key):
        return _ops.getitem(self, key)

    def __setitem__(self, key, value):
        raise item_assignment_error(self, key)

    # ------------------------------------------------------------ methods
    def sum(self, axis=None, dtype=None, keepdims=False):
        return _ops.sum(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, keepdims=False):
        return _ops.mean(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, keepdims=False):
        return _ops.prod(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return _ops.var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return _ops.std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _ops.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _ops.argmin(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None):
        return _ops.cumsum(self, axis=axis, dtype=dtype)

    def cumprod(self, axis=None, dtype=None):
        return _ops.cumprod(self, axis=axis, dtype=dtype)

    def sort(self, axis=-1, kind=None, order=None):
        """The sorted array (Theano's method: returns it, sorts nothing in place)."""
        return _ops.sort(self, axis=axis, kind=kind, order=order)

    def argsort(self, axis=-1, kind=None, order=None):
        return _ops.argsort(self, axis=axis, kind=kind, order=order)

    def all(self, axis=None, keepdims=False):
        return _ops.all(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return _ops.any(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape, ndim=None):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return _ops.reshape(self, shape, ndim=ndim)

    def flatten(self, ndim=1):
        return _ops.flatten(self, ndim)

    def dimshuffle(self, *pattern):
        if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
            pattern = pattern[0]
        return _ops.dimshuffle(self, pattern)

    def ravel(self):
        return _ops.flatten(self, 1)

    def swapaxes(self, axis1, axis2):
        return _ops.swapaxes(self, axis1, axis2)

    def take(self, indices, axis=None):
        return _ops.take(self, indices, axis=axis)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = axes[0]
        return _ops.transpose(self, axes or None)

    def astype(self, dtype):
        return _ops.cast(self, dtype)

    def dot(self, other):
        return _ops.dot(self, other)

    def clip(self, a_min, a_max):
        return _ops.clip(self, a_min, a_max)

    def repeat(self, repeats, axis=None):
        return _ops.repeat(self, repeats, axis=axis)

    def round(self, decimals=0):
        return _ops.round(self, decimals)

    def squeeze(self, axis=None):
        return _ops.squeeze(self, axis)

    def conj(self):
        return _ops.conj(self)

    def nonzero(self, return_matrix=False):
        return _ops.nonzero(self, return_matrix)

    def eval(self, inputs_to_values=None):
        """Evaluate with the reference evaluator: ``x.eval({x: 2.0})``."""
        return evaluate([self], inputs_to_values or {})[0]

    # ------------------------------------------------------------ NumPy dispatch
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return dispatch_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return dispatch_function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        # NumPy asks for this in np.array([x, y]), np.asarray(x), np.float64(x)
        # and any NumPy code that is not dispatched (a list of variables).
        raise TypeError(
            f"NumPy cannot turn the symbolic variable {self} into an array: it has no "
            "value until the compiled function runs. Write `import tracegrad.numpy as "
            "np` (np.array([x, y]), np.asarray, np.stack, np.mean([a, b]) then build "
            "graph nodes), or T.stack([...]); compile it with tg.function or call "
            ".eval() for its value")


def _shape_tuple_tensor(lengths):
    """The int64 vector of ``lengths`` (a ``ShapeTuple``)."""
    if lengths.of is not None:  # (reads its input, as Theano's x.shape did)
        return _ops.shape(lengths.of)
    if not any(isinstance(e, Variable) for e in lengths):
        data = np.asarray(tuple(lengths), dtype="int64").reshape(len(lengths))
        return TensorConstant(_constant_type(data), data)
    return _ops.stack([e if isinstance(e, Variable) else as_tensor_variable(e, dtype="int64")
                       for e in lengths])


ShapeTuple.to_tensor = staticmethod(_shape_tuple_tensor)


class TensorVariable(_TensorMixin, Variable):
    """A symbolic array: a graph input or the result of an op."""

    @property
    def rng(self):
        """Theano's ``rv.rng``: the shared variable holding the generator
        state of a random draw (``get_value()`` saves it, ``set_value()``
        replays the same numbers)."""
        owner = self.owner
        if owner is None or not owner.op.is_random:
            raise AttributeError(f"{self} is not a random draw: it has no rng")
        return owner.inputs[0]


TensorType.variable_class = TensorVariable


def _defer_to_other_types(method):
    """``method`` returning ``NotImplemented`` for an operand of a type that
    is not an array type, so Python asks that operand (as Theano does):
    ``dense + sparse`` is the sparse variable's ``__radd__``."""
    def operator(self, other):
        if isinstance(other, Variable) and not other.type.array_values:
            return NotImplemented
        return method(self, other)
    operator.__name__ = method.__name__
    # (and its frames: errors name the operator the user wrote, see trace)
    operator.__code__ = operator.__code__.replace(co_name=method.__name__)
    return operator


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__matmul__", "__rmatmul__"):
    setattr(_TensorMixin, _name, _defer_to_other_types(getattr(_TensorMixin, _name)))
del _name


class TensorConstant(_TensorMixin, Constant):
    """A constant array in a graph. ``weak`` marks a Python number, which
    takes the dtype of the arrays it meets (NumPy 2 promotion)."""

    __slots__ = ("weak",)

    def __init__(self, type, data, name=None, weak=False):
        Constant.__init__(self, type, data, name)
        self.weak = weak

    def clone(self):
        return TensorConstant(self.type, self.data, self.name, self.weak)

    def signature(self):
        return (self.type, self.weak, self.data.tobytes())


def _constant_type(data):
    return TensorType(data.dtype, data.shape)


_PY_DEFAULT = {bool: "bool", int: "int64", float: "float64", complex: "complex128"}


def _plain_container(x):
    """``x.shape`` (a ``ShapeTuple``) as its int64 vector, an object array of
    variables as the list it stands for (stacked like one); else ``x``."""
    if isinstance(x, ShapeTuple):
        return x.as_tensor()
    if isinstance(x, np.ndarray) and x.dtype == object and \
            any(isinstance(e, Variable) for e in x.flat):
        return x.tolist()
    return x


def as_tensor_variable(x, name=None, dtype=None):
    """Turn ``x`` (a variable, number, list or array) into a tensor variable."""
    x = _plain_container(x)
    if isinstance(x, Variable):
        if not isinstance(x.type, TensorType):
            raise TypeError(f"{x} of type {x.type} is not a tensor")
        if dtype is not None and x.dtype != dtype:
            return _ops.cast(x, dtype)
        return x
    if type(x) in _PY_DEFAULT and dtype is None:
        if type(x) is int and not -2 ** 63 <= x < 2 ** 64:
            # Beyond int64/uint64: kept as a float, still a Python *int* for
            # promotion (``float32 + 2**70`` is float32, ``int8 + 2**70``
            # overflows, ``int8 < 2**70`` is True).
            data = np.asarray(float(x))
            return TensorConstant(_constant_type(data), data, name, weak="int")
        data = np.asarray(x, dtype="uint64" if type(x) is int and x >= 2 ** 63
                          else _PY_DEFAULT[type(x)])
        return TensorConstant(_constant_type(data), data, name, weak=True)
    if isinstance(x, (list, tuple)) and any(isinstance(e, Variable) for e in _flat(x)):
        return _ops.stack([as_tensor_variable(e) for e in x])
    check_supported_value(x, f"the {type(x).__name__} used in the graph")
    try:
        data = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot turn {type(x).__name__} {x!r} into a tensor: {exc}") from None
    if data.dtype.kind not in "biufc":
        raise TypeError(f"cannot turn {type(x).__name__} of dtype {data.dtype} into a tensor")
    if not data.flags.c_contiguous:
        # (np.ascontiguousarray would also turn a 0-d array into shape (1,))
        data = np.ascontiguousarray(data)
    return TensorConstant(_constant_type(data), data, name)


_KIND_HINTS = {
    "M": "convert it to numbers first, e.g. (a - a[0]) / np.timedelta64(1, 's')",
    "m": "convert it to numbers first, e.g. a / np.timedelta64(1, 's')",
    "V": "pass its fields (a['name']) as separate arrays",
    "O": "convert it to a numeric dtype first, e.g. a.astype(float)",
    "U": "strings have no tensor type",
    "S": "bytes have no tensor type",
}


def check_supported_value(value, what):
    """``TypeError`` naming ``what`` for a value tracegrad would silently
    misread: a ``numpy.ma.MaskedArray`` (its mask would be dropped) or an
    array whose dtype is not bool, integer, float or complex (datetime,
    structured, object, string)."""
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray \
            and isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{what} is a numpy.ma.MaskedArray, whose mask tracegrad would drop; pass "
            "value.filled(fill_value), or the data and np.ma.getmaskarray(value) as two "
            "arrays")
    dtype = getattr(value, "dtype", None)
    kind = getattr(dtype, "kind", "b")
    if kind not in "biufc":
        hint = _KIND_HINTS.get(kind, "tracegrad has no tensor type for it")
        raise TypeError(f"{what} has dtype {dtype}, which tracegrad does not support "
                        f"(only bool, integer, float and complex): {hint}")


def constant(x, name=None, dtype=None):
    """A (strongly typed) constant."""
    var = as_tensor_variable(x, name=name, dtype=dtype)
    if isinstance(var, TensorConstant) and var.weak:
        var = TensorConstant(var.type, var.data, name)
    return var


def _flat(seq):
    stack = list(seq)
    while stack:
        e = stack.pop()
        if isinstance(e, (list, tuple)):
            stack.extend(e)
        else:
            yield e


# ------------------------------------------------------------ NumPy 2 promotion
def _weak_target(value_kind, target):
    tk = np.dtype(target).kind
    if value_kind == "b":
        return target
    if value_kind in "iu":
        return target if tk in "iufc" else "int64"
    if value_kind == "f":
        return target if tk in "fc" else "float64"
    # complex
    if tk == "c":
        return target
    if tk == "f":
        return "complex128" if target == "float64" else "complex64"
    return "complex128"


@lru_cache(maxsize=1024)
def _result_name(dtypes):
    return np.result_type(*dtypes).name


_COMPARISONS = frozenset([np.equal, np.not_equal, np.less, np.less_equal, np.greater,
                          np.greater_equal])
_PY_WEAK = {"i": int, "u": int, "f": float, "c": complex}


@lru_cache(maxsize=4096)
def _loop_dtypes(ufunc, dtypes):
    """The input dtypes of the loop NumPy picks for ``ufunc`` over
    ``dtypes`` (Python ``int``/``float``/``complex`` = a weak Python number),
    or ``None`` when NumPy has no loop (the op then explains)."""
    try:
        return tuple(d.name for d in ufunc.resolve_dtypes(dtypes + (None,) * ufunc.nout)
                     [:ufunc.nin])
    except (TypeError, ValueError):
        return None


def _weak_dtypes(inputs, ufunc):
    """The dtype NumPy 2 gives each weak input of ``ufunc(*inputs)``."""
    if isinstance(ufunc, np.ufunc) and ufunc.nin == len(inputs):
        # The loop NumPy selects decides (``bool_array ** 2`` runs in int8).
        key = tuple(_PY_WEAK.get(_weak_kind(v), np.dtype(v.dtype))
                    if getattr(v, "weak", False) else np.dtype(v.dtype) for v in inputs)
        loop = _loop_dtypes(ufunc, key)
        if loop is not None:
            return loop
    strong = tuple(v.dtype for v in inputs if not getattr(v, "weak", False))
    target = _result_name(strong)
    return tuple(_weak_target(_weak_kind(v), target) for v in inputs)


def _weak_kind(v):
    """The dtype kind of the Python number behind weak ``v`` ("i" for an
    int too large for int64/uint64, stored as a float)."""
    return "i" if getattr(v, "weak", False) == "int" else np.dtype(v.dtype).kind


def resolve_weak(inputs, ufunc=None):
    """Give Python-number inputs the dtype NumPy 2 would (NEP 50).

    A Python number never upcasts an array: ``float32 * 2.0`` is float32,
    ``int32 + 1.5`` is float64. With ``ufunc`` (the NumPy ufunc the op
    answers to) the loop NumPy would run decides. Raises ``OverflowError``
    like NumPy for an integer that does not fit (``int8 + 300``), except in
    comparisons, whose result NumPy gives exactly (``uint8 == -1`` is False).
    """
    n_weak = sum(1 for v in inputs if getattr(v, "weak", False))
    if not n_weak or n_weak == len(inputs):
        return inputs
    dtypes = _weak_dtypes(inputs, ufunc)
    # NumPy compares integer arrays with any Python int exactly (a bool
    # array meets it in int64 and overflows like arithmetic does).
    compare = ufunc in _COMPARISONS and all(
        np.dtype(v.dtype).kind in "iu" for v in inputs if not getattr(v, "weak", False))
    if compare and any(_out_of_range(v, d) for v, d in zip(inputs, dtypes)):
        return _exact_comparison_inputs(inputs)
    out = []
    for v, new_dtype in zip(inputs, dtypes):
        if not getattr(v, "weak", False):
            out.append(v)
        elif not isinstance(v, Constant):
            out.append(_weak_placeholder(v, new_dtype, compare))
        elif _out_of_range(v, new_dtype):
            raise OverflowError(f"Python integer {int(v.data)} out of bounds for {new_dtype}")
        else:
            data = np.asarray(v.data, dtype=new_dtype)
            out.append(TensorConstant(_constant_type(data), data, v.name))
    return out


def _out_of_range(v, dtype):
    """Whether the weak integer constant ``v`` does not fit ``dtype``."""
    if not isinstance(v, Constant) or _weak_kind(v) not in "iu" or \
            not getattr(v, "weak", False) or np.dtype(dtype).kind not in "iu":
        return False
    if v.weak == "int":
        return True  # beyond int64 and uint64
    info = np.iinfo(dtype)
    return not info.min <= int(v.data) <= info.max


def _exact_comparison_inputs(inputs):
    """Inputs of a comparison between integer arrays and a Python integer
    outside their dtype, giving NumPy's exact answer: in float64 every
    integer dtype lies within +-2**64, so a bound of +-2**65 of the number's
    sign compares like the number itself (never equal, same order)."""
    out = []
    for v in inputs:
        if isinstance(v, Constant) and getattr(v, "weak", False):
            value = int(v.data) if _weak_kind(v) in "iub" else v.data
            if isinstance(value, int):
                value = float(max(min(value, 2 ** 65), -2 ** 65))
            data = np.asarray(value, dtype="float64")
            out.append(TensorConstant(_constant_type(data), data, v.name))
        else:
            out.append(_ops.cast(v, "float64") if v.dtype != "float64" else v)
    return out


def _weak_placeholder(v, new_dtype, compare):
    """A weakly typed placeholder (tg.jit traces Python numbers so) in a loop
    of ``new_dtype``: converted at run time, as NumPy converts a Python
    number. Its value is only known at run time, so it remembers the integer
    dtypes it must fit (tg.jit checks each call: ``OverflowError`` like
    NumPy); in a comparison it is compared exactly in int64 instead."""
    if np.dtype(new_dtype).kind in "iu" and np.dtype(v.dtype).kind in "iu":
        if compare and new_dtype != "uint64":
            return v  # the comparison runs in int64 (the other side is cast)
        targets = getattr(v, "int_targets", set())
        v.int_targets = targets | {new_dtype}
    return v if new_dtype == v.dtype else _ops.cast(v, new_dtype)
