"""C++ source of a fused cluster for the compiled CPU tier (``backend.c``).

One emitter serves the CPU and the GPU: each instruction is the row's ``c``
expression template with its arguments cast to the type it computes in
(``backend/emit.py``, the emitter the CUDA kernels use), and the helpers are its
``PREAMBLE`` (``__device__``/``__forceinline__`` defined away). A kernel is
one loop over a range ``[start, end)`` of the flattened iteration space, so
the caller can split a call over threads:

- ``tg_contig`` (one per *layout*: which operands are a single value read
  once, the others contiguous in the outputs' order): a ``#pragma omp simd``
  loop the compiler vectorises, calling libmvec for the math functions;
- ``tg_strided``: any strides (broadcast axes have stride 0), walking the
  last axis in the inner loop.

Both return the floating-point exception flags raised (``fetestexcept``) so
that the caller can give NumPy's warnings (see ``backend.c``).

Each element loads every input before computing, and stores the outputs
last, so an output buffer that *is* an input (an in-place update) is read
before it is written. Scalar constants are read from a parameter block
(``k``, 8 bytes each, in the constant's dtype) rather than written as
literals: the source then depends only on the cluster's structure and
dtypes, so the clusters of ``sum(cos(x[i]) * i)`` differing only in ``i``
share one compiled kernel, exactly as they share one NumPy program.
Array constants are operands after the inputs. Names never enter the
source: positions only (``in<k>``, ``v<j>``, ``o<m>``).
"""
import ctypes

import numpy as np

from tracegrad.backend.emit import body_lines, compute_ctype, instruction_type
from tracegrad.fuse.spec import SUM_TO
from tracegrad.ops.elemwise import PREAMBLE

# dtypes a kernel reads or writes (C++ ``bool`` is NumPy's one byte).
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
          "uint64", "float32", "float64")
# Rows left to the NumPy tier: ``erfinv`` (not in the C++ library);
# ``tgamma``/``lgamma`` (no vector versions, so nothing to gain; ``lgamma``
# writes the global ``signgam``, a race between threads; and their results
# differ from NumPy's far out: the sign of an underflowed gamma, lgamma's
# poles).
UNAVAILABLE = ("erfinv(", "tgamma(", "lgamma(")

# libmvec's functions: name -> number of arguments.
MVEC = {"acos": 1, "acosh": 1, "asin": 1, "asinh": 1, "atan": 1, "atan2": 2, "atanh": 1,
        "cbrt": 1, "cos": 1, "cosh": 1, "erf": 1, "erfc": 1, "exp": 1, "exp10": 1,
        "exp2": 1, "expm1": 1, "hypot": 2, "log": 1, "log10": 1, "log1p": 1, "log2": 1,
        "pow": 2, "sin": 1, "sinh": 1, "tan": 1, "tanh": 1}


def _mvec_names():
    """The libmvec functions (double and float) this machine's library
    exports, as ``(name, arity)``; empty without libmvec."""
    try:
        lib = ctypes.CDLL("libmvec.so.1")
    except OSError:
        return []
    found = []
    for name, arity in sorted(MVEC.items()):
        v = "v" * arity
        if hasattr(lib, f"_ZGVbN2{v}_{name}"):
            found.append((name, arity, "double"))
        if hasattr(lib, f"_ZGVbN4{v}_{name}f"):
            found.append((name + "f", arity, "float"))
    return found


_HEADER = None


def header():
    """Includes, libmvec declarations and the row helpers."""
    global _HEADER
    if _HEADER is None:
        lines = ["#include <cmath>", "#include <cstdint>", "#include <cfenv>",
                 "using namespace std;", "#define __device__", "#define __forceinline__ inline",
                 'extern "C" {']
        for name, arity, ctype in _mvec_names():
            args = ", ".join([ctype] * arity)
            lines.append("#pragma omp declare simd notinbranch")
            lines.append(f"{ctype} {name}({args}) throw();")
        lines.append("}")
        lines.append(PREAMBLE)
        _HEADER = "\n".join(lines) + "\n"
    return _HEADER


