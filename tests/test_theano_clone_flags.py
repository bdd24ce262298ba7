"""Theano's ``theano.clone``, ``change_flags``, ``OrderedUpdates``,
``Param`` and ``shared_constructor`` (issue 17)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.trace import ancestors


def test_clone_replaces_and_copies_every_node():
    x, y = T.dscalars("x", "y")
    z = T.exp(x) * 2 + 1
    z2 = tg.clone(z, replace={x: y})
    assert z2.eval({y: 0.5}) == pytest.approx(np.exp(0.5) * 2 + 1)
    assert x not in ancestors([z2]) and y in ancestors([z2])
    same = tg.clone(z)
    assert same is not z and same.owner is not z.owner
    assert x in ancestors([same])                       # share_inputs=True
    assert same.eval({x: 1.0}) == z.eval({x: 1.0})


def test_clone_of_a_list_and_pairs():
    x, y = T.dvectors("x", "y")
    a, b = x.sum(), (x ** 2).sum()
    out = tg.clone([a, b], replace=[(x, y)])
    assert isinstance(out, list) and len(out) == 2
    assert out[1].eval({y: np.array([1.0, 2.0])}) == 5.0


def test_clone_strict_refuses_another_type():
    x, i = T.dvector("x"), T.lvector("i")
    z = x * 2
    with pytest.raises(TypeError, match="strict=False"):
        tg.clone(z, replace={x: i})
    z2 = tg.clone(z, replace={x: i}, strict=False)
    assert z2.dtype == "float64"   # the constant 2 was made float64 with x
    np.testing.assert_array_equal(z2.eval({i: np.array([1, 2])}), [2, 4])


def test_clone_share_inputs_false_makes_new_inputs_keeps_shared():
    x = T.dmatrix("x")
    w = tg.shared(np.ones(3), name="w")
    z = T.dot(x, w)
    z2 = tg.clone(z, share_inputs=False)
    inputs = [v for v in ancestors([z2]) if v.owner is None]
    assert x not in inputs and w in inputs
    (x2,) = [v for v in inputs if v.name == "x"]
    np.testing.assert_allclose(z2.eval({x2: np.ones((2, 3))}), [3.0, 3.0])


def test_change_flags_context_and_decorator_restore():
    before = tg.config.floatX
    with tg.change_flags(floatX="float32"):
        assert tg.config.floatX == "float32" and T.scalar().dtype == "float32"
    assert tg.config.floatX == before

    @tg.config.change_flags({"floatX": "float32"}, optimizer="fast_compile")
    def inner():
        return tg.config.floatX, tg.config.optimizer
    assert inner() == ("float32", "fast_compile")
    assert tg.config.floatX == before and tg.config.optimizer == "fast_run"
    with pytest.raises(RuntimeError):
        with tg.change_flags(floatX="float32"):
            raise RuntimeError
    assert tg.config.floatX == before
    with pytest.raises(AttributeError, match="no setting"):
        with tg.change_flags(floatX="float32", no_such_flag=1):
            pass
    assert tg.config.floatX == before                   # undone on the failure too


def test_ordered_updates():
    a, b = tg.shared(0.0, name="a"), tg.shared(1.0, name="b")
    ups = tg.OrderedUpdates()
    ups[b] = b * 2
    ups[a] = a + 1
    assert list(ups) == [b, a]
    f = tg.function([], [], updates=ups)
    f()
    assert a.get_value() == 1.0 and b.get_value() == 2.0
    with pytest.raises(TypeError, match="shared"):
        ups[T.dscalar()] = 1
    other = tg.OrderedUpdates({a: a - 1})
    with pytest.raises(KeyError, match="collision"):
        ups + other
    assert list(ups + tg.OrderedUpdates({tg.shared(2.0): 3.0})) [:2] == [b, a]


def test_param_is_in_with_default():
    x, y = T.dscalars("x", "y")
    f = tg.function([x, tg.Param(y, default=2.0, name="yy")], x * y)
    assert f(3.0) == 6.0 and f(3.0, yy=4.0) == 12.0
    assert isinstance(tg.Param(x), tg.In)
    from tracegrad.compile.io import Param
    assert Param is tg.Param


def test_shared_constructor_registers_and_removes():
    class Box:
        def __init__(self, v):
            self.v = v

    @tg.shared_constructor
    def box_shared(value, name=None, borrow=False, **kwargs):
        if not isinstance(value, Box):
            raise TypeError("not a Box")
        return tg.shared(np.asarray(value.v, dtype="float32"), name=name)

    try:
        s = tg.shared(Box([1, 2]), name="box")
        assert s.dtype == "float32" and s.name == "box"
        assert tg.shared(np.zeros(2)).dtype == "float64"   # others fall through
    finally:
        tg.shared_constructor(box_shared, remove=True)
    with pytest.raises(TypeError):
        tg.shared(Box([1]))
