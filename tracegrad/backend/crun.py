"""Running a loaded kernel of the compiled CPU tier (``backend.c``) over a
call: its layout (``_layout``, ``_strided_args``), the split over threads
(``_run_split``, ``chunk_size``: ``crunner.tg_run``), block by block into
buffers it reads (``_run_in_place``: ``tg_commit``), and which
floating-point flags NumPy's error state acts on (``_noticed_flags``,
``_notice_bits``). ``backend.c`` decides when a call uses a kernel; this
module only runs one.
"""
import ctypes
from time import perf_counter_ns

import numpy as np

from tracegrad.backend.csmall import address as _address
from tracegrad.backend.numpy.runner import common_order
from tracegrad.config import (NATIVE_CHUNK_MAX, NATIVE_CHUNK_MIN, NATIVE_CHUNKS_PER_THREAD,
                              NATIVE_MIN_PER_THREAD, config)

_FLAG_BITS = None  # np.geterr() key -> the FE_* bits of this libc
_ALL_FLAGS = 0xFF   # (any flag: whether NumPy's error state acts on one at all)


def _fe_bits():
    """FE_INVALID, FE_DIVBYZERO, FE_OVERFLOW, FE_UNDERFLOW of x86/arm glibc."""
    import platform
    if platform.machine().lower() in ("aarch64", "arm64"):
        return {"invalid": 1, "divide": 2, "over": 4, "under": 8}
    return {"invalid": 1, "divide": 4, "over": 8, "under": 16}


def _noticed_flags(flags):
    """Whether NumPy's error state would act on any of ``flags``."""
    return bool(flags) and bool(flags & _notice_bits())


def _run_in_place(kernel, program, operands, outs, size, consts):
    """A contiguous call whose outputs are inputs' buffers, while NumPy's
    error state acts on some flag: a block NumPy must judge has to be
    computed from intact inputs. ``kernel`` is the layout's ``tg_commit``
    (``csource.commit_source``): it stores each block of 256 elements only
    after reading the block's flags, and a range (a thread's chunk) stops
    at a block raising a flag NumPy notices. The NumPy block ``program``
    writing into those buffers then computes each untouched range, which
    warns or raises as NumPy does (elements before are written, as on the
    NumPy tier). No buffer of the call's size is allocated (as the NumPy
    tier's in-place programs allocate none). (Before: pieces of 65536
    elements computed into a scratch then copied in: W4's ``w - lr * g``
    took 0.72 ns an element so, 0.27 as NumPy's program.)"""
    order = common_order(outs)
    ptrs = (ctypes.c_void_p * (len(operands) + len(outs)))(
        *[_address(a) for a in operands], *[_address(o) for o in outs])
    stops, chunk = _run_commit(kernel, size, ptrs, consts, _notice_bits())
    flat_outs = None
    for q, stop in enumerate(stops):
        end = min((q + 1) * chunk, size)
        if stop >= end:
            continue
        if flat_outs is None:
            flat_outs = [o.reshape(-1, order=order) for o in outs]
        piece = slice(stop, end)
        ins = [a.reshape(()) if a.size == 1 else a.reshape(-1, order=order)[piece]
               for a in operands]
        program.fn(*ins, *[o[piece] for o in flat_outs],
                   *[np.empty(end - stop, dt) for dt in program.slot_dtypes])


def _notice_bits():
    """The FE_* bits of the flags NumPy's error state acts on."""
    global _FLAG_BITS
    if _FLAG_BITS is None:
        _FLAG_BITS = _fe_bits()
    err = np.geterr()
    return sum(bit for name, bit in _FLAG_BITS.items() if err[name] != "ignore")


