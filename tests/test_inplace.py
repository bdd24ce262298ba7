"""In-place planning (``tracegrad.rewrite.plan_inplace``) and the in-place
variants of elementwise, fused and ``IncSubtensor`` ops.

Structural tests run the planner on a ``FunctionGraph`` (no fusion) and look
at which nodes overwrite which input; numerical ones compare ``'fast_run'``
(planner on) with ``mode='None'``; the unsafe cases (user inputs, outputs,
shared variables, constants, views, ``x + x.T`` overlaps, later readers)
must stay out of place; failing calls leave shared variables unchanged;
threads; steady-state memory of training steps (W2, a small MLP).
"""
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.backend import CPU
from tracegrad.compile import pipeline
from tracegrad.compile.fgraph import FunctionGraph
from tracegrad.fuse.op import FusedElemwise, InplaceFusedElemwise
from tracegrad.ops.elemwise import InplaceElemwise
from tracegrad.rewrite import plan_inplace
from tracegrad.trace import graph_inputs
from threadcheck import run_in_threads


# ------------------------------------------------------------ helpers
def planned(inputs, outputs):
    """A FunctionGraph of ``outputs`` after in-place planning (no fusion);
    the shared variables read are added to ``inputs``."""
    shared = [v for v in graph_inputs(outputs) if getattr(v, "container", None) is not None]
    fgraph = FunctionGraph(list(inputs) + shared, outputs)
    plan_inplace(fgraph)
    fgraph.check_integrity()
    return fgraph


def destroyers(fgraph):
    """``{op name: destroyed input's owner op name (or 'input')}``."""
    found = {}
    for node in fgraph.toposort():
        for srcs in node.op.destroy_map.values():
            for j in srcs:
                owner = node.inputs[j].owner
                found[node.op.name] = owner.op.name if owner is not None else "input"
    return found


@pytest.fixture
def no_fusion(monkeypatch):
    """Compile with rewrites and in-place planning but without fusion, so
    the elementwise nodes themselves are planned."""
    monkeypatch.setattr(pipeline, "fuse_graph", lambda fgraph, target=None: None)


def agree(inputs, outputs, values, updates=None, steps=1):
    """``'fast_run'`` and ``mode='None'`` give the same results (and the
    same shared values after ``steps`` calls when there are updates)."""
    outputs = list(outputs)
    shared = [s for s, _ in updates or []]
    start = [s.get_value() for s in shared]
    fast = tg.function(inputs, outputs, updates=updates, mode="fast_run",
                       on_unused_input="ignore")
    got = [[np.array(r) for r in fast(*values)] for _ in range(steps)]
    after = [s.get_value() for s in shared]
    for s, v in zip(shared, start):
        s.set_value(v)
    ref = tg.function(inputs, outputs, updates=updates, mode="None",
                      on_unused_input="ignore")
    expected = [[np.array(r) for r in ref(*values)] for _ in range(steps)]
    for g_step, e_step in zip(got, expected):
        for g, e in zip(g_step, e_step):
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    for s, a in zip(shared, after):
        np.testing.assert_allclose(a, s.get_value(), rtol=1e-12, atol=1e-12)
    return fast


# ------------------------------------------------------------ structure
def test_a_chain_overwrites_each_dead_intermediate():
    x = T.dvector("x")
    out = (T.exp(x) * 2.0 + 1.0) / 3.0
    found = destroyers(planned([x], [out]))
    assert found == {"mul{inplace}": "exp", "add{inplace}": "mul{inplace}",
                     "true_div{inplace}": "add{inplace}"}


def test_user_inputs_shared_variables_and_constants_are_never_overwritten():
    x = T.dvector("x")
    s = tg.shared(np.ones(3), name="s")
    c = T.constant(np.arange(3.0))
    assert destroyers(planned([x], [x * 2.0, s * 3.0, c + x])) == {}
    # ... nor views of them.
    m = T.dmatrix("m")
    assert destroyers(planned([m], [m.T * 2.0, m[1:] + 1.0, s.reshape((3, 1)) * 2.0])) == {}


def test_outputs_and_their_views_are_never_overwritten():
    x = T.dvector("x")
    t = T.exp(x)
    assert destroyers(planned([x], [t, t * 2.0])) == {}
    m = T.dmatrix("m")
    u = T.exp(m)
    assert destroyers(planned([m], [u.T, u * 2.0])) == {}


def test_update_values_are_never_overwritten():
    x = T.dvector("x")
    s = tg.shared(np.ones(3), name="s")
    t = T.exp(x)
    fgraph = FunctionGraph([x, s], [t * 2.0, t], update_targets=[s])
    plan_inplace(fgraph)
    assert destroyers(fgraph) == {}