def can_compile(spec):
    """Whether every instruction of ``spec`` has a C++ form here: a ``c``
    template the C++ library can evaluate, dtypes in ``DTYPES``, and a
    floating compute type (C integer division and modulo do not round like
    NumPy's, so integer arithmetic stays on the NumPy tier) or a boolean one
    (``_boolean_ok``)."""
    if any(dt not in DTYPES for dt, _ in spec.in_types):
        return False
    # (dtype names by reference kind; each step's is appended once made)
    dtypes = {"i": [dt for dt, _ in spec.in_types],
              "c": [c.dtype.name for c in spec.constants], "t": []}
    if any(dt not in DTYPES for dt in dtypes["c"]):
        return False
    steps = dtypes["t"]
    # the verdict per distinct (row, argument dtypes, output dtype) and the
    # compute kind per distinct dtypes: a 10^5-step kernel has a handful,
    # and NumPy's dtype names and type promotion are slow
    verdicts, kinds = {}, {}
    for instr in spec.instrs:
        steps.append(instr.dtype)
        if instr.row is SUM_TO:
            if instr.dtype not in DTYPES:
                return False
            continue
        key = (instr.row, tuple([dtypes[kind][k] for kind, k in instr.args]), instr.dtype)
        ok = verdicts.get(key)
        if ok is None:
            ok = verdicts[key] = _instruction_ok(key, kinds)
        if not ok:
            return False
    return True


def _instruction_ok(key, kinds):
    """``can_compile`` for one instruction: ``key`` = (row, argument
    dtypes, output dtype); ``kinds``: compute kinds found so far."""
    row, arg_dtypes, dtype = key
    c = row.c
    if dtype not in DTYPES or c is None or any(u in c for u in UNAVAILABLE):
        return False
    kind = kinds.get(key[1:])
    if kind is None:
        kind = kinds[key[1:]] = np.dtype(instruction_type(arg_dtypes, dtype)).kind
    return kind == "f" or (kind == "b" and _boolean_ok(c))


def _boolean_ok(template):
    """Whether a row computing on C++ ``bool`` values gives NumPy's
    booleans: logic, comparisons, ``&``/``|``/``^``, ``where`` (C++ computes
    them in ``int`` on 0 and 1 and the result converts back to 0 or 1); not
    ``~``, whose ``int`` result is never 0 (NumPy's ``~True`` is ``False``)."""
    return "~" not in template


def operand_dtypes(spec):
    """The dtype of each operand: the inputs, then the array constants."""
    return [dt for dt, _ in spec.in_types] + [
        c.dtype.name for c in spec.constants if c.size > 1]


def _constant_names(spec, names, lines):
    """Scalar constants read once from the parameter block ``k``; array
    constants are operands (numbered after the inputs)."""
    n_in = len(spec.in_types)
    operand = n_in
    for k, c in enumerate(spec.constants):
        ct = compute_ctype(c.dtype.name)
        if c.size > 1:
            names[("c", k)] = f"in{operand}"
            operand += 1
        else:
            lines.append(f"const {ct} c{k} = *(const {ct}*)(k + {8 * k});")
            names[("c", k)] = f"c{k}"


FLAGS_LINE = "return fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW);"


def contiguous_source(spec, scalar_mask):
    """``tg_contig(start, end, ptrs, k, ...)``: operand ``i`` is one value
    when ``scalar_mask[i]``, else contiguous; outputs contiguous. (It takes,
    and ignores, ``tg_strided``'s last three parameters: both are called
    through one function-pointer type, ``crunner``'s ``tg_run``.)"""
    pre, loop = _flat_body(spec, scalar_mask, "i")
    loop += [f"o{m}[i] = v{j};" for m, j in enumerate(spec.outputs)]
    return (header() + 'extern "C" int tg_contig(int64_t start, int64_t end, char** p, '
            'const char* k, int, const int64_t*, const int64_t*) {\n' + "\n".join(pre) +
            "\n#pragma omp simd\nfor (int64_t i = start; i < end; ++i) {\n" +
            "\n".join(loop) + "\n}\n" + FLAGS_LINE + "\n}\n")