def _run_commit(kernel, size, ptrs, consts, notice):
    """``tg_commit`` over ``[0, size)``, on the threads when the kernel's
    ``ThreadChoice`` finds that faster (as ``_run_split``); ``(stops,
    chunk)``: where each chunk's stored part ends."""
    parts = max(1, min(config.num_threads, size // NATIVE_MIN_PER_THREAD))
    run = _runner() if parts > 1 else False
    threaded = False
    if run is not False:
        choice = kernel.choice(size)
        threaded = choice.threaded()
    chunk = chunk_size(size, parts) if threaded else size
    stops = (ctypes.c_int64 * -(-size // chunk))()
    extra = (notice, stops, (ctypes.c_int64 * 1)(chunk))
    start = perf_counter_ns()
    if threaded:
        run(kernel.addr, size, parts, chunk, ptrs, consts, *extra)
    else:
        kernel.fn(0, size, ptrs, consts, *extra)
    if run is not False:
        choice.record(threaded, (perf_counter_ns() - start) / size)
    return stops, chunk


def _layout(operands, outs, shape):
    """``(layout key, strided)`` of a call: ``'strided'``, or a tuple saying
    per operand whether it is a single value (the others contiguous in the
    outputs' order)."""
    order = common_order(outs)
    if order is None:
        return "strided", True
    mask = []
    for a in operands:
        if a.size == 1:
            mask.append(True)
        elif a.shape == shape and (a.flags.c_contiguous if order == "C"
                                   else a.flags.f_contiguous):
            mask.append(False)
        else:
            return "strided", True
    return tuple(mask), False


_STRIDED_ARGS = {}  # (shape, byte strides) -> the ctypes arrays (a few layouts per program)


def _strided_args(operands, outs, shape):
    """``(nd, shape, strides)``: byte strides of every operand broadcast to
    ``shape`` (0 along broadcast axes), then of every output; a 0-d call
    is one element of shape ``(1,)``. (Worked out from each array's own
    strides, and the ctypes arrays of a layout kept: a small call pays
    microseconds here.)"""
    nd = max(1, len(shape))
    strides = []
    for a in list(operands) + list(outs):
        if not shape:
            strides.append(0)
        elif a.shape == shape:
            strides.extend(a.strides)
        else:
            lead = nd - a.ndim
            strides.extend([0] * lead)
            strides.extend(0 if n == 1 and shape[lead + k] != 1 else st
                           for k, (n, st) in enumerate(zip(a.shape, a.strides)))
    key = (shape, tuple(strides))
    found = _STRIDED_ARGS.get(key)
    if found is None:
        if len(_STRIDED_ARGS) > 256:
            _STRIDED_ARGS.clear()
        full = shape if shape else (1,)
        found = _STRIDED_ARGS[key] = (nd, (ctypes.c_int64 * nd)(*full),
                                      (ctypes.c_int64 * len(strides))(*strides))
    return found


def _run_split(kernel, size, ptrs, consts, extra):
    """Run ``kernel`` over ``[0, size)`` on up to ``config.num_threads``
    threads (``crunner.tg_run``: persistent C threads sharing chunks of
    ``chunk_size(size, parts)`` elements as each comes free; ctypes releases
    the GIL around it) or alone, as the kernel's ``ThreadChoice`` for this
    size finds faster; the OR of the pieces' flags."""
    parts = max(1, min(config.num_threads, size // NATIVE_MIN_PER_THREAD))
    run = _runner()
    if parts == 1 or run is False:
        return kernel.fn(0, size, ptrs, consts, *extra)
    choice = kernel.choice(size)
    threaded = choice.threaded()
    start = perf_counter_ns()
    if threaded:
        flags = run(kernel.addr, size, parts, chunk_size(size, parts), ptrs, consts, *extra)
    else:
        flags = kernel.fn(0, size, ptrs, consts, *extra)
    choice.record(threaded, (perf_counter_ns() - start) / size)
    return flags


def chunk_size(size, parts):
    """Elements per chunk of a threaded call: about ``NATIVE_CHUNKS_PER_THREAD``
    chunks per thread, within ``[NATIVE_CHUNK_MIN, NATIVE_CHUNK_MAX]``, a
    multiple of 256 (whole vectors and cache lines)."""
    chunk = size // (parts * NATIVE_CHUNKS_PER_THREAD)
    chunk = min(NATIVE_CHUNK_MAX, max(NATIVE_CHUNK_MIN, chunk))
    return -(-chunk // 256) * 256


_RUNNER = [None]


def _runner():
    """``crunner``'s ``tg_run``, or ``False`` (it cannot be built)."""
    run = _RUNNER[0]
    if run is None:
        from tracegrad.backend import crunner
        run = _RUNNER[0] = crunner.runner() or False
    return run
