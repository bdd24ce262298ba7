"""``numpy.fft``: ``fft``, ``ifft``, ``rfft``, ``irfft``, ``hfft``, ``ihfft``,
their 2-d and n-d forms, ``fftshift``/``ifftshift`` and ``fftfreq``/``rfftfreq``
(``tracegrad.tensor.fft``, ``T.fft``; ``np.fft.*`` of a symbolic array lands here).

NumPy 2 semantics: ``n``/``s`` crop or zero-pad the input (``s[i] == -1``
keeps an axis' length), ``norm`` is ``None``/``'backward'``, ``'ortho'`` or
``'forward'``; float32 (and float16) inputs give complex64, other real and
integer inputs complex128; ``irfft`` of a float16 array is float16 as in
NumPy. The n-d transforms are NumPy's own sequence of 1-d transforms (last
axis first), so repeated axes and ``s`` behave exactly as there. ``out=`` is
refused: a symbolic result cannot be written into an array.

Four linear primitives carry everything; each vjp is built from the others,
so ``Rop`` (the double-vjp trick) and higher derivatives work. With the
pairing of "Complex gradients" (docs/user-guide.md: ``dL = Re(sum(g * dy))``,
no conjugation) a linear map's vjp is its plain transpose:

- ``FFT`` (complex to complex along one axis): the DFT matrix is symmetric,
  so the vjp of ``fft``/``ifft`` with any ``norm`` is the same transform of
  ``g`` (as in autograd and JAX; not ``n * ifft(g)``, which is the adjoint
  for the conjugating convention);
- ``RFFT`` (real ``x`` of length ``n`` to the ``n // 2 + 1`` first bins):
  ``y = P F x`` with ``P`` the bin selection, so the vjp is
  ``real(fft(pad(g, n)))`` (JAX transposes a naive rfft the same way);
- ``IRFFT`` (``n // 2 + 1`` bins to a real signal of length ``n``): ``y =
  c Re(sum_k w_k X_k e^{2 pi i jk/n})``, where the imaginary parts of bin 0
  and (``n`` even) bin ``n/2`` are ignored and the other bins count twice
  (``w_k = 2``, they stand for ``k`` and ``n - k``). Its vjp is
  ``w * conj(rfft(g))`` with the opposite ``norm`` (``HermitianWeight``
  applies ``w``), which is real at the ignored imaginary parts;
- ``Resize``: crop or zero-pad along one axis (``n`` may be symbolic); its
  transpose is the resize back to the input's length.
"""
import operator
import warnings

import numpy as np

from tracegrad.ops import batching
from tracegrad.ops import elemwise as ew
from tracegrad.ops.base import cast, format_shape, is_differentiable, match_gradient_dtype
from tracegrad.ops.manip import roll
from tracegrad.ops.shape_static import shape, static_int
from tracegrad.ops.static import _axis
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable, constant
from tracegrad.trace import Apply, Op, Variable

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2",
           "irfft2", "fftn", "ifftn", "rfftn", "irfftn", "fftshift", "ifftshift",
           "fftfreq", "rfftfreq"]

_NORMS = {None: "backward", "backward": "backward", "ortho": "ortho", "forward": "forward"}
_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


# ------------------------------------------------------------------ helpers
def _norm(norm, fname):
    """``norm`` as one of NumPy's three names (None is 'backward')."""
    if not isinstance(norm, (str, type(None))) or norm not in _NORMS:
        raise ValueError(f'{fname}: invalid norm value {norm!r}; should be "backward", '
                         '"ortho" or "forward"')
    return _NORMS[norm]


def _no_out(fname, out):
    if out is not None:
        raise TypeError(f"{fname}: out= is not supported on symbolic arrays (the result "
                        "is a new variable; assign it instead)")


def _complex_dtype(dtype):
    """NumPy's result dtype of a complex transform of ``dtype``."""
    return np.result_type(np.dtype(dtype), 1j).name


def _real_dtype(dtype):
    return np.empty(0, _complex_dtype(dtype)).real.dtype.name


def _is_complex(var):
    return var.dtype[0] == "c"


