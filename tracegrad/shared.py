"""Shared variables: graph inputs with a persistent value (a backend buffer).

``shared(value)`` makes a ``SharedVariable`` whose buffer lives in its
``container``. Compiled functions read ``container.value`` at each call and
write updates into that same buffer when the shape allows, so an array from
``get_value(borrow=True)`` sees the new values. The static shape of a shared
variable is unknown on every axis: ``set_value`` may change its shape (not
its ndim).

``default_update``: an expression for the variable's next value, applied by
every compiled function that uses the variable unless that function gives an
explicit update or ``no_default_updates`` (random streams use it).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tracegrad.backend import get_backend, is_device_array
from tracegrad.casting import cast_value
from tracegrad.shared_access import UPDATE_LOCK, read_shared
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import TensorVariable, check_supported_value
from tracegrad.trace import Variable


class Container:
    """The mutable cell holding a shared variable's buffer."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        # (a slotted class needs this for pickle protocols 0 and 1)
        return (Container, (self.value,))

    def __repr__(self):
        return f"Container({self.value!r})"


class SharedVariable(TensorVariable):
    """A variable whose value persists between calls of compiled functions."""

    # May an update give it another shape (``shared(shape_can_change=True)``)?
    # (A class default: unpickled variables have it too.)
    shape_can_change = False

    def __init__(self, type, value, name=None, device=None, container=None):
        TensorVariable.__init__(self, type, name=name)
        self.backend = get_backend(device)
        self.container = container if container is not None else Container(value)
        self.default_update = None

    @property
    def device(self):
        """``'cpu'`` or ``'cuda'``: where the buffer lives."""
        return self.backend.name

    def get_value(self, borrow: bool = False, return_internal_type: bool = False) -> Any:
        """The value: a copy, or the buffer itself with ``borrow=True``.
        The copy is a NumPy array on every device, made while no update
        is being written; the buffer is the device's own array (a
        ``cupy.ndarray`` on ``'cuda'``). Theano's ``return_internal_type=True``
        with ``borrow=True`` is the buffer too; without ``borrow`` it is a
        copy on the device."""
        if return_internal_type and not borrow:
            return read_shared(lambda: self.backend.xp.array(self.container.value, copy=True))
        if borrow:
            return self.container.value
        # A registered reader: never a copy of a half-written update.
        return read_shared(self._host_copy)

    def _host_copy(self):
        return self.backend.host_copy(self.container.value)

    def set_value(self, value: Any, borrow: bool = False) -> None:
        """Replace the value. A new shape is fine; the ndim is fixed and the
        dtype is cast only when no precision is lost (else ``TypeError``).
        With ``borrow=True`` an array that already fits becomes the buffer.
        A call with updates running in another thread finishes first."""
        label = f"shared variable {self.name!r}" if self.name else "a shared variable"
        array = cast_value(self.type, value, None, f"set_value: {label}", self.backend,
                           hint="e.g. with np.asarray(value, dtype=...)")
        if not borrow and (array is value or getattr(array, "base", None) is value):
            array = array.copy()
        # Takes turns with updating calls: one that read the old value does
        # not overwrite this one with a value computed from it.
        with UPDATE_LOCK:
            self.container.value = array

    def clone(self):
        """Another variable with the same type, name and container (state)."""
        cp = type(self).__new__(type(self))
        Variable.__init__(cp, self.type, None, None, self.name)
        cp.__dict__.update(self.__dict__)
        return cp

    def __str__(self):
        if self.name is not None:
            return self.name
        return f"<shared {self.type}>"


# Constructors ``shared`` tries first, as Theano's ``shared_constructor``:
# ``fn(value, name, borrow, device)`` returns a shared variable, or ``None``
# when the value is not one it takes (``tracegrad.sparse`` adds one for
# scipy.sparse matrices when it is imported).
SHARED_CONSTRUCTORS = []


def shared_constructor(ctor, remove=False):
    """Theano's ``shared_constructor`` decorator: ``tg.shared(value, ...)``
    first tries ``ctor(value, name=name, borrow=borrow)`` (the most recently
    registered first); a ``TypeError`` from it means "not my kind of value"
    and the next constructor is tried. ``remove=True`` unregisters ``ctor``.
    Returns ``ctor``."""
    if remove:
        SHARED_CONSTRUCTORS[:] = [c for c in SHARED_CONSTRUCTORS
                                  if getattr(c, "theano_ctor", None) is not ctor]
        return ctor

    def adapter(value, name, borrow, device):
        kwargs = {"name": name, "borrow": borrow}
        if device is not None:
            kwargs["target"] = device
        try:
            return ctor(value, **kwargs)
        except TypeError:
            return None
    adapter.theano_ctor = ctor
    SHARED_CONSTRUCTORS.insert(0, adapter)
    return ctor


def shared(value: Any, name: str | None = None, borrow: bool = False,
           device: str | None = None, shape_can_change: bool = False) -> SharedVariable:
    """A shared variable holding ``value`` (copied unless ``borrow=True``).

    Python ints become int64, floats float64; arrays keep their dtype. The
    static shape is unknown on every axis, so ``set_value`` may resize it.
    ``device``: ``'cpu'`` or ``'cuda'`` (default ``tg.config.device``).
    An update of a compiled function must keep the variable's shape (an
    error otherwise, at compile time when the shapes are known then) unless
    ``shape_can_change=True``.
    """
    made = _shared(value, name, borrow, device)
    made.shape_can_change = bool(shape_can_change)
    return made


def _shared(value, name, borrow, device):
    if isinstance(value, Variable):
        raise TypeError(f"shared() needs a value, got the symbolic variable {value}")
    for constructor in SHARED_CONSTRUCTORS:
        made = constructor(value, name, borrow, device)
        if made is not None:
            return made
    backend = get_backend(device)
    check_supported_value(value, f"the value of shared variable {name!r}" if name else
                          "the value given to shared()")
    if isinstance(value, (np.ndarray, backend.ndarray)) or is_device_array(value):
        array = backend.asarray(value)  # moves it to the device when needed
        if not borrow and (array is value or getattr(array, "base", None) is value):
            array = array.copy()
    else:
        try:
            array = backend.asarray(np.array(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"shared() cannot turn {type(value).__name__} into an array: "
                            f"{exc}") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(f"shared(): unsupported dtype {array.dtype} "
                        "(numbers, booleans or arrays of them are supported)")
    dtype = canonical_dtype(array.dtype)
    if array.dtype != np.dtype(dtype):  # e.g. a big-endian array
        array = array.astype(dtype)
    ttype = TensorType(dtype, (None,) * array.ndim)
    return SharedVariable(ttype, array, name=name, device=backend.name)
