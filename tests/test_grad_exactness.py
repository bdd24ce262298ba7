"""Regression tests for gradients that used to be wrong (issue 14): Lop/Rop
dropping a repeated output's direction, complex gradients outside the
documented convention (docs/user-guide.md, "Complex gradients"), and NaN
where the derivative is finite."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.testing import verify_grad


def _run(inputs, outputs, *values):
    return tg.function(inputs, outputs, on_unused_input="ignore")(*values)


# ---------------------------------------------------- repeated outputs
def test_Lop_sums_the_directions_of_a_repeated_output():
    x, u, v = T.dvector("x"), T.dvector("u"), T.dvector("v")
    y = 2 * x
    got = _run([x, u, v], tg.Lop([y, y], x, [u, v]), [1.0, 2.0], [1.0, 3.0], [10.0, 20.0])
    np.testing.assert_allclose(got, 2 * (np.array([1.0, 3.0]) + [10.0, 20.0]))


def test_Rop_gives_every_copy_of_a_repeated_output_its_derivative():
    x, v = T.dvector("x"), T.dvector("v")
    y = 2 * x
    first, second = _run([x, v], tg.Rop([y, y], x, v), [1.0, 2.0], [1.0, -3.0])
    np.testing.assert_allclose(first, [2.0, -6.0])
    np.testing.assert_allclose(second, [2.0, -6.0])


def test_Lop_with_an_output_that_is_also_wrt():
    x, u, v = T.dvector("x"), T.dvector("u"), T.dvector("v")
    got = _run([x, u, v], tg.Lop([3 * x, x], x, [u, v]), [1.0], [2.0], [5.0])
    np.testing.assert_allclose(got, [3 * 2.0 + 5.0])


def test_known_grads_on_an_intermediate_the_cost_also_reaches_add_up():
    x, g = T.dvector("x"), T.dvector("g")
    h = T.sin(x)
    cost = T.sum(h * 2)
    got = _run([x, g], tg.grad(cost, x, known_grads={h: g}), [0.3, 1.0], [1.0, -1.0])
    np.testing.assert_allclose(got, (2 + np.array([1.0, -1.0])) * np.cos([0.3, 1.0]))


def test_wrt_listed_twice_gets_the_full_gradient_twice():
    x = T.dvector("x")
    a, b = _run([x], tg.grad(T.sum(x ** 3), [x, x]), [2.0])
    np.testing.assert_allclose(a, [12.0])
    np.testing.assert_allclose(b, [12.0])


def test_both_outputs_of_one_apply_contribute():
    from tracegrad.ops.nnet import SoftmaxAndLog
    r = np.random.default_rng(0).normal(size=(2, 3))

    def fn(x):
        sm, log_sm = SoftmaxAndLog((1,))(x)
        return T.sum(sm * r) + T.sum(log_sm * r[::-1])

    verify_grad(fn, [np.random.default_rng(1).normal(size=(2, 3))], rng=2)


# ---------------------------------------------------- complex numbers
Z = 1.1 + 1.2j


def test_grad_of_abs_of_a_complex_number_is_conjugated():
    z = T.cscalar("z")
    got = _run([z], tg.grad(abs(z), z), Z)
    # JAX and autograd: conj(z) / |z| = 0.676 - 0.737j
    np.testing.assert_allclose(got, np.conj(Z) / abs(Z))
    assert got.imag < 0


def test_gradient_into_a_real_input_is_the_real_part():
    x = T.dscalar("x")
    got = _run([x], tg.grad(abs(x * (3 + 4j)), x), 2.0)  # |x (3 + 4i)| = 5 |x|
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, 5.0)


@pytest.mark.parametrize("fn", [T.imag, np.imag, lambda z: z.imag])
def test_imag_has_a_gradient(fn):
    z = T.cscalar("z")
    # imag(z) = y: d/dx - i d/dy = -1j
    np.testing.assert_allclose(_run([z], tg.grad(fn(z), z), Z), -1j)


def test_real_conj_and_angle_follow_the_convention():
    z = T.cscalar("z")
    x, y = Z.real, Z.imag
    got = _run([z], [tg.grad(T.real(z), z), tg.grad(T.real(T.conj(z) * 1j), z),
                     tg.grad(np.angle(z), z)], Z)
    np.testing.assert_allclose(got[0], 1.0)
    np.testing.assert_allclose(got[1], -1j)  # Re(i conj(z)) = y: 0 - i * 1
    # angle = atan2(y, x): d/dx = -y/|z|^2, d/dy = x/|z|^2
    np.testing.assert_allclose(got[2], (-y - 1j * x) / abs(Z) ** 2)


def test_np_angle_in_degrees():
    z = T.cvector("z")
    values = np.array([1 + 1j, -2 - 0.5j])
    np.testing.assert_allclose(np.angle(z, deg=True).eval({z: values}),
                               np.angle(values, deg=True))


# ---------------------------------------------------- finite derivatives
def test_x_to_the_zero_has_derivative_zero_at_zero():
    x = T.dscalar("x")
    assert _run([x], tg.grad(x ** 0, x), 0.0) == 0.0
    assert _run([x], tg.grad(x ** T.constant(0.0), x), 0.0) == 0.0
    assert _run([x], tg.grad(x ** 1.0, x), 0.0) == 1.0


def test_zero_to_a_positive_power_has_derivative_zero_in_the_power():
    x, y = T.dscalar("x"), T.dscalar("y")
    assert _run([y], tg.grad(T.constant(0.0) ** y, y), 2.0) == 0.0
    gx, gy = _run([x, y], tg.grad(x ** y, [x, y]), 0.0, 2.0)
    assert (gx, gy) == (0.0, 0.0)
    # Away from zero the rules are unchanged.
    gx, gy = _run([x, y], tg.grad(x ** y, [x, y]), 1.5, 2.5)
    np.testing.assert_allclose([gx, gy], [2.5 * 1.5 ** 1.5, 1.5 ** 2.5 * np.log(1.5)])


def test_std_over_one_element_has_zero_gradient_and_Rop():
    x, v = T.dvector("x"), T.dvector("v")
    s = T.std(x)
    rop, g = _run([x, v], [tg.Rop(s, x, v), tg.grad(s, x)], [1.5], [1.0])
    assert rop == 0.0 and g[0] == 0.0
    m = T.dmatrix("m")
    got = _run([m], tg.grad(T.std(m, axis=1).sum() + T.var(m, axis=1).sum(), m),
               np.ones((3, 1)))
    np.testing.assert_array_equal(got, np.zeros((3, 1)))


def test_std_of_equal_values_takes_the_zero_subgradient():
    # std is convex with its minimum there; 0 is a subgradient (like abs at 0).
    x = T.dvector("x")
    np.testing.assert_array_equal(_run([x], tg.grad(T.std(x), x), [2.0, 2.0]), [0.0, 0.0])
    np.testing.assert_allclose(_run([x], T.std(x), [1.0, 3.0]), 1.0)


def test_real_inputs_joined_with_complex_ones_get_real_gradients():
    def fn(x, z):
        joined = T.concatenate([x, z]) * (1 + 2j)
        return abs(T.stack([x * (0.5 - 1j), z]).sum(axis=0)) + T.imag(joined[::-1][:2])

    rng = np.random.default_rng(0)
    verify_grad(fn, [rng.normal(size=2), rng.normal(size=2) + 1j * rng.normal(size=2)],
                rng=rng)


def test_a_complex_cotangent_of_a_real_output_pairs_through_its_real_part():
    import warnings
    x, u = T.dvector("x"), T.cvector("u")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning from a dropping cast
        got = _run([x, u], tg.Lop(3 * x, x, u), [1.0], [2 + 5j])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [6.0])