def _length(x, axis):
    """``x``'s length along ``axis``: an int when static, else a symbolic scalar."""
    n = x.type.shape[axis]
    return n if n is not None else shape(x)[axis]


def _one_axis(axis, x, fname):
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{fname}: axis must be an integer, got {axis!r}")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{fname}: axis must be an integer, got {axis!r}") from None
    return _axis(axis, x.ndim, fname)


def _int_arg(fname, what, n):
    """``n`` as a Python int (a symbolic scalar when not known while building)."""
    if isinstance(n, Variable):
        if n.ndim != 0 or n.dtype[0] not in "iu":
            raise TypeError(f"{fname}: {what} must be an integer, got {n.type}")
        value = static_int(n)
        return n if value is None else value
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"{fname}: {what} must be an integer, got {n!r}")
    try:
        return operator.index(n)
    except TypeError:
        raise TypeError(f"{fname}: {what} must be an integer, got {n!r}") from None


def _points(fname, n, x, axis):
    """The checked ``n`` of a 1-d transform: None (the axis' length, which
    must not be 0), an int >= 1, or a symbolic length (checked when run)."""
    if n is None:
        if x.type.shape[axis] == 0:
            raise ValueError(f"{fname}: invalid number of FFT data points (0) specified: "
                             f"axis {axis} of shape {format_shape(x.type.shape)} is empty")
        return None
    n = _int_arg(fname, "n", n)
    if isinstance(n, int) and n < 1:
        raise ValueError(f"{fname}: invalid number of FFT data points ({n}) specified")
    return n


def _resize(x, axis, n):
    """``x`` cropped or zero-padded to length ``n`` (int or symbolic) along ``axis``."""
    if isinstance(n, int) and x.type.shape[axis] == n:
        return x
    return Resize(axis)(x, n)


def _index(ndim, axis, sl):
    return (slice(None),) * axis + (sl,) + (slice(None),) * (ndim - axis - 1)


def _as_grad(g, like):
    """The cotangent ``g`` in ``like``'s dtype (a real cotangent of a complex
    output is a complex one with zero imaginary part)."""
    return g if g.dtype == like.dtype else cast(g, like.dtype)


def _grad_for(x, g):
    return match_gradient_dtype(g, x) if is_differentiable(x) else None


