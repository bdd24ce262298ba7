"""The CuPy backend's programs: a fused cluster as one ``cupy.ElementwiseKernel``.

Like every backend (``fuse.targets.Program``): ``can_run(spec)``,
``program(spec) -> CudaProgram`` with ``run(inputs, outs=None,
sources=None)``; ``install()`` registers it for CuPy arrays
(``fuse.targets.PROGRAMS['cupy']``) and the CUDA node check of fusion
(``NODE_CHECKS['cuda']``: ``row_supported``). Importing this module never
imports CuPy: the array module comes with the arrays of a call.

``render(spec)`` gives a ``KernelSource``: typed parameter lists, a
straight-line body built from each row's ``c`` expression template, the
helper preamble (``tracegrad.ops.elemwise.PREAMBLE``) and a name derived from
a hash of the text. For W1 in float32 the body starts::

    const float v0 = (in0 * in0);
    const float v1 = (-v0);
    const float v2 = exp(v1);
    ...
    out0 = v13;

Conventions:

- names are positions only: ``in<k>`` inputs, ``c<k>`` array constants,
  ``out<m>`` outputs, ``v<j>`` the value of instruction ``j``. Variable
  names and user strings never enter the source, so the text (and the kernel
  cache keyed by it) depends only on structure, dtypes and constants;
- the body is ``backend.emit.body_lines`` (the emitter the compiled CPU
  tier uses too): each instruction computes in one C type, the NumPy
  promotion of its argument dtypes widened to the output dtype when that
  holds it (``int32 / int32`` computes in ``double``, ``float32 < float64``
  in ``double``); arguments of another type are cast explicitly;
- ``float16`` values are held and computed in ``float`` (rounded to half
  precision only where stored, or by an explicit cast);
- finite real 0-d constants are written as typed literals
  (``((float)0.5)``); other constants become ``c<k>`` input parameters.

``launch(spec, arrays, cupy)`` builds (once per spec) and calls
``cupy.ElementwiseKernel(in_params, out_params, body, name, preamble=...)``.
"""
import hashlib
import sys

from tracegrad.backend.emit import (C_TYPES, body_lines, compute_ctype,  # noqa: F401 (re-exported)
                                    instruction_type, literal, row_supported)
from tracegrad.fuse.cache import SpecCache
from tracegrad.fuse.spec import broadcast_shapes
from tracegrad.fuse.targets import Program
from tracegrad.ops.elemwise import PREAMBLE

class KernelSource:
    """Everything ``cupy.ElementwiseKernel`` needs, plus the constants that
    are passed as extra inputs (after the fused op's own inputs)."""

    __slots__ = ("name", "in_params", "out_params", "body", "preamble",
                 "param_constants")

    def __init__(self, name, in_params, out_params, body, preamble, param_constants):
        self.name = name
        self.in_params = in_params
        self.out_params = out_params
        self.body = body
        self.preamble = preamble
        self.param_constants = param_constants

    def text(self):
        """All generated text (for golden tests and the cache key)."""
        return (f"// {self.name}\n// in: {self.in_params}\n// out: {self.out_params}\n"
                f"{self.body}")

    def __repr__(self):
        return f"KernelSource({self.name})"


def render(spec):
    """The ``KernelSource`` of ``spec``, or ``None`` when a row has no ``c``."""
    if any(instr.row.c is None for instr in spec.instrs):
        return None
    dtypes = [d for d, _ in spec.in_types] + list(spec.out_dtypes)
    if any(d not in C_TYPES for d in dtypes):
        return None
    in_params = [f"{dt} in{k}" for k, (dt, _) in enumerate(spec.in_types)]
    names, param_constants = _constant_names(spec, in_params)
    for k in range(len(spec.in_types)):
        names[("i", k)] = f"in{k}"
    lines = body_lines(spec, names)
    for m, j in enumerate(spec.outputs):
        lines.append(f"out{m} = v{j};")
    out_params = [f"{dt} out{m}" for m, dt in enumerate(spec.out_dtypes)]
    body = "\n".join(lines)
    in_text, out_text = ", ".join(in_params), ", ".join(out_params)
    digest = hashlib.sha1(f"{in_text}|{out_text}|{body}".encode()).hexdigest()[:16]
    return KernelSource(f"tg_fused_{digest}", in_text, out_text, body, PREAMBLE,
                        tuple(param_constants))


