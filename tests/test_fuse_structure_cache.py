"""Per-structure caches of fusion and code generation (issue 14, W7 "sum
indexed"): the n clusters of ``sum(sin(x[i]) * i)`` and of its gradient
share a structure and differ in constants only. A structure hit must give
the program (and spec) a miss gives; different dtypes, broadcast patterns
and constants never share an entry."""
import numpy as np

import tracegrad.tensor as T
from tracegrad.backend import numpy as cpu
from tracegrad.backend.numpy import CpuProgram, cpu_program
from tracegrad.fuse import fuse_outputs


def _outs(n, base):
    x = T.dvector("x")
    y = T.dvector("y")
    # sin(y) * c - x: output 0 may be written into x's buffer (input 1)
    return [T.sin(y) * (base + i) - x for i in range(n)]


def test_in_place_code_of_programs_differing_in_constants_is_generated_once(monkeypatch):
    calls = []
    real = cpu.generate
    monkeypatch.setattr(cpu, "generate", lambda *a, **k: calls.append(k) or real(*a, **k))
    outs = fuse_outputs(_outs(5, 613.25))  # (constants no other test uses)
    programs = [cpu_program(o.owner.op.spec) for o in outs]
    assert len({id(p) for p in programs}) == 5 and len(calls) == 1
    codes = [p.inplace_code(1) for p in programs]
    assert len(calls) == 2 and calls[1].get("alias") == 1
    xs, ys = np.linspace(-1.0, 1.0, 7), np.linspace(0.0, 2.0, 7)
    for i, (p, code) in enumerate(zip(programs, codes)):
        fresh = CpuProgram(p.spec).inplace_code(1)  # a miss: generated for this spec
        assert code.source == fresh.source
        expect = np.sin(ys) * (613.25 + i) - xs
        target = xs.copy()
        assert p.run_small_into([ys, target], 1)
        np.testing.assert_allclose(target, expect, rtol=1e-15)
        target = xs.copy()
        code.fn(ys, target, target, *[np.empty(7, dt) for dt in code.slot_dtypes])
        np.testing.assert_allclose(target, expect, rtol=1e-15)
    # the deferred variant (outputs written last) is rebound the same way
    deferred = [p.deferred for p in programs]
    assert sum(1 for k in calls if k.get("deferred")) == 1
    for i, (p, code) in enumerate(zip(programs, deferred)):
        assert code.source == CpuProgram(p.spec).deferred.source
        out = np.empty(7)
        code.fn(ys, xs, out, *[np.empty(7, dt) for dt in code.slot_dtypes])
        np.testing.assert_allclose(out, np.sin(ys) * (613.25 + i) - xs, rtol=1e-15)
