"""``tg.vmap``: JAX's semantics (in_axes / out_axes, trees, axis_size, the
errors), per-example gradients, composition with jit / grad / nested vmap,
the fallback loop, and the ``vmap_rule`` hook. Every op-table row is
checked in ``tests/test_vmap_table.py``."""
import sys
from collections import namedtuple

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.trace import Op

VMAP = sys.modules["tracegrad.vmap"]  # (``tracegrad.vmap`` the name is the function)
RNG = np.random.default_rng(0)


def _loop(fn, args, in_axes, out_axis=0):
    """The reference: ``fn`` per example, stacked (what vmap must equal)."""
    size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    results = [fn(*[a if ax is None else np.take(a, i, axis=ax)
                    for a, ax in zip(args, in_axes)]) for i in range(size)]
    return np.stack([np.asarray(r) for r in results], axis=out_axis)


def _spy_loops(monkeypatch):
    """The ops that fell back to the loop while batching."""
    seen = []
    original = VMAP._loop

    def spy(node, inputs, axes):
        seen.append(type(node.op).__name__)
        return original(node, inputs, axes)

    monkeypatch.setattr(VMAP, "_loop", spy)
    return seen


# ------------------------------------------------------------ in_axes / out_axes
@pytest.mark.parametrize("in_axes", [0, 1, -1, (1, None), (0, None), [0, None], (None, 0)])
def test_in_axes_variants_equal_the_loop(in_axes):
    x, w = RNG.normal(size=(4, 4)), RNG.normal(size=(4, 4))

    def f(a, b):
        return np.tanh(a * 2.0).sum() + (b * a).sum()

    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes, in_axes)
    got = tg.vmap(f, in_axes=in_axes)(x, w)
    np.testing.assert_allclose(got, _loop(lambda a, b: np.tanh(a * 2.0).sum() + (b * a).sum(),
                                          (x, w), axes), rtol=1e-12)


@pytest.mark.parametrize("out_axes", [0, 1, -1, 2])
def test_out_axes_places_the_batch_axis(out_axes):
    x = RNG.normal(size=(5, 3, 2))
    got = tg.vmap(lambda a: a.T * 2.0, out_axes=out_axes)(x)
    np.testing.assert_allclose(got, _loop(lambda a: a.T * 2.0, (x,), (0,), out_axes))


def test_out_axes_tree_and_none_for_an_unbatched_output():
    x, w = RNG.normal(size=(4, 3)), RNG.normal(size=(3,))

    def f(a, b):
        return {"y": a * b, "w2": b * 2.0}

    got = tg.vmap(f, in_axes=(0, None), out_axes={"y": 1, "w2": None})(x, w)
    np.testing.assert_allclose(got["y"], (x * w).T)
    np.testing.assert_allclose(got["w2"], w * 2.0)


def test_an_unbatched_output_is_repeated_along_the_batch():
    x, w = RNG.normal(size=(4, 3)), RNG.normal(size=(3,))
    a, b = tg.vmap(lambda a, b: (a.sum(), b + 1.0), in_axes=(0, None))(x, w)
    np.testing.assert_allclose(a, x.sum(1))
    np.testing.assert_allclose(b, np.broadcast_to(w + 1.0, (4, 3)))
    b[0, 0] = 7.0  # a new array, writeable like JAX's result
    assert b[1, 0] == w[0] + 1.0


