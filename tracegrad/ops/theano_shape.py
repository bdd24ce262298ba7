"""Theano's shape helpers: ``join``, ``stacklists``, ``shape_padleft``,
``shape_padright``, ``shape_padaxis``, ``specify_shape``, ``mgrid``,
``ogrid``.

They are written with the NumPy-style ops (``concatenate``, ``stack``,
``expand_dims``, ``arange``), so their gradients and jvps come from those,
except ``specify_shape``: an identity op that checks the shape at run time
and gives the output the static lengths it names.
"""
import numpy as np

from tracegrad.ops import batching
from tracegrad.ops.alloc import arange, ones_like
from tracegrad.ops.base import format_shape
from tracegrad.ops.shape import concatenate, expand_dims, reshape, stack
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Constant, Op

__all__ = ["join", "stacklists", "shape_padleft", "shape_padright", "shape_padaxis",
           "specify_shape", "mgrid", "ogrid"]


def join(axis, *tensors):
    """Theano's ``join(axis, *tensors)``: ``concatenate(tensors, axis)``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return concatenate(list(tensors), axis)


def stacklists(arg):
    """A tensor from nested lists of scalars (or tensors) of one shape:
    ``stacklists([[a, b], [c, d]])`` is the 2×2 matrix of them."""
    if isinstance(arg, (list, tuple)):
        return stack([stacklists(a) for a in arg])
    return as_tensor_variable(arg)


def shape_padleft(t, n_ones=1):
    """``t`` with ``n_ones`` broadcastable axes in front."""
    t = as_tensor_variable(t)
    return expand_dims(t, tuple(range(n_ones))) if n_ones else t


def shape_padright(t, n_ones=1):
    """``t`` with ``n_ones`` broadcastable axes at the end."""
    t = as_tensor_variable(t)
    return expand_dims(t, tuple(range(t.ndim, t.ndim + n_ones))) if n_ones else t


def shape_padaxis(t, axis):
    """``t`` with a broadcastable axis inserted at ``axis`` (negative counts
    from the end of the result, as ``np.expand_dims``)."""
    t = as_tensor_variable(t)
    if not -t.ndim - 1 <= axis <= t.ndim:
        raise IndexError(f"shape_padaxis: axis {axis} is out of range for a result of "
                         f"{t.ndim + 1} dimensions")
    return expand_dims(t, axis)


def _static_length(entry):
    if entry is None:
        return None
    if isinstance(entry, Constant):
        value = int(entry.data)
    elif isinstance(entry, (int, np.integer)):
        value = int(entry)
    else:
        return None
    # -1 is how a node's inputs spell ``None`` (any length): rebuilt nodes
    # (``clone_with_new_inputs``: rewrites, vmap) read it back as such.
    return None if value == -1 else value


class SpecifyShape(Op):
    """Identity that raises at run time unless the input has the given
    lengths (``None``: any length); the output's static shape holds them."""
    __props__ = ()
    view_map = {0: [0]}

    def make_node(self, x, *lengths):
        x = as_tensor_variable(x)
        if len(lengths) != x.ndim:
            raise ValueError(f"specify_shape: {len(lengths)} lengths given for a "
                             f"{x.ndim}-d input")
        static = tuple(_static_length(n) if _static_length(n) is not None else s
                       for n, s in zip(lengths, x.type.shape))
        for known, given in zip(x.type.shape, map(_static_length, lengths)):
            if known is not None and given is not None and known != given:
                raise ValueError(f"specify_shape: the input has static shape "
                                 f"{format_shape(x.type.shape)}, not "
                                 f"{tuple(map(_static_length, lengths))}")
        inputs = [x] + [as_tensor_variable(-1 if n is None else n) for n in lengths]
        return Apply(self, inputs, [TensorType(x.dtype, static)()])

    def impl(self, xp, x, *lengths):
        wanted = tuple(int(n) for n in lengths)
        if len(wanted) != x.ndim or any(w not in (-1, s) for w, s in zip(wanted, x.shape)):
            shown = tuple(None if w == -1 else w for w in wanted)
            raise ValueError(f"specify_shape: expected shape {shown}, got {x.shape}")
        return x

    def vjp(self, node, output_grads):
        return [output_grads[0]] + [None] * (len(node.inputs) - 1)

    def vmap_rule(self, node, inputs, batch_axes):
        """Any length for the batch axis, the given ones below it."""
        if any(a is not None for a in batch_axes[1:]):
            return None
        x = batching.to_front(inputs[0], batch_axes[0])
        return [SpecifyShape()(x, None, *inputs[1:])], [0]


def specify_shape(x, shape):
    """Theano's ``specify_shape``: ``x``, checked at run time to have
    ``shape`` (a tuple of ints, integer scalars or ``None`` for any length);
    known lengths become part of the output's static type."""
    if isinstance(shape, (list, tuple)):
        return SpecifyShape()(x, *shape)
    shape = as_tensor_variable(shape)
    n = shape.type.shape[0] if shape.ndim == 1 else None
    if n is None:
        raise ValueError("specify_shape: the shape must be a tuple or a vector of "
                         "known length")
    return SpecifyShape()(x, *[shape[i] for i in range(n)])


class _Grid:
    """``mgrid[0:5, 0:3]`` / ``ogrid[...]``: Theano returns a list of
    ``ndim`` tensors (dense for mgrid, broadcastable for ogrid)."""

    def __init__(self, sparse):
        self.sparse = sparse

    def __getitem__(self, slices):
        if not isinstance(slices, tuple):
            slices = (slices,)
        ndim = len(slices)
        ranges = []
        for j, sl in enumerate(slices):
            if not isinstance(sl, slice) or sl.stop is None:
                raise TypeError("mgrid/ogrid take slices with a stop, e.g. mgrid[0:5, 0:3]")
            r = arange(0 if sl.start is None else sl.start, sl.stop,
                       1 if sl.step is None else sl.step)
            shape = [1] * ndim
            shape[j] = -1
            ranges.append(reshape(r, tuple(shape)))
        if self.sparse:
            return ranges
        grids = []
        for i in range(ndim):
            grid = ranges[i]
            for j in range(ndim):
                if j != i:
                    grid = grid * ones_like(ranges[j])
            grids.append(grid)
        return grids


mgrid = _Grid(sparse=False)
ogrid = _Grid(sparse=True)
