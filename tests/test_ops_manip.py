"""Table-driven tests of the NumPy array-manipulation functions of
``tracegrad/ops/manip.py`` (forward vs NumPy per dtype, gradients vs finite
differences), plus NumPy dispatch and argument errors."""
import warnings

import numpy as np
import pytest

import tracegrad.tensor as T
from tracegrad.ops import manip
from optable import OpCase, table_tests, uncovered_functions

WITH_INTS = ("float64", "float32", "int32", "int64")
ALL = WITH_INTS + ("bool", "complex128")
CGRAD = ("float64", "complex128")


def case(name, sym, ref, shapes, dtypes=ALL, **kw):
    kw.setdefault("grad_dtypes", CGRAD)
    return OpCase(name, sym, ref, shapes, dtypes, **kw)


def weighted(module, parts, axis=0):
    """Join pieces back, weighted so their order and lengths are checked."""
    return module.concatenate([p * (i + 1) for i, p in enumerate(parts)], axis)


def quiet(fn):
    """``fn`` without NumPy 2's (and tracegrad's) deprecation warnings (cross products
    of 2-vectors, ``row_stack``)."""
    def call(*xs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Arrays of 2-dimensional vectors|`row_stack`",
                                    DeprecationWarning)
            return fn(*xs)
    return call


def fixed(shape, fn):
    """Give a symbolic input a static shape (for ops that need static lengths)."""
    return lambda *xs: fn(*[T.reshape(x, shape) for x in xs])


