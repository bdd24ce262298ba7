"""The compiled CPU tier: a fused cluster as machine code (issue 18).

``tg.config.cpu_codegen``: ``'auto'`` (the default) and ``'c'`` run a
cluster's large calls through a kernel compiled by the system C++ compiler
(``ccompiler``; source from ``csource``); ``'numpy'`` keeps the NumPy
ufunc programs (``backend.numpy.CpuProgram``), which are the reference and the
fallback of this tier:

- **A call never waits for the compiler** (unless
  ``tg.config.cpu_codegen_sync``): the first call of a cluster over at
  least ``NATIVE_MIN_SIZE`` elements queues its kernel for a background
  thread and runs the NumPy program; calls after the kernel is loaded use
  it. Smaller calls never ask (the NumPy program's whole-call fast path
  costs less than a foreign call there), so graphs of many small clusters
  compile nothing.
- **Never an error for the user**: no compiler, a failed compile or a
  cluster with a row the C++ library cannot evaluate (``csource.can_compile``)
  leaves the cluster on the NumPy tier, with one debug-level log message.
- **NumPy's warnings**: a kernel returns the floating-point exception flags
  it raised. When one is raised that NumPy's error state (``np.geterr``)
  does not ignore, the call is run again by the NumPy program, which gives
  exactly NumPy's warnings or errors (vector math may also raise flags NumPy
  would not, e.g. in the branch of a ``where`` not taken; re-running keeps
  those silent). A call whose outputs alias its inputs then computes into
  fresh buffers first, so re-running reads intact inputs.
- **Threads**: up to ``tg.config.num_threads`` threads (at least
  ``NATIVE_MIN_PER_THREAD`` elements each) share the flattened range in
  chunks, each thread taking the next chunk as it comes free
  (``crunner.tg_run``), so a thread that starts late (its core busy with
  another process) takes less or nothing and the call never waits for it;
  ctypes releases the GIL during the call. Whether a call uses the threads
  at all is measured per kernel and size class (``ThreadChoice``).
- **Layouts**: operands that are one value (size 1) or contiguous in the
  outputs' order take ``tg_contig`` (one kernel per pattern of single
  values); anything else (broadcast rows, strided views) ``tg_strided``.

``install()`` hooks the tier into the NumPy backend's programs
(``backend.numpy.NATIVE``); the compile stage calls it.
"""
import ctypes
import os
import queue
import threading
from time import perf_counter_ns

import numpy as np

from tracegrad.config import (NATIVE_MIN_SIZE, NATIVE_OUTLIER, NATIVE_PROBES, NATIVE_RETRY,
                              NATIVE_RETRY_COST, NATIVE_SMALL_AFTER, NATIVE_THREADS_GAIN,
                              config)
from tracegrad.backend import numpy as numpy_backend
from tracegrad.backend.crun import (_ALL_FLAGS, _layout, _noticed_flags, _run_in_place,
                                    _run_split, _strided_args)
from tracegrad.backend.csmall import address as _address, small_layout, small_plan
from tracegrad.fuse.targets import Program

# (``ccompiler`` and ``csource``, and ``logging``, are imported when first
# needed: importing tracegrad must stay quick, and most functions never make
# a call big enough to ask for a kernel.)


def _log(level, msg, *args):
    import logging
    logging.getLogger("tracegrad.backend.c").log(level, msg, *args)

_ARGTYPES = [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
             ctypes.c_void_p, ctypes.c_void_p]


class Kernel:
    """One loaded kernel, ``tg_contig``, ``tg_strided`` or ``tg_commit``
    (``kind``; one signature: ``(start, end, ptrs, consts, nd, shape,
    strides)``), its address for the thread runner, and its
    ``ThreadChoice`` per size class."""

    __slots__ = ("fn", "addr", "lib", "choices", "tiers")

    def __init__(self, lib, kind):
        fn = getattr(lib, "tg_" + kind)
        fn.argtypes = _ARGTYPES
        fn.restype = ctypes.c_int
        self.fn = fn
        self.addr = ctypes.cast(fn, ctypes.c_void_p).value
        self.lib = lib   # (keeps the library loaded as long as the kernel lives)
        self.choices = {}   # size.bit_length() -> ThreadChoice
        self.tiers = {}     # size.bit_length() -> TierChoice (strided kernels)

    def choice(self, size):
        """The ``ThreadChoice`` of calls of about ``size`` elements (sizes
        within a factor of two share one)."""
        key = size.bit_length()
        found = self.choices.get(key)
        if found is None:
            found = self.choices[key] = ThreadChoice()
        return found

    def tier(self, size, kind=False):
        """The ``TierChoice`` of calls of about ``size`` elements; ``kind``
        keeps calls writing into an input's buffer in pieces (``True``) and
        small calls against the whole-call fast path (``'small'``) apart."""
        key = (size.bit_length(), kind)
        found = self.tiers.get(key)
        if found is None:
            found = self.tiers[key] = TierChoice()
        return found


