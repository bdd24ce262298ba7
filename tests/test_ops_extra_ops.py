"""Op table of Theano's ``tensor.extra_ops`` and index functions
(tracegrad/ops/extra_ops.py): forward vs NumPy per dtype and shape,
gradients and jvps vs finite differences where Theano has them."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")


def _counts(rng, dtype, shapes):
    return [rng.integers(0, 5, shapes[0]).astype("int64")] + [
        rng.uniform(-2, 2, s).astype(dtype) for s in shapes[1:]]


def _sparse(rng, dtype, shapes):
    """Arrays with zeros in them."""
    return [(rng.uniform(0.5, 2, s) * rng.integers(-1, 2, s)).astype(dtype) for s in shapes]


def _masked(rng, dtype, shapes):
    """Nonzero values and an int 0/1 mask: the zeros of ``a * m`` stay
    zeros under the finite differences' steps."""
    a = rng.uniform(0.5, 2, shapes[0]) * rng.choice([-1, 1], shapes[0])
    return [a.astype(dtype), rng.integers(0, 2, shapes[1]).astype("int64")]


def _choices(rng, dtype, shapes):
    return [rng.integers(0, 3, shapes[0]).astype("int64")] + [
        rng.uniform(-2, 2, s).astype(dtype) for s in shapes[1:]]


def _out_of_range(rng, dtype, shapes):
    return [rng.integers(-4, 7, shapes[0]).astype("int64"),
            rng.uniform(-2, 2, shapes[1]).astype(dtype)]


def _mask(rng, dtype, shapes):
    return [rng.random(shapes[0]) > 0.4, rng.uniform(-2, 2, shapes[1]).astype(dtype)]


def _ints(rng, dtype, shapes):
    return [rng.integers(0, 4, s).astype(dtype) for s in shapes]


def _flat(rng, dtype, shapes):
    return [rng.integers(0, 12, shapes[0]).astype(dtype)]


def _fill_offset_ref(k):
    def ref(a):
        out = a.copy()
        r, c = np.arange(max(-k, 0), a.shape[0]), np.arange(max(k, 0), a.shape[1])
        n = min(len(r), len(c))
        out[r[:n], c[:n]] = 5.0
        return out
    return ref


def _unique(**kw):
    def ref(x):
        out = np.unique(x, **kw)
        return out[-1].reshape(-1) if isinstance(out, tuple) else out
    return ref


CASES = [
    OpCase("bincount", T.bincount, np.bincount, [[(7,)], [(0,)]], ("int64",),
           make_inputs=_counts, grad=False),
    OpCase("bincount[minlength]", lambda x: T.bincount(x, minlength=9),
           lambda x: np.bincount(x, minlength=9), [[(7,)]], ("int64",), make_inputs=_counts,
           grad=False),
    OpCase("bincount[weights]", T.bincount, np.bincount, [[(7,), (7,)]], FLOATS,
           make_inputs=_counts),
    OpCase("unique", T.unique, np.unique, [[(3, 4)], [(0,)]], FLOATS + ("int64",),
           make_inputs=_ints, grad=False),
    OpCase("unique[index]", lambda x: T.unique(x, return_index=True)[1],
           _unique(return_index=True), [[(9,)]], ("int64",), make_inputs=_ints, grad=False),
    OpCase("unique[inverse]", lambda x: T.unique(x, return_inverse=True)[1],
           _unique(return_inverse=True), [[(3, 4)]], ("int64",), make_inputs=_ints,
           grad=False),
    OpCase("unique[counts]", lambda x: T.extra_ops.Unique(return_counts=True)(x)[1],
           _unique(return_counts=True), [[(9,)]], ("int64",), make_inputs=_ints, grad=False),
    OpCase("unique[axis]", lambda x: T.unique(x, axis=0), lambda x: np.unique(x, axis=0),
           [[(6, 2)]], ("int64",), make_inputs=lambda r, d, s: [r.integers(0, 2, s[0])],
           grad=False),
    OpCase("nonzero", lambda a: T.nonzero(a)[1], lambda a: np.nonzero(a)[1],
           [[(3, 4)], [(0, 2)]], FLOATS, make_inputs=_sparse, grad=False),
    OpCase("nonzero[matrix]", lambda a: T.nonzero(a, return_matrix=True),
           lambda a: np.array(np.nonzero(a)), [[(3, 4)], [(5,)]], FLOATS,
           make_inputs=_sparse, grad=False),
    OpCase("flatnonzero", T.flatnonzero, np.flatnonzero, [[(3, 4)], [(6,)]], FLOATS,
           make_inputs=_sparse, grad=False),
    OpCase("nonzero_values", lambda a, m: T.nonzero_values(a * m),
           lambda a, m: (a * m).ravel()[np.flatnonzero(a * m)],
           [[(3, 4), (3, 4)], [(5,), (5,)]], ("float64",), make_inputs=_masked),
    OpCase("compress", lambda c, a: T.extra_ops.compress(c, a),
           lambda c, a: np.compress(c, a), [[(4,), (2, 3)], [(6,), (6,)]], FLOATS,
           make_inputs=_mask),
    OpCase("compress[axis]", lambda c, a: T.compress(c, a, axis=1),
           lambda c, a: np.compress(c, a, axis=1), [[(3,), (2, 3)], [(2,), (2, 3, 2)]],
           FLOATS, make_inputs=_mask),
    OpCase("choose", lambda a, x, y, z: T.choose(a, [x, y, z]),
           lambda a, x, y, z: np.choose(a, [x, y, z]),
           [[(2, 3), (2, 3), (2, 3), (2, 3)], [(2, 3), (3,), (1, 3), ()]], FLOATS,
           make_inputs=_choices),
    OpCase("choose[tensor]", lambda a, c: T.choose(a, c), lambda a, c: np.choose(a, c),
           [[(4,), (3, 4)], [(2, 1), (3, 1, 4)]], FLOATS, make_inputs=_choices),
    OpCase("choose[wrap]", lambda a, c: T.choose(a, c, mode="wrap"),
           lambda a, c: np.choose(a, c, mode="wrap"), [[(6,), (3, 6)]], FLOATS,
           make_inputs=_out_of_range),
    OpCase("choose[clip]", lambda a, c: T.choose(a, c, mode="clip"),
           lambda a, c: np.choose(a, c, mode="clip"), [[(6,), (3, 6)]], FLOATS,
           make_inputs=_out_of_range),
    OpCase("ravel_multi_index", lambda i, j: T.ravel_multi_index((i, j), (4, 5)),
           lambda i, j: np.ravel_multi_index((i, j), (4, 5)), [[(6,), (6,)], [(2, 3), ()]],
           ("int64", "int32"), make_inputs=_ints, grad=False),
    OpCase("ravel_multi_index[F]", lambda i, j: T.ravel_multi_index((i, j), (4, 5),
                                                                    order="F"),
           lambda i, j: np.ravel_multi_index((i, j), (4, 5), order="F"), [[(6,), (6,)]],
           ("int64",), make_inputs=_ints, grad=False),
    OpCase("unravel_index", lambda k: T.unravel_index(k, (3, 4))[0],
           lambda k: np.unravel_index(k, (3, 4))[0], [[(5,)], [(2, 3)], [()]], ("int64",),
           make_inputs=_flat, grad=False),
    OpCase("unravel_index[F]", lambda k: T.unravel_index(k, (3, 4), order="F")[1],
           lambda k: np.unravel_index(k, (3, 4), order="F")[1], [[(5,)]], ("int64",),
           make_inputs=_flat, grad=False),
    OpCase("to_one_hot", lambda y: T.extra_ops.to_one_hot(y, 5),
           lambda y: np.eye(5)[y], [[(6,)], [(0,)]], ("int64",), make_inputs=_ints,
           grad=False),
    OpCase("fill_diagonal_offset", lambda a: T.fill_diagonal_offset(a, 5.0, 1),
           _fill_offset_ref(1), [[(3, 4)], [(4, 3)], [(2, 2)]], FLOATS),
    OpCase("fill_diagonal_offset[neg]", lambda a: T.fill_diagonal_offset(a, 5.0, -2),
           _fill_offset_ref(-2), [[(3, 4)], [(4, 3)]], FLOATS),
    OpCase("fill_diagonal_offset[val]", lambda a, v: T.fill_diagonal_offset(a, v, 0),
           lambda a, v: _fill_with(a, v), [[(3, 4), ()]], FLOATS),
]


