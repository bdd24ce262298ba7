"""Op table of Theano's shape helpers (tracegrad/ops/theano_shape.py) and
Theano's ``stack(a, b, ...)`` form."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

FLOATS = ("float64", "float32", "complex128")

CASES = [
    OpCase("join", lambda a, b: T.join(1, a, b), lambda a, b: np.concatenate([a, b], 1),
           [[(2, 3), (2, 4)], [(0, 3), (0, 1)]], FLOATS, grad_dtypes=("float64", "complex128")),
    OpCase("join[list]", lambda a, b: T.join(0, [a, b]), lambda a, b: np.concatenate([a, b]),
           [[(2,), (3,)]], FLOATS),
    OpCase("stacklists", lambda a, b, c, d: T.stacklists([[a, b], [c, d]]),
           lambda a, b, c, d: np.array([[a, b], [c, d]]),
           [[(), (), (), ()], [(2,), (2,), (2,), (2,)]], FLOATS),
    OpCase("stack[varargs]", lambda a, b: T.stack(a, b), lambda a, b: np.stack([a, b]),
           [[(), ()], [(2, 3), (2, 3)]], FLOATS),
    OpCase("stack[varargs axis]", lambda a, b: T.stack(a, b, axis=1),
           lambda a, b: np.stack([a, b], axis=1), [[(2, 3), (2, 3)]], FLOATS),
    OpCase("shape_padleft", lambda a: T.shape_padleft(a, 2), lambda a: a[None, None],
           [[(2, 3)], [()]], FLOATS),
    OpCase("shape_padright", lambda a: T.shape_padright(a), lambda a: a[..., None],
           [[(2, 3)], [(0,)]], FLOATS),
    OpCase("shape_padaxis", lambda a: T.shape_padaxis(a, -2), lambda a: np.expand_dims(a, -2),
           [[(2, 3)]], FLOATS),
    OpCase("specify_shape", lambda a: T.specify_shape(a, (2, None)) * 2, lambda a: a * 2,
           [[(2, 3)], [(2, 0)]], FLOATS),
]

test_forward, test_grad = table_tests(CASES)


def test_specify_shape_sets_static_lengths_and_checks_at_run_time():
    x = T.dmatrix("x")
    y = T.specify_shape(x, (2, 3))
    assert y.type.shape == (2, 3)
    f = tg.function([x], y)
    np.testing.assert_array_equal(f(np.ones((2, 3))), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected shape \(2, 3\), got \(3, 2\)"):
        f(np.ones((3, 2)))
    n = T.lscalar("n")
    g = tg.function([x, n], T.specify_shape(x, (n, None)).sum())
    assert g(np.ones((4, 2)), 4) == 8.0
    with pytest.raises(ValueError, match="expected shape"):
        g(np.ones((4, 2)), 3)
    with pytest.raises(ValueError, match="2 lengths given for a 1-d input"):
        T.specify_shape(T.dvector(), (2, 3))
    with pytest.raises(ValueError, match="static shape"):
        T.specify_shape(T.TensorType("float64", (2,))(), (3,))


def test_special_values_pass_through_the_shape_helpers():
    x = T.dvector("x")
    v = np.array([np.nan, np.inf, -np.inf, -0.0])
    out = tg.function([x], [T.shape_padleft(x), T.join(0, x, x), T.specify_shape(x, (4,))])(v)
    np.testing.assert_array_equal(out[0], v[None])
    np.testing.assert_array_equal(out[1], np.r_[v, v])
    assert np.signbit(out[2][3])


@pytest.mark.parametrize("spec", [(slice(0, 3), slice(0, 2)), (slice(1, 7, 2),),
                                  (slice(0, 2), slice(0, 3), slice(2, 4))])
def test_mgrid_and_ogrid_match_numpy(spec):
    dense = tg.function([], T.mgrid[spec])()
    sparse = tg.function([], T.ogrid[spec])()
    for got, want in zip(dense, np.mgrid[spec]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(sparse, np.ogrid[spec]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="stop"):
        T.mgrid[0:]


def test_shape_padaxis_rejects_an_axis_out_of_range():
    with pytest.raises(IndexError, match="axis 3"):
        T.shape_padaxis(T.dvector(), 3)