class ThreadChoice:
    """Whether a kernel's calls of one size class run on the threads or on
    the calling thread alone, from what each measured: the time per element
    of each way, an exponential average (weight ``1/4`` for a new call, which
    counts at most ``NATIVE_OUTLIER`` times the average). The ways alternate
    first, ``NATIVE_PROBES`` measured calls each, and each starts from the
    least of its own (one call delayed by another process must not decide
    for thousands of calls); then the faster runs (threads only when they
    take less than ``NATIVE_THREADS_GAIN`` of the time alone), and the
    other once every ``NATIVE_RETRY`` calls, so a change of the machine's
    load is followed: such a retry's time (capped the same way) replaces
    that way's average, which is stale by then. On a machine whose other core is busy the second
    thread rarely pays; on an idle one it does: no size threshold knows
    which. (Updates from concurrent calls may race: an estimate is then a
    little off, never wrong for long.)"""

    __slots__ = ("alone", "threads", "calls", "retrying", "cold", "samples")

    def __init__(self):
        self.alone = 0.0     # ns per element, 0.0: not measured yet
        self.threads = 0.0
        self.calls = 0
        self.retrying = False
        # The ways whose first call is still to come: that call's time is
        # dropped (a kernel's first call binds its library's symbols and
        # faults its pages in, the first threaded one starts the threads:
        # W2's loss kernel took 50 us once, 7 us after).
        self.cold = [True, True]
        # Measured calls of each way (alone, threads) while probing: the
        # first NATIVE_PROBES of each alternate, and the least counts (a
        # delay from another process only ever makes a call slower).
        self.samples = [0, 0]

    def threaded(self):
        """Whether the next call runs on the threads."""
        self.calls += 1
        alone, threads = self.samples
        if alone < NATIVE_PROBES or threads < NATIVE_PROBES:
            return threads <= alone   # (probing: the way with fewer measured calls)
        best = self._first_faster()
        if not self._retry_due():
            return best
        self.retrying = True
        return not best

    def _retry_due(self):
        return self.calls % NATIVE_RETRY == 0

    def _first_faster(self):
        return self.threads < NATIVE_THREADS_GAIN * self.alone

    def record(self, threaded, ns_per_element):
        """Fold one call's time into its way's average (while probing, the
        least; after, a call counts at most ``NATIVE_OUTLIER`` times the
        average, and a retry's replaces it; the first call of each way is
        not counted)."""
        if self.cold[threaded]:
            self.cold[threaded] = False
            self.retrying = False
            return
        old = self.threads if threaded else self.alone
        if self.samples[threaded] < NATIVE_PROBES:
            self.samples[threaded] += 1
            new = min(old, ns_per_element) if old else ns_per_element
        else:
            # (a retry of W2's loss kernel once took 2 ms, 5072 ns an
            # element against ~17: counted whole, it kept NumPy's program,
            # 1.3x slower, for the ~9600 calls its retry cost then asked for)
            capped = min(ns_per_element, NATIVE_OUTLIER * old)
            new = capped if self.retrying else old + (capped - old) / 4
        self.retrying = False
        if threaded:
            self.threads = new
        else:
            self.alone = new