def _fill_with(a, v):
    out = a.copy()
    np.fill_diagonal(out, v)
    return out


test_forward, test_grad = table_tests(CASES)


@pytest.mark.parametrize("m", [0, 1, 2, 5, 8])
def test_bartlett_matches_numpy_with_a_symbolic_length(m):
    n = T.lscalar("n")
    np.testing.assert_allclose(T.extra_ops.bartlett(n).eval({n: m}), np.bartlett(m))
    np.testing.assert_allclose(T.bartlett(m).eval(), np.bartlett(m))


def test_fill_diagonal_offset_takes_a_symbolic_offset():
    a, k = T.dmatrix("a"), T.lscalar("k")
    f = tg.function([a, k], T.fill_diagonal_offset(a, 5.0, k))
    for off in (-3, -1, 0, 2, 4, 9):
        np.testing.assert_array_equal(f(np.zeros((3, 4)), off), _fill_offset_ref(off)(
            np.zeros((3, 4))))


def test_extra_ops_module_paths():
    from tracegrad.tensor import extra_ops
    for name in extra_ops.__all__:
        assert callable(getattr(extra_ops, name))
    assert extra_ops.cumsum is T.cumsum and extra_ops.repeat is T.repeat
    assert extra_ops.squeeze is T.squeeze and extra_ops.searchsorted is T.searchsorted


def test_numpy_dispatch_and_method():
    x = T.dvector("x")
    v = np.array([0.0, 2.0, 0.0, 3.0])
    np.testing.assert_array_equal(np.flatnonzero(x).eval({x: v}), [1, 3])
    np.testing.assert_array_equal(x.nonzero()[0].eval({x: v}), [1, 3])
    np.testing.assert_array_equal(np.unique(x).eval({x: v}), [0.0, 2.0, 3.0])
    i = T.lvector("i")
    np.testing.assert_array_equal(np.bincount(i).eval({i: np.array([2, 2])}), [0, 0, 2])


def test_run_time_errors():
    i = T.lvector("i")
    with pytest.raises(ValueError):
        T.bincount(i).eval({i: np.array([-1, 2])})
    c = T.dmatrix("c")
    with pytest.raises(ValueError):
        T.choose(i, c).eval({i: np.array([0, 5]), c: np.ones((2, 2))})
    with pytest.raises(ValueError):
        T.unravel_index(i, (2, 2))[0].eval({i: np.array([9])})
    with pytest.raises(TypeError, match="integers"):
        T.bincount(T.dvector())
