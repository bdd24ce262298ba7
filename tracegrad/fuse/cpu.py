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
the L2 cache, so temporaries never travel to main memory (``runner`` cuts
the blocks and spreads them over a small thread pool). Scratch buffers are
allocated per call and per worker, never shared between concurrent calls.
Block size and thread count follow each program's cost per element,
measured once per row and dtypes (``row_cost``). Small one-dimensional calls
take ``fast``, a generated function doing the whole call inline.
"""
import math

import numpy as np

from tracegrad.config import config
from tracegrad.fuse.lower import lower
from tracegrad.fuse.runner import run_blocked

# Bytes per block and buffer (of the widest dtype). Measured on W1 (2-core
# AMD EPYC, 2 MiB L2 per core): smaller blocks pay Python overhead per ufunc
# call, larger ones spill the block's intermediates out of L2.
BLOCK_BYTES = 1 << 18
MIN_BLOCK = 4096
# A block costs a few microseconds of Python (slicing, calls): a block holds
# at least this much work (ns), so cheap programs (``w - lr * g``) get bigger
# blocks, or none at all.
BLOCK_MIN_NS = 60_000
# A worker thread gets at least this much work (ns): a hand-off to the pool
# and back costs tens of microseconds.
THREAD_MIN_NS = 150_000
# Elements used to measure what a row costs per element (once per row and
# argument dtypes).
CALIBRATION_SIZE = 8192


# Ufuncs for which NumPy 2 deprecates a positional ``out``.
KEYWORD_OUT = frozenset({"maximum", "minimum"})


def plain_ufunc(row):
    """The NumPy ufunc that *is* ``row``'s implementation, or ``None``.

    A row made by ``ufunc_impl(name)`` has ``impl.__name__ == name`` and
    answers to ``np.<name>`` (``true_divide`` is ``np.divide``); only then
    is the ufunc (and its ``out=``) used.
    """
    uf = getattr(row, "ufunc", None)
    if isinstance(uf, np.ufunc) and getattr(np, getattr(row.impl, "__name__", "_"), None) is uf:
        return uf
    return None


class Generated:
    """A compiled block function and what it needs to run."""

    __slots__ = ("fn", "slot_dtypes", "source", "fast")

    def __init__(self, fn, slot_dtypes, source, fast=None):
        self.fn = fn
        self.slot_dtypes = slot_dtypes
        self.source = source
        self.fast = fast


def generate(spec, deferred=False, fast_limit=None, shape_needs=None):
    """Compile ``spec`` into a block function.

    ``deferred``: compute every output into scratch and copy it out at the end
    of the block, for output buffers that are also inputs (``w - lr * g``
    written into ``w``: no instruction may see a half-updated input).

    ``fast_limit``: also make ``fast(*inputs)``, the whole call for the
    common small case in one function: when every input is an ndarray of
    its dtype, all of one shape of ndim <= 1 and at most ``fast_limit``
    elements, it allocates the outputs and scratch and runs the body
    inline, returning the list of outputs; otherwise it returns ``None``.
    """
    env = {"copyto": np.copyto, "asarray": np.asarray, "np": np}
    array_consts = []
    for k, c in enumerate(spec.constants):
        if c.size == 1:
            env[f"k{k}"] = c.reshape(())  # broadcasts into any block
        else:
            array_consts.append(f"k{k}")  # cut into blocks like an input
    out_index = {}
    for m, j in enumerate(spec.outputs):
        out_index.setdefault(j, m)
    # Outputs that are the same step as an earlier output (after lowering).
    repeats = [(m, out_index[j]) for m, j in enumerate(spec.outputs) if out_index[j] != m]
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
            # ``out`` passed positionally: cheaper to parse than a keyword
            # (but deprecated, with a warning on every call, for some).
            if uf.__name__ in KEYWORD_OUT:
                lines.append(f"f{j}({args}, out={dest})")
            else:
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
    else:
        lines.extend(f"copyto(o{m}, o{first})" for m, first in repeats)
    params = [f"i{k}" for k in range(len(spec.in_types))] + array_consts + \
        [f"o{m}" for m in range(len(spec.outputs))] + \
        [f"s{n}" for n in range(len(slot_dtypes))]
    source = f"def block({', '.join(params)}):\n" + \
        "".join(f"    {line}\n" for line in lines)
    if (fast_limit is not None and spec.in_types
            and all(c.ndim == 0 for c in spec.constants)):
        fast = _fast_source(spec, lines, slot_dtypes, env, fast_limit, shape_needs)
        if fast:
            source += "\n" + fast
    code = compile(source, "<tracegrad.fuse block>", "exec")
    exec(code, env)
    generated = Generated(env["block"], tuple(slot_dtypes), source)
    generated.fast = env.get("fast")
    return generated


def _fast_source(spec, lines, slot_dtypes, env, limit, shape_needs=None):
    """``fast(*inputs)``: the whole small call inline (see ``generate``).

    It takes the common layouts only and returns ``None`` otherwise: every
    input an ndarray of its dtype; the inputs of the program's full ndim
    C-contiguous when 2-d or more (so outputs are laid out as ``run`` would
    lay them out), of at most ``limit`` elements together, all of one shape
    or broadcasting together (``(n, 1)`` next to ``(n, m)``: checked by
    ``_fast_broadcast``); inputs of fewer axes equal to the trailing axes of
    that shape (a bias row) or 0-d. Every output must read an input of the
    full ndim (else there is no fast path), so every output has the full
    shape. ``shape_needs``: see ``_shape_guard``."""
    n_in = len(spec.in_types)
    ndim = max(nd for _, nd in spec.in_types)
    ins = [f"i{k}" for k in range(n_in)]
    full = [k for k, (_, nd) in enumerate(spec.in_types) if nd == ndim]
    lower_ndim = [k for k in range(n_in) if k not in full]
    out_full = []  # per output: the full inputs it reads (None: all inputs)
    for deps in spec.output_deps:
        if deps is None:
            out_full.append(None)
            continue
        mine = tuple(k for k in deps[0] if k in full)
        if not mine:
            return ""
        out_full.append(mine)
    env["ndarray"] = np.ndarray
    env["empty"] = np.empty
    env["LIMIT"] = limit
    env["PROD"] = math.prod
    env["BROADCAST"] = _fast_broadcast
    env["OUT_FULL"] = tuple(out_full)
    env["NEEDS"] = tuple(ins_ for ins_, _ in shape_needs or ())
    for k, (dt, _) in enumerate(spec.in_types):
        env[f"D{k}"] = np.dtype(dt)
    for m, dt in enumerate(spec.out_dtypes):
        env[f"E{m}"] = np.dtype(dt)
    for n, dt in enumerate(slot_dtypes):
        env[f"S{n}"] = dt
    checks = " or ".join([f"type({i}) is not ndarray" for i in ins] +
                         [f"{i}.dtype is not D{k}" for k, i in enumerate(ins)])
    body = [f"if {checks}:", "    return None", f"shape = i{full[0]}.shape"]
    if len(full) > 1:
        # Shapes by input position (None for the inputs of fewer axes).
        shapes = ", ".join(f"i{k}.shape" if k in full else "None" for k in range(n_in))
        body += [f"if {' or '.join(f'i{k}.shape != shape' for k in full[1:])}:",
                 f"    shape = BROADCAST(({shapes},), {tuple(full)}, OUT_FULL, NEEDS)",
                 "    if shape is None:",
                 "        return None"]
    # (Values may come with another ndim than their type's: ``evaluate``
    # passes what it is given.)
    wrong = [f"len(shape) != {ndim}"]
    for k in lower_ndim:
        nd = spec.in_types[k][1]
        wrong.append(f"i{k}.shape != shape[{ndim - nd}:]" if nd else f"i{k}.shape")
    if ndim >= 2:
        wrong += [f"not i{k}.flags.c_contiguous" for k in full]
        wrong.append("PROD(shape) > LIMIT")
    elif ndim == 1:
        wrong.append("shape[0] > LIMIT")
    if wrong:
        body += [f"if {' or '.join(wrong)}:", "    return None"]
    body += [f"o{m} = empty(shape, E{m})" for m in range(len(spec.outputs))]
    body += [f"s{n} = empty(shape, S{n})" for n in range(len(slot_dtypes))]
    body += lines
    body.append("return [" + ", ".join(f"o{m}" for m in range(len(spec.outputs))) + "]")
    return f"def fast({', '.join(ins)}):\n" + "".join(f"    {b}\n" for b in body)


def _fast_broadcast(shapes, full, out_full, needs):
    """The shape the inputs ``full`` (positions in ``shapes``) broadcast to,
    or ``None`` when they do not, a length is 0, an output reading only some
    of them would be smaller, or a ``SUM_TO`` would not sum nothing."""
    mine = [shapes[k] for k in full]
    if len({len(s) for s in mine}) > 1:
        return None
    shape = tuple(map(max, *mine))
    if 0 in shape:
        return None
    for s in mine:
        if s != shape and any(d != n and d != 1 for d, n in zip(s, shape)):
            return None
    for group in out_full:
        if group is not None and not any(shapes[k] == shape for k in group):
            return None
    for group in needs:
        if not any(shapes[k] == shape for k in group):
            return None
    return shape


class CpuProgram:
    """A spec compiled for NumPy; ``run`` is thread-safe (no shared state)."""

    def __init__(self, spec):
        self.spec = spec
        # What the code is generated from (same inputs and outputs; the
        # original constants first, in order).
        self.lowered = lower(spec)
        # What the lowered code needs of a call's shapes (``SUM_TO`` read as
        # its first operand; see ``_shape_guard``).
        self.shape_needs, self.reference_only, fast_ok = _shape_guard(spec)
        self.ns_per_element = program_cost(self.lowered)
        itemsize = max(np.dtype(d).itemsize for d in
                       list(spec.out_dtypes) + [i.dtype for i in self.lowered.instrs])
        self.block = max(MIN_BLOCK, BLOCK_BYTES // itemsize,
                         int(BLOCK_MIN_NS / self.ns_per_element))
        # Up to this size a call is one pass on one thread (cutting a call
        # into just two blocks costs more than it saves).
        self.small_limit = min(2 * self.block, int(2 * THREAD_MIN_NS / self.ns_per_element))
        self.direct = generate(self.lowered, fast_limit=self.small_limit if fast_ok else None,
                               shape_needs=self.shape_needs)
        self.fast = self.direct.fast
        self._deferred = None
        self.in_dtypes = tuple(np.dtype(d) for d, _ in spec.in_types)
        self.out_dtypes = tuple(np.dtype(d) for d in spec.out_dtypes)
        # Constants of more than one element are operands of the block
        # function (cut into blocks like inputs), after the inputs.
        self.array_consts = [c for c in spec.constants if c.size > 1]
        self.const_shapes = [c.shape for c in spec.constants if c.ndim]
        n_in = len(spec.in_types)
        self.const_operand = {k: n_in + m for m, k in enumerate(
            k for k, c in enumerate(spec.constants) if c.size > 1)}

    @property
    def deferred(self):
        if self._deferred is None:
            self._deferred = generate(self.lowered, deferred=True)
        return self._deferred

    def reads_input_until_output(self, k):
        """Whether the direct program reads input ``k`` only up to the step
        writing output 0 (so that output may be input ``k``'s buffer)."""
        instrs = self.lowered.instrs
        last = self.lowered.outputs[0]
        return all(j <= last for j, instr in enumerate(instrs) if ("i", k) in instr.args)

    @property
    def source(self):
        return self.direct.source

    def run(self, arrays, outs=None, sources=None):
        """Compute the outputs for ``arrays``; returns a list of arrays.

        Outputs are C-ordered, or Fortran-ordered where the inputs they read
        are (NumPy's rule), so later reductions see the same layout as
        without fusion. ``outs`` (optional): arrays of the output shapes and
        dtypes to write into, e.g. a shared variable's buffer. An output
        buffer may be the very same array as an input (it is then written
        only after the block has read it); any other overlap is handled by
        computing into fresh buffers and copying.
        """
        if outs is None and self.fast is not None:
            results = self.fast(*arrays)
            if results is not None:
                return results
        return self._run(list(arrays), outs, sources)

    def run_general(self, arrays, outs=None, sources=None):
        """``run`` without trying ``fast`` first (the caller just did)."""
        return self._run(list(arrays), outs, sources)

    def shapes_hold(self, shapes, shape):
        """Whether input ``shapes`` let the lowered code run over
        ``shape`` (see ``_shape_guard``)."""
        if self.shape_needs is None:
            return True
        if self.reference_only:
            return False
        for ins, consts in self.shape_needs:
            if not (any(shapes[k] == shape for k in ins) or shape in consts):
                return False
        return True

    def _run(self, arrays, outs, sources):
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
        if not self.spec.output_shape_ok(shapes, shape) or not self.shapes_hold(shapes, shape):
            # An output is smaller than the iteration space (a length-1 axis
            # not known statically): take the node-by-node path.
            return self._into(self.spec.reference(np, arrays, sources), outs)
        operands = arrays + self.array_consts if self.array_consts else arrays
        program = self.direct
        if outs is None:
            orders = self._orders(operands, shape) if len(shape) > 1 else None
            if orders is None:
                outs = [np.empty(shape, dt) for dt in self.out_dtypes]
            else:
                outs = [np.empty(shape, dt, order=o) for dt, o in zip(self.out_dtypes, orders)]
        else:
            outs = list(outs)
            mode = self._check_outs(outs, operands, shape)
            if mode == "copy":
                return self._into(self.run(arrays, None, sources), outs)
            if mode == "deferred":
                program = self.deferred
        size = math.prod(shape)
        if size == 0:
            return outs
        block = self.block
        nthreads = max(1, min(config.num_threads,
                              int(size * self.ns_per_element / THREAD_MIN_NS)))
        if nthreads == 1 and size <= 2 * block:
            order = "F" if outs[0].flags.f_contiguous and len(shape) > 1 else "C"
            slots = [np.empty(shape, dt, order=order) for dt in program.slot_dtypes]
            program.fn(*operands, *outs, *slots)
            return outs
        if nthreads > 1:
            # Two blocks or more per thread, so a thread that gets less CPU
            # time than the others (a busy machine) does not hold the call
            # back (smaller blocks would fight over the GIL between calls).
            block = min(block, -(-size // (2 * nthreads)))
        run_blocked(program.fn, program.slot_dtypes, operands, outs, shape, block, nthreads)
        return outs

    def _orders(self, operands, shape):
        """``None`` (all C) or the memory order of each output: ``'F'`` when
        an operand it reads is Fortran-ordered and none is C-ordered."""
        votes = []
        any_f = False
        for a in operands:
            vote = None
            if a.ndim == len(shape) and a.size > 1:
                c, f = a.flags.c_contiguous, a.flags.f_contiguous
                if f and not c:
                    vote = "F"
                    any_f = True
                elif c and not f:
                    vote = "C"
            votes.append(vote)
        if not any_f:
            return None
        orders = []
        spec = self.spec
        for deps, const_deps in zip(spec.output_deps, spec.output_const_deps):
            if deps is None:
                mine = votes
            else:
                mine = [votes[k] for k in deps[0]] + [
                    votes[self.const_operand[k]] for k in const_deps if k in self.const_operand]
            orders.append("F" if "F" in mine and "C" not in mine else "C")
        return orders

    def _check_outs(self, outs, operands, shape):
        if len(outs) != len(self.out_dtypes):
            raise ValueError(f"expected {len(self.out_dtypes)} output buffers, got {len(outs)}")
        mode = "direct"
        for o, dt in zip(outs, self.out_dtypes):
            if not isinstance(o, np.ndarray) or o.shape != shape or o.dtype != dt:
                raise ValueError(
                    f"output buffer of shape {getattr(o, 'shape', None)} and dtype "
                    f"{getattr(o, 'dtype', None)} does not fit the result "
                    f"({shape}, {dt})")
            if not o.flags.writeable:
                return "copy"
            for a in operands:
                if np.may_share_memory(o, a):
                    exact = (a.shape == o.shape and a.strides == o.strides and
                             a.__array_interface__["data"][0] ==
                             o.__array_interface__["data"][0])
                    if not exact:
                        return "copy"
                    mode = "deferred"
        if len(outs) > 1:
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


def _shape_guard(spec):
    """What must hold for the lowered code of a spec with ``SUM_TO`` steps,
    which reads ``SUM_TO(g, like)`` as ``g``: that ``g`` and ``like`` have
    one shape. A value has the iteration shape when it reads an input (or a
    constant) that has it; so per ``SUM_TO`` and argument, the inputs and
    constant shapes of the full ndim it reads, one of which must have the
    iteration shape at each call (``CpuProgram.shapes_hold``).

    Returns ``(needs, reference_only, fast_ok)``: ``needs`` is ``None``
    without ``SUM_TO``; ``reference_only`` when an argument reads nothing of
    the full ndim (never provable: the reference runs); ``fast_ok`` when each
    argument reads an input of the full ndim (the fast path, whose inputs of
    that ndim all have one shape, then holds)."""
    from tracegrad.fuse.spec import SUM_TO
    if not any(instr.row is SUM_TO for instr in spec.instrs):
        return None, False, True
    ndim = spec.ndim
    deps = []  # per instruction: (full-ndim inputs, full-ndim constant shapes)
    for instr in spec.instrs:
        ins, consts = set(), set()
        for kind, k in instr.args:
            if kind == "i" and spec.in_types[k][1] == ndim:
                ins.add(k)
            elif kind == "c" and spec.constants[k].ndim == ndim and spec.constants[k].size > 1:
                consts.add(spec.constants[k].shape)
            elif kind == "t":
                ins |= deps[k][0]
                consts |= deps[k][1]
        deps.append((ins, consts))
    needs = []
    reference_only = False
    fast_ok = True
    for instr in spec.instrs:
        if instr.row is not SUM_TO:
            continue
        for kind, k in instr.args:
            if kind == "t":
                ins, consts = deps[k]
            elif kind == "i" and spec.in_types[k][1] == ndim:
                ins, consts = {k}, set()
            elif kind == "c" and spec.constants[k].ndim == ndim and spec.constants[k].size > 1:
                ins, consts = set(), {spec.constants[k].shape}
            else:
                ins, consts = set(), set()
            reference_only = reference_only or not (ins or consts)
            fast_ok = fast_ok and bool(ins)
            needs.append((tuple(sorted(ins)), tuple(consts)))
    return needs, reference_only, fast_ok


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


# ------------------------------------------------------------------ costs
_COSTS = {}


def row_cost(row, dtypes):
    """Nanoseconds per element of ``row`` on arguments of ``dtypes``,
    measured once (best of three on ``CALIBRATION_SIZE`` elements)."""
    key = (row, tuple(dtypes))
    cost = _COSTS.get(key)
    if cost is None:
        import time
        import warnings
        args = [np.full(CALIBRATION_SIZE, 1 if np.dtype(d).kind in "biu" else 0.5, d)
                for d in dtypes]
        best = float("inf")
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for _ in range(3):
                t0 = time.perf_counter()
                try:
                    row.impl(np, *args)
                except Exception:  # rows that reject these values: count as cheap
                    pass
                best = min(best, time.perf_counter() - t0)
        cost = _COSTS[key] = max(best * 1e9 / CALIBRATION_SIZE, 0.05)
    return cost


def program_cost(spec):
    """Estimated nanoseconds per element of the whole program."""
    const_dtypes = [c.dtype.name for c in spec.constants]
    total = 0.0
    for instr in spec.instrs:
        dtypes = [spec.in_types[k][0] if kind == "i" else
                  const_dtypes[k] if kind == "c" else spec.instrs[k].dtype
                  for kind, k in instr.args]
        total += row_cost(instr.row, dtypes)
    return max(total, 0.05)
