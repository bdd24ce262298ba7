"""CUDA code generation without a GPU: golden sources, determinism, hostile
names, the launcher's calls, and (when ``nvcc`` is installed) compiling the
generated code inside an equivalent ``__global__`` kernel."""
import os
import shutil
import subprocess

import sys

import numpy as np
import pytest

import tracegrad.tensor as T
from tracegrad.fuse import find_clusters, fuse_outputs, spec_from_cluster
from tracegrad.backend.cupy.kernel import C_TYPES, cuda_source, launch, render
from tracegrad.ops.elemwise import ROWS, Elemwise


def _sources(outputs):
    return [render(spec_from_cluster(c)[0]) for c in find_clusters(outputs, target="cuda")]


def _w1(x, y):
    return T.exp(-x * x) * T.sin(3 * x) + T.log1p(abs(y)) * T.tanh(x - y) + 0.5 * x * y


W1_FLOAT32 = """\
const float v0 = (-in0);
const float v1 = (v0 * in0);
const float v2 = exp(v1);
const float v3 = (((float)3.0) * in0);
const float v4 = sin(v3);
const float v5 = (v2 * v4);
const float v6 = abs(in1);
const float v7 = log1p(v6);
const float v8 = (in0 - in1);
const float v9 = tanh(v8);
const float v10 = (v7 * v9);
const float v11 = (v5 + v10);
const float v12 = (((float)0.5) * in0);
const float v13 = (v12 * in1);
const float v14 = (v11 + v13);
out0 = v14;"""


def test_golden_w1_float32():
    x, y = T.fvectors("x", "y")
    (src,) = _sources([_w1(x, y)])
    assert src.in_params == "float32 in0, float32 in1"
    assert src.out_params == "float32 out0"
    assert src.body == W1_FLOAT32
    assert src.name.startswith("tg_fused_") and len(src.name) == len("tg_fused_") + 16
    assert "tg_sigmoid" in src.preamble


MIXED = """\
const bool v0 = (in0 > ((float)0.0));
const float v1 = tg_sigmoid(in0);
const double v2 = (((double)v0) ? in1 : ((double)v1));
const double v3 = (v2 * ((double)c1));
const float v4 = ((float) ((float)in2));
const double v5 = (v3 + ((double)v4));
out0 = v5;"""


def test_golden_mixed_dtypes_casts_and_constants():
    i = T.ivector("i")
    f = T.fvector("f")
    h = T.tensor("float16", (None,), "h")
    # i / 2 computes in double from ints: not fused on the GPU (an input).
    out = T.switch(f > 0, i / 2, T.sigmoid(f)) * np.float32(np.inf) + T.cast(h, "float32")
    (src,) = _sources([out])
    # The infinite constant has no literal: it is passed as parameter c1.
    assert src.in_params == "float32 in0, float64 in1, float16 in2, float32 c1"
    assert src.out_params == "float64 out0"
    assert src.body == MIXED
    assert len(src.param_constants) == 1 and np.isinf(src.param_constants[0])


def test_golden_float16_computes_in_float32_and_several_outputs():
    h = T.tensor("float16", (None,), "h")
    a = T.exp(h) * 2
    b = a - h
    (src,) = _sources([a, b])
    assert src.in_params == "float16 in0"
    assert src.out_params == "float16 out0, float16 out1"
    assert src.body == "\n".join([
        "const float v0 = exp(((float)in0));",
        "const float v1 = (v0 * ((float)2.0));",
        "const float v2 = (v1 - ((float)in0));",
        "out0 = v1;",
        "out1 = v2;"])


