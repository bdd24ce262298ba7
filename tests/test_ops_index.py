"""Table-driven tests of indexing (basic, advanced, masks), set/inc_subtensor
and take, plus static shapes, index errors and accumulation of repeated
indices."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
WITH_INTS = ("float64", "float32", "int32", "int64")


def case(name, sym, ref, shapes, dtypes=WITH_INTS, **kw):
    return OpCase(name, sym, ref, shapes, dtypes, **kw)


def with_ints(*makers):
    """make_inputs: a float array of the first shape, then integer inputs."""
    def make(rng, dtype, shapes):
        return [rng.uniform(-2, 2, shapes[0]).astype(dtype),
                *[np.asarray(m(shapes[0]), dtype="int64") for m in makers]]
    return make


def numpy_set(x, key, y):
    out = x.copy()
    out[key] = y
    return out


def numpy_inc(x, key, y):
    out = x.copy()
    np.add.at(out, key, y)
    return out


CASES = [
    # basic indexing
    case("slice", lambda x: x[1:], lambda x: x[1:], [[(4, 5)], [(0, 3)], [(1,)]]),
    case("slice_negative_step", lambda x: x[::-1, 3:0:-2], lambda x: x[::-1, 3:0:-2],
         [[(4, 5)], [(2, 0)]]),
    case("slice_out_of_range", lambda x: x[-10:10, 5:], lambda x: x[-10:10, 5:],
         [[(4, 5)], [(3, 2)]]),
    case("int", lambda x: x[1], lambda x: x[1], [[(3, 4)], [(2, 0)], [(2,)]]),
    case("int_negative", lambda x: x[:, -1], lambda x: x[:, -1], [[(3, 4)], [(0, 2)]]),
    case("int_and_slice", lambda x: x[1, ::2], lambda x: x[1, ::2], [[(3, 5)]]),
    case("newaxis_ellipsis", lambda x: x[None, ..., 0], lambda x: x[None, ..., 0],
         [[(2, 3, 4)], [(2, 3)], [(2,)]]),
    case("ellipsis_middle", lambda x: x[0, ..., 1:], lambda x: x[0, ..., 1:],
         [[(2, 3, 4)], [(2, 3)]]),
    case("ellipsis_0d", lambda x: x[...], lambda x: x[...], [[()], [(2, 3)]]),
    case("empty_tuple_0d", lambda x: x[()], lambda x: x[()], [[()]]),
    case("newaxis_0d", lambda x: x[None, None], lambda x: x[None, None], [[()]]),
    case("full_int_index", lambda x: x[1, -2], lambda x: x[1, -2], [[(3, 4)]]),
    case("shape_arith_bound", lambda x: x[: x.shape[0] // 2], lambda x: x[: len(x) // 2],
         [[(5, 2)], [(1,)]]),
    case("symbolic_start", lambda x, n: x[n:], lambda x, n: x[n:], [[(5, 2), ()]],
         make_inputs=with_ints(lambda s: 2)),
    case("symbolic_all_parts", lambda x, a, b, c: x[a:b:c], lambda x, a, b, c: x[a:b:c],
         [[(6,), (), (), ()]], make_inputs=with_ints(lambda s: 5, lambda s: 0,
                                                         lambda s: -2)),
    case("symbolic_int", lambda x, i: x[:, i], lambda x, i: x[:, i], [[(3, 4), ()]],
         make_inputs=with_ints(lambda s: -1)),
    # advanced indexing
    case("array", lambda x: x[[0, 2, 2]], lambda x: x[[0, 2, 2]], [[(3, 4)], [(3,)], [(3, 0)]]),
    case("array_negative", lambda x: x[[-1, 0]], lambda x: x[[-1, 0]], [[(3, 4)]]),
    case("array_2d_index", lambda x: x[[[0, 1], [1, 0]]], lambda x: x[[[0, 1], [1, 0]]],
         [[(2, 3)]]),
    case("array_pair", lambda x: x[[0, 1, 1], [2, 0, 2]], lambda x: x[[0, 1, 1], [2, 0, 2]],
         [[(2, 3)], [(2, 3, 4)]]),
    case("array_broadcast_pair", lambda x: x[[[0], [1]], [2, 0]],
         lambda x: x[[[0], [1]], [2, 0]], [[(2, 3)]]),
    case("array_second_axis", lambda x: x[:, [1, 0, 1]], lambda x: x[:, [1, 0, 1]],
         [[(3, 2)], [(0, 2)], [(2, 2, 3)]]),
    case("array_int_separated", lambda x: x[0, :, [1, 2]], lambda x: x[0, :, [1, 2]],
         [[(2, 3, 4)]]),
    case("array_adjacent_with_int", lambda x: x[:, 0, [1, 2]], lambda x: x[:, 0, [1, 2]],
         [[(2, 3, 4)]]),
    case("array_newaxis_between", lambda x: x[:, [0, 1], None, [0, 1]],
         lambda x: x[:, [0, 1], None, [0, 1]], [[(2, 3, 4)]]),
    case("array_newaxis_first", lambda x: x[[0, 1], None, [0, 1]],
         lambda x: x[[0, 1], None, [0, 1]], [[(2, 3, 4)]]),
    case("array_and_slice", lambda x: x[1:, [0, 0]], lambda x: x[1:, [0, 0]], [[(3, 2)]]),
    case("array_empty", lambda x: x[[]], lambda x: x[[]], [[(3, 2)]]),
    case("array_numpy_constant", lambda x: x[np.array([2, 0])], lambda x: x[np.array([2, 0])],
         [[(3, 2)]]),
    case("array_symbolic", lambda x, i: x[i], lambda x, i: x[i], [[(4, 3), (5,)]],
         make_inputs=with_ints(lambda s: [3, 0, 0, -1, 2])),
    case("array_symbolic_2d", lambda x, i: x[1:, i], lambda x, i: x[1:, i],
         [[(3, 4), (2, 2)]], make_inputs=with_ints(lambda s: [[3, 0], [0, 3]])),
    # boolean masks
    case("mask_data", lambda x: x[x > 0], lambda x: x[x > 0], [[(3, 4)], [(5,)], [(0, 2)]]),
    case("mask_constant", lambda x: x[np.array([True, False, True])],
         lambda x: x[np.array([True, False, True])], [[(3, 2)], [(3,)]]),
    case("mask_second_axis", lambda x: x[:, x[0] > 0], lambda x: x[:, x[0] > 0],
         [[(3, 4)]]),
    case("mask_2d_then_slice", lambda x: x[x[:, :, 0] > 0, 1:], lambda x: x[x[:, :, 0] > 0, 1:],
         [[(2, 3, 3)]]),
    # set / inc
    case("set_basic", lambda x, y: T.set_subtensor(x[1:3], y),
         lambda x, y: numpy_set(x, np.s_[1:3], y), [[(4, 3), (2, 3)], [(4, 3), (3,)],
                                                    [(4, 3), ()], [(0, 3), (3,)]]),
    case("inc_basic", lambda x, y: T.inc_subtensor(x[:, -1], y),
         lambda x, y: numpy_inc(x, np.s_[:, -1], y), [[(4, 3), (4,)], [(4, 3), ()]]),
    case("set_int", lambda x, y: T.set_subtensor(x[1, 2], y),
         lambda x, y: numpy_set(x, (1, 2), y), [[(3, 4), ()]]),
    case("inc_0d", lambda x, y: T.inc_subtensor(x[()], y), lambda x, y: x + y,
         [[(), ()]]),
    case("set_advanced", lambda x, y: T.set_subtensor(x[[2, 0]], y),
         lambda x, y: numpy_set(x, [2, 0], y), [[(3, 4), (2, 4)], [(3, 4), (4,)]]),
    case("inc_advanced_repeated", lambda x, y: T.inc_subtensor(x[[0, 2, 0, 0]], y),
         lambda x, y: numpy_inc(x, [0, 2, 0, 0], y), [[(3, 2), (4, 2)], [(3, 2), ()]]),
    case("inc_advanced_pair", lambda x, y: T.inc_subtensor(x[[0, 1, 0], [1, 1, 1]], y),
         lambda x, y: numpy_inc(x, ([0, 1, 0], [1, 1, 1]), y), [[(2, 3), (3,)]]),
    case("inc_advanced_newaxis", lambda x, y: T.inc_subtensor(x[:, [0, 0], None], y),
         lambda x, y: numpy_inc(x, (slice(None), [0, 0], None), y), [[(2, 3), (2, 2, 1)]]),
    case("inc_mask", lambda x, y: T.inc_subtensor(x[x > 0], y),
         lambda x, y: numpy_inc(x, x > 0, y), [[(3, 4), ()]]),
    case("set_symbolic_index", lambda x, y, i: T.set_subtensor(x[i], y),
         lambda x, y, i: numpy_set(x, i, y), [[(4, 2), (2,), (2,)]],
         make_inputs=lambda rng, dt, shapes: [rng.uniform(-2, 2, shapes[0]).astype(dt),
                                              rng.uniform(-2, 2, shapes[1]).astype(dt),
                                              np.array([3, 1])]),
    case("set_then_use_both", lambda x, y: T.set_subtensor(x[1:], y) * x,
         lambda x, y: numpy_set(x, np.s_[1:], y) * x, [[(3,), (2,)]]),
    # take
    case("take", lambda x: T.take(x, [4, 0, 0]), lambda x: np.take(x, [4, 0, 0]),
         [[(2, 3)], [(5,)]]),
    case("take_axis", lambda x: T.take(x, [[1, -1]], axis=-1),
         lambda x: np.take(x, [[1, -1]], axis=-1), [[(2, 3)], [(0, 2)]]),
    case("take_scalar", lambda x: T.take(x, 1, axis=1), lambda x: np.take(x, 1, axis=1),
         [[(2, 3)]]),
    case("take_wrap", lambda x: T.take(x, [5, -7], axis=0, mode="wrap"),
         lambda x: np.take(x, [5, -7], axis=0, mode="wrap"), [[(3, 2)]]),
    case("take_clip", lambda x: T.take(x, [5, -7], mode="clip"),
         lambda x: np.take(x, [5, -7], mode="clip"), [[(3, 2)]]),
]


test_forward, test_grad = table_tests(CASES)


# ------------------------------------------------------------ static shapes
def test_static_shapes():
    x = T.tensor("float64", shape=(3, 4))
    assert x[1:].type.shape == (2, 4)
    assert x[::-1, ::3].type.shape == (3, 2)
    assert x[0].type.shape == (4,)
    assert x[None, ..., 1].type.shape == (1, 3)
    assert x[[0, 1, 1]].type.shape == (3, 4)
    assert x[:, [[0], [1]]].type.shape == (3, 2, 1)
    assert x[0, [1, 2]].type.shape == (2,)
    assert T.tensor("float64", shape=(2, 3, 4))[0, :, [1, 2]].type.shape == (2, 3)
    assert T.tensor("float64", shape=(2, 3, 4))[:, [0, 1], None, [0, 1]].type.shape == (2, 2, 1)
    assert x[x > 0].type.shape == (None,)
    assert x[np.array([True, False, True])].type.shape == (2, 4)
    assert x[: x.shape[0] - 1].type.shape == (2, 4)
    assert T.dmatrix()[1:].type.shape == (None, None)
    assert T.set_subtensor(x[1:], 0).type.shape == (3, 4)


def test_shape_entries_are_static():
    x = T.tensor("float64", shape=(3, None))
    from tracegrad.ops.shape_static import static_value
    assert static_value(x.shape[0]) == 3
    assert static_value(x.shape[-1]) is None
    assert T.zeros((x.shape[0], x.shape[1])).type.shape == (3, None)


def test_iterating_a_vector_of_known_length():
    v = T.tensor("float64", shape=(3,))
    parts = list(v)
    assert len(parts) == 3 and all(p.ndim == 0 for p in parts)


# ------------------------------------------------------------ errors
@pytest.mark.parametrize("build, error, pattern", [
    (lambda x: x[5], IndexError, "index 5 is out of bounds for axis 0 with size 3"),
    (lambda x: x[:, -5], IndexError, "index -5 is out of bounds for axis 1 with size 4"),
    (lambda x: x[[0, 3]], IndexError, "index 3 is out of bounds for axis 0 with size 3"),
    (lambda x: x[0, 0, 0], IndexError, "too many indices"),
    (lambda x: x[..., 0, ...], IndexError, "single ellipsis"),
    (lambda x: x[1.5], IndexError, "valid indices"),
    (lambda x: x[1:2.5], IndexError, "integers"),
    (lambda x: x[T.dscalar()], IndexError, "valid indices"),
    (lambda x: x[True], TypeError, "boolean scalar"),
    (lambda x: x[np.array([True, False])], IndexError, "size of axis is 3"),
    (lambda x: x[[0, 1], [0, 1, 2]], IndexError, "shape mismatch"),
    (lambda x: x[::0], ValueError, "step cannot be zero"),
    (lambda x: T.set_subtensor(x[1:], np.ones((3, 4))), ValueError, r"\(3, 4\).*\(2, 4\)"),
    (lambda x: T.set_subtensor(x, 1.0), TypeError, "result of indexing"),
    (lambda x: T.inc_subtensor(T.cast(x, "int32")[0], 1.5), TypeError, "float64"),
])
def test_index_errors_at_build_time(build, error, pattern):
    x = T.tensor("float64", shape=(3, 4))
    with pytest.raises(error, match=pattern):
        build(x)


def test_index_errors_at_run_time():
    x = T.dmatrix("x")
    m = T.bvector("m")
    with pytest.raises(IndexError, match="out of bounds"):
        x[5].eval({x: np.zeros((3, 4))})
    with pytest.raises(IndexError, match="boolean index did not match"):
        x[T.cast(m, "bool")].eval({x: np.zeros((3, 4)), m: np.ones(2, dtype="int8")})


# ------------------------------------------------------------ set / inc semantics
def test_inc_subtensor_accumulates_repeated_indices():
    x = T.dvector("x")
    i = T.lvector("i")
    y = T.dvector("y")
    out = T.inc_subtensor(x[i], y).eval({x: np.zeros(3), i: np.array([0, 2, 0, 0]),
                                         y: np.array([1.0, 2.0, 3.0, 4.0])})
    np.testing.assert_array_equal(out, [8.0, 0.0, 2.0])
    ignored = T.inc_subtensor(x[i], y, ignore_duplicates=True)
    got = ignored.eval({x: np.zeros(3), i: np.array([0, 0]), y: np.array([1.0, 2.0])})
    assert got[0] in (1.0, 2.0)


def test_grad_of_repeated_index_counts_each_use():
    x = T.dvector("x")
    g = tg.grad((x[[0, 0, 2, 0]] * [1.0, 2.0, 3.0, 4.0]).sum(), x)
    np.testing.assert_array_equal(g.eval({x: np.ones(3)}), [7.0, 0.0, 3.0])


def test_set_and_inc_never_modify_their_input():
    x = T.dmatrix("x")
    value = np.zeros((3, 4))
    for out in (T.set_subtensor(x[1:], 1.0), T.inc_subtensor(x[[0, 0]], 1.0),
                T.inc_subtensor(x[:, 0], 2.0)):
        result = out.eval({x: value})
        assert result.any() and not value.any()


def test_inplace_version_overwrites_and_declares_it():
    x = T.dvector("x")
    out = T.inc_subtensor(x[[0, 0]], 1.0)
    op = out.owner.op
    assert op.destroy_map == {} and not op.inplace
    inplace = op.inplace_version()
    assert inplace.destroy_map == {0: [0]} and inplace != op
    buffer = np.zeros(3)
    result = inplace.impl(np, buffer, np.float64(1.0), *[i.data for i in out.owner.inputs[2:]])
    assert result is buffer and buffer[0] == 2.0


def test_views_and_copies():
    x = T.dmatrix()
    assert x[1:].owner.op.view_map == {0: [0]}
    assert x[0].owner.op.view_map == {0: [0]}
    assert x[[0, 1]].owner.op.view_map == {}
    assert T.set_subtensor(x[0], 1.0).owner.op.view_map == {}


def test_dtypes_of_set_and_inc():
    x = T.fvector()
    assert T.set_subtensor(x[0], 1.5).dtype == "float32"
    assert T.inc_subtensor(x[0], T.dscalar()).dtype == "float32"
    assert T.set_subtensor(T.ivector()[0], 2.7).dtype == "int32"
    with pytest.raises(OverflowError):
        T.set_subtensor(T.bvector()[0], 300)


def test_symbolic_index_folds_when_known():
    x = T.tensor("float64", shape=(4, 2))
    y = x[x.shape[0] - 1]
    assert len(y.owner.inputs) == 1 and y.owner.op.idx == (3,)


def test_theano_keyword_arguments():
    x = T.dvector("x")
    out = T.inc_subtensor(x[1:], 1.0, set_instead_of_inc=True, inplace=False)
    np.testing.assert_array_equal(out.eval({x: np.zeros(3)}), [0, 1, 1])


def test_pretty_printing_shows_the_index():
    x = T.dmatrix("x")
    i = T.lscalar("i")
    assert tg.pp(x[1:, i]) == "x[1:, i]"
    assert tg.pp(x[None, ::-2]) == "x[None, ::-2]"
    assert tg.pp(T.set_subtensor(x[i], x[0])) == "set_subtensor(x[i], x[0])"


# ------------------------------------------------------------ NumPy dispatch
def test_numpy_take_builds_a_graph():
    x = T.dmatrix("x")
    v = np.arange(6.0).reshape(2, 3)
    out = np.take(x, [2, 0], axis=1)
    assert isinstance(out, T.TensorVariable)
    np.testing.assert_array_equal(out.eval({x: v}), np.take(v, [2, 0], axis=1))
    with pytest.raises(TypeError, match="out="):
        np.take(x, [0], out=np.zeros(1))


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import index
    # Cases are named by the kind of key ("int", "array_pair", "mask_"...) for
    # getitem, and "set_*" / "inc_*" for set_subtensor / inc_subtensor.
    prefixes = {c.name.split("_")[0] for c in CASES}
    covered = {"set_subtensor"} if "set" in prefixes else set()
    covered |= {"inc_subtensor"} if "inc" in prefixes else set()
    covered |= {"getitem"} if prefixes - {"set", "inc", "take"} else set()
    missing = set(uncovered_functions(index.__all__, CASES)) - covered
    assert not missing, f"indexing functions without a table case: {sorted(missing)}"
