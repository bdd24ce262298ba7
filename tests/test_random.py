"""``RandomStreams``: shapes, ranges, reproducibility, per-call advance,
``no_default_updates``, symbolic sizes, moments, draws inside ``scan``, and
the rewriter leaving draws alone."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.ops.random import RandomVariable
from tracegrad.random import RandomStreams
from tracegrad.tensor.shared_randomstreams import RandomStreams as TheanoPathStreams


def test_theano_import_path_is_the_same_class():
    assert TheanoPathStreams is RandomStreams


def test_shapes_and_dtypes():
    srng = RandomStreams(seed=1)
    draws = {
        "uniform": srng.uniform((2, 3)),
        "normal": srng.normal((4,)),
        "binomial": srng.binomial((3, 2), n=5, p=0.3),
        "integers": srng.integers((5,), 2, 9),
        "choice": srng.choice((6,), a=4),
        "permutation": srng.permutation(n=7),
        "permutations": srng.permutation((3,), n=4),
        "f32": srng.uniform((2,), dtype="float32"),
    }
    f = tg.function([], list(draws.values()))
    values = dict(zip(draws, f()))
    expected = {"uniform": (2, 3), "normal": (4,), "binomial": (3, 2), "integers": (5,),
                "choice": (6,), "permutation": (7,), "permutations": (3, 4), "f32": (2,)}
    for name, shape in expected.items():
        assert values[name].shape == shape, name
        assert draws[name].type.shape == shape, name   # known while building, too
    assert values["uniform"].dtype == tg.config.floatX
    assert values["binomial"].dtype == "int64" and values["integers"].dtype == "int64"
    assert values["f32"].dtype == "float32" and draws["f32"].dtype == "float32"


def test_size_from_parameters_when_not_given():
    srng = RandomStreams(seed=2)
    low = T.vector("low")
    u = srng.uniform(low=low, high=low + 1)
    assert u.ndim == 1
    lv = np.asarray([0.0, 10.0, 100.0])
    got = tg.function([low], u)(lv)
    assert got.shape == (3,)
    assert np.all((got >= lv) & (got < lv + 1))


def test_ranges():
    srng = RandomStreams(seed=3)
    f = tg.function([], [srng.uniform((1000,), low=-2.0, high=3.0),
                         srng.integers((1000,), 2, 5),
                         srng.binomial((1000,), n=4, p=0.5),
                         srng.choice((1000,), a=np.asarray([1.5, 2.5, 7.0])),
                         srng.permutation((5,), n=10)])
    u, ints, b, c, perms = f()
    assert u.min() >= -2 and u.max() < 3
    assert set(np.unique(ints)) == {2, 3, 4}
    assert b.min() >= 0 and b.max() <= 4
    assert set(np.unique(c)) <= {1.5, 2.5, 7.0}
    for row in perms:
        np.testing.assert_array_equal(np.sort(row), np.arange(10))


def test_choice_without_replacement_and_with_probabilities():
    srng = RandomStreams(seed=4)
    f = tg.function([], [srng.choice((5,), a=5, replace=False),
                         srng.choice((2000,), a=3, p=np.asarray([0.0, 0.2, 0.8]))])
    once, weighted = f()
    np.testing.assert_array_equal(np.sort(once), np.arange(5))
    assert (weighted != 0).all()
    assert abs((weighted == 2).mean() - 0.8) < 0.05


def test_reproducibility_and_seed_reset():
    a, b = RandomStreams(seed=234), RandomStreams(seed=234)
    fa = tg.function([], a.normal((3,)))
    fb = tg.function([], b.normal((3,)))
    first = fa()
    np.testing.assert_array_equal(first, fb())
    second = fa()
    assert not np.array_equal(first, second)
    a.seed(234)
    np.testing.assert_array_equal(fa(), first)
    a.seed(235)
    assert not np.array_equal(fa(), first)
    other = RandomStreams(seed=5)
    assert not np.array_equal(tg.function([], other.normal((3,)))(), first)


def test_each_call_advances_and_no_default_updates_does_not():
    srng = RandomStreams(seed=234)
    u = srng.uniform((2, 2))
    f = tg.function([], u)
    g = tg.function([], u, no_default_updates=True)
    f1, f2 = f(), f()
    assert not np.array_equal(f1, f2)
    g1, g2 = g(), g()
    np.testing.assert_array_equal(g1, g2)
    # g reads the state f left (the numbers f would draw next) and leaves it.
    f3 = f()
    np.testing.assert_array_equal(g1, f3)
    state, _ = srng.updates()[0]
    before = state.get_value()
    g()
    np.testing.assert_array_equal(state.get_value(), before)
    f()
    assert state.get_value()[1] == before[1] + 1


def test_one_draw_used_twice_is_one_value_and_two_draws_differ():
    srng = RandomStreams(seed=6)
    u = srng.uniform((4,))
    v = srng.uniform((4,))
    f = tg.function([], [u + u - 2 * u, u - v])
    zero, diff = f()
    np.testing.assert_array_equal(zero, 0)
    assert np.all(diff != 0)


def test_symbolic_size():
    srng = RandomStreams(seed=7)
    x = T.matrix("x")
    n = T.lscalar("n")
    by_shape = srng.normal(x.shape)
    by_tuple = srng.uniform((n, 3))
    by_scalar = srng.integers(n, 0, 10)
    assert by_tuple.type.shape == (None, 3)
    f = tg.function([x, n], [by_shape, by_tuple, by_scalar])
    a, b, c = f(np.zeros((2, 5)), 4)
    assert a.shape == (2, 5) and b.shape == (4, 3) and c.shape == (4,)
    a, b, c = f(np.zeros((1, 1)), 0)
    assert a.shape == (1, 1) and b.shape == (0, 3) and c.shape == (0,)


def test_moments_of_many_draws():
    srng = RandomStreams(seed=8)
    n = 100_000
    f = tg.function([], [srng.uniform((n,), low=1.0, high=3.0),
                         srng.normal((n,), avg=-1.0, std=2.0),
                         srng.binomial((n,), n=10, p=0.3),
                         srng.integers((n,), 0, 10)])
    u, z, b, k = f()
    # Tolerances: about 5 standard errors of each estimate.
    assert abs(u.mean() - 2.0) < 5 * np.sqrt(4 / 12 / n)
    assert abs(u.var() - 4 / 12) < 0.01
    assert abs(z.mean() + 1.0) < 5 * 2 / np.sqrt(n)
    assert abs(z.std() - 2.0) < 0.025
    assert abs((((z + 1) / 2) ** 3).mean()) < 5 * np.sqrt(15 / n)   # skewness 0
    assert abs(b.mean() - 3.0) < 5 * np.sqrt(2.1 / n)
    assert abs(b.var() - 2.1) < 0.05
    assert abs(k.mean() - 4.5) < 5 * np.sqrt(8.25 / n)
    counts = np.bincount(k, minlength=10) / n
    assert np.all(np.abs(counts - 0.1) < 0.006)


def test_draws_inside_scan_advance_every_step_and_every_call():
    srng = RandomStreams(seed=9)
    vals, updates = tg.scan(lambda: srng.uniform(()), n_steps=6)
    assert len(updates) == 1
    f = tg.function([], vals, updates=updates)
    first, second = f(), f()
    assert len(np.unique(first)) == 6
    assert not np.any(np.isin(second, first))
    # Re-seeding the stream resets the state used inside the loop.
    srng.seed(9)
    again = tg.function([], vals, updates=updates)()
    np.testing.assert_array_equal(again, first)


def test_draws_are_neither_folded_nor_merged():
    from tracegrad.shared import shared
    state = T.constant(np.asarray([11, 0], dtype=np.int64))
    op = RandomVariable("uniform", "float64", True)
    size = T.constant(np.asarray([3], dtype=np.int64))
    _, a = op(state, size, T.constant(0.0), T.constant(1.0))
    _, b = op(state, size, T.constant(0.0), T.constant(1.0))
    f = tg.function([], [a, b])
    kinds = [type(n.op) for n in f.maker.fgraph.toposort()]
    assert kinds.count(RandomVariable) == 2
    x, y = f()
    # Same state, same numbers: a draw is a pure function of its state.
    np.testing.assert_array_equal(x, y)
    s = shared(np.asarray([11, 0], dtype=np.int64))
    _, c = op(s, size, T.constant(0.0), T.constant(1.0))
    np.testing.assert_array_equal(tg.function([], c)(), x)


def test_bad_arguments():
    srng = RandomStreams(seed=10)
    with pytest.raises(ValueError):
        RandomStreams(seed=-1)
    with pytest.raises(TypeError):
        srng.uniform(T.matrix("m"))
    with pytest.raises(TypeError):
        srng.uniform((2.5, 3))
    with pytest.raises(ValueError, match="broadcast"):
        srng.uniform((2,), low=T.constant(np.zeros(3)))
    low = T.vector("low")
    f = tg.function([low], srng.uniform((2,), low=low))
    assert f(np.zeros(1)).shape == (2,)
    with pytest.raises(ValueError, match="do not broadcast to size"):
        f(np.zeros(3))
