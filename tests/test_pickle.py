"""Pickling and deep-copying graphs, shared variables and compiled functions:
every protocol, without recursion proportional to the graph's depth."""
import copy
import io
import pickle
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.random import RandomStreams
from tracegrad.trace import toposort

PROTOCOLS = list(range(pickle.HIGHEST_PROTOCOL + 1))
DEEP = 1000
MEDIUM = 300     # still far deeper than shallow_stack allows


def _stack_depth():
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


@contextmanager
def shallow_stack(room=120):
    """Allow only ``room`` more Python frames: far fewer than a deep graph
    has levels, so anything recursing along the graph raises."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + room)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def round_trip(obj, protocol):
    with shallow_stack():
        data = pickle.dumps(obj, protocol=protocol)
        return pickle.loads(data)


def chain(x, n):
    """``n`` nodes deep."""
    out = x
    for k in range(n):
        out = T.sin(out) if k % 2 else T.cos(out)
    return out


# ------------------------------------------------------------ variables
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deep_chain_round_trips(protocol):
    x = T.dscalar("x")
    out = chain(x, DEEP)
    x2, out2 = round_trip((x, out), protocol)
    assert x2 is not x and x2.name == "x"
    assert len(toposort([out2])) == len(toposort([out]))
    assert out2.eval({x2: 0.5}) == out.eval({x: 0.5})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_subexpressions_stay_shared(protocol):
    x = T.dvector("x")
    deep = chain(x, MEDIUM)          # a long common stem
    a = T.exp(deep)
    b, c = a * 2, a + 1
    b2, c2, a2, x2 = round_trip([b, c, a, x], protocol)
    assert b2.owner.inputs[0] is a2 and c2.owner.inputs[0] is a2
    stem2 = a2.owner.inputs[0]
    assert x2 in [v for v in _graph_inputs(stem2)]
    assert len(toposort([b2, c2])) == len(toposort([b, c]))


def _graph_inputs(var):
    from tracegrad.trace import graph_inputs
    return graph_inputs([var])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_variable_round_trips(protocol):
    s = tg.shared(np.arange(3.0), name="w")
    s2 = round_trip(s, protocol)
    assert s2 is not s and s2.name == "w" and s2.type == s.type
    np.testing.assert_array_equal(s2.get_value(), [0.0, 1.0, 2.0])
    s2.set_value(np.zeros(3))
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])


def test_deepcopy_of_a_deep_chain():
    x = T.dscalar("x")
    out = chain(x, DEEP)
    with shallow_stack(200):  # copy.deepcopy spends about 3 frames a level
        x2, out2 = copy.deepcopy((x, out))
    assert out2.eval({x2: 2.0}) == out.eval({x: 2.0})
    assert not set(toposort([out2])) & set(toposort([out]))


def test_failed_pickle_does_not_mislead_the_next_one():
    x = T.dscalar("x")
    middle = chain(x, DEEP // 2)
    middle.tag = lambda: None  # not picklable: the first pickle fails halfway
    top = chain(middle, DEEP // 2)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(top)
    middle.tag = None
    x2, top2 = round_trip((x, top), pickle.HIGHEST_PROTOCOL)
    assert top2.eval({x2: 1.0}) == top.eval({x: 1.0})


def test_a_pickler_kept_alive_does_not_mislead_another():
    x = T.dscalar("x")
    lower = chain(x, DEEP // 2)
    top = chain(lower, DEEP // 2)
    kept = pickle.Pickler(io.BytesIO())
    with shallow_stack():
        kept.dump(lower)         # its memo (alive) holds the lower half
    x2, top2 = round_trip((x, top), pickle.HIGHEST_PROTOCOL)
    assert top2.eval({x2: 1.0}) == top.eval({x: 1.0})


def test_pickling_every_variable_of_a_graph_costs_linear_size():
    x = T.dscalar("x")
    variables = [x]
    for _ in range(DEEP):
        variables.append(variables[-1] * 2.0)
    last_only = len(pickle.dumps(variables[-1]))
    every = pickle.dumps(variables)   # each one's ancestors were saved before it
    assert len(every) < 2 * last_only
    loaded = pickle.loads(every)
    assert all(b.owner.inputs[0] is a for a, b in zip(loaded, loaded[1:]))


def test_copy_copy_is_shallow():
    x = T.dscalar("x")
    y = x + 1
    y2 = copy.copy(y)
    assert y2 is not y and y2.owner is y.owner and y2.type == y.type


# ------------------------------------------------------------ functions
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_function_with_updates_round_trips(protocol):
    state = tg.shared(np.zeros(3), name="state")
    x = T.dvector("x")
    f = tg.function([x], chain(state, 200) + x, updates={state: state + x})
    f(np.ones(3))
    g = round_trip(f, protocol)
    state2 = g.maker.fgraph.update_targets[0]
    assert state2 is not state
    buffer = state2.get_value(borrow=True)
    np.testing.assert_array_equal(g(np.ones(3)), f(np.ones(3)))
    # g updated its own copy, in place; f only its own
    np.testing.assert_array_equal(buffer, [2.0, 2.0, 2.0])
    assert state2.get_value(borrow=True) is buffer
    np.testing.assert_array_equal(state.get_value(), [2.0, 2.0, 2.0])
    g(np.ones(3))
    np.testing.assert_array_equal(state.get_value(), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_function_and_its_shared_variable_stay_one_object(protocol):
    s = tg.shared(1.0, name="s")
    f = tg.function([], s * 2, updates={s: s + 1})
    f2, s2 = round_trip((f, s), protocol)
    assert f2.maker.fgraph.update_targets[0] is s2
    assert f2() == 2.0 and s2.get_value() == 2.0 and s.get_value() == 1.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_scan_gradient_function_round_trips(protocol):
    xs = T.dvector("xs")
    # a loop body deeper than the stack allows, and its gradient's body
    out, _ = tg.scan(lambda v, acc: chain(T.tanh(acc * 0.5 + v) * v, 60), sequences=xs,
                     outputs_info=T.constant(0.0))
    f = tg.function([xs], [out, tg.grad(out.sum(), xs)])
    g = round_trip(f, protocol)
    value = np.linspace(-1.0, 1.0, 7)
    for got, expected in zip(g(value), f(value)):
        np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_random_function_draws_the_same_numbers(protocol):
    srng = RandomStreams(seed=7)
    f = tg.function([], [srng.uniform((3,)), srng.normal((2,))])
    f()
    g = round_trip(f, protocol)
    for _ in range(2):
        for got, expected in zip(g(), f()):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_random_streams_round_trip(protocol):
    srng = RandomStreams(seed=3)
    u = srng.uniform((2,))
    srng2, u2 = round_trip((srng, u), protocol)
    assert srng2.state_updates[0][1] is u2.owner.outputs[0]
    np.testing.assert_array_equal(tg.function([], u2)(), tg.function([], u)())


def test_deepcopy_of_a_function_owns_its_shared_variables():
    s = tg.shared(np.zeros(2))
    f = tg.function([], chain(s, 200), updates={s: s + 1})
    f()
    with shallow_stack(200):
        g = copy.deepcopy(f)
    np.testing.assert_array_equal(g(), f())
    np.testing.assert_array_equal(g(), f())
    copy_of_s = g.maker.fgraph.update_targets[0]
    assert copy_of_s is not s
    np.testing.assert_array_equal(s.get_value(), [3.0, 3.0])   # f's three calls
    np.testing.assert_array_equal(copy_of_s.get_value(), [3.0, 3.0])  # 1 + g's two


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_function_graph_round_trips(protocol):
    x = T.dscalar("x")
    f = tg.function([x], chain(x, MEDIUM), mode="None")
    fgraph, out = round_trip((f.maker.fgraph, f.maker.fgraph.outputs[0]), protocol)
    assert fgraph.outputs[0] is out
    assert len(fgraph.toposort()) == len(f.maker.fgraph.toposort())


def test_every_op_of_the_op_tables_pickles_compiled():
    """Each op, and whatever its compiled form holds (fused kernels, in-place
    variants...), pickles."""
    import importlib
    from optable import symbolic_like
    rng = np.random.default_rng(0)
    count = 0
    for module in ("test_ops_elemwise", "test_ops_index", "test_ops_linalg",
                   "test_ops_nnet", "test_ops_reduce", "test_ops_shape"):
        for case in importlib.import_module(module).CASES:
            arrays = case.inputs(rng, case.dtypes[0], case.shapes[0])
            inputs = [symbolic_like(a, f"i{k}") for k, a in enumerate(arrays)]
            f = tg.function(inputs, case.sym(*inputs), on_unused_input="ignore")
            expected = f(*arrays)
            # (protocol 0 needs the most: every slotted class must say how)
            g = pickle.loads(pickle.dumps(f, protocol=0))
            np.testing.assert_array_equal(g(*arrays), expected, err_msg=case.name)
            count += 1
    assert count > 200

# Made by tracegrad before graphs pickled flat (commit 0ec174c), protocol 2:
#   s = tg.shared(np.arange(3.0), name="s"); x = T.dvector("x")
#   f = tg.function([x], T.exp(x) * s, updates={s: s + x}, mode="None")
#   y = T.exp(x) + 1; zlib.compress(pickle.dumps((f, y, x), protocol=2))
OLD_PICKLE = (
    "eNqFVfl/1EQU315Awy2Hgqi1KqaKW8GKiMhhhQqBqEvFeKzrJJl2YrNJvsmkhxpl1W27iop4433fire/+4fp"
    "zGS3XUQ/5ofdmcy87/u+977v5WSnw2Pi0PGYuEUnrEaeT4txGnCvSrVDaeBwLww0FP7l1ljrtHXtGJmgsYaO"
    "gRo6M3Tp1pJCoTAmbCKG7gw9+QufkkmaYEkZS/U2VE6DJIyLkyT2iO1TbVTtT7S2WCZQe80Mmm51CxQ+E1Es"
    "v9Bevm/ajsolVgi7lRlW6VaPMHOV3WprqWTmh4TvHMIadZIwIk7WmnVcpBwEpEqxzkxtdRpOBTTGelNtvMCl"
    "09hgsnVWh9hOY6PVJSmRcVxsprO4xG7jJXBj6mrH1d9iOJsErc0ZLtUVFZs4EzRwsaXNsPlOG6e80lrjMuXJ"
    "iVJcXscVJfRZvXIfBpx4kuGVF3oebh1q6BdOrxI5vFqFMUn8lOIaJ0ir0Uyx4oQxLVZTn3skjsmMVompwE14"
    "nDpcw9b8mha4+SmuNQp16I4wc6mTaDSQCw0DKiU2rstrTbgXbMf1s9hWwg1zKJYwqBsdRlcdNzYBVUU0bLc6"
    "ZUl2YUdjfg43lTCkG10Kaw9uNk3zyF/iUT9GgWOn3WAD1qbCP58/z+1rrvbjFibc7irhVo7ddjKL22xrlVQA"
    "HSMiyEoauYRT7DHTDLfrbDmTQtmbYZ/OVrM1TAphP5P1Z+tNtlDrBAeYqvEdNrWWSZlUvCBKeYJho1NlNRBp"
    "SHBnGQf1dnmHUVKkPq1OeQnVDrYWOCScjmS4S5UxcYhP4koY4fB/WcbhVMWeqUhxajiixECnIxh1HC3hWGKX"
    "YRoFUsbdOlumIronw72LEZVURKbJcZy0945cacfDNHbo0dAhec+PqnwN8mo0WJ0IfXdHMZrBfUa3intPNXRT"
    "n+7FiTncX4PF8YDOZDQPZniIHWY5NyEnPFxHuYRHJLeKbnQaHbSMR1v0SAZ7kZ6zQM8lbJQJX0zA0xrGOMZz"
    "eJbBW4AnrovH6pgowZfwVSmtgoAPWvBhhmgRHgvwcRt8UgPnSKlqxDDlqpqTZUwJARrdVCUhF0uFk1h0Y4Lp"
    "MmbYZpIqjTfr/3gZT+hso9kQ8E8SJgCyBlEXEi8Y9ymemldzReSN4mm1NMOA4qQgZa2QwvSSyCd5bVGz+mWS"
    "00Du3G19zZnr9hHet1CM3UN78QzbwvoU9SgOx8QVPNuw1svc+L7QiiJXccX4ckjC8VzuqolWkUMe9ZF9p4b7"
    "l68RUdp1zJYwx+SsnRdzotHqi+czvLCYx1PNvrhAQQeiyBej4UVh8ZIwf1lXTS30fJoxJhL0iq6gz4izV1vQ"
    "r2V4fRH6jSY0kxhvintv6ew0G5HGbyvbs+LdO9J2Zasv2ca8I9+1VdbfY2eaaVdyxvuq0j2y0h/U8KG4+JHN"
    "NhgF4Si3+9j+36/QsJyDJBBj8BNB4VNB4bP8KzRFyQQ+b6i1UAjBF2wrU5PxSybG3VclfC00OcCG5LjqbR9T"
    "+EaOp29L+I7je7uZix8ynBO5OO/r9CNbO3DeHGrS/smmMtyf2TxhbTH+UsOv4vS382P83WZn5/BH8W/Wt5+k"
)


def test_pickles_of_the_previous_format_still_load():
    import base64
    import zlib
    f, y, x = pickle.loads(zlib.decompress(base64.b64decode(OLD_PICKLE)))
    value = np.array([0.0, 1.0, -1.0])
    np.testing.assert_allclose(f(value), np.exp(value) * [0.0, 1.0, 2.0])
    np.testing.assert_allclose(f(value), np.exp(value) * ([0.0, 1.0, 2.0] + value))
    assert y.owner.inputs[0].owner.inputs[0] is x
    np.testing.assert_allclose(y.eval({x: value}), np.exp(value) + 1)


# ------------------------------------------------------------ property
_OPS = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b,
        lambda a, b: T.tanh(a)]


@settings(max_examples=30)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10 ** 6),
                          st.integers(0, 10 ** 6)), min_size=1, max_size=25),
       st.sampled_from(PROTOCOLS + ["deepcopy"]), st.randoms(use_true_random=False))
def test_random_dags_round_trip_with_their_sharing(steps, protocol, rng):
    """Any DAG, its variables pickled (or deep-copied) in any order: each
    loaded node reads the loaded counterparts of what the original read, and
    computes the same."""
    pool = [T.dscalar("a"), T.dscalar("b")]
    for op, i, j in steps:
        pool.append(_OPS[op](pool[i % len(pool)], pool[j % len(pool)]))
    order = list(range(len(pool)))
    rng.shuffle(order)
    shuffled = [pool[k] for k in order]
    if protocol == "deepcopy":
        loaded = copy.deepcopy(shuffled)
    else:
        loaded = pickle.loads(pickle.dumps(shuffled, protocol=protocol))
    new = dict(zip(order, loaded))
    position = {var: k for k, var in enumerate(pool)}
    for k, var in enumerate(pool):
        assert new[k] is not var
        if var.owner is None:
            assert new[k].owner is None and new[k].name == var.name
            continue
        expected = [new[position[v]] for v in var.owner.inputs]
        assert len(new[k].owner.inputs) == len(expected)
        assert all(a is b for a, b in zip(new[k].owner.inputs, expected))
        assert new[k].owner.op == var.owner.op
    values = {pool[0]: 0.3, pool[1]: -0.7}
    loaded_values = {new[0]: 0.3, new[1]: -0.7}
    for k in range(2, len(pool)):
        assert new[k].eval(loaded_values) == pool[k].eval(values)
