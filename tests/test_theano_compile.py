"""Theano's function-level API (issue 17): ``Function.copy``,
``trust_input``, ``In(borrow=)``, ``get_value(return_internal_type=)``,
``rv.rng``, ``MonitorMode``, ``NanGuardMode`` and ``Mode.excluding``."""
import pickle

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile import Mode
from tracegrad.compile.mode import MonitorMode, NanGuardMode
from tracegrad.random import RandomStreams


def _accumulator():
    x = T.dvector("x")
    s = tg.shared(np.zeros(3), name="s")
    return x, s, tg.function([x], x + s, updates=[(s, s + x)])


def test_copy_swaps_shared_variables():
    x, s, f = _accumulator()
    s2 = tg.shared(np.ones(3), name="s2")
    g = f.copy(swap={s: s2})
    np.testing.assert_array_equal(g(np.ones(3)), np.full(3, 2.0))
    np.testing.assert_array_equal(s2.get_value(), np.full(3, 2.0))
    np.testing.assert_array_equal(s.get_value(), np.zeros(3))
    f(np.ones(3))
    np.testing.assert_array_equal(s.get_value(), np.ones(3))
    np.testing.assert_array_equal(s2.get_value(), np.full(3, 2.0))


def test_copy_without_updates_and_with_a_name():
    x, s, f = _accumulator()
    h = f.copy(delete_updates=True, name="frozen", share_memory=True)
    np.testing.assert_array_equal(h(np.ones(3)), np.ones(3))
    np.testing.assert_array_equal(s.get_value(), np.zeros(3))
    assert h.name == "frozen"


def test_copy_checks_the_swap():
    x, s, f = _accumulator()
    with pytest.raises(TypeError, match="has type"):
        f.copy(swap={s: tg.shared(np.zeros((2, 2)))})
    with pytest.raises(TypeError, match="shared variables"):
        f.copy(swap={s: T.dvector()})


def test_copy_of_an_unpickled_function_works():
    x, s, f = _accumulator()
    g = pickle.loads(pickle.dumps(f)).copy(delete_updates=True)
    np.testing.assert_array_equal(g(np.ones(3)), np.ones(3))


def test_trust_input_skips_checks_only_for_exact_arrays():
    x, s, f = _accumulator()
    f.trust_input = True
    assert f.trust_input
    np.testing.assert_array_equal(f(np.ones(3)), np.ones(3))
    # anything else is still converted (or refused) as in an ordinary call
    np.testing.assert_array_equal(f([1, 2, 3]), [2.0, 3.0, 4.0])
    with pytest.raises(TypeError):
        f(np.ones((2, 2)))
    f.trust_input = False
    np.testing.assert_array_equal(f(np.zeros(3)), [2.0, 3.0, 4.0])


def test_in_borrow_and_get_value_internal_type():
    x = T.dvector("x")
    f = tg.function([tg.In(x, borrow=True, mutable=False)], x * 2)
    np.testing.assert_array_equal(f(np.ones(2)), [2.0, 2.0])
    s = tg.shared(np.arange(3.0))
    value = s.get_value(return_internal_type=True)
    assert isinstance(value, np.ndarray) and value is not s.get_value(borrow=True)
    value[0] = 9
    assert s.get_value()[0] == 0
    assert s.get_value(borrow=True, return_internal_type=True) is s.get_value(borrow=True)


def test_random_draw_rng_replays_numbers():
    r = RandomStreams(3)
    u = r.uniform((3,))
    f = tg.function([], u)
    state = u.rng.get_value()
    first = f()
    assert not np.array_equal(first, f())
    u.rng.set_value(state)
    np.testing.assert_array_equal(f(), first)
    with pytest.raises(AttributeError, match="not a random draw"):
        (u * 2).rng