# ------------------------------------------------------------------ Resize
class Resize(Op):
    """``x`` cropped to, or zero-padded at the end to, length ``n`` along
    ``axis`` (``n`` an integer scalar input). Linear; its transpose resizes
    back to the input's length."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, x, n):
        x = as_tensor_variable(x)
        n = as_tensor_variable(n)
        if n.ndim != 0 or n.dtype[0] not in "iu":
            raise TypeError(f"Resize: the length must be an integer scalar, got {n.type}")
        length = static_int(n)
        if length is not None and length < 0:
            raise ValueError(f"Resize: negative length {length}")
        out = x.type.shape[:self.axis] + (length,) + x.type.shape[self.axis + 1:]
        return Apply(self, [x, n], [TensorType(x.dtype, out)()])

    def impl(self, xp, x, n):
        n = int(n)
        if n < 0:
            raise ValueError(f"Resize: negative length {n}")
        keep = min(n, x.shape[self.axis])
        out = xp.zeros(x.shape[:self.axis] + (n,) + x.shape[self.axis + 1:], dtype=x.dtype)
        part = _index(x.ndim, self.axis, slice(0, keep))
        out[part] = x[part]
        return out

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.first_input_rule(inputs, batch_axes, Resize(self.axis + 1))

    def vjp(self, node, output_grads):
        x = node.inputs[0]
        g = _as_grad(output_grads[0], node.outputs[0])
        return [_grad_for(x, Resize(self.axis)(g, _length(x, self.axis))), None]


# ------------------------------------------------------------------ FFT
class FFT(Op):
    """The complex DFT along ``axis`` (``inverse``: ``ifft``) with NumPy's
    ``norm``. Its vjp is itself (the DFT matrix is symmetric)."""

    __props__ = ("axis", "inverse", "norm")

    def __init__(self, axis, inverse=False, norm="backward"):
        self.axis, self.inverse, self.norm = axis, bool(inverse), norm

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not _is_complex(x):
            raise TypeError(f"FFT: the input must be complex, got {x.dtype}")
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)()])

    def impl(self, xp, x):
        transform = xp.fft.ifft if self.inverse else xp.fft.fft
        return transform(x, axis=self.axis, norm=self.norm)

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.first_input_rule(inputs, batch_axes, FFT(self.axis + 1, self.inverse, self.norm))

    def vjp(self, node, output_grads):
        g = _as_grad(output_grads[0], node.outputs[0])
        return [self(g)]

    def shape_relation(self, node):
        return ("same", node.inputs[0])


# ------------------------------------------------------------------ RFFT
class RFFT(Op):
    """The first ``n // 2 + 1`` DFT bins of a real ``x`` of length ``n`` along
    ``axis``; vjp ``real(fft(pad(g, n)))``."""

    __props__ = ("axis", "norm")

    def __init__(self, axis, norm="backward"):
        self.axis, self.norm = axis, norm

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.dtype not in ("float32", "float64"):
            raise TypeError(f"RFFT: the input must be float32 or float64, got {x.dtype}")
        n = x.type.shape[self.axis]
        half = None if n is None else n // 2 + 1
        out = x.type.shape[:self.axis] + (half,) + x.type.shape[self.axis + 1:]
        return Apply(self, [x], [TensorType(_complex_dtype(x.dtype), out)()])

    def impl(self, xp, x):
        return xp.fft.rfft(x, axis=self.axis, norm=self.norm)

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.first_input_rule(inputs, batch_axes, RFFT(self.axis + 1, self.norm))

    def vjp(self, node, output_grads):
        x, = node.inputs
        g = _as_grad(output_grads[0], node.outputs[0])
        full = FFT(self.axis, False, self.norm)(Resize(self.axis)(g, _length(x, self.axis)))
        return [ew.real(full)]


# ------------------------------------------------------------------ IRFFT
class IRFFT(Op):
    """The real signal of length ``n`` (an integer scalar input) whose
    half spectrum is ``x`` (``n // 2 + 1`` bins along ``axis``; the caller
    resizes), with NumPy's ``norm``."""

    __props__ = ("axis", "norm")

    def __init__(self, axis, norm="backward"):
        self.axis, self.norm = axis, norm

    def make_node(self, x, n):
        x, n = as_tensor_variable(x), as_tensor_variable(n)
        if not _is_complex(x):
            raise TypeError(f"IRFFT: the input must be complex, got {x.dtype}")
        if n.ndim != 0 or n.dtype[0] not in "iu":
            raise TypeError(f"IRFFT: n must be an integer scalar, got {n.type}")
        out = x.type.shape[:self.axis] + (static_int(n),) + x.type.shape[self.axis + 1:]
        return Apply(self, [x, n], [TensorType(_real_dtype(x.dtype), out)()])

    def impl(self, xp, x, n):
        return xp.fft.irfft(x, n=int(n), axis=self.axis, norm=self.norm)

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.first_input_rule(inputs, batch_axes, IRFFT(self.axis + 1, self.norm))

    def vjp(self, node, output_grads):
        x, n = node.inputs
        g = _as_grad(output_grads[0], node.outputs[0])
        spectrum = ew.conj(RFFT(self.axis, _SWAP[self.norm])(g))
        return [_grad_for(x, HermitianWeight(self.axis)(spectrum, n)), None]


