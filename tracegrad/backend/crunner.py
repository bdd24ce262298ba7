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
static pthread_mutex_t tg_busy = PTHREAD_MUTEX_INITIALIZER;  // one call at a time
static pthread_mutex_t tg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tg_start = PTHREAD_COND_INITIALIZER;
static pthread_cond_t tg_done = PTHREAD_COND_INITIALIZER;
static int tg_started = 0;          // workers made so far
static long tg_generation = 0;      // bumped for each job
static int tg_pending = 0;          // pieces not finished yet
static int tg_flags = 0;
static long tg_seen0[TG_MAX_THREADS + 1];  // the generation each worker was made in
static struct {
    tg_kernel fn; int64_t size; int parts; char** p; const char* k;
    int nd; const int64_t* shape; const int64_t* strides;
} tg_job;

static void tg_piece(int i, int64_t* a, int64_t* b) {
    int64_t step = (tg_job.size + tg_job.parts - 1) / tg_job.parts;
    *a = i * step;
    *b = *a + step < tg_job.size ? *a + step : tg_job.size;
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
        if (index >= tg_job.parts) continue;   // not needed for this job
        pthread_mutex_unlock(&tg_mu);
        int64_t a, b;
        tg_piece(index, &a, &b);
        int f = a < b ? tg_job.fn(a, b, tg_job.p, tg_job.k, tg_job.nd, tg_job.shape,
                                  tg_job.strides) : 0;
        pthread_mutex_lock(&tg_mu);
        tg_flags |= f;
        if (__atomic_sub_fetch(&tg_pending, 1, __ATOMIC_ACQ_REL) == 0)
            pthread_cond_signal(&tg_done);
    }
    return 0;
}

static void tg_after_fork_child(void) {
    // the workers do not exist in the child; locks are fresh
    pthread_mutex_init(&tg_busy, 0);
    pthread_mutex_init(&tg_mu, 0);
    pthread_cond_init(&tg_start, 0);
    pthread_cond_init(&tg_done, 0);
    tg_started = 0;
    tg_pending = 0;
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

extern "C" int tg_run(tg_kernel fn, int64_t size, int parts, char** p, const char* k,
                      int nd, const int64_t* shape, const int64_t* strides) {
    if (parts > TG_MAX_THREADS) parts = TG_MAX_THREADS;
    if (parts <= 1 || pthread_mutex_trylock(&tg_busy) != 0)
        return fn(0, size, p, k, nd, shape, strides);
    pthread_mutex_lock(&tg_mu);
    int workers = tg_ensure(parts - 1);
    if (workers + 1 < parts) parts = workers + 1;
    tg_job.fn = fn; tg_job.size = size; tg_job.parts = parts; tg_job.p = p; tg_job.k = k;
    tg_job.nd = nd; tg_job.shape = shape; tg_job.strides = strides;
    tg_flags = 0;
    __atomic_store_n(&tg_pending, parts - 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&tg_generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&tg_start);
    pthread_mutex_unlock(&tg_mu);
    int64_t a, b;
    tg_piece(0, &a, &b);
    int f = fn(a, b, p, k, nd, shape, strides);
    for (int s = 0; s < TG_SPIN && __atomic_load_n(&tg_pending, __ATOMIC_ACQUIRE) > 0; ++s)
        TG_RELAX();
    pthread_mutex_lock(&tg_mu);
    while (__atomic_load_n(&tg_pending, __ATOMIC_ACQUIRE) > 0)
        pthread_cond_wait(&tg_done, &tg_mu);
    f |= tg_flags;
    pthread_mutex_unlock(&tg_mu);
    pthread_mutex_unlock(&tg_busy);
    return f;
}
"""

_lock = threading.Lock()
_RUN = []   # [tg_run] once built, [None] when it cannot be


def runner():
    """``tg_run`` (a ctypes function), or ``None`` when it cannot be built."""
    if _RUN:
        return _RUN[0]
    with _lock:
        if not _RUN:
            from tracegrad.backend import ccompiler
            try:
                fn = ccompiler.build(SOURCE, extra_libs=("-lpthread",)).tg_run
                fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p,
                               ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
                fn.restype = ctypes.c_int
            except Exception:  # no threads then: each call runs on its caller
                fn = None
            _RUN.append(fn)
    return _RUN[0]
