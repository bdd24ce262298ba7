"""Function transforms of NumPy code (``tracegrad.transforms``): ``tg.grad``
of callables, ``value_and_grad``, ``jacobian``, ``hessian``,
``elementwise_grad``, ``vjp``/``jvp``, ``make_vjp``/``make_jvp``; trees of
arguments and results; static shapes; the Theano forms unchanged.

Each transform is checked against central finite differences and against a
derivative worked out by hand. Complex inputs use the convention of
docs/user-guide.md ("Complex gradients"): for a real ``f`` of ``z = x + iy``
the gradient is ``df/dx - i df/dy``.
"""
import dataclasses
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.tensor.type import StaticShapeError

RNG = np.random.default_rng(7)


def counting(fn):
    """``fn`` plus a count of how often it was traced."""
    def wrapper(*args, **kwargs):
        wrapper.traces += 1
        return fn(*args, **kwargs)
    wrapper.traces = 0
    wrapper.__name__ = fn.__name__
    return wrapper


def fd_grad(f, x, eps=1e-6):
    """Central differences of the real scalar ``f`` at the array ``x``; for
    complex ``x``, ``df/dx - i df/dy`` per entry."""
    x = np.asarray(x)
    g = np.zeros(x.shape, dtype=x.dtype)
    for idx in np.ndindex(x.shape):
        for step, factor in ((1.0, 1.0), (1j, -1j)) if x.dtype.kind == "c" else ((1.0, 1.0),):
            d = np.zeros(x.shape, dtype=x.dtype)
            d[idx] = eps * step
            g[idx] += factor * (float(f(x + d)) - float(f(x - d))) / (2 * eps)
    return g