CASES = [
    case("atleast_1d", lambda x: T.atleast_1d(x), np.atleast_1d, [[()], [(3,)], [(2, 3)]]),
    case("atleast_2d", lambda x: T.atleast_2d(x), np.atleast_2d, [[()], [(3,)], [(0,)], [(2, 3)]]),
    case("atleast_3d", lambda x: T.atleast_3d(x), np.atleast_3d,
         [[()], [(3,)], [(2, 3)], [(2, 3, 4)]]),
    case("atleast_2d_many", lambda x, y: T.concatenate(T.atleast_2d(x, y)),
         lambda x, y: np.concatenate(np.atleast_2d(x, y)), [[(3,), (2, 3)]]),
    case("vstack", lambda a, b: T.vstack([a, b]), lambda a, b: np.vstack([a, b]),
         [[(2, 3), (4, 3)], [(3,), (3,)], [(), ()], [(0, 2), (1, 2)], [(3,), (2, 3)]]),
    case("vstack_np", lambda a, b: np.vstack((a, b)), lambda a, b: np.vstack((a, b)),
         [[(2, 3), (1, 3)]]),
    case("vstack_dtype", lambda a, b: T.vstack([a, b], dtype="float32"),
         lambda a, b: np.vstack([a, b], dtype="float32"), [[(2, 3), (1, 3)]], WITH_INTS,
         grad_dtypes=("float64",)),
    case("row_stack", quiet(lambda a, b: T.row_stack([a, b])), lambda a, b: np.vstack([a, b]),
         [[(2, 3), (4, 3)]], WITH_INTS),
    case("hstack", lambda a, b: T.hstack([a, b]), lambda a, b: np.hstack([a, b]),
         [[(2, 3), (2, 1)], [(3,), (2,)], [(), ()], [(0,), (2,)], [(2, 3, 1), (2, 0, 1)]]),
    case("hstack_np", lambda a, b: np.hstack([a, b]), lambda a, b: np.hstack([a, b]),
         [[(2, 3), (2, 2)]]),
    case("dstack", lambda a, b: T.dstack([a, b]), lambda a, b: np.dstack([a, b]),
         [[(2, 3), (2, 3)], [(3,), (3,)], [(), ()], [(2, 3, 1), (2, 3, 2)]]),
    case("column_stack", lambda a, b: T.column_stack([a, b]),
         lambda a, b: np.column_stack([a, b]),
         [[(3,), (3,)], [(3,), (3, 2)], [(), ()], [(0,), (0, 2)]]),
    case("append", lambda a, b: T.append(a, b), lambda a, b: np.append(a, b),
         [[(2, 3), (4,)], [(), (2, 2)], [(0,), ()]]),
    case("append_axis", lambda a, b: T.append(a, b, axis=1),
         lambda a, b: np.append(a, b, axis=1), [[(2, 3), (2, 1)], [(2, 0), (2, 2)]]),
    case("flip", lambda x: T.flip(x), np.flip, [[(2, 3)], [()], [(0, 3)], [(4,)]]),
    case("flip_axis", lambda x: T.flip(x, axis=-1), lambda x: np.flip(x, -1),
         [[(2, 3)], [(2, 3, 4)]]),
    case("flip_axes", lambda x: np.flip(x, (0, 2)), lambda x: np.flip(x, (0, 2)),
         [[(2, 3, 4)]]),
    case("flipud", lambda x: np.flipud(x), np.flipud, [[(3,)], [(3, 2)], [(0, 2)]]),
    case("fliplr", lambda x: np.fliplr(x), np.fliplr, [[(3, 2)], [(2, 3, 4)]]),
    case("rot90", lambda x: np.rot90(x), np.rot90, [[(2, 3)], [(2, 3, 4)], [(0, 3)]]),
    case("rot90_k2", lambda x: T.rot90(x, 2), lambda x: np.rot90(x, 2), [[(2, 3)]]),
    case("rot90_k3", lambda x: T.rot90(x, -1, axes=(2, 0)),
         lambda x: np.rot90(x, -1, axes=(2, 0)), [[(2, 3, 4)]]),
    case("rot90_k4", lambda x: T.rot90(x, 4), lambda x: np.rot90(x, 4), [[(2, 3)]]),
    case("roll", lambda x: np.roll(x, 2), lambda x: np.roll(x, 2),
         [[(2, 3)], [(5,)], [()], [(0, 3)]]),
    case("roll_axis", lambda x: T.roll(x, -1, axis=1), lambda x: np.roll(x, -1, axis=1),
         [[(2, 3)], [(2, 0)], [(2, 3, 4)]]),
    case("roll_tuple", lambda x: T.roll(x, (1, 7), axis=(0, -1)),
         lambda x: np.roll(x, (1, 7), axis=(0, -1)), [[(2, 3)], [(3, 4, 5)]]),
    case("roll_broadcast", lambda x: T.roll(x, 1, axis=(0, 1, 0)),
         lambda x: np.roll(x, 1, axis=(0, 1, 0)), [[(3, 4)]]),
    case("roll_symbolic_shift", lambda x, s: T.roll(x, s, axis=-1),
         lambda x, s: np.roll(x, s, axis=-1), [[(2, 3), ()], [(4,), ()], [(2, 0), ()]],
         WITH_INTS, input_dtypes=(None, "int64"), grad_dtypes=("float64",)),
    case("tril", lambda x: np.tril(x), np.tril, [[(3, 4)], [(4, 3)], [(2, 3, 3)], [(0, 2)]]),
    case("tril_k", lambda x: T.tril(x, k=-1), lambda x: np.tril(x, -1), [[(3, 4)], [(4, 3)]]),
    case("triu", lambda x: np.triu(x), np.triu, [[(3, 4)], [(4, 3)], [(2, 3, 3)], [(0, 2)]]),
    case("triu_k", lambda x: T.triu(x, 2), lambda x: np.triu(x, 2), [[(3, 4)], [(4, 3)]]),
    case("tile", lambda x: np.tile(x, 2), lambda x: np.tile(x, 2),
         [[(3,)], [(2, 3)], [()], [(0,)]]),
    case("tile_tuple", lambda x: T.tile(x, (2, 1, 3)), lambda x: np.tile(x, (2, 1, 3)),
         [[(3,)], [(2, 3)], [(2, 2, 2, 2)]]),
    case("tile_zero", lambda x: T.tile(x, (0, 2)), lambda x: np.tile(x, (0, 2)), [[(2, 3)]]),
    case("diff", lambda x: np.diff(x), np.diff, [[(5,)], [(2, 4)], [(1,)], [(0, 3)]]),
    case("diff_n_axis", lambda x: T.diff(x, n=2, axis=0), lambda x: np.diff(x, 2, 0),
         [[(5, 2)], [(1, 3)], [(2, 3, 2)]]),
    case("diff_n0", lambda x: T.diff(x, 0), lambda x: np.diff(x, 0), [[(3,)]]),
    case("diff_prepend_append", lambda x: T.diff(x, prepend=0, append=x[..., :1]),
         lambda x: np.diff(x, prepend=0, append=x[..., :1]), [[(4,)], [(2, 3)]]),
    case("diff_prepend_array", lambda x, p: np.diff(x, axis=0, prepend=p),
         lambda x, p: np.diff(x, axis=0, prepend=p), [[(3, 2), (2, 2)]]),
    case("kron", lambda a, b: np.kron(a, b), np.kron,
         [[(2, 3), (3, 2)], [(2,), (3,)], [(2,), (2, 3)], [(), (2, 2)], [(2, 1, 2), (3, 2)],
          [(0, 2), (2, 2)]]),
    case("inner", lambda a, b: np.inner(a, b), np.inner,
         [[(3,), (3,)], [(2, 3), (4, 3)], [(2, 3), (3,)], [(), (2, 2)], [(0,), (0,)]],
         WITH_INTS + ("complex128",)),
    case("cross", fixed((4, 3), np.cross), lambda a, b: np.cross(a, b), [[(4, 3), (4, 3)]],
         WITH_INTS + ("complex128",)),
    case("cross_vec", fixed((3,), T.cross), np.cross, [[(3,), (3,)]],
         WITH_INTS + ("complex128",)),
    case("cross_axis", lambda a, b: T.cross(T.reshape(a, (3, 2)), T.reshape(b, (2, 3)),
                                            axisa=0, axisc=0),
         lambda a, b: np.cross(a, b, axisa=0, axisc=0), [[(3, 2), (2, 3)]], WITH_INTS),
    case("cross_2d", quiet(fixed((4, 2), T.cross)), quiet(np.cross), [[(4, 2), (4, 2)]],
         WITH_INTS),
    case("cross_mixed_2_3",
         quiet(lambda a, b: T.cross(T.reshape(a, (2, 2)), T.reshape(b, (3,)))),
         quiet(np.cross), [[(2, 2), (3,)]], ("float64",)),
    case("cross_mixed_3_2",
         quiet(lambda a, b: T.cross(T.reshape(a, (3,)), T.reshape(b, (2, 2)))),
         quiet(np.cross), [[(3,), (2, 2)]], ("float64",)),
    case("array_split", lambda x: weighted(T, T.array_split(x, 3)),
         lambda x: weighted(np, np.array_split(x, 3)), [[(7,)], [(6, 2)], [(2,)], [(0, 2)]]),
    case("array_split_np", lambda x: weighted(T, np.array_split(x, [1, 3], axis=1), 1),
         lambda x: weighted(np, np.array_split(x, [1, 3], axis=1), 1), [[(2, 5)]]),
    case("vsplit", lambda x: weighted(T, np.vsplit(x, 2)), lambda x: weighted(np, np.vsplit(x, 2)),
         [[(4, 3)], [(2, 2, 2)]]),
    case("hsplit", lambda x: weighted(T, np.hsplit(x, 2), -1 if x.ndim == 1 else 1),
         lambda x: weighted(np, np.hsplit(x, 2), -1 if x.ndim == 1 else 1),
         [[(4,)], [(3, 4)]]),
    case("dsplit", lambda x: weighted(T, np.dsplit(x, [1]), 2),
         lambda x: weighted(np, np.dsplit(x, [1]), 2), [[(2, 2, 3)]]),
    case("rollaxis", lambda x: np.rollaxis(x, 2), lambda x: np.rollaxis(x, 2),
         [[(2, 3, 4)]]),
    case("rollaxis_start", lambda x: T.rollaxis(x, 0, 3), lambda x: np.rollaxis(x, 0, 3),
         [[(2, 3, 4)], [(2, 3, 0)]]),
    case("rollaxis_same", lambda x: T.rollaxis(x, 1, -1), lambda x: np.rollaxis(x, 1, -1),
         [[(2, 3, 4)]]),
]