def test_trees_and_tree_prefixes_of_in_axes():
    Pair = namedtuple("Pair", "a b")
    params = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=(2,))}
    xs = Pair(RNG.normal(size=(5, 3)), RNG.normal(size=(3, 5)))

    def f(p, pair):
        return pair.a @ p["w"] + p["b"] + pair.b.sum()

    got = tg.vmap(f, in_axes=(None, Pair(0, 1)))(params, xs)
    want = np.stack([xs.a[i] @ params["w"] + params["b"] + xs.b[:, i].sum()
                     for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # A dict prefix: only 'w' mapped.
    ws = RNG.normal(size=(4, 3, 2))
    got = tg.vmap(lambda p, x: x @ p["w"] + p["b"], in_axes=({"w": 0, "b": None}, None))(
        {"w": ws, "b": params["b"]}, xs.a[0])
    np.testing.assert_allclose(got, np.stack([xs.a[0] @ w + params["b"] for w in ws]))


def test_keyword_arguments_are_mapped_over_axis_0():
    x, y = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    got = tg.vmap(lambda a, b=None: (a * b).sum(), in_axes=0)(x, b=y)
    np.testing.assert_allclose(got, (x * y).sum(1))


def test_axis_size_with_every_in_axis_none():
    w = RNG.normal(size=(3,))
    got = tg.vmap(lambda b: b * 2.0, in_axes=None, axis_size=4)(w)
    np.testing.assert_allclose(got, np.broadcast_to(w * 2.0, (4, 3)))


def test_python_numbers_and_static_arguments():
    x = RNG.normal(size=(4, 3))
    got = tg.vmap(lambda a, s, name: a * s, in_axes=(0, None, None))(x, 2.5, "static")
    np.testing.assert_allclose(got, x * 2.5)


# ------------------------------------------------------------ errors (JAX's)
def test_inconsistent_sizes_name_each_axis():
    with pytest.raises(ValueError, match=r"inconsistent sizes for array axes to be mapped"
                                         r"(.|\n)*size 4: axis 0 of argument args\[0\]"
                                         r"(.|\n)*size 3: axis 0 of argument args\[1\]"):
        tg.vmap(lambda a, b: a + b)(np.ones((4, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="inconsistent sizes"):
        tg.vmap(lambda a: a, axis_size=3)(np.ones((4, 2)))


def test_inconsistent_static_sizes_while_tracing():
    a, b = T.TensorType("float64", (4, 2))("a"), T.TensorType("float64", (3, 2))("b")
    with pytest.raises(ValueError, match="inconsistent sizes"):
        tg.vmap(lambda u, v: u + v)(a, b)


def test_in_axes_errors():
    x = np.ones((4, 2))
    with pytest.raises(ValueError, match="at least one non-None value in in_axes"):
        tg.vmap(lambda a: a, in_axes=None)(x)
    with pytest.raises(ValueError, match=r"len\(in_axes\)=3, len\(args\)=2"):
        tg.vmap(lambda a, b: a, in_axes=(0, 0, 0))(x, x)
    with pytest.raises(ValueError, match="tree prefix of the corresponding value"):
        tg.vmap(lambda p: p["w"], in_axes=({"v": 0},))({"w": x})
    with pytest.raises(ValueError, match="must be an int, None, or"):
        tg.vmap(lambda a: a, in_axes="0")
    with pytest.raises(ValueError, match="or a tuple of entries corresponding"):
        tg.vmap(lambda a: a, in_axes={"a": 0})
    with pytest.raises(ValueError, match=r"along axis 2, which implies that its rank should "
                                         r"be at least 3, but is only 2"):
        tg.vmap(lambda a: a, in_axes=2)(x)
    with pytest.raises(ValueError, match="rank should be at least 1, but is only 0"):
        tg.vmap(lambda a: a)(3.0)
    with pytest.raises(TypeError, match="axis_size must be a non-negative int"):
        tg.vmap(lambda a: a, axis_size=2.5)


def test_out_axes_errors():
    x, w = np.ones((4, 2)), np.ones(2)
    with pytest.raises(ValueError, match="mapped output .* but out_axes is None"):
        tg.vmap(lambda a: a * 2.0, out_axes=None)(x)
    with pytest.raises(ValueError, match="out_axes 3 is out of bounds"):
        tg.vmap(lambda a, b: a * b, in_axes=(0, None), out_axes=3)(x, w)
    with pytest.raises(ValueError, match="tree prefix"):
        tg.vmap(lambda a: (a, a), out_axes=(0, 0, 0))(x)


def test_random_draws_are_refused_clearly():
    srng = tg.random.RandomStreams(seed=1)

    def noisy(a):
        return a + srng.normal(size=a.shape)

    with pytest.raises(NotImplementedError, match="does not batch random draws"):
        tg.vmap(noisy)(np.ones((4, 2)))
    # A draw that does not depend on the mapped argument is shared, as in JAX.
    x = T.dmatrix("x")
    noise = srng.normal(size=(2,))
    out = tg.function([x], tg.vmap(lambda a: a + noise)(x))(np.zeros((3, 2)))
    np.testing.assert_allclose(out, np.broadcast_to(out[0], (3, 2)))
    assert np.all(out[0] != 0)


# ------------------------------------------------------------ per-example gradients
def _mlp_params(rng, sizes=(8, 16, 3)):
    return {f"w{i}": rng.normal(size=(m, n)) / np.sqrt(m)
            for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]))} | \
        {f"b{i}": rng.normal(size=(n,)) * 0.1 for i, n in enumerate(sizes[1:])}


def _mlp_loss(p, x, y):
    h = np.tanh(x @ p["w0"] + p["b0"])
    logits = h @ p["w1"] + p["b1"]
    logp = logits - np.log(np.sum(np.exp(logits)))
    return -logp[y]


def test_per_example_gradients_of_an_mlp_equal_a_loop(monkeypatch):
    seen = _spy_loops(monkeypatch)
    rng = np.random.default_rng(1)
    params = _mlp_params(rng)
    xs, ys = rng.normal(size=(6, 8)), rng.integers(0, 3, size=6)
    per_example = tg.vmap(tg.grad(_mlp_loss), in_axes=(None, 0, 0))(params, xs, ys)
    single = tg.grad(_mlp_loss)
    loop = [single(params, xs[i], ys[i]) for i in range(6)]
    for k in params:
        assert per_example[k].shape == (6,) + params[k].shape
        np.testing.assert_allclose(per_example[k], np.stack([g[k] for g in loop]),
                                   rtol=1e-10, atol=1e-12)
    assert seen == [], f"ops without a batching rule in an MLP's gradient: {seen}"


def test_value_and_grad_under_vmap():
    rng = np.random.default_rng(2)
    params = _mlp_params(rng)
    xs, ys = rng.normal(size=(5, 8)), rng.integers(0, 3, size=5)
    values, grads = tg.vmap(tg.value_and_grad(_mlp_loss), in_axes=(None, 0, 0))(params, xs, ys)
    np.testing.assert_allclose(values, [tg.jit(_mlp_loss)(params, x, y) for x, y in zip(xs, ys)])
    assert grads["w1"].shape == (5, 16, 3)


# ------------------------------------------------------------ composition
def test_grad_of_vmap():
    x = RNG.normal(size=(4, 3))

    def total(a):
        return np.sum(tg.vmap(lambda r: np.sin(r).sum() ** 2)(a))

    np.testing.assert_allclose(tg.grad(total)(x),
                               2 * np.sin(x).sum(1, keepdims=True) * np.cos(x), rtol=1e-12)


def test_jit_of_vmap_compiles_once_for_every_batch_length():
    f = tg.jit(tg.vmap(lambda a, b: a @ b, in_axes=(0, None)))
    w = RNG.normal(size=(3, 2))
    for n in (2, 5, 7):
        x = RNG.normal(size=(n, 3))
        np.testing.assert_allclose(f(x, w), x @ w, rtol=1e-12)
    assert f.cache_size == 1
    g = tg.vmap(lambda a, b: a @ b, in_axes=(0, None))
    for n in (2, 5):
        g(RNG.normal(size=(n, 3)), w)
    assert g.cache_size == 1


def test_nested_vmap_is_an_outer_product_of_batches():
    x, y = RNG.normal(size=(4, 3)), RNG.normal(size=(5, 3))
    pairwise = tg.vmap(tg.vmap(lambda a, b: np.sum((a - b) ** 2), in_axes=(None, 0)),
                       in_axes=(0, None))
    np.testing.assert_allclose(pairwise(x, y),
                               ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1), rtol=1e-12)


