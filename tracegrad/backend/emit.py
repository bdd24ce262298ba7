"""The C-family scalar emitter shared by the CUDA kernels
(``backend/cupy/kernel.py``) and the compiled CPU tier
(``backend/csource.py``).

C and CUDA C++ spell an instruction the same way: the row's ``c`` template
(each op's scalar form, kept in its ``ops/`` row) with its arguments cast to
the type the instruction computes in. What this module decides: the C type
a dtype is held in (``compute_ctype``), the type an instruction computes in
(``instruction_type``: the NumPy promotion of its arguments, widened to the
output dtype when that holds it), literals, the line computing one
instruction (``instruction_line``) and the straight-line body of a whole
spec (``body_lines``). What differs between the two targets stays with them:
how operands and constants are named and read (CUDA: parameters of an
``ElementwiseKernel`` and literals; C: pointers and a constant block) and
the loop around the body.
"""
import numpy as np

from tracegrad.fuse.spec import SUM_TO

C_TYPES = {"bool": "bool", "int8": "signed char", "int16": "short", "int32": "int",
           "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
           "uint32": "unsigned int", "uint64": "unsigned long long",
           "float16": "float16", "float32": "float", "float64": "double",
           "complex64": "complex<float>", "complex128": "complex<double>"}


def compute_ctype(dtype):
    """The C type a value of ``dtype`` is held in inside the kernel body."""
    return "float" if dtype == "float16" else C_TYPES[dtype]


def row_supported(node):
    """Whether an elementwise node can be part of a CUDA kernel.

    The row needs a ``c`` expression, and the node must compute in a
    floating type (float16/32/64; its inputs and output may be bool, as in
    comparisons and ``where``): the C math functions of the templates are
    overloaded for ``float`` and ``double`` only, and C integer division
    and modulo do not round like NumPy's.
    """
    row = node.op.scalar_op
    if row.c is None:
        return False
    in_dtypes = [v.type.dtype for v in node.inputs]
    out_dtype = node.outputs[0].type.dtype
    allowed = ("bool", "float16", "float32", "float64")
    if any(d not in allowed for d in in_dtypes + [out_dtype]):
        return False
    return np.dtype(instruction_type(in_dtypes, out_dtype)).kind == "f"


def literal(value, dtype):
    """A C literal of a scalar, or ``None`` when it has none (inf, nan,
    complex)."""
    ctype = compute_ctype(dtype)
    kind = np.dtype(dtype).kind
    if kind == "b":
        return "true" if bool(value) else "false"
    if kind in "iu":
        v = int(value)
        if dtype == "int64" and v == -2 ** 63:
            return "((long long)(-9223372036854775807LL - 1))"
        suffix = "ULL" if kind == "u" else "LL"
        return f"(({ctype}){v}{suffix})"
    if kind == "f":
        v = float(value)
        if not np.isfinite(v):
            return None
        return f"(({ctype}){v!r})"
    return None


def arg_dtype(spec, ref, const_dtypes=None):
    """The dtype of argument ``ref`` (``('i'|'c'|'t', k)``) of ``spec``
    (``const_dtypes``: the constants' dtype names, when the caller has them)."""
    if const_dtypes is None:
        const_dtypes = [c.dtype.name for c in spec.constants]
    return _dtype_of(ref, spec, const_dtypes)


def _dtype_of(ref, spec, const_dtypes):
    kind, k = ref
    if kind == "i":
        return spec.in_types[k][0]
    if kind == "c":
        return const_dtypes[k]
    return spec.instrs[k].dtype


def instruction_type(arg_dtypes, out_dtype):
    """The dtype an instruction computes in (see the module docstring)."""
    ct = np.result_type(*[np.dtype(d) for d in arg_dtypes]).name
    if out_dtype != "bool" and np.can_cast(ct, out_dtype, casting="safe"):
        ct = out_dtype
    return ct


def instruction_line(spec, j, instr, names, const_dtypes):
    """The kernel line computing step ``j`` into ``v<j>``, its arguments cast
    to the type it computes in."""
    arg_dtypes = [_dtype_of(r, spec, const_dtypes) for r in instr.args]
    ct = compute_ctype(instruction_type(arg_dtypes, instr.dtype))
    args = []
    for ref, dt in zip(instr.args, arg_dtypes):
        text = names[ref]
        held = compute_ctype(dt)
        if dt == "float16" and (ref[0] == "i" or text == f"c{ref[1]}"):
            held = "float16"  # parameters keep CuPy's float16 type
        args.append(text if held == ct else f"(({ct}){text})")
    expr = instr.row.c.format(*args)
    return f"const {compute_ctype(instr.dtype)} v{j} = {expr};"


def body_lines(spec, names):
    """The per-element statements of ``spec``: one ``const <type> v<j> =
    ...;`` line per instruction. ``names`` maps every input and constant
    reference to its C name (the target's choice) and receives ``v<j>``
    for each step. A ``SUM_TO`` step is read as its first argument (the
    caller checked the shapes: ``CpuProgram.shapes_hold``)."""
    const_dtypes = [c.dtype.name for c in spec.constants]
    lines = []
    for j, instr in enumerate(spec.instrs):
        if instr.row is SUM_TO:
            ct = compute_ctype(instr.dtype)
            lines.append(f"const {ct} v{j} = (({ct}){names[instr.args[0]]});")
        else:
            lines.append(instruction_line(spec, j, instr, names, const_dtypes))
        names[("t", j)] = f"v{j}"
    return lines
