"""``conv2d`` and ``pool_2d`` (tracegrad/ops/conv.py) against loop
references written from Theano's definitions: convolution with flipped
filters (``filter_flip``), border modes, strides, dilation, groups; pooling
windows as Theano's ``Pool.perform`` draws them (partial windows with
``ignore_border=False``, padding excluded from max/sum/average_exc_pad and
included in average_inc_pad)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests
from tracegrad.tensor.nnet import conv2d
from tracegrad.tensor.signal.pool import pool_2d


# ------------------------------------------------------------ references
def ref_conv2d(x, w, border_mode="valid", subsample=(1, 1), filter_flip=True,
               filter_dilation=(1, 1), num_groups=1):
    kh, kw = w.shape[2:]
    dh, dw = filter_dilation
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    pads = {"valid": (0, 0), "full": (eh - 1, ew - 1), "half": (eh // 2, ew // 2)}
    ph, pw = pads.get(border_mode, border_mode if isinstance(border_mode, tuple)
                      else (border_mode, border_mode))
    if filter_flip:
        w = w[:, :, ::-1, ::-1]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    sh, sw = subsample
    ho = (xp.shape[2] - eh) // sh + 1
    wo = (xp.shape[3] - ew) // sw + 1
    n, f = x.shape[0], w.shape[0]
    ci, fo = x.shape[1] // num_groups, f // num_groups
    out = np.zeros((n, f, ho, wo), dtype=np.result_type(x, w))
    for g in range(num_groups):
        for r in range(ho):
            for c in range(wo):
                patch = xp[:, g * ci:(g + 1) * ci, r * sh:r * sh + eh:dh, c * sw:c * sw + ew:dw]
                out[:, g * fo:(g + 1) * fo, r, c] = np.tensordot(
                    patch, w[g * fo:(g + 1) * fo], axes=([1, 2, 3], [1, 2, 3]))
    return out


def _out_len(size, ws, st, pad, ignore_border):
    r = size + 2 * pad
    if ignore_border:
        return (r - ws) // st + 1
    if st >= ws:
        return (r - 1) // st + 1
    return max(0, (r - 1 - ws + st) // st) + 1


def ref_pool(x, ws, ignore_border=False, stride=None, pad=(0, 0), mode="max"):
    stride = stride or ws
    h, w = x.shape[-2:]
    img = (h + 2 * pad[0], w + 2 * pad[1])
    y = np.zeros(x.shape[:-2] + img, dtype=x.dtype)
    y[..., pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    pr = _out_len(h, ws[0], stride[0], pad[0], ignore_border)
    pc = _out_len(w, ws[1], stride[1], pad[1], ignore_border)
    out = np.zeros(x.shape[:-2] + (pr, pc), dtype=x.dtype)
    inc_pad = mode == "average_inc_pad"
    func = {"max": np.max, "sum": np.sum}.get(mode, np.mean)
    for r in range(pr):
        r0, r1 = r * stride[0], min(r * stride[0] + ws[0], img[0])
        if not inc_pad:
            r0, r1 = max(r0, pad[0]), min(r1, h + pad[0])
        for c in range(pc):
            c0, c1 = c * stride[1], min(c * stride[1] + ws[1], img[1])
            if not inc_pad:
                c0, c1 = max(c0, pad[1]), min(c1, w + pad[1])
            out[..., r, c] = func(y[..., r0:r1, c0:c1], axis=(-2, -1))
    return out


# ------------------------------------------------------------ op table

def conv_case(name, x_shape, w_shape, grad_shapes=None, **kw):
    def sym(x, w):
        w = T.specify_shape(w, w_shape)
        return conv2d(x, w, **kw)
    return OpCase(f"conv2d[{name}]", sym, lambda x, w: ref_conv2d(x, w, **kw),
                  [[x_shape, w_shape]], ("float64", "float32"), tol=(1e-4, 1e-5),
                  grad_shapes=grad_shapes)


SMALL_X, SMALL_W = (2, 2, 5, 6), (3, 2, 3, 2)
CASES = [
    conv_case("valid", SMALL_X, SMALL_W),
    conv_case("full", SMALL_X, SMALL_W, border_mode="full"),
    conv_case("half", SMALL_X, (3, 2, 3, 3), border_mode="half"),
    conv_case("pad", SMALL_X, SMALL_W, border_mode=(2, 1)),
    conv_case("int pad", SMALL_X, SMALL_W, border_mode=1),
    conv_case("stride", (1, 2, 7, 8), SMALL_W, subsample=(2, 3)),
    conv_case("correlation", SMALL_X, SMALL_W, filter_flip=False),
    conv_case("dilation", (1, 1, 7, 7), (2, 1, 2, 3), filter_dilation=(2, 2)),
    conv_case("groups", (1, 4, 5, 5), (6, 2, 2, 2), num_groups=2),
    conv_case("empty batch", (0, 2, 5, 6), SMALL_W, grad_shapes=[]),
]


def pool_case(name, shape, ws, **kw):
    return OpCase(f"pool_2d[{name}]", lambda x: pool_2d(x, ws, **kw),
                  lambda x: ref_pool(x, ws, **kw), [[shape]], ("float64", "float32"))


CASES += [
    pool_case("max", (2, 3, 4, 6), (2, 2), ignore_border=True),
    pool_case("max partial", (2, 5, 7), (2, 3), ignore_border=False),
    pool_case("max stride", (1, 7, 7), (3, 3), stride=(2, 2), ignore_border=True),
    pool_case("max stride partial", (1, 7, 8), (3, 3), stride=(2, 2), ignore_border=False),
    pool_case("max stride > ws", (1, 7, 8), (2, 2), stride=(3, 3), ignore_border=False),
    pool_case("max pad", (1, 5, 5), (3, 3), stride=(2, 2), pad=(1, 2), ignore_border=True),
    pool_case("sum", (2, 4, 6), (2, 3), mode="sum", ignore_border=False),
    pool_case("sum pad", (2, 4, 6), (2, 3), mode="sum", pad=(1, 1), ignore_border=True),
    pool_case("avg exc", (2, 5, 7), (2, 3), mode="average_exc_pad", ignore_border=False),
    pool_case("avg exc pad", (1, 5, 5), (3, 3), mode="average_exc_pad", pad=(1, 1),
              ignore_border=True),
    pool_case("avg inc pad", (1, 5, 5), (3, 3), mode="average_inc_pad", pad=(1, 2),
              ignore_border=True),
    pool_case("avg inc partial", (1, 5, 7), (2, 3), mode="average_inc_pad",
              ignore_border=False),
    pool_case("matrix", (6, 4), (2, 2), ignore_border=True),
]

test_forward, test_grad = table_tests(CASES)


# ------------------------------------------------------------ other checks
def test_conv2d_needs_the_filter_size():
    with pytest.raises(ValueError, match="filter_shape"):
        conv2d(T.dtensor4(), T.dtensor4())
    x, w = T.dtensor4(), T.dtensor4()
    out = conv2d(x, w, filter_shape=(3, 2, 3, 3))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3))
    np.testing.assert_allclose(tg.function([x, w], out)(a, b), ref_conv2d(a, b), rtol=1e-12)


def test_conv2d_errors_name_the_argument():
    w = T.TensorType("float64", (2, 1, 3, 3))()
    with pytest.raises(ValueError, match="border_mode"):
        conv2d(T.dtensor4(), w, border_mode="same")
    with pytest.raises(ValueError, match="4-d"):
        conv2d(T.dmatrix(), w)
    with pytest.raises(ValueError, match="2 filters cannot be split in 3 groups"):
        conv2d(T.dtensor4(), w, num_groups=3)
    with pytest.raises(ValueError, match="input channels"):
        conv2d(T.TensorType("float64", (None, 3, None, None))(),
               T.TensorType("float64", (2, 1, 3, 3))(), num_groups=2)


def test_old_conv_path_flips_and_limits_border_modes():
    from tracegrad.tensor.nnet import conv
    x, w = T.dtensor4(), T.TensorType("float64", (2, 1, 2, 2))()
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1, 1, 4, 4)), rng.normal(size=(2, 1, 2, 2))
    out = tg.function([x, w], conv.conv2d(x, w, border_mode="full"))(a, b)
    np.testing.assert_allclose(out, ref_conv2d(a, b, "full"), rtol=1e-12)
    with pytest.raises(ValueError, match="'valid' or 'full'"):
        conv.conv2d(x, w, border_mode="half")


def test_pool_special_values_follow_the_window_max_and_sum():
    x = T.dtensor3()
    v = np.array([[[np.nan, 1.0, -np.inf, 2.0], [0.5, -0.0, np.inf, 3.0]]])
    f = tg.function([x], [pool_2d(x, (2, 2), ignore_border=True),
                          pool_2d(x, (2, 2), ignore_border=True, mode="sum")])
    mx, sm = f(v)
    with np.errstate(invalid="ignore"):     # inf + -inf in the reference's sums
        np.testing.assert_array_equal(mx, ref_pool(v, (2, 2), True))
        np.testing.assert_array_equal(sm, ref_pool(v, (2, 2), True, mode="sum"))


def test_pool_errors_and_theano_spellings():
    from tracegrad.tensor.signal import downsample
    x = T.dtensor4()
    with pytest.raises(ValueError, match="mode"):
        pool_2d(x, (2, 2), mode="median")
    with pytest.raises(NotImplementedError, match="ignore_border=True"):
        pool_2d(x, (2, 2), pad=(1, 1))
    with pytest.raises(ValueError, match="smaller than the window"):
        pool_2d(x, (2, 2), pad=(2, 0), ignore_border=True)
    a = np.random.default_rng(2).normal(size=(1, 1, 5, 5))
    got = tg.function([x], [downsample.max_pool_2d(x, (2, 2), ignore_border=True),
                            pool_2d(x, ds=(2, 2), st=(1, 1), ignore_border=True,
                                    mode="average")])(a)
    np.testing.assert_allclose(got[0], ref_pool(a, (2, 2), True))
    np.testing.assert_allclose(got[1], ref_pool(a, (2, 2), True, (1, 1),
                                                mode="average_exc_pad"))


def test_output_shape_helpers_match_the_results():
    from tracegrad.tensor.nnet.abstract_conv import get_conv_output_shape
    from tracegrad.tensor.signal.pool import get_pool_output_shape
    assert get_conv_output_shape((2, 3, 9, 8), (4, 3, 3, 2), "half", (2, 1)) == \
        ref_conv2d(np.zeros((2, 3, 9, 8)), np.zeros((4, 3, 3, 2)), "half", (2, 1)).shape
    assert get_pool_output_shape((2, 7, 8), (3, 3), False, (2, 2)) == \
        ref_pool(np.zeros((2, 7, 8)), (3, 3), False, (2, 2)).shape
