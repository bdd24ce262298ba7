"""The NumPy backend's program of a fused cluster (the reference, always
available): lowered (``lower`` here), generated (``codegen`` here) and run
over blocks.

Its interface is every backend's (``backend/c.py`` and
``backend/cupy/kernel.py`` have the same): ``can_run(spec)``,
``program(spec) -> Program`` with ``Program.run(inputs, outs=None,
sources=None)`` (the protocol: ``fuse.targets.Program``). ``install()``
registers this module for NumPy arrays (``fuse.targets.PROGRAMS['numpy']``),
where ``FusedElemwise`` finds it: ``fuse`` never imports a backend.

``CpuProgram.run`` executes the generated block function over the broadcast
iteration space in blocks of ``BLOCK_BYTES`` per buffer, small enough that a
block's intermediates stay in the L2 cache, so temporaries never travel to
main memory (``runner`` here cuts the blocks and spreads them over a small
thread pool). Scratch buffers are allocated per call and per worker, never
shared between concurrent calls. Block size and thread count follow each
program's cost per element, measured once per row and dtypes
(``row_cost``). Small calls take ``fast``, a generated function doing the
whole call inline. Large calls go to the compiled tier when it is
installed (``NATIVE``) and can run the spec; this program is its fallback
(no kernel yet, flags NumPy must report).
"""
import gc
import math

import numpy as np

# (tunables: what each trades and how it was measured is in tracegrad/config.py;
# read as this module's globals, so tests patch them here)
from tracegrad.config import (BLOCK_BYTES, BLOCK_MIN_NS, BLOCKS_PER_THREAD,
                              CALIBRATION_ROUNDS, CALIBRATION_SIZE, MIN_BLOCK, NATIVE_MIN_SIZE,
                              NATIVE_SMALL_STEPS, SINGLE_PASS_BLOCKS, STEP_DISPATCH_NS, THREAD_MIN_NS,
                              THREADED_BLOCK_FACTOR, config)
from tracegrad.backend.numpy.codegen import generate
from tracegrad.backend.numpy.lower import lower
from tracegrad.backend.numpy.runner import run_blocked
from tracegrad.fuse.cache import SpecCache, Templates
from tracegrad.fuse.spec import FusionSpec, broadcast_shapes
from tracegrad.fuse.targets import Program as ProgramProtocol
from tracegrad.ops.elemwise import broadcasts_into

# The compiled CPU tier (``tracegrad.backend.c``, put here by its
# ``install``): ``can_run(spec)`` and ``program(spec, host)``, whose
# ``run_prepared(operands, outs, shape, size, aliased)`` computes a checked
# call and returns True, or returns False when the NumPy program must run it
# (``aliased``: an output is an operand's very buffer).
NATIVE = [None]