def _flat_body(spec, scalar_mask, index):
    """The lines before the loop and the loop body's lines up to the
    outputs' values, for a kernel whose operands are flat (``tg_contig``,
    ``tg_commit``): operand ``i`` is one value when ``scalar_mask[i]``,
    else read at C expression ``index``; outputs are pointers ``o<m>``."""
    names = {}
    pre = ["feclearexcept(FE_ALL_EXCEPT);"]
    loop = []
    dtypes = operand_dtypes(spec)
    for i, (dt, scalar) in enumerate(zip(dtypes, scalar_mask)):
        ct = compute_ctype(dt)
        if scalar:
            pre.append(f"const {ct} s{i} = *(const {ct}*)p[{i}];")
            loop.append(f"const {ct} in{i} = s{i};")
        else:
            pre.append(f"const {ct}* a{i} = (const {ct}*)p[{i}];")
            loop.append(f"const {ct} in{i} = a{i}[{index}];")
    n_ops = len(dtypes)
    for m, dt in enumerate(spec.out_dtypes):
        pre.append(f"{compute_ctype(dt)}* o{m} = ({compute_ctype(dt)}*)p[{n_ops + m}];")
    _constant_names(spec, names, pre)
    for i in range(len(spec.in_types)):
        names[("i", i)] = f"in{i}"
    return pre, loop + body_lines(spec, names)


_STRIDED = """\\
#define TG_BLOCK 256
#define TG_LONG_ROW 64
static inline void tg_advance(int64_t count, int nd, int nops, int64_t* idx, char** ptr,
                              const int64_t* last, const int64_t* shape,
                              const int64_t* strides) {
    for (int q = 0; q < nops; ++q) ptr[q] += count * last[q];
    idx[nd - 1] += count;
    for (int d = nd - 1; d > 0 && idx[d] == shape[d]; --d) {
        idx[d] = 0;
        idx[d - 1] += 1;
        for (int q = 0; q < nops; ++q)
            ptr[q] += strides[q * nd + d - 1] - shape[d] * strides[q * nd + d];
    }
}
extern "C" int tg_strided(int64_t start, int64_t end, char** p, const char* k,
                          int nd, const int64_t* shape, const int64_t* strides) {
feclearexcept(FE_ALL_EXCEPT);
const int nops = %(nops)d;
char* ptr[%(nops)d];
int64_t idx[64];
int64_t rem = start;
for (int d = nd - 1; d >= 0; --d) { idx[d] = rem %% shape[d]; rem /= shape[d]; }
for (int q = 0; q < nops; ++q) {
    ptr[q] = p[q];
    for (int d = 0; d < nd; ++d) ptr[q] += idx[d] * strides[q * nd + d];
}
int64_t last[%(nops)d];
for (int q = 0; q < nops; ++q) last[q] = strides[q * nd + nd - 1];
const int rows = shape[nd - 1] >= TG_LONG_ROW && %(rows_test)s;
%(pre)s
%(buffers)s
char* seg[%(nouts)d][TG_BLOCK];
int64_t seg_n[TG_BLOCK];
int64_t i = start;
while (i < end) {
    if (rows) {
        /* long rows, every operand contiguous along them: one simd loop per row */
        int64_t count = shape[nd - 1] - idx[nd - 1];
        if (count > end - i) count = end - i;
%(row_ptrs)s
#pragma omp simd
        for (int64_t j = 0; j < count; ++j) {
%(row_loop)s
        }
        i += count;
        tg_advance(count, nd, nops, idx, ptr, last, shape, strides);
        continue;
    }
    /* any layout: gather up to TG_BLOCK elements (across rows) into typed
       buffers, compute them as a simd loop, scatter the outputs */
    int64_t n = 0;
    int nseg = 0;
    while (n < TG_BLOCK && i < end) {
        int64_t count = shape[nd - 1] - idx[nd - 1];
        if (count > end - i) count = end - i;
        if (count > TG_BLOCK - n) count = TG_BLOCK - n;
%(gather)s
%(segments)s
        seg_n[nseg++] = count;
        n += count;
        i += count;
        tg_advance(count, nd, nops, idx, ptr, last, shape, strides);
    }
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
%(block_loop)s
    }
    int64_t off = 0;
    for (int s = 0; s < nseg; ++s) {
%(scatter)s
        off += seg_n[s];
    }
}
%(flags)s
}
"""


