"""Table-driven tests of the reductions (forward vs NumPy per dtype, axis and
keepdims case; gradients vs finite differences), plus dtype/static-shape
inference, empty reductions, tie handling, stability and NumPy dispatch."""
import numpy as np
import pytest

import tracegrad.tensor as T
from optable import OpCase, table_tests



def np_logsumexp(a, axis=None, keepdims=False):
    """Reference: the naive formula in float64 (inputs are small here)."""
    return np.log(np.sum(np.exp(a.astype("float64")), axis=axis,
                         keepdims=keepdims)).astype(a.dtype)

FLOATS = ("float64", "float32")
WITH_INTS = ("float64", "float32", "int32")
# Reductions defined on complex numbers: forward and gradients also checked
# for complex128 (complex finite differences).
COMPLEX = {"grad_dtypes": ("float64", "complex128")}
WITH_COMPLEX = WITH_INTS + ("complex128",)

# (axis, keepdims, shape sets); 0-length axes and 0-d inputs included.
AXIS_CONFIGS = [
    (None, False, [[(3, 4)], [()], [(2, 0)]]),
    (0, False, [[(3, 4)], [(0, 3)], [(5,)]]),
    (-1, True, [[(2, 3, 4)], [(3, 0)]]),
    ((0, 2), False, [[(2, 3, 4)], [(2, 0, 3)]]),
    ((-1, 0), True, [[(2, 3, 4)]]),
]


def _has_empty_reduction(axis, shapes):
    shape = shapes[0]
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    return any(shape[a] == 0 for a in axes) if shape else False


def reduce_cases(name, ref, dtypes, grad=True, allow_empty=True, fn=None, **kw):
    fn = fn or getattr(T, name)
    cases = []
    for axis, keepdims, shape_sets in AXIS_CONFIGS:
        shapes = [s for s in shape_sets if allow_empty or not _has_empty_reduction(axis, s)]
        cases.append(OpCase(
            f"{name}[axis={axis},keepdims={keepdims}]",
            lambda x, axis=axis, keepdims=keepdims: fn(x, axis=axis, keepdims=keepdims),
            lambda a, axis=axis, keepdims=keepdims: ref(a, axis=axis, keepdims=keepdims),
            shapes, dtypes, grad=grad, **kw))
    return cases


def _no_ties(rng, dtype, shapes):
    # A permutation of distinct values: max/min are unique and well separated.
    (shape,) = shapes
    size = int(np.prod(shape))
    return [(rng.permutation(size).reshape(shape) * 0.25 - 1.0).astype(dtype)]


def _away_from_zero(rng, dtype, shapes):
    (shape,) = shapes
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return [(sign * rng.uniform(0.5, 1.5, size=shape)).astype(dtype)]


