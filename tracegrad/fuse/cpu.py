"""CPU code generation: a fused cluster as a blocked program of NumPy ufuncs.

``generate(spec)`` writes straight-line Python source, one ufunc call with an
``out=`` buffer per instruction::

    def block(i0, i1, o0, s0, s1):
        f0(i0, i0, s0)
        f1(s0, s0)
        ...

and compiles it once per spec (see ``cache``). Names in the source are
positions only (``i``nputs, ``o``utputs, ``s``cratch slots, ``f``unctions,
``k``onstants bound in the function's globals): variable names and user
strings never enter it. Scratch slots are reused as soon as a value dies
(a ufunc may write over its own input), so a long chain needs few buffers.
Rows that are not plain ufuncs (sigmoid, erf, where, casts...) are called as
``row.impl(np, ...)`` on the block and the result is used or copied into the
output buffer.

``CpuProgram.run`` executes it over the broadcast iteration space in blocks of
``BLOCK_BYTES`` per buffer, small enough that a block's intermediates stay in
the L2 cache, so temporaries never travel to main memory. Blocks are
independent: large calls spread them over a small thread pool (NumPy releases
the GIL inside ufuncs). Scratch buffers are allocated per call and per
worker, never shared between concurrent calls.
"""
import contextvars
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tracegrad.config import config

# Bytes per block and buffer (of the widest dtype). Measured on W1 (2-core
# AMD EPYC, 2 MiB L2 per core): smaller blocks pay Python overhead per ufunc
# call, larger ones spill the block's intermediates out of L2.
BLOCK_BYTES = 1 << 18
MIN_BLOCK = 4096
# Threads pay off when elements x instructions exceeds this (a pool hand-off
# costs tens of microseconds).
THREAD_MIN_WORK = 1 << 18


def plain_ufunc(row):
    """The NumPy ufunc that *is* ``row``'s implementation, or ``None``.

    A row made by ``ufunc_impl(name)`` has ``impl.__name__ == name`` and
    answers to ``np.<name>``; only then is the ufunc (and its ``out=``) used.
    """
    uf = getattr(row, "ufunc", None)
    if isinstance(uf, np.ufunc) and getattr(row.impl, "__name__", None) == uf.__name__:
        return uf
    return None


class Generated:
    """A compiled block function and what it needs to run."""

    __slots__ = ("fn", "slot_dtypes", "source")

    def __init__(self, fn, slot_dtypes, source):
        self.fn = fn
        self.slot_dtypes = slot_dtypes
        self.source = source


def generate(spec, deferred=False):
    """Compile ``spec`` into a block function.

    ``deferred``: compute every output into scratch and copy it out at the end
    of the block, for output buffers that are also inputs (``w - lr * g``
    written into ``w``: no instruction may see a half-updated input).
    """
    env = {"copyto": np.copyto, "asarray": np.asarray, "np": np}
    for k, c in enumerate(spec.constants):
        env[f"k{k}"] = c
    out_index = {j: m for m, j in enumerate(spec.outputs)}
    last_use = {}
    for j, instr in enumerate(spec.instrs):
        for kind, k in instr.args:
            if kind == "t":
                last_use[k] = j
    if deferred:
        for j in spec.outputs:
            last_use[j] = len(spec.instrs)
    names = {}
    slot_of = {}
    slot_dtypes = []
    free = {}
    lines = []

    def operand(ref):
        kind, k = ref
        return f"i{k}" if kind == "i" else f"k{k}" if kind == "c" else names[k]

    for j, instr in enumerate(spec.instrs):
        args = ", ".join(operand(r) for r in instr.args)
        for kind, k in dict.fromkeys(instr.args):
            if kind == "t" and last_use.get(k) == j and k in slot_of:
                free.setdefault(spec.instrs[k].dtype, []).append(slot_of[k])
        direct_out = j in out_index and not deferred
        uf = plain_ufunc(instr.row)
        if uf is not None:
            env[f"f{j}"] = uf
            if direct_out:
                dest = f"o{out_index[j]}"
            else:
                pool = free.get(instr.dtype)
                if pool:
                    slot = pool.pop()
                else:
                    slot = len(slot_dtypes)
                    slot_dtypes.append(np.dtype(instr.dtype))
                slot_of[j] = slot
                dest = f"s{slot}"
            # ``out`` passed positionally: cheaper to parse than a keyword.
            lines.append(f"f{j}({args}, {dest})")
            names[j] = dest
        else:
            env[f"f{j}"] = instr.row.impl
            env[f"d{j}"] = np.dtype(instr.dtype)
            if direct_out:
                dest = f"o{out_index[j]}"
                lines.append(f"copyto({dest}, f{j}(np, {args}), casting='unsafe')")
            else:
                dest = f"r{j}"
                lines.append(f"{dest} = asarray(f{j}(np, {args}), dtype=d{j})")
            names[j] = dest
    if deferred:
        for m, j in enumerate(spec.outputs):
            lines.append(f"copyto(o{m}, {names[j]}, casting='unsafe')")
    params = [f"i{k}" for k in range(len(spec.in_types))] + \
        [f"o{m}" for m in range(len(spec.outputs))] + \
        [f"s{n}" for n in range(len(slot_dtypes))]
    source = f"def block({', '.join(params)}):\n" + \
        "".join(f"    {line}\n" for line in lines)
    code = compile(source, "<tracegrad.fuse block>", "exec")
    exec(code, env)
    return Generated(env["block"], tuple(slot_dtypes), source)


