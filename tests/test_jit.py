"""``tg.jit`` and ``tg.value_and_grad``."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T


def counting(fn):
    """``fn`` plus a count of how often it was traced."""
    def wrapper(*args, **kwargs):
        wrapper.traces += 1
        return fn(*args, **kwargs)
    wrapper.traces = 0
    wrapper.__name__ = fn.__name__
    return wrapper


def layer(x, w, b):
    return np.tanh(x @ w + b)


# ------------------------------------------------------------------- jit
def test_jit_numpy_code_matches_numpy():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    f = tg.jit(layer)
    np.testing.assert_allclose(f(x, w, b), layer(x, w, b), rtol=1e-12)


def test_jit_caches_per_signature():
    fn = counting(lambda x, y: np.exp(x) * y)
    f = tg.jit(fn)
    f(np.ones(3), np.ones(3))
    f(np.zeros(5), np.ones(5))          # other lengths: same signature
    assert fn.traces == 1 and f.cache_size == 1
    f(np.ones(3, dtype="float32"), np.ones(3))   # other dtype
    assert fn.traces == 2
    f(np.ones((2, 3)), np.ones(3))      # other ndim
    assert fn.traces == 3
    out = f(np.ones((1, 3)), np.arange(6.0).reshape(2, 3))  # length-1 axis broadcasts
    assert fn.traces == 4 and out.shape == (2, 3)
    np.testing.assert_allclose(out, np.e * np.arange(6.0).reshape(2, 3))
    f(np.ones((1, 7)), np.ones((3, 7)))
    assert fn.traces == 4 and f.cache_size == 4
    f.clear_cache()
    f(np.ones(3), np.ones(3))
    assert fn.traces == 5


def test_jit_tensor_functions_and_kwargs():
    @tg.jit
    def f(x, scale=None, *, shift):
        return T.sum(T.sqr(x), axis=0) * scale + shift

    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(f(x, scale=2.0, shift=1.0), (x ** 2).sum(0) * 2 + 1)
    np.testing.assert_allclose(f(x, 3.0, shift=np.ones(2)), (x ** 2).sum(0) * 3 + 1)


def test_jit_python_numbers_are_traced_and_weakly_typed():
    fn = counting(lambda x, a: x * a)
    f = tg.jit(fn)
    x = np.arange(3, dtype="float32")
    r1 = f(x, 2.0)
    r2 = f(x, 0.5)
    assert fn.traces == 1  # a new value of a number does not retrace
    assert r1.dtype == np.float32 and r2.dtype == np.float32  # as in NumPy 2
    np.testing.assert_array_equal(r1, x * 2.0)
    np.testing.assert_array_equal(r2, x * 0.5)
    ints = f(np.arange(3, dtype="int32"), 3)
    assert ints.dtype == np.int32 and list(ints) == [0, 3, 6]
    mixed = f(np.arange(3, dtype="int32"), 1.5)
    assert mixed.dtype == np.float64
    alone = tg.jit(lambda a, b: a * b)(2, 3.5)
    assert alone.dtype == np.float64 and alone == 7.0


def test_jit_numpy_scalars_are_strong():
    f = tg.jit(lambda x, a: x * a)
    out = f(np.ones(2, dtype="float32"), np.float64(2.0))
    assert out.dtype == (np.ones(2, dtype="float32") * np.float64(2.0)).dtype


def test_jit_static_arguments():
    fn = counting(lambda x, mode, flag: (np.tanh(x) if mode == "tanh" else np.sin(x))
                  * (2.0 if flag else 1.0))
    f = tg.jit(fn)
    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(f(x, "tanh", True), np.tanh(x) * 2)
    np.testing.assert_allclose(f(x, "sin", False), np.sin(x))
    np.testing.assert_allclose(f(x, "tanh", True), np.tanh(x) * 2)
    assert fn.traces == 2


def test_jit_numbers_used_as_axes_need_static_argnames():
    def total(x, axis):
        return np.sum(x, axis=axis)

    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(TypeError, match="static"):
        tg.jit(total)(x, 1)
    f = tg.jit(total, static_argnames=("axis",))
    np.testing.assert_allclose(f(x, 1), x.sum(1))
    np.testing.assert_allclose(f(x, 0), x.sum(0))
    assert f.cache_size == 2
    g = tg.jit(static_argnums=1)(total)
    np.testing.assert_allclose(g(x, 0), x.sum(0))
    h = tg.jit(total, static_argnums=(-1,))
    np.testing.assert_allclose(h(x, 1), x.sum(1))


def test_jit_unhashable_static_argument():
    f = tg.jit(lambda x, opts: x)
    with pytest.raises(TypeError, match="hashable"):
        f(np.ones(2), {1, 2})


def test_jit_output_structures():
    @tg.jit
    def f(x):
        return x + 1, [x * 2, {"neg": -x, "none": None}], 3.0

    x = np.arange(3.0)
    a, (b, d), c = f(x)
    np.testing.assert_array_equal(a, x + 1)
    np.testing.assert_array_equal(b, x * 2)
    np.testing.assert_array_equal(d["neg"], -x)
    assert d["none"] is None
    assert float(c) == 3.0
    single = tg.jit(lambda x: np.exp(x))(np.zeros(2))
    assert isinstance(single, np.ndarray)
    listed = tg.jit(lambda x: [x])(np.zeros(2))
    assert isinstance(listed, list) and len(listed) == 1


def test_jit_pytree_arguments():
    @tg.jit
    def predict(params, xs):
        h = np.tanh(xs[0] @ params["w"] + params["b"])
        return h * xs[1]

    rng = np.random.default_rng(1)
    params = {"w": rng.normal(size=(3, 2)), "b": np.zeros(2)}
    x0, x1 = rng.normal(size=(4, 3)), 0.5
    np.testing.assert_allclose(predict(params, (x0, x1)),
                               np.tanh(x0 @ params["w"] + params["b"]) * 0.5)
    graph = predict.compiled(params, (x0, x1))
    text = tg.printing.debugprint(graph, file="str")
    assert "params['w']" in text and "xs[0]" in text


def test_jit_inside_a_traced_function_inlines():
    inner = tg.jit(lambda x: np.exp(x) + 1)
    outer = tg.jit(lambda x: inner(x) * 2)
    np.testing.assert_allclose(outer(np.zeros(3)), np.full(3, 4.0))


def test_jit_unused_arguments_and_constant_outputs():
    f = tg.jit(lambda x, y: x * 2)
    np.testing.assert_array_equal(f(np.ones(2), np.ones(5)), [2.0, 2.0])
    g = tg.jit(lambda x: 5)
    assert int(g(np.ones(2))) == 5


def test_jit_keeps_function_metadata():
    f = tg.jit(layer)
    assert f.__name__ == "layer" and f.__wrapped__ is layer


# -------------------------------------------------------- value_and_grad
def least_squares(x, A, y):
    r = A @ x - y
    return 0.5 * np.sum(r * r)


def test_value_and_grad_least_squares():
    rng = np.random.default_rng(2)
    A, x, y = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)
    vg = tg.value_and_grad(least_squares)
    value, g = vg(x, A, y)
    r = A @ x - y
    np.testing.assert_allclose(value, 0.5 * r @ r, rtol=1e-12)
    assert np.ndim(value) == 0
    np.testing.assert_allclose(g, A.T @ r, rtol=1e-12)


def test_value_and_grad_argnums_tuple():
    rng = np.random.default_rng(3)
    A, x, y = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)
    value, (gx, gA) = tg.value_and_grad(least_squares, argnums=(0, 1))(x, A, y)
    r = A @ x - y
    np.testing.assert_allclose(gx, A.T @ r, rtol=1e-12)
    np.testing.assert_allclose(gA, np.outer(r, x), rtol=1e-12)
    _, (gy,) = tg.value_and_grad(least_squares, argnums=(-1,))(x, A, y)
    np.testing.assert_allclose(gy, -r, rtol=1e-12)


def test_value_and_grad_of_pytrees_and_scalars():
    def loss(params, x, lr):
        return np.sum(np.tanh(x @ params["w"]) ** 2) * lr  # params["unused"] is not used

    rng = np.random.default_rng(4)
    params = {"w": rng.normal(size=(3, 2)), "unused": np.ones(4)}
    x = rng.normal(size=(5, 3))
    value, grads = tg.value_and_grad(loss)(params, x, 0.5)
    t = np.tanh(x @ params["w"])
    np.testing.assert_allclose(grads["w"], x.T @ (2 * t * (1 - t ** 2)) * 0.5, rtol=1e-10)
    np.testing.assert_array_equal(grads["unused"], np.zeros(4))
    _, g_lr = tg.value_and_grad(loss, argnums=2)(params, x, 0.5)
    np.testing.assert_allclose(g_lr, np.sum(t ** 2), rtol=1e-12)


def test_value_and_grad_caches():
    fn = counting(lambda x: np.sum(np.sin(x)))
    vg = tg.value_and_grad(fn)
    for n in (3, 4, 5):
        value, g = vg(np.linspace(0, 1, n))
        np.testing.assert_allclose(g, np.cos(np.linspace(0, 1, n)))
    assert fn.traces == 1


def test_value_and_grad_errors():
    with pytest.raises(TypeError, match="scalar"):
        tg.value_and_grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match="scalar"):
        tg.value_and_grad(lambda x: (np.sum(x), x))(np.ones(3))
    with pytest.raises(TypeError, match="float"):
        tg.value_and_grad(lambda n, x: np.sum(x) * np.sum(n))(np.arange(3), np.ones(3))
    with pytest.raises(TypeError, match="float"):
        tg.value_and_grad(lambda x: np.sum(x > 0))(np.ones(3))
    with pytest.raises(ValueError):
        tg.value_and_grad(lambda x: np.sum(x), argnums=3)(np.ones(3))
    with pytest.raises(TypeError, match="static"):
        tg.value_and_grad(lambda x, k: np.sum(x), argnums=1,
                          static_argnums=1)(np.ones(3), "k")
