"""Python source for a fused cluster: straight-line NumPy ufunc calls.

``generate(spec)`` writes one ufunc call with an ``out=`` buffer per
instruction of a (lowered, see ``lower``) spec::

    def block(i0, i1, o0, s0):
        f0(i0, i0, s0)
        f1(s0, i1, o0)
        ...

and compiles it once per spec (see ``cache``). Names in the source are
positions only (``i``nputs, ``o``utputs, ``s``cratch slots, ``f``unctions,
``k``onstants bound in the function's globals): variable names and user
strings never enter it. Buffers are reused as soon as a value dies (a ufunc
may write over its own input), and an output buffer holds intermediate
values until its own step writes it, so a chain needs few scratch buffers
(``w - lr * g``: none). Rows that are not plain ufuncs (erf, where,
casts...) are called as ``row.impl(np, ...)`` on the block and the result
is used or copied into the output buffer. ``fast`` is the whole small call
in one generated function (see ``_fast_source``).
"""
import math
import threading
from collections import OrderedDict, deque

import numpy as np

# (tunables, with their reasons, in tracegrad/config.py; module globals here,
# so tests patch them here)
from tracegrad.config import EAGER_FAST_LINES, MAX_CODE
from tracegrad.backend.numpy import interp

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
    """A generated block function and what it needs to run.

    Each function is compiled when first needed: the block function ``fn``
    when first asked for (a call the fast path takes never needs it), and
    ``fast``, for a long kernel, at its first call (``fast`` is then a
    trampoline; a long kernel's fast path is limited to a few elements, so
    most calls never take it). Compiling the source of a long kernel (a
    chain and its gradient fused into one) is most of a first call's time.
    """

    __slots__ = ("_fn", "_block_source", "_fast_source", "slot_dtypes", "source", "fast",
                 "env")

    def __init__(self, block_source, slot_dtypes, env, fast_source=""):
        self._fn = None
        self._block_source = block_source
        self._fast_source = fast_source
        self.slot_dtypes = slot_dtypes
        self.source = block_source + ("\n" + fast_source if fast_source else "")
        self.env = env
        self.fast = None
        if fast_source and fast_source.count("\n") > EAGER_FAST_LINES:
            self.fast = self._deferred_fast()
        elif fast_source:
            exec(_compiled(fast_source), env)
            self.fast = env["fast"]

    def _deferred_fast(self):
        env, source = self.env, self._fast_source

        def fast(*arrays):
            real = env.get("fast")
            if real is None or real is fast:
                # More elements than the limit in any input: the fast path
                # would refuse the call (return None), no need to compile it.
                limit = env["LIMIT"]
                if any(type(a) is np.ndarray and a.size > limit for a in arrays):
                    return None
                exec(_compiled(source), env)
                real = env["fast"]
            return real(*arrays)
        return fast

    @property
    def fn(self):
        """The block function (see ``generate``; a long one runs from a
        table until it has run a few times, ``interp.Tiered``)."""
        fn = self._fn
        if fn is None:
            # (A source compiled already, for a spec of the same structure,
            # costs nothing more to run compiled.)
            if (self._block_source.count("\n") > interp.INTERPRET_LINES
                    and self._block_source not in _CODE):
                run = interp.interpreted(self._block_source, self.env)
                if run is not None:
                    fn = self._fn = interp.Tiered(run, self._compile_block)
                    return fn
            fn = self._compile_block()
        return fn

    def _compile_block(self):
        # (Two threads may both compile it: the results are equal.)
        exec(_compiled(self._block_source), self.env)
        fn = self._fn = self.env["block"]
        return fn

    def rebound(self, constants):
        """The same code with the one-element ``constants`` (a spec's, in
        order) bound in place of this one's. The source names constants by
        position only, so a spec that differs from the generated one in its
        constants' values alone runs this code: executing the cached code
        object in a copy of the globals costs microseconds, generating and
        compiling a program costs a millisecond or more."""
        env = self.env.copy()
        for name in ("block", "fast", "__builtins__"):
            env.pop(name, None)
        _bind_constants(env, constants)
        return Generated(self._block_source, self.slot_dtypes, env, self._fast_source)


def _bind_constants(env, constants):
    """Bind the one-element constants as ``k<index>`` (0-d: they broadcast
    into any block); return the names of the others, which are operands."""
    array_consts = []
    for k, c in enumerate(constants):
        if c.size == 1:
            env[f"k{k}"] = c.reshape(())
        else:
            array_consts.append(f"k{k}")
    return array_consts


