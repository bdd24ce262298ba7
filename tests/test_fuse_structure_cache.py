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


def test_spec_of_a_cluster_seen_before_equals_a_new_one():
    from tracegrad.fuse import find_clusters
    from tracegrad.fuse.spec import FusionSpec, spec_from_cluster
    x, y = T.dvector("x"), T.dvector("y")
    xf = T.fvector("xf")
    mat, row = T.dmatrix("mat"), T.drow("row")
    outs = [T.sin(x) * 2.5, T.sin(y) * 2.5,          # equal: one spec
            T.sin(x) * 3.5,                           # another constant value
            T.sin(xf) * np.float32(2.5),              # another dtype
            T.sin(x) * np.array([2.5, 2.5]),          # another constant shape
            T.sin(mat) * 2.5,                         # another ndim
            T.sin(x) * np.float32(2.5)]               # constant's dtype only
    specs = []
    for out in outs:
        (cluster,) = find_clusters([out])
        spec, inputs, _ = spec_from_cluster(cluster)
        again = spec_from_cluster(cluster)[0]
        fresh = FusionSpec(spec.in_types, spec.constants, spec.instrs, spec.outputs)
        assert again is spec and fresh == spec and fresh.key == spec.key
        assert inputs == out.owner.inputs[0].owner.inputs
        specs.append(spec)
    assert specs[0] is specs[1]
    keys = [s.key for s in specs[1:]]
    assert len(set(keys)) == len(keys)
    assert len({id(s) for s in specs[1:]}) == len(specs) - 1
    # A static broadcast pattern is not part of a spec (a program handles any
    # shape of its ndim): each instance's node takes its inputs' pattern.
    (a,), (b,) = find_clusters([T.sin(mat) * 2.5]), find_clusters([T.sin(row) * 2.5])
    spec_a, spec_b = spec_from_cluster(a)[0], spec_from_cluster(b)[0]
    assert spec_a is spec_b
    out = fuse_outputs([T.sin(row) * 2.5])[0]
    assert out.type.shape == (1, None) and out.owner.op.spec is spec_a


def test_cluster_cap_counts_operands_not_constants():
    # Groups no longer carry their constants while growing (they are no
    # operand): the cap still counts inputs plus outputs, constants apart.
    from tracegrad.fuse import find_clusters
    from tracegrad.trace import Constant
    vs = [T.dvector(f"v{i}") for i in range(12)]
    acc = vs[0]
    for i, v in enumerate(vs[1:]):
        acc = acc + T.sin(v) * (i + 0.25)
    clusters = find_clusters([acc], max_operands=6)
    assert len(clusters) > 1
    for c in clusters:
        n_operands = sum(not isinstance(v, Constant) for v in c.inputs) + len(c.outputs)
        assert n_operands <= 6
    assert max(len(c.inputs) for c in clusters) > 6  # constants on top of the cap
    assert sum(len(c.nodes) for c in clusters) == 3 * 11


def test_spec_rebound_from_its_structure_equals_a_new_one():
    from tracegrad.fuse import find_clusters
    from tracegrad.fuse.spec import FusionSpec, spec_from_cluster
    x, y = T.dvector("x"), T.dscalar("y")
    row = np.array([1.5, -2.0, 4.25])
    specs = []
    for i in range(3):  # (values no other test uses: the spec tables are global)
        out = T.exp(x * (977.125 + i)) * row + y * np.float32(i + 0.5)
        (cluster,) = find_clusters([out])
        specs.append(spec_from_cluster(cluster)[0])
    assert len({id(s) for s in specs}) == 3
    assert specs[1].structure is specs[0].structure  # (rebound: shared)
    for spec in specs:
        fresh = FusionSpec(spec.in_types, spec.constants, spec.instrs, spec.outputs)
        for attr in ("key", "structure", "in_types", "instrs", "outputs", "out_dtypes",
                     "ndim", "output_deps", "output_const_deps"):
            assert getattr(fresh, attr) == getattr(spec, attr), attr
        assert hash(fresh) == hash(spec)
        for a, b in zip(fresh.constants, spec.constants):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    xs = np.linspace(0.0, 0.01, 3)
    for i, spec in enumerate(specs):
        # (input 1 is ``y * float32`` computed outside: another pattern)
        (got,) = cpu_program(spec).run([xs, np.float64(2.0)])
        np.testing.assert_allclose(got, np.exp(xs * (977.125 + i)) * row + 2.0, rtol=1e-14)
        np.testing.assert_array_equal(got, spec.reference(np, [xs, np.float64(2.0)])[0])


def test_a_big_paused_block_puts_its_survivors_in_the_oldest_generation(monkeypatch):
    # W7's first call walked the compile's ~10^6 survivors a second time
    # (the middle generation's pass): they now go to the oldest at once.
    import gc

    from tracegrad import collector
    calls = []
    real = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or real(*a))
    kept = []
    with collector.paused():
        kept.extend([i] for i in range(collector.MANY_NEW_OBJECTS + 1000))
    assert gc.isenabled() and calls == [(1,)]
    assert gc.get_count()[1] == 0 and len(kept) > collector.MANY_NEW_OBJECTS
    with collector.paused():
        kept.append([[] for _ in range(10)])
    assert calls == [(1,)]  # a small block leaves the collector to itself
    gc.disable()
    try:  # a collector the user turned off is left off and never run
        with collector.paused():
            kept.extend([i] for i in range(collector.MANY_NEW_OBJECTS + 1000))
        assert not gc.isenabled() and calls == [(1,)]
    finally:
        gc.enable()


def test_output_shapes_are_shared_by_a_structure_and_keyed_by_input_shapes():
    # ``cos(x[i]) * i``: the n specs differ in a constant only and share
    # one memo of static output shapes; other input shapes get their own.
    import tracegrad.tensor as T
    from tracegrad.fuse.cluster import find_clusters
    from tracegrad.fuse.spec import spec_from_cluster
    x = T.dvector("x")
    outs = [T.cos(x[i]) * float(i + 2) for i in range(3)]
    specs = [spec_from_cluster(c)[0] for c in find_clusters(outs)]
    assert len(specs) == 3 and len({id(s) for s in specs}) == 3
    assert len({id(s._shapes) for s in specs}) == 1
    a, b = specs[0], specs[1]
    assert a.output_shapes([()]) == [()]
    assert b._shapes == {((),): ((),)}  # (b reads a's answer)
    m = T.tensor("float64", (None, 3), "m")
    row = T.tensor("float64", (4, None), "r")
    (cluster,) = find_clusters([T.exp(m) + row * 2.0])
    spec, inputs, _ = spec_from_cluster(cluster)
    assert [v.type.shape for v in inputs] == [(None, 3), (4, None)]
    assert spec.output_shapes([(None, 3), (4, None)]) == [(4, 3)]
    assert spec.output_shapes([(None, None), (None, 5)]) == [(None, 5)]
    assert spec.output_shapes([(None, 3), (4, None)]) == [(4, 3)]  # (keyed by shapes)
    assert len(spec._shapes) == 2