CASES = (
    reduce_cases("sum", np.sum, WITH_COMPLEX + ("bool",), **COMPLEX)
    + reduce_cases("prod", np.prod, WITH_COMPLEX, make_inputs=None, domain=(-1.5, 1.5),
                   **COMPLEX)
    + reduce_cases("mean", np.mean, WITH_COMPLEX, allow_empty=False, **COMPLEX)
    + reduce_cases("max", np.max, WITH_INTS, allow_empty=False)
    + reduce_cases("min", np.min, WITH_INTS, allow_empty=False)
    + reduce_cases("all", np.all, ("bool", "float64", "int32"), grad=False)
    + reduce_cases("any", np.any, ("bool", "float64", "int32"), grad=False)
    + reduce_cases("var", np.var, WITH_COMPLEX, allow_empty=False, **COMPLEX)
    + reduce_cases("std", np.std, WITH_COMPLEX, allow_empty=False, **COMPLEX)
    + reduce_cases("logsumexp", np_logsumexp, FLOATS, allow_empty=False,
                   domain=(-3.0, 3.0))
    + [
        OpCase("var[ddof=1]", lambda x: T.var(x, axis=1, ddof=1),
               lambda a: np.var(a, axis=1, ddof=1), [[(3, 4)], [(2, 5, 3)]], WITH_INTS),
        OpCase("std[ddof=1,keepdims]", lambda x: T.std(x, axis=0, ddof=1, keepdims=True),
               lambda a: np.std(a, axis=0, ddof=1, keepdims=True), [[(3, 4)]], WITH_INTS,
               make_inputs=_away_from_zero),
        OpCase("sum[dtype=float64]", lambda x: T.sum(x, axis=0, dtype="float64"),
               lambda a: np.sum(a, axis=0, dtype="float64"), [[(3, 4)]], WITH_INTS),
        # (no gradient row: a float32 result cannot pass float64 finite differences)
        OpCase("mean[dtype=float32]", lambda x: T.mean(x, axis=1, dtype="float32"),
               lambda a: np.mean(a, axis=1, dtype="float32"), [[(3, 4)]], WITH_INTS,
               grad=False),
        OpCase("prod[dtype=float64]", lambda x: T.prod(x, dtype="float64"),
               lambda a: np.prod(a, dtype="float64"), [[(3, 4)]], WITH_INTS),
        OpCase("argmax[None]", T.argmax, np.argmax, [[(3, 4)], [()], [(5,)]], WITH_INTS,
               grad=False, make_inputs=_no_ties),
        OpCase("argmax[axis=-1]", lambda x: T.argmax(x, axis=-1),
               lambda a: np.argmax(a, axis=-1), [[(3, 4)], [(2, 3, 4)], [(0, 3)]],
               WITH_INTS, grad=False),
        OpCase("argmax[axis=0,keepdims]", lambda x: T.argmax(x, axis=0, keepdims=True),
               lambda a: np.argmax(a, axis=0, keepdims=True), [[(3, 4)]], WITH_INTS,
               grad=False),
        OpCase("argmin[None,keepdims]", lambda x: T.argmin(x, keepdims=True),
               lambda a: np.argmin(a, keepdims=True), [[(3, 4)]], WITH_INTS, grad=False),
        OpCase("argmin[axis=1]", lambda x: T.argmin(x, axis=1),
               lambda a: np.argmin(a, axis=1), [[(3, 4)], [(2, 3, 4)]], WITH_INTS,
               grad=False),
        # Products of groups holding one and two zeros (exact gradients).
        OpCase("prod[zeros]", lambda x: T.prod(x, axis=1),
               lambda a: np.prod(a, axis=1), [[(4, 3)]], FLOATS,
               make_inputs=lambda rng, dtype, shapes: [np.array(
                   [[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 0.5], [0.0, 4.0, 1.0]],
                   dtype=dtype)]),
    ]
)

for _case in CASES:
    # Gradients of max/min are checked away from ties.
    if _case.name.startswith(("max", "min")):
        _case.make_inputs = _no_ties
    # std of a single element (shape ()) is 0 for every value: its gradient,
    # checked here too, must be 0, not 0 * inf = nan.


def _assert_close(got, want):
    if np.asarray(want).dtype == bool:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)


test_forward, test_grad = table_tests(CASES)


# ------------------------------------------------------------------ inference
@pytest.mark.parametrize("fn,dtype,expected", [
    (T.sum, "int32", "int64"), (T.sum, "bool", "int64"), (T.sum, "uint8", "uint64"),
    (T.sum, "float32", "float32"), (T.prod, "int8", "int64"), (T.prod, "float32", "float32"),
    (T.mean, "int32", "float64"), (T.mean, "float32", "float32"), (T.mean, "float16", "float16"),
    (T.var, "int64", "float64"), (T.var, "float32", "float32"), (T.std, "float32", "float32"),
    (T.max, "int8", "int8"), (T.min, "float32", "float32"), (T.argmax, "float32", "int64"),
    (T.all, "float64", "bool"), (T.any, "int32", "bool"), (T.logsumexp, "float32", "float32"),
    (T.logsumexp, "int32", "float64"), (T.var, "complex128", "float64"),
    (T.mean, "complex64", "complex64"),
])
def test_dtype_inference(fn, dtype, expected):
    x = T.tensor(dtype, shape=(None, 3))
    assert fn(x, axis=0).dtype == expected
    assert fn(x).dtype == expected


