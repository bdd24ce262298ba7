"""Theano module paths and names the tutorials import (issue 17):
``sandbox.rng_mrg.MRG_RandomStreams``, ``scalar.upcast``, ``compile.io``,
``scan_module.until``, ``tg.dot``, ``printing.Print``/``pprint``,
``T.scalars('xyz')`` and Theano's softmax shape."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.sandbox.rng_mrg import MRG_RandomStreams


# ------------------------------------------------------------ MRG streams
def test_mrg_uniform_dtype_follows_upcast_of_floatX_and_bounds():
    r = MRG_RandomStreams(1)
    assert r.uniform((3,)).dtype == tg.config.floatX
    assert r.uniform((3,), low=np.float32(0), high=np.float32(1)).dtype == "float64"
    assert r.uniform((3,), dtype="float32").dtype == "float32"
    values = tg.function([], r.uniform((5000,), low=-2.0, high=3.0))()
    assert values.min() >= -2.0 and values.max() < 3.0
    assert abs(values.mean() - 0.5) < 0.1


def test_mrg_same_seed_same_numbers_and_each_call_draws_anew():
    draws = []
    for _ in range(2):
        r = MRG_RandomStreams(seed=42)
        f = tg.function([], r.normal((4,)))
        draws.append((f(), f()))
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    assert not np.array_equal(draws[0][0], draws[0][1])


def test_mrg_seed_resets_every_stream():
    r = MRG_RandomStreams(7)
    f = tg.function([], r.uniform((3,)))
    first = f()
    f()
    r.seed(7)
    np.testing.assert_array_equal(f(), first)


def test_mrg_normal_moments_and_truncation():
    r = MRG_RandomStreams(3)
    plain, trunc = tg.function([], [r.normal((20000,), avg=1.0, std=2.0),
                                    r.normal((20000,), truncate=True)])()
    assert abs(plain.mean() - 1.0) < 0.1 and abs(plain.std() - 2.0) < 0.1
    assert np.abs(trunc).max() <= 2.0
    # the standard normal truncated to [-2, 2] has standard deviation 0.8796
    assert abs(trunc.std() - 0.8796) < 0.02


def test_mrg_binomial_is_bernoulli_with_int64_default():
    r = MRG_RandomStreams(4)
    p = T.dvector("p")
    b = r.binomial(size=p.shape, p=p)
    assert b.dtype == "int64"
    out = tg.function([p], b)(np.r_[np.zeros(1000), np.ones(1000), np.full(4000, 0.3)])
    assert set(np.unique(out)) <= {0, 1}
    assert out[:1000].sum() == 0 and out[1000:2000].sum() == 1000
    assert abs(out[2000:].mean() - 0.3) < 0.03
    assert r.binomial((3,), p=0.5, dtype="float32").dtype == "float32"


def test_mrg_multinomial_gives_one_hot_rows_with_the_right_frequencies():
    r = MRG_RandomStreams(5)
    pvals = T.dmatrix("pvals")
    m = r.multinomial(pvals=pvals)
    p = np.tile([0.1, 0.6, 0.3], (6000, 1))
    out = tg.function([pvals], m)(p)
    assert out.dtype == np.int64 and out.shape == p.shape
    assert (out.sum(axis=1) == 1).all()
    np.testing.assert_allclose(out.mean(axis=0), [0.1, 0.6, 0.3], atol=0.03)
    counts = tg.function([pvals], r.multinomial(n=5, pvals=pvals))(p[:10])
    assert (counts.sum(axis=1) == 5).all()


def test_mrg_multinomial_errors_name_the_problem():
    r = MRG_RandomStreams(5)
    with pytest.raises(TypeError, match="pvals"):
        r.multinomial()
    with pytest.raises(NotImplementedError, match="matrix"):
        r.multinomial(pvals=np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="size"):
        r.multinomial(size=(3,), pvals=np.full((3, 2), 0.5))


def test_mrg_choice_without_replacement_per_row():
    r = MRG_RandomStreams(6)
    p = np.tile([0.5, 0.3, 0.2], (5000, 1))
    out = tg.function([], r.choice(size=2, p=p, replace=False))()
    assert out.shape == (5000, 2) and out.dtype == np.int64
    assert (out[:, 0] != out[:, 1]).all()
    np.testing.assert_allclose(np.bincount(out[:, 0], minlength=3) / 5000,
                               [0.5, 0.3, 0.2], atol=0.03)
    with pytest.raises(NotImplementedError, match="replace=False"):
        r.choice(size=2, p=p, replace=True)


def test_mrg_draws_advance_inside_scan():
    r = MRG_RandomStreams(8)
    u = r.uniform((2,))
    out, updates = tg.scan(lambda: u, n_steps=3)
    values = tg.function([], out, updates=updates)()
    assert values.shape == (3, 2) and len({tuple(v) for v in values}) == 3


# ------------------------------------------------------------ modules and names
def test_scalar_upcast_and_types():
    from tracegrad import scalar
    assert scalar.upcast("float32", "int64") == "float64"
    assert scalar.upcast("float32", "int16") == "float32"
    assert scalar.upcast("int8", "uint8") == "int16"
    x = scalar.float32("x")
    assert x.dtype == "float32" and x.ndim == 0
    assert scalar.as_scalar(2.0).ndim == 0
    with pytest.raises(TypeError, match="0-d"):
        scalar.as_scalar(np.zeros(2))
    assert "float64" in scalar.float_types and "int32" in scalar.discrete_types


def test_compile_io_scan_module_and_dot_paths():
    from tracegrad.compile.io import In, Out
    from tracegrad.scan_module import scan, until
    assert In is tg.In and Out is tg.Out and until is tg.until and scan is tg.scan
    a, b = T.dmatrices("a", "b")
    f = tg.function([a, b], tg.dot(a, b))
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(x, x.T), x @ x.T)


def test_print_prints_at_run_time_and_passes_the_gradient(capsys):
    from tracegrad.printing import Print
    x = T.dvector("x")
    y = Print("x is")(x)
    g = tg.function([x], [y * 2, tg.grad(T.sum(Print("sq", attrs=("shape", "sum"))(x) ** 2), x)])
    out, grad = g([1.0, 2.0])
    printed = capsys.readouterr().out
    assert "x is __str__ = [1. 2.]" in printed
    assert "sq shape = (2,)" in printed and "sq sum = 3.0" in printed
    np.testing.assert_array_equal(out, [2.0, 4.0])
    np.testing.assert_array_equal(grad, [2.0, 4.0])
    # never constant-folded: a Print of a constant prints on every call
    c = tg.function([], Print("c")(T.constant(np.arange(2.0))) + 1)
    c()
    c()
    assert capsys.readouterr().out.count("c __str__") == 2
    with pytest.raises(TypeError, match="symbolic variable"):
        Print("bad")(np.zeros(2))


def test_print_calls_global_fn():
    from tracegrad.printing import Print
    seen = []
    x = T.dscalar("x")
    tg.function([x], Print("m", global_fn=lambda op, v: seen.append((op.message, float(v))))(x))(3.0)
    assert seen == [("m", 3.0)]


def test_pprint_is_pp():
    from tracegrad.printing import pp, pprint
    x = T.dscalar("x")
    assert pprint(x * 2) == pp(x * 2)


def test_plural_constructors_follow_theano():
    x, y, s = T.scalars("xys")
    assert [v.name for v in (x, y, s)] == ["x", "y", "s"]
    single = T.dmatrices("a")
    assert single.name == "a" and single.ndim == 2          # one name: one variable
    a, b = T.dmatrices("a, b")
    assert (a.name, b.name) == ("a", "b")
    assert len(T.dscalars(3)) == 3


def test_softmax_of_a_vector_is_a_row_as_in_theano():
    v = T.dvector("v")
    out = tg.function([v], [T.nnet.softmax(v), T.nnet.log_softmax(v),
                            T.nnet.softmax(v, axis=-1)])([1.0, 2.0, 3.0])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(out[0], [e / e.sum()])
    np.testing.assert_allclose(out[1], [np.log(e / e.sum())])
    np.testing.assert_allclose(out[2], e / e.sum())
    assert out[0].shape == (1, 3) and out[2].shape == (3,)
    assert T.softmax is T.nnet.softmax
