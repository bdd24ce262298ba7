"""The fused CPU program against the reference evaluator: random graphs
(Hypothesis), sizes around the block boundary, broadcasting, strided inputs,
mixed dtypes, output buffers and concurrent calls."""
import warnings
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.backend import numpy as cpu
from tracegrad.fuse import FusedElemwise, fuse_outputs
from tracegrad.backend.numpy import CPU_PROGRAMS, cpu_program
from tracegrad.trace import toposort
from fusecheck import compare_fused
from threadcheck import run_in_threads

TOL = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-12}


@pytest.fixture(autouse=True)
def predictable_blocks(monkeypatch, numpy_tier):
    """Blocks from BLOCK_BYTES alone (not from measured costs) and threads
    from small sizes on, so the sizes below hit block boundaries and the
    thread pool whatever this machine measures (on the NumPy tier: these
    are the NumPy program's blocks)."""
    monkeypatch.setattr(cpu, "BLOCK_MIN_NS", 0)
    monkeypatch.setattr(cpu, "THREAD_MIN_NS", 20_000)
    monkeypatch.setattr(tg.config, "num_threads", 2)
    CPU_PROGRAMS.clear()
    yield
    CPU_PROGRAMS.clear()


def _block(dtype):
    return max(cpu.MIN_BLOCK, cpu.BLOCK_BYTES // np.dtype(dtype).itemsize)


# Unfused (reference evaluator) against fused: dtypes, shapes, values.
_compare = partial(compare_fused, tol=TOL)


def _w1(x, y):
    return T.exp(-x * x) * T.sin(3 * x) + T.log1p(abs(y)) * T.tanh(x - y) + 0.5 * x * y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_w1_sizes_around_block_boundary(dtype):
    x, y = T.tensor(dtype, (None,), "x"), T.tensor(dtype, (None,), "y")
    out = _w1(x, y)
    (fused,) = fuse_outputs([out])
    assert isinstance(fused.owner.op, FusedElemwise)
    b = _block(dtype)
    rng = np.random.default_rng(0)
    for n in [0, 1, 7, b - 1, b, b + 1, 3 * b + 5]:
        xv = rng.standard_normal(n).astype(dtype)
        yv = rng.standard_normal(n).astype(dtype)
        _compare([out], {x: xv, y: yv}, [fused])


@pytest.mark.parametrize("threads", [1, 3])
def test_blocks_on_large_input(monkeypatch, threads):
    monkeypatch.setattr(tg.config, "num_threads", threads)
    x, y = T.dvectors("x", "y")
    out = _w1(x, y)
    n = 5 * _block("float64") + 3
    rng = np.random.default_rng(1)
    _compare([out], {x: rng.standard_normal(n), y: rng.standard_normal(n)})


def test_broadcast_strided_and_zero_d_inputs():
    x = T.dmatrix("x")
    r = T.dvector("r")
    s = T.dscalar("s")
    out = T.tanh(x * r + s) - T.exp(r) * s
    fused = fuse_outputs([out])
    rng = np.random.default_rng(2)
    big = rng.standard_normal((300, 700))
    cases = [
        (big, rng.standard_normal(700), np.array(0.3)),           # plain
        (big.T[:, :300].copy().T, rng.standard_normal(700), 1.5),  # Fortran order
        (big[::2, ::3], rng.standard_normal(234)[::-1], -0.2),     # strided, reversed
        (big[:1], rng.standard_normal(700), 2.0),                  # length-1 axis
        (big[:, :1], rng.standard_normal(700), 2.0),               # broadcast column
        (np.broadcast_to(rng.standard_normal(700), (300, 700)), rng.standard_normal(700), 1.0),
        (big[:0], rng.standard_normal(700), 1.0),                  # empty
    ]
    for xv, rv, sv in cases:
        _compare([out], {x: xv, r: rv, s: np.asarray(sv)}, fused)


def test_column_broadcast_over_many_rows():
    # Inner axis too short to merge: blocks are made of whole rows.
    x = T.dmatrix("x")
    c = T.dvector("c")
    out = T.exp(x) * c + 1
    rng = np.random.default_rng(3)
    _compare([out], {x: rng.standard_normal((50000, 3)), c: rng.standard_normal(3)})
    # Long rows: blocks cut the last axis.
    _compare([out], {x: rng.standard_normal((2, 100003)), c: rng.standard_normal(100003)})


def test_output_smaller_than_iteration_space_falls_back():
    # a = exp(x) is also an output; at run time x has a length-1 axis that the
    # static type does not know about, so a is smaller than the cluster's space.
    x, y = T.dmatrices("x", "y")
    a = T.exp(x) + 1
    b = a * y
    fused = fuse_outputs([a, b])
    assert len([n for n in toposort(fused) if isinstance(n.op, FusedElemwise)]) == 1
    _compare([a, b], {x: np.ones((1, 4)), y: np.ones((3, 4))}, fused)


def test_mixed_dtypes_integers_bools_and_non_ufunc_rows():
    i = T.ivector("i")
    f = T.fvector("f")
    b = T.tensor("bool", (None,), "b")
    out1 = T.switch(b, T.sigmoid(f) * i, T.softplus(f) - 1)      # float64
    out2 = T.cast(T.clip(i * 3 - 7, -5, 5), "int8") + (i % 4)    # integers
    out3 = T.erf(f) + T.cast(i, "float32") / 2                    # float64
    out4 = (i > 2) & b | T.isnan(f)                               # bool
    outs = [out1, out2, out3, out4]
    fused = fuse_outputs(outs)
    assert sum(isinstance(n.op, FusedElemwise) for n in toposort(fused)) >= 3
    rng = np.random.default_rng(4)
    for n in [0, 1, 5, _block("float64") + 1]:
        values = {i: rng.integers(-10, 10, n).astype("int32"),
                  f: rng.standard_normal(n).astype("float32"),
                  b: rng.random(n) > 0.5}
        _compare(outs, values, fused)


def test_float16():
    h = T.tensor("float16", (None,), "h")
    out = T.exp(h * 0.5) - h
    rng = np.random.default_rng(5)
    _compare([out], {h: rng.standard_normal(70000).astype("float16")})


def test_integer_division_by_zero_matches():
    a, b = T.lvectors("a", "b")
    out = a // b + a % b
    _compare([out], {a: np.array([7, -7, 3, 0]), b: np.array([2, 2, 0, 0])})


def test_error_names_inner_node_and_user_line():
    x, y = T.dvectors("x", "y")
    out = T.exp(x) + y  # this line
    out = out * 2
    fused = fuse_outputs([out])
    with pytest.raises(ValueError) as info:
        evaluate(fused, {x: np.ones(3), y: np.ones(4)})
    message = str(info.value)
    assert "add" in message and "(3,)" in message and "(4,)" in message
    assert "test_fuse_cpu.py" in message


def test_output_buffer_written_in_place_even_when_it_is_an_input():
    w, g = T.dvectors("w", "g")
    new_w = w - 0.1 * g * T.exp(w)
    doubled = new_w * w  # reads the old w after new_w is computed
    (fw, fd) = fuse_outputs([new_w, doubled])
    node = fw.owner
    assert fd.owner is node
    order = [node.inputs.index(w), node.inputs.index(g)]

    def args(wv, gv):
        pair = [None, None]
        pair[order[0]], pair[order[1]] = wv, gv
        return pair
    rng = np.random.default_rng(6)
    for n in [5, 3 * _block("float64") + 1]:
        wv, gv = rng.standard_normal(n), rng.standard_normal(n)
        expected = evaluate([new_w, doubled], {w: wv, g: gv})
        buf = wv.copy()
        other = np.empty(n)
        results = node.op.run(np, args(buf, gv), outs=[buf, other])
        assert results[0] is buf and results[1] is other
        np.testing.assert_allclose(buf, expected[0], rtol=1e-12)
        np.testing.assert_allclose(other, expected[1], rtol=1e-12)
        # A partial overlap is detected and handled by copying.
        wv2 = rng.standard_normal(n + 1)
        buf2 = wv2[1:]
        exp2 = evaluate([new_w, doubled], {w: wv2[:-1].copy(), g: gv})
        node.op.run(np, args(wv2[:-1], gv), outs=[buf2, np.empty(n)])
        np.testing.assert_allclose(buf2, exp2[0], rtol=1e-12)


def test_concurrent_calls_of_one_fused_op():
    x, y = T.dvectors("x", "y")
    (fused,) = fuse_outputs([_w1(x, y)])
    op = fused.owner.op
    rng = np.random.default_rng(7)
    sizes = [3, 1000, _block("float64") + 17, 4 * _block("float64")]
    data = [(rng.standard_normal(n), rng.standard_normal(n)) for n in sizes * 3]
    expected = [evaluate([fused.owner.op.spec.build([x, y])[0]], {x: a, y: b})[0]
                for a, b in data]

    def worker(k):
        for _ in range(4):
            for j in range(k, len(data), 4):
                got = op.impl(np, *data[j])
                np.testing.assert_allclose(got, expected[j], rtol=1e-12)

    run_in_threads(worker, 4)


def test_generated_source_is_straight_line_and_name_free():
    weird = T.dvector('x"); import os; os.system("echo pwned")  # ')
    y = T.dvector("y")
    out = T.exp(weird) * y + 1
    (fused,) = fuse_outputs([out])
    source = cpu_program(fused.owner.op.spec).source
    assert "pwned" not in source and "import" not in source
    block, fast = source.split("\n\n")
    assert fast.startswith("def fast(i0, i1):")
    # (The output buffer holds the intermediate values: no scratch.)
    assert block.splitlines() == [
        "def block(i0, i1, o0):",
        "    f0(i0, o0)",
        "    f1(o0, i1, o0)",
        "    f2(o0, k0, o0)",
    ]


# ------------------------------------------------------------ random graphs
UNARY = ["neg", "abs", "exp", "sin", "tanh", "log1p", "sqrt", "sigmoid", "softplus",
         "erf", "floor", "sign", "sqr", "isnan", "invert"]
BINARY = ["add", "sub", "mul", "true_div", "maximum", "minimum", "lt", "eq", "arctan2",
          "floor_div", "mod", "and_"]
DTYPES = ["float64", "float32", "int64", "int32", "bool"]


@st.composite
def graphs(draw):
    """A random elementwise DAG (with an occasional reduction) and input values."""
    n = draw(st.sampled_from([0, 1, 2, 5, 17, _block("float64") - 1,
                              _block("float64") + 1, 3 * _block("float64") + 7]))
    ndim = draw(st.integers(1, 2))
    full = (n,) if ndim == 1 else (draw(st.sampled_from([1, 3])), n)
    n_inputs = draw(st.integers(1, 3))
    inputs, values = [], {}
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    for k in range(n_inputs):
        dtype = draw(st.sampled_from(DTYPES))
        shape = list(full)
        if draw(st.booleans()) and n_inputs > 1:
            shape[draw(st.integers(0, ndim - 1))] = 1
        if draw(st.booleans()) and len(shape) > 1 and k:
            shape = shape[1:]
        static = tuple(1 if s == 1 and draw(st.booleans()) else None for s in shape)
        var = T.tensor(dtype, static, f"in{k}")
        if dtype == "bool":
            value = rng.random(shape) > 0.5
        elif dtype.startswith("int"):
            value = rng.integers(-4, 5, shape).astype(dtype)
        else:
            value = rng.uniform(-3, 3, shape).astype(dtype)
        if draw(st.booleans()) and value.ndim == 2 and value.shape[0] > 1:
            value = np.asfortranarray(value)
        inputs.append(var)
        values[var] = value
    pool = list(inputs) + [T.constant(np.float32(0.5)), 2]
    made = []
    for _ in range(draw(st.integers(2, 14))):
        if draw(st.integers(0, 9)) == 0 and made and made[-1].ndim == 2:
            pool.append(T.sum(made[-1], axis=1, keepdims=True))
            continue
        name = draw(st.sampled_from(UNARY + BINARY + ["switch", "clip", "cast"]))
        def pick():
            if made and draw(st.integers(0, 2)):
                return made[-1]  # mostly grow chains
            return draw(st.sampled_from(pool[-6:]))

        try:
            if name in UNARY:
                var = getattr(T, name)(pick())
            elif name == "switch":
                var = T.switch(T.gt(pick(), 0), pick(), pick())
            elif name == "clip":
                var = T.clip(pick(), -1, 2)
            elif name == "cast":
                var = T.cast(pick(), draw(st.sampled_from(["float32", "int16", "float64"])))
            else:
                var = getattr(T, name)(pick(), pick())
        except (TypeError, ValueError, OverflowError):
            continue
        if getattr(var, "ndim", None) is None:
            continue
        pool.append(var)
        made.append(var)
    if not made:
        made = [T.exp(inputs[0]) + 1]
    outputs = [made[-1]] + [v for v in made[:-1] if draw(st.integers(0, 3)) == 0]
    return outputs, values


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs())
def test_random_graphs_match_reference(case):
    outputs, values = case
    _compare(outputs, values)


