"""Table-driven tests of ``cumsum``, ``cumprod``, ``sort``, ``argsort``,
``partition`` and ``argpartition``
(forward vs NumPy per dtype and axis, 0-length and 0-d inputs; gradients vs
finite differences, ``cumprod`` with zeros, ``sort`` away from ties), plus
dtypes, errors, NumPy dispatch and the variable methods."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

NUMBERS = ("float64", "float32", "int32", "complex128", "bool")
ORDERED = ("float64", "float32", "int32", "complex128")
COMPLEX = {"grad_dtypes": ("float64", "complex128")}

# (axis, shape sets): 0-length axes and 0-d inputs (axis=None) included.
AXES = [
    (None, [[(3, 4)], [()], [(2, 0)]]),
    (0, [[(3, 4)], [(0, 3)], [(5,)]]),
    (-1, [[(2, 3, 4)], [(3, 0)]]),
    (1, [[(2, 3, 4)]]),
]
# (partition needs kth in range: no 0-length or 0-d inputs)
PART_AXES = [(None, [[(3, 4)], [(5,)]]), (0, [[(3, 4)], [(4, 2, 3)]]),
             (-1, [[(2, 3, 4)], [(4,)]])]


def _with_zeros(rng, dtype, shapes):
    # Lanes along axis 1 with no zero, one zero (first, middle, last) and two.
    rows = [[1.5, -0.5, 2.0, 0.7], [0.0, 1.2, -0.8, 1.1], [0.9, 0.0, 1.3, -1.4],
            [1.1, 0.6, -1.2, 0.0], [0.8, 0.0, 1.7, 0.0], [0.0, 0.0, 0.5, 1.2]]
    a = np.array(rows, dtype=dtype)
    if a.dtype.kind == "c":
        a = a * (1 + 0.5j)
    return [a]


def _no_ties(rng, dtype, shapes):
    (shape,) = shapes
    size = int(np.prod(shape))
    a = rng.permutation(size).reshape(shape) * 0.25 - 1.0
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.uniform(-1, 1, size=shape)
    return [a.astype(dtype)]


def _cases(name, fn, ref, dtypes, axes=AXES, **kw):
    return [OpCase(f"{name}[axis={axis}]", lambda x, axis=axis: fn(x, axis=axis),
                   lambda a, axis=axis: ref(a, axis=axis), shapes, dtypes, **kw)
            for axis, shapes in axes]


CASES = (
    _cases("cumsum", T.cumsum, np.cumsum, NUMBERS, **COMPLEX)
    + _cases("cumprod", T.cumprod, np.cumprod, NUMBERS, domain=(-1.5, 1.5), **COMPLEX)
    + _cases("sort", T.sort, np.sort, ORDERED, make_inputs=None, **COMPLEX)
    + _cases("argsort", T.argsort, np.argsort, ORDERED + ("bool",), grad=False)
    + _cases("partition[kth=1]", lambda x, axis: T.partition(x, 1, axis=axis),
             lambda a, axis: np.partition(a, 1, axis=axis), ORDERED, axes=PART_AXES,
             **COMPLEX)
    + _cases("partition[kth=(0,-1)]", lambda x, axis: T.partition(x, (0, -1), axis=axis),
             lambda a, axis: np.partition(a, (0, -1), axis=axis), ORDERED, axes=PART_AXES)
    + _cases("argpartition[kth=2]", lambda x, axis: T.argpartition(x, 2, axis=axis),
             lambda a, axis: np.argpartition(a, 2, axis=axis), ORDERED + ("bool",),
             axes=PART_AXES, grad=False)
    + [
        OpCase("cumsum[dtype=float64]", lambda x: T.cumsum(x, 1, dtype="float64"),
               lambda a: np.cumsum(a, 1, dtype="float64"), [[(3, 4)]],
               ("float32", "int32", "bool")),
        OpCase("cumsum[dtype=int32]", lambda x: T.cumsum(x, 0, dtype="int32"),
               lambda a: np.cumsum(a, 0, dtype="int32"), [[(3, 4)]],
               ("int64", "int32", "bool", "float64"), grad=False),
        OpCase("cumprod[dtype=complex128]", lambda x: T.cumprod(x, dtype="complex128"),
               lambda a: np.cumprod(a, dtype="complex128"), [[(3, 4)]], ("float64", "int32")),
        OpCase("cumprod[zeros]", lambda x: T.cumprod(x, axis=1),
               lambda a: np.cumprod(a, axis=1), [[(6, 4)]], ("float64", "float32", "complex128"),
               make_inputs=_with_zeros, **COMPLEX),
        OpCase("cumprod[zeros,axis=-2]", lambda x: T.cumprod(x.T, axis=-2),
               lambda a: np.cumprod(a.T, axis=-2), [[(6, 4)]], ("float64",),
               make_inputs=_with_zeros),
        OpCase("argsort[stable]", lambda x: T.argsort(x, kind="stable"),
               lambda a: np.argsort(a, kind="stable"), [[(4, 6)], [(0,)]], ("int32", "bool"),
               grad=False),
        OpCase("argsort[stable=True]", lambda x: T.argsort(x, axis=0, stable=True),
               lambda a: np.argsort(a, axis=0, stable=True), [[(6, 3)]], ("int32",),
               grad=False),
        OpCase("sort[kind=mergesort]", lambda x: T.sort(x, axis=0, kind="mergesort"),
               lambda a: np.sort(a, axis=0, kind="mergesort"), [[(5, 3)]], ("int32", "float64"),
               make_inputs=_no_ties),
    ]
)

for _case in CASES:
    if _case.name.startswith(("sort", "partition")):
        _case.make_inputs = _no_ties      # gradients away from ties

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import cumulative
    assert uncovered_functions(cumulative.__all__, CASES) == []


# ------------------------------------------------------------------ values
def test_sort_forward_with_ties_matches_numpy():
    a = np.array([[3, 1, 3, 2, 1], [0, 0, 0, 5, -1]], dtype="int32")
    x = T.imatrix("x")
    np.testing.assert_array_equal(T.sort(x).eval({x: a}), np.sort(a))
    np.testing.assert_array_equal(T.argsort(x, stable=True).eval({x: a}),
                                  np.argsort(a, stable=True))


def test_sort_gradient_with_ties_sums_to_the_lane():
    # At ties the gradient goes to one of the tied entries: the total per lane
    # is still preserved.
    x = T.dvector("x")
    w = np.arange(1.0, 6.0)
    g = tg.grad(T.sum(T.sort(x) * w), x)
    value = g.eval({x: np.array([2.0, 1.0, 2.0, 0.0, 2.0])})
    assert value.sum() == w.sum()
    np.testing.assert_array_equal(value[[1, 3]], [2.0, 1.0])
    assert sorted(value[[0, 2, 4]]) == [3.0, 4.0, 5.0]


def test_cumprod_gradient_with_zeros_is_exact():
    x = T.dvector("x")
    a = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    g = tg.grad(T.sum(T.cumprod(x)), x).eval({x: a})
    # d/dx1 = sum_i prod_{j<=i, j!=1} = 2 + 2*3 + 0 + 0; after the first zero: 0
    np.testing.assert_array_equal(g, [1.0, 8.0, 0.0, 0.0, 0.0])
    b = np.array([2.0, -1.0, 3.0])
    g = tg.grad(T.sum(T.cumprod(x)), x).eval({x: b})
    np.testing.assert_allclose(g, [1 - 1 - 3, 2 + 6, -2])


def test_second_order_gradient_of_cumsum_and_cumprod():
    x = T.dvector("x")
    a = np.array([1.5, -0.5, 2.0])
    h = tg.hessian(T.sum(T.cumprod(x)), x).eval({x: a})
    # cost = x0 + x0 x1 + x0 x1 x2
    np.testing.assert_allclose(h, [[0, 1 + a[2], a[1]], [1 + a[2], 0, a[0]],
                                   [a[1], a[0], 0]])
    h = tg.hessian(T.sum(T.cumsum(x) ** 2), x).eval({x: a})
    np.testing.assert_allclose(h, 2 * np.array([[3, 2, 1], [2, 2, 1], [1, 1, 1]]))


@pytest.mark.parametrize("fn,dtype,expected", [
    (T.cumsum, "int32", "int64"), (T.cumsum, "bool", "int64"), (T.cumsum, "uint8", "uint64"),
    (T.cumsum, "float32", "float32"), (T.cumprod, "int8", "int64"),
    (T.cumprod, "complex64", "complex64"), (T.sort, "int16", "int16"),
    (T.argsort, "float32", "int64"),
])
def test_output_dtypes(fn, dtype, expected):
    assert fn(T.TensorType(dtype, (None, 3))("x")).dtype == expected


def test_static_shapes():
    x = T.TensorType("float64", (2, 3))("x")
    assert T.cumsum(x).type.shape == (6,)
    assert T.cumprod(x, axis=1).type.shape == (2, 3)
    assert T.sort(x, axis=None).type.shape == (6,)
    assert T.argsort(x).type.shape == (2, 3)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("build,error,pattern", [
    (lambda x: T.cumsum(x, axis=2), np.exceptions.AxisError, "axis 2"),
    (lambda x: T.cumprod(x, axis=(0, 1)), TypeError, "integer"),
    (lambda x: T.sort(x, axis=-3), np.exceptions.AxisError, "axis -3"),
    (lambda x: T.sort(x, kind="bogus"), ValueError, "kind"),
    (lambda x: T.argsort(x, order="f"), ValueError, "order"),
    (lambda x: T.argsort(x, kind="stable", stable=True), ValueError, "stable"),
    (lambda x: T.cumsum(x, out=x), TypeError, "out="),
    (lambda x: T.partition(x, 1, kind="quicksort"), ValueError, "introselect"),
    (lambda x: T.argpartition(x, 1.5), TypeError, "kth"),
    (lambda x: T.partition(T.TensorType("float64", (2, 3))("y"), 3), ValueError,
     "out of bounds"),
    (lambda x: T.partition(x, x), TypeError, "known"),
])
def test_errors_name_the_argument(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build(T.dmatrix("x"))


def test_axis_of_a_0d_input():
    s = T.dscalar("s")
    with pytest.raises(np.exceptions.AxisError):
        T.cumsum(s, axis=0)
    assert T.cumsum(s).eval({s: 2.0}).tolist() == [2.0]


# ------------------------------------------------------------------ dispatch
def test_numpy_functions_build_graphs():
    x = T.dmatrix("x")
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    for np_fn, kw in [(np.cumsum, {}), (np.cumsum, {"axis": 0}), (np.cumprod, {"axis": -1}),
                      (np.sort, {}), (np.sort, {"axis": None}), (np.argsort, {"axis": 0}),
                      (np.partition, {"kth": 1}), (np.argpartition, {"kth": 0, "axis": 0})]:
        out = np_fn(x, **kw)
        assert isinstance(out, T.TensorVariable), np_fn
        np.testing.assert_allclose(out.eval({x: a}), np_fn(a, **kw))


def test_variable_methods():
    x = T.dmatrix("x")
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    np.testing.assert_allclose(x.cumsum(axis=1).eval({x: a}), a.cumsum(axis=1))
    np.testing.assert_allclose(x.cumprod().eval({x: a}), a.cumprod())
    np.testing.assert_allclose(x.sort(axis=0).eval({x: a}), np.sort(a, axis=0))
    np.testing.assert_array_equal(x.argsort().eval({x: a}), a.argsort())


def test_compiled_function_and_gradient():
    x = T.dmatrix("x")
    cost = T.sum(T.sort(T.cumsum(x, axis=1), axis=0)[0] * T.cumprod(x, axis=0)[-1])
    f = tg.function([x], [cost, tg.grad(cost, x)])
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    value, grad = f(a)
    ref = np.sum(np.sort(np.cumsum(a, 1), 0)[0] * np.cumprod(a, 0)[-1])
    np.testing.assert_allclose(value, ref)
    assert grad.shape == a.shape and np.isfinite(grad).all()