def test_rows_without_c_or_with_integer_math_are_left_to_numpy():
    x = T.dvector("x")
    k = T.lvector("k")
    out = T.exp(T.psi(T.exp(x) + 1)) * (k // 2)
    clusters = find_clusters([out], target="cuda")
    names = [[n.op.name for n in c.nodes] for c in clusters]
    assert names == [["exp", "add"]]


HOSTILE = ['x */ int evil; /*', 'a // comment', '"quoted"', "{ } }}{{", "\\n#define x y",
           "name with spaces", "ünïcødé"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_variable_names_do_not_change_the_source(name):
    x, y = T.dvector(name), T.dvector(name + "2")
    (plain,) = _sources([_w1(T.dvector("x"), T.dvector("y"))])
    (weird,) = _sources([_w1(x, y)])
    assert weird.text() == plain.text()
    assert weird.name == plain.name
    for part in (name, "evil", "comment", "quoted"):
        assert part not in weird.text()


def test_source_is_deterministic_and_cached_by_structure():
    a = _sources([_w1(T.dvector("p"), T.dvector("q"))])[0]
    b = _sources([_w1(T.dvector("r"), T.dvector("s"))])[0]
    assert a.text() == b.text() and a.name == b.name
    (f1,) = fuse_outputs([_w1(T.dvector("p"), T.dvector("q"))], target="cuda")
    (f2,) = fuse_outputs([_w1(T.dvector("r"), T.dvector("s"))], target="cuda")
    assert cuda_source(f1.owner.op.spec) is cuda_source(f2.owner.op.spec)
    # Different dtypes or constants give different kernels.
    c = _sources([_w1(T.fvector("p"), T.fvector("q"))])[0]
    d = _sources([_w1(T.dvector("p"), T.dvector("q")) + 1])[0]
    assert len({a.name, c.name, d.name}) == 3


class _FakeKernel:
    def __init__(self, in_params, out_params, body, name, preamble=""):
        self.args = (in_params, out_params, body, name)
        self.preamble = preamble
        self.calls = []

    def __call__(self, *arrays):
        self.calls.append(arrays)
        return np.full(np.broadcast_shapes(*[np.shape(a) for a in arrays]), 42.0)


class _FakeCupy:
    """Just the parts of CuPy the launcher uses."""
    __name__ = "cupy"   # (the name the backend registry knows CuPy by)
    ndarray = np.ndarray
    asarray = staticmethod(np.asarray)

    def __init__(self):
        self.kernels = []

    def ElementwiseKernel(self, *args, **kwargs):
        kernel = _FakeKernel(*args, **kwargs)
        self.kernels.append(kernel)
        return kernel


def test_launcher_calls_elementwise_kernel_with_inputs_then_constants(monkeypatch):
    x, y = T.dvectors("x", "y")
    out = T.exp(x) * np.inf + y  # inf: a parameter constant
    (fused,) = fuse_outputs([out], target="cuda")
    spec = fused.owner.op.spec
    xp = _FakeCupy()
    xv, yv = np.ones(3), np.zeros(3)
    (result,) = launch(spec, [xv, yv], xp)
    (kernel,) = xp.kernels
    src = cuda_source(spec)
    assert kernel.args == (src.in_params, src.out_params, src.body, src.name)
    assert kernel.preamble == src.preamble
    (call,) = kernel.calls
    assert call[0] is xv and call[1] is yv and np.isinf(call[2])
    assert (result == 42).all()
    # The op runs CuPy's arrays through the program registered for them
    # (fuse.targets.PROGRAMS['cupy']: backend/cupy/kernel.py).
    monkeypatch.setitem(sys.modules, "cupy", xp)
    assert (fused.owner.op.impl(xp, xv, yv) == 42).all()
    assert len(xp.kernels) == 1 and len(kernel.calls) == 2   # (one kernel per spec)


# ------------------------------------------------------------ nvcc
HEADER = r"""
#include <cuda_fp16.h>
// What cupy.ElementwiseKernel provides around a body: CuPy's float16 type.
struct float16 {
  __half h;
  __device__ float16() {}
  __device__ float16(float v) : h(__float2half(v)) {}
  __device__ operator float() const { return __half2float(h); }
};
"""


def _standalone(src):
    """``src`` as a ``__global__`` kernel with CuPy's element loop."""
    params, loads = [], []
    for kind, text in (("in", src.in_params), ("out", src.out_params)):
        for p in text.split(", "):
            dtype, name = p.split()
            ctype = C_TYPES[dtype]
            if kind == "in":
                params.append(f"const {ctype}* __restrict__ p_{name}")
                loads.append(f"const {ctype} {name} = p_{name}[i];")
            else:
                params.append(f"{ctype}* __restrict__ p_{name}")
                loads.append(f"{ctype} &{name} = p_{name}[i];")
    body = "\n    ".join(loads + src.body.splitlines())
    return (f'extern "C" __global__ void {src.name}({", ".join(params)}, long long n) {{\n'
            "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;\n"
            "       i += (long long)blockDim.x * gridDim.x) {\n"
            f"    {body}\n  }}\n}}\n")


def _nvcc_sources():
    """Generated kernels covering every GPU-fusable row and dtype mix."""
    srcs = {}
    for dtype in ("float32", "float64", "float16"):
        x, y = T.tensor(dtype, (None,), "x"), T.tensor(dtype, (None,), "y")
        for s in _sources([_w1(x, y)]):
            srcs[s.name] = s
        for row in ROWS():
            if row.c is None or row.name in ("real", "imag", "conj"):
                continue  # real/imag/conj: C templates for complex values only
            args = [x, y, x][:row.nin]
            try:
                out = Elemwise(row)(*args)
            except (TypeError, ValueError):
                continue
            # exp(x) + out makes a two-node cluster around the row.
            chain = T.exp(x) + T.cast(out, dtype)
            for s in _sources([chain]):
                srcs[s.name] = s
    i, f, h = T.ivector("i"), T.fvector("f"), T.tensor("float16", (None,), "h")
    mixed = T.switch(f > 0, i / 2, T.sigmoid(f)) * np.float32(np.inf) + T.cast(h, "float32")
    for s in _sources([mixed, T.exp(h) * 2 - h]):
        srcs[s.name] = s
    return list(srcs.values())


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_generated_kernels_compile_with_nvcc(tmp_path):
    sources = _nvcc_sources()
    assert len(sources) > 40
    text = HEADER + sources[0].preamble + "\n" + "".join(_standalone(s) for s in sources)
    path = os.path.join(tmp_path, "fused.cu")
    with open(path, "w") as f:
        f.write(text)
    result = subprocess.run(["nvcc", "-c", "-o", os.devnull, path],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