def test_vmap_of_jacobian_and_hessian():
    x = RNG.normal(size=(4, 3))
    jac = tg.vmap(tg.jacobian(lambda a: np.sin(a) * a.sum()))(x)
    for i in range(4):
        want = np.diag(np.cos(x[i]) * x[i].sum()) + np.sin(x[i])[:, None]
        np.testing.assert_allclose(jac[i], want, rtol=1e-12)
    hess = tg.vmap(tg.hessian(lambda a: np.sum(a ** 3)))(x)
    np.testing.assert_allclose(hess, np.stack([np.diag(6 * r) for r in x]), rtol=1e-12)


def test_vmap_inside_a_symbolic_graph_and_tg_function():
    x = T.dmatrix("x")
    y = tg.vmap(lambda r: np.cumsum(r) / np.linalg.norm(r))(x)
    f = tg.function([x], [y, tg.grad(y.sum(), x)])
    value = RNG.normal(size=(3, 4))
    out, _ = f(value)
    np.testing.assert_allclose(out, np.cumsum(value, 1) / np.linalg.norm(value, axis=1,
                                                                          keepdims=True))


def test_identity_constants_jvp_scan_ifelse_and_static_lengths():
    x = RNG.normal(size=(4, 3))
    np.testing.assert_array_equal(tg.vmap(lambda a: a)(x), x)
    np.testing.assert_array_equal(tg.vmap(lambda a: 1.0)(x), np.ones(4))
    jvp = tg.vmap(lambda a: tg.jvp(np.sin, (a,), (np.ones_like(a),))[1])
    np.testing.assert_allclose(jvp(x), np.cos(x), rtol=1e-12)

    def rows(a):  # a length used as a Python int: traced with static shapes
        return sum(a[i] * i for i in range(a.shape[0]))

    np.testing.assert_allclose(tg.vmap(rows)(x), _loop(rows, (x,), (0,)), rtol=1e-12)

    def running_sum(a):
        out, _ = tg.scan(lambda v, acc: acc + v, sequences=[a],
                         outputs_info=[np.float64(0.0)])
        return out[-1]

    np.testing.assert_allclose(tg.vmap(running_sum)(x), x.sum(1), rtol=1e-12)
    np.testing.assert_allclose(tg.grad(lambda m: tg.vmap(running_sum)(m).sum())(x),
                               np.ones_like(x))
    from tracegrad.ifelse import ifelse
    branch = tg.vmap(lambda a: ifelse(a.sum() > 0.0, a, -a))(x)
    np.testing.assert_allclose(branch, np.where(x.sum(1, keepdims=True) > 0, x, -x))