def test_array_constants_are_cut_into_blocks():
    n = 3 * _block("float64") + 5
    c = np.linspace(-1, 1, n)
    x = T.dvector("x")
    out = T.exp(x * c) + np.float64(2.0) * c
    fused = fuse_outputs([out])
    (node,) = [nd for nd in toposort(fused) if isinstance(nd.op, FusedElemwise)]
    assert node.inputs == [x]  # both constants are baked in
    rng = np.random.default_rng(8)
    _compare([out], {x: rng.standard_normal(n)}, fused)
    _compare([out], {x: np.array([0.5])}, fused)  # x broadcasts against c
    # A (1, 1) constant makes the result 2-d.
    out2 = T.tanh(x) * np.ones((1, 1)) + 1
    _compare([out2], {x: rng.standard_normal(n)})


@pytest.mark.parametrize("n", [7, 3 * _block("float64") + 1])
def test_fortran_inputs_give_fortran_outputs_like_numpy(n):
    x, y = T.dmatrices("x", "y")
    a = T.exp(x) * 2
    b = a + y
    fused = fuse_outputs([a, b])
    rng = np.random.default_rng(9)
    xf = np.asfortranarray(rng.standard_normal((3, n)))
    yc = rng.standard_normal((3, n))
    yf = np.asfortranarray(yc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for yv in (yf, yc):
            ref = evaluate([a, b], {x: xf, y: yv})
            got = evaluate(fused, {x: xf, y: yv})
            for r, g in zip(ref, got):
                assert g.flags.f_contiguous == r.flags.f_contiguous
                assert g.flags.c_contiguous == r.flags.c_contiguous
                np.testing.assert_array_equal(g, r)
            # A later reduction then sums in the same order: equal bits.
            np.testing.assert_array_equal(got[1].sum(axis=1), ref[1].sum(axis=1))


def test_inputs_of_other_types_are_converted_like_the_evaluator_does():
    x, y = T.dvectors("x", "y")
    (fused,) = fuse_outputs([T.exp(x) * y + 1])
    op = fused.owner.op
    xv = np.linspace(0, 1, 5)
    expected = np.exp(xv) * 2.0 + 1
    for args in [(xv.astype("float32"), np.full(5, 2.0)), (list(xv), 2.0),
                 (xv, np.float64(2.0)), (xv, np.array(2.0))]:
        order = [args[0] if v is x else args[1] for v in fused.owner.inputs]
        got = op.impl(np, *order)
        assert got.dtype == np.float64 and got.shape == (5,)
        np.testing.assert_allclose(got, np.exp(np.asarray(args[0], "float64")) * 2.0 + 1,
                                   rtol=1e-12)
    assert np.allclose(expected, op.impl(np, *[xv if v is x else np.full(5, 2.0)
                                               for v in fused.owner.inputs]))


def test_block_size_and_threads_follow_the_measured_cost(monkeypatch):
    monkeypatch.setattr(cpu, "BLOCK_MIN_NS", 60_000)
    x, y = T.dvectors("x", "y")
    cheap = cpu_program(fuse_outputs([x - 0.1 * y])[0].owner.op.spec)
    heavy = cpu_program(fuse_outputs([_w1(x, y)])[0].owner.op.spec)
    for prog in (cheap, heavy):
        assert prog.ns_per_element > 0
        assert prog.block >= _block("float64")
        # int() truncates the block to whole elements: one element more would
        # reach the 60 us floor (ns_per_element is measured, so not a fixed number).
        assert (prog.block + 1) * prog.ns_per_element > 60_000 or prog.block == _block("float64")
        assert prog.small_limit <= 2 * prog.block
    assert heavy.ns_per_element > cheap.ns_per_element


def test_broadcast_over_leading_axis_merges_trailing_axes():
    x = T.dtensor3("x")
    y = T.dmatrix("y")
    out = T.tanh(x) * y + T.exp(y)
    rng = np.random.default_rng(10)
    values = {x: rng.standard_normal((4, 50, 300)), y: rng.standard_normal((50, 300))}
    _compare([out], values)
    # Strided in the middle axis only: the last two axes cannot merge.
    values = {x: rng.standard_normal((4, 100, 300))[:, ::2], y: rng.standard_normal((50, 300))}
    _compare([out], values)


def test_output_buffers_strided_read_only_or_wrong():
    x, y = T.dvectors("x", "y")
    (fused,) = fuse_outputs([T.exp(x) * y - 1])
    op = fused.owner.op
    n = 3 * _block("float64") + 1
    rng = np.random.default_rng(11)
    xv, yv = rng.standard_normal(n), rng.standard_normal(n)
    args = [xv if v is x else yv for v in fused.owner.inputs]
    expected = np.exp(xv) * yv - 1
    big = np.zeros(2 * n)
    strided = big[::2]
    op.run(np, args, outs=[strided])
    np.testing.assert_allclose(strided, expected, rtol=1e-12)
    assert (big[1::2] == 0).all()
    frozen = np.zeros(n)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        op.run(np, args, outs=[frozen])
    with pytest.raises(ValueError, match="does not fit"):
        op.run(np, args, outs=[np.zeros(n + 1)])
    with pytest.raises(ValueError, match="expected 1 output"):
        op.run(np, args, outs=[])
