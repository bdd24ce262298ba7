"""``scipy.special`` for traced values: ``tracegrad.scipy.special.erf(x)``.

Every function here takes symbolic variables (inside ``tg.function``,
``tg.jit``, ``tg.grad``...) and builds the differentiable tracegrad op; given
only plain arrays or numbers it calls ``scipy.special.<name>`` itself, so code
can use one name for both. The ufuncs are the elementwise rows of
``tracegrad.ops.special`` (and ``erf``, ``gammaln``... of ``ops.elemwise``);
``scipy.special.<ufunc>(variable)`` reaches the same rows through
``__array_ufunc__``. ``logsumexp``, ``softmax`` and ``log_softmax`` (SciPy
functions, not ufuncs) are compositions with SciPy's signatures and axis
semantics (``axis=None``: every element).

Gradients with respect to an integer order (``n`` of ``polygamma``/``jn``/
``yn``, ``v`` of ``iv``/``ive``) and to the shape ``a`` of ``gammainc``/
``gammaincc`` are refused with ``NotDifferentiableError``.
"""
from tracegrad.ops import api as _ops
from tracegrad.ops.base import NotDifferentiableError  # noqa: F401
from tracegrad.trace import Variable

_UFUNCS = ("erf", "erfc", "erfinv", "erfcinv", "erfcx", "gamma", "gammaln", "psi",
           "digamma", "polygamma", "beta", "betaln", "expit", "logit", "log_expit", "ndtr",
           "ndtri", "log_ndtr", "xlogy", "xlog1py", "entr", "rel_entr", "i0", "i1", "i0e",
           "i1e", "iv", "ive", "j0", "j1", "y0", "y1", "jn", "yn", "gammainc", "gammaincc",
           "jv")

__all__ = list(_UFUNCS) + ["logsumexp", "softmax", "log_softmax", "NotDifferentiableError"]


def _is_traced(values):
    return any(isinstance(v, Variable) for v in values)


def _scipy(name):
    try:
        import scipy.special as sp
    except ImportError:
        raise ImportError(f"tracegrad.scipy.special.{name} on plain arrays calls "
                          f"scipy.special.{name}: install SciPy (pip install scipy)") from None
    return getattr(sp, name)


def _elementwise(name):
    op = getattr(_ops, name)

    def fn(*args, **kwargs):
        if not _is_traced(list(args) + list(kwargs.values())):
            return _scipy(name)(*args, **kwargs)
        if kwargs:
            raise TypeError(f"tracegrad.scipy.special.{name} on symbolic values takes no "
                            f"keyword arguments (got {sorted(kwargs)})")
        return op(*args)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``scipy.special.{name}``: the tracegrad op on symbolic values, "
                  "SciPy's on plain arrays.")
    return fn


for _name in _UFUNCS:
    globals()[_name] = _elementwise(_name)
del _name


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``scipy.special.logsumexp``: ``log(sum(b * exp(a), axis))``, stable;
    with ``return_sign`` the pair ``(log|sum|, sign(sum))``, else NaN where
    the sum is negative. ``axis=None`` reduces every axis."""
    if not _is_traced([a, b]):
        return _scipy("logsumexp")(a, axis=axis, b=b, keepdims=keepdims,
                                   return_sign=return_sign)
    a = _ops.as_tensor_variable(a)
    if a.dtype[0] != "f":
        a = _ops.cast(a, "float64")
    if b is None and not return_sign:
        return _ops.logsumexp(a, axis=axis, keepdims=keepdims)
    if b is not None:
        b = _ops.as_tensor_variable(b)
        # Terms with b == 0 count as absent (SciPy: a -inf there), also for the max.
        a = _ops.switch(_ops.eq(b, 0), -float("inf"), a)
    # The shift m cancels out of the value; its gradient terms cancel too.
    m = _ops.max(a, axis=axis, keepdims=True)
    m = _ops.switch(_ops.or_(_ops.isinf(m), _ops.isnan(m)), 0, m)
    e = _ops.exp(a - m)
    s = _ops.sum(e if b is None else b * e, axis=axis, keepdims=True)
    out = (_ops.log(_ops.abs(s)) if return_sign else _ops.log(s)) + m
    sign = _ops.sign(s)
    if not keepdims:
        out, sign = (_squeeze(v, axis) for v in (out, sign))
    return (out, sign) if return_sign else out


def _squeeze(v, axis):
    if axis is None:
        return v.reshape(())
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return _ops.squeeze(v, axis=tuple(ax % v.ndim for ax in axes))


def softmax(x, axis=None):
    """``scipy.special.softmax``: ``exp(x) / sum(exp(x), axis)``, stable;
    ``axis=None`` (SciPy's default) normalizes over every element."""
    if not _is_traced([x]):
        return _scipy("softmax")(x, axis=axis)
    return _ops.softmax(x, axis=axis)


def log_softmax(x, axis=None):
    """``scipy.special.log_softmax``: ``x - logsumexp(x, axis)``, stable;
    ``axis=None`` (SciPy's default) normalizes over every element."""
    if not _is_traced([x]):
        return _scipy("log_softmax")(x, axis=axis)
    return _ops.log_softmax(x, axis=axis)