class HermitianWeight(Op):
    """``x`` times 2 at the bins ``1 <= k <= (n - 1) // 2`` along ``axis``: the
    bins of a half spectrum that stand for both ``k`` and ``n - k``.
    Diagonal and real, so its own transpose."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def make_node(self, x, n):
        x, n = as_tensor_variable(x), as_tensor_variable(n)
        return Apply(self, [x, n], [TensorType(x.dtype, x.type.shape)()])

    def impl(self, xp, x, n):
        weights = xp.ones(x.shape[self.axis], dtype=x.real.dtype)
        weights[1:(int(n) - 1) // 2 + 1] = 2
        return x * weights.reshape((-1,) + (1,) * (x.ndim - self.axis - 1))

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.first_input_rule(inputs, batch_axes, HermitianWeight(self.axis + 1))

    def vjp(self, node, output_grads):
        x, n = node.inputs
        g = _as_grad(output_grads[0], node.outputs[0])
        return [_grad_for(x, self(g, n)), None]

    def shape_relation(self, node):
        return ("same", node.inputs[0])


# ------------------------------------------------------------------ 1-d transforms
def _c2c(fname, a, n, axis, norm, inverse):
    a = as_tensor_variable(a)
    axis = _one_axis(axis, a, fname)
    n = _points(fname, n, a, axis)
    a = cast(a, _complex_dtype(a.dtype))
    if n is not None:
        a = _resize(a, axis, n)
    return FFT(axis, inverse, norm)(a)


def _r2c(fname, a, n, axis, norm):
    a = as_tensor_variable(a)
    if _is_complex(a):
        raise TypeError(f"{fname}: the input must be real, got {a.dtype} (use fft for "
                        "complex input)")
    axis = _one_axis(axis, a, fname)
    n = _points(fname, n, a, axis)
    a = cast(a, _real_dtype(a.dtype))
    if n is not None:
        a = _resize(a, axis, n)
    return RFFT(axis, norm)(a)


def _c2r(fname, a, n, axis, norm):
    a = as_tensor_variable(a)
    axis = _one_axis(axis, a, fname)
    # NumPy: the real dtype of the input (float16 stays float16)
    out_dtype = np.result_type(np.empty(0, a.dtype).real.dtype, 1.0).name
    a = cast(a, _complex_dtype(a.dtype))
    if n is None:
        length = a.type.shape[axis]
        if length is None:  # n = 2 (m - 1): the input is already n // 2 + 1 long
            return cast(IRFFT(axis, norm)(a, (shape(a)[axis] - 1) * 2), out_dtype)
        n = 2 * (length - 1)
        if n < 1:
            raise ValueError(f"{fname}: invalid number of FFT data points ({n}) specified "
                             f"(the default n = 2 * ({length} - 1) of input shape "
                             f"{format_shape(a.type.shape)})")
    n = _points(fname, n, a, axis)
    a = _resize(a, axis, n // 2 + 1)
    if not isinstance(n, Variable):
        n = constant(np.int64(n))
    return cast(IRFFT(axis, norm)(a, n), out_dtype)


@implements(np.fft.fft)
def fft(a, n=None, axis=-1, norm=None, out=None):
    """The 1-d discrete Fourier transform along ``axis`` (``np.fft.fft``;
    ``n`` crops or zero-pads the input)."""
    _no_out("fft", out)
    return _c2c("fft", a, n, axis, _norm(norm, "fft"), False)


@implements(np.fft.ifft)
def ifft(a, n=None, axis=-1, norm=None, out=None):
    """The 1-d inverse discrete Fourier transform along ``axis`` (``np.fft.ifft``)."""
    _no_out("ifft", out)
    return _c2c("ifft", a, n, axis, _norm(norm, "ifft"), True)


@implements(np.fft.rfft)
def rfft(a, n=None, axis=-1, norm=None, out=None):
    """The ``n // 2 + 1`` non-negative frequency terms of the DFT of a real
    array (``np.fft.rfft``)."""
    _no_out("rfft", out)
    return _r2c("rfft", a, n, axis, _norm(norm, "rfft"))


@implements(np.fft.irfft)
def irfft(a, n=None, axis=-1, norm=None, out=None):
    """The real signal of length ``n`` (default ``2 * (m - 1)``) with the half
    spectrum ``a`` (``np.fft.irfft``)."""
    _no_out("irfft", out)
    return _c2r("irfft", a, n, axis, _norm(norm, "irfft"))


@implements(np.fft.hfft)
def hfft(a, n=None, axis=-1, norm=None, out=None):
    """The (real) DFT of a Hermitian-symmetric signal given by its first half
    (``np.fft.hfft``: ``irfft(conj(a))`` with the opposite norm)."""
    _no_out("hfft", out)
    a = as_tensor_variable(a)
    a = ew.conj(a) if _is_complex(a) else a
    return _c2r("hfft", a, n, axis, _SWAP[_norm(norm, "hfft")])


@implements(np.fft.ihfft)
def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """The inverse of ``hfft`` for a real ``a`` (``np.fft.ihfft``:
    ``conj(rfft(a))`` with the opposite norm)."""
    _no_out("ihfft", out)
    return ew.conj(_r2c("ihfft", a, n, axis, _SWAP[_norm(norm, "ihfft")]))


# ------------------------------------------------------------------ n-d transforms
_SEQUENCES = (list, tuple, range, np.ndarray)


def _cook(fname, a, s, axes):
    """NumPy's ``_cook_nd_args``: the ``n`` (None: the default) and axis of
    each 1-d transform; ``-1`` in ``s`` is the input's length."""
    for name, value in (("axes", axes), ("s", s)):
        if value is not None and not isinstance(value, _SEQUENCES):
            raise TypeError(f"{fname}: {name} must be a sequence of integers, got {value!r}")
    if s is None:
        axes = list(range(a.ndim)) if axes is None else list(axes)
        s = [None] * len(axes)
    else:
        s, axes = _given_s(fname, list(s), axes)
    if len(s) != len(axes):
        raise ValueError(f"{fname}: shape and axes have different lengths (s={s}, "
                         f"axes={list(axes)})")
    axes = [_one_axis(ax, a, fname) for ax in axes]
    s = [None if n is None else _int_arg(fname, "s", n) for n in s]
    s = [_length(a, ax) if isinstance(n, int) and n == -1 else n for n, ax in zip(s, axes)]
    return s, axes


