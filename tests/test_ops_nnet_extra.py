"""Op table of Theano's ``T.nnet`` layers added in issue 17
(tracegrad/ops/nnet_extra.py, ops/conv3d.py, tensor/nnet/abstract_conv.py):
``h_softmax``, ``images2neibs``/``neibs2images``, ``bn``, ``conv3d``,
``conv2d_grad_wrt_inputs``/``weights``, ``conv2d_transpose``; forward vs
NumPy references written from Theano's definitions, gradients and jvps vs
finite differences."""
import itertools

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.tensor.nnet import abstract_conv, bn, neighbours
from tracegrad.tensor.signal import pool
from optable import OpCase, table_tests

FLOATS = ("float64", "float32")
TOL32 = (2e-4, 1e-5)


# ------------------------------------------------------------ references
def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _h_softmax_ref(x, w1, b1, w2, b2, n_outputs=7, target=None):
    cls = _softmax(x @ w1 + b1)                                   # (B, C)
    inner = _softmax(np.einsum("bf,cfk->bck", x, w2) + b2)        # (B, C, K)
    full = (cls[:, :, None] * inner).reshape(len(x), -1)[:, :n_outputs]
    if target is None:
        return full
    return full[np.arange(len(x)), target]


def _images2neibs_ref(x, shape, step=None, mode="valid"):
    """Theano's ``Images2Neibs.perform`` loop."""
    c, d = shape
    sx, sy = step or shape
    n, ch, h, w = x.shape
    if mode == "wrap_centered":
        gc, gd = -(-h // sx), -(-w // sy)
    else:
        gc, gd = 1 + (h - c) // sx, 1 + (w - d) // sy
    out = np.zeros((n * ch * gc * gd, c * d), x.dtype)
    for q, s, a, b in itertools.product(range(n), range(ch), range(gc), range(gd)):
        row = b + gd * (a + gc * (s + ch * q))
        for i, j in itertools.product(range(c), range(d)):
            r, k = i + a * sx, j + b * sy
            if mode == "wrap_centered":
                r, k = (r - c // 2) % h, (k - d // 2) % w
            out[row, j + d * i] = x[q, s, r, k]
    return out


def _neibs2images_ref(neibs, shape, original, mode="valid"):
    out = np.zeros(original, neibs.dtype)
    c, d = shape
    n, ch, h, w = original
    gc, gd = h // c, w // d
    rows = iter(neibs)
    for q, s, a, b in itertools.product(range(n), range(ch), range(gc), range(gd)):
        out[q, s, a * c:(a + 1) * c, b * d:(b + 1) * d] = next(rows).reshape(c, d)
    return out


def _conv_ref(x, w, stride, pads, dil, flip=True):
    """``conv2d``/``conv3d`` by definition: a correlation of the padded input
    with the (flipped) filters, one filter offset at a time."""
    nd = w.ndim - 2
    if flip:
        w = w[(slice(None),) * 2 + (slice(None, None, -1),) * nd]
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pads])
    outs = [(x.shape[2 + k] - (w.shape[2 + k] - 1) * dil[k] - 1) // stride[k] + 1
            for k in range(nd)]
    y = np.zeros((x.shape[0], w.shape[0], *outs))
    for off in itertools.product(*(range(k) for k in w.shape[2:])):
        key = tuple(slice(o * dil[k], o * dil[k] + (outs[k] - 1) * stride[k] + 1, stride[k])
                    for k, o in enumerate(off))
        y += np.einsum("nc...,fc->nf...", x[(slice(None),) * 2 + key],
                       w[(slice(None),) * 2 + off])
    return y.astype(np.result_type(x, w))


def _conv_input_grad_ref(g, w, in_shape, stride, pads, dil, flip=True):
    """The adjoint of ``_conv_ref`` in its input (scatter per filter offset)."""
    if flip:
        w = w[:, :, ::-1, ::-1]
    hp, wp = in_shape[2] + 2 * pads[0], in_shape[3] + 2 * pads[1]
    xg = np.zeros((g.shape[0], w.shape[1], hp, wp))
    oh, ow = g.shape[2:]
    for a, b in itertools.product(range(w.shape[2]), range(w.shape[3])):
        rs = slice(a * dil[0], a * dil[0] + (oh - 1) * stride[0] + 1, stride[0])
        cs = slice(b * dil[1], b * dil[1] + (ow - 1) * stride[1] + 1, stride[1])
        xg[:, :, rs, cs] += np.einsum("nfij,fc->ncij", g, w[:, :, a, b])
    return xg[:, :, pads[0]:hp - pads[0], pads[1]:wp - pads[1]].astype(np.result_type(g, w))


