"""``FusionSpec``: the canonical, name-free description of a fused cluster.

A spec lists, in topological order, the instructions of a cluster: each is a
table row (``ScalarOp``), its arguments and its output dtype. Arguments are
references ``('i', k)`` (the k-th input of the fused op), ``('c', k)`` (the
k-th constant, baked into the op) or ``('t', j)`` (the result of instruction
``j``). Variable names never enter a spec, so two clusters with the same
structure, dtypes and constants have equal specs: that is the key of every
code cache (CPU programs and CUDA kernels alike).

The spec is also the reference semantics of the fused op: ``reference`` runs
the rows one by one exactly as the unfused graph would, and ``build`` rebuilds
the unfused graph over new inputs (used for gradients and to unfuse).

Besides table rows, an instruction may be ``SUM_TO`` (a ``SumTo(g, like)``
node of a CPU cluster, see ``cluster.is_fusable``): the reference sums ``g``
to ``like``'s shape; the CPU program reads it as ``g`` itself, which it is
whenever every input of the cluster's full ndim has the iteration shape
(``CpuProgram`` checks that on each call and otherwise runs the reference).
Gradients of ``a * b`` hold such nodes: ``SumTo(g * b, a)`` sums nothing when
``a`` and ``b`` have one shape, but that is known only at run time.

``FILL`` is an elementwise row of its own (Theano's ``second``): ``b``
broadcast against ``a``. Fusion puts it in place of ``broadcast_to(b,
shape(a))`` for a single value ``b`` (the gradient of a mean), so the
broadcast joins the kernel, which reads it as ``b``.
"""
import weakref
from functools import partial

import numpy as np

from tracegrad.dtype_names import dtype_name
from tracegrad.ops.elemwise import Elemwise, ScalarOp, SumTo, broadcast_static
from tracegrad.trace import Constant


class _SumToRow(ScalarOp):
    """``SumTo(g, like)`` as an instruction (see the module doc)."""

    graph_op = SumTo()  # what ``build`` makes of it
    shape_arg = 1       # the output has the static shape of this argument

    def __init__(self):
        ScalarOp.__init__(self, "sum_to", 2, _sum_to_impl, None, expand=_sum_to_expand)

    def __reduce__(self):
        return (_sum_to_row, ())


def _sum_to_impl(xp, g, like):
    # ``SumTo`` returns ``g`` itself when it sums nothing; a fused op's
    # results never alias its inputs (it declares no view_map).
    result = SumTo.impl(None, xp, g, like)
    return result.copy() if result is g else result


def _sum_to_expand(f, g, like):
    # The CPU program's reading of it, valid under its shape check.
    return g


def _sum_to_row():
    return SUM_TO


SUM_TO = _SumToRow()


def _fill_impl(xp, a, b):
    return xp.broadcast_to(b, xp.broadcast(a, b).shape).copy()


def _fill_expand(f, a, b):
    # The program computes every value over the whole iteration space.
    return b


class _FillRow(ScalarOp):
    """``second(a, b)``: ``b`` broadcast against ``a`` (``a`` gives only its shape)."""

    def __init__(self):
        ScalarOp.__init__(self, "second", 2, _fill_impl, "({1})",
                          lambda i, o, gz: [None, gz], expand=_fill_expand)

    def __reduce__(self):
        return (_fill_row, ())


def _fill_row():
    return FILL


FILL = _FillRow()


def row_of(node):
    """The instruction row of a cluster member: its table row, or ``SUM_TO``."""
    if isinstance(node.op, SumTo):
        return SUM_TO
    return node.op.scalar_op


class Instr:
    """One elementwise step: ``row(*args) -> dtype``."""

    __slots__ = ("row", "args", "dtype")

    def __init__(self, row, args, dtype):
        self.row = row
        self.args = tuple(args)
        self.dtype = dtype

    def key(self):
        return (self.row, self.args, self.dtype)

    def __reduce__(self):
        # (a slotted class needs this for pickle protocols 0 and 1)
        return (Instr, (self.row, self.args, self.dtype))

    def __repr__(self):
        args = ", ".join(f"{kind}{k}" for kind, k in self.args)
        return f"{self.dtype} {self.row.name}({args})"


