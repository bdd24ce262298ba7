"""A product's gradient times the seed 1 of a scalar cost is the other factor
itself (no ``1 * c`` node for the compile to fold), and only where that
product would be the factor exactly: same dtype, not a weak constant."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.trace import toposort


def _constant_products(outputs):
    return [n for n in toposort(list(outputs)) if n.op.name == "mul"
            and all(isinstance(v, T.TensorConstant) for v in n.inputs)]


def test_scaled_terms_gradient_has_no_product_with_the_seed():
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(5))
    (g,) = tg.grad(cost, [x])
    assert _constant_products([g]) == []
    value = np.linspace(0.0, 1.0, 5)
    np.testing.assert_allclose(g.eval({x: value}), np.arange(5) * np.cos(value))


def test_product_of_two_variables_gives_the_other_factor():
    a, b = T.dscalar("a"), T.dscalar("b")
    ga, gb = tg.grad(a * b, [a, b])
    assert ga is b and gb is a


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
def test_gradient_dtype_and_value_follow_the_product(dtype):
    x = T.vector("x", dtype=dtype) if dtype != "float64" else T.dvector("x")
    c = T.constant(np.asarray(3, dtype="float64"))
    (g,) = tg.grad(T.sum(T.real(x * c)) if dtype.startswith("complex") else T.sum(x * c), [x])
    assert g.dtype == dtype
    value = np.arange(3).astype(dtype)
    np.testing.assert_allclose(g.eval({x: value}), np.full(3, 3.0))


def test_weak_factor_is_not_returned_as_the_gradient():
    # x * 2 (a Python scalar: a weak constant) takes x's dtype; its gradient
    # in x is the seed times the weak 2, a strong float32 result.
    x = T.fscalar("x")
    (g,) = tg.grad(x * 2, [x])
    assert g.dtype == "float32"
    assert not getattr(g, "weak", False)
    assert g.eval({x: np.float32(1.5)}) == 2.0
