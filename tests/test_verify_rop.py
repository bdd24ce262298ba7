"""``verify_rop``: the jvp check the op table runs beside ``verify_grad``."""
import numpy as np
import pytest

import tracegrad.tensor as T
from tracegrad.testing import verify_rop
from tracegrad.trace import Apply, Op


def test_verify_rop_accepts_correct_jvps():
    rng = np.random.default_rng(5)
    verify_rop(lambda a, b: T.tanh(a * b) + T.exp(b) / (1 + a ** 2),
               [rng.normal(size=(3, 2)), rng.normal(size=(3, 2))], rng=rng)
    verify_rop(lambda a: T.sum(T.sin(a), axis=0), [rng.normal(size=(4, 3))], rng=rng)
    verify_rop(lambda a, b: T.dot(a, b), [rng.normal(size=(2, 3)), rng.normal(size=3)], rng=rng)
    verify_rop(lambda a: a + 1.0, [np.array([1.0, 2.0], dtype="float32")], rng=0)


def test_verify_rop_follows_the_complex_convention():
    rng = np.random.default_rng(1)
    z = rng.normal(size=4) + 1j * rng.normal(size=4)
    # Holomorphic, anti-holomorphic and real-valued functions of z: the jvp
    # is the directional derivative along a complex tangent in every case.
    verify_rop(lambda a: T.exp(a) * a, [z], rng=rng)
    verify_rop(lambda a: T.conj(a) * 2.0, [z], rng=rng)
    verify_rop(lambda a: abs(a), [z], rng=rng)
    verify_rop(lambda a: T.imag(a) * T.real(a), [z], rng=rng)


class WrongSquare(Op):
    """x**2 whose vjp is off by a factor of 1.5 (so its Rop is too)."""

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        return x * x

    def vjp(self, node, output_grads):
        return [output_grads[0] * node.inputs[0] * 3.0]


def test_verify_rop_catches_wrong_jvps():
    with pytest.raises(AssertionError, match="Jacobian-vector product mismatch"):
        verify_rop(lambda a: WrongSquare()(a), [np.array([0.5, 1.0, -2.0])], rng=0)
