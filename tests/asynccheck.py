"""Interrupt a call at a chosen point, the way CPython delivers a
``KeyboardInterrupt`` from a signal or an exception from
``PyThreadState_SetAsyncExc``: at the next point where the interpreter
checks for pending work (between bytecodes), never inside C code.

``interrupt_at(fn, k, exc)`` traces ``fn()`` (every opcode of every Python
frame), and at the ``k``-th trace event *schedules* ``exc`` for this
thread and switches tracing off; the interpreter raises it at its next
check, exactly where a real signal would land. Sweeping ``k`` from 1 until
no event is left visits every such point of the call. The tracer reaches
the C functions it needs through ``obj[key]`` (``__getitem__``), not a call:
a call instruction checks for pending exceptions right after the callee
returns, which would raise inside the tracer.
"""
import ctypes
import functools
import gc
import signal
import sys
import threading

_set_async = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))
# What a signal's C handler does: mark the signal pending, nothing more
# (``signal.raise_signal`` would also run the Python handler at once).
_trip_signal = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_int)(
    ("PyErr_SetInterruptEx", ctypes.pythonapi))


def _tools(tid):
    # Made once per thread: the interpreter caches by type, so a new type
    # per call would only cost time.
    tools = _TOOLS.get(tid)
    if tools is None:
        c_tid = ctypes.c_ulong(tid)
        tools = _TOOLS[tid] = tuple(
            type("Subscript", (), {"__getitem__": function})()
            for function in (functools.partial(_set_async, c_tid), _trip_signal,
                             sys.settrace))
    return tools


_TOOLS = {}


def interrupt_at(fn, k, exc=KeyboardInterrupt, via_signal=False):
    """Call ``fn()`` and deliver ``exc`` at the first check after the
    ``k``-th trace event (``via_signal``: raise ``SIGINT`` there instead, so
    Python's handler raises ``KeyboardInterrupt``). Returns ``(reached,
    raised)``: whether the call had ``k`` events, and whether ``exc`` was
    raised (in ``fn`` or as it returned)."""
    set_async, trip_signal, off = _tools(threading.get_ident())
    fire, what = (trip_signal, signal.SIGINT) if via_signal else (set_async, exc)
    count = [0]

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        count[0] += 1
        if count[0] == k:
            frame.f_trace_opcodes = False
            frame.f_trace = None
            off[None]
            fire[what]
        return tracer

    raised = False
    sys.settrace(tracer)
    try:
        fn()
        for _ in range(2):
            pass  # a backward jump checks for pending work: delivered by now
    except exc:
        raised = True
    finally:
        off[None]
    return count[0] >= k, raised


def sweep(fn, check, exc=KeyboardInterrupt, via_signal=False, limit=100_000):
    """``interrupt_at`` for ``k = 1, 2, ...`` until ``fn`` has fewer events,
    calling ``check(k, raised)`` after each; returns how many were raised."""
    raised_count = 0
    # No garbage collection in the middle: the exception would land in some
    # other test's ``__del__`` (where Python only reports it).
    gc.collect()
    gc.disable()
    try:
        for k in range(1, limit):
            reached, raised = interrupt_at(fn, k, exc, via_signal)
            if not reached:
                return raised_count
            raised_count += raised
            check(k, raised)
    finally:
        gc.enable()
    raise AssertionError(f"more than {limit} trace events")