class TierChoice(ThreadChoice):
    """For a strided layout or an in-place call in pieces: whether calls of
    one size class run the compiled kernel (the ``threads`` slot, tried
    first) or the NumPy program (``alone``), the same way ``ThreadChoice``
    decides. A strided kernel gathers and scatters its operands, an
    in-place one computes each piece into a scratch and copies it back, so
    where NumPy's loops are vectorised already (short rows of cheap float32
    math, an update ``w - lr * g``) NumPy can be faster; where NumPy's
    function is scalar (float64 ``sin``) the kernel is, by far. Only
    measuring tells, per machine and load.

    The way not taken can be many times slower (a strided kernel on short
    rows, the in-place pieces), so a retry that confirms the choice doubles
    the wait for the next one (``NATIVE_RETRY`` up to 32 times that); a
    retry that changes it starts again at ``NATIVE_RETRY``; and retries
    never cost more than ``NATIVE_RETRY_COST`` of the faster way's time on
    average (a way ``k`` times slower waits ``(k - 1) / NATIVE_RETRY_COST``
    calls at least)."""

    __slots__ = ("interval", "since")

    def __init__(self):
        super().__init__()
        self.interval = NATIVE_RETRY
        self.since = 0

    def _retry_due(self):
        self.since += 1
        if self.since < self.interval or self.since < self._retry_cost():
            return False
        self.since = 0
        return True

    def _retry_cost(self):
        """The calls a retry must wait so that retries cost at most
        ``NATIVE_RETRY_COST`` of the faster way's time on average."""
        slow, fast = max(self.threads, self.alone), min(self.threads, self.alone)
        return (slow / fast - 1) / NATIVE_RETRY_COST if fast else 0

    def record(self, threaded, ns_per_element):
        # (a way's first, dropped call comes while its average is 0.0: not
        # ``measured``, so the wait is left as it is)
        measured = bool(self.threads and self.alone)
        before = self._first_faster()
        retry = self.retrying
        super().record(threaded, ns_per_element)
        if retry and measured:
            same = self._first_faster() == before
            self.interval = min(2 * self.interval, 32 * NATIVE_RETRY) if same else NATIVE_RETRY

    def _first_faster(self):
        return self.threads <= self.alone


# ------------------------------------------------------------ compile queue
_queue = None
_queue_lock = threading.Lock()
FAILED = object()   # a kernel that cannot be built
_MISSING = object()  # (a dict lookup's default: not asked for yet)


def _worker(q):
    while True:
        spec, layout = q.get()
        try:
            _build(spec, layout)
        finally:
            q.task_done()


def _submit(spec, layout):
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.Queue()
            threading.Thread(target=_worker, args=(_queue,), daemon=True,
                             name="tracegrad-cc").start()
        _queue.put((spec, layout))


def wait_for_compiles():
    """Block until every queued kernel is built (tests, benchmarks)."""
    q = _queue
    if q is not None:
        q.join()


def _reset_after_fork():
    global _queue, _queue_lock
    _queue = None
    _queue_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# ------------------------------------------------------------ kernels
# (spec structure, layout) -> Kernel, FAILED, or None while queued. The
# source depends on the structure alone (constants are parameters), so the
# clusters of ``sum(cos(x[i]) * i)`` share their kernels.
_KERNELS = {}
_kernels_lock = threading.Lock()


def _kernel(spec, key):
    """The loaded kernel of ``key`` = ``(spec.structure, layout)``, or
    ``None`` (failed; or queued for the compile thread, or built now when
    ``cpu_codegen_sync``)."""
    found = _KERNELS.get(key, _MISSING)
    if found is _MISSING:
        with _kernels_lock:
            if key in _KERNELS:
                return None
            _KERNELS[key] = None
        if not config.cpu_codegen_sync:
            _submit(spec, key[1])
            return None
        _build(spec, key[1])
        found = _KERNELS[key]
    return None if found is FAILED else found


def _build(spec, layout):
    from tracegrad.backend import ccompiler, crunner, csource
    crunner.runner()   # (built once, before the first kernel is used)
    try:
        if layout == "strided":
            kind, source = layout, csource.strided_source(spec)
        elif layout and layout[0] == "commit":
            kind, source = "commit", csource.commit_source(spec, layout[1])
        else:
            kind, source = "contig", csource.contiguous_source(spec, layout)
        kernel = Kernel(ccompiler.build(source), kind)
    except Exception as exc:  # never the user's error: the NumPy tier runs
        _log(10, "tracegrad: no compiled kernel for %s (%s); the NumPy program runs",
             spec.name, exc)
        kernel = FAILED
    _KERNELS[(spec.structure, layout)] = kernel