class FusionSpec:
    """Structure of a fused cluster (hashable; equal for equal structure).

    ``in_types``: ``(dtype, ndim)`` per input; ``constants``: arrays;
    ``instrs``: ``Instr`` list; ``outputs``: instruction index per output.
    """

    def __init__(self, in_types, constants, instrs, outputs):
        self.in_types = tuple(in_types)
        self.constants = tuple(np.asarray(c) for c in constants)
        self.instrs = tuple(instrs)
        self.outputs = tuple(outputs)
        self._key = (self.in_types, tuple(_const_key(c) for c in self.constants),
                     tuple(i.key() for i in self.instrs), self.outputs)
        self._hash = hash(self._key)
        self.out_dtypes = tuple(self.instrs[j].dtype for j in self.outputs)
        self.ndim = max([nd for _, nd in self.in_types] +
                        [c.ndim for c in self.constants] + [0])
        self.output_deps = self._output_dependencies()
        # Static output shapes per static input shapes: shared (``_rebound``
        # copies the reference) by every spec of this structure, whose
        # constants have the same shapes (the n terms ``cos(x[i]) * i``).
        self._shapes = {}

    @property
    def key(self):
        return self._key

    @property
    def structure(self):
        """The key without the constants' values (their dtypes and shapes
        kept): specs equal in structure differ only in what the generated
        code binds by name (see ``CpuProgram.with_constants``). Made once
        per spec (a spec never changes)."""
        structure = self.__dict__.get("_structure")
        if structure is None:
            structure = self._structure = _structure_of(self._key)
        return structure

    def _rebound(self, constants, key, structure, key_hash):
        """A spec of this one's structure with other ``constants`` (arrays,
        as the spec's) and its ``key`` (whose ``hash`` is ``key_hash``):
        what depends on the structure alone (instructions, output dtypes and
        dependencies) is shared, not worked out again."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.constants = tuple(constants)
        new._key = key
        new._hash = key_hash
        new._structure = structure
        return new

    def __eq__(self, other):
        return isinstance(other, FusionSpec) and self._key == other._key

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return "FusionSpec(" + "; ".join(map(repr, self.instrs)) + \
            f" -> {list(self.outputs)})"

    def __reduce__(self):
        return (FusionSpec, (self.in_types, self.constants, self.instrs, self.outputs))

    @property
    def name(self):
        """A short label made of the row names (``Fused{mul,exp,add}``)."""
        names = ",".join(i.row.name for i in self.instrs)
        if len(names) > 60:
            names = names[:57] + "..."
        return f"Fused{{{names}}}"

    def _output_dependencies(self):
        """Per output: ``None`` when it reads every input and every constant
        of ndim > 0 (its shape is then the iteration shape), else the pair
        ``(input indices, constant shapes)`` it reads. ``output_const_deps``
        lists the constants' indices instead of their shapes. (A ``SUM_TO``
        has the shape of its second argument alone.)"""
        deps = []
        for instr in self.instrs:
            d = set()
            args = instr.args[SUM_TO.shape_arg:] if instr.row is SUM_TO else instr.args
            for kind, k in args:
                if kind == "t":
                    d |= deps[k]
                elif kind == "i" or self.constants[k].ndim:
                    d.add((kind, k))
            deps.append(d)
        everything = {("i", k) for k in range(len(self.in_types))} | \
            {("c", k) for k, c in enumerate(self.constants) if c.ndim}
        out = []
        consts = []
        for j in self.outputs:
            if deps[j] == everything:
                out.append(None)
                consts.append(None)
            else:
                const_idx = tuple(sorted(k for kind, k in deps[j] if kind == "c"))
                out.append((tuple(sorted(k for kind, k in deps[j] if kind == "i")),
                            tuple(self.constants[k].shape for k in const_idx)))
                consts.append(const_idx)
        self.output_const_deps = tuple(consts)
        return tuple(out)

    def output_shape_ok(self, shapes, shape):
        """Whether every output has the iteration ``shape`` for input
        ``shapes`` (an output reading only some inputs may be smaller)."""
        for deps in self.output_deps:
            if deps is not None and broadcast_shapes(
                    [shapes[k] for k in deps[0]] + list(deps[1])) != shape:
                return False
        return True

    # ------------------------------------------------------------ semantics
    def output_shapes(self, in_shapes):
        """Static output shapes for static input shapes (``None`` = unknown)."""
        memo = self._shapes
        in_shapes = tuple(in_shapes)
        found = memo.get(in_shapes)
        if found is None:
            found = self._output_shapes(in_shapes)
            if len(memo) < 64:  # (a structure meets a few distinct shapes)
                memo[in_shapes] = found
        return list(found)

    def _output_shapes(self, in_shapes):
        shapes = []
        known = {}  # (a long cluster broadcasts the same few shapes again and again)
        for instr in self.instrs:
            arg_shapes = []
            for kind, k in instr.args:
                if kind == "i":
                    arg_shapes.append(in_shapes[k])
                elif kind == "c":
                    arg_shapes.append(self.constants[k].shape)
                else:
                    arg_shapes.append(shapes[k])
            if instr.row is SUM_TO:
                shapes.append(tuple(arg_shapes[SUM_TO.shape_arg]))
                continue
            args = tuple(arg_shapes)
            shape = known.get(args)
            if shape is None:
                shape = known[args] = broadcast_static(arg_shapes, instr.row.name)
            shapes.append(shape)
        return tuple(shapes[j] for j in self.outputs)

    def reference(self, xp, arrays, sources=None):
        """Run the rows one at a time, exactly like the unfused graph.

        ``sources`` (one ``SourceLocation`` per instruction) lets an error
        name the user line that built the failing elementwise node.
        """
        from tracegrad.evaluate import reraise_with_context
        values = []
        for j, instr in enumerate(self.instrs):
            args = [arrays[k] if kind == "i" else
                    self.constants[k] if kind == "c" else values[k]
                    for kind, k in instr.args]
            try:
                result = instr.row.impl(xp, *args)
            except Exception as exc:
                reraise_with_context(RowNode(instr, sources, j), args, exc)
            if not isinstance(result, xp.ndarray):
                result = xp.asarray(result)
            if result.dtype.name != instr.dtype:
                result = result.astype(instr.dtype)
            values.append(result)
        return [values[j] for j in self.outputs]

    def build(self, inputs):
        """The unfused graph over ``inputs``: a list of output variables."""
        from tracegrad.tensor.variable import TensorConstant
        consts = [TensorConstant(_const_type(c), c) for c in self.constants]
        values = []
        for instr in self.instrs:
            args = [inputs[k] if kind == "i" else consts[k] if kind == "c" else values[k]
                    for kind, k in instr.args]
            op = SUM_TO.graph_op if instr.row is SUM_TO else Elemwise(instr.row)
            values.append(op.make_node(*args).outputs[0])
        return [values[j] for j in self.outputs]


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


def _const_type(array):
    from tracegrad.tensor.type import TensorType
    return TensorType(array.dtype, array.shape)


class RowNode:
    """Just enough of an ``Apply`` for ``reraise_with_context`` (and
    ``compile/warnpoint.py``): row ``j`` of a fused kernel as a node."""

    def __init__(self, instr, sources, j):
        self.op = SUM_TO.graph_op if instr.row is SUM_TO else Elemwise(instr.row)
        self.source = sources[j] if sources is not None else None


def spec_from_cluster(cluster):
    """``(spec, input_variables, sources)`` for a ``Cluster``.

    Inputs are numbered in order of first use and constants are baked in,
    so the spec depends only on structure, dtypes and constant values.
    The spec's key is built first (plain tuples) and looked up among the
    live specs: a cluster equal to one seen before (the n terms of
    ``sum(sin(x[i]) * 2)``) costs no ``FusionSpec`` construction.
    """
    refs = {}
    inputs = []
    constants = []
    const_keys = []
    instrs = []
    sources = []
    for j, node in enumerate(cluster.nodes):
        args = []
        for var in node.inputs:
            ref = refs.get(var)
            if ref is None:
                if isinstance(var, Constant) and not _is_shared(var):
                    ref = ("c", len(constants))
                    c = np.asarray(var.data, dtype=var.type.dtype)
                    constants.append(c)
                    const_keys.append(_const_key(c))
                else:
                    ref = ("i", len(inputs))
                    inputs.append(var)
                refs[var] = ref
            args.append(ref)
        out = node.outputs[0]
        instrs.append((row_of(node), tuple(args), out.type.dtype))
        refs[out] = ("t", j)
        sources.append(node.source)
    outputs = tuple(refs[v][1] for v in cluster.outputs)
    in_types = tuple([(v.type.dtype, v.type.ndim) for v in inputs])
    # (the key ``FusionSpec`` computes: see its ``__init__``)
    instrs = tuple(instrs)
    key = (in_types, tuple(const_keys), instrs, outputs)
    key_hash = hash(key)
    spec = _live(_SPECS, key_hash)
    if spec is None or spec._key != key:
        spec = _new_spec(constants, key, key_hash)
    return spec, inputs, tuple(sources)


def _new_spec(constants, key, key_hash):
    """The interned spec of ``key`` (whose hash is ``key_hash``), rebound
    from a live spec of the same structure when there is one (the n
    gradient terms ``cos(x[i]) * i``)."""
    in_types, _, instrs, outputs = key
    structure = _structure_of(key)
    structure_hash = hash(structure)
    template = _live(_STRUCTURES, structure_hash)
    if template is None or template.structure != structure:
        spec = FusionSpec(in_types, constants, [Instr(*i) for i in instrs], outputs)
        _intern(_SPECS, key_hash, spec)
        _intern(_STRUCTURES, structure_hash, spec)
        return spec
    spec = template._rebound(constants, key, template.structure, key_hash)
    _intern(_SPECS, key_hash, spec)
    return spec


def _structure_of(key):
    """A spec key without the constants' values (their dtypes and shapes
    kept): ``FusionSpec.structure``."""
    in_types, consts, instrs, outputs = key
    return (in_types, tuple(c[:2] for c in consts), instrs, outputs)


def _const_key(c):
    """A constant's part of a spec key: ``(dtype name, shape, bytes)``."""
    return (dtype_name(c.dtype), c.shape, c.tobytes())