def _copy_loop(dst, src, stride, ct, count, reading):
    """A loop copying ``count`` elements between typed buffer ``dst`` (at
    ``[j]``) and bytes ``src`` ``stride`` apart: typed when the stride is
    the element size, one value when it is 0 (``reading`` only)."""
    typed = f"(const {ct}*)" if reading else f"({ct}*)"
    if reading:
        return (f"{{ const char* s_ = {src}; const int64_t st_ = {stride}; {ct}* d_ = {dst};\n"
                f"  if (st_ == (int64_t)sizeof({ct})) {{ const {ct}* t_ = {typed}s_; "
                f"for (int64_t j = 0; j < {count}; ++j) d_[j] = t_[j]; }}\n"
                f"  else if (st_ == 0) {{ const {ct} v_ = *{typed}s_; "
                f"for (int64_t j = 0; j < {count}; ++j) d_[j] = v_; }}\n"
                f"  else for (int64_t j = 0; j < {count}; ++j) "
                f"d_[j] = *{typed}(s_ + j * st_); }}")
    return (f"{{ char* s_ = {src}; const int64_t st_ = {stride}; const {ct}* d_ = {dst};\n"
            f"  if (st_ == (int64_t)sizeof({ct})) {{ {ct}* t_ = {typed}s_; "
            f"for (int64_t j = 0; j < {count}; ++j) t_[j] = d_[j]; }}\n"
            f"  else for (int64_t j = 0; j < {count}; ++j) *{typed}(s_ + j * st_) = d_[j]; }}")


def strided_source(spec):
    """``tg_strided(start, end, ptrs, k, nd, shape, strides)``: byte
    ``strides`` per operand then output (``nd`` each), over ``shape``.

    Rows of ``TG_LONG_ROW`` elements or more along which every operand and
    output is contiguous (a bias broadcast over rows: only outer axes have
    stride 0) run as one ``#pragma omp simd`` loop per row over typed
    pointers, vectorised like ``tg_contig`` (libmvec's math functions
    included). Every other layout (short rows, transposed, sliced, a column
    broadcast) gathers up to ``TG_BLOCK`` elements, across rows, into typed
    buffers, computes them as the same simd loop and scatters the outputs:
    every element's inputs are still read before its outputs are written."""
    names = {}
    pre = []
    dtypes = operand_dtypes(spec)
    n_ops = len(dtypes)
    types = [compute_ctype(dt) for dt in dtypes] + \
        [compute_ctype(dt) for dt in spec.out_dtypes]
    _constant_names(spec, names, pre)
    for i in range(len(spec.in_types)):
        names[("i", i)] = f"in{i}"
    body = body_lines(spec, names)
    row_ptrs = [f"{'const ' if q < n_ops else ''}{ct}* r{q} = "
                f"({'const ' if q < n_ops else ''}{ct}*)ptr[{q}];" for q, ct in enumerate(types)]
    row_loop = [f"const {ct} in{i} = r{i}[j];" for i, ct in enumerate(types[:n_ops])] + body
    block_loop = [f"const {ct} in{i} = b{i}[j];" for i, ct in enumerate(types[:n_ops])] + body
    buffers = [f"{ct} b{q}[TG_BLOCK];" for q, ct in enumerate(types)]
    gather = [_copy_loop(f"b{i} + n", f"ptr[{i}]", f"last[{i}]", ct, "count", True)
              for i, ct in enumerate(types[:n_ops])]
    segments, scatter = [], []
    for m, j in enumerate(spec.outputs):
        q, ct = n_ops + m, types[n_ops + m]
        row_loop.append(f"r{q}[j] = v{j};")
        block_loop.append(f"b{q}[j] = v{j};")
        segments.append(f"seg[{m}][nseg] = ptr[{q}];")
        scatter.append(_copy_loop(f"b{q} + off", f"seg[{m}][s]", f"last[{q}]", ct,
                                  "seg_n[s]", False))
    rows_test = " && ".join(f"last[{q}] == (int64_t)sizeof({ct})" for q, ct in enumerate(types))
    return header() + _STRIDED % {
        "nops": n_ops + len(spec.outputs), "nouts": len(spec.outputs), "pre": "\n".join(pre),
        "buffers": "\n".join(buffers), "row_ptrs": "\n".join(row_ptrs),
        "row_loop": "\n".join(row_loop), "rows_test": rows_test, "gather": "\n".join(gather),
        "segments": "\n".join(segments), "scatter": "\n".join(scatter),
        "block_loop": "\n".join(block_loop), "flags": FLAGS_LINE}


