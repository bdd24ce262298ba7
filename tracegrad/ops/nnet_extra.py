"""Theano's ``T.nnet`` layers written with other ops (issue 17):
``h_softmax``, ``neighbours`` (``images2neibs``, ``neibs2images``) and
``bn`` (``batch_normalization``, ``batch_normalization_train``,
``batch_normalization_test``).

All are compositions (slices, stacks, reshapes, softmax, reductions), so
their gradients, jvps and batching come from those ops. ``images2neibs``
takes each patch position ``(i, j)`` as one strided slice of the images
(as ``conv2d`` takes its taps); ``'wrap_centered'`` first wraps the
images around by half a patch on each side.
"""
from tracegrad.ops import elemwise as ew
from tracegrad.ops.alloc import arange, zeros
from tracegrad.ops.linalg import batched_dot, dot, tensordot
from tracegrad.ops.nnet import softmax
from tracegrad.ops.reduce import mean as _mean, prod as _prod, var as _var
from tracegrad.ops.shape import concatenate, dimshuffle, flatten, reshape, shape, stack
from tracegrad.ops.shape import transpose
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["h_softmax", "images2neibs", "neibs2images", "batch_normalization",
           "batch_normalization_train", "batch_normalization_test"]


# ------------------------------------------------------------ h_softmax
def h_softmax(x, batch_size, n_outputs, n_classes, n_outputs_per_class, W1, b1, W2, b2,
              target=None):
    """Theano's two-level hierarchical softmax. ``x`` (batch, features);
    ``W1`` (features, n_classes), ``b1`` (n_classes,); ``W2`` (n_classes,
    features, n_outputs_per_class), ``b2`` (n_classes, n_outputs_per_class).
    Without ``target``: the (batch, n_outputs) probabilities of every
    output; with ``target`` (batch,) integers: the probability of each
    row's target."""
    x, W2, b2 = as_tensor_variable(x), as_tensor_variable(W2), as_tensor_variable(b2)
    class_probs = softmax(dot(x, W1) + b1, axis=-1)
    if target is None:
        act = tensordot(x, W2, axes=[[1], [1]]) + b2            # (batch, classes, per)
        out = softmax(act, axis=-1) * dimshuffle(class_probs, [0, 1, "x"])
        return reshape(out, (batch_size, -1))[:, :n_outputs]
    target = flatten(as_tensor_variable(target))
    classes = ew.floor_div(target, n_outputs_per_class)
    inside = ew.mod(target, n_outputs_per_class)
    act = batched_dot(x, W2[classes]) + b2[classes]            # (batch, per)
    rows = arange(shape(x)[0])
    return class_probs[rows, classes] * softmax(act, axis=-1)[rows, inside]


# ------------------------------------------------------------ neighbours
_NEIB_MODES = ("valid", "ignore_borders", "wrap_centered")


class NeibsCheck(Op):
    """``x`` itself, after checking at run time that Theano's
    ``images2neibs`` accepts its shape in ``mode`` (the identity for the
    gradient)."""

    __props__ = ("neib_shape", "neib_step", "mode")
    view_map = {0: [0]}

    def __init__(self, neib_shape, neib_step, mode):
        self.neib_shape, self.neib_step, self.mode = neib_shape, neib_step, mode

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        for size, k, step in zip(x.shape[2:], self.neib_shape, self.neib_step):
            if size < k or (self.mode == "valid" and (size - k) % step):
                raise ValueError(
                    f"images2neibs: in mode {self.mode!r} the image shape {x.shape[2:]} "
                    f"does not fit patches {self.neib_shape} with step {self.neib_step}"
                    + (" (each length minus the patch's must be a multiple of the step)"
                       if self.mode == "valid" else ""))
        return x

    def vjp(self, node, output_grads):
        return [output_grads[0]]


def _pair(value, name):
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"images2neibs: {name} must have 2 entries, got {value!r}")
    return value


