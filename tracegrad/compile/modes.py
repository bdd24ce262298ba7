"""Theano's ``theano.compile.get_mode``: a ``Mode`` object from a mode
argument as ``tg.function(mode=...)`` takes it."""
from tracegrad.compile.debugmode import DebugMode, is_debug_mode_name
from tracegrad.compile.mode import Mode, normalize


def get_mode(orig_string):
    """The ``Mode`` of ``orig_string``: a ``Mode`` (or ``MonitorMode``,
    ``DebugMode``...) is returned as it is; ``None`` gives the default
    (``tg.config.optimizer``); a name (``'FAST_RUN'``, ``'fast_compile'``,
    ``'DebugMode'``...) its mode. An unknown name raises ``ValueError``."""
    if isinstance(orig_string, Mode):
        return orig_string
    if is_debug_mode_name(orig_string):
        return DebugMode()
    return Mode(optimizer=normalize(orig_string))