test_forward, test_grad = table_tests(CASES)


def test_every_function_has_a_case():
    assert uncovered_functions(manip.__all__, CASES) == []


def test_numpy_dispatch_returns_variables():
    x, y = T.dmatrix("x"), T.dmatrix("y")
    v, w = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    for got, expected in [(np.vstack([x, y]), np.vstack([v, w])),
                          (np.hstack((x, w)), np.hstack((v, w))),
                          (np.column_stack([x, y]), np.column_stack([v, w])),
                          (np.roll(x, 1, axis=None), np.roll(v, 1)),
                          (np.triu(x, -1), np.triu(v, -1))]:
        assert isinstance(got, T.TensorVariable)
        np.testing.assert_array_equal(got.eval({x: v, y: w}), expected)
    parts = np.split(x, 3, axis=1)
    assert isinstance(parts, list) and len(parts) == 3


def test_tril_gradient_is_masked():
    x = T.dmatrix("x")
    g = T.grad(T.tril(x).sum(), x).eval({x: np.ones((3, 3))})
    np.testing.assert_array_equal(g, np.tri(3))


def test_errors_name_the_argument():
    x = T.dmatrix("x")
    with pytest.raises(ValueError, match="fliplr"):
        T.fliplr(T.dvector())
    with pytest.raises(ValueError, match="tril"):
        T.tril(T.dvector())
    with pytest.raises(TypeError, match="reps"):
        T.tile(x, 1.5)
    with pytest.raises(ValueError, match="negative"):
        T.tile(x, -1)
    with pytest.raises(ValueError, match="order"):
        T.diff(x, -1)
    with pytest.raises(ValueError, match="axes"):
        T.rot90(x, axes=(0, 0))
    with pytest.raises(np.exceptions.AxisError):
        T.roll(x, 1, axis=2)
    with pytest.raises(TypeError, match="shift"):
        T.roll(x, T.dscalar(), 0)
    with pytest.raises(ValueError, match="cross"):
        T.cross(x, x)
    with pytest.warns(DeprecationWarning, match="2-dimensional"):
        T.cross(T.reshape(x, (3, 2)), T.reshape(x, (3, 2)))
    with pytest.warns(DeprecationWarning, match="row_stack"):
        T.row_stack([x, x])
    with pytest.raises(ValueError, match="sections"):
        T.array_split(x, 0)
    with pytest.raises(ValueError, match="vsplit"):
        T.vsplit(T.dvector(), 2)
    with pytest.raises(TypeError, match="sequence"):
        T.vstack(a for a in [x, x])
    with pytest.raises(ValueError, match="at least one"):
        T.hstack([])
