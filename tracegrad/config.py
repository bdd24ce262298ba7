"""Global settings: ``tg.config.floatX``, ``device``, ``optimizer``, ``num_threads``.

Read once from the environment variable ``TRACEGRAD_FLAGS`` (for example
``TRACEGRAD_FLAGS="floatX=float32,device=cuda"``) and changeable at run time
by attribute assignment (``tg.config.floatX = 'float32'``).

This module is also the one place that turns the spellings users give for a
mode (``'FAST_RUN'``, ``'fast_run'``...) or a device (``'gpu'``, ``'cuda:0'``,
``'CPU'``...) into tracegrad's own names (``normalize_mode``,
``normalize_device``), and it holds the performance tunables (the constants
below ``config``). It imports nothing from tracegrad: every layer may import it.
"""
import functools
import os

# The optimizer modes (``tg.config.optimizer``, ``function(mode=)``); what
# each runs is ``tracegrad.rewrite.engine.MODES``.
MODES = ("fast_run", "fast_compile", "None", "fast_math")
DEVICES = ("cpu", "cuda")
_FLOAT_DTYPES = ("float64", "float32", "float16")


def normalize_mode(mode):
    """The optimizer mode name of ``mode``: ``None`` is ``tg.config.optimizer``;
    names are case-insensitive (Theano's ``'FAST_RUN'``, ``'FAST_COMPILE'``,
    ``'FAST_MATH'``; ``'none'`` is ``'None'``). ``ValueError`` naming the bad
    value and the accepted ones otherwise."""
    if mode is None:
        return config.optimizer
    name = str(mode)
    lowered = name.lower()
    canonical = "None" if lowered == "none" else lowered
    if canonical not in MODES:
        raise ValueError(f"unknown optimizer mode {name!r}; accepted: {', '.join(MODES)} "
                         "(any case), a tracegrad.compile.Mode or a list of phases")
    return canonical


def normalize_device(device):
    """The device name of ``device``: ``None`` is ``tg.config.device``;
    ``'cpu'`` in any case is ``'cpu'``; ``'cuda'``, ``'cuda0'``, ``'cuda:1'``,
    ``'gpu'`` (any case) are ``'cuda'``. ``ValueError`` naming the bad value
    and the accepted ones otherwise."""
    if device is None:
        return config.device
    name = str(device)
    lowered = name.lower()
    if lowered == "gpu" or lowered.startswith("cuda"):
        return "cuda"
    if lowered != "cpu":
        raise ValueError(f"unknown device {name!r}; accepted: 'cpu', 'cuda' "
                         "('gpu', 'cuda0', 'cuda:1' mean 'cuda'; any case)")
    return "cpu"


def _float_dtype(value):
    value = str(value)
    if value not in _FLOAT_DTYPES:
        raise ValueError(
            f"tracegrad.config.floatX must be one of {_FLOAT_DTYPES}, got {value!r}")
    return value


def _positive_int(value):
    value = int(value)
    if value < 1:
        raise ValueError("tracegrad.config.num_threads must be >= 1")
    return value


_TEST_VALUE_MODES = ("off", "ignore", "warn", "raise", "pdb")
_CPU_CODEGEN = ("auto", "c", "numpy")


def _cpu_codegen(value):
    value = str(value).lower()
    if value not in _CPU_CODEGEN:
        raise ValueError(f"tracegrad.config.cpu_codegen must be one of {_CPU_CODEGEN}, "
                         f"got {value!r}")
    return value


def _flag(value):
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    return bool(value)


def _test_value_mode(value):
    value = str(value)
    if value not in _TEST_VALUE_MODES:
        raise ValueError(f"tracegrad.config.compute_test_value must be one of "
                         f"{_TEST_VALUE_MODES}, got {value!r}")
    return value


def _verbosity(value):
    value = str(value)
    if value not in ("low", "high"):
        raise ValueError(f"tracegrad.config.exception_verbosity must be 'low' or 'high', "
                         f"got {value!r}")
    return value


def _setting(name, validate, doc):
    def get(self):
        return self._values[name]

    def set(self, value):
        self._values[name] = validate(value)
    return property(get, set, doc=doc)


