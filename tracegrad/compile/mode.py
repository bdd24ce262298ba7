"""``tracegrad.compile.Mode``: Theano's mode objects, for ``function(mode=)``.

A mode names the rewrites a function gets (``optimizer``: ``'fast_run'``,
``'fast_compile'``, ``'None'`` or ``'fast_math'``). Theano's ``linker`` is
accepted and ignored (tracegrad has one way to run a graph). The one tag
``including``/``excluding`` know is ``'fast_math'``: value-changing algebra
(``x - x -> 0`` even for an inf ``x``) on top of ``'fast_run'``.
"""
from tracegrad.config import MODES, normalize_mode

_TAG = "fast_math"


def normalize(mode):
    """The optimizer name of ``mode`` (a ``Mode``, a name or ``None``:
    ``tg.config.optimizer``); ``ValueError`` for an unknown name (the names
    themselves are normalised by ``tracegrad.config.normalize_mode``)."""
    if isinstance(mode, Mode):
        return mode.optimizer
    return normalize_mode(mode)


class Mode:
    """Compilation settings: ``Mode(linker=None, optimizer='fast_run')``."""

    def __init__(self, linker=None, optimizer="fast_run"):
        self.linker = linker
        self.optimizer = normalize(optimizer)

    def including(self, *tags):
        """A copy with the rewrites of ``tags`` added (``'fast_math'``)."""
        _check_tags(tags, "including")
        return Mode(self.linker, _TAG if tags else self.optimizer)

    def excluding(self, *tags):
        """A copy without the rewrites of ``tags`` (``'fast_math'``)."""
        _check_tags(tags, "excluding")
        fast = self.optimizer == _TAG and tags
        return Mode(self.linker, "fast_run" if fast else self.optimizer)

    def __eq__(self, other):
        return isinstance(other, Mode) and (self.linker, self.optimizer) == \
            (other.linker, other.optimizer)

    def __hash__(self):
        return hash((Mode, self.optimizer))

    def __repr__(self):
        return f"Mode(linker={self.linker!r}, optimizer={self.optimizer!r})"


def _check_tags(tags, method):
    unknown = [t for t in tags if str(t).lower() != _TAG]
    if unknown:
        raise ValueError(f"Mode.{method}: unknown rewrite tags {unknown}; tracegrad's "
                         f"modes know only {_TAG!r} (modes: {', '.join(MODES)})")