def _wrap(x, axis, k):
    """``x`` extended along ``axis`` by its own ends, ``k // 2`` before and
    ``k - 1 - k // 2`` after (the image seen as a torus)."""
    before, after = k // 2, k - 1 - k // 2
    key = [slice(None)] * x.ndim
    parts = [x]
    if before:
        key[axis] = slice(-before, None)
        parts.insert(0, x[tuple(key)])
    if after:
        key[axis] = slice(0, after)
        parts.append(x[tuple(key)])
    return concatenate(parts, axis) if len(parts) > 1 else x


def _axis_taps(x, axis, k, step, count):
    """The ``k`` slices ``x[i : i + (count - 1) * step + 1 : step]``."""
    out = []
    for i in range(k):
        key = [slice(None)] * x.ndim
        key[axis] = slice(i, i + (count - 1) * step + 1, step)
        out.append(x[tuple(key)])
    return out


def images2neibs(ten4, neib_shape, neib_step=None, mode="valid"):
    """Theano's ``images2neibs``: the patches of shape ``neib_shape`` taken
    every ``neib_step`` (default: the patch, no overlap) from each image of
    ``ten4`` (batch, channels, rows, cols), one flattened patch per row of
    the result, in the order (batch, channel, patch row, patch column).
    ``mode``: 'valid' (the patches must tile the image exactly),
    'ignore_borders' (what does not fill a patch is left out) or
    'wrap_centered' (patches centred on every step-th pixel, wrapping around
    the borders; odd patch shapes)."""
    x = as_tensor_variable(ten4)
    if x.ndim != 4:
        raise ValueError(f"images2neibs: ten4 must be 4-d, got ndim {x.ndim}")
    if mode not in _NEIB_MODES:
        raise ValueError(f"images2neibs: mode must be one of {_NEIB_MODES}, got {mode!r}")
    (c, d) = _pair(neib_shape, "neib_shape")
    step = _pair(neib_step, "neib_step") if neib_step is not None else (c, d)
    if mode == "wrap_centered" and (c % 2 == 0 or d % 2 == 0):
        raise ValueError(f"images2neibs: mode 'wrap_centered' needs odd patch shapes, "
                         f"got {(c, d)}")
    x = NeibsCheck((c, d), step, mode)(x)
    h, w = shape(x)[2], shape(x)[3]
    if mode == "wrap_centered":
        counts = [ew.floor_div(h + step[0] - 1, step[0]), ew.floor_div(w + step[1] - 1, step[1])]
        x = _wrap(_wrap(x, 2, c), 3, d)
    else:
        counts = [ew.floor_div(h - c, step[0]) + 1, ew.floor_div(w - d, step[1]) + 1]
    taps = [t for r in _axis_taps(x, 2, c, step[0], counts[0])
            for t in _axis_taps(r, 3, d, step[1], counts[1])]
    patches = stack(taps, axis=-1)                     # (N, C, rows, cols, c*d)
    return reshape(patches, (-1, c * d))


def neibs2images(neibs, neib_shape, original_shape, mode="valid"):
    """Theano's ``neibs2images``: the images (``original_shape``) that
    ``images2neibs(images, neib_shape, mode=mode)`` cut into the rows of
    ``neibs`` (patches that do not overlap; 'valid' or 'ignore_borders',
    where the uncovered border is zero)."""
    if mode not in ("valid", "ignore_borders"):
        raise NotImplementedError(f"neibs2images does not support mode={mode!r}")
    neibs = as_tensor_variable(neibs)
    c, d = _pair(neib_shape, "neib_shape")
    n, ch, h, w = (original_shape[k] for k in range(4))
    gh, gw = ew.floor_div(h, c), ew.floor_div(w, d)
    out = reshape(neibs, (n, ch, gh, gw, c, d))
    out = reshape(transpose(out, (0, 1, 2, 4, 3, 5)), (n, ch, gh * c, gw * d))
    if mode == "ignore_borders":
        out = concatenate([out, zeros((n, ch, h - gh * c, gw * d), dtype=out.dtype)], 2)
        out = concatenate([out, zeros((n, ch, h, w - gw * d), dtype=out.dtype)], 3)
    return out