# setting name -> functions called with its new value after each assignment
# (modules above watch settings without config importing them).
WATCHERS = {}


class Config:
    """Settings object; assignment validates the value."""

    floatX = _setting("floatX", _float_dtype,
                      "dtype of T.scalar, T.matrix... ('float64' by default)")
    # (a setting is never None: assigning None to optimizer means 'None', no
    # rewrites, as in Theano; to device it is refused)
    device = _setting("device", lambda v: normalize_device(str(v)),
                      "'cpu' (NumPy) or 'cuda' (CuPy)")
    optimizer = _setting("optimizer", lambda v: normalize_mode(str(v)),
                         "rewrite phases: 'fast_run', 'fast_compile', 'None' or "
                         "'fast_math' (fast_run plus value-changing algebra)")
    num_threads = _setting("num_threads", _positive_int,
                           "threads for blocked elementwise loops on the CPU")
    compute_test_value = _setting(
        "compute_test_value", _test_value_mode,
        "Theano's test values: 'off' (default); 'ignore', 'warn' or 'raise' compute "
        "each new node on its inputs' x.tag.test_value while the graph is built, and "
        "say so (warn) or fail (raise) when an input has none; 'pdb' is 'raise'")
    print_test_value = _setting(
        "print_test_value", _flag,
        "Theano's flag: True makes repr(x) show x's test value below its name "
        "(x.tag.test_value, a constant's value), when it has one; False by default")
    exception_verbosity = _setting(
        "exception_verbosity", _verbosity,
        "Theano's flag: 'low' (default): a run-time error names the op, its inputs' "
        "shapes and dtypes and the line that built it; 'high' adds the debugprint of "
        "the failing node's graph (three levels deep)")
    cpu_codegen = _setting(
        "cpu_codegen", _cpu_codegen,
        "'auto' (default): large calls of fused clusters run compiled C++ kernels "
        "when a compiler exists (the NumPy programs otherwise, and while a kernel "
        "compiles in the background); 'c': the same, warning once when there is no "
        "compiler; 'numpy': the NumPy ufunc programs only")
    cpu_codegen_sync = _setting(
        "cpu_codegen_sync", _flag,
        "compile C++ kernels at the call that first needs them instead of in the "
        "background (benchmarks, tests); False by default")
    progress = _setting(
        "progress", _flag,
        "show a progress line on stderr (a terminal only) while a graph takes more "
        "than PROGRESS_AFTER_S seconds to compile; True by default")

    def __init__(self):
        object.__setattr__(self, "_values", {
            "floatX": "float64",
            "device": "cpu",
            "optimizer": "fast_run",
            "num_threads": min(4, os.cpu_count() or 1),
            "compute_test_value": "off",
            "print_test_value": False,
            "exception_verbosity": "low",
            "cpu_codegen": "auto",
            "cpu_codegen_sync": False,
            "progress": True,
        })

    def __setattr__(self, name, value):
        if not isinstance(getattr(type(self), name, None), property):
            raise AttributeError(
                f"tracegrad.config has no setting {name!r}; known: {sorted(self._values)}")
        object.__setattr__(self, name, value)
        for watcher in WATCHERS.get(name, ()):
            watcher(self._values[name])

    def __repr__(self):
        return "tracegrad.config(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    def change_flags(self, *args, **kwargs):
        """Theano's ``config.change_flags``: settings changed for a ``with``
        block or a decorated function, restored afterwards."""
        return change_flags(*args, **kwargs)


