"""The backend registry of fusion (``tracegrad/fuse/targets.py``): fused
nodes find their program through the array module's registered backend,
never by probing the module; the CPU and CUDA code share one scalar emitter
(``backend/emit.py``)."""
import types

import numpy as np

import tracegrad as tg  # noqa: F401 (its compile stage installs the backends)
import tracegrad.tensor as T
from tracegrad.backend import c as c_tier
from tracegrad.backend import csource
from tracegrad.backend import numpy as numpy_backend
from tracegrad.backend.cupy import kernel as cuda_kernel
from tracegrad.backend.emit import row_supported
from tracegrad.fuse import fuse_outputs, is_fusable
from tracegrad.fuse.targets import NODE_CHECKS, PROGRAMS, Program, backend_for


def _fused(outputs, target="cpu"):
    return fuse_outputs(outputs, target=target)


def test_each_backend_registers_itself():
    assert PROGRAMS["numpy"] is numpy_backend and backend_for(np) is numpy_backend
    assert PROGRAMS["cupy"] is cuda_kernel
    assert NODE_CHECKS["cuda"] is row_supported
    # every backend's program follows the one protocol
    x, y = T.dvectors("x", "y")
    (out,) = _fused([T.exp(x) * y + 1.0])
    spec = out.owner.op.spec
    for backend in (numpy_backend, c_tier, cuda_kernel):
        assert backend.can_run(spec)
    assert isinstance(numpy_backend.program(spec), Program)
    assert isinstance(cuda_kernel.program(spec), Program)
    native = c_tier.program(spec)
    assert native is None or isinstance(native, Program)


def test_an_unregistered_array_module_runs_the_reference():
    # (no ``xp is np`` or ``hasattr(xp, ...)`` probe decides the path: a
    # module nobody registered gets each row's impl on that module)
    calls = []

    def exp(a):
        calls.append("exp")
        return np.exp(a)
    other = types.ModuleType("some_array_library")
    for name in dir(np):
        if not name.startswith("_"):
            setattr(other, name, getattr(np, name))
    other.exp = exp
    assert backend_for(other) is None
    x, y = T.dvectors("x", "y")
    (out,) = _fused([T.exp(x) * y + 1.0])
    op = out.owner.op
    a, b = np.linspace(0, 1, 5), np.full(5, 2.0)
    np.testing.assert_allclose(op.impl(other, a, b), np.exp(a) * b + 1.0)
    assert calls == ["exp"]
    buf = np.empty(5)
    assert op.run(other, [a, b], outs=[buf])[0] is buf
    np.testing.assert_allclose(buf, np.exp(a) * b + 1.0)


def test_which_rows_fuse_on_a_device_is_the_backends_check():
    x = T.dvector("x")
    node = T.psi(x).owner   # no C form: the CUDA check refuses it
    assert is_fusable(node, "cpu")
    assert not is_fusable(node, "cuda")


def test_c_and_cuda_bodies_come_from_one_emitter():
    # Without constants (named differently by the two targets: literals on
    # CUDA, a parameter block in C) the per-element lines are the same text.
    x, y = T.dvectors("x", "y")
    (out,) = _fused([T.exp(-(x * x)) * T.sin(x) + T.log1p(abs(y)) * T.tanh(x - y)],
                    target="cuda")
    spec = out.owner.op.spec
    cuda_lines = [line for line in cuda_kernel.render(spec).body.splitlines()
                  if line.startswith("const ")]
    c_text = csource.contiguous_source(spec, (False, False))
    assert len(cuda_lines) == len(spec.instrs)
    for line in cuda_lines:
        assert line in c_text