# One FusionSpec per structure and constants while any function holds it:
# the n clusters of ``sum(cos(x[i]) * i)``'s gradient differ only in a
# constant, and the n ``x[i] * 2`` ones not at all (a spec is ~50 objects
# that a compiled function would otherwise keep n times). Plain dicts from
# a key's hash to a weak reference of the spec (``_live``, ``_intern``),
# not weak-value dicts keyed by the key: a key holds a row per member, and
# each row's hash is a Python call, so the key is hashed once per cluster
# instead of once per lookup (a spec whose key's hash is taken by a live
# spec of another key is simply not interned).
_SPECS = {}
# A live spec per structure (``FusionSpec.structure``), for ``_new_spec``.
_STRUCTURES = {}


def _live(table, key_hash):
    """The live spec ``table`` holds for ``key_hash``, or ``None`` (the
    caller compares its key)."""
    ref = table.get(key_hash)
    return None if ref is None else ref()


def _intern(table, key_hash, spec):
    """Hold ``spec`` in ``table`` for ``key_hash`` while it lives, unless a
    live spec holds that place."""
    ref = table.get(key_hash)
    if ref is None or ref() is None:
        table[key_hash] = weakref.ref(spec, partial(_forget, table, key_hash))


def _forget(table, key_hash, ref):
    # (the weak reference's callback: its spec is gone)
    if table.get(key_hash) is ref:
        del table[key_hash]


def _is_shared(var):
    return hasattr(var, "container")
