"""Threads for the compiled CPU tier: a small C library splitting one kernel
call over persistent worker threads.

Handing pieces of a call to Python pool threads costs ~50-100 µs per call
(futures, queues, waking threads through the interpreter), as much as the
whole W1 kernel on 10^5 float32 elements. ``tg_run`` does the split in C:
``parts - 1`` persistent pthreads wait on a condition variable, each runs
its piece of ``[0, size)`` and the calling thread runs the first piece; the
call returns the OR of the pieces' floating-point flags. (OpenMP would do
the same, but GNU libgomp is not fork-safe: a forked child that uses it can
hang, and our users fork — multiprocessing data loaders.)

- One call at a time uses the workers; a concurrent call (another Python
  thread) runs its whole range on its own thread.
- After ``fork`` the child starts with no workers (``pthread_atfork``) and
  makes new ones when it first needs them.
- ctypes releases the GIL around ``tg_run``, so the workers never need it.
- Workers block every signal, so SIGINT always reaches Python's main thread
  (caught by tests/test_updates_atomic.py, whose interrupts went astray).
"""
import ctypes
import threading

SOURCE = r"""
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

typedef int (*tg_kernel)(int64_t, int64_t, char**, const char*, int, const int64_t*,
                         const int64_t*);

#define TG_MAX_THREADS 64
// Rounds a waiting thread spins (reading without the lock) before it sleeps
// on the condition variable: waking a sleeping thread took ~100 us on this
// 2-vCPU machine, as long as the W1 kernel on 10^5 float32 values, so two
// threads were no faster than one. 6,000 pause rounds took ~95 us here
// (measured: 20,000 took 315 us); OpenMP's runtime spins longer by default.
#define TG_SPIN 6000
#if defined(__x86_64__) || defined(__i386__)
#define TG_RELAX() __builtin_ia32_pause()
#else
#define TG_RELAX() ((void)0)
#endif
// The claim word: (job number << 32) | next chunk. TG_LOCKED as the chunk:
// a job being set up (nothing to claim).
#define TG_LOCKED 0xFFFFFFFFull
static pthread_mutex_t tg_busy = PTHREAD_MUTEX_INITIALIZER;  // one call at a time
static pthread_mutex_t tg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tg_start = PTHREAD_COND_INITIALIZER;
static pthread_cond_t tg_done_cv = PTHREAD_COND_INITIALIZER;
static int tg_started = 0;          // workers made so far
static long tg_generation = 0;      // bumped for each job (wakes the workers)
static uint64_t tg_claim = TG_LOCKED;
static int64_t tg_done = 0;         // chunks finished in the current job
static int tg_flags = 0;
static long tg_seen0[TG_MAX_THREADS + 1];  // the generation each worker was made in
typedef struct {
    tg_kernel fn; int64_t size; int64_t chunk; int64_t nchunks; char** p; const char* k;
    int nd; const int64_t* shape; const int64_t* strides;
} tg_job_t;
static tg_job_t tg_job;

#define TG_LOAD(f) __atomic_load_n(&tg_job.f, __ATOMIC_RELAXED)

// Claim and run chunks of the current job until none is left (their flags
// OR-ed into tg_flags). A late thread (woken after the other threads took
// every chunk) claims nothing, so no call ever waits for a thread that
// did not start: on a busy machine the caller just runs more chunks
// itself. The job's fields are read, then the claim word is advanced from
// the value read before them (compare-and-swap): a success proves that no
// new job was set up meanwhile, so the fields read are this job's.
static void tg_claim_chunks(void) {
    for (;;) {
        uint64_t v = __atomic_load_n(&tg_claim, __ATOMIC_ACQUIRE);
        uint64_t i = v & 0xFFFFFFFFull;
        if (i == TG_LOCKED) return;
        tg_job_t j;
        j.fn = TG_LOAD(fn); j.size = TG_LOAD(size); j.chunk = TG_LOAD(chunk);
        j.nchunks = TG_LOAD(nchunks); j.p = TG_LOAD(p); j.k = TG_LOAD(k); j.nd = TG_LOAD(nd);
        j.shape = TG_LOAD(shape); j.strides = TG_LOAD(strides);
        if ((int64_t)i >= j.nchunks) return;
        if (!__atomic_compare_exchange_n(&tg_claim, &v, v + 1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        int64_t a = (int64_t)i * j.chunk;
        int64_t b = a + j.chunk < j.size ? a + j.chunk : j.size;
        int f = j.fn(a, b, j.p, j.k, j.nd, j.shape, j.strides);
        // (the flags before the count: the caller reads them once every
        // chunk is counted)
        if (f) __atomic_fetch_or(&tg_flags, f, __ATOMIC_ACQ_REL);
        if (__atomic_add_fetch(&tg_done, 1, __ATOMIC_ACQ_REL) == j.nchunks) {
            pthread_mutex_lock(&tg_mu);
            pthread_cond_signal(&tg_done_cv);
            pthread_mutex_unlock(&tg_mu);
        }
    }
}

static void* tg_worker(void* arg) {
    int index = (int)(intptr_t)arg;
    pthread_mutex_lock(&tg_mu);
    // (made inside tg_run, which bumps the generation right after: start
    // from the generation before that bump, or this job would be missed)
    long seen = tg_seen0[index];
    for (;;) {
        if (__atomic_load_n(&tg_generation, __ATOMIC_ACQUIRE) == seen) {
            pthread_mutex_unlock(&tg_mu);
            for (int s = 0; s < TG_SPIN &&
                 __atomic_load_n(&tg_generation, __ATOMIC_ACQUIRE) == seen; ++s)
                TG_RELAX();
            pthread_mutex_lock(&tg_mu);
        }
        while (__atomic_load_n(&tg_generation, __ATOMIC_ACQUIRE) == seen)
            pthread_cond_wait(&tg_start, &tg_mu);
        seen = tg_generation;
        pthread_mutex_unlock(&tg_mu);
        tg_claim_chunks();
        pthread_mutex_lock(&tg_mu);
    }
    return 0;
}

static void tg_after_fork_child(void) {
    // the workers do not exist in the child; locks are fresh
    pthread_mutex_init(&tg_busy, 0);
    pthread_mutex_init(&tg_mu, 0);
    pthread_cond_init(&tg_start, 0);
    pthread_cond_init(&tg_done_cv, 0);
    tg_started = 0;
    tg_claim = (tg_claim & ~0xFFFFFFFFull) | TG_LOCKED;
}

static int tg_ensure(int workers) {
    static int registered = 0;
    if (!registered) { pthread_atfork(0, 0, tg_after_fork_child); registered = 1; }
    // Workers are born with every signal blocked (they inherit the mask of
    // the thread that makes them): a SIGINT must reach Python's main
    // thread, never a worker (it would land later, anywhere).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (tg_started < workers) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        tg_seen0[tg_started + 1] = tg_generation;
        int err = pthread_create(&t, &attr, tg_worker, (void*)(intptr_t)(tg_started + 1));
        pthread_attr_destroy(&attr);
        if (err) break;
        tg_started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, 0);
    return tg_started;
}

// Run fn over [0, size) in chunks of `chunk` elements, shared by the
// calling thread and up to parts - 1 workers as each comes free.
extern "C" int tg_run(tg_kernel fn, int64_t size, int parts, int64_t chunk, char** p,
                      const char* k, int nd, const int64_t* shape, const int64_t* strides) {
    if (parts > TG_MAX_THREADS) parts = TG_MAX_THREADS;
    if (chunk < 1) chunk = size;
    int64_t nchunks = (size + chunk - 1) / chunk;
    if (parts <= 1 || nchunks <= 1 || nchunks >= (int64_t)TG_LOCKED ||
            pthread_mutex_trylock(&tg_busy) != 0)
        return fn(0, size, p, k, nd, shape, strides);
    pthread_mutex_lock(&tg_mu);
    tg_ensure(parts - 1);
    // (every chunk of the last job is done: no thread reads its fields now,
    // and one that reads them later fails its claim on the locked word)
    uint64_t job = (tg_claim >> 32) + 1;
    __atomic_store_n(&tg_claim, (job << 32) | TG_LOCKED, __ATOMIC_RELEASE);
    tg_job.fn = fn; tg_job.size = size; tg_job.chunk = chunk; tg_job.nchunks = nchunks;
    tg_job.p = p; tg_job.k = k; tg_job.nd = nd; tg_job.shape = shape; tg_job.strides = strides;
    __atomic_store_n(&tg_flags, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&tg_done, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&tg_claim, job << 32, __ATOMIC_RELEASE);
    __atomic_add_fetch(&tg_generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&tg_start);
    pthread_mutex_unlock(&tg_mu);
    tg_claim_chunks();
    // Only chunks another thread is running are left: wait for those.
    for (int s = 0; s < TG_SPIN && __atomic_load_n(&tg_done, __ATOMIC_ACQUIRE) < nchunks; ++s)
        TG_RELAX();
    pthread_mutex_lock(&tg_mu);
    while (__atomic_load_n(&tg_done, __ATOMIC_ACQUIRE) < nchunks)
        pthread_cond_wait(&tg_done_cv, &tg_mu);
    pthread_mutex_unlock(&tg_mu);
    int f = __atomic_load_n(&tg_flags, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&tg_busy);
    return f;
}

// One small contiguous call on the calling thread, its operands and outputs
// given as a Python tuple of NumPy arrays (read only: the caller holds the
// tuple, which keeps them alive): the tuple's items start `items` bytes in,
// an array's data pointer sits `data` bytes in (offsets checked by
// `tg_probe` first). Filling a ctypes pointer array from Python costs
// ~0.4 us an array, a third of a small call.
#define TG_MAX_ARGS 256
static inline char* tg_item_data(const char* tuple, int64_t items, int64_t data, int64_t i) {
    const char* obj = ((const char* const*)(tuple + items))[i];
    return *(char* const*)(obj + data);
}
extern "C" int tg_call(tg_kernel fn, int64_t size, const char* tuple, int64_t n, const char* k,
                       int64_t items, int64_t data) {
    char* p[TG_MAX_ARGS];
    if (n > TG_MAX_ARGS) return -1;
    for (int64_t i = 0; i < n; ++i) p[i] = tg_item_data(tuple, items, data, i);
    return fn(0, size, p, k, 0, 0, 0);
}
extern "C" void* tg_probe(const char* tuple, int64_t items, int64_t data, int64_t i) {
    return tg_item_data(tuple, items, data, i);
}
"""