class change_flags:
    """Theano's ``theano.change_flags(**flags)`` (also
    ``tracegrad.config.change_flags``): a context manager and a decorator
    that sets ``tracegrad.config`` settings (dicts as positional arguments
    are merged in) and restores the previous values when the block or the
    call ends, also when it raises. Unknown names raise ``AttributeError``
    when the flags are applied."""

    def __init__(self, *args, **kwargs):
        flags = {}
        for arg in args:
            flags.update(dict(arg))
        flags.update(kwargs)
        self.flags = flags
        self._saved = []

    def __enter__(self):
        before = {}
        try:
            for name, value in self.flags.items():
                old = getattr(config, name, None)
                setattr(config, name, value)   # validates; unknown names raise
                before[name] = old
        except BaseException:
            _restore(before)
            raise
        # a stack: the same object may be entered again (a recursive call)
        self._saved.append(before)
        return self

    def __exit__(self, *exc):
        _restore(self._saved.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapped


def _restore(before):
    for name, value in reversed(list(before.items())):
        setattr(config, name, value)


def parse_flags(text):
    """Parse ``"floatX=float32,device=cuda"`` into a dict."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in item:
            raise ValueError(f"TRACEGRAD_FLAGS entry {item!r} is not of the form name=value")
        key, value = (s.strip() for s in item.split("=", 1))
        out[key] = value
    return out


config = Config()
for _key, _value in parse_flags(os.environ.get("TRACEGRAD_FLAGS", "")).items():
    setattr(config, _key, _value)


# ------------------------------------------------------------------ tunables
# Performance constants, in one place, each with what it trades and the
# measurement behind its value ("not measured": chosen by judgement, no
# recorded measurement; a candidate for the benchmarks). The modules that use
# one import it by name (``from tracegrad.config import BLOCK_BYTES``) and
# read their module global at the moment they need it, so an experiment or a
# test changes one by patching the using module's name, e.g.
# ``monkeypatch.setattr(tracegrad.backend.numpy, "THREAD_MIN_NS", 1)``; the call
# paths pay no extra lookup for them. Measurements were taken on the 2-core
# AMD EPYC development machine (2 MiB L2 per core).

# --- blocked CPU loops of fused clusters (backend/numpy/__init__.py, backend/numpy/runner.py)
# Bytes per block and buffer (of the widest dtype). Measured on W1: smaller
# blocks pay Python overhead per ufunc call, larger ones spill a block's
# intermediates out of L2 (the figures per size were not recorded).
BLOCK_BYTES = 1 << 18
# Bytes of the scratch slab a sum of a fused result is computed in
# (fuse/reduce.py): a few blocks, so each slab's program call and its sum
# pay their Python overhead over enough elements, while the slab stays in L2.
# Measured once on the contractive autoencoder's sum((s * W) ** 2) over
# (20, 784, 500) float64 (a loaded machine, medians of 10): 64 KiB slabs
# 37 ms, 256 KiB 23 ms, 1 MiB 22 ms; materialized and summed, 39 ms.
SLAB_BYTES = 1 << 20
# Fewest elements in a block, whatever the dtype. Not measured.
MIN_BLOCK = 4096
# Least work (ns) in a block: a block costs a few microseconds of Python
# (slicing, calls), so cheap programs (``w - lr * g``) get bigger blocks, or
# none at all. The per-block overhead is measured; this value (overhead
# under ~5%) was not compared against others.
BLOCK_MIN_NS = 60_000
# Blocks are this many times bigger when a call runs on several threads:
# threads share the GIL for the Python part of every ufunc call, so fewer,
# bigger blocks contend less. Measured 5-10% faster on W1 with two threads
# (W1 float32 1e6: 0.56 -> 0.52 of NumPy's time, commit 990638c).
THREADED_BLOCK_FACTOR = 2
# Least work (ns) per worker thread: a hand-off to the pool and back costs
# tens of microseconds (measured); the value itself was not tuned further.
THREAD_MIN_NS = 150_000
# A call of up to this many blocks runs as one pass on one thread: cutting
# a call into just two blocks costs more than it saves. Not measured.
SINGLE_PASS_BLOCKS = 2
# A threaded call is cut into at least this many blocks per thread, so a
# thread that gets less CPU time than the others (a busy machine) does not
# hold the call back. Not measured.
BLOCKS_PER_THREAD = 2
# Python time (ns) of one step of a block, whatever its size: a ufunc call
# on a few elements, with the GIL held. Measured ~1.2 us (``np.sin(a,
# out=o)``, 4 elements) to ~2.7 us (a multiply by a Python float) on the
# development machine; the lower figure is used. A call goes to threads
# only when each gets at least BLOCKS_PER_THREAD blocks' worth of this
# overhead in element work: a 10^5-step kernel (the 50k chain and its
# gradient) on 16 elements ran its steps 4 times, in 4 blocks on 2 threads.
STEP_DISPATCH_NS = 1_000
# Elements used to measure what an elementwise row costs per element (best
# of CALIBRATION_ROUNDS runs, once per row and argument dtypes). Not measured.
CALIBRATION_SIZE = 8192
CALIBRATION_ROUNDS = 3

# --- generated code of fused clusters (backend/numpy/codegen.py, fuse/cache.py)
# A fast path of more lines than this is compiled at its first call, not
# when built: its compilation costs ~30 us a line (measured), and a kernel
# this long takes it only for calls of a few elements. The 400 itself is
# not measured.
EAGER_FAST_LINES = 400
# Compiled code objects kept, keyed by source (least recently used goes
# first). Not measured (a memory bound).
MAX_CODE = 1024
# Programs (CPU) and kernel sources (CUDA) kept per cache, keyed by spec.
# Not measured (a memory bound).
MAX_ENTRIES = 1024

# A generated block function of more lines than this starts interpreted
# (backend/numpy/interp.py: its calls run from a table) and is compiled after
# COMPILE_AFTER runs: compiling the 50k chain's 100k-line block took 1.5-2 s
# at its first call (measured), interpreting costs ~0.2 us more a line per
# run. The 4000 and 16 themselves are not measured.
INTERPRET_LINES = 4000
COMPILE_AFTER = 16

# --- linking (compile/schedule.py, compile/runtime.py)
# Schedules of more steps than this run as a loop over a table of steps
# (``run_table``) instead of one generated line per step: compiling a line
# costs ~50 us and saves ~0.3 us per call, so a 12k-step runner took ~0.6 s
# to compile for calls ~5 % faster (measured). The 2000 is not tuned.
STRAIGHT_LINE_STEPS = 2000

# --- fusion (fuse/cluster.py)
# Most operands (inputs and outputs) of one fused cluster. Not measured.
DEFAULT_MAX_OPERANDS = 32

# --- rewrites (rewrite/engine.py, ops/shape_static.py)
# Passes of a phase before it stops short of a fixpoint. Not measured (a
# safety net).
MAX_PASSES = 8
# Stop a phase after this many rewrites per node: a safety net against two
# rules undoing each other forever. Not measured.
MAX_REWRITES_PER_NODE = 20
# Build-time folding (``static_value``) visits at most this many nodes and
# folds values of at most this many elements, so asking stays cheap. Not
# measured.
FOLD_MAX_NODES = 32
FOLD_MAX_SIZE = 64
# Constant folding keeps a result larger than this many bytes (and than its
# inputs together) as a node: ``zeros((10000, 10000))`` stays a small node
# instead of becoming an 800 MB constant. Not measured.
FOLD_MAX_BYTES = 1 << 16
# ``collect_terms``/``collect_factors`` (flat sums and products for the
# canonicalize rules) walk at most this many nodes deep. Not measured.
COLLECT_LIMIT = 64

# --- ops (ops/nnet.py)
# Up to this many entries along the last axis, softmax's max is taken
# column by column (``maximum`` over whole columns is vectorised; NumPy's
# reduction over a short inner axis is not): measured 4 ns per element,
# 5x slower than column by column for 10 classes.
SHORT_AXIS = 16

# --- function transforms (transforms.py)
# How many compiled transforms (``tg.grad(f)``, ``tg.vjp(f, ...)``...) are
# kept for reuse by later calls with the same function: each holds its
# function and compiled graphs alive. Not measured.
TRANSFORM_MEMO_SIZE = 64

# --- the compiled CPU tier (backend/c.py)
# Fewest elements of a call that asks for a compiled kernel: below it the
# NumPy program's whole-call fast path (a few microseconds) is as quick as a
# foreign call with its argument packing, and graphs of many tiny clusters
# (a 4k-term sum of scalars) would queue thousands of compiles for nothing.
# Not measured.
NATIVE_MIN_SIZE = 8192
# Smaller calls of a long cluster may still pay for a kernel: the NumPy
# fast path costs ~0.5-1 us per ufunc step, a small compiled call ~3-5 us
# of argument packing (W2's 32-step loss cluster on 400 float64 values:
# ~15 us as NumPy steps). So a cluster of NATIVE_SMALL_STEPS lowered steps
# or more asks for its kernel after NATIVE_SMALL_AFTER small calls (graphs
# of many small clusters called once or twice compile nothing), and each
# size class then runs whichever of the kernel and the fast path measured
# faster (``TierChoice``). The thresholds are not tuned.
NATIVE_SMALL_STEPS = 6
NATIVE_SMALL_AFTER = 16
# Fewest elements per thread of a compiled kernel's call: a pool hand-off
# costs ~10-30 us, a compiled W1 element ~2-5 ns. Not measured.
NATIVE_MIN_PER_THREAD = 32768
# Chunks of a threaded compiled call (backend/crunner.py: threads take the
# next chunk as they come free, so a thread whose core is busy with another
# process takes fewer and the call does not wait for its share): about
# NATIVE_CHUNKS_PER_THREAD chunks per thread, at least NATIVE_CHUNK_MIN
# elements (a claim is one atomic compare-and-swap, ~0.1 us; 8192 W1
# elements take ~15-40 us) and at most NATIVE_CHUNK_MAX (the work a late
# thread can still hold up at the end of a call: ~0.1-0.3 ms of W1).
# Measured before/after in docs/ARCHITECTURE.md ("CPU thread policy"); the
# three values themselves were not tuned one by one.
NATIVE_CHUNKS_PER_THREAD = 8
NATIVE_CHUNK_MIN = 8192
NATIVE_CHUNK_MAX = 65536
# Whether a compiled call uses threads at all is measured per kernel and
# size class (backend/c.py, ThreadChoice): threads run only when their
# average time per element is below NATIVE_THREADS_GAIN of the time alone
# (a tie goes to one thread: it leaves the other core to other work), and
# the way not taken is tried again every NATIVE_RETRY calls (a wrong try
# costs at most ~2.6x one call, measured on a loaded machine: ~5% at 32).
# Neither value was tuned.
NATIVE_THREADS_GAIN = 0.9
NATIVE_RETRY = 32
# Each way's average starts as the least of its first NATIVE_PROBES measured
# calls (the two ways alternate until both have them), and a later call
# counts at most NATIVE_OUTLIER times the average: a delay on this busy
# machine only ever makes a call slower, and one preempted first call of
# NumPy's program in W4's step (32.6 ns an element against ~0.95) had set
# the average that kept the kernel (1.6 ns) for the next ~3000 calls.
# Neither value was tuned.
NATIVE_PROBES = 3
NATIVE_OUTLIER = 4.0
# A TierChoice (kernel or NumPy program) retries the way not taken at most
# as often as keeps the retries' expected cost within NATIVE_RETRY_COST of
# the faster way's time: a retry costs (slower / faster - 1) calls, so it
# waits that over NATIVE_RETRY_COST calls at least. W1's float32 kernel on
# 10^5 values measured 1.7 ns an element against NumPy's program 14.5: a
# retry every 128 calls (the doubling wait then) added ~5% to the mean.
# The 1% is not tuned.
NATIVE_RETRY_COST = 0.01

# --- progress while compiling (progress.py)
# A compile shows its progress line (when stderr is a terminal and
# ``config.progress`` is on) once it has run this many seconds: shorter
# compiles print nothing. Not measured.
PROGRESS_AFTER_S = 1.0

# Within a long stage (a rewrite phase's pass, fusion's search), the line's
# "nodes done / total" moves every this many nodes: a few milliseconds of
# work between two updates (a rewrite visit is ~10 us a node), so a line a
# person reads moves smoothly, and a small graph never reaches one (its
# loops pay a counter and a comparison a node). Not measured further.
PROGRESS_EVERY_NODES = 500