def test_views_of_intermediates_are_not_overwritten_but_their_base_may_be():
    m = T.dmatrix("m")
    t = T.exp(m)
    found = destroyers(planned([m], [t.T * 2.0]))
    assert found == {}                       # t.T is a view: not a buffer of its own
    found = destroyers(planned([m], [(t * 2.0).T]))
    assert found == {"mul{inplace}": "exp"}


def test_an_overlapping_view_blocks_overwriting():
    # x + x.T written into x would read elements it has already overwritten.
    m = T.dmatrix("m")
    t = T.exp(m)
    assert destroyers(planned([m], [t + t.T])) == {}
    assert destroyers(planned([m], [t.T + t])) == {}
    v = T.dvector("v")
    e = T.exp(v)
    assert destroyers(planned([v], [T.inc_subtensor(e[1:], e[:-1])])) == {}
    assert destroyers(planned([v], [e * e[::-1]])) == {}


def test_only_the_last_reader_may_overwrite_and_only_once():
    x = T.dvector("x")
    t = T.exp(x)
    fgraph = planned([x], [T.sin(t) * (t * 3.0)])
    order = fgraph.toposort()
    readers = [n for n in order if any(i.owner is not None and i.owner.op.name == "exp"
                                       for i in n.inputs)]
    assert [n.op.name for n in readers] == ["sin", "mul{inplace}"]
    assert readers[1].op.destroy_map == {0: [0]}


def test_a_later_reader_of_a_view_blocks_overwriting():
    # t.T is made before t * 2 but read (by the dot) after it.
    m = T.dmatrix("m")
    t = T.exp(m)
    fgraph = planned([m], [T.dot(t.T, t * 2.0)])
    assert destroyers(fgraph) == {}
    # Once the view's reader comes first, the buffer is free.
    fgraph = planned([m], [T.dot(t.T, t).sum() * (t * 2.0)])
    assert "mul{inplace}" in destroyers(fgraph)


def test_non_ufunc_rows_and_casts_stay_out_of_place():
    x = T.dvector("x")
    assert destroyers(planned([x], [T.sigmoid(T.exp(x))])) == {}
    assert destroyers(planned([x], [T.cast(T.exp(x), "float32")])) == {}


def destroyed_inputs(fgraph):
    """The variables overwritten by the graph's in-place nodes."""
    return [n.inputs[j] for n in fgraph.toposort()
            for srcs in n.op.destroy_map.values() for j in srcs]


def test_dtype_ndim_or_broadcast_mismatch_is_not_planned():
    x, m = T.dvector("x"), T.dmatrix("m")
    (target,) = destroyed_inputs(planned([x, m], [T.exp(x) + T.exp(m)]))
    assert target.ndim == 2                  # exp(x) does not have the result's ndim
    c = T.dcol("c")                          # (?, 1): broadcast along axis 1
    (target,) = destroyed_inputs(planned([c, m], [T.exp(c) * T.exp(m)]))
    assert target.type.shape == (None, None)
    b = T.bvector("b")
    assert destroyed_inputs(planned([b, x], [T.exp(x) > T.cast(b, "float64")])) == []


def test_set_subtensor_overwrites_a_dead_buffer():
    x = T.dvector("x")
    t = T.exp(x)
    found = destroyers(planned([x], [T.set_subtensor(t[1:], 0.0)]))
    assert found == {"SetSubtensor{1:}{inplace}": "exp"}
    assert destroyers(planned([x], [T.set_subtensor(x[1:], 0.0)])) == {}


def test_source_location_names_and_types_are_kept():
    x = T.dvector("x")
    t = T.exp(x) * 2.0
    t.name = "doubled"
    fgraph = planned([x], [t])
    (out,) = fgraph.outputs
    assert isinstance(out.owner.op, InplaceElemwise)
    assert out.name == "doubled" and out.type == t.type
    assert out.owner.source == t.owner.source


