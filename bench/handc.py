"""The compiled limit of W1: one loop written by hand in C.

``exp(-x*x)*sin(3*x) + log1p(abs(y))*tanh(x-y) + 0.5*x*y`` as one OpenMP
loop over ``tg.config.num_threads`` threads, built with gcc ``-O3
-march=native -fopenmp -fno-math-errno -ffp-contract=off`` (no
``-ffast-math``: NaN/inf behave as in NumPy) and glibc's vectorised math
declared with ``#pragma omp declare simd``; a fresh output array per call,
as NumPy returns one. The reference that issue 18's targets are measured
against (``tracegrad / hand C``).
"""
import ctypes
import os
import subprocess
import tempfile

import numpy as np

from bench.timing import Missing

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double sin(double);
#pragma omp declare simd notinbranch
double log1p(double);
#pragma omp declare simd notinbranch
double tanh(double);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float sinf(float);
#pragma omp declare simd notinbranch
float log1pf(float);
#pragma omp declare simd notinbranch
float tanhf(float);

void w1_f64(const double* x, const double* y, double* o, int64_t n, int nthreads) {
    #pragma omp parallel for simd num_threads(nthreads) schedule(static) if(n >= 65536)
    for (int64_t i = 0; i < n; ++i) {
        double a = x[i], b = y[i];
        o[i] = exp(-a * a) * sin(3.0 * a) + log1p(fabs(b)) * tanh(a - b) + 0.5 * a * b;
    }
}

void w1_f32(const float* x, const float* y, float* o, int64_t n, int nthreads) {
    #pragma omp parallel for simd num_threads(nthreads) schedule(static) if(n >= 65536)
    for (int64_t i = 0; i < n; ++i) {
        float a = x[i], b = y[i];
        o[i] = expf(-a * a) * sinf(3.0f * a) + log1pf(fabsf(b)) * tanhf(a - b) + 0.5f * a * b;
    }
}
"""

_LIB = []


def library():
    """The built kernel library (built once per process), or raises Missing."""
    if _LIB:
        return _LIB[0]
    folder = tempfile.mkdtemp(prefix="tracegrad-handc-")
    src = os.path.join(folder, "w1.c")
    out = os.path.join(folder, "w1.so")
    with open(src, "w") as f:
        f.write(SOURCE)
    cmd = [os.environ.get("CC", "gcc"), "-O3", "-march=native", "-fopenmp",
           "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared", src, "-o", out,
           "-lmvec", "-lm"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise Missing(f"no C compiler: {exc}") from None
    if proc.returncode != 0:
        raise Missing(f"hand C kernel did not build: {proc.stderr[-300:]}")
    lib = ctypes.CDLL(out)
    for name in ("w1_f64", "w1_f32"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_int]
        fn.restype = None
    _LIB.append(lib)
    return lib


def w1(x, y):
    """A callable computing W1 on ``x, y`` with the hand-written kernel."""
    import tracegrad as tg
    lib = library()
    fn = lib.w1_f64 if x.dtype == np.float64 else lib.w1_f32
    nthreads = tg.config.num_threads

    def call():
        o = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, o.ctypes.data, x.size, nthreads)
        return o
    return call