def test_static_shapes():
    x = T.tensor("float64", shape=(3, None, 5))
    assert T.sum(x, axis=1).type.shape == (3, 5)
    assert T.sum(x, axis=(0, -1), keepdims=True).type.shape == (1, None, 1)
    assert T.max(x).type.shape == ()
    assert T.mean(x, axis=-1).type.shape == (3, None)
    assert T.var(x, axis=0, keepdims=True).type.shape == (1, None, 5)
    assert T.logsumexp(x, axis=2).type.shape == (3, None)
    assert T.argmax(x, axis=0).type.shape == (None, 5)
    assert T.argmax(x, keepdims=True).type.shape == (1, 1, 1)
    assert T.sum(T.dscalar(), axis=None).type.shape == ()


def test_axis_errors():
    x = T.dmatrix("x")
    with pytest.raises(np.exceptions.AxisError):
        T.sum(x, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        T.max(x, axis=-3)
    with pytest.raises(ValueError, match="duplicate"):
        T.sum(x, axis=(0, -2))
    with pytest.raises(TypeError):
        T.sum(x, axis=1.5)
    with pytest.raises(TypeError):
        T.argmax(x, axis=(0, 1))


def test_empty_reductions():
    x = T.dmatrix("x")
    empty = np.zeros((0, 3))
    assert T.sum(x).eval({x: empty}) == 0
    np.testing.assert_array_equal(T.sum(x, axis=0).eval({x: empty}), np.zeros(3))
    np.testing.assert_array_equal(T.prod(x, axis=0).eval({x: empty}), np.ones(3))
    assert T.logsumexp(x).eval({x: empty}) == -np.inf
    # max over an empty axis raises like NumPy: at build time when the static
    # shape knows it, else when run.
    with pytest.raises(ValueError, match="zero-size"):
        T.max(T.tensor("float64", shape=(0, 3)), axis=0)
    with pytest.raises(ValueError, match="zero-size"):
        T.max(x, axis=0).eval({x: empty})
    with pytest.raises(ValueError):
        T.argmin(x).eval({x: empty})
    np.testing.assert_array_equal(T.max(x, axis=1).eval({x: empty}), np.zeros(0))


def _grad_value(cost, x, value):
    return T.grad(cost, x).eval({x: value})


def test_max_min_gradient_shared_by_ties():
    x = T.dvector("x")
    value = np.array([1.0, 3.0, -2.0, 3.0])
    np.testing.assert_allclose(_grad_value(T.max(x), x, value), [0, 0.5, 0, 0.5])
    np.testing.assert_allclose(_grad_value(T.min(x), x, value), [0, 0, 1, 0])
    m = T.dmatrix("m")
    value = np.array([[2.0, 2.0, 2.0], [1.0, 5.0, 0.0]])
    np.testing.assert_allclose(_grad_value((T.max(m, axis=1) * [1.0, 2.0]).sum(), m, value),
                               [[1 / 3, 1 / 3, 1 / 3], [0, 2, 0]])


def test_prod_gradient_with_zeros():
    x = T.dmatrix("x")
    value = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 0.5]])
    expected = np.array([[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.5, -2.0]])
    np.testing.assert_allclose(_grad_value(T.prod(x, axis=1).sum(), x, value), expected)


@pytest.mark.filterwarnings("ignore:divide by zero")  # log(0) for all -inf, as NumPy
def test_logsumexp_stability():
    x = T.dvector("x")
    big = np.array([1000.0, 1000.0])
    np.testing.assert_allclose(T.logsumexp(x).eval({x: big}), 1000 + np.log(2))
    np.testing.assert_allclose(T.logsumexp(x).eval({x: -big}), -1000 + np.log(2))
    np.testing.assert_allclose(_grad_value(T.logsumexp(x), x, big), [0.5, 0.5])
    assert T.logsumexp(x).eval({x: np.array([-np.inf, -np.inf])}) == -np.inf
    assert T.logsumexp(x).eval({x: np.array([np.inf, 0.0])}) == np.inf
    f = T.fvector("f")
    out = T.logsumexp(f).eval({f: np.array([100.0, 0.0], dtype="float32")})
    assert out.dtype == np.float32 and np.isclose(out, 100.0)


def test_float32_gradients_stay_float32():
    x = T.fmatrix("x")
    for cost in (T.sum(x), T.mean(x), T.var(x), T.prod(x, axis=0).sum(), T.max(x),
                 T.logsumexp(x, axis=1).sum()):
        assert T.grad(cost, x).dtype == "float32"
    assert T.grad(T.sum(x, dtype="float64"), x).dtype == "float32"


