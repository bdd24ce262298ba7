"""Small calls of the compiled CPU tier (``backend.c``): what a call
below ``NATIVE_MIN_SIZE`` elements must look like to run a long cluster's
contiguous kernel straight into fresh outputs, checked in about a
microsecond (``small_layout``, from a ``SmallPlan`` worked out once per
program), and ``address``, an array's data pointer read cheaply.

A small call through the kernel costs its packing (~3-5 us: these checks,
the outputs, the pointers, the foreign call) where the NumPy program's
whole-call ``fast`` path costs ~0.5-1 us per ufunc step: W2's 32-step loss
cluster on 400 float64 values took ~16 us there and ~9 us through the
kernel. Which one runs is measured per size class (``NativeProgram.run_small``).
"""
import ctypes

import numpy as np


def _address_reader():
    """``address(a)``: the data pointer of an ndarray. ``a.ctypes.data``
    costs ~1.1 us (it makes a ctypes helper object), a third of a small
    compiled call's packing; the pointer is the first field after the
    object header of NumPy's array struct (``PyArrayObject_fields.data``,
    part of NumPy's C ABI), read in ~0.2 us. Checked once against
    ``ctypes.data``; the slow way when the layout is not as expected."""
    offset = object.__basicsize__
    probe = np.empty(3)
    read = ctypes.c_void_p.from_address
    if read(id(probe) + offset).value != probe.ctypes.data:
        return lambda a: a.ctypes.data

    def address(a):
        return read(id(a) + offset).value
    return address


address = _address_reader()


class SmallPlan:
    """What ``small_layout`` checks of a program's calls, worked out once
    from its input types: the inputs of the call's ndim (``full``: each
    must have the call's shape, C-contiguous), the 0-d ones (single values),
    and the kernel layout (``mask``) that follows. An input of another ndim
    makes no plan. Each output and each ``SUM_TO`` argument reads a ``full``
    input (else it may be smaller than the call: no plan)."""

    __slots__ = ("full", "zero", "mask", "ptrs")

    def __init__(self, full, zero, mask, n_args):
        self.full = full    # [(position, dtype)]
        self.zero = zero
        self.mask = mask
        self.ptrs = ctypes.c_void_p * n_args


def small_plan(host):
    """The ``SmallPlan`` of a NumPy program, or ``None`` when its small
    calls never take the kernel (array constants, an input neither 0-d nor
    of the call's ndim, an output or ``SUM_TO`` argument reading no input
    of the call's ndim, a 0-d call)."""
    spec = host.spec
    ndim = spec.ndim
    if host.array_consts or host.reference_only or not ndim:
        return None
    if any(nd not in (0, ndim) for _, nd in spec.in_types):
        return None
    full = [(k, dt) for k, ((_, nd), dt) in enumerate(zip(spec.in_types, host.in_dtypes))
            if nd == ndim]
    fulls = {k for k, _ in full}
    needs = [deps[0] for deps in spec.output_deps if deps is not None]
    needs += [ins for ins, _ in host.shape_needs or ()]
    if not full or any(not fulls.intersection(ins) for ins in needs):
        return None
    zero = [(k, dt) for k, ((_, nd), dt) in enumerate(zip(spec.in_types, host.in_dtypes))
            if nd == 0]
    mask = tuple(nd == 0 for _, nd in spec.in_types)
    return SmallPlan(full, zero, mask, len(spec.in_types) + len(spec.outputs))


def small_layout(plan, arrays):
    """``(shape, size)`` of a small call the contiguous kernel of
    ``plan.mask`` can take straight into fresh C-ordered outputs: every
    operand of its dtype, the inputs of the call's ndim of one shape and
    C-contiguous; else ``None``."""
    if plan is None:
        return None
    ndarray = np.ndarray
    k, dt = plan.full[0]
    first = arrays[k]
    if type(first) is not ndarray:
        return None
    shape = first.shape
    for k, dt in plan.full:
        a = arrays[k]
        if (type(a) is not ndarray or (a.dtype is not dt and a.dtype != dt)
                or a.shape != shape or not a.flags.c_contiguous):
            return None
    for k, dt in plan.zero:
        a = arrays[k]
        if type(a) is not ndarray or (a.dtype is not dt and a.dtype != dt):
            return None
    size = first.size
    return (shape, size) if size else None