class CpuProgram(ProgramProtocol):
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
        self.small_limit = min(SINGLE_PASS_BLOCKS * self.block,
                               int(SINGLE_PASS_BLOCKS * THREAD_MIN_NS / self.ns_per_element))
        self._fast_limit = self.small_limit if fast_ok else None
        # Calls of NATIVE_MIN_SIZE elements or more go to the compiled tier
        # when it can run this spec, so the whole-call fast path stops below.
        tier = NATIVE[0]
        self.native_possible = tier is not None and tier.can_run(spec)
        if self.native_possible and fast_ok:
            self._fast_limit = min(self._fast_limit, NATIVE_MIN_SIZE - 1)
        self.direct = generate(self.lowered, fast_limit=self._fast_limit,
                               shape_needs=self.shape_needs, output_deps=spec.output_deps)
        self._deferred = None
        self._inplace = {}
        # The program whose code this one shares (``with_constants``): its
        # in-place variants are generated there once per structure.
        self._template = self
        self._native = None
        self.in_dtypes = tuple(np.dtype(d) for d, _ in spec.in_types)
        self.out_dtypes = tuple(np.dtype(d) for d in spec.out_dtypes)
        self._set_constants(spec)
        self.fast = self._fast_with_native()

    def with_constants(self, spec):
        """This program for ``spec``, which has this program's spec's
        structure (``FusionSpec.structure``) and other constant values.

        Lowering, costs, block sizes and the generated code depend on the
        structure alone (constants are bound by name, never written into
        the source), so only the bindings are redone: the n terms of
        ``sum(cos(x[i]) * i)`` and of its gradient share one generation."""
        # (a plain attribute copy: ``copy.copy``'s reduce protocol costs
        # more than the rest of this rebinding, once per constant value)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.spec = spec
        n = len(spec.constants)
        new.lowered = spec if self.lowered is self.spec else FusionSpec(
            spec.in_types, spec.constants + self.lowered.constants[n:],
            self.lowered.instrs, self.lowered.outputs)
        new.direct = self.direct.rebound(new.lowered.constants)
        new._deferred = None
        new._inplace = {}
        new._template = self._template
        new._native = None
        if not self.const_sizes_one:
            # (one-element constants only: every attribute it sets depends
            # on the constants' shapes, equal in equal structures, and is
            # copied already)
            new._set_constants(spec)
        new.fast = new._fast_with_native()
        return new

    def _fast_with_native(self):
        """``fast``: the generated whole-call function, or for a long
        program the compiled tier can run (``NATIVE_SMALL_STEPS`` lowered
        steps or more, where each NumPy step's ~1 us adds up) that function
        with small calls offered to the tier first
        (``NativeProgram.run_small``: the kernel where it measures faster)."""
        numpy_fast = self.direct.fast
        if (numpy_fast is None or not self.native_possible or self.array_consts
                or len(self.lowered.instrs) < NATIVE_SMALL_STEPS):
            return numpy_fast
        program = self

        def fast(*arrays):
            if config.cpu_codegen == "numpy":
                return numpy_fast(*arrays)
            native = program._native
            if native is None:
                native = program._native = NATIVE[0].program(program.spec, program) or False
            if native is False:
                return numpy_fast(*arrays)
            return native.run_small(arrays, numpy_fast)
        return fast

    def _set_constants(self, spec):
        # Constants of more than one element are operands of the block
        # function (cut into blocks like inputs), after the inputs.
        self.const_sizes_one = all(c.size == 1 for c in spec.constants)
        # Single-element constants never change the result's shape once it
        # has their ndim; bigger ones are operands of the block program.
        self.const_ndim = max([c.ndim for c in spec.constants] + [0])
        self.array_consts = [c for c in spec.constants if c.size > 1]
        self.const_shapes = [c.shape for c in spec.constants if c.ndim]
        n_in = len(spec.in_types)
        self.const_operand = {k: n_in + m for m, k in enumerate(
            k for k, c in enumerate(spec.constants) if c.size > 1)}

    @property
    def deferred(self):
        if self._deferred is None:
            template = self._template
            self._deferred = (generate(self.lowered, deferred=True) if template is self
                              else template.deferred.rebound(self.lowered.constants))
        return self._deferred

    def inplace_code(self, k):
        """The block function writing output 0 into input ``k``'s buffer, or
        ``None`` when the program reads input ``k`` after writing output 0
        (see ``generate``'s ``alias``); made once per ``k``. Its ``fast``
        (when not ``None``) is the whole small call writing into input ``k``."""
        found = self._inplace.get(k, False)
        if found is False:
            template = self._template
            if template is not self:
                # Same structure: the template's code with this one's
                # constants bound (as ``direct``, see ``with_constants``).
                code = template.inplace_code(k)
                found = None if code is None else code.rebound(self.lowered.constants)
            else:
                found = generate(self.lowered, alias=k, fast_limit=self._fast_limit,
                                 shape_needs=self.shape_needs,
                                 output_deps=self.spec.output_deps)
            self._inplace[k] = found
        return found

    def inplace_fast(self, k):
        """The generated whole small call writing output 0 into input
        ``k`` (``inplace_code(k).fast``), or ``None``."""
        code = self.inplace_code(k) if self.const_sizes_one else None
        return None if code is None else code.fast

    def run_small_into(self, arrays, k):
        """Run the block program writing into input ``k`` once over whole
        arrays; ``False`` (nothing done) unless the call is small and every
        operand broadcasts into input ``k``'s shape."""
        if not self.const_sizes_one or self.inplace_code(k) is None:
            return False
        target = arrays[k]
        shape = target.shape
        if (target.size > self.small_limit or target.ndim < self.const_ndim
                or not target.flags.writeable or (
                    self.native_possible and target.size >= NATIVE_MIN_SIZE)):
            return False
        for a, dt in zip(arrays, self.in_dtypes):
            if type(a) is not np.ndarray or a.dtype != dt or (
                    a.shape != shape and not broadcasts_into(a.shape, shape)):
                return False
        if self.shape_needs is not None and not self.shapes_hold(
                [a.shape for a in arrays], shape):
            return False
        code = self.inplace_code(k)
        code.fn(*arrays, target, *[np.empty(shape, dt) for dt in code.slot_dtypes])
        return True

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

    def run_through(self, native, arrays, outs=None, sources=None):
        """``run`` with every non-empty call offered to the compiled
        program ``native`` (``NativeProgram.run``), whatever its size."""
        return self._run(list(arrays), outs, sources, native)

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

    def _run(self, arrays, outs, sources, native=None):
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
        if outs is None:
            program = self.direct
            outs = self._new_outs(operands, shape)
        else:
            outs = list(outs)
            program = self._program_into(outs, arrays, operands, shape)
            if program is None:
                return self._into(self._run(list(arrays), None, sources, native), outs)
        size = math.prod(shape)
        if size and not self._ran_native(native, operands, outs, shape, size, program):
            self._execute(program, operands, outs, shape, size)
        return outs

    def _new_outs(self, operands, shape):
        """Fresh output buffers, each C- or Fortran-ordered (``_orders``)."""
        orders = self._orders(operands, shape) if len(shape) > 1 else None
        if orders is None:
            return [np.empty(shape, dt) for dt in self.out_dtypes]
        return [np.empty(shape, dt, order=o) for dt, o in zip(self.out_dtypes, orders)]

    def _ran_native(self, native, operands, outs, shape, size, program):
        """Whether the compiled tier computed this (non-empty) call: the
        given ``native`` program whatever the size (``run_through``), else
        the installed tier for calls of ``NATIVE_MIN_SIZE`` elements or more.
        (A ``program`` other than ``direct`` was chosen because an output
        *is* an input's buffer: ``_check_outs``'s "deferred".)"""
        if native is not None:
            return self._ran_chosen(native, operands, outs, shape, size, program)
        return (size >= NATIVE_MIN_SIZE and self.native_possible
                and config.cpu_codegen != "numpy"
                and self._run_native(operands, outs, shape, size, program))

    def _ran_chosen(self, native, operands, outs, shape, size, program):
        """The call through ``native``, which may hand it back to this
        program (``fallback``: see ``NativeProgram.run_prepared``)."""
        return native.run_prepared(operands, outs, shape, size,
                                   None if program is self.direct else program,
                                   lambda: self._execute(program, operands, outs, shape, size))

    def _run_native(self, operands, outs, shape, size, program):
        """The call through the compiled tier; ``False`` when it did not run.
        ``program``: the generated program this call would run; other than
        ``direct``, it writes into outputs that are inputs' buffers (the
        tier then hands it the pieces NumPy must judge)."""
        native = self._native
        if native is None:
            native = self._native = NATIVE[0].program(self.spec, self) or False
        return native is not False and self._ran_chosen(native, operands, outs, shape, size,
                                                         program)

    def _program_into(self, outs, arrays, operands, shape):
        """The generated program that writes a call's results into the given
        ``outs``, or ``None`` when they overlap the operands in a way no
        program handles (the caller then computes into fresh buffers and
        copies)."""
        mode = self._check_outs(outs, operands, shape)
        if mode == "copy":
            return None
        if mode != "deferred":
            return self.direct
        program = self.deferred
        if len(outs) == 1:
            # One output that is one input's buffer (``w - lr * g`` into
            # ``g``): a program made for that, when there is one.
            shared = [k for k, a in enumerate(arrays) if a is outs[0]]
            aliased = [a for a in operands if np.may_share_memory(outs[0], a)]
            if len(shared) == 1 and len(aliased) == 1:
                program = self.inplace_code(shared[0]) or program
        return program

    def _execute(self, program, operands, outs, shape, size):
        """Run ``program`` over a non-empty call: one pass on this thread when
        small, else in blocks (on several threads when the work pays for
        them)."""
        block = self.block
        # Each thread must get more element work than the Python time of
        # its blocks' steps (which hold the GIL): a long kernel on a few
        # elements runs as one pass.
        per_thread = max(THREAD_MIN_NS,
                         BLOCKS_PER_THREAD * STEP_DISPATCH_NS * len(self.lowered.instrs))
        nthreads = max(1, min(config.num_threads, int(size * self.ns_per_element / per_thread)))
        if nthreads == 1 and size <= SINGLE_PASS_BLOCKS * block:
            order = "F" if outs[0].flags.f_contiguous and len(shape) > 1 else "C"
            slots = [np.empty(shape, dt, order=order) for dt in program.slot_dtypes]
            program.fn(*operands, *outs, *slots)
            return
        if nthreads > 1:
            # Threads share the GIL for the Python part of every ufunc call,
            # so fewer, bigger blocks contend less: twice as big measured
            # 5-10% faster on W1 with two threads (even where a block's
            # buffers then exceed the 2 MiB L2 for float32).
            # Two blocks or more per thread, so a thread that gets less CPU
            # time than the others (a busy machine) does not hold the call
            # back.
            block = min(THREADED_BLOCK_FACTOR * block, -(-size // (BLOCKS_PER_THREAD * nthreads)))
        run_blocked(program.fn, program.slot_dtypes, operands, outs, shape, block, nthreads)

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
    deps = []  # per instruction: (full-ndim inputs, full-ndim constant shapes)
    for instr in spec.instrs:
        ins, consts = set(), set()
        for ref in instr.args:
            arg_ins, arg_consts = _full_ndim_reads(spec, deps, ref)
            ins |= arg_ins
            consts |= arg_consts
        deps.append((ins, consts))
    needs = []
    reference_only = False
    fast_ok = True
    for instr in spec.instrs:
        if instr.row is not SUM_TO:
            continue
        for ref in instr.args:
            ins, consts = _full_ndim_reads(spec, deps, ref)
            reference_only = reference_only or not (ins or consts)
            fast_ok = fast_ok and bool(ins)
            needs.append((tuple(sorted(ins)), tuple(consts)))
    return needs, reference_only, fast_ok


def _full_ndim_reads(spec, deps, ref):
    """The inputs and the constant shapes of the full ndim that argument
    ``ref`` reads (``deps``: those of each earlier instruction)."""
    kind, k = ref
    if kind == "t":
        return deps[k]
    if kind == "i" and spec.in_types[k][1] == spec.ndim:
        return {k}, set()
    if kind == "c" and spec.constants[k].ndim == spec.ndim and spec.constants[k].size > 1:
        return set(), {spec.constants[k].shape}
    return set(), set()


# ------------------------------------------------------------------ costs
_COSTS = {}


def row_cost(row, dtypes):
    """Nanoseconds per element of ``row`` on arguments of ``dtypes``,
    measured once (best of ``CALIBRATION_ROUNDS`` on ``CALIBRATION_SIZE`` elements)."""
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
            for _ in range(CALIBRATION_ROUNDS):
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
    # (dtype names by reference kind; ``_COSTS``'s key made once per step)
    dtypes = {"i": [dt for dt, _ in spec.in_types],
              "c": [c.dtype.name for c in spec.constants],
              "t": [instr.dtype for instr in spec.instrs]}
    costs = _COSTS
    total = 0.0
    for instr in spec.instrs:
        key = (instr.row, tuple([dtypes[kind][k] for kind, k in instr.args]))
        cost = costs.get(key)
        total += row_cost(*key) if cost is None else cost
    return max(total, 0.05)


# Equal clusters (same structure, dtypes and constants) share one program;
# clusters equal up to their constants' values share one lowering and
# generation (``CpuProgram.with_constants``).
CPU_TEMPLATES = Templates()


def _build_cpu(spec):
    structure = spec.structure
    template = CPU_TEMPLATES.get(structure)
    if template is not None:
        return template.with_constants(spec)
    # The collector is paused while a program is made (as while compiling,
    # ``collector.paused``): lowering and generating a long kernel make
    # ~5 objects per step that all survive, and the collector's full passes
    # over them and the compiled graph were half of a 10^5-step kernel's
    # first call.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        program = CpuProgram(spec)
    finally:
        if paused:
            gc.enable()
    CPU_TEMPLATES.put(structure, program)
    return program


CPU_PROGRAMS = SpecCache(_build_cpu, related=(CPU_TEMPLATES,))


def cpu_program(spec):
    """The compiled ``CpuProgram`` of ``spec``."""
    return CPU_PROGRAMS.get(spec)


# ------------------------------------------------------------ the backend interface
Program = CpuProgram


def can_run(spec):
    """Whether this backend runs ``spec``: always (every elementwise row has
    a NumPy form; this is the reference)."""
    return True


def program(spec):
    """The ``Program`` of ``spec`` (one per spec, shared: ``run`` is
    thread-safe)."""
    return CPU_PROGRAMS.get(spec)


def install():
    """Register this module as the backend of NumPy arrays
    (``fuse.targets.PROGRAMS``; idempotent; ``compile`` calls it at import)."""
    import sys
    from tracegrad.fuse import targets
    targets.PROGRAMS["numpy"] = sys.modules[__name__]
