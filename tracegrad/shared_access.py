"""Who may touch the buffers of shared variables, and when (the protocol is
described in ``tracegrad.compile.publish``, which writes the updates).

``UPDATE_LOCK`` is held by every call with updates for its whole run and by
``SharedVariable.set_value``; a reader of shared buffers registers in
``READERS`` (``read_shared``), and a writer publishes holding ``PUBLISH``
once no other thread's reader is registered. Here, below both ``shared``
and ``compile``, so that neither imports the other for them.
"""
import threading

# Held by every call with updates for its whole run, and by ``set_value``:
# updating calls and replacements take turns, so none is lost. Reentrant: an
# op may itself call a compiled function with updates.
UPDATE_LOCK = threading.RLock()
READERS = {}
PUBLISH = threading.Lock()
_ident = threading.get_ident


def wait_turn(key):
    """A registered reader found a writer publishing: unless this thread
    already reads shared buffers in an outer call, step back (unregister)
    until the writer is done, then register again."""
    me = _ident()
    for other, thread in list(READERS.items()):
        if thread == me and other != key:
            return
    while True:
        READERS.pop(key, None)
        with PUBLISH:
            pass
        READERS[key] = me
        if not PUBLISH.locked():
            return


def read_shared(fn, *args):
    """``fn(*args)`` as a registered reader (e.g. ``get_value``'s copy)."""
    token = [None]
    key = id(token)
    try:
        READERS[key] = _ident()
        if PUBLISH.locked():
            wait_turn(key)
        return fn(*args)
    finally:
        READERS.pop(key, None)
