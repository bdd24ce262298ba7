"""Table-driven tests of the shape ops (forward vs NumPy per dtype, gradients
vs finite differences), plus static shapes, build-time errors and NumPy
dispatch."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
WITH_INTS = ("float64", "float32", "int32", "int64")


def case(name, sym, ref, shapes, dtypes=WITH_INTS, **kw):
    return OpCase(name, sym, ref, shapes, dtypes, **kw)


def ints(*values):
    """make_inputs for rows whose extra inputs are fixed integer arrays."""
    def make(rng, dtype, shapes):
        return [rng.uniform(-2, 2, shapes[0]).astype(dtype),
                *[np.asarray(v, dtype="int64") for v in values]]
    return make


def weighted(module, parts, axis=0):
    """Join pieces back, weighted so their order and lengths are checked."""
    return module.concatenate([p * (i + 1) for i, p in enumerate(parts)], axis)


CASES = [
    case("reshape", lambda x: T.reshape(x, (4, 3)), lambda x: np.reshape(x, (4, 3)),
         [[(3, 4)], [(12,)], [(2, 2, 3)]]),
    case("reshape_minus1", lambda x: x.reshape((-1, 2)), lambda x: x.reshape((-1, 2)),
         [[(3, 4)], [(0, 4)], [(2,)]]),
    case("reshape_method_ints", lambda x: x.reshape(2, 6), lambda x: x.reshape(2, 6),
         [[(3, 4)]]),
    case("reshape_symbolic_entry", lambda x: x.reshape((x.shape[0], -1)),
         lambda x: x.reshape((x.shape[0], -1)), [[(2, 3, 4)], [(3, 1, 1)], [(1, 0, 5)]]),
    case("reshape_shape_arith", lambda x: x.reshape((x.shape[0] * x.shape[1], x.shape[2])),
         lambda x: x.reshape((x.shape[0] * x.shape[1], x.shape[2])), [[(2, 3, 4)], [(0, 3, 2)]]),
    case("reshape_vector_shape", lambda x, y: T.reshape(x, y.shape),
         lambda x, y: x.reshape(y.shape), [[(3, 4), (6, 2)], [(0, 4), (2, 0)]]),
    case("reshape_to_0d", lambda x: x.reshape(()), lambda x: x.reshape(()),
         [[()], [(1,)], [(1, 1)]]),
    case("reshape_from_0d", lambda x: x.reshape((1, 1, 1)), lambda x: x.reshape((1, 1, 1)),
         [[()]]),
    case("flatten", lambda x: T.flatten(x), lambda x: x.reshape(-1),
         [[(3, 4)], [()], [(2, 0, 3)], [(5,)]]),
    case("flatten_2", lambda x: x.flatten(2),
         lambda x: x.reshape(x.shape[0], int(np.prod(x.shape[1:]))),
         [[(2, 3, 4)], [(0, 3, 2)], [(3, 0)]]),
    case("flatten_3", lambda x: T.flatten(x, 3),
         lambda x: x.reshape(x.shape[:2] + (int(np.prod(x.shape[2:])),)),
         [[(2, 3, 4, 5)], [(2, 3, 4)], [(2, 0, 4)]]),
    case("transpose", lambda x: x.T, lambda x: x.T, [[(3, 4)], [()], [(5,)], [(2, 3, 4)]]),
    case("transpose_axes", lambda x: T.transpose(x, (1, -1, 0)),
         lambda x: np.transpose(x, (1, 2, 0)), [[(2, 3, 4)], [(2, 0, 3)]]),
    case("transpose_method", lambda x: x.transpose(2, 0, 1),
         lambda x: x.transpose(2, 0, 1), [[(2, 3, 4)]]),
    case("swapaxes", lambda x: T.swapaxes(x, 0, -1), lambda x: np.swapaxes(x, 0, -1),
         [[(2, 3, 4)], [(3, 4)]]),
    case("moveaxis", lambda x: T.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
         [[(2, 3, 4)]]),
    case("moveaxis_many", lambda x: T.moveaxis(x, [0, 1], [-1, 0]),
         lambda x: np.moveaxis(x, [0, 1], [-1, 0]), [[(2, 3, 4, 5)]]),
    case("dimshuffle", lambda x: x.dimshuffle(1, "x", 0), lambda x: x.T[:, None, :],
         [[(3, 4)], [(0, 2)]]),
    case("dimshuffle_0d", lambda x: x.dimshuffle("x", "x"), lambda x: x.reshape(1, 1),
         [[()]]),
    case("dimshuffle_drop", lambda x: T.expand_dims(x, 1).dimshuffle(2, "x", 0),
         lambda x: x.T[:, None, :], [[(3, 4)], [(2, 0)]]),
    case("expand_dims", lambda x: T.expand_dims(x, -1), lambda x: np.expand_dims(x, -1),
         [[(3, 4)], [()], [(0,)]]),
    case("expand_dims_tuple", lambda x: T.expand_dims(x, (0, 2)),
         lambda x: np.expand_dims(x, (0, 2)), [[(3, 4)], [(5,)]]),
    case("squeeze_runtime", lambda x: T.squeeze(x, 1), lambda x: np.squeeze(x, 1),
         [[(3, 1, 4)], [(0, 1)]]),
    case("squeeze_negative", lambda x: x.squeeze(axis=-1), lambda x: np.squeeze(x, -1),
         [[(3, 1)], [(1,)]]),
    case("squeeze_static", lambda x: T.squeeze(T.expand_dims(x, (0, -1))), lambda x: x,
         [[(3, 4)], [()], [(0,)]]),
    case("concatenate", lambda a, b: T.concatenate([a, b]), lambda a, b: np.concatenate([a, b]),
         [[(2, 3), (4, 3)], [(0, 3), (2, 3)], [(3,), (2,)]], WITH_INTS + ("complex128",),
         grad_dtypes=("float64", "complex128")),
    # The real operand gets the real part of its (complex) gradient.
    case("concatenate_real_complex", lambda a, b: T.concatenate([a, b]) * (1 - 2j),
         lambda a, b: np.concatenate([a, b]) * (1 - 2j), [[(2, 3), (1, 3)]], ("float64",),
         input_dtypes=(None, "complex128")),
    case("concatenate_axis", lambda a, b, c: T.concatenate([a, b, c], axis=-1),
         lambda a, b, c: np.concatenate([a, b, c], axis=-1),
         [[(2, 3), (2, 1), (2, 0)], [(2, 2, 1), (2, 2, 3), (2, 2, 2)]]),
    case("concatenate_axis_none", lambda a, b: T.concatenate([a, b], axis=None),
         lambda a, b: np.concatenate([a, b], axis=None), [[(2, 3), (4,)], [(), (2, 2)]]),
    case("concatenate_mixed_dtypes", lambda a, b: T.concatenate([a, b], 1),
         lambda a, b: np.concatenate([a, b], 1), [[(2, 3), (2, 2)]], FLOATS,
         input_dtypes=(None, "int32")),
    case("stack", lambda a, b: T.stack([a, b]), lambda a, b: np.stack([a, b]),
         [[(2, 3), (2, 3)], [(0,), (0,)], [(), ()]]),
    case("stack_axis", lambda a, b, c: T.stack([a, b, c], axis=-1),
         lambda a, b, c: np.stack([a, b, c], axis=-1), [[(2, 3), (2, 3), (2, 3)], [(), (), ()]]),
    case("stack_axis1", lambda a, b: T.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1),
         [[(2, 3), (2, 3)]]),
    case("stack_python_number", lambda a: T.stack([a, 2]), lambda a: np.stack([a, 2]),
         [[()]]),
    case("split_theano", lambda x: weighted(T, T.split(x, [1, 2, 0], 3, axis=1), 1),
         lambda x: weighted(np, np.split(x, [1, 3], axis=1), 1), [[(2, 3)], [(0, 3)]]),
    case("split_symbolic_sizes", lambda x: weighted(T, T.split(x, [x.shape[0] - 1, 1], 2)),
         lambda x: weighted(np, np.split(x, [len(x) - 1])), [[(3, 2)], [(1,)]]),
    case("split_numpy_sections", lambda x: weighted(T, T.split(x, 2, axis=-1), -1),
         lambda x: weighted(np, np.split(x, 2, axis=-1), -1), [[(3, 4)], [(2,)], [(0, 0)]]),
    case("split_numpy_indices", lambda x: weighted(T, T.split(x, [1, -1, 9])),
         lambda x: weighted(np, np.split(x, [1, -1, 9])), [[(5, 2)], [(1,)]]),
    case("broadcast_to", lambda x: T.broadcast_to(x, (2, 3, 4)),
         lambda x: np.broadcast_to(x, (2, 3, 4)), [[(3, 4)], [(1, 4)], [(3, 1)], [()]]),
    case("broadcast_to_symbolic", lambda x, y: T.broadcast_to(x, T.shape(y)),
         lambda x, y: np.broadcast_to(x, y.shape), [[(1, 4), (3, 4)], [(3, 1), (3, 0)]]),
    case("broadcast_to_mixed", lambda x, y: T.broadcast_to(x, (y.shape[0], 2, 4)),
         lambda x, y: np.broadcast_to(x, (len(y), 2, 4)), [[(4,), (3,)], [(2, 1), (0,)]]),
    case("zeros_like", T.zeros_like, np.zeros_like, [[(3, 4)], [()], [(0,)]], grad=False),
    case("ones_like", lambda x: T.ones_like(x, dtype="int8"),
         lambda x: np.ones_like(x, dtype="int8"), [[(3, 4)], [()]], grad=False),
    case("zeros", lambda x: T.zeros((x.shape[0], 2)), lambda x: np.zeros((len(x), 2)),
         [[(3,)], [(0,)]], grad=False),
    case("ones_int_shape", lambda x: T.ones(3, dtype=x.dtype), lambda x: np.ones(3, x.dtype),
         [[()]], grad=False),
    case("ones_vector_shape", lambda x: T.ones(x.shape, dtype="int32"),
         lambda x: np.ones(x.shape, "int32"), [[(2, 3)], [()]], grad=False),
    case("fill", lambda x: T.fill(x, 2.5), lambda x: np.full_like(x, 2.5),
         [[(3, 4)], [()]], FLOATS),
    case("fill_symbolic", lambda x, v: T.fill(x, v), lambda x, v: np.full_like(x, v),
         [[(3, 4), ()], [(2, 3), (3,)], [(0, 2), ()]], FLOATS),
    case("alloc", lambda v: T.alloc(v, 2, 3), lambda v: np.broadcast_to(v, (2, 3)).copy(),
         [[(3,)], [()], [(1,)], [(2, 1)]]),
    case("alloc_symbolic", lambda v, x: T.alloc(v, x.shape[0], 2, x.shape[1]),
         lambda v, x: np.broadcast_to(v, (x.shape[0], 2, x.shape[1])).copy(),
         [[(), (3, 4)], [(4,), (2, 4)], [(1,), (0, 1)]]),
    case("repeat", lambda x: T.repeat(x, 2), lambda x: np.repeat(x, 2),
         [[(3, 4)], [()], [(0,)]]),
    case("repeat_axis", lambda x: x.repeat(3, axis=-1), lambda x: np.repeat(x, 3, axis=-1),
         [[(3, 2)], [(2, 0)]]),
    case("repeat_zero", lambda x: T.repeat(x, 0, axis=0), lambda x: np.repeat(x, 0, axis=0),
         [[(3, 2)]]),
    case("repeat_list", lambda x: T.repeat(x, [1, 0, 3], axis=0),
         lambda x: np.repeat(x, [1, 0, 3], axis=0), [[(3, 2)], [(3,)]]),
    case("repeat_symbolic", lambda x, r: T.repeat(x, r, axis=1),
         lambda x, r: np.repeat(x, r, axis=1), [[(2, 3), (3,)], [(2, 3), ()]],
         make_inputs=lambda rng, dt, shapes: [
             rng.uniform(-2, 2, shapes[0]).astype(dt),
             rng.integers(0, 3, size=shapes[1]).astype("int32")]),
    case("arange", lambda x: T.arange(x.shape[0]), lambda x: np.arange(len(x)),
         [[(5,)], [(0,)]], grad=False),
    case("arange_symbolic", lambda a, b, c: T.arange(a, b, c),
         lambda a, b, c: np.arange(a, b, c), [[(), (), ()]], FLOATS, grad=False,
         make_inputs=lambda rng, dt, shapes: [np.array(0.5, dt), np.array(4, dt),
                                              np.array(0.75, dt)]),
    case("arange_dtype", lambda x: T.arange(1, x.shape[0] * 2, 3, dtype=x.dtype),
         lambda x: np.arange(1, len(x) * 2, 3, dtype=x.dtype), [[(5,)]], grad=False),
    case("arange_negative_step", lambda x: T.arange(x.shape[0], -1, -2),
         lambda x: np.arange(len(x), -1, -2), [[(5,)]], grad=False),
    case("eye", lambda x: T.eye(x.shape[0], 4, k=1, dtype=x.dtype),
         lambda x: np.eye(len(x), 4, k=1, dtype=x.dtype), [[(3,)], [(0,)]], grad=False),
    case("eye_square", lambda x: T.eye(3) * x, lambda x: np.eye(3) * x, [[()]], FLOATS),
    case("shape", T.shape, lambda x: np.array(x.shape, dtype="int64"),
         [[(3, 4)], [()], [(0, 2)]], grad=False),
    case("shape_entry", lambda x: x.shape[-1], lambda x: np.array(x.shape[-1]),
         [[(3, 4)]], grad=False),
]


test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_row():
    from tracegrad.ops import alloc, shape, shape_static
    covered = {c.name for c in CASES} | {c.name.split("_")[0] for c in CASES}
    covered |= {"make_vector"}  # stack of scalars
    public = shape.__all__ + shape_static.__all__ + alloc.__all__
    missing = [name for name in public if name not in covered]
    assert not missing, f"shape functions without a table case: {missing}"


# ------------------------------------------------------------ static shapes
def test_static_shapes_propagate():
    x = T.tensor("float64", shape=(3, 4))
    assert x.reshape((2, -1)).type.shape == (2, 6)
    assert x.reshape((x.shape[0] * 4,)).type.shape == (12,)
    assert x.flatten().type.shape == (12,)
    assert x.T.type.shape == (4, 3)
    assert x.dimshuffle("x", 1, 0).type.shape == (1, 4, 3)
    assert T.concatenate([x, x], axis=1).type.shape == (3, 8)
    assert T.stack([x, x], axis=1).type.shape == (3, 2, 4)
    assert [p.type.shape for p in T.split(x, [1, 3], 2, axis=1)] == [(3, 1), (3, 3)]
    assert T.broadcast_to(T.dvector(), x.shape).type.shape == (3, 4)
    assert T.zeros_like(x).type.shape == (3, 4)
    assert T.zeros((x.shape[1], 2)).type.shape == (4, 2)
    assert T.alloc(0.0, x.shape[0], 7).type.shape == (3, 7)
    assert T.arange(x.shape[0]).type.shape == (3,)
    assert T.arange(1, 10, 4).type.shape == (3,)
    assert T.eye(3, 5).type.shape == (3, 5)
    assert T.repeat(x, 2, axis=1).type.shape == (3, 8)
    assert T.repeat(x, [1, 2, 3], axis=0).type.shape == (6, 4)
    assert T.expand_dims(x, -1).type.shape == (3, 4, 1)
    assert T.shape(x).type.shape == (2,)


def test_partly_known_shapes_stay_partly_known():
    x = T.tensor("float64", shape=(None, 4))
    assert x.reshape((x.shape[0], 2, 2)).type.shape == (None, 2, 2)
    assert T.zeros_like(x).type.shape == (None, 4)
    assert T.zeros((x.shape[1], x.shape[0])).type.shape == (4, None)
    assert T.broadcast_to(T.dvector(), (x.shape[0], 4)).type.shape == (None, 4)
    assert T.concatenate([x, x]).type.shape == (None, 4)
    assert x.reshape(T.concatenate([x.shape[1:], x.shape[:1]]), ndim=2).type.shape == (4, None)
    assert T.tensor("float64", shape=(6, None)).reshape((-1, 2)).type.shape == (None, 2)
    assert T.tensor("float64", shape=(6, 2)).reshape((T.lscalar(), 4)).type.shape == (3, 4)


def test_static_value_folds_shape_arithmetic():
    from tracegrad.ops.shape_static import static_value
    x = T.tensor("float64", shape=(3, 4))
    assert static_value(x.shape[0] * x.shape[1] - 2) == 10
    assert static_value(T.dmatrix().shape[0]) is None
    assert list(static_value(x.shape)) == [3, 4]


# ------------------------------------------------------------ build-time errors
@pytest.mark.parametrize("build, pattern", [
    (lambda: T.tensor("float64", shape=(3, 4)).reshape((5, 2)), r"\(3, 4\).*\(5, 2\)"),
    (lambda: T.tensor("float64", shape=(3, 4)).reshape((5, -1)), r"\(3, 4\).*\(5, -1\)"),
    (lambda: T.dmatrix().reshape((-1, -1)), "one unknown"),
    (lambda: T.concatenate([T.tensor("float64", shape=(3, 4)),
                            T.tensor("float64", shape=(2, 5))]), r"\(3, 4\).*\(2, 5\)"),
    (lambda: T.concatenate([T.dmatrix(), T.dvector()]), r"\(\?, \?\).*\(\?,\)"),
    (lambda: T.stack([T.tensor("float64", shape=(3,)), T.tensor("float64", shape=(4,))]),
     r"\(3,\).*\(4,\)"),
    (lambda: T.broadcast_to(T.tensor("float64", shape=(3,)), (2, 4)), r"\(3,\).*\(2, 4\)"),
    (lambda: T.alloc(T.tensor("float64", shape=(3,)), 2, 4), r"\(3,\).*\(2, 4\)"),
    (lambda: T.split(T.tensor("float64", shape=(5,)), [1, 2], 2), r"\(5,\)"),
    (lambda: T.split(T.tensor("float64", shape=(5,)), 2), r"\(5,\)"),
    (lambda: T.dimshuffle(T.dmatrix(), (1,)), r"drop axis 0.*\(\?, \?\)"),
    (lambda: T.squeeze(T.tensor("float64", shape=(3, 4)), 1), r"\(3, 4\)"),
    (lambda: T.repeat(T.tensor("float64", shape=(3,)), [1, 2]), r"\(3,\)"),
])
def test_impossible_graphs_raise_at_build_time(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


def test_bad_arguments():
    x = T.dmatrix()
    with pytest.raises(TypeError, match="ndim"):
        x.reshape(T.lvector())
    with pytest.raises(TypeError, match="integer"):
        x.reshape((x.shape[0] / 2, 2))
    with pytest.raises(np.exceptions.AxisError):
        T.transpose(x, (0, 2))
    with pytest.raises(ValueError, match="axes"):
        T.transpose(x, (0, 0))
    with pytest.raises(ValueError, match="pass axis= by keyword"):
        T.split(T.dvector(), [1, 2], 1)
    with pytest.raises(ValueError, match="zero-dimensional"):
        T.concatenate([T.dscalar(), T.dscalar()])
    with pytest.raises(ValueError, match="step"):
        T.arange(0, 5, 0)


def test_run_time_shape_errors():
    x = T.dmatrix("x")
    with pytest.raises(ValueError, match="cannot reshape"):
        x.reshape((5, -1)).eval({x: np.zeros((3, 4))})
    with pytest.raises(ValueError, match="squeeze"):
        T.squeeze(x, 1).eval({x: np.zeros((3, 4))})
    n = T.lscalar("n")
    with pytest.raises(ValueError, match="add up"):
        T.split(x, [n, 1], 2).pop().eval({x: np.zeros((3, 4)), n: 1})


def test_squeeze_without_axis_drops_only_static_length_one_axes():
    x = T.tensor("float64", shape=(None, 1, 3))
    assert T.squeeze(x).type.shape == (None, 3)
    assert T.squeeze(T.dmatrix()).ndim == 2


def test_shape_ops_are_views_and_constructors_are_not():
    x = T.dmatrix()
    for view in (x.reshape((-1,)), x.T, x.dimshuffle(0, "x", 1), T.broadcast_to(x, (2, 3, 4)),
                 x.flatten(), T.squeeze(x, 0)):
        assert view.owner.op.view_map == {0: [0]}
    assert T.zeros_like(x).owner.op.view_map == {}
    assert T.concatenate([x, x]).owner.op.view_map == {}


# ------------------------------------------------------------ gradients of special cases
def test_grad_of_split_with_unused_pieces():
    x = T.dvector("x")
    a, b, c = T.split(x, [1, 2, 2], 3)
    g = tg.grad((b * 3).sum(), x)
    np.testing.assert_allclose(g.eval({x: np.arange(5.0)}), [0, 3, 3, 0, 0])


def test_grad_of_repeat_with_symbolic_vector_repeats():
    x = T.dvector("x")
    r = T.lvector("r")
    cost = (T.repeat(x, r) * T.arange(T.sum(r))).sum()
    g = tg.grad(cost, x)
    got = g.eval({x: np.ones(3), r: np.array([2, 0, 3])})
    np.testing.assert_allclose(got, [0 + 1, 0, 2 + 3 + 4])


def test_second_order_through_shape_ops():
    x = T.dvector("x")
    y = (T.repeat(x, 2).reshape((-1, 2)).T ** 3).sum()
    gx = tg.grad(y, x)
    gg = tg.grad(gx.sum(), x)
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(gx.eval({x: v}), 2 * 3 * v ** 2)
    np.testing.assert_allclose(gg.eval({x: v}), 2 * 6 * v)


# ------------------------------------------------------------ NumPy dispatch
def test_numpy_functions_build_graphs():
    x = T.dmatrix("x")
    v = np.arange(6.0).reshape(2, 3)
    checks = [
        (np.reshape(x, (3, 2)), v.reshape(3, 2)),
        (np.reshape(x, shape=-1), v.reshape(-1)),
        (np.transpose(x), v.T),
        (np.concatenate([x, v], axis=1), np.concatenate([v, v], axis=1)),
        (np.concatenate([x, x], axis=None), np.concatenate([v, v], axis=None)),
        (np.stack([x, x], axis=-1), np.stack([v, v], axis=-1)),
        (np.split(x, 3, axis=1)[2], np.split(v, 3, axis=1)[2]),
        (np.split(x, [1], axis=1)[1], np.split(v, [1], axis=1)[1]),
        (np.squeeze(np.expand_dims(x, 0), 0), v),
        (np.broadcast_to(x, (4, 2, 3)), np.broadcast_to(v, (4, 2, 3))),
        (np.zeros_like(x), np.zeros_like(v)),
        (np.ones_like(x, dtype="int32"), np.ones_like(v, dtype="int32")),
        (np.zeros_like(x, shape=(4,)), np.zeros(4)),
        (np.repeat(x, 2, axis=0), np.repeat(v, 2, axis=0)),
        (np.ravel(x), np.ravel(v)),
        (T.as_tensor_variable(np.shape(x)), np.array(np.shape(v))),  # np.shape: a tuple
        (np.swapaxes(x, 0, 1), np.swapaxes(v, 0, 1)),
        (np.moveaxis(x, 0, -1), np.moveaxis(v, 0, -1)),
        (np.concatenate([x, x], dtype="float32"), np.concatenate([v, v]).astype("float32")),
    ]
    for got, expected in checks:
        assert isinstance(got, T.TensorVariable)
        value = got.eval({x: v})
        assert value.dtype == expected.dtype
        np.testing.assert_array_equal(value, expected)
    assert np.ndim(x) == 2
    n, m = np.shape(x)
    assert n.eval({x: v}) == 2 and m.eval({x: v}) == 3


def test_numpy_dispatch_rejects_what_it_cannot_do():
    x = T.dmatrix()
    with pytest.raises(TypeError, match="order"):
        np.reshape(x, -1, order="F")
    with pytest.raises(TypeError, match="out="):
        np.concatenate([x, x], out=np.zeros((4, 4)))


def test_list_of_variables_becomes_a_vector():
    a, b = T.lscalars("a", "b")
    v = T.as_tensor_variable([a, b, 3])
    assert v.type.shape == (3,) and v.dtype == "int64"
    np.testing.assert_array_equal(v.eval({a: 1, b: 2}), [1, 2, 3])


def test_floatx_defaults():
    old = tg.config.floatX
    tg.config.floatX = "float32"
    try:
        assert T.zeros((2, 3)).dtype == "float32"
        assert T.eye(2).dtype == "float32"
        assert T.alloc(0.0, 3).dtype == "float32"
        assert T.fill(T.fvector(), 1.5).dtype == "float32"
        assert T.fill(T.ivector(), 1).dtype == "int32"
    finally:
        tg.config.floatX = old
