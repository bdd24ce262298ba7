"""NumPy dispatch: which tracegrad function answers ``np.<name>(variable)``.

Op modules register their NumPy counterparts next to the op definition:

    @implements(np.sum)
    def sum(x, axis=None, ...): ...

    register_ufunc(np.exp, exp)

A NumPy function or ufunc without an entry raises ``TypeError`` naming it.
"""
import sys

import numpy as np

UFUNCS = {}           # np.ufunc -> tracegrad function (elementwise call)
UFUNC_REDUCE = {}     # np.ufunc -> tracegrad reduction (ufunc.reduce)
FUNCTIONS = {}        # NumPy function -> tracegrad function


def register_ufunc(ufunc, fn, reduce=None):
    UFUNCS[ufunc] = fn
    if reduce is not None:
        UFUNC_REDUCE[ufunc] = reduce


PENDING_UFUNCS = {}   # (module name, ufunc name) -> tracegrad function, not yet bound


def register_ufunc_by_name(module, name, fn):
    """``fn`` answers the ufunc ``<module>.<name>`` (``'scipy.special'``,
    ``'erf'``) once that module has been imported: optional libraries are
    never imported for this. Bound on the first dispatch that misses."""
    PENDING_UFUNCS[(module, name)] = fn


def _bind_pending():
    """Move the pending ufuncs of the modules imported by now into ``UFUNCS``."""
    for (module, name), fn in list(PENDING_UFUNCS.items()):
        mod = sys.modules.get(module)
        if mod is None:
            continue
        del PENDING_UFUNCS[(module, name)]
        ufunc = getattr(mod, name, None)
        if isinstance(ufunc, np.ufunc):  # (scipy.special.polygamma is a function)
            UFUNCS.setdefault(ufunc, fn)


def implements(*numpy_functions):
    """Decorator: ``fn`` answers each of ``numpy_functions`` on variables."""
    def register(fn):
        for f in numpy_functions:
            FUNCTIONS[f] = fn
        return fn
    return register


def _name(obj):
    """``obj``'s public name: ``numpy.unique``, ``numpy.linalg.eigvals``."""
    mod = getattr(obj, "__module__", None) or "numpy"
    if mod.startswith("numpy") and any(part.startswith("_") for part in mod.split(".")):
        mod = "numpy"  # (a private module: NumPy exports it as numpy.X)
    return f"{mod}.{getattr(obj, '__name__', obj)}"


# Where an unsupported function's error sends the user.
SUPPORTED_LIST = ("the supported functions are listed in docs/numpy-coverage.md "
                  "(and are the names of tracegrad.numpy)")


def _unsupported(what):
    return TypeError(f"{what} is not supported yet on symbolic (traced) values by "
                     f"tracegrad; {SUPPORTED_LIST}. It still works on NumPy arrays")


def dispatch_ufunc(ufunc, method, inputs, kwargs):
    if kwargs.get("out") is not None:
        raise TypeError(f"{_name(ufunc)}(..., out=) cannot write into a symbolic variable")
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    if method == "__call__":
        fn = UFUNCS.get(ufunc)
        if fn is None and PENDING_UFUNCS:
            _bind_pending()
            fn = UFUNCS.get(ufunc)
        if fn is None:
            raise _unsupported(f"NumPy ufunc {_name(ufunc)}")
        if kwargs.pop("dtype", None) is not None or kwargs:
            raise TypeError(f"{_name(ufunc)} on symbolic variables takes no keyword "
                            f"arguments (got {sorted(kwargs)})")
        return fn(*inputs)
    if method == "reduce" and ufunc in UFUNC_REDUCE:
        return UFUNC_REDUCE[ufunc](*inputs, **kwargs)
    raise _unsupported(f"NumPy's {_name(ufunc)}.{method}")


def ufunc_implementation(ufunc):
    """The tracegrad function registered for ``ufunc``, or ``None``."""
    fn = UFUNCS.get(ufunc)
    if fn is None and PENDING_UFUNCS:
        _bind_pending()
        fn = UFUNCS.get(ufunc)
    return fn


def dispatch_function(func, args, kwargs):
    fn = FUNCTIONS.get(func)
    if fn is None:
        raise _unsupported(f"NumPy function {_name(func)}")
    # NumPy dispatches ``np.stack(a)`` of an object array ``a`` holding
    # variables here: read it as the list of them it stands for.
    args = [a.tolist() if isinstance(a, np.ndarray) and a.dtype == object else a
            for a in args]
    return fn(*args, **kwargs)


__all__ = []
