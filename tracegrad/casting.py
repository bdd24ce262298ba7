"""Turning a user's value into an array of a ``TensorType``: the casting rules
shared by function inputs and ``SharedVariable.set_value``.

A value is cast to the type's dtype when that loses nothing:

- arrays and NumPy scalars go by dtype: allowed when NumPy promotion of the
  two dtypes gives the target (int -> float64, float32 -> float64, int32 ->
  int64); a float64 array never goes into a float32 input;
- Python numbers and (nested) lists go by value: allowed when every value
  survives the round trip (``0.5`` -> float32 yes, ``0.1`` -> float32 no,
  ``3`` -> int32 yes, ``1.5`` -> int32 no).

Theano's ``allow_input_downcast=None`` rule: a Python ``float`` (not a list,
not a NumPy scalar) goes into a type of dtype ``floatX`` whatever its
precision (``0.1`` into a ``floatX=float32`` scalar), unless it would
overflow to inf. ``allow_downcast=False`` turns this off.

Anything else raises ``TypeError`` naming the value's owner (``what``),
unless ``allow_downcast`` is true, in which case NumPy's unsafe cast is used.
The ndim and the static lengths of the type are checked after casting.
"""
import warnings

import numpy as np

from tracegrad.backend import CPU, is_device_array
from tracegrad.config import config
from tracegrad.tensor.variable import check_supported_value
from tracegrad.trace import Variable


def _value_type(array):
    shape = ", ".join(str(s) for s in array.shape)
    shape = f"({shape},)" if array.ndim == 1 else f"({shape})"
    return f"TensorType({array.dtype}, shape={shape})"


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:75] + "(...)"


_HINT = "or pass allow_input_downcast=True to tg.function"


def _downcast_error(ttype, what, detail, hint):
    hint = f", {hint}" if hint else ""
    return TypeError(
        f"{what} has type {ttype} and cannot take {detail} without loss of "
        f"precision; cast the value to {ttype.dtype} first{hint}")


def cast_value(ttype, value, allow_downcast=None, what="value", backend=CPU, strict=False,
               hint=_HINT):
    """``value`` as an array of ``ttype`` on ``backend``, or ``TypeError``.

    ``what`` names the owner in messages (e.g. ``"input 'x' of function 'f'"``);
    ``strict=True`` refuses any value whose dtype is not already the type's;
    ``hint`` ends the message of a refused cast.
    """
    dtype = np.dtype(ttype.dtype)
    if isinstance(value, Variable):
        raise TypeError(
            f"{what} expects a value, got the symbolic variable {value}; "
            "pass it in givens= to substitute a variable into a graph")
    check_supported_value(value, what)
    if strict:
        array = backend.asarray(value)
        if array.dtype != dtype:
            raise TypeError(f"{what} has type {ttype} and is strict: it takes only "
                            f"values of dtype {dtype}, got dtype {array.dtype}")
        check_shape(ttype, array, what)
        return array
    if isinstance(value, (np.ndarray, np.generic, backend.ndarray)) or is_device_array(value):
        if value.dtype != dtype:
            if not allow_downcast and np.promote_types(value.dtype, dtype) != dtype:
                raise _downcast_error(ttype, what, f"an array of dtype {value.dtype}", hint)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                value = value.astype(dtype)
        array = backend.asarray(value)
    else:
        array = backend.asarray(
            _cast_by_value(ttype, dtype, value, allow_downcast, what, hint))
    check_shape(ttype, array, what)
    return array


def _cast_by_value(ttype, dtype, value, allow_downcast, what, hint):
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} cannot turn {_short(value)} into an array: {exc}") from None
    if raw.dtype.kind not in "biufc":
        raise TypeError(
            f"{what} expects numbers of dtype {ttype.dtype}, got {_short(value)} "
            f"(which NumPy reads as dtype {raw.dtype})")
    if raw.dtype == dtype:
        return raw
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        converted = raw.astype(dtype)
    if allow_downcast or np.array_equal(raw, converted, equal_nan=raw.dtype.kind in "fc"):
        return converted
    if (allow_downcast is None and type(value) is float and dtype == np.dtype(config.floatX)
            and np.isfinite(converted)):
        return converted     # Theano's Python-float-to-floatX rule (module doc)
    raise _downcast_error(ttype, what, f"the value {_short(value)} "
                          f"(it would become {_short(converted)})", hint)