def _bn_train_ref(x, gamma, beta, axes, eps=1e-4):
    mean = x.mean(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return (x - mean) * invstd * gamma + beta, mean, invstd


def _uniform(rng, dtype, shapes):
    return [rng.uniform(-1, 1, s).astype(dtype) for s in shapes]


def _positive_last(rng, dtype, shapes):
    out = [rng.uniform(-1, 1, s) for s in shapes]
    out[-1] = rng.uniform(0.5, 1.5, shapes[-1])
    return [a.astype(dtype) for a in out]


def _with_targets(rng, dtype, shapes):
    return _uniform(rng, dtype, shapes[:-1]) + [rng.integers(0, 7, shapes[-1][0])]


H_SHAPES = [[(4, 5), (5, 3), (3,), (3, 5, 3), (3, 3)]]
F3 = (4, 2, 2, 3, 2)

CASES = [
    OpCase("h_softmax", lambda x, w1, b1, w2, b2: T.nnet.h_softmax(
        x, x.shape[0], 7, 3, 3, w1, b1, w2, b2), _h_softmax_ref, H_SHAPES, FLOATS,
        make_inputs=_uniform, tol=TOL32),
    OpCase("h_softmax[target]", lambda x, w1, b1, w2, b2, t: T.nnet.h_softmax(
        x, 4, 7, 3, 3, w1, b1, w2, b2, target=t),
        lambda x, w1, b1, w2, b2, t: _h_softmax_ref(x, w1, b1, w2, b2, target=t),
        [H_SHAPES[0] + [(4,)]], FLOATS, make_inputs=_with_targets, tol=TOL32),
    OpCase("images2neibs", lambda x: T.nnet.images2neibs(x, (2, 3)),
           lambda x: _images2neibs_ref(x, (2, 3)), [[(2, 2, 4, 6)], [(1, 1, 2, 3)]], FLOATS),
    OpCase("images2neibs[step]", lambda x: T.nnet.images2neibs(x, (3, 2), (1, 2)),
           lambda x: _images2neibs_ref(x, (3, 2), (1, 2)), [[(2, 1, 4, 6)]], FLOATS),
    OpCase("images2neibs[ignore_borders]", lambda x: T.nnet.images2neibs(
        x, (2, 2), (2, 3), mode="ignore_borders"),
        lambda x: _images2neibs_ref(x, (2, 2), (2, 3), "ignore_borders"),
        [[(2, 2, 5, 7)], [(1, 1, 2, 2)]], FLOATS),
    OpCase("images2neibs[wrap_centered]", lambda x: T.nnet.images2neibs(
        x, (3, 3), mode="wrap_centered"),
        lambda x: _images2neibs_ref(x, (3, 3), mode="wrap_centered"),
        [[(1, 2, 4, 5)], [(2, 1, 3, 3)]], FLOATS),
    OpCase("images2neibs[wrap_centered,step]", lambda x: T.nnet.images2neibs(
        x, (3, 1), (2, 1), mode="wrap_centered"),
        lambda x: _images2neibs_ref(x, (3, 1), (2, 1), "wrap_centered"),
        [[(1, 2, 5, 3)]], FLOATS),
    OpCase("neibs2images", lambda m: neighbours.neibs2images(m, (2, 3), (2, 2, 4, 6)),
           lambda m: _neibs2images_ref(m, (2, 3), (2, 2, 4, 6)), [[(16, 6)]], FLOATS),
    OpCase("neibs2images[ignore_borders]", lambda m: neighbours.neibs2images(
        m, (2, 2), (1, 2, 5, 5), mode="ignore_borders"),
        lambda m: _neibs2images_ref(m, (2, 2), (1, 2, 5, 5)), [[(8, 4)]], FLOATS),
    OpCase("batch_normalization", bn.batch_normalization,
           lambda x, g, b, m, s: (x - m) * (g / s) + b,
           [[(4, 3), (3,), (3,), (3,), (3,)], [(2, 3, 2), (1, 3, 1), (), (3, 1), (1,)]],
           FLOATS, make_inputs=_positive_last),
    OpCase("batch_normalization_train", lambda x, g, b: bn.batch_normalization_train(
        x, g, b)[0], lambda x, g, b: _bn_train_ref(x, g, b, (0,))[0],
        [[(5, 3), (1, 3), (1, 3)], [(5, 3), (3,), (3,)]], FLOATS, tol=TOL32),
    OpCase("batch_normalization_train[mean]", lambda x, g, b: bn.batch_normalization_train(
        x, g, b, axes="spatial")[1], lambda x, g, b: _bn_train_ref(x, g, b, (0, 2, 3))[1],
        [[(3, 2, 2, 3), (1, 2, 1, 1), (1, 2, 1, 1)]], FLOATS, tol=TOL32),
    OpCase("batch_normalization_train[invstd]", lambda x, g, b: bn.batch_normalization_train(
        x, g, b, axes=(0, 2))[2], lambda x, g, b: _bn_train_ref(
            x, g[None, :, None], b[None, :, None], (0, 2))[2].ravel(),
        [[(4, 2, 3), (2,), (2,)]], FLOATS, tol=TOL32),
    OpCase("batch_normalization_train[spatial]", lambda x, g, b: bn.batch_normalization_train(
        x, g, b, axes="spatial")[0], lambda x, g, b: _bn_train_ref(
            x, g[None, :, None, None], b[None, :, None, None], (0, 2, 3))[0],
        [[(3, 2, 2, 3), (2,), (2,)]], FLOATS, tol=TOL32),
    OpCase("batch_normalization_train[running_var]", lambda x, g, b, rm, rv:
           bn.batch_normalization_train(x, g, b, running_average_factor=0.3,
                                        running_mean=rm, running_var=rv)[4],
           lambda x, g, b, rm, rv: 0.7 * rv + 0.3 * x.var(axis=0, ddof=1, keepdims=True),
           [[(5, 3), (1, 3), (1, 3), (1, 3), (1, 3)]], FLOATS, make_inputs=_positive_last),
    OpCase("batch_normalization_test", lambda x, g, b, m, v: bn.batch_normalization_test(
        x, g, b, m, v), lambda x, g, b, m, v: (x - m) * g / np.sqrt(v + 1e-4) + b,
        [[(4, 3), (3,), (3,), (3,), (3,)], [(4, 3), (1, 3), (1, 3), (1, 3), (1, 3)]],
        FLOATS, make_inputs=_positive_last),
    OpCase("conv3d", lambda x, w: T.nnet.conv3d(x, w, filter_shape=F3),
           lambda x, w: _conv_ref(x, w, (1, 1, 1), (0, 0, 0), (1, 1, 1)),
           [[(2, 2, 4, 5, 3), F3]], FLOATS, make_inputs=_uniform, tol=TOL32),
    OpCase("conv3d[half,stride,noflip]", lambda x, w: abstract_conv.conv3d(
        x, w, filter_shape=F3, border_mode="half", subsample=(2, 1, 2), filter_flip=False),
        lambda x, w: _conv_ref(x, w, (2, 1, 2), (1, 1, 1), (1, 1, 1), flip=False),
        [[(1, 2, 4, 5, 3), F3]], FLOATS, make_inputs=_uniform, tol=TOL32),
    OpCase("conv3d[full,dilation]", lambda x, w: T.nnet.conv3d(
        x, w, filter_shape=F3, border_mode="full", filter_dilation=(1, 2, 1)),
        lambda x, w: _conv_ref(x, w, (1, 1, 1), (1, 4, 1), (1, 2, 1)),
        [[(1, 2, 3, 5, 2), F3]], FLOATS, make_inputs=_uniform, tol=TOL32),
    OpCase("conv2d_grad_wrt_inputs", lambda g, w: abstract_conv.conv2d_grad_wrt_inputs(
        g, w, (None, None, 6, 7), filter_shape=(3, 2, 3, 2)),
        lambda g, w: _conv_input_grad_ref(g, w, (0, 0, 6, 7), (1, 1), (0, 0), (1, 1)),
        [[(2, 3, 4, 6), (3, 2, 3, 2)]], FLOATS, make_inputs=_uniform, tol=TOL32),
    OpCase("conv2d_grad_wrt_inputs[half,stride]", lambda g, w:
           abstract_conv.conv2d_grad_wrt_inputs(g, w, (2, 2, 7, 6), filter_shape=(3, 2, 3, 3),
                                                border_mode="half", subsample=(2, 2)),
           lambda g, w: _conv_input_grad_ref(g, w, (2, 2, 7, 6), (2, 2), (1, 1), (1, 1)),
           [[(2, 3, 4, 3), (3, 2, 3, 3)]], FLOATS, make_inputs=_uniform, tol=TOL32),
    OpCase("conv2d_transpose", lambda g, w: T.nnet.conv2d_transpose(
        g, w, (1, 2, 8, 7), filter_shape=(3, 2, 2, 3), input_dilation=(2, 2),
        filter_flip=False), lambda g, w: _conv_input_grad_ref(
            g, w, (1, 2, 8, 7), (2, 2), (0, 0), (1, 1), flip=False),
        [[(1, 3, 4, 3), (3, 2, 2, 3)]], FLOATS, make_inputs=_uniform, tol=TOL32),
    OpCase("pool_3d", lambda x: pool.pool_3d(x, (2, 2, 2)),
           lambda x: _pool_ref(x, (2, 2, 2)), [[(2, 5, 4, 3)], [(1, 2, 2, 2, 2)]], FLOATS),
    OpCase("pool_3d[ignore_border,stride,sum]", lambda x: pool.pool_3d(
        x, (2, 3, 2), ignore_border=True, stride=(1, 2, 2), mode="sum"),
        lambda x: _pool_ref(x, (2, 3, 2), True, (1, 2, 2), mode="sum"), [[(2, 4, 5, 4)]], FLOATS),
    OpCase("pool_3d[average_exc_pad]", lambda x: pool.pool_3d(
        x, (2, 2, 3), ignore_border=True, pad=(1, 0, 1), mode="average_exc_pad"),
        lambda x: _pool_ref(x, (2, 2, 3), True, None, (1, 0, 1), "average_exc_pad"),
        [[(1, 3, 4, 5)]], FLOATS),
    OpCase("pool_3d[average_inc_pad,partial]", lambda x: pool.pool_3d(
        x, (2, 2, 2), stride=(1, 3, 2), mode="average_inc_pad"),
        lambda x: _pool_ref(x, (2, 2, 2), False, (1, 3, 2), mode="average_inc_pad"),
        [[(1, 3, 5, 3)]], FLOATS),
    OpCase("max_pool_2d_same_size", lambda x: pool.max_pool_2d_same_size(x, (2, 3)),
           lambda x: _same_size_ref(x, (2, 3)), [[(2, 1, 5, 7)], [(1, 2, 4, 6)]], FLOATS),
]


def _pool_ref(x, ws, ignore_border=False, stride=None, pad=(0, 0, 0), mode="max"):
    """Theano's ``Pool.perform`` over the last ``len(ws)`` axes."""
    nd, stride = len(ws), stride or ws
    y = np.pad(x, [(0, 0)] * (x.ndim - nd) + [(p, p) for p in pad])
    shp = y.shape[-nd:]

    def count(r, w, s):
        if ignore_border:
            return (r - w) // s + 1
        return (r - 1) // s + 1 if s >= w else max(0, (r - 1 - w + s) // s) + 1
    outs = [count(r, w, s) for r, w, s in zip(shp, ws, stride)]
    z = np.zeros(x.shape[:-nd] + tuple(outs), x.dtype)
    func = {"max": np.max, "sum": np.sum}.get(mode, np.mean)
    for r in np.ndindex(*outs):
        region = [slice(r[i] * stride[i], min(r[i] * stride[i] + ws[i], shp[i]))
                  for i in range(nd)]
        if mode != "average_inc_pad":
            region = [slice(max(s.start, pad[i]), min(s.stop, shp[i] - pad[i]))
                      for i, s in enumerate(region)]
        axes = tuple(range(x.ndim - nd, x.ndim))
        z[(Ellipsis,) + r] = func(y[(Ellipsis,) + tuple(region)], axis=axes)
    return z


def _same_size_ref(x, ps):
    """Theano's ``MaxPoolGrad`` of the patches' max with itself: each
    patch's max kept where it is, zeros elsewhere."""
    out = np.zeros_like(x)
    gh, gw = x.shape[-2] // ps[0], x.shape[-1] // ps[1]
    for i, j in itertools.product(range(gh), range(gw)):
        key = (Ellipsis, slice(i * ps[0], (i + 1) * ps[0]), slice(j * ps[1], (j + 1) * ps[1]))
        patch = x[key]
        m = patch.max(axis=(-2, -1), keepdims=True)
        out[key] = np.where(patch == m, m, 0)
    return out

test_forward, test_grad = table_tests(CASES)


def test_conv2d_grad_wrt_inputs_and_weights_are_conv2d_gradients():
    rng = np.random.default_rng(0)
    xv, wv = rng.uniform(-1, 1, (2, 4, 7, 6)), rng.uniform(-1, 1, (6, 2, 3, 2))
    x, g = T.dtensor4("x"), T.dtensor4("g")
    w = T.tensor("float64", shape=wv.shape, name="w")   # (groups need the static shape)
    kw = dict(border_mode=(1, 2), subsample=(2, 1), filter_dilation=(1, 2), num_groups=2)
    out = T.nnet.conv2d(x, w, filter_shape=wv.shape, **kw)
    gv = rng.uniform(-1, 1, out.eval({x: xv, w: wv}).shape)
    gx, gw = tg.grad(None, [x, w], known_grads={out: g})
    vals = {x: xv, w: wv, g: gv}
    np.testing.assert_allclose(abstract_conv.conv2d_grad_wrt_inputs(
        g, w, xv.shape, filter_shape=wv.shape, **kw).eval(vals), gx.eval(vals))
    np.testing.assert_allclose(abstract_conv.conv2d_grad_wrt_weights(
        x, g, wv.shape, **kw).eval(vals), gw.eval(vals))


def test_batch_normalization_train_running_averages():
    x = T.dmatrix("x")
    g, b = T.dvector("g"), T.dvector("b")
    rm, rv = T.dvector("rm"), T.dvector("rv")
    out, mean, invstd, new_m, new_v = bn.batch_normalization_train(
        x, g, b, epsilon=1e-3, running_average_factor=0.25, running_mean=rm, running_var=rv)
    assert mean.ndim == 1 and invstd.ndim == 1           # shaped as the parameters
    xv = np.random.default_rng(0).uniform(size=(6, 3))
    f = tg.function([x, g, b, rm, rv], [out, mean, invstd, new_m, new_v])
    o, m, s, nm, nv = f(xv, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
    np.testing.assert_allclose(m, xv.mean(0))
    np.testing.assert_allclose(s, 1 / np.sqrt(xv.var(0) + 1e-3))
    np.testing.assert_allclose(nm, 0.25 * xv.mean(0))
    np.testing.assert_allclose(nv, 0.75 + 0.25 * xv.var(0, ddof=1))
    np.testing.assert_allclose(o, (xv - xv.mean(0)) / np.sqrt(xv.var(0) + 1e-3))


def test_images2neibs_checks_and_round_trip():
    x = T.dtensor4("x")
    with pytest.raises(ValueError, match="multiple of the step"):
        T.nnet.images2neibs(x, (2, 2)).eval({x: np.ones((1, 1, 3, 4))})
    with pytest.raises(ValueError, match="odd"):
        T.nnet.images2neibs(x, (2, 3), mode="wrap_centered")
    with pytest.raises(NotImplementedError):
        neighbours.neibs2images(T.dmatrix(), (2, 2), (1, 1, 4, 4), mode="wrap_centered")
    xv = np.random.default_rng(0).uniform(size=(2, 3, 4, 6))
    back = neighbours.neibs2images(neighbours.images2neibs(x, (2, 3)), (2, 3), x.shape)
    np.testing.assert_array_equal(back.eval({x: xv}), xv)


def test_theano_paths():
    from tracegrad.tensor.nnet import abstract_conv as ac
    assert T.nnet.neighbours.images2neibs is T.nnet.images2neibs
    assert T.nnet.conv2d_transpose is ac.conv2d_transpose and T.nnet.conv3d is ac.conv3d
    for name in bn.__all__:
        assert callable(getattr(T.nnet.bn, name))


@pytest.mark.parametrize("xs,ws,mode", [((5, 6), (2, 3), "valid"), ((3, 5, 6), (4, 2, 3), "full"),
                                        ((5, 6), (4, 2, 3), "valid"), ((3, 5, 6), (2, 3), "full")])
def test_signal_conv2d(xs, ws, mode):
    """``theano.tensor.signal.conv.conv2d``: each image with each filter."""
    from tracegrad.tensor.signal import conv
    rng = np.random.default_rng(0)
    xv, wv = rng.uniform(-1, 1, xs), rng.uniform(-1, 1, ws)
    x, w = T.tensor("float64", (None,) * len(xs)), T.tensor("float64", (None,) * len(ws))
    got = conv.conv2d(x, w, filter_shape=ws, border_mode=mode).eval({x: xv, w: wv})
    x4, w4 = xv.reshape((-1, 1) + xs[-2:]), wv.reshape((-1, 1) + ws[-2:])
    pad = (0, 0) if mode == "valid" else (ws[-2] - 1, ws[-1] - 1)
    want = _conv_ref(x4, w4, (1, 1), pad, (1, 1))
    want = want.reshape(xs[:-2] + ws[:-2] + want.shape[-2:])
    np.testing.assert_allclose(got, want)
    g = tg.grad(T.sum(conv.conv2d(x, w, filter_shape=ws, border_mode=mode) ** 2), w)
    assert g.eval({x: xv, w: wv}).shape == ws
