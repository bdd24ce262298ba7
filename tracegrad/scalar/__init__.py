"""Theano's ``theano.scalar`` dtype helpers.

Theano had a separate scalar type system; tracegrad's scalars are 0-d
tensors, so this module keeps only what user code calls:

- ``upcast(*dtypes)``: the dtype NumPy gives when values of these dtypes meet
  (Theano's default ``cast_policy='custom'`` rule: 0-d arrays added together);
- ``float16 … complex128``, ``int8 … uint64``, ``bool``: 0-d tensor types
  (``tracegrad.scalar.float64('x')`` makes a float64 scalar variable);
- ``get_scalar_type(dtype)``, ``as_scalar(x)``, ``constant(x)``;
- the dtype name groups ``discrete_types``, ``continuous_types``,
  ``float_types``, ``complex_types``, ``int_types``, ``uint_types``,
  ``all_types``.
"""
import numpy as np

from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable

int_types = ("int8", "int16", "int32", "int64")
uint_types = ("uint8", "uint16", "uint32", "uint64")
float_types = ("float16", "float32", "float64")
complex_types = ("complex64", "complex128")
discrete_types = ("bool",) + int_types + uint_types
continuous_types = float_types + complex_types
all_types = discrete_types + continuous_types


def upcast(dtype, *dtypes):
    """The dtype of a sum of 0-d arrays of these dtypes (Theano's rule)."""
    names = [np.dtype(d) for d in (dtype,) + dtypes]
    return np.result_type(*names).name


def get_scalar_type(dtype):
    """The 0-d tensor type of ``dtype``."""
    return TensorType(np.dtype(dtype).name, ())


def as_scalar(x, name=None):
    """``x`` as a 0-d variable; raises when it has dimensions."""
    v = as_tensor_variable(x, name=name)
    if v.ndim != 0:
        raise TypeError(f"as_scalar: expected a 0-d value, got {v.ndim} dimension(s) "
                        f"({v.type})")
    return v


def constant(x, name=None, dtype=None):
    """A 0-d constant."""
    value = np.asarray(x, dtype=dtype)
    if value.ndim != 0:
        raise TypeError(f"constant: expected a 0-d value, got shape {value.shape}")
    return as_scalar(value, name=name)


for _name in all_types:
    globals()[_name] = get_scalar_type(_name)
del _name

__all__ = ["upcast", "get_scalar_type", "as_scalar", "constant", *all_types,
           "int_types", "uint_types", "float_types", "complex_types", "discrete_types",
           "continuous_types", "all_types"]
