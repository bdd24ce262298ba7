"""Shared variables: graph inputs with a persistent value (a backend buffer).

(Filled out by the compiled-functions work: device placement, set_value
casting rules, pickling.)
"""
import numpy as np

from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import TensorVariable


class Container:
    """The mutable cell holding a shared variable's buffer."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class SharedVariable(TensorVariable):
    """A variable whose value persists between calls of compiled functions."""

    def __init__(self, type, value, name=None):
        TensorVariable.__init__(self, type, name=name)
        self.container = Container(value)

    def get_value(self, borrow=False):
        value = self.container.value
        return value if borrow else value.copy()

    def set_value(self, value, borrow=False):
        value = np.asarray(value)
        if value.ndim != self.type.ndim:
            raise TypeError(f"set_value of {self}: expected ndim {self.type.ndim}, "
                            f"got {value.ndim}")
        value = value.astype(self.type.dtype, copy=not borrow)
        self.container.value = value


def shared(value, name=None, borrow=False, device=None):
    """A shared variable holding ``value`` (copied unless ``borrow=True``)."""
    value = np.array(value, copy=not borrow) if not isinstance(value, np.ndarray) or not borrow \
        else value
    if value.dtype.kind not in "biufc":
        raise TypeError(f"shared: unsupported dtype {value.dtype}")
    return SharedVariable(TensorType(value.dtype, (None,) * value.ndim), value, name)