def test_second_order():
    x = T.dvector("x")
    value = np.array([0.3, -1.2, 2.0])
    first = np.eye(3)[0]
    h = T.grad((T.grad(T.logsumexp(x), x) * first).sum(), x).eval({x: value})
    p = np.exp(value - np_logsumexp(value))
    np.testing.assert_allclose(h, p[0] * (np.eye(3)[0] - p), rtol=1e-10)
    h = T.grad((T.grad(T.var(x), x) * np.eye(3)[1]).sum(), x).eval({x: value})
    np.testing.assert_allclose(h, 2 / 3 * (np.eye(3)[1] - 1 / 3), rtol=1e-10)


def test_theano_forms():
    x = T.imatrix("x")
    value = np.arange(12, dtype="int32").reshape(3, 4) % 5
    m, a = T.max_and_argmax(x, axis=1)
    np.testing.assert_array_equal(m.eval({x: value}), value.max(1))
    np.testing.assert_array_equal(a.eval({x: value}), value.argmax(1))
    s = T.sum(x, acc_dtype="float64")
    assert s.dtype == "int64" and s.eval({x: value}) == value.sum()
    y = T.dmatrix("y")
    np.testing.assert_allclose(T.var(y, axis=0, corrected=True).eval({y: value * 1.0}),
                               np.var(value, axis=0, ddof=1))


def test_methods():
    x = T.dmatrix("x")
    value = np.random.default_rng(0).normal(size=(3, 4))
    for got, want in [(x.sum(axis=0), value.sum(0)), (x.mean(), value.mean()),
                      (x.max(axis=1, keepdims=True), value.max(1, keepdims=True)),
                      (x.min(), value.min()), (x.prod(axis=-1), value.prod(-1)),
                      (x.var(ddof=1), value.var(ddof=1)), (x.std(axis=0), value.std(0)),
                      (x.argmax(axis=1), value.argmax(1)), (x.argmin(), value.argmin()),
                      (x.all(axis=0), value.all(0)), (x.any(), value.any())]:
        _assert_close(got.eval({x: value}), want)


def test_numpy_dispatch():
    x = T.dmatrix("x")
    value = np.random.default_rng(1).normal(size=(3, 4))
    cases = [
        (np.sum(x, axis=0), value.sum(axis=0)),
        (np.sum(x, 1, keepdims=True), value.sum(1, keepdims=True)),
        (np.prod(x), value.prod()),
        (np.mean(x, axis=-1), value.mean(axis=-1)),
        (np.var(x, axis=0, ddof=1), value.var(axis=0, ddof=1)),
        (np.std(x, correction=1), value.std(ddof=1)),
        (np.max(x, axis=0), value.max(axis=0)), (np.amin(x), value.min()),
        (np.argmax(x, axis=1), value.argmax(axis=1)), (np.argmin(x), value.argmin()),
        (np.all(x > -5), True), (np.any(x > 5, axis=0), (value > 5).any(axis=0)),
        (np.add.reduce(x), np.add.reduce(value)),
        (np.add.reduce(x, axis=None), value.sum()),
        (np.multiply.reduce(x, axis=1), value.prod(1)),
        (np.maximum.reduce(x, axis=1, keepdims=True), value.max(1, keepdims=True)),
        (np.minimum.reduce(x), value.min(0)),
        (np.logical_or.reduce(x > 1), (value > 1).any(0)),
    ]
    for got, want in cases:
        assert isinstance(got, T.TensorVariable)
        _assert_close(got.eval({x: value}), want)
    with pytest.raises(TypeError, match="out="):
        np.sum(x, out=np.zeros(4))
    with pytest.raises(TypeError, match="where"):
        np.sum(x, where=np.ones((3, 4), bool))


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import reduce
    assert T.amax is T.max and T.amin is T.min  # aliases, covered by max/min
    # max_and_argmax pairs two covered ops (test above); normalize_axis is a helper.
    missing = set(uncovered_functions(reduce.__all__, CASES)) - {
        "amax", "amin", "max_and_argmax", "normalize_axis"}
    assert not missing, f"reductions without a table case: {sorted(missing)}"