class CpuProgram:
    """A spec compiled for NumPy; ``run`` is thread-safe (no shared state)."""

    def __init__(self, spec):
        self.spec = spec
        self.direct = generate(spec)
        self._deferred = None
        self.in_dtypes = tuple(np.dtype(d) for d, _ in spec.in_types)
        self.out_dtypes = tuple(np.dtype(d) for d in spec.out_dtypes)
        self.const_shapes = [c.shape for c in spec.constants if c.ndim]
        self.work_per_element = max(1, len(spec.instrs))
        self.itemsize = max([d.itemsize for d in self.out_dtypes] +
                            [d.itemsize for d in self.direct.slot_dtypes])

    @property
    def deferred(self):
        if self._deferred is None:
            self._deferred = generate(self.spec, deferred=True)
        return self._deferred

    @property
    def source(self):
        return self.direct.source

    def run(self, arrays, outs=None, sources=None):
        """Compute the outputs for ``arrays``; returns a list of arrays.

        ``outs`` (optional): arrays of the output shapes and dtypes to write
        into, e.g. a shared variable's buffer. An output buffer may be the
        very same array as an input (it is then written only after the
        block has read it); any other overlap is handled by computing into
        fresh buffers and copying.
        """
        arrays = list(arrays)
        for k, dt in enumerate(self.in_dtypes):
            a = arrays[k]
            if type(a) is not np.ndarray or a.dtype != dt:
                arrays[k] = np.asarray(a, dtype=dt)
        shapes = [a.shape for a in arrays]
        try:
            shape = broadcast_shapes(shapes + self.const_shapes)
        except ValueError:
            # Let the unfused semantics raise, naming the failing node.
            self.spec.reference(np, arrays, sources)
            raise
        for deps in self.spec.output_deps:
            if deps is not None and broadcast_shapes(
                    [shapes[k] for k in deps[0]] + deps[1]) != shape:
                # An output is smaller than the iteration space (a length-1
                # axis not known statically): take the node-by-node path.
                return self._into(self.spec.reference(np, arrays, sources), outs)
        program = self.direct
        if outs is None:
            outs = [np.empty(shape, dt) for dt in self.out_dtypes]
        else:
            outs = list(outs)
            mode = self._check_outs(outs, arrays, shape)
            if mode == "copy":
                return self._into(self.run(arrays, None, sources), outs)
            if mode == "deferred":
                program = self.deferred
        size = math.prod(shape)
        if size == 0:
            return outs
        block = max(MIN_BLOCK, BLOCK_BYTES // self.itemsize)
        if size <= block:
            slots = [np.empty(shape, dt) for dt in program.slot_dtypes]
            program.fn(*arrays, *outs, *slots)
            return outs
        _run_blocked(program, arrays, outs, shape, size, block,
                     self.work_per_element)
        return outs

    def _check_outs(self, outs, arrays, shape):
        if len(outs) != len(self.out_dtypes):
            raise ValueError(f"expected {len(self.out_dtypes)} output buffers, got {len(outs)}")
        mode = "direct"
        for o, dt in zip(outs, self.out_dtypes):
            if not isinstance(o, np.ndarray) or o.shape != shape or o.dtype != dt:
                raise ValueError(
                    f"output buffer of shape {getattr(o, 'shape', None)} and dtype "
                    f"{getattr(o, 'dtype', None)} does not fit the result "
                    f"({shape}, {dt})")
            if not o.flags.c_contiguous or not o.flags.writeable:
                return "copy"
            for a in arrays:
                if np.may_share_memory(o, a):
                    exact = (a.shape == o.shape and a.strides == o.strides and
                             a.__array_interface__["data"][0] ==
                             o.__array_interface__["data"][0])
                    if not exact:
                        return "copy"
                    mode = "deferred"
        if mode == "direct" and len(outs) > 1:
            for m, o in enumerate(outs):
                if any(np.may_share_memory(o, p) for p in outs[m + 1:]):
                    return "copy"
        return mode

    @staticmethod
    def _into(results, outs):
        if outs is None:
            return results
        for o, r in zip(outs, results):
            np.copyto(o, r)
        return list(outs)


def broadcast_shapes(shapes):
    """NumPy's broadcast of ``shapes`` with a fast path for equal shapes."""
    result = ()
    for s in shapes:
        if s == result or not s:
            continue
        if not result:
            result = s
            continue
        result = np.broadcast_shapes(result, s)
    return tuple(result)


# ---------------------------------------------------------------- blocked run
def _run_blocked(program, arrays, outs, shape, size, block, work_per_element):
    nthreads = config.num_threads
    if size * work_per_element < THREAD_MIN_WORK:
        nthreads = 1
    in_views, indexed = [], []
    general = False
    for a in arrays:
        if a.size == 1:
            in_views.append(a.reshape(()))
            indexed.append(False)
        else:
            in_views.append(a)
            indexed.append(True)
            if a.shape != shape or not a.flags.c_contiguous:
                general = True
    if not general:
        in_views = [v.reshape(-1) if ix else v for v, ix in zip(in_views, indexed)]
        out_views = [o.reshape(-1) for o in outs]
        # Equal blocks, their count a multiple of the thread count.
        count = -(-size // block)
        count = -(-count // nthreads) * nthreads
        step = -(-size // count)
        blocks = [(slice(a, min(a + step, size)), min(step, size - a), None)
                  for a in range(0, size, step)]
    else:
        in_views, out_views, blocks = _general_layout(in_views, indexed, outs, shape,
                                                      block)
    nthreads = min(nthreads, len(blocks))
    task = (program, in_views, indexed, out_views)
    if nthreads == 1:
        _work(task, blocks)
        return
    step = -(-len(blocks) // nthreads)
    chunks = [blocks[c:c + step] for c in range(0, len(blocks), step)]
    pool = _executor(len(chunks) - 1)
    futures = [pool.submit(contextvars.copy_context().run, _work, task, chunk)
               for chunk in chunks[1:]]
    error = None
    try:
        _work(task, chunks[0])
    except BaseException as exc:  # still wait for the workers below
        error = exc
    for fut in futures:
        try:
            fut.result()
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error


def _work(task, blocks):
    program, in_views, indexed, out_views = task
    fn = program.fn
    bufsize = max(n for _, n, _ in blocks)
    slots = [np.empty(bufsize, dt) for dt in program.slot_dtypes]
    for index, n, bshape in blocks:
        ins = [v[index] if ix else v for v, ix in zip(in_views, indexed)]
        outs = [v[index] for v in out_views]
        if bshape is None:
            scratch = [s[:n] for s in slots]
        else:
            scratch = [s[:n].reshape(bshape) for s in slots]
        fn(*ins, *outs, *scratch)


def _general_layout(in_views, indexed, outs, shape, block):
    """Views and blocks for broadcast or strided inputs.

    Every operand is seen through its broadcast view of ``shape``; axes of
    length 1 are dropped and neighbouring axes merged where every operand
    allows it (as NumPy's iterator does), then the trailing axes that fit in
    a block are taken whole and the axis before them is cut into ranges.
    """
    full = [np.broadcast_to(v, shape) if ix else v for v, ix in zip(in_views, indexed)]
    operands = [v for v, ix in zip(full, indexed) if ix] + list(outs)
    axes = [ax for ax, n in enumerate(shape) if n != 1]
    dims = [shape[ax] for ax in axes]
    strides = [[op.strides[ax] for ax in axes] for op in operands]
    merged_dims = [dims[0]]
    merged_strides = [[s[0]] for s in strides]
    for d in range(1, len(dims)):
        if all(s[d - 1] == s[d] * dims[d] for s in strides):
            merged_dims[-1] *= dims[d]
            for ms, s in zip(merged_strides, strides):
                ms[-1] = s[d]
        else:
            merged_dims.append(dims[d])
            for ms, s in zip(merged_strides, strides):
                ms.append(s[d])
    cshape = tuple(merged_dims)
    views = [v.reshape(cshape) if ix else v for v, ix in zip(full, indexed)]
    out_views = [o.reshape(cshape) for o in outs]
    inner = 1
    k = len(cshape) - 1
    while k >= 0 and inner * cshape[k] <= block:
        inner *= cshape[k]
        k -= 1
    rows = max(1, block // inner)
    tail = cshape[k + 1:]
    blocks = []
    for outer in np.ndindex(*cshape[:k]):
        for a in range(0, cshape[k], rows):
            b = min(a + rows, cshape[k])
            bshape = (b - a,) + tail
            blocks.append((outer + (slice(a, b),), (b - a) * inner, bshape))
    return views, out_views, blocks


# ------------------------------------------------------------------ threads
_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(workers):
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=workers,
                                       thread_name_prefix="tracegrad-fuse")
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _reset_after_fork():
    global _pool, _pool_size, _pool_lock
    _pool = None
    _pool_size = 0
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