def _given_s(fname, s, axes):
    """NumPy 2's deprecations of a given ``s``: without ``axes`` (the last
    ``len(s)`` axes), or holding None (the default length of that axis)."""
    if axes is None:
        warnings.warn(f"{fname}: `axes` should not be `None` if `s` is not `None` "
                      "(Deprecated in NumPy 2.0); pass the axes s refers to",
                      DeprecationWarning, stacklevel=5)
        axes = list(range(-len(s), 0))
    if any(n is None for n in s):
        warnings.warn(f"{fname}: passing None in `s` is deprecated in NumPy 2.0; pass "
                      "the default length of the axis instead", DeprecationWarning,
                      stacklevel=5)
    return s, list(axes)


def _c2c_nd(fname, a, s, axes, norm, out, inverse):
    _no_out(fname, out)
    norm = _norm(norm, fname)
    a = as_tensor_variable(a)
    s, axes = _cook(fname, a, s, axes)
    for n, axis in reversed(list(zip(s, axes))):
        a = _c2c(fname, a, n, axis, norm, inverse)
    return a


def _need_axes(fname, axes):
    if not axes:
        raise IndexError(f"{fname}: at least one axis is needed, got axes=()")


@implements(np.fft.fftn)
def fftn(a, s=None, axes=None, norm=None, out=None):
    """The n-d discrete Fourier transform over ``axes`` (all by default;
    ``np.fft.fftn``). With no axis at all the input comes back unchanged."""
    return _c2c_nd("fftn", a, s, axes, norm, out, False)


@implements(np.fft.ifftn)
def ifftn(a, s=None, axes=None, norm=None, out=None):
    """The n-d inverse discrete Fourier transform (``np.fft.ifftn``)."""
    return _c2c_nd("ifftn", a, s, axes, norm, out, True)


@implements(np.fft.fft2)
def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The 2-d discrete Fourier transform (``np.fft.fft2``)."""
    return _c2c_nd("fft2", a, s, axes, norm, out, False)


@implements(np.fft.ifft2)
def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The 2-d inverse discrete Fourier transform (``np.fft.ifft2``)."""
    return _c2c_nd("ifft2", a, s, axes, norm, out, True)


def _rfftn(fname, a, s, axes, norm, out):
    _no_out(fname, out)
    norm = _norm(norm, fname)
    a = as_tensor_variable(a)
    s, axes = _cook(fname, a, s, axes)
    _need_axes(fname, axes)
    a = _r2c(fname, a, s[-1], axes[-1], norm)
    for n, axis in reversed(list(zip(s[:-1], axes[:-1]))):
        a = _c2c(fname, a, n, axis, norm, False)
    return a


