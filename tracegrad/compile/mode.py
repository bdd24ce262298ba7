"""``tracegrad.compile.Mode``: Theano's mode objects, for ``function(mode=)``.

A mode names the rewrites a function gets (``optimizer``: ``'fast_run'``,
``'fast_compile'``, ``'None'`` or ``'fast_math'``). Theano's ``linker`` is
accepted and ignored (tracegrad has one way to run a graph). The tags
``including``/``excluding`` know: ``'fast_math'`` (value-changing algebra,
``x - x -> 0`` even for an inf ``x``, on top of ``'fast_run'``), and, to
exclude, ``'local_elemwise_fusion'`` (or ``'fusion'``: every elementwise op
runs as its own node) and ``'inplace'`` (no node overwrites a buffer).

``MonitorMode(pre_func, post_func)`` calls ``pre_func(i, node, fn)`` before
and ``post_func(i, node, fn)`` after each node of the compiled graph runs
(``fn.inputs`` / ``fn.outputs``: one-element lists holding the values, as
Theano's storage cells); ``NanGuardMode`` raises, naming the node, when a
node produces a NaN, an inf or a value above 1e10 in magnitude.
"""
import numpy as np

from tracegrad.config import MODES, normalize_mode
from tracegrad.trace import describe_source

_TAG = "fast_math"
_EXCLUDABLE = {"local_elemwise_fusion": "fusion", "fusion": "fusion", "inplace": "inplace"}


def normalize(mode):
    """The optimizer name of ``mode`` (a ``Mode``, a name or ``None``:
    ``tg.config.optimizer``); ``ValueError`` for an unknown name (the names
    themselves are normalised by ``tracegrad.config.normalize_mode``)."""
    if isinstance(mode, Mode):
        return mode.optimizer
    return normalize_mode(mode)


class Mode:
    """Compilation settings: ``Mode(linker=None, optimizer='fast_run')``."""

    monitor = None    # an object with pre(i, node, fn) / post(i, node, fn), or None

    def __init__(self, linker=None, optimizer="fast_run", excluded=()):
        self.linker = linker
        self.optimizer = normalize(optimizer)
        self.excluded = frozenset(excluded)   # stages skipped: 'fusion', 'inplace'

    def _copy(self, optimizer, excluded):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.optimizer, new.excluded = optimizer, frozenset(excluded)
        return new

    def including(self, *tags):
        """A copy with the rewrites of ``tags`` added (``'fast_math'``)."""
        _check_tags(tags, "including", allowed=())
        return self._copy(_TAG if tags else self.optimizer, self.excluded)

    def excluding(self, *tags):
        """A copy without the rewrites of ``tags`` (``'fast_math'``,
        ``'local_elemwise_fusion'``, ``'inplace'``)."""
        _check_tags(tags, "excluding", allowed=_EXCLUDABLE)
        lowered = [str(t).lower() for t in tags]
        fast = self.optimizer == _TAG and _TAG in lowered
        stages = {_EXCLUDABLE[t] for t in lowered if t in _EXCLUDABLE}
        return self._copy("fast_run" if fast else self.optimizer, self.excluded | stages)

    def __eq__(self, other):
        return type(other) is type(self) and (self.linker, self.optimizer, self.excluded) == \
            (other.linker, other.optimizer, other.excluded) and self.monitor is other.monitor

    def __hash__(self):
        return hash((Mode, self.optimizer, self.excluded))

    def __repr__(self):
        extra = f", excluded={sorted(self.excluded)}" if self.excluded else ""
        return f"{type(self).__name__}(linker={self.linker!r}, optimizer={self.optimizer!r}{extra})"


def _check_tags(tags, method, allowed):
    unknown = [t for t in tags if str(t).lower() != _TAG and str(t).lower() not in allowed]
    if unknown:
        known = [_TAG] + sorted(allowed)
        raise ValueError(f"Mode.{method}: unknown rewrite tags {unknown}; tracegrad's "
                         f"modes know {known} (modes: {', '.join(MODES)})")


class NodeStorage:
    """What ``MonitorMode``'s functions get as ``fn``: ``inputs`` and
    ``outputs``, each a list of one-element lists (Theano's storage cells)."""

    __slots__ = ("inputs", "outputs")

    def __init__(self, inputs, outputs):
        self.inputs = inputs
        self.outputs = outputs


class _Hooks:
    def __init__(self, pre, post):
        self.pre = pre
        self.post = post


class MonitorMode(Mode):
    """Theano's ``MonitorMode``: ``pre_func(i, node, fn)`` before and
    ``post_func(i, node, fn)`` after every node (``i``: its position)."""

    def __init__(self, pre_func=None, post_func=None, optimizer="fast_run", linker=None):
        super().__init__(linker, "fast_run" if optimizer == "default" else optimizer)
        self.pre_func = pre_func
        self.post_func = post_func
        self.monitor = _Hooks(pre_func, post_func)


class NanGuardMode(Mode):
    """Theano's ``NanGuardMode``: after every node, raise ``AssertionError``
    naming the node and the output when it holds a NaN (``nan_is_error``),
    an inf (``inf_is_error``) or a magnitude above 1e10 (``big_is_error``)."""

    BIG = 1e10

    def __init__(self, nan_is_error=True, inf_is_error=True, big_is_error=True,
                 optimizer="fast_run", linker=None):
        super().__init__(linker, "fast_run" if optimizer == "default" else optimizer)
        self.nan_is_error = nan_is_error
        self.inf_is_error = inf_is_error
        self.big_is_error = big_is_error
        self.monitor = _Hooks(None, self._check)

    def _check(self, i, node, fn):
        for k, (value,) in enumerate(fn.outputs):
            problem = _bad_values(np.asarray(value) if not hasattr(value, "get") else value.get(),
                                  self)
            if problem:
                where = describe_source(node.source)
                raise AssertionError(
                    f"NanGuardMode: {problem} in output {k} of node {i}, {node}{where}")


def _bad_values(value, guard):
    if value.dtype.kind not in "fc" or value.size == 0:
        return None
    if guard.nan_is_error and np.isnan(value).any():
        return "NaN detected"
    if guard.inf_is_error and np.isinf(value).any():
        return "Inf detected"
    if guard.big_is_error and (np.abs(value[np.isfinite(value)]) > guard.BIG).any():
        return f"big value (magnitude > {guard.BIG:g}) detected"
    return None
