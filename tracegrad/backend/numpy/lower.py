"""Lowering a spec for the CPU code generator: rows that have an ``expand``
(``sigmoid``, ``softplus``: see ``ScalarOp`` in ``ops/elemwise.py``; and the
fusion's own ``SUM_TO`` and ``FILL``, read as one of their arguments, see
``spec``) are inlined as the rows they are written with, and equal steps are
computed once.

The result is another ``FusionSpec`` over the same inputs (with the
constants the expansions need appended), so everything downstream (slot
allocation, the fast path, costs) is unchanged. Why: ``logaddexp``, which a
stable ``sigmoid`` or ``softplus`` would call, is not vectorised in NumPy
(~10 ns per element); the expansions use SIMD ufuncs and, once inlined,
share work: the gradient of the stabilised cross-entropy needs ``sigmoid(z)``,
``sigmoid(-z)``, ``softplus(z)`` and ``softplus(-z)``, which all read one
``exp(-|z|)`` (``abs(-z)`` is read as ``abs(z)``) and one ``log1p`` of it.
"""
import numpy as np

from tracegrad.fuse.spec import FusionSpec, Instr
from tracegrad.ops.elemwise import ScalarOp, row_by_name

# An output that an expansion reduces to an input (``SumTo(x, like)`` read
# as ``x``) is copied into its buffer.
COPY = ScalarOp("copy", 1, lambda xp, x: xp.array(x, copy=True), None)


_NAMES = {}


def _dtype_name(dtype):
    """``np.dtype(dtype).name``, memoized: NumPy computes ``name`` anew on
    each access (microseconds), and lowering asks it twice per step."""
    name = _NAMES.get(dtype)
    if name is None:
        name = _NAMES[dtype] = np.dtype(dtype).name
    return name


class _Value:
    """A reference (``('i'|'c'|'t', k)``) and its dtype, as expansions see it."""

    __slots__ = ("ref", "dtype")

    def __init__(self, ref, dtype):
        self.ref = ref
        found = _DTYPES.get(dtype)  # (``np.dtype(name)`` parses the name each time)
        self.dtype = np.dtype(dtype) if found is None else found


_DTYPES = {name: np.dtype(name) for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")}


class _Builder:
    """Emits instructions with common-step sharing; ``getattr(b, row_name)``
    is the function an ``expand`` calls."""

    def __init__(self, spec):
        self.spec = spec
        self.constants = list(spec.constants)
        self.instrs = []
        self.steps = {}      # (row, arg refs) -> _Value (shared steps)
        self.const_refs = {}  # (dtype, value bytes) -> ref of an added constant

    def value(self, ref):
        kind, k = ref
        if kind == "i":
            return _Value(ref, self.spec.in_types[k][0])
        if kind == "c":
            return _Value(ref, self.constants[k].dtype)
        return _Value(ref, self.instrs[k].dtype)

    def constant(self, number, dtype):
        array = np.asarray(number, dtype=dtype)
        key = (array.dtype.name, array.tobytes())
        ref = self.const_refs.get(key)
        if ref is None:
            ref = self.const_refs[key] = ("c", len(self.constants))
            self.constants.append(array)
        return _Value(ref, array.dtype)

    def emit(self, row, args, dtype=None):
        """The value of ``row(*args)``: a step already made, or a new one."""
        args = self._simplify(row, args)
        key = (row, tuple(a.ref for a in args))
        hit = self.steps.get(key)
        if hit is not None:
            return hit
        if dtype is None:
            dtype = row.output_dtype([_dtype_name(a.dtype) for a in args])
        self.instrs.append(Instr(row, key[1], _dtype_name(dtype)))
        value = self.steps[key] = _Value(("t", len(self.instrs) - 1), dtype)
        return value

    def _simplify(self, row, args):
        # |-x| = |x| exactly (floats and complex), so sigmoid(x) and
        # sigmoid(-x) share their exp(-|x|).
        if row.name == "abs" and args[0].dtype.kind in "fc":
            while args[0].ref[0] == "t" and self.instrs[args[0].ref[1]].row.name == "neg":
                args = [self.value(self.instrs[args[0].ref[1]].args[0])]
        return args

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        row = row_by_name(name)

        def step(*args):
            arrays = [a for a in args if isinstance(a, _Value)]
            like = arrays[0].dtype
            values = [a if isinstance(a, _Value) else self.constant(a, like) for a in args]
            return self.emit(row, values)
        return step


def lower(spec):
    """``spec`` with expandable rows inlined and equal steps shared (the
    same spec when there is nothing to gain)."""
    if not any(i.row.expand is not None for i in spec.instrs):
        return spec
    b = _Builder(spec)
    result = []
    for instr in spec.instrs:
        args = [b.value(ref) if ref[0] != "t" else result[ref[1]] for ref in instr.args]
        value = None
        if instr.row.expand is not None:
            mark = len(b.instrs)
            value = instr.row.expand(b, *args)
            if value is None or _dtype_name(value.dtype) != instr.dtype:
                value = None
                del b.instrs[mark:]  # dead steps of a refused expansion
                b.steps = {k: v for k, v in b.steps.items() if v.ref[1] < mark}
        if value is None:
            value = b.emit(instr.row, args, instr.dtype)
        result.append(value)
    outputs = []
    for j in spec.outputs:
        value = result[j]
        if value.ref[0] != "t":  # an expansion that is one of its arguments
            value = b.emit(COPY, [value], spec.instrs[j].dtype)
        outputs.append(value.ref[1])
    return _prune(FusionSpec(spec.in_types, b.constants, b.instrs, outputs))


def _prune(spec):
    """Drop the steps no output needs (left over when a simplification
    skipped a step, e.g. the ``neg`` under ``abs(neg(x))``)."""
    needed = set(spec.outputs)
    for j in range(len(spec.instrs) - 1, -1, -1):
        if j in needed:
            needed.update(k for kind, k in spec.instrs[j].args if kind == "t")
    if len(needed) == len(spec.instrs):
        return spec
    new_index = {}
    instrs = []
    for j, instr in enumerate(spec.instrs):
        if j in needed:
            new_index[j] = len(instrs)
            instrs.append(Instr(instr.row, [(kind, new_index[k] if kind == "t" else k)
                                            for kind, k in instr.args], instr.dtype))
    return FusionSpec(spec.in_types, spec.constants, instrs,
                      [new_index[j] for j in spec.outputs])