# ------------------------------------------------------------ bn
def batch_normalization(inputs, gamma, beta, mean, std, mode="low_mem"):
    """Theano's ``bn.batch_normalization``: ``(inputs - mean) * (gamma /
    std) + beta``, broadcasting as usual (``mode`` changes no value)."""
    if mode not in ("low_mem", "high_mem"):
        raise ValueError(f"batch_normalization: mode must be 'low_mem' or 'high_mem', "
                         f"got {mode!r}")
    inputs = as_tensor_variable(inputs)
    return (inputs - mean) * (as_tensor_variable(gamma) / std) + beta


def _bn_axes(axes, ndim):
    if axes == "per-activation":
        return (0,)
    if axes == "spatial":
        return (0,) + tuple(range(2, ndim))
    if isinstance(axes, str):
        raise ValueError(f"batch normalization: axes must be 'per-activation', 'spatial' or "
                         f"a tuple of ints, got {axes!r}")
    return tuple(sorted(int(a) % ndim for a in axes))


class _Params:
    """The parameters' form: already broadcastable against the inputs
    (same ndim), or only the non-normalized axes (expanded here and the
    statistics squeezed back on the way out), as in Theano."""

    def __init__(self, ndim, axes, param_ndim):
        self.keep = [k for k in range(ndim) if k not in axes]
        self.full = param_ndim == ndim
        if not self.full and param_ndim != len(self.keep):
            raise ValueError(f"batch normalization: the parameters must have {ndim} "
                             f"dimensions or {len(self.keep)} (the axes not normalized), "
                             f"got {param_ndim}")
        self.pattern = ["x"] * ndim
        for i, k in enumerate(self.keep):
            self.pattern[k] = i

    def expand(self, p):
        p = as_tensor_variable(p)
        return p if self.full else dimshuffle(p, self.pattern)

    def squeeze(self, s):
        return s if self.full else dimshuffle(s, self.keep)


def batch_normalization_train(inputs, gamma, beta, axes="per-activation", epsilon=1e-4,
                              running_average_factor=0.1, running_mean=None,
                              running_var=None):
    """Theano's ``bn.batch_normalization_train``: ``(out, mean, invstd)``
    (and the updated ``running_mean``, ``running_var`` when given) where
    ``out = (inputs - mean) * invstd * gamma + beta`` with the batch
    statistics over ``axes`` ('per-activation': axis 0; 'spatial': 0, 2,
    3, …; or a tuple), ``invstd = 1 / sqrt(var + epsilon)``; the running
    variance uses the unbiased ``var * m / (m - 1)``."""
    inputs = as_tensor_variable(inputs)
    axes = _bn_axes(axes, inputs.ndim)
    p = _Params(inputs.ndim, axes, as_tensor_variable(gamma).ndim)
    mean = _mean(inputs, axis=axes, keepdims=True)
    var = _var(inputs, axis=axes, keepdims=True)
    invstd = ew.reciprocal(ew.sqrt(var + epsilon))
    out = (inputs - mean) * invstd * p.expand(gamma) + p.expand(beta)
    results = [out, p.squeeze(mean), p.squeeze(invstd)]
    if running_mean is not None or running_var is not None:
        f = running_average_factor
        if running_mean is not None:
            rm = p.expand(running_mean) * (1.0 - f) + mean * f
            results.append(p.squeeze(rm))
        if running_var is not None:
            m = ew.cast(_prod(stack([shape(inputs)[a] for a in axes])), inputs.dtype)
            rv = p.expand(running_var) * (1.0 - f) + var * (m / (m - 1)) * f
            results.append(p.squeeze(rv))
    return tuple(results)


def batch_normalization_test(inputs, gamma, beta, mean, var, axes="per-activation",
                             epsilon=1e-4):
    """Theano's ``bn.batch_normalization_test``: ``(inputs - mean) * gamma /
    sqrt(var + epsilon) + beta`` with given statistics (shaped as
    ``gamma``)."""
    inputs = as_tensor_variable(inputs)
    p = _Params(inputs.ndim, _bn_axes(axes, inputs.ndim), as_tensor_variable(gamma).ndim)
    return ((inputs - p.expand(mean)) * p.expand(gamma) / ew.sqrt(p.expand(var) + epsilon)
            + p.expand(beta))
