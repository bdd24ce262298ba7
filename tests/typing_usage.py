"""Public-surface usage checked by ``mypy --strict`` (tests/test_typing.py).

Every line is ordinary tracegrad code; the annotations say what a user's
type checker must infer. The test also runs this file, so it stays real.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import tracegrad as tg
import tracegrad.numpy as tnp
import tracegrad.tensor as T
from tracegrad.compile.runtime import Function
from tracegrad.jit import Compiled
from tracegrad.tensor.variable import TensorVariable


def constructors() -> list[TensorVariable]:
    x: TensorVariable = T.dmatrix("x")
    v: TensorVariable = T.fvector()
    s: TensorVariable = T.scalar("s", dtype="float32")
    t: TensorVariable = T.tensor("float32", shape=(None, 3), name="t")
    b: TensorVariable = T.tensor("int64", broadcastable=(False, True))
    c: TensorVariable = T.TensorType("float64", (None, 2))("c")
    a, b2 = T.dscalars("a", "b")
    many: list[TensorVariable] = T.fmatrices(3)
    return [x, v, s, t, b, c, a, b2, *many]


def compiled_function() -> float:
    x, y = T.dscalars("x", "y")
    f: Function = tg.function([x, y], x * y + 1, name="f")
    return float(f(2.0, 3.0))


def shared_and_updates() -> np.ndarray:
    w = tg.shared(np.zeros(3), name="w")
    step = T.dvector("step")
    train = tg.function([step], [], updates=[(w, w + step)], on_unused_input="warn")
    train(np.ones(3))
    add = tg.function([step], (w * 2.0).sum(), updates={w: w - step})
    add(np.ones(3))
    w.set_value(np.full(3, 2.0), borrow=False)
    value: np.ndarray = w.get_value(borrow=True)
    return value


def symbolic_grad() -> list[float]:
    a = T.dscalar("a")
    b = T.dscalar("b")
    one: TensorVariable = tg.grad(a ** 2 * b, a)
    both: list[TensorVariable] = tg.grad(a ** 2 * b, [a, b])
    m = T.dmatrix("m")
    shaped: TensorVariable = m.dimshuffle(1, "x", 0).reshape((2, -1)).T.astype("float32")
    assert shaped.ndim == 2 and shaped.dtype == "float32"
    g = tg.function([a, b], [one, *both])
    return [float(r) for r in g(3.0, 2.0)]


def op_functions() -> float:
    x = T.dmatrix("x")
    y: TensorVariable = T.exp(x) + T.log1p(x) * T.maximum(x, 0.0)
    z: TensorVariable = T.sum(T.dot(x, x.T), axis=0, keepdims=True)
    parts: list[TensorVariable] = T.split(x, [1, 1], 2, axis=0)
    joined: TensorVariable = T.concatenate([T.tanh(y), z], axis=0)
    probs: TensorVariable = T.nnet.softmax(joined) + T.nnet.sigmoid(parts[0]).mean()
    spectrum: TensorVariable = T.fft.rfft(x)
    pooled: TensorVariable = T.signal.pool.pool_2d(T.dtensor4("img"), ws=(2, 2),
                                                   ignore_border=True)
    assert pooled.ndim == 4 and T.slinalg.expm(x).ndim == 2
    g = tg.function([x], [T.where(x > 0, probs.sum(), 0.0).sum(), T.abs(spectrum).sum()])
    value, _ = g(np.ones((2, 2)))
    with_numpy: Any = tnp.exp(tnp.linalg.norm(np.ones(3)))
    return float(value) + 0.0 * float(with_numpy)


def loss(w: np.ndarray, x: np.ndarray) -> Any:
    return np.mean(np.tanh(x @ w) ** 2)


def transforms() -> tuple[float, np.ndarray]:
    value_and_grad: Compiled = tg.value_and_grad(loss)
    jitted: Compiled = tg.jit(loss)
    value, grad_w = value_and_grad(np.zeros(3), np.ones((4, 3)))
    assert float(jitted(np.zeros(3), np.ones((4, 3)))) == float(value)
    return float(value), np.asarray(grad_w)


@tg.jit(static_argnames="n")
def power(x: np.ndarray, n: int) -> np.ndarray:
    return x ** n


def main() -> None:
    assert len(constructors()) == 11
    assert compiled_function() == 7.0
    assert shared_and_updates().tolist() == [2.0, 2.0, 2.0]
    assert symbolic_grad() == [12.0, 12.0, 9.0]
    assert op_functions() > 0
    value, grad_w = transforms()
    assert value == 0.0 and grad_w.tolist() == [0.0, 0.0, 0.0]
    assert power(np.array([2.0]), n=3).tolist() == [8.0]


if __name__ == "__main__":
    main()
