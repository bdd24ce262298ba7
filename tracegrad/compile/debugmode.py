"""``DebugMode``: Theano's self-checking mode, for users hunting a bug.

    f = tg.function([x], 10 * x, mode='DebugMode')      # or mode=DebugMode()

Every call of such a function checks, and raises a ``DebugModeError``
subclass naming the node (its op, position and the line that built it):

- each node of the optimized graph against a reference computation of the
  same node on copies of its inputs (a fused elementwise kernel against its
  elementwise ops one by one; any other op against its ``impl`` run again):
  ``BadThunkOutput``;
- that no node overwrote an input its ``destroy_map`` does not declare:
  ``BadDestroyMap``;
- with ``check_isfinite`` (the default, as Theano), that no node produced a
  NaN or an inf: ``InvalidValueError``;
- the outputs and updates of the optimized graph against the reference
  evaluator (``tracegrad.evaluate``) run on the graph *before* rewriting:
  ``BadOptimization``. Where the reference is NaN or inf and the optimized
  value finite (a stability rewrite such as ``log(1 + exp(x)) ->
  softplus(x)`` at large ``x``) the rewrite is accepted.

Values agree within ``rtol``/``atol`` (by default 1e-5 relative for float64,
1e-3 for float32 and float16: rewrites reassociate arithmetic). A call costs
about three times a plain one; this mode is for debugging, not for speed.
"""
import threading

import numpy as np

from tracegrad.compile.mode import Mode, _Hooks
from tracegrad.evaluate import evaluate, run_node

__all__ = ["DebugMode", "DebugModeError", "BadThunkOutput", "BadDestroyMap",
           "BadOptimization", "InvalidValueError"]

_RTOL = {"float64": 1e-5, "complex128": 1e-5}
_LOOSE_RTOL = 1e-3


class DebugModeError(AssertionError):
    """A check of ``DebugMode`` failed."""


class BadThunkOutput(DebugModeError):
    """A node's output differs from its reference computation."""


class BadDestroyMap(DebugModeError):
    """A node overwrote an input its ``destroy_map`` does not declare."""


class BadOptimization(DebugModeError):
    """The optimized graph's result differs from the graph before rewriting."""


class InvalidValueError(DebugModeError):
    """A node produced a NaN or an inf (``check_isfinite``)."""


def is_debug_mode_name(mode):
    """True for Theano's names of the debug mode (``'DebugMode'``, ``'DEBUG_MODE'``)."""
    return isinstance(mode, str) and mode.lower() in ("debugmode", "debug_mode")


class DebugMode(Mode):
    """Theano's ``DebugMode`` (see the module doc): ``optimizer`` as for
    ``Mode``; ``check_isfinite``: NaN/inf outputs are errors; ``rtol``,
    ``atol``: the tolerance of the comparisons (``None``: by dtype)."""

    def __init__(self, optimizer="fast_run", linker=None, check_isfinite=True,
                 rtol=None, atol=None):
        super().__init__(linker, optimizer)
        self.check_isfinite = check_isfinite
        self.rtol = rtol
        self.atol = atol
        # (the input copies of the node running, per thread: functions
        # sharing this mode may run in several threads at once)
        self._local = threading.local()
        self.monitor = _Hooks(self._before, self._after)

    # -------------------------------------------------- per node
    def _before(self, i, node, fn):
        self._local.copies = [_host_copy(cell[0]) for cell in fn.inputs]

    def _after(self, i, node, fn):
        copies, self._local.copies = self._local.copies, None
        where = _where(i, node)
        destroyed = {k for ks in getattr(node.op, "destroy_map", {}).values() for k in ks}
        for k, (cell, before) in enumerate(zip(fn.inputs, copies)):
            if k not in destroyed and not _same(_host(cell[0]), before, 0.0, 0.0):
                raise BadDestroyMap(f"DebugMode: {where} overwrote its input {k} "
                                    f"({node.inputs[k]}) without declaring it in "
                                    "destroy_map")
        # (an output the schedule does not keep, e.g. a scan's unused
        # buffer, is None: nothing to check)
        outputs = [None if cell[0] is None else _host(cell[0]) for cell in fn.outputs]
        if self.check_isfinite:
            for k, value in enumerate(outputs):
                if value is not None and value.dtype.kind in "fc" and \
                        not np.isfinite(value).all():
                    kind = "NaN" if np.isnan(value).any() else "inf"
                    raise InvalidValueError(f"DebugMode: output {k} of {where} holds {kind} "
                                            "(pass DebugMode(check_isfinite=False) to allow it)")
        for k, (got, want) in enumerate(zip(outputs, _reference(node, copies))):
            if got is None:
                continue
            rtol, atol = self._tolerance(want.dtype)
            if got.shape != want.shape or not _same(got, want, rtol, atol):
                raise BadThunkOutput(
                    f"DebugMode: output {k} of {where} differs from its reference "
                    f"computation:\n  got {_brief(got)}\n  expected {_brief(want)}")

    # -------------------------------------------------- whole function
    def reference(self, in_vars, outputs, args):
        """The unoptimized graph's ``outputs`` evaluated on ``args``."""
        values = {var: np.asarray(_host(a), dtype=var.type.dtype)
                  for var, a in zip(in_vars, args)}
        return evaluate(outputs, values)

    def compare(self, labels, got, expected):
        """``BadOptimization`` naming the first of ``labels`` whose value differs."""
        for label, g, want in zip(labels, got, expected):
            g = _host(g)
            want = np.asarray(want)
            rtol, atol = self._tolerance(want.dtype)
            if g.shape != want.shape:
                raise BadOptimization(f"DebugMode: {label} has shape {g.shape} after "
                                      f"optimization but {want.shape} before")
            # A NaN/inf that a rewrite turned into a finite value is a
            # stability rewrite doing its job.
            keep = np.isfinite(want) if want.dtype.kind in "fc" else np.ones(want.shape, bool)
            if not _same(g[keep], want[keep], rtol, atol):
                raise BadOptimization(
                    f"DebugMode: {label} differs between the optimized graph and the graph "
                    f"before rewriting:\n  optimized {_brief(g)}\n  reference {_brief(want)}")

    def _tolerance(self, dtype):
        rtol = self.rtol if self.rtol is not None else _RTOL.get(np.dtype(dtype).name,
                                                                 _LOOSE_RTOL)
        atol = self.atol if self.atol is not None else rtol * 1e-3
        return rtol, atol


def _reference(node, copies):
    spec = getattr(node.op, "spec", None)
    if spec is not None and hasattr(spec, "reference"):      # a fused elementwise kernel
        results = spec.reference(np, [c.copy() for c in copies])
        return [np.asarray(r, dtype=v.type.dtype) for r, v in zip(results, node.outputs)]
    return run_node(node, [c.copy() for c in copies])


def _host(value):
    if hasattr(value, "get") and not isinstance(value, np.ndarray):   # a CuPy array
        value = value.get()
    return np.asarray(value)


def _host_copy(value):
    return np.array(_host(value), copy=True)


def _same(a, b, rtol, atol):
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    return bool(np.array_equal(a, b))


def _where(i, node):
    src = node.source
    built = f", built at {src.filename}:{src.lineno} in {src.function}" if src else ""
    return f"node {i} ({node.op.name}){built}"


def _brief(value):
    return np.array2string(np.asarray(value), threshold=10, precision=8)