def constant_block(spec):
    """The parameter block of the scalar constants (8 bytes each)."""
    block = bytearray(8 * max(1, len(spec.constants)))
    for k, c in enumerate(spec.constants):
        if c.size == 1:
            raw = np.asarray(c).reshape(()).tobytes()
            block[8 * k: 8 * k + len(raw)] = raw
    return bytes(block)


# The flags of a block: on x86-64 the kernels compute in SSE/AVX registers
# only, whose flags are MXCSR's low bits (the FE_* values, x87's too), read
# in one instruction; glibc's fetestexcept also reads the x87 status word,
# which made W4's 784x256 update 48 us instead of 26 with blocks of 256.
_COMMIT_FLAGS = """\
#if defined(__x86_64__) && defined(__SSE__)
#include <xmmintrin.h>
static inline int tg_flags(void) {
    return (int)(_mm_getcsr() & (FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW));
}
#else
static inline int tg_flags(void) {
    return fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW);
}
#endif
"""


def commit_source(spec, scalar_mask):
    """``tg_commit(start, end, ptrs, k, notice, stops, chunk)``: the
    contiguous kernel (layout ``scalar_mask``, as ``tg_contig``; the same
    signature, so ``crunner.tg_run`` splits it over threads) writing into
    outputs that are its inputs' buffers (an in-place node's
    ``destroy_map``) while NumPy's error state acts on some flag, block by
    block: each block of ``TG_BLOCK`` (256) elements is computed into
    typed buffers (they stay in the L1 cache), its floating-point flags read, and
    stored only when it raised none of the ``notice`` bits (the flags
    NumPy's error state acts on); at such a block the range stops, leaving
    the block and the rest of its range untouched. ``stops[q]`` receives,
    for each chunk ``q`` of ``chunk[0]`` elements the range covers, where
    its stored part ends (its end when whole), so the caller computes the
    untouched elements with the NumPy program (``c._run_in_place``). Returns
    the flags raised."""
    pre, loop = _flat_body(spec, scalar_mask, "b + j")
    buffers, stores = [], []
    for m, dt in enumerate(spec.out_dtypes):
        buffers.append(f"{compute_ctype(dt)} t{m}[TG_BLOCK];")
        stores.append(f"for (int64_t j = 0; j < n; ++j) o{m}[b + j] = t{m}[j];")
    loop += [f"t{m}[j] = v{j};" for m, j in enumerate(spec.outputs)]
    return (header() + _COMMIT_FLAGS + _COMMIT_STOPS +
            'extern "C" TG_NO_MEMCPY int tg_commit(int64_t start, int64_t end, char** p, '
            'const char* k, '
            "int notice, const int64_t* stops_, const int64_t* chunk) {\n"
            "int64_t* stops = (int64_t*)stops_;\n" + "\n".join(pre) + "\n" +
            "\n".join(buffers) +
            "\nfor (int64_t b = start; b < end; b += TG_BLOCK) {\n"
            "const int64_t n = end - b < TG_BLOCK ? end - b : TG_BLOCK;\n"
            "#pragma omp simd\nfor (int64_t j = 0; j < n; ++j) {\n" + "\n".join(loop) +
            "\n}\n"
            "const int f = tg_flags();\n"
            "if (f & notice) { tg_stops(stops, chunk[0], start, end, b); return f; }\n" +
            "\n".join(stores) + "\n}\n"
            "tg_stops(stops, chunk[0], start, end, end);\nreturn tg_flags();\n}\n")


_COMMIT_STOPS = """\
#define TG_BLOCK 256
/* the block's store loop stays a vector loop: as a memcpy call per block
   (GCC's loop idiom) W4's 784x256 update took ~20 us more */
#if defined(__GNUC__) && !defined(__clang__)
#define TG_NO_MEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TG_NO_MEMCPY
#endif
/* chunks q of [start, end): stored up to `pos` (the chunk's start when
   it begins at or after pos, its end when it ends at or before) */
static inline void tg_stops(int64_t* stops, int64_t c, int64_t start, int64_t end,
                            int64_t pos) {
    for (int64_t q = start / c; q * c < end; ++q) {
        const int64_t a = q * c, e = (q + 1) * c < end ? (q + 1) * c : end;
        stops[q] = pos >= e ? e : (pos > a ? pos : a);
    }
}
"""