def _irfftn(fname, a, s, axes, norm, out):
    _no_out(fname, out)
    norm = _norm(norm, fname)
    a = as_tensor_variable(a)
    s, axes = _cook(fname, a, s, axes)
    _need_axes(fname, axes)
    for n, axis in zip(s[:-1], axes[:-1]):
        a = _c2c(fname, a, n, axis, norm, True)
    return _c2r(fname, a, s[-1], axes[-1], norm)


@implements(np.fft.rfftn)
def rfftn(a, s=None, axes=None, norm=None, out=None):
    """The n-d DFT of a real array: ``rfft`` over the last axis, ``fft`` over
    the others (``np.fft.rfftn``)."""
    return _rfftn("rfftn", a, s, axes, norm, out)


@implements(np.fft.irfftn)
def irfftn(a, s=None, axes=None, norm=None, out=None):
    """The inverse of ``rfftn`` (``np.fft.irfftn``; ``s[-1]`` defaults to
    ``2 * (m - 1)``)."""
    return _irfftn("irfftn", a, s, axes, norm, out)


@implements(np.fft.rfft2)
def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The 2-d DFT of a real array (``np.fft.rfft2``)."""
    return _rfftn("rfft2", a, s, axes, norm, out)


@implements(np.fft.irfft2)
def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The inverse of ``rfft2`` (``np.fft.irfft2``)."""
    return _irfftn("irfft2", a, s, axes, norm, out)


# ------------------------------------------------------------------ shifts
def _shift(fname, x, axes, sign):
    """``roll`` by ``sign * (length // 2)`` along each of ``axes`` (NumPy's
    ``fftshift``/``ifftshift``; a repeated axis rolls once per mention)."""
    x = as_tensor_variable(x)
    if axes is None:
        axes = list(range(x.ndim))
    elif not isinstance(axes, (list, tuple)):
        axes = [axes]
    for axis in [_one_axis(ax, x, fname) for ax in axes]:
        length = _length(x, axis)
        shift = sign * (length // 2)
        if not isinstance(shift, int) or shift:
            x = roll(x, shift, axis)
    return x


@implements(np.fft.fftshift)
def fftshift(x, axes=None):
    """The zero-frequency term moved to the centre (``np.fft.fftshift``)."""
    return _shift("fftshift", x, axes, 1)


@implements(np.fft.ifftshift)
def ifftshift(x, axes=None):
    """The inverse of ``fftshift`` (``np.fft.ifftshift``)."""
    return _shift("ifftshift", x, axes, -1)


# ------------------------------------------------------------------ frequencies
def _freq_n(fname, n):
    n = _int_arg(fname, "n", n)
    if isinstance(n, Variable):
        raise TypeError(f"{fname}: n must be known when the graph is built, got {n}")
    return n


def _frequencies(fname, ints, n, d, device):
    if device not in (None, "cpu"):
        raise ValueError(f"{fname}: device must be None or 'cpu', got {device!r}")
    if isinstance(d, Variable):  # symbolic spacing: ints / (n d), differentiable in d
        return ew.mul(constant(ints), ew.true_div(1.0, ew.mul(n, d)))
    return ints * (1.0 / (n * d))


def fftfreq(n, d=1.0, device=None):
    """The sample frequencies of an ``n``-point DFT with spacing ``d``
    (``np.fft.fftfreq``): a NumPy array, or symbolic when ``d`` is."""
    n = _freq_n("fftfreq", n)
    ints = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    return _frequencies("fftfreq", ints.astype(int), n, d, device)


def rfftfreq(n, d=1.0, device=None):
    """The sample frequencies of ``rfft`` (``np.fft.rfftfreq``): a NumPy
    array, or symbolic when ``d`` is."""
    n = _freq_n("rfftfreq", n)
    return _frequencies("rfftfreq", np.arange(0, n // 2 + 1, dtype=int), n, d, device)