class NativeProgram(Program):
    """A spec's calls through the compiled kernels (one per layout).

    ``run(inputs, outs=None, sources=None)`` is every backend's
    (``fuse.targets.Program``): the NumPy program of the spec (``host``)
    makes the checks every tier needs (casts, broadcast shape, output
    buffers and their overlaps, memory orders), then this program computes
    the call, whatever its size, or hands it back to the NumPy blocks when
    it cannot (no kernel yet, flags NumPy must report). The NumPy program
    itself hands its large calls here through ``run_prepared``."""

    def __init__(self, spec, host=None):
        from tracegrad.backend import csource
        self.spec = spec
        self.host = numpy_backend.program(spec) if host is None else host
        self.structure = spec.structure   # (a property that builds a tuple)
        self.consts = ctypes.create_string_buffer(csource.constant_block(spec))
        # layout -> Kernel, or False (cannot be built): hashing the spec's
        # structure for the shared table costs ~5 us a call.
        self._kernels = {}
        self._small = small_plan(self.host)
        self._small_calls = 0

    def run(self, inputs, outs=None, sources=None):
        """The outputs of ``inputs`` as a list (written into ``outs`` when
        given), computed by the compiled kernel when it is loaded."""
        return self.host.run_through(self, inputs, outs, sources)

    def run_prepared(self, operands, outs, shape, size, aliased=None, fallback=None):
        """Compute a checked call into ``outs`` and return ``True``, or
        ``False`` when the NumPy program must run it (no kernel yet, or
        flags to report).
        ``aliased``: ``None``, or (an output is an operand's very buffer,
        same layout: the caller checked) the NumPy block program that
        writes into those buffers, taking over a piece whose flags NumPy
        must see (see ``_run_in_place``). Any other overlap never reaches
        here: ``CpuProgram`` computes into fresh buffers then.
        ``fallback``: a callable running the NumPy program on this call.
        Given, the call runs whichever of the kernel and ``fallback`` its
        ``TierChoice`` finds faster for calls of its layout and size class
        (strided, in pieces, contiguous: each its own). Even a contiguous
        call straight into its outputs may be slower through the kernel:
        W4's ``g * (1 - h * h)`` gradient (one multiply, two outputs, 32k
        float32) took 17 us there and 15 us as NumPy's program, warm, and
        44 vs 27 us inside the training step."""
        layout, strided = _layout(operands, outs, shape)
        kernel = self._kernels.get(layout)
        if not kernel:
            kernel = self._kernel(layout)
            if kernel is None:
                return False
        if aliased is not None and not _noticed_flags(_ALL_FLAGS):
            # NumPy would report nothing: no call is ever re-run, so the
            # kernel writes straight into the buffers it reads (each
            # element is read before it is written, by one thread).
            aliased = None
        pieces = aliased is not None and not strided
        if fallback is None:
            return self._run_kernel(kernel, layout, strided, operands, outs, shape, size,
                                    aliased)
        choice = kernel.tier(size, pieces)
        compiled = choice.threaded()
        start = perf_counter_ns()
        if not compiled or not self._run_kernel(kernel, layout, strided, operands, outs, shape,
                                                size, aliased):
            # (a kernel that raised flags NumPy must report: NumPy's program
            # runs the call again and reports, and the kernel's way is
            # charged both: W2's loss kernel on 10^4 float32 values did so on
            # every call, so NumPy's program alone must win)
            fallback()
        choice.record(compiled, (perf_counter_ns() - start) / size)
        return True

    def _kernel(self, layout):
        """The loaded kernel of ``layout`` (kept by this program once
        loaded or failed), or ``None``."""
        if self._kernels.get(layout) is False:
            return None
        key = (self.structure, layout)
        kernel = _kernel(self.spec, key)
        if kernel is not None:
            self._kernels[layout] = kernel
        elif _KERNELS.get(key) is FAILED:
            self._kernels[layout] = False
        return kernel

    def run_small(self, arrays, numpy_fast):
        """A call below ``NATIVE_MIN_SIZE`` elements of a long cluster
        (``NATIVE_SMALL_STEPS`` steps or more): through the contiguous
        kernel or the NumPy program's whole-call ``numpy_fast``, whichever
        its ``TierChoice`` finds faster for calls of its size. The outputs
        as a list, or ``None`` (neither took the call: the general path
        runs it). The kernel is asked for after ``NATIVE_SMALL_AFTER``
        small calls that fit it: one that never runs again compiles nothing."""
        fit = small_layout(self._small, arrays)
        if fit is None or fit[1] >= NATIVE_MIN_SIZE:
            return numpy_fast(*arrays)   # (a large call: the general path's tier)
        shape, size = fit
        mask = self._small.mask
        kernel = self._kernels.get(mask)
        if not kernel:
            self._small_calls += 1
            if self._small_calls < NATIVE_SMALL_AFTER or kernel is False:
                return numpy_fast(*arrays)
            kernel = self._kernel(mask)
            if kernel is None:
                return numpy_fast(*arrays)
        choice = kernel.tier(size, "small")
        compiled = choice.threaded()
        start = perf_counter_ns()
        if compiled:
            results = self._run_small(kernel, arrays, shape, size)
            if results is None:   # (flags NumPy must report: charged, as in run_prepared)
                results = numpy_fast(*arrays)
        else:
            results = numpy_fast(*arrays)
            if results is None:   # (beyond the fast path's size: the kernel, not a timing)
                choice.retrying = False
                return self._run_small(kernel, arrays, shape, size)
        if results is not None:
            choice.record(compiled, (perf_counter_ns() - start) / size)
        return results

    def _run_small(self, kernel, arrays, shape, size):
        """The kernel over a small contiguous call into fresh outputs, or
        ``None`` when it raised a flag NumPy must report."""
        outs = [np.empty(shape, dt) for dt in self.host.out_dtypes]
        call = _CALL[0]
        if call is None:
            from tracegrad.backend import crunner
            call = _CALL[0] = crunner.tuple_caller() or False
        if call is not False:
            flags = call(kernel.addr, size, (*arrays, *outs), self.consts)
        else:
            address = _address
            ptrs = self._small.ptrs(*[address(a) for a in arrays], *[address(o) for o in outs])
            flags = kernel.fn(0, size, ptrs, self.consts, 0, None, None)
        if flags and _noticed_flags(flags):
            return None
        return outs

    def _run_kernel(self, kernel, layout, strided, operands, outs, shape, size, aliased):
        """The kernel (loaded for ``layout``) over the call (``run_prepared``'s
        result)."""
        if aliased is not None and not strided:
            committing = self._kernel(("commit", layout))
            if committing is None:
                return False   # (not built yet: NumPy's in-place program runs it)
            _run_in_place(committing, aliased, operands, outs, size, self.consts)
            return True
        targets = [np.empty_like(o) for o in outs] if aliased is not None else outs
        ptrs = (ctypes.c_void_p * (len(operands) + len(outs)))(
            *[_address(a) for a in operands], *[_address(o) for o in targets])
        extra = _strided_args(operands, targets, shape) if strided else (0, None, None)
        flags = _run_split(kernel, size, ptrs, self.consts, extra)
        if _noticed_flags(flags):
            return False
        if aliased is not None:
            for o, t in zip(outs, targets):
                np.copyto(o, t)
        return True


_CALL = [None]   # crunner.tuple_caller(), or False


# ------------------------------------------------------------ the hook

def can_run(spec):
    """Whether every instruction of ``spec`` has a C++ form
    (``csource.can_compile``); the compiler is looked for later."""
    from tracegrad.backend import csource
    return csource.can_compile(spec)


def program(spec, host=None):
    """The ``NativeProgram`` of ``spec`` (which ``can_run``), or ``None``
    when there is no compiler (``'c'`` then logs a warning once). ``host``:
    the spec's NumPy program (found when not given)."""
    from tracegrad.backend import ccompiler
    if ccompiler.compiler() is None:
        if config.cpu_codegen == "c" and not _warned:
            _warned.append(True)
            _log(30, "tracegrad: cpu_codegen='c' but no C++ compiler was found "
                 "(set CXX or CC); the NumPy programs run")
        return None
    return NativeProgram(spec, host)


_warned = []


def install():
    """Let the NumPy backend's programs use this tier (idempotent); whether a call
    uses it follows ``tg.config.cpu_codegen`` at the call."""
    import sys
    numpy_backend.NATIVE[0] = sys.modules[__name__]