# ------------------------------------------------------------ rules and the loop
def test_an_op_without_a_rule_loops_over_the_batch(monkeypatch):
    seen = _spy_loops(monkeypatch)
    a = RNG.normal(size=(4, 3, 3)) + 3 * np.eye(3)
    got = tg.vmap(np.linalg.inv)(a)
    np.testing.assert_allclose(got, np.linalg.inv(a), rtol=1e-10)
    assert "MatrixInverse" in seen
    # ... and it is differentiable (scan's gradient)
    g = tg.grad(lambda m: np.sum(tg.vmap(np.linalg.inv)(m)))(a)
    want = np.stack([tg.grad(lambda m: np.sum(np.linalg.inv(m)))(e) for e in a])
    np.testing.assert_allclose(g, want, rtol=1e-8)


def test_native_rules_keep_the_graph_free_of_loops(monkeypatch):
    seen = _spy_loops(monkeypatch)
    x = RNG.normal(size=(4, 3, 5))
    ii = np.array([2, 0])

    def f(a):
        b = np.concatenate([a, a[::-1]], axis=1).reshape((6, 5)).T
        c = np.sort(np.cumsum(b, axis=0), axis=1)[ii] @ np.ones((6, 2))
        return np.max(c, axis=0) + np.tensordot(a, a, axes=([0, 1], [0, 1])).sum()

    np.testing.assert_allclose(tg.vmap(f)(x), _loop(tg.jit(f), (x,), (0,)), rtol=1e-12)
    assert seen == []


def test_a_rule_returning_a_wrong_type_is_reported():
    class Twice(Op):
        def make_node(self, x):
            x = T.as_tensor_variable(x)
            return tg.Apply(self, [x], [x.type()])

        def impl(self, xp, x):
            return 2 * x

        def vmap_rule(self, node, inputs, batch_axes):
            return [inputs[0].sum(axis=0).sum(axis=0)], [0]

    with pytest.raises(TypeError, match="batching rule of Twice returned"):
        tg.vmap(lambda a: Twice()(a))(np.ones((3, 2, 2)))


def test_the_hook_is_declared_with_its_default():
    assert Op().vmap_rule(None, [], []) is None


def test_per_example_gradients_equal_a_python_loop_at_batch_256():
    """The case of the user guide's figure (timed in ``python -m bench.vmap``,
    never here): one call of the vmapped gradient equals 256 calls of the
    compiled gradient."""
    rng = np.random.default_rng(3)
    params = _mlp_params(rng, (32, 64, 10))
    xs, ys = rng.normal(size=(256, 32)), rng.integers(0, 10, size=256)
    batched = tg.vmap(tg.grad(_mlp_loss), in_axes=(None, 0, 0))
    single = tg.grad(_mlp_loss)
    got = batched(params, xs, ys)
    loop = [single(params, x, y) for x, y in zip(xs, ys)]
    assert set(got) == set(params)
    for k, g in got.items():
        np.testing.assert_allclose(g, np.stack([per[k] for per in loop]), rtol=1e-10,
                                   atol=1e-12)