def check_shape(ttype, array, what="value"):
    """``TypeError`` naming both types when ``array`` does not fit ``ttype``'s
    ndim or static lengths."""
    if array.ndim != ttype.ndim:
        raise TypeError(
            f"{what} has type {ttype} but got a value of type {_value_type(array)}: "
            f"wrong number of dimensions ({array.ndim} instead of {ttype.ndim})")
    for axis, (static, actual) in enumerate(zip(ttype.shape, array.shape)):
        if static is not None and static != actual:
            kind = "broadcastable " if static == 1 else ""
            raise TypeError(
                f"{what} has type {ttype} but got a value of type {_value_type(array)}: "
                f"axis {axis} has length {actual}, where the {kind}type has static "
                f"length {static}")


def make_filter(ttype, what, allow_downcast=None, backend=CPU, strict=False):
    """A fast ``value -> array`` for one input: arrays that already fit pass
    through untouched; everything else goes through ``cast_value``. A
    tensor type's filter says which arrays pass untouched in its
    ``passes``: ``(array class, dtype, ndim, ((axis, static length), ...))``
    (``compile/inputs.batch_filter`` checks many inputs in one pass by it).

    A type other than a tensor type is used through its own
    ``filter(value, strict, allow_downcast)`` when it has one.
    """
    if not getattr(ttype, "array_values", False):
        own = getattr(ttype, "filter", None)
        if own is None:
            return _identity
        return lambda value: own(value, strict, allow_downcast)
    dtype = np.dtype(ttype.dtype)
    ndim = ttype.ndim
    ndarray = backend.ndarray
    static = tuple((axis, s) for axis, s in enumerate(ttype.shape) if s is not None)

    def slow(value):
        return cast_value(ttype, value, allow_downcast, what, backend, strict)

    if static:
        def filter_static(value):
            if type(value) is ndarray and value.dtype is dtype and value.ndim == ndim:
                shape = value.shape
                if all(shape[axis] == s for axis, s in static):
                    return value
            return slow(value)
        filter_static.passes = (ndarray, dtype, ndim, static)
        return filter_static

    if ndim == 0 and not strict and backend is CPU:
        number = _python_number_filter(dtype)
        if number is not None:
            # ``f(2, 3)``: Python numbers into scalar inputs, no NumPy detour.
            def filter_scalar(value):
                if type(value) is ndarray and value.dtype is dtype and value.ndim == 0:
                    return value
                array = number(value)
                return array if array is not None else slow(value)
            filter_scalar.passes = (ndarray, dtype, ndim, static)
            return filter_scalar

    def filter_plain(value):
        if type(value) is ndarray and value.dtype is dtype and value.ndim == ndim:
            return value
        return slow(value)
    filter_plain.passes = (ndarray, dtype, ndim, static)
    return filter_plain


def _identity(value):
    return value


def _python_number_filter(dtype):
    """``number(value) -> 0-d array`` for the Python numbers that fit
    ``dtype`` exactly, ``None`` for anything else (left to ``cast_value``)."""
    if dtype.kind == "f" and dtype.itemsize == 8:
        def number_f8(value):
            if type(value) is float or type(value) is int:
                try:
                    return np.array(value, dtype)
                except OverflowError:  # an int beyond float64: cast_value explains
                    return None
            return None
        return number_f8
    if dtype.kind == "f":
        largest = float(np.finfo(dtype).max)

        def number_float(value):
            # Out of range, inf and nan fail the comparison: cast_value decides.
            if (type(value) is float or type(value) is int) and -largest <= value <= largest:
                array = np.array(value, dtype)
                if array.item() == value:
                    return array
            return None
        return number_float
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = int(info.min), int(info.max)

        def number_int(value):
            if type(value) is int and low <= value <= high:
                return np.array(value, dtype)
            return None
        return number_int
    return None