def generate(spec, deferred=False, fast_limit=None, shape_needs=None, output_deps=None,
             alias=None):
    """Compile ``spec`` into a block function.

    ``deferred``: compute every output into scratch and copy it out at the end
    of the block, for output buffers that are also inputs (``w - lr * g``
    written into ``w``: no instruction may see a half-updated input).
    Otherwise an output buffer also holds intermediate values until its own
    step writes it (no scratch buffer for a chain ``w - lr * g``); with
    ``alias=k`` output 0 is input ``k``'s buffer, so it holds nothing before
    the last step reading input ``k`` (``None`` is returned when the output
    itself is written before that).

    ``fast_limit``: also make ``fast(*inputs)``, the whole call for the
    common small case in one function: when every input is an ndarray of
    its dtype, all of one shape of ndim <= 1 and at most ``fast_limit``
    elements, it allocates the outputs and scratch and runs the body
    inline, returning the list of outputs; otherwise it returns ``None``.
    """
    env = {"copyto": np.copyto, "asarray": np.asarray, "np": np}
    array_consts = _bind_constants(env, spec.constants)
    out_index = {}
    for m, j in enumerate(spec.outputs):
        out_index.setdefault(j, m)
    buffers = _Buffers(_last_uses(spec, deferred))
    if not deferred and not _offer_outputs(spec, out_index, alias, buffers):
        return None
    lines, names = _body_lines(spec, env, out_index, deferred, buffers)
    if deferred:
        for m, j in enumerate(spec.outputs):
            lines.append(f"copyto(o{m}, {names[j]}, casting='unsafe')")
    else:
        # Outputs that are the same step as an earlier output (after lowering).
        lines.extend(f"copyto(o{m}, o{out_index[j]})"
                     for m, j in enumerate(spec.outputs) if out_index[j] != m)
    slot_dtypes = buffers.slot_dtypes
    params = [f"i{k}" for k in range(len(spec.in_types))] + array_consts + \
        [f"o{m}" for m in range(len(spec.outputs))] + \
        [f"s{n}" for n in range(len(slot_dtypes))]
    source = f"def block({', '.join(params)}):\n" + \
        "".join(f"    {line}\n" for line in lines)
    fast = ""
    if fast_limit is not None and spec.in_types and _scalar_constants(spec):
        fast = _fast_source(spec, lines, slot_dtypes, env, fast_limit, shape_needs,
                            spec.output_deps if output_deps is None else output_deps,
                            alias)
    return Generated(source, tuple(slot_dtypes), env, fast)


def _last_uses(spec, deferred):
    """Per step whose value a later step reads: the last step reading it
    (with ``deferred``, outputs live to the end of the block)."""
    last_use = {}
    for j, instr in enumerate(spec.instrs):
        for kind, k in instr.args:
            if kind == "t":
                last_use[k] = j
    if deferred:
        for j in spec.outputs:
            last_use[j] = len(spec.instrs)
    return last_use


class _Buffers:
    """The buffers a block function computes into, and which are free.

    Per dtype, buffers free to hold a value: ``[name, last step it may hold
    a value to, first step it may be written at]``. Kept as (output buffers,
    scratch slots): at most one entry per output has finite bounds; scratch
    slots fit any value and the oldest freed is reused first, so they wait
    in a queue (scanning every free slot at each step was quadratic in a
    long kernel that keeps n values alive). ``slot_dtypes``: the dtype of
    each scratch slot made so far (``s<n>``)."""

    __slots__ = ("last_use", "free", "slot_dtypes")

    def __init__(self, last_use):
        self.last_use = last_use
        self.free = {}
        self.slot_dtypes = []

    def pool(self, dtype):
        found = self.free.get(dtype)
        if found is None:
            found = self.free[dtype] = ([], deque())
        return found

    def release(self, dtype, entry):
        bounded, scratch = self.pool(dtype)
        (scratch if entry[1] == float("inf") else bounded).append(entry)

    def take(self, dtype, j):
        """A buffer for the value of step ``j`` (a scratch slot if none fits)."""
        until = self.last_use.get(j, j)
        bounded, scratch = self.pool(dtype)
        fits = [e for e in bounded if e[1] >= until and e[2] <= j]
        if fits:
            entry = min(fits, key=lambda e: e[1])  # the shortest-lived that fits
            bounded.remove(entry)
            return entry
        if scratch:
            return scratch.popleft()
        self.slot_dtypes.append(np.dtype(dtype))
        return [f"s{len(self.slot_dtypes) - 1}", float("inf"), 0]

    def claim(self, dtype, name):
        """Output buffer ``name`` now holds its own value: no longer free
        (it may have held other values until now)."""
        bounded = self.pool(dtype)[0]
        for entry in bounded:
            if entry[0] == name:
                bounded.remove(entry)
                break