# ------------------------------------------------------------ numbers
CASES = {
    "chain": lambda x, m: (T.exp(x) * 2.0 + 1.0) / 3.0,
    "shared_intermediate": lambda x, m: T.sin(T.exp(x)) * (T.exp(x) * 3.0),
    "overlap": lambda x, m: T.exp(m) + T.exp(m).T,
    "view_then_reader": lambda x, m: T.dot(T.exp(m) * 2.0, T.exp(m).T),
    "view_read_later": lambda x, m: T.dot(T.exp(m).T, T.exp(m) * 2.0),
    "view_read_first": lambda x, m: T.dot(T.exp(m).T, T.exp(m)).sum() * (T.exp(m) * 2.0),
    "set_subtensor": lambda x, m: T.set_subtensor(T.exp(x)[1:], T.exp(x)[:-1]),
    "inc_subtensor": lambda x, m: T.inc_subtensor(T.exp(m)[:, 0], 1.0) * 2.0,
    "broadcast": lambda x, m: (T.exp(x) + T.exp(m)) * 2.0,
    "reduction_barrier": lambda x, m: T.exp(m) / T.exp(m).sum(axis=0) - 1.0,
}


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_run_with_the_planner_equals_mode_none(name, fuse, monkeypatch):
    if not fuse:
        monkeypatch.setattr(pipeline, "fuse_graph", lambda fgraph, target=None: None)
    x, m = T.dvector("x"), T.dmatrix("m")
    out = CASES[name](x, m)
    rng = np.random.default_rng(0)
    values = [rng.uniform(-1, 1, 3), rng.uniform(-1, 1, (3, 3))]
    agree([x, m], [out, out * 0.5], values)


def test_a_broadcast_buffer_falls_back_to_a_new_array(no_fusion):
    x, y = T.dvectors("x", "y")
    out = T.exp(x) * T.exp(y)         # may overwrite exp(x): (1,) at run time
    f = agree([x, y], [out], [np.ones(1), np.arange(3.0)])
    assert any(n.op.destroy_map for n in f.maker.fgraph.apply_nodes)
    assert f(np.ones(1), np.arange(3.0))[0].shape == (3,)


def test_pickled_functions_keep_their_plan():
    x = T.dmatrix("x")
    t = T.exp(x) * 2.0
    f = tg.function([x], T.dot(t, t.T) * 2.0 + 1.0)
    g = pickle.loads(pickle.dumps(f))
    names = [n.op.name for n in g.maker.fgraph.toposort()]
    assert names == [n.op.name for n in f.maker.fgraph.toposort()]
    assert any(n.endswith("{inplace}") for n in names)
    value = np.arange(6.0).reshape(2, 3) / 10
    np.testing.assert_array_equal(g(value), f(value))
    op = (x + x).owner.op.inplace_version(1)
    assert pickle.loads(pickle.dumps(op)) == op


# ------------------------------------------------------------ the op variants
def test_inplace_elemwise_writes_into_its_input_or_falls_back():
    x, y = T.dvectors("x", "y")
    op = (x + y).owner.op.inplace_version(0)
    assert op.destroy_map == {0: [0]} and op.name == "add{inplace}"
    assert op == (x + y).owner.op.inplace_version(0) != (x + y).owner.op
    a, b = np.ones(3), np.arange(3.0)
    assert op.impl(np, a, b) is a and np.array_equal(a, [1.0, 2.0, 3.0])
    small = np.ones(1)
    result = op.impl(np, small, b)                    # needs broadcasting
    assert result is not small and np.array_equal(result, [1.0, 2.0, 3.0])
    frozen = np.ones(3)
    frozen.flags.writeable = False
    assert op.impl(np, frozen, b) is not frozen
    assert T.sigmoid(x).owner.op.inplace_version(0) is None
    assert op.inplace_version(1) is None


def test_inplace_fused_elemwise_writes_into_its_input_or_falls_back():
    from tracegrad.fuse import fuse_outputs
    w, g = T.dvectors("w", "g")
    (out,) = fuse_outputs([w - 0.1 * (0.02 * w + g)])
    fused = out.owner.op
    assert isinstance(fused, FusedElemwise)
    op = fused.inplace_version(1)
    assert isinstance(op, InplaceFusedElemwise) and op.destroy_map == {0: [1]}
    assert op.name.endswith("{inplace}")
    rng = np.random.default_rng(1)
    for n in (5, 400_000):                # the direct program, then run(outs=...)
        wv, gv = rng.standard_normal(n), rng.standard_normal(n)
        expected = wv - 0.1 * (0.02 * wv + gv)
        target = gv.copy()
        assert op.impl(np, wv, target) is target
        np.testing.assert_allclose(target, expected, rtol=1e-15)
    small = np.ones(1)
    result = op.impl(np, np.arange(3.0), small)
    assert result is not small and result.shape == (3,)
    # Several outputs: no in-place version.
    t = T.exp(w) + g
    a, b = fuse_outputs([t, T.tanh(t) * g])
    assert a.owner is b.owner and a.owner.op.inplace_version(0) is None