_lock = threading.Lock()
_RUN = []   # [tg_run] once built, [None] when it cannot be
_CALL = []  # [tg_call bound to the offsets] once checked, [None] when it cannot be


def tuple_caller():
    """``call(fn_address, size, arrays, consts) -> flags``: ``tg_call``
    running a contiguous kernel over ``[0, size)`` with the data pointers
    of the tuple ``arrays`` (operands then outputs), or ``None`` (no
    runner, or this interpreter's object layout is not the one read: a
    tuple's items after its variable-size header, an array's data pointer
    after the object header; checked once on real arrays)."""
    if _CALL:
        return _CALL[0]
    runner()
    with _lock:
        if not _CALL:
            _CALL.append(_checked_caller())
    return _CALL[0]


def _checked_caller():
    lib = _LIB[0] if _LIB else None
    if lib is None:
        return None
    import numpy as np
    items = tuple.__basicsize__
    data = object.__basicsize__
    probe_fn = lib.tg_probe
    probe_fn.argtypes = [ctypes.py_object, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    probe_fn.restype = ctypes.c_void_p
    arrays = (np.empty(3), np.empty((2, 2), np.float32))
    if any(probe_fn(arrays, items, data, i) != a.ctypes.data for i, a in enumerate(arrays)):
        return None
    fn = lib.tg_call
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.py_object, ctypes.c_int64,
                   ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int

    def call(address, size, arrays, consts):
        return fn(address, size, arrays, len(arrays), consts, items, data)
    return call


_LIB = []


def runner():
    """``tg_run`` (a ctypes function), or ``None`` when it cannot be built."""
    if _RUN:
        return _RUN[0]
    with _lock:
        if not _RUN:
            from tracegrad.backend import ccompiler
            try:
                lib = ccompiler.build(SOURCE, extra_libs=("-lpthread",))
                _LIB.append(lib)
                fn = lib.tg_run
                fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int64,
                               ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                               ctypes.c_void_p]
                fn.restype = ctypes.c_int
            except Exception:  # no threads then: each call runs on its caller
                fn = None
            _RUN.append(fn)
    return _RUN[0]
