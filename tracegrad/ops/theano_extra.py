"""Theano names that are compositions of other ops (issue 17): ``T.sgn``,
``T.inv``, ``T.iround``, ``T.int_div``, ``T.largest``/``smallest``,
``T.second``, ``T.xlogx``, ``T.complex``, ``T.complex_from_polar``,
``T.identity_like``, ``T.fill_diagonal``, ``T.addbroadcast``,
``T.unbroadcast``, ``T.patternbroadcast``; and the ``T.nnet`` activations
``elu``, ``selu``, ``softsign``, ``hard_sigmoid``, ``ultra_fast_sigmoid``,
``logsoftmax``, ``crossentropy_categorical_1hot``.

Each is written with existing ops, so its gradient, jvp, fusion and
batching come from theirs. Broadcast flags: tracegrad broadcasts a length-1
axis whatever its type says (NumPy's rule), so ``unbroadcast`` changes no
value and is the identity; ``addbroadcast`` checks that the axes have
length 1 (``specify_shape``), as Theano checks at run time.
"""
import numpy as np

from tracegrad.ops.alloc import arange, eye, fill
from tracegrad.ops.base import cast
from tracegrad.ops.elemwise import (abs, cos, eq, expm1, floor, floor_div, gt, log, lt,
                                    maximum, minimum, reciprocal, sign, sin, switch)
from tracegrad.ops.elemwise_numpy import clip
from tracegrad.ops.index import set_subtensor
from tracegrad.ops.linalg import diag, diagonal, dot
from tracegrad.ops.nnet import softmax
from tracegrad.ops.special import gammaincc
from tracegrad.ops.static import static_value
from tracegrad.ops.nnet import categorical_crossentropy, log_softmax
from tracegrad.ops.theano_shape import specify_shape
from tracegrad.tensor.variable import as_tensor_variable

__all__ = ["sgn", "inv", "iround", "int_div", "largest", "smallest", "second", "xlogx",
           "complex", "complex_from_polar", "identity_like", "fill_diagonal", "addbroadcast",
           "unbroadcast", "patternbroadcast", "chi2sf", "get_scalar_constant_value",
           "NotScalarConstantError"]
NNET = ["elu", "selu", "softsign", "hard_sigmoid", "ultra_fast_sigmoid", "logsoftmax",
        "crossentropy_categorical_1hot", "crossentropy_softmax_1hot"]
NLINALG = ["alloc_diag", "extract_diag", "matrix_dot"]


def sgn(x):
    """Theano's ``sgn``: ``sign``."""
    return sign(x)


def inv(x):
    """Theano's ``inv``: ``1 / x``."""
    return reciprocal(x)


def iround(x):
    """Theano's ``iround``: rounded half away from zero, as ``int64``."""
    x = as_tensor_variable(x)
    return cast(sign(x) * floor(abs(x) + 0.5), "int64")


def int_div(a, b):
    """Theano's ``int_div``: ``a // b`` (floor division)."""
    return floor_div(a, b)


def _fold(pairwise, name, args):
    if not args:
        raise TypeError(f"{name}() needs at least one argument")
    out = as_tensor_variable(args[0])
    for a in args[1:]:
        out = pairwise(out, a)
    return out


def largest(*args):
    """The elementwise maximum of all ``args`` (Theano's ``largest``)."""
    return _fold(maximum, "largest", args)


def smallest(*args):
    """The elementwise minimum of all ``args`` (Theano's ``smallest``)."""
    return _fold(minimum, "smallest", args)


def second(a, b):
    """Theano's ``second``: ``b`` broadcast to ``a``'s shape."""
    return fill(a, b)


def xlogx(x):
    """``x * log(x)``, 0 at ``x == 0`` (Theano's ``tensor.xlogx.xlogx``)."""
    x = as_tensor_variable(x)
    return switch(eq(x, 0), 0.0, x * log(x))


def complex(real, imag):
    """Theano's ``complex``: ``real + 1j * imag``."""
    return as_tensor_variable(real) + 1j * as_tensor_variable(imag)


def complex_from_polar(abs_, angle):
    """Theano's ``complex_from_polar``: ``abs * (cos(angle) + 1j sin(angle))``."""
    return complex(abs_ * cos(angle), abs_ * sin(angle))


def identity_like(x):
    """An identity matrix of ``x``'s shape and dtype (Theano's ``identity_like``)."""
    x = as_tensor_variable(x)
    if x.ndim != 2:
        raise ValueError(f"identity_like needs a matrix, got {x.ndim} dimensions")
    return eye(x.shape[0], x.shape[1], dtype=x.dtype)


def fill_diagonal(a, val):
    """``a`` with its main diagonal set to ``val`` (Theano's ``fill_diagonal``;
    a matrix, or an array whose axes all have one length)."""
    a = as_tensor_variable(a)
    if a.ndim < 2:
        raise ValueError(f"fill_diagonal needs 2 or more dimensions, got {a.ndim}")
    n = minimum(a.shape[0], a.shape[1]) if a.ndim == 2 else a.shape[0]
    i = arange(n)
    return set_subtensor(a[(i,) * a.ndim], val)


