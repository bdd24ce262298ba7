"""The C-family scalar emitter shared by the CUDA kernels (``fuse.cuda``)
and the compiled CPU tier (``backend.csource``).

C and CUDA C++ spell an instruction the same way: the row's ``c`` template
with its arguments cast to the type the instruction computes in. What this
module decides: the C type a dtype is held in (``compute_ctype``), the type
an instruction computes in (``instruction_type``: the NumPy promotion of its
arguments, widened to the output dtype when that holds it), literals, and
the line computing one instruction (``instruction_line``).
"""
import numpy as np

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