def _offer_outputs(spec, out_index, alias, buffers):
    """Make each output buffer free for intermediate values until its own
    step. With ``alias=k``, output 0 (input ``k``'s buffer) only after the
    last step reading input ``k``: ``False`` when output 0 is written
    before that (no such program)."""
    for m, j in enumerate(spec.outputs):
        if out_index[j] == m:
            start = 0
            if alias is not None and m == 0:
                start = max([i for i, ins in enumerate(spec.instrs)
                             if ("i", alias) in ins.args], default=0)
                if start > j:
                    return False
            buffers.release(spec.instrs[j].dtype, [f"o{m}", j, start])
    return True


def _body_lines(spec, env, out_index, deferred, buffers):
    """The block function's lines, one per step (binding what they call in
    ``env``), and the name holding each step's value."""
    names = {}
    slot_of = {}
    lines = []
    last_use = buffers.last_use
    # (per row: its ufunc and the text after its arguments; per reference
    # kind: the operand names; a 10^5-step kernel has a handful of rows)
    calls = {}
    operands = {"i": [f"i{k}" for k in range(len(spec.in_types))],
                "c": [f"k{k}" for k in range(len(spec.constants))], "t": names}
    for j, instr in enumerate(spec.instrs):
        args = ", ".join([operands[kind][k] for kind, k in instr.args])
        for kind, k in dict.fromkeys(instr.args):
            if kind == "t" and last_use.get(k) == j and k in slot_of:
                buffers.release(spec.instrs[k].dtype, slot_of[k])
        direct_out = j in out_index and not deferred
        if direct_out:
            dest = f"o{out_index[j]}"
            buffers.claim(instr.dtype, dest)
        call = calls.get(instr.row)
        if call is None:
            call = calls[instr.row] = _ufunc_call(instr.row)
        uf, sep = call
        if uf is not None:
            env[f"f{j}"] = uf
            if not direct_out:
                slot_of[j] = buffers.take(instr.dtype, j)
                dest = slot_of[j][0]
            lines.append(f"f{j}({args}{sep}{dest})")
        else:
            env[f"f{j}"] = instr.row.impl
            env[f"d{j}"] = np.dtype(instr.dtype)
            if direct_out:
                lines.append(f"copyto({dest}, f{j}(np, {args}), casting='unsafe')")
            else:
                dest = f"r{j}"
                lines.append(f"{dest} = asarray(f{j}(np, {args}), dtype=d{j})")
        names[j] = dest
    return lines, names


def _ufunc_call(row):
    """``(ufunc, what comes before the output)`` for a row that is a plain
    ufunc, else ``(None, None)``: ``out`` passed positionally, cheaper to
    parse than a keyword (but deprecated, with a warning on every call, for
    some)."""
    uf = plain_ufunc(row)
    if uf is None:
        return None, None
    return uf, (", out=" if uf.__name__ in KEYWORD_OUT else ", ")


_CODE_LOCK = threading.Lock()
_CODE = OrderedDict()  # source -> code object, most recently used last


def _compiled(source):
    """The code object of ``source``, compiled once per distinct text.

    Constants are bound by name in the function's globals, never written
    into the source, so clusters that differ only in their constants
    (``cos(x[i]) * i`` for each of n terms) share one compilation: the
    builtin ``compile`` is the costliest step of building a program.
    """
    code = _CODE.get(source)
    if code is None:
        code = compile(source, "<tracegrad.fuse block>", "exec")
        with _CODE_LOCK:
            _CODE[source] = code
            while len(_CODE) > MAX_CODE:
                _CODE.popitem(last=False)
    else:
        with _CODE_LOCK:
            if source in _CODE:
                _CODE.move_to_end(source)
    return code


def _scalar_constants(spec):
    """Whether every constant is one element of at most the inputs' ndim:
    bound as a 0-d array, it then never changes the result's shape."""
    ndim = max(nd for _, nd in spec.in_types)
    return all(c.ndim == 0 or (c.size == 1 and c.ndim <= ndim) for c in spec.constants)