def addbroadcast(x, *axes):
    """Theano's ``addbroadcast``: ``x``, checked to have length 1 along
    ``axes`` (its static shape says 1 there)."""
    x = as_tensor_variable(x)
    shape = list(x.type.shape)
    for ax in axes:
        if not -x.ndim <= ax < x.ndim:
            raise ValueError(f"addbroadcast: axis {ax} is out of range for {x.ndim} dimensions")
        shape[ax % x.ndim] = 1
    return specify_shape(x, [x.shape[k] if s is None else s for k, s in enumerate(shape)])


def unbroadcast(x, *axes):
    """Theano's ``unbroadcast``: ``x`` itself (tracegrad broadcasts any
    length-1 axis, so the flag changes no value)."""
    x = as_tensor_variable(x)
    for ax in axes:
        if not -x.ndim <= ax < x.ndim:
            raise ValueError(f"unbroadcast: axis {ax} is out of range for {x.ndim} dimensions")
    return x


def patternbroadcast(x, broadcastable):
    """Theano's ``patternbroadcast``: ``addbroadcast`` on the ``True``
    entries, ``unbroadcast`` (nothing) on the others."""
    x = as_tensor_variable(x)
    if len(broadcastable) != x.ndim:
        raise ValueError(f"patternbroadcast: pattern {tuple(broadcastable)} has "
                         f"{len(broadcastable)} entries for {x.ndim} dimensions")
    axes = [k for k, b in enumerate(broadcastable) if b]
    return addbroadcast(x, *axes) if axes else x


# ------------------------------------------------------------ T.nnet
def elu(x, alpha=1.0):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    x = as_tensor_variable(x)
    return switch(gt(x, 0), x, alpha * expm1(x))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """Scaled ELU with Theano's (Klambauer et al.'s) constants."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


def softsign(x):
    """``x / (1 + |x|)``."""
    x = as_tensor_variable(x)
    return x / (1.0 + abs(x))


def hard_sigmoid(x):
    """Theano's ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""
    return clip(0.2 * as_tensor_variable(x) + 0.5, 0.0, 1.0)


def ultra_fast_sigmoid(x):
    """Theano's piecewise approximation of the sigmoid (max error ~0.02):
    with ``t = |x| / 2``, ``z = 1.5 t / (1 + t)`` below 1.7, a line up to 3,
    then 0.99505475368673; the result is ``(1 ± z) / 2`` by ``x``'s sign."""
    x = as_tensor_variable(x)
    t = 0.5 * abs(x)
    z = switch(lt(t, 1.7), 1.5 * t / (1.0 + t),
               switch(lt(t, 3.0), 0.935409070603099 + 0.0458812946797165 * (t - 1.7),
                      0.99505475368673))
    return 0.5 * (1.0 + sign(x) * z)


def logsoftmax(x, axis=-1):
    """Theano's ``logsoftmax``: ``log_softmax`` (rows of a matrix)."""
    return log_softmax(x, axis=axis)


def crossentropy_categorical_1hot(coding_dist, true_one_of_n):
    """``-log(coding_dist[i, true_one_of_n[i]])`` per row (integer labels)."""
    return categorical_crossentropy(coding_dist, true_one_of_n)



def crossentropy_softmax_1hot(x, y_idx, **kwargs):
    """Theano's ``crossentropy_softmax_1hot``: ``(nll, sm)`` with ``sm`` the
    row softmax of ``x`` and ``nll[i] = -log(sm[i, y_idx[i]])``."""
    if kwargs:
        raise TypeError(f"crossentropy_softmax_1hot: unexpected arguments {sorted(kwargs)}")
    sm = softmax(x, axis=-1)
    return categorical_crossentropy(sm, y_idx), sm


# ------------------------------------------------------------ T.nlinalg
def alloc_diag(x):
    """Theano's ``nlinalg.alloc_diag``: the square matrix with diagonal ``x``."""
    return diag(x)


def extract_diag(x):
    """Theano's ``nlinalg.extract_diag``: the main diagonal of the matrix ``x``."""
    return diagonal(x)


def matrix_dot(*args):
    """Theano's ``nlinalg.matrix_dot(a, b, c, ...)``: ``dot(dot(a, b), c)...``."""
    return _fold(dot, "matrix_dot", args)


# ------------------------------------------------------------ scalars
def chi2sf(x, k):
    """Theano's ``chi2sf``: the survival function of the chi-squared
    distribution with ``k`` degrees of freedom at ``x``
    (``gammaincc(k / 2, x / 2)``)."""
    return gammaincc(as_tensor_variable(k) / 2.0, as_tensor_variable(x) / 2.0)


class NotScalarConstantError(Exception):
    """Raised by ``get_scalar_constant_value`` for a value not known as one
    number while the graph is built."""


def get_scalar_constant_value(v, elemwise=True, only_process_constants=False,
                              max_recur=10):
    """Theano's ``get_scalar_constant_value``: ``v``'s value as a 0-d array
    when it is one number known while building the graph (a constant, or
    shapes and arithmetic folded from them), else ``NotScalarConstantError``."""
    value = static_value(v)
    if value is None or getattr(value, "size", 0) != 1:
        raise NotScalarConstantError(f"{v} is not a scalar constant")
    return np.array(np.asarray(value).reshape(()))
