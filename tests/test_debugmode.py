"""``DebugMode`` (``mode='DebugMode'``): per-node reference checks,
undeclared in-place writes, NaN/inf, and optimized vs unoptimized graphs."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile.debugmode import (BadDestroyMap, BadOptimization, BadThunkOutput,
                                         DebugMode, DebugModeError, InvalidValueError)
from tracegrad.trace import Apply, Op


class _Undeclared(Op):
    """Doubles its input in place without declaring a destroy_map (a bug)."""
    __props__ = ()

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        x *= 2
        return x + 0


class _Nondeterministic(Op):
    """Gives another result each time it runs (a bug)."""
    __props__ = ()

    def __init__(self):
        self.calls = 0

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        self.calls += 1
        return x + self.calls


def test_theano_tutorial_example_runs_and_agrees():
    x = T.dvector("x")
    f = tg.function([x], 10 * x, mode="DebugMode")
    assert f([5]) == 50.0 and f([0]) == 0.0 and f([7]) == 70.0
    assert isinstance(tg.function([x], x * 2, mode="DEBUG_MODE").maker.monitor, object)


def test_fused_kernels_updates_and_stability_rewrites_pass():
    x = T.dvector("x")
    s = tg.shared(np.zeros(3), name="s")
    f = tg.function([x], [T.exp(x).sum(), T.log(1 + T.exp(x)), T.tanh(x) * x + 1],
                    updates=[(s, s + 2 * x)], mode=DebugMode())
    out = f([1.0, 2.0, 3.0])
    np.testing.assert_allclose(out[1], np.log1p(np.exp([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(s.get_value(), [2.0, 4.0, 6.0])
    # log(1 + exp(1000)) is inf before the softplus rewrite, 1000 after: accepted
    g = tg.function([x], T.log(1 + T.exp(x)), mode=DebugMode())
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(g([1000.0, 1.0]), [1000.0, np.log1p(np.e)])


def test_undeclared_in_place_write_is_named():
    x = T.dvector("x")
    f = tg.function([x], _Undeclared()(x) + 1, mode="DebugMode")
    with pytest.raises(BadDestroyMap, match=r"_Undeclared.*overwrote its input 0.*destroy_map"):
        f(np.ones(2))


def test_node_differing_from_its_reference_is_named():
    x = T.dvector("x")
    f = tg.function([x], _Nondeterministic()(x), mode="DebugMode")
    with pytest.raises(BadThunkOutput, match=r"output 0 of node 0 \(_Nondeterministic\)"):
        f(np.ones(2))


def test_rewrite_that_changes_a_finite_value_is_reported():
    # (x + 1e20) - 1e20 is 0 for x = 1 in float64; the rewrite to x gives 1
    x = T.dvector("x")
    f = tg.function([x], (x + 1e20) - 1e20, mode="DebugMode")
    with pytest.raises(BadOptimization, match="output 0 differs"):
        f([1.0])
    assert tg.function([x], (x + 1e20) - 1e20)([1.0]) == 1.0


def test_nan_and_inf_are_errors_unless_allowed():
    x = T.dvector("x")
    with np.errstate(divide="ignore"):
        with pytest.raises(InvalidValueError, match="holds inf"):
            tg.function([x], T.log(x), mode="DebugMode")(np.zeros(2))
        out = tg.function([x], T.log(x), mode=DebugMode(check_isfinite=False))(np.zeros(2))
    assert np.isneginf(out).all()
    assert issubclass(InvalidValueError, DebugModeError)


def test_copy_keeps_debug_mode():
    x = T.dvector("x")
    f = tg.function([x], _Nondeterministic()(x), mode="DebugMode")
    with pytest.raises(BadThunkOutput):
        f.copy()(np.ones(2))


def test_copy_keeps_monitor_hooks():
    from tracegrad.compile.mode import MonitorMode
    seen = []
    x = T.dscalar("x")
    f = tg.function([x], 5 * x, mode=MonitorMode(post_func=lambda i, node, fn: seen.append(i)))
    f.copy()(3.0)
    assert seen == [0]


def test_random_draws_scan_and_lazy_ifelse_pass():
    from tracegrad.ifelse import ifelse
    from tracegrad.random import RandomStreams
    r = RandomStreams(3)
    x = T.dvector("x")
    u = r.uniform((3,))
    f = tg.function([x], [x + u, u * 2], mode="DebugMode")
    first, second = f([1.0, 2.0, 3.0])
    np.testing.assert_allclose(second, 2 * (first - [1.0, 2.0, 3.0]))
    a, b = T.dscalars("a", "b")
    g = tg.function([a, b, x], ifelse(T.lt(a, b), T.exp(x).sum(), T.log(x).sum()),
                    mode="DebugMode")
    assert np.isclose(g(0.0, 1.0, [1.0, 2.0]), np.exp([1.0, 2.0]).sum())
    assert np.isclose(g(1.0, 0.0, [1.0, 2.0]), np.log(2.0))
    # a scan drawing numbers (its state buffer is not kept: None, skipped)
    out, upd = tg.scan(lambda v, acc: acc + v * r.normal(()), sequences=x,
                       outputs_info=T.constant(0.0))
    h = tg.function([x], out, updates=upd, mode="DebugMode")
    assert h([1.0, 2.0, 3.0]).shape == (3,)


def test_pickled_debug_function_is_a_plain_function_and_threads_are_separate():
    import pickle
    import threading
    x = T.dvector("x")
    mode = DebugMode()
    f = tg.function([x], T.exp(x) * 2, mode=mode)
    g = pickle.loads(pickle.dumps(f))
    assert type(g).__name__ == "Function" and g([0.0]) == 2.0
    errors = []

    def work():
        try:
            for _ in range(20):
                np.testing.assert_allclose(f(np.arange(50.0)), np.exp(np.arange(50.0)) * 2)
        except Exception as exc:        # (reported below, in the main thread)
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