def test_monitor_mode_sees_every_node():
    seen = []
    x = T.dscalar("x")
    mode = MonitorMode(pre_func=lambda i, node, fn: seen.append(("pre", i, [c[0] for c in fn.inputs])),
                       post_func=lambda i, node, fn: seen.append(("post", i, [c[0] for c in fn.outputs])))
    f = tg.function([x], 5 * x, mode=mode)
    assert f(3.0) == 15.0
    assert seen[0][0] == "pre" and sorted(float(v) for v in seen[0][2]) == [3.0, 5.0]
    assert seen[-1] == ("post", 0, [15.0])


def test_monitor_mode_excluding_fusion_runs_nodes_one_by_one():
    nodes = []
    x = T.dscalar("x")
    mode = MonitorMode(post_func=lambda i, node, fn: nodes.append(node.op.name))
    tg.function([x], T.log(x) * x, mode=mode)(2.0)
    fused = list(nodes)
    nodes.clear()
    tg.function([x], T.log(x) * x,
                mode=mode.excluding("local_elemwise_fusion", "inplace"))(2.0)
    assert len(fused) == 1 and sorted(nodes) == ["log", "mul"]


def test_nan_guard_names_the_node():
    x = T.dscalar("x")
    f = tg.function([x], T.log(x) * x, mode=NanGuardMode())
    assert f(2.0) == pytest.approx(2 * np.log(2.0))
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match="NaN detected.*node 0"):
        f(0.0)
    g = tg.function([x], x * 1e11, mode=NanGuardMode(big_is_error=True))
    with pytest.raises(AssertionError, match="big value"):
        g(1.0)
    h = tg.function([x], x * np.inf, mode=NanGuardMode(nan_is_error=False, inf_is_error=False,
                                                       big_is_error=False))
    assert h(1.0) == np.inf


def test_mode_tags_are_checked():
    assert Mode().excluding("inplace").excluded == {"inplace"}
    with pytest.raises(ValueError, match="unknown rewrite tags"):
        Mode().excluding("constant_folding_everything")
    with pytest.raises(ValueError, match="unknown rewrite tags"):
        Mode().including("inplace")


def test_function_with_a_monitor_pickles_without_it():
    x = T.dscalar("x")
    f = tg.function([x], x + 1, mode=NanGuardMode())
    g = pickle.loads(pickle.dumps(f))
    assert g(1.0) == 2.0


def test_function_with_monitor_hooks_pickles_without_them():
    seen = []
    x = T.dscalar("x")
    f = tg.function([x], x + 1, mode=MonitorMode(post_func=lambda i, n, fn: seen.append(i)))
    f(1.0)
    g = pickle.loads(pickle.dumps(f))
    assert g(1.0) == 2.0 and seen == [0]
    assert g.copy()(2.0) == 3.0 and seen == [0]


def test_copy_without_updates_keeps_an_input_only_the_updates_used():
    # Theano's tutorial: ``accumulator.copy(delete_updates=True)(9000)``
    s = tg.shared(0)
    inc = T.iscalar("inc")
    f = tg.function([inc], s, updates=[(s, s + inc)])
    f(10)
    null = f.copy(delete_updates=True)
    assert null(9000) == 10 and s.get_value() == 10


def test_rng_value_reseeds_and_restores_like_a_random_state():
    r = RandomStreams(3)
    u = r.uniform((3,))
    f = tg.function([], u)
    rng_val = u.rng.get_value(borrow=True)
    rng_val.seed(89234)
    u.rng.set_value(rng_val, borrow=True)
    first = f()
    saved = u.rng.get_value().get_state()
    second = f()
    rng_val = u.rng.get_value(borrow=True)
    rng_val.seed(89234)
    u.rng.set_value(rng_val, borrow=True)
    np.testing.assert_array_equal(f(), first)
    rng = u.rng.get_value()
    rng.set_state(saved)
    u.rng.set_value(rng)
    np.testing.assert_array_equal(f(), second)
    assert not np.array_equal(first, second)
    with pytest.raises(ValueError, match="get_state"):
        rng.set_state(np.zeros(5))
    assert type(u.rng.get_value(borrow=True).view(np.ndarray)) is np.ndarray