def test_read_after_write_fused_programs_still_compute_the_right_values():
    # g is read again after the result is written: run(outs=...) handles it.
    from tracegrad.fuse import fuse_outputs
    w, g = T.dvectors("w", "g")
    t = T.exp(g) * w
    (out,) = fuse_outputs([t + g * t])
    op = out.owner.op.inplace_version(list(out.owner.inputs).index(g))
    gv, wv = np.linspace(-1, 1, 7), np.linspace(0, 2, 7)
    expected = np.exp(gv) * wv + gv * np.exp(gv) * wv
    args = [wv, gv.copy()] if out.owner.inputs[0] is w else [gv.copy(), wv]
    np.testing.assert_allclose(op.impl(np, *args), expected, rtol=1e-14)


def test_real_returns_a_new_array():
    # Elemwise declares no view_map, so ``real`` must not hand back its input.
    x = T.dvector("x")
    a = np.ones(3)
    assert not np.shares_memory(tg.function([x], T.real(x))(a), a)


# ------------------------------------------------------------ updates and calls
def _logistic_regression(n, features, rng):
    x = T.dmatrix("x")
    y = T.dvector("y")
    w = tg.shared(rng.standard_normal(features), name="w")
    b = tg.shared(0.0, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    data = [rng.standard_normal((n, features)), rng.integers(0, 2, n).astype("float64")]
    return [x, y], [prediction, xent], [(w, w - 0.1 * gw), (b, b - 0.1 * gb)], data


def test_w2_updates_land_in_the_old_buffer_and_agree_with_mode_none():
    rng = np.random.default_rng(0)
    inputs, outputs, updates, data = _logistic_regression(40, 30, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = agree(inputs, outputs, data, updates=updates, steps=3)
    w = updates[0][0]
    update_node = train.maker.fgraph.outputs[len(outputs)].owner
    assert isinstance(update_node.op, InplaceFusedElemwise)
    assert update_node.inputs[update_node.op.destroyed].owner.op.name == "tensordot"
    buf = w.get_value(borrow=True)
    before = buf.copy()
    train(*data)
    assert w.get_value(borrow=True) is buf and not np.array_equal(buf, before)


def test_mlp_step_agrees_with_mode_none_and_plans_every_weight_update():
    rng = np.random.default_rng(1)
    x, y = T.dmatrix("x"), T.lvector("y")
    params = [tg.shared(rng.standard_normal((6, 5)) * 0.3, name="w1"),
              tg.shared(np.zeros(5), name="b1"),
              tg.shared(rng.standard_normal((5, 4)) * 0.3, name="w2"),
              tg.shared(np.zeros(4), name="b2")]
    w1, b1, w2, b2 = params
    h = T.tanh(T.dot(x, w1) + b1)
    p = T.nnet.softmax(T.dot(h, w2) + b2)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    grads = T.grad(loss, params)
    updates = [(s, s - 0.1 * g) for s, g in zip(params, grads)]
    data = [rng.standard_normal((8, 6)), rng.integers(0, 4, 8)]
    train = agree([x, y], [loss], data, updates=updates, steps=3)
    fgraph = train.maker.fgraph
    for w in (w1, w2):
        value = fgraph.outputs[1 + fgraph.update_targets.index(w)]
        assert value.owner.op.destroy_map, f"the update of {w} is not computed in place"


def test_a_failing_call_leaves_shared_variables_unchanged():
    rng = np.random.default_rng(2)
    inputs, outputs, updates, data = _logistic_regression(10, 4, rng)
    z = T.dvector("z")
    extra = T.dot(inputs[0], updates[0][1]) * z     # reads the new w, then fails
    train = tg.function(inputs + [z], outputs + [extra], updates=updates)
    order = train.maker.fgraph.toposort()
    in_place = [k for k, n in enumerate(order) if n.op.destroy_map]
    (failing,) = [k for k, n in enumerate(order) if any(i.name == "z" for i in n.inputs)]
    assert in_place and min(in_place) < failing
    saved = [(s.get_value(borrow=True), s.get_value()) for s, _ in updates]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            train(*data, np.ones(3))
        for (s, _), (buf, value) in zip(updates, saved):
            assert s.get_value(borrow=True) is buf
            np.testing.assert_array_equal(buf, value)
        train(*data, np.ones(10))
    assert not np.array_equal(updates[0][0].get_value(), saved[0][1])


def test_fused_updates_written_by_the_kernel_still_agree(monkeypatch):
    # Backends with fused_updates hand the shared buffer to the update kernel,
    # which is then also an in-place node: both plans together.
    monkeypatch.setattr(CPU, "fused_updates", True)
    rng = np.random.default_rng(3)
    inputs, outputs, updates, data = _logistic_regression(20, 7, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = agree(inputs, outputs, data, updates=updates, steps=3)
    assert any(isinstance(d.op, InplaceFusedElemwise) for d in train.schedule.deferred)


def test_concurrent_calls_get_their_own_buffers():
    x = T.dmatrix("x")
    t = T.exp(x) * 2.0
    out = T.dot(t, t.T) + T.set_subtensor(t[:, 0], 1.0).sum()
    f = tg.function([x], [out * 1.5 - 2.0, T.tanh(out)])
    assert any(n.op.destroy_map for n in f.maker.fgraph.apply_nodes)
    ref = tg.function([x], [out * 1.5 - 2.0, T.tanh(out)], mode="None")
    rng = np.random.default_rng(4)
    values = [rng.uniform(-1, 1, (20, 20)) for _ in range(8)]
    expected = [ref(v) for v in values]

    def work(k):
        for _ in range(30):
            for got, want in zip(f(values[k]), expected[k]):
                np.testing.assert_allclose(got, want, rtol=1e-12)

    run_in_threads(work, 8)


def test_the_plan_runs_on_the_cuda_backend():
    # CuPy's rules without a GPU (fake_cupy): ufuncs with out=, kernels whose
    # output is one of their inputs, no ``flags.writeable``.
    import fake_cupy
    rng = np.random.default_rng(6)
    w0, xv = rng.standard_normal(6), rng.standard_normal((5, 6))
    with fake_cupy.installed() as cp:
        results = {}
        for mode in ("fast_run", "None"):
            x = T.dmatrix("x")
            w = tg.shared(w0.copy(), name="w", device="cuda")
            t = T.tanh(T.dot(x, w))
            cost = (t * t).sum() + T.exp(t).sum()
            gw = T.grad(cost, w)
            out = T.set_subtensor(T.exp(x)[0], 0.0) * 2.0
            f = tg.function([x], [cost, out], updates=[(w, w - 0.1 * gw)], mode=mode,
                            device="cuda")
            if mode == "fast_run":
                names = [n.op.name for n in f.maker.fgraph.apply_nodes if n.op.destroy_map]
                assert any("Subtensor" in n for n in names), names
                assert any(n.startswith("Fused") for n in names), names
            buf = w.get_value(borrow=True)
            got = [[cp.asnumpy(r) for r in f(xv)] for _ in range(2)]
            assert w.get_value(borrow=True) is buf
            results[mode] = got, w.get_value()
    (fast, w_fast), (ref, w_ref) = results["fast_run"], results["None"]
    for a, b in zip(sum(fast, []), sum(ref, [])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w_fast, w_ref, rtol=1e-12)


# ------------------------------------------------------------ memory
def _step_peak(train, data, outs_of=lambda r: r):
    """Bytes allocated at the peak of one steady-state call, less the bytes
    of the returned results (tracemalloc)."""
    for _ in range(3):
        train(*data)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = train(*data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    returned = sum(np.asarray(r).nbytes for r in outs_of(result))
    return peak - start - returned


def test_no_buffer_is_allocated_for_the_new_value_of_a_weight(monkeypatch):
    # Few rows, many features: the weight dominates every other buffer. Its
    # gradient x.T @ g is a new w-sized array (as in NumPy); the update
    # w - lr * (0.02 * w + g) is then computed into that dead gradient rather
    # than into a new buffer, and copied into w's own buffer.
    monkeypatch.setattr(tg.config, "num_threads", 1)  # one set of scratch blocks
    rng = np.random.default_rng(5)
    inputs, outputs, updates, data = _logistic_regression(4, 200_000, rng)
    w = updates[0][0]
    nbytes = w.get_value(borrow=True).nbytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = tg.function(inputs, outputs, updates=updates)
        buf = w.get_value(borrow=True)
        planned_peak = _step_peak(train, data)
        assert w.get_value(borrow=True) is buf
        monkeypatch.setattr(pipeline, "plan_inplace_graph", lambda fgraph: None)
        unplanned = tg.function(inputs, outputs, updates=updates)
        unplanned_peak = _step_peak(unplanned, data)
    assert not any(n.op.destroy_map for n in unplanned.maker.fgraph.apply_nodes)
    # The plan saves the w-sized result buffer, less one block of scratch:
    # its kernel must hold 0.02 * w apart until g (the buffer it writes) is
    # read, where the unplanned kernel keeps it in its own new output buffer.
    assert unplanned_peak - planned_peak > 0.5 * nbytes, (planned_peak, unplanned_peak)
    assert planned_peak < 2.1 * nbytes, (planned_peak, nbytes)