def _constant_names(spec, in_params):
    """How the kernel names each constant: a literal in the source, or a
    parameter (appended to ``in_params``) for the constants a literal cannot
    spell (arrays, inf, NaN...). Returns the names by reference and the
    parameters' values."""
    names = {}
    param_constants = []
    for k, c in enumerate(spec.constants):
        text = literal(c.item(), c.dtype.name) if c.ndim == 0 else None
        if text is None:
            in_params.append(f"{c.dtype.name} c{k}")
            param_constants.append(c)
            names[("c", k)] = f"c{k}"
        else:
            names[("c", k)] = text
    return names, param_constants


# ------------------------------------------------------------------ launch
_KERNELS = {}


# Equal clusters (same structure, dtypes and constants) share one source.
CUDA_SOURCES = SpecCache(render)


def cuda_source(spec):
    """The ``KernelSource`` of ``spec``."""
    return CUDA_SOURCES.get(spec)


def launch(spec, arrays, xp, outs=None, sources=None):
    """Run ``spec`` on arrays of ``xp`` (CuPy) with one generated kernel.

    Falls back to running the rows one by one (``spec.reference``) when the
    cluster cannot be rendered, its kernel does not compile, or an output is
    smaller than the iteration space. Returns the list of outputs (written
    into ``outs`` when given). CuPy compiles a kernel lazily, at its first
    call, so a compile error surfaces there.
    """
    src = cuda_source(spec)
    arrays = [xp.asarray(a, dtype=dt) for a, (dt, _) in zip(arrays, spec.in_types)]
    if src is None or not _outputs_fill_space(spec, arrays):
        return _reference_into(spec, xp, arrays, outs, sources)
    entry = _KERNELS.get(spec)
    if entry is None:
        kernel = xp.ElementwiseKernel(src.in_params, src.out_params, src.body,
                                      src.name, preamble=src.preamble)
        entry = _KERNELS[spec] = (kernel, [xp.asarray(c) for c in src.param_constants])
    kernel, consts = entry
    if kernel is not None:
        try:
            if outs is not None:
                kernel(*arrays, *consts, *outs)
                return list(outs)
            results = kernel(*arrays, *consts)
            return list(results) if isinstance(results, tuple) else [results]
        except Exception as exc:
            if not _is_compile_error(exc):
                raise
            # A row template that does not compile for these dtypes: take
            # the node-by-node path for this spec from now on.
            _KERNELS[spec] = (None, consts)
    return _reference_into(spec, xp, arrays, outs, sources)


def _is_compile_error(exc):
    return "Compile" in type(exc).__name__ or "NVRTC" in str(exc)[:200]


def _reference_into(spec, xp, arrays, outs, sources):
    results = spec.reference(xp, arrays, sources)
    if outs is None:
        return results
    for o, r in zip(outs, results):
        o[...] = r
    return list(outs)


def _outputs_fill_space(spec, arrays):
    shapes = [a.shape for a in arrays]
    shape = broadcast_shapes(shapes + [c.shape for c in spec.constants if c.ndim])
    return spec.output_shape_ok(shapes, shape)


# ------------------------------------------------------------ the backend interface
class CudaProgram(Program):
    """A spec's calls on CuPy arrays (one generated kernel, made at its
    first call; the rows one by one when it cannot be made)."""

    def __init__(self, spec):
        self.spec = spec

    def run(self, inputs, outs=None, sources=None):
        """The outputs as a list (written into ``outs`` when given)."""
        # (CuPy is imported: the call's arrays are its arrays; this module
        # never imports it itself)
        return launch(self.spec, inputs, sys.modules["cupy"], outs=outs, sources=sources)


def can_run(spec):
    """Whether the spec renders as one kernel (every row has a ``c`` form,
    every dtype a C type); the others still run, row by row."""
    return CUDA_SOURCES.get(spec) is not None


def program(spec):
    """The ``CudaProgram`` of ``spec``."""
    return CudaProgram(spec)


def install():
    """Register this module for CuPy arrays and the CUDA node check of
    fusion (idempotent; ``compile`` calls it at import)."""
    from tracegrad.fuse import targets
    targets.PROGRAMS["cupy"] = sys.modules[__name__]
    targets.NODE_CHECKS["cuda"] = row_supported
