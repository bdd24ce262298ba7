"""Writing a call's updates into the shared buffers: all or nothing, never
seen half-written by another thread.

**All or nothing.** ``write_updates`` first settles everything that can fail
or must be copied (snapshots of values that another update overwrites,
values that alias another update's buffer at call time, copies of values
that replace a buffer), and only then *publishes*: one call of C code
(``_drain`` over ``map`` iterators of ``ndarray.__setitem__`` and
``setattr``) writes every in-place update and swaps every replaced buffer.
CPython delivers ``KeyboardInterrupt``, any exception a signal handler
raises and ``PyThreadState_SetAsyncExc`` exceptions only between bytecodes,
and no bytecode runs inside that call, so an interruption lands before the
first write or after the last. Old buffers stay referenced until the
publish is over, so no ``__del__`` runs in the middle of it.

Backends whose arrays are not NumPy's, and fused kernels that write their
updates straight into the buffers (``backend/inplace.py``), run Python code
while writing; there ``SIGINT`` is deferred (main thread: a handler that
records it, restored and re-raised after the writes). Left open there: an
exception injected with ``PyThreadState_SetAsyncExc``, or a device error in
the second of two deferred kernels.

**No torn reads.** Calls that update shared variables take turns (one lock,
``UPDATE_LOCK``, for the whole call); calls that only read them run
concurrently. A reader registers in ``READERS`` (key: an object alive for
its call; value: its thread) for its whole compute, from before it reads
``container.value`` until its outputs are copied. A writer publishes holding
``PUBLISH`` and first waits until no other thread's reader is registered;
a reader that finds ``PUBLISH`` held steps back until the writer is done
(unless its thread already reads: the writer is waiting for that outer read).
Registering is one dict store and unregistering one ``dict.pop`` (C calls),
so an interrupted reader never leaves a stale entry behind. A reader must
not call, from inside one of its ops, a function that updates shared
variables while another thread's update waits to publish (the writer waits
for the reader, the reader for the update lock).
"""
import copy
import operator
import signal
import threading
import time
from collections import deque
from itertools import chain, repeat

from tracegrad.backend.inplace import launch_deferred, prepare_deferred
# The locks and the reader registry live in ``tracegrad.shared_access``
# (``SharedVariable`` takes them too, and sits below ``compile``).
from tracegrad.shared_access import (PUBLISH, READERS, UPDATE_LOCK, _ident,  # noqa: F401
                                     read_shared, wait_turn)

# Consumes an iterator in C: nothing interruptible runs between its items.
_drain = deque(maxlen=0).extend


def _wait_for_readers():
    me = _ident()
    delay = 2e-6
    while any(thread != me for thread in list(READERS.values())):
        time.sleep(delay)
        delay = min(2 * delay, 1e-3)


def _writeable(value):
    return getattr(getattr(value, "flags", None), "writeable", True)


def raise_shape_change(shared, buffer, value):
    """A shared variable keeps its shape across updates (Theano's rule: no
    silent reallocation); checked before anything is written."""
    raise ValueError(
        f"the update of shared variable {shared} changes its shape from "
        f"{tuple(buffer.shape)} to {tuple(value.shape)}; no shared variable was "
        "changed. Fix the update's expression, or create the variable with "
        "tg.shared(value, shape_can_change=True) if its shape may change")


def _replacement(plan, buffer, value):
    """The array that replaces ``buffer`` (checked to keep its shape)."""
    if getattr(value, "shape", None) != getattr(buffer, "shape", None) \
            and not plan.shared.shape_can_change:
        raise_shape_change(plan.shared, buffer, value)
    return value if plan.fresh and _writeable(value) else copy_value(value)


def write_updates(s, plans, deferred, backend):
    """Write each update's value (``plans``, from the storage ``s``) into
    its shared buffer, or replace the buffer when the shape changed; every
    value is taken before any write, and the writes are one uninterruptible
    step (see the module doc). ``deferred`` fused kernels write their
    updates into the buffers themselves."""
    ndarray = backend.ndarray
    ready = ()
    if deferred:
        ready, plans = prepare_deferred(s, deferred, plans, ndarray, backend.xp.may_share_memory)
    dsts, srcs, conts, news = [], [], [], []
    external = []
    for plan in plans:
        value = s[plan.slot]
        if plan.snapshot:
            value = copy_value(value)
        container = plan.container
        buffer = container.value
        if value is buffer:
            continue
        if (type(buffer) is ndarray and type(value) is ndarray
                and buffer.shape == value.shape and _writeable(buffer)):
            if plan.external:
                external.append(len(srcs))
            dsts.append(buffer)
            srcs.append(value)
        else:
            conts.append(container)
            news.append(_replacement(plan, buffer, value))
    if external:
        _unalias(srcs, dsts, external, ready, backend.xp.may_share_memory)
    if ready or conts or backend.name != "cpu":
        # The replaced buffers stay alive until the writes are done: freeing
        # one inside the uninterruptible step could run Python code.
        old = [c.value for c in conts]
        _publish(dsts, srcs, conts, news, ready, backend)
        del old
    elif dsts:
        with PUBLISH:
            if READERS:
                _wait_for_readers()
            if len(dsts) == 1:
                dsts[0][...] = srcs[0]  # the common case: one C call already
            else:
                _drain(map(operator.setitem, dsts, repeat(Ellipsis), srcs))


def _unalias(srcs, dsts, external, ready, may_share):
    """Copy each value that comes from an argument and may share memory
    with a buffer that another update writes (``f(s.get_value(borrow=True))``,
    a view of it, one array for two arguments): that buffer may be written
    first. Its own buffer is fine (assignment handles the overlap)."""
    others = [b for _, _, buffers in ready for b in buffers]
    for i in external:
        src = srcs[i]
        if any(may_share(src, d) for j, d in enumerate(dsts) if j != i) or any(
                may_share(src, b) for b in others):
            srcs[i] = src.copy()


def _publish(dsts, srcs, conts, news, ready, backend):
    with PUBLISH:
        if READERS:
            _wait_for_readers()
        if ready or backend.name != "cpu":
            _guarded(_write_all, dsts, srcs, conts, news, ready, backend)
        else:
            _write_all(dsts, srcs, conts, news)


def _write_all(dsts, srcs, conts, news, ready=(), backend=None):
    if ready:
        launch_deferred(ready, backend.xp)
    _drain(chain(map(operator.setitem, dsts, repeat(Ellipsis), srcs),
                 map(setattr, conts, repeat("value"), news)))


def _guarded(fn, *args):
    """``fn(*args)`` with ``SIGINT`` deferred until it returns (main thread
    only: Python runs signal handlers there alone)."""
    if threading.current_thread() is not threading.main_thread():
        return fn(*args)
    old = signal.getsignal(signal.SIGINT)
    if not callable(old):
        return fn(*args)
    caught = []
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
        result = fn(*args)
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        old(signal.SIGINT, caught[0])
    return result


def copy_value(value):
    """An independent copy of a value (an array, or any other object)."""
    method = getattr(value, "copy", None)
    return method() if method is not None else copy.deepcopy(value)