def _fast_source(spec, lines, slot_dtypes, env, limit, shape_needs, output_deps,
                 alias=None):
    """``fast(*inputs)``: the whole small call inline (see ``generate``).

    It takes the common layouts only and returns ``None`` otherwise: every
    input an ndarray of its dtype; the inputs of the program's full ndim
    C-contiguous when 2-d or more (so outputs are laid out as ``run`` would
    lay them out), of at most ``limit`` elements together, all of one shape
    or broadcasting together (``(n, 1)`` next to ``(n, m)``: checked by
    ``_fast_broadcast``); inputs of fewer axes equal to the trailing axes of
    that shape (a bias row) or 0-d. Every output must read an input of the
    full ndim (else there is no fast path), so every output has the full
    shape. ``shape_needs``: see ``_shape_guard``; ``output_deps``: those of
    the spec before lowering (see ``FusionSpec.output_deps``). ``alias=k``:
    output 0 is written into input ``k`` (see ``generate``), which must then
    be writeable and of the full shape; ``fast`` returns ``None`` otherwise."""
    n_in = len(spec.in_types)
    ndim = max(nd for _, nd in spec.in_types)
    ins = [f"i{k}" for k in range(n_in)]
    full = [k for k, (_, nd) in enumerate(spec.in_types) if nd == ndim]
    out_full = _outputs_full_inputs(output_deps, full)
    if out_full is None:
        return ""
    _bind_fast_names(env, spec, slot_dtypes, limit, out_full, shape_needs)
    checks = " or ".join([f"type({i}) is not ndarray" for i in ins] +
                         [f"{i}.dtype is not D{k}" for k, i in enumerate(ins)])
    body = [f"if {checks}:", "    return None", f"shape = i{full[0]}.shape"]
    if len(full) > 1:
        body += _fast_broadcast_lines(full, n_in)
    wrong = _fast_refusals(spec, full, ndim, alias)
    if wrong:
        body += [f"if {' or '.join(wrong)}:", "    return None"]
    body += [f"o{m} = i{alias}" if m == 0 and alias is not None else f"o{m} = empty(shape, E{m})"
             for m in range(len(spec.outputs))]
    body += [f"s{n} = empty(shape, S{n})" for n in range(len(slot_dtypes))]
    body += lines
    body.append("return [" + ", ".join(f"o{m}" for m in range(len(spec.outputs))) + "]")
    return f"def fast({', '.join(ins)}):\n" + "".join(f"    {b}\n" for b in body)


def _fast_broadcast_lines(full, n_in):
    """``fast``'s lines making ``shape`` the shape the inputs of the full
    ndim broadcast to, when they differ (returning ``None`` when they do not
    broadcast as ``_fast_broadcast`` requires)."""
    # Shapes by input position (None for the inputs of fewer axes).
    shapes = ", ".join(f"i{k}.shape" if k in full else "None" for k in range(n_in))
    return [f"if {' or '.join(f'i{k}.shape != shape' for k in full[1:])}:",
            f"    shape = BROADCAST(({shapes},), {tuple(full)}, OUT_FULL, NEEDS)",
            "    if shape is None:",
            "        return None"]


def _outputs_full_inputs(output_deps, full):
    """Per output, the inputs of the full ndim (``full``) it reads (``None``:
    all inputs); ``None`` when an output reads none of them (no fast path)."""
    out_full = []
    for deps in output_deps:
        if deps is None:
            out_full.append(None)
            continue
        mine = tuple(k for k in deps[0] if k in full)
        if not mine:
            return None
        out_full.append(mine)
    return tuple(out_full)


def _bind_fast_names(env, spec, slot_dtypes, limit, out_full, shape_needs):
    """The globals ``fast`` reads besides the block's: helpers, its limit,
    what ``_fast_broadcast`` checks, and the dtypes (``D<k>`` inputs,
    ``E<m>`` outputs, ``S<n>`` scratch)."""
    env["ndarray"] = np.ndarray
    env["empty"] = np.empty
    env["LIMIT"] = limit
    env["PROD"] = math.prod
    env["BROADCAST"] = _fast_broadcast
    env["OUT_FULL"] = out_full
    env["NEEDS"] = tuple(ins_ for ins_, _ in shape_needs or ())
    for k, (dt, _) in enumerate(spec.in_types):
        env[f"D{k}"] = np.dtype(dt)
    for m, dt in enumerate(spec.out_dtypes):
        env[f"E{m}"] = np.dtype(dt)
    for n, dt in enumerate(slot_dtypes):
        env[f"S{n}"] = dt


def _fast_refusals(spec, full, ndim, alias):
    """The conditions (source text, any one true refuses the call) on the
    iteration ``shape`` and the inputs that ``fast`` checks after their
    types and dtypes."""
    # (Values may come with another ndim than their type's: ``evaluate``
    # passes what it is given.)
    wrong = [f"len(shape) != {ndim}"]
    for k, (_, nd) in enumerate(spec.in_types):
        if nd != ndim:
            wrong.append(f"i{k}.shape != shape[{ndim - nd}:]" if nd else f"i{k}.shape")
    if ndim >= 2:
        wrong += [f"not i{k}.flags.c_contiguous" for k in full]
        wrong.append("PROD(shape) > LIMIT")
    elif ndim == 1:
        wrong.append("shape[0] > LIMIT")
    if alias is not None:
        wrong += [f"i{alias}.shape != shape", f"not i{alias}.flags.writeable"]
    return wrong


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