def fd_jac(f, x, eps=1e-6):
    """Central differences of the array function ``f`` (real ``x``):
    shape ``f(x).shape + x.shape``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(f(x))
    J = np.zeros(y.shape + x.shape, dtype=y.dtype)
    for idx in np.ndindex(x.shape):
        d = np.zeros(x.shape)
        d[idx] = eps
        J[(Ellipsis,) + idx] = (np.asarray(f(x + d)) - np.asarray(f(x - d))) / (2 * eps)
    return J


# ------------------------------------------------------------------- grad
def poly_sin(x):
    return np.sum(np.sin(x) * x)


def test_grad_matches_finite_differences_and_hand():
    x = RNG.normal(size=(3, 2))
    g = tg.grad(poly_sin)(x)
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(poly_sin, x), rtol=1e-6, atol=1e-8)
    assert g.shape == x.shape and g.dtype == np.float64


def test_grad_of_a_python_number_and_float32():
    assert float(tg.grad(lambda x: x ** 3)(2.0)) == pytest.approx(12.0)
    x = np.linspace(-1, 1, 4).astype("float32")
    g = tg.grad(lambda x: np.sum(np.exp(x)))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.exp(x), rtol=1e-6)


def test_grad_argnums_tuple_and_negative():
    def f(x, y):
        return np.sum(x * y ** 2)

    x, y = RNG.normal(size=3), RNG.normal(size=3)
    gx, gy = tg.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, y ** 2, rtol=1e-12)
    np.testing.assert_allclose(gy, 2 * x * y, rtol=1e-12)
    np.testing.assert_allclose(tg.grad(f, argnums=-1)(x, y), 2 * x * y, rtol=1e-12)
    np.testing.assert_allclose(tg.grad(f, 1)(x, y), fd_grad(lambda v: f(x, v), y), rtol=1e-6)
    (only,) = tg.grad(f, argnums=(1,))(x, y)
    np.testing.assert_allclose(only, 2 * x * y, rtol=1e-12)
    # autograd's spelling
    np.testing.assert_allclose(tg.grad(f, argnum=1)(x, y), 2 * x * y, rtol=1e-12)


def test_grad_with_keyword_arguments():
    g = tg.grad(lambda x, scale=1.0: np.sum(x ** 2) * scale)(np.ones(2), scale=3.0)
    np.testing.assert_allclose(g, [6.0, 6.0])


def test_grad_has_aux():
    def f(x):
        return np.sum(x ** 2), {"mean": np.mean(x), "note": None}

    x = np.arange(3.0)
    g, aux = tg.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g, 2 * x)
    assert float(aux["mean"]) == 1.0 and aux["note"] is None


def test_second_derivative_and_nesting_with_jit():
    t = np.tanh(0.5)
    d1, d2 = 1 - t ** 2, -2 * t * (1 - t ** 2)
    assert float(tg.grad(tg.grad(np.tanh))(0.5)) == pytest.approx(d2, rel=1e-12)
    assert float(tg.jit(tg.grad(np.tanh))(0.5)) == pytest.approx(d1, rel=1e-12)
    assert float(tg.grad(tg.jit(np.tanh))(0.5)) == pytest.approx(d1, rel=1e-12)
    d3 = tg.grad(tg.grad(tg.grad(lambda x: x ** 4)))(2.0)
    assert float(d3) == pytest.approx(48.0)


def test_transforms_of_symbolic_arguments_build_graphs():
    x = T.dvector("x")
    g = tg.grad(lambda v: T.sum(v ** 3))(x)
    assert isinstance(g, tg.Variable)
    out, f_vjp = tg.vjp(lambda v: v ** 2, x)
    f = tg.function([x], [g, f_vjp(T.ones_like(x))[0]])
    gv, vv = f(np.arange(3.0))
    np.testing.assert_allclose(gv, 3 * np.arange(3.0) ** 2)
    np.testing.assert_allclose(vv, 2 * np.arange(3.0))
    # a concrete value given to a nested transform is differentiated too
    h = tg.jit(lambda x: tg.grad(lambda a, b: a * b, argnums=1)(x, 3.0))
    assert float(h(2.0)) == 2.0
    k = tg.jit(lambda x: tg.grad(lambda a, b: np.sum(a * b), argnums=(0, 1))(x, np.ones(3)))
    ga, gb = k(np.arange(3.0))
    np.testing.assert_allclose(ga, np.ones(3))
    np.testing.assert_allclose(gb, np.arange(3.0))


# ------------------------------------------------------- value_and_grad
def test_value_and_grad_has_aux_and_argnums():
    def f(w, x):
        r = x @ w
        return np.sum(r ** 2), r

    w, x = RNG.normal(size=2), RNG.normal(size=(3, 2))
    (value, aux), (gw, gx) = tg.value_and_grad(f, argnums=(0, 1), has_aux=True)(w, x)
    r = x @ w
    np.testing.assert_allclose(value, r @ r, rtol=1e-12)
    np.testing.assert_allclose(aux, r, rtol=1e-12)
    np.testing.assert_allclose(gw, 2 * x.T @ r, rtol=1e-12)
    np.testing.assert_allclose(gx, 2 * np.outer(r, w), rtol=1e-12)


# --------------------------------------------------------------- jacobian
def test_jacobian_matches_hand_and_finite_differences():
    def f(x):
        return x ** 2 * np.sum(x)

    x = RNG.normal(size=3)
    J = tg.jacobian(f)(x)
    np.testing.assert_allclose(J, np.diag(2 * x * x.sum()) + np.outer(x ** 2, np.ones(3)),
                               rtol=1e-12)
    np.testing.assert_allclose(J, fd_jac(f, x), rtol=1e-6, atol=1e-8)


def test_jacobian_of_matrices_argnums_and_trees():
    A = RNG.normal(size=(2, 2))
    J = tg.jacobian(lambda a: a @ a)(A)
    assert J.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(J, fd_jac(lambda a: a @ a, A), rtol=1e-6, atol=1e-8)
    jx, jy = tg.jacobian(lambda x, y: x * y, argnums=(0, 1))(np.arange(1.0, 3.0), 3.0)
    np.testing.assert_allclose(jx, 3 * np.eye(2))
    np.testing.assert_allclose(jy, [1.0, 2.0])
    out = tg.jacobian(lambda p: {"s": p[0] * p[1], "v": np.stack([p[0], p[1]])})((2.0, 3.0))
    np.testing.assert_allclose(out["s"][0], 3.0)
    np.testing.assert_allclose(out["s"][1], 2.0)
    np.testing.assert_allclose(out["v"][0], [1.0, 0.0])
    np.testing.assert_allclose(out["v"][1], [0.0, 1.0])


# ---------------------------------------------------------------- hessian
def test_hessian_matches_hand_and_finite_differences():
    def f(x):
        return np.sum(x ** 3) + x[0] * x[1]

    x = RNG.normal(size=3)
    H = tg.hessian(f)(x)
    expected = np.diag(6 * x)
    expected[0, 1] = expected[1, 0] = 1.0
    np.testing.assert_allclose(H, expected, rtol=1e-12)
    g = tg.grad(f)
    np.testing.assert_allclose(H, fd_jac(g, x), rtol=1e-6, atol=1e-7)


def test_hessian_of_trees_and_argnums():
    H = tg.hessian(lambda a, b: np.sum(a ** 2 * b), argnums=(0, 1))(np.ones(2), 3.0)
    (haa, hab), (hba, hbb) = H
    np.testing.assert_allclose(haa, 6 * np.eye(2))
    np.testing.assert_allclose(hab, [2.0, 2.0])
    np.testing.assert_allclose(hba, [2.0, 2.0])
    assert float(hbb) == 0.0
    tree = tg.hessian(lambda p: p["u"] ** 2 * p["v"])({"u": 2.0, "v": 5.0})
    assert float(tree["u"]["u"]) == 10.0 and float(tree["u"]["v"]) == 4.0
    assert float(tree["v"]["u"]) == 4.0 and float(tree["v"]["v"]) == 0.0


# ------------------------------------------------------- elementwise_grad
def test_elementwise_grad():
    x = np.linspace(-2, 2, 5)
    g = tg.elementwise_grad(np.tanh)(x)
    np.testing.assert_allclose(g, 1 - np.tanh(x) ** 2, rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(lambda v: np.sum(np.tanh(v)), x), rtol=1e-6)
    g2 = tg.elementwise_grad(lambda a, b: a * b, 1)(x, np.ones(5))
    np.testing.assert_allclose(g2, x)


# -------------------------------------------------------------- vjp / jvp
def f_xy(x, y):
    return x * y + np.sin(x)


def test_vjp_matches_hand_and_finite_differences():
    x, y, ct = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3)
    out, f_vjp = tg.vjp(f_xy, x, y)
    np.testing.assert_allclose(out, f_xy(x, y), rtol=1e-12)
    gx, gy = f_vjp(ct)
    np.testing.assert_allclose(gx, ct * (y + np.cos(x)), rtol=1e-12)
    np.testing.assert_allclose(gy, ct * x, rtol=1e-12)
    np.testing.assert_allclose(gx, ct @ fd_jac(lambda v: f_xy(v, y), x), rtol=1e-6)
    out, f_vjp, aux = tg.vjp(lambda x: (np.sum(x ** 2), x + 1), x, has_aux=True)
    np.testing.assert_allclose(aux, x + 1)
    np.testing.assert_allclose(f_vjp(2.0)[0], 4 * x, rtol=1e-12)


def test_jvp_matches_hand_and_finite_differences():
    x, y = RNG.normal(size=3), RNG.normal(size=3)
    tx, ty = RNG.normal(size=3), RNG.normal(size=3)
    out, t_out = tg.jvp(f_xy, (x, y), (tx, ty))
    np.testing.assert_allclose(out, f_xy(x, y), rtol=1e-12)
    np.testing.assert_allclose(t_out, tx * (y + np.cos(x)) + ty * x, rtol=1e-12)
    eps = 1e-6
    fd = (f_xy(x + eps * tx, y + eps * ty) - f_xy(x - eps * tx, y - eps * ty)) / (2 * eps)
    np.testing.assert_allclose(t_out, fd, rtol=1e-6)


def test_make_vjp_and_make_jvp():
    x = np.linspace(0, 1, 4)
    vjp_fn, ans = tg.make_vjp(np.sin)(x)
    np.testing.assert_allclose(ans, np.sin(x))
    np.testing.assert_allclose(vjp_fn(np.ones(4)), np.cos(x), rtol=1e-12)
    jvp_fn = tg.make_jvp(lambda a, b: a * b ** 2, 1)(x, 2.0)
    ans, t_out = jvp_fn(0.5)
    np.testing.assert_allclose(ans, x * 4.0)
    np.testing.assert_allclose(t_out, x * 2 * 2.0 * 0.5, rtol=1e-12)


def test_vjp_and_jvp_of_trees():
    def f(p):
        return {"a": p.w * 2, "b": (np.sum(p.w), p.s ** 2)}

    P = namedtuple("P", "w s")
    p = P(np.arange(3.0), 1.5)
    out, f_vjp = tg.vjp(f, p)
    (g,) = f_vjp({"a": np.ones(3), "b": (1.0, 1.0)})
    assert isinstance(g, P)
    np.testing.assert_allclose(g.w, 3.0 * np.ones(3))
    assert float(g.s) == 3.0
    out, t_out = tg.jvp(f, (p,), (P(np.ones(3), 1.0),))
    np.testing.assert_allclose(t_out["a"], 2 * np.ones(3))
    assert float(t_out["b"][0]) == 3.0 and float(t_out["b"][1]) == 3.0


# ------------------------------------------------------------------ trees
@dataclasses.dataclass
class Layer:
    w: object
    b: object
    activation: str = "tanh"


@dataclasses.dataclass(frozen=True)
class Frozen:
    w: object
    extra: object = None


Params = namedtuple("Params", "w b")


def _loss(params, x):
    return np.sum(np.tanh(x @ params.w + params.b) ** 2)


@pytest.mark.parametrize("make", [Params, Layer], ids=["namedtuple", "dataclass"])
def test_gradient_has_the_argument_structure(make):
    w, b, x = RNG.normal(size=(3, 2)), RNG.normal(size=2), RNG.normal(size=(4, 3))
    g = tg.grad(_loss)(make(w, b), x)
    assert type(g) is make
    t = np.tanh(x @ w + b)
    d = 2 * t * (1 - t ** 2)
    np.testing.assert_allclose(g.w, x.T @ d, rtol=1e-10)
    np.testing.assert_allclose(g.b, d.sum(0), rtol=1e-10)
    np.testing.assert_allclose(g.w, fd_grad(lambda v: _loss(make(v, b), x), w), rtol=1e-6)
    if make is Layer:
        assert g.activation == "tanh"  # a static field stays as it is


def test_frozen_dataclass_none_leaves_and_nested_containers():
    g = tg.grad(lambda f: np.sum(f.w ** 2))(Frozen(np.ones(2)))
    assert isinstance(g, Frozen) and g.extra is None
    np.testing.assert_allclose(g.w, [2.0, 2.0])
    tree = {"a": [np.ones(2), (3.0, None)], "b": OrderedDict(z=np.ones(1), y=2.0)}

    def f(t):
        return (np.sum(t["a"][0] * t["a"][1][0]) + np.sum(t["b"]["z"]) * t["b"]["y"])

    g = tg.grad(f)(tree)
    np.testing.assert_allclose(g["a"][0], [3.0, 3.0])
    assert float(g["a"][1][0]) == 2.0 and g["a"][1][1] is None
    assert isinstance(g["a"], list) and isinstance(g["a"][1], tuple)
    assert isinstance(g["b"], OrderedDict) and list(g["b"]) == ["z", "y"]
    np.testing.assert_allclose(g["b"]["z"], [2.0])
    assert float(g["b"]["y"]) == 1.0


def test_jit_returns_and_takes_namedtuples_and_dataclasses():
    @tg.jit
    def f(layer):
        return Params(w=layer.w * 2, b=Frozen(layer.b + 1, extra=None))

    out = f(Layer(np.ones(2), np.zeros(3)))
    assert isinstance(out, Params) and isinstance(out.b, Frozen)
    np.testing.assert_array_equal(out.w, [2.0, 2.0])
    np.testing.assert_array_equal(out.b.w, np.ones(3))
    assert out.b.extra is None
    text = tg.printing.debugprint(f.compiled(Layer(np.ones(2), np.zeros(3))), file="str")
    assert "layer.w" in text


# ------------------------------------------------------------- holomorphic
def test_complex_inputs_of_real_functions_follow_the_guide():
    z = np.array([1 + 2j, -0.5 + 0.3j])
    g = tg.grad(lambda z: np.sum(np.abs(z) ** 2))(z)
    np.testing.assert_allclose(g, 2 * np.conj(z), rtol=1e-12)  # JAX: 2-4j at 1+2j
    f = lambda z: np.sum(np.abs(np.sin(z)))  # noqa: E731
    np.testing.assert_allclose(tg.grad(f)(z), fd_grad(f, z), rtol=1e-6)


def test_holomorphic_gradient_is_the_complex_derivative():
    z = 0.3 + 0.8j
    np.testing.assert_allclose(tg.grad(np.sin, holomorphic=True)(z), np.cos(z), rtol=1e-12)
    g = tg.grad(lambda z: z ** 3 + 2 * z, holomorphic=True)(z)
    np.testing.assert_allclose(g, 3 * z ** 2 + 2, rtol=1e-12)
    eps = 1e-6  # f'(z) from a difference along the real axis
    np.testing.assert_allclose(g, ((z + eps) ** 3 + 2 * (z + eps) - (z - eps) ** 3
                                   - 2 * (z - eps)) / (2 * eps), rtol=1e-6)
    J = tg.jacobian(lambda z: np.exp(z), holomorphic=True)(np.array([z, 1j]))
    np.testing.assert_allclose(J, np.diag(np.exp([z, 1j])), rtol=1e-12)


def test_vjp_and_jvp_of_a_non_holomorphic_function():
    # JAX's identity for its bilinear pairing: Re(w * jvp(t)) == Re(vjp(w) * t)
    def fun(z):
        x, y = np.real(z), np.imag(z)
        return (x ** 2 + np.sin(y)) + (x * y) * 1j

    z, t, w = 1.5 + 0.5j, 0.7 - 0.3j, -0.2 + 1.1j
    _, t_out = tg.jvp(fun, (z,), (t,))
    (w_out,) = tg.vjp(fun, z)[1](w)
    x, y = 1.5, 0.5
    pair = np.array([[2 * x, np.cos(y)], [y, x]]) @ [t.real, t.imag]
    np.testing.assert_allclose(t_out, pair[0] + 1j * pair[1], rtol=1e-12)
    np.testing.assert_allclose(np.real(w * t_out), np.real(w_out * t), rtol=1e-12)


# ---------------------------------------------------------------- caching
def test_grad_compiles_once_per_signature():
    fn = counting(lambda x: np.sum(np.sin(x)))
    g = tg.grad(fn)
    for n in (3, 4, 5):
        np.testing.assert_allclose(g(np.linspace(0, 1, n)), np.cos(np.linspace(0, 1, n)))
    assert fn.traces == 1 and g.cache_size == 1
    g(np.ones((2, 2)))
    assert fn.traces == 2
    assert tg.grad(fn) is g  # shared by later tg.grad(fn): no new trace
    tg.grad(fn)(np.ones(3))
    assert fn.traces == 2
    g.clear_cache()
    g(np.ones(3))
    assert fn.traces == 3


def test_vjp_in_a_loop_traces_once():
    fn = counting(lambda x: np.sin(x) * 2)
    for n in (2, 3, 4):
        out, f_vjp = tg.vjp(fn, np.ones(n))
        np.testing.assert_allclose(f_vjp(np.ones(n))[0], 2 * np.cos(np.ones(n)))
    assert fn.traces == 2  # the value and the vjp
    for _ in range(3):
        tg.jvp(fn, (np.ones(2),), (np.ones(2),))
    assert fn.traces == 3


# ---------------------------------------------------------- static shapes
def test_static_length_code_retraces_with_shapes():
    def chain(x):
        total = 0.0
        for i in range(x.shape[0] - 1):
            total = total + x[i] * x[i + 1]
        return total

    fn = counting(chain)
    g = tg.grad(fn)
    x = np.arange(1.0, 5.0)
    np.testing.assert_allclose(g(x), [2.0, 4.0, 6.0, 3.0])
    assert fn.traces == 2  # free lengths (raised StaticShapeError), then x's shape
    g(x + 1)
    assert fn.traces == 2  # same shape: cached
    np.testing.assert_allclose(g(np.ones(2)), [1.0, 1.0])
    assert fn.traces == 3 and g.cache_size == 2  # keyed by shape


@pytest.mark.parametrize("body", [
    lambda x: np.sum(np.zeros(x.shape) + x ** 2),
    lambda x: sum(row ** 2 for row in x),
    lambda x: sum(x[i] ** 2 for i in range(len(x))),
    lambda x: sum(x[i] ** 2 for i in range(x.shape[0])),
    lambda x: np.sum(x ** 2) * (x.size / len(x)),
], ids=["zeros_shape", "iterate", "len", "shape0", "size"])
def test_static_shape_idioms(body):
    x = np.arange(3.0)
    np.testing.assert_allclose(tg.grad(body)(x), 2 * x)
    np.testing.assert_allclose(tg.jit(body)(x), 5.0)


def test_free_length_code_is_not_retraced_per_shape():
    fn = counting(lambda x: np.sum(x.reshape((x.shape[0], -1)) ** 2))
    g = tg.grad(fn)
    g(np.ones((2, 3)))
    g(np.ones((4, 3)))
    assert fn.traces == 1


def test_a_length_depending_on_values_is_refused():
    f = tg.jit(lambda x: np.sum(x) * len(x[x > 0]))
    with pytest.raises(StaticShapeError, match="also with the arguments' shapes fixed"):
        f(np.ones(3))


def test_len_of_a_free_length_raises_static_shape_error():
    x = T.dvector("x")
    with pytest.raises(StaticShapeError, match="len"):
        len(x)
    assert issubclass(StaticShapeError, TypeError)


# --------------------------------------------------------- Theano forms
def test_theano_forms_unchanged():
    assert T.grad is tg.grad and T.jacobian is tg.jacobian and T.hessian is tg.hessian
    x = T.dvector("x")
    cost = T.sum(x ** 3)
    g = tg.grad(cost, x)
    assert isinstance(g, tg.Variable)
    gs = tg.grad(cost=cost, wrt=[x])
    assert isinstance(gs, list) and len(gs) == 1
    f = tg.function([x], [g, tg.jacobian(x ** 2, x), tg.hessian(cost, x)])
    v = np.array([1.0, 2.0])
    gv, J, H = f(v)
    np.testing.assert_allclose(gv, 3 * v ** 2)
    np.testing.assert_allclose(J, np.diag(2 * v))
    np.testing.assert_allclose(H, np.diag(6 * v))
    known = tg.grad(None, x, known_grads={x ** 2: T.ones_like(x)})
    np.testing.assert_allclose(tg.function([x], known)(v), 2 * v)
    with pytest.raises(TypeError, match="scalar"):
        tg.grad(x * 2, x)


# ------------------------------------------------------------------ errors
def test_non_scalar_output_error():
    with pytest.raises(TypeError, match="scalar-output functions.*ndim 1"):
        tg.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match="must return a scalar, got a tuple"):
        tg.grad(lambda x: (np.sum(x), x))(np.ones(3))


def test_integer_input_and_output_errors():
    with pytest.raises(TypeError, match="real- or complex-valued inputs.*int64"):
        tg.grad(lambda x: np.sum(x * 1.0))(np.arange(3))
    with pytest.raises(TypeError, match="real- or complex-valued inputs.*int64"):
        tg.grad(lambda n: n * 2.0)(3)
    with pytest.raises(TypeError, match="real-valued outputs.*int64"):
        tg.grad(lambda x: np.sum(x > 0))(np.ones(3))
    with pytest.raises(TypeError, match="jacobian requires real-valued outputs"):
        tg.jacobian(lambda x: np.argsort(x))(np.ones(3))


def test_bad_argnums_errors():
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        tg.grad(np.sum, argnums="x")
    with pytest.raises(TypeError, match="argnums must be an int"):
        tg.jacobian(np.sum, argnums=1.5)
    with pytest.raises(ValueError, match="argnums 2 but the function was called with 1"):
        tg.grad(lambda x: x ** 2, argnums=2)(1.0)
    with pytest.raises(ValueError, match="argnums is empty"):
        tg.grad(np.sum, argnums=())


def test_complex_and_holomorphic_errors():
    with pytest.raises(TypeError, match="real-valued outputs.*pass holomorphic=True"):
        tg.grad(np.sin)(1 + 1j)
    with pytest.raises(TypeError, match="holomorphic=True requires inputs with complex"):
        tg.grad(np.sin, holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="holomorphic=True requires outputs with complex"):
        tg.grad(lambda z: np.abs(z), holomorphic=True)(1j)
    with pytest.raises(TypeError, match="hessian requires real-valued inputs"):
        tg.hessian(lambda z: np.abs(z) ** 2)(1j)


def test_has_aux_and_vjp_jvp_structure_errors():
    with pytest.raises(TypeError, match="has_aux=True requires .* a pair"):
        tg.grad(lambda x: x ** 2, has_aux=True)(1.0)
    with pytest.raises(TypeError, match="tuple of length 3"):
        tg.grad(lambda x: (x, x, x), has_aux=True)(1.0)
    _, f_vjp = tg.vjp(lambda x: (x, x), np.ones(2))
    with pytest.raises(TypeError, match="structure of the cotangent"):
        f_vjp(np.ones(2))
    with pytest.raises(TypeError, match="same tree structure"):
        tg.jvp(np.sin, (np.ones(2),), ([np.ones(2)],))
    with pytest.raises(ValueError, match="equal shapes"):
        tg.jvp(np.sin, (np.ones(3),), (np.ones(1),))
    with pytest.raises(TypeError, match="tuple or a list"):
        tg.jvp(np.sin, np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="static and has no gradient"):
        tg.grad(lambda x, mode: np.sum(x), argnums=1)(np.ones(2), "mode")


# -------------------------------------------------------------------- jax
def test_against_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = RNG.normal(size=3)
    np.testing.assert_allclose(tg.grad(poly_sin)(x),
                               jax.grad(lambda v: jnp.sum(jnp.sin(v) * v))(x), rtol=1e-12)
    np.testing.assert_allclose(tg.grad(lambda z: np.abs(z) ** 2)(1 + 2j),
                               jax.grad(lambda z: jnp.abs(z) ** 2)(1 + 2j), rtol=1e-12)
    np.testing.assert_allclose(tg.hessian(lambda v: np.sum(v ** 3) * v[0])(x),
                               jax.hessian(lambda v: jnp.sum(v ** 3) * v[0])(x), rtol=1e-12)

    def fun(np_, z):
        return np_.real(z) ** 2 + 1j * np_.real(z) * np_.imag(z)

    z, w = 1.5 + 0.5j, -0.2 + 1.1j
    np.testing.assert_allclose(tg.vjp(lambda v: fun(np, v), z)[1](w)[0],
                               jax.vjp(lambda v: fun(jnp, v), z)[1](w)[0], rtol=1e-12)
    np.testing.assert_allclose(tg.jvp(lambda v: fun(np, v), (z,), (w,))[1],
                               jax.jvp(lambda v: fun(jnp, v), (z,), (w,))[1], rtol=1e-12)
    zs = np.array([1 + 2j, 0.3 - 0.7j])
    np.testing.assert_allclose(tg.jacobian(lambda v: np.abs(v) ** 2)(zs),
                               jax.jacrev(lambda v: jnp.abs(v) ** 2)(zs), rtol=1e-12)
    np.testing.assert_allclose(
        tg.hessian(lambda v: np.sum(v ** 3), holomorphic=True)(zs),
        jax.hessian(lambda v: jnp.sum(v ** 3), holomorphic=True)(zs), rtol=1e-12)
    np.testing.assert_allclose(tg.grad(lambda v: np.conj(v), holomorphic=True)(3 + 4j),
                               jax.grad(lambda v: jnp.conj(v), holomorphic=True)(3 + 4j))
