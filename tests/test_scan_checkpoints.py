"""Theano's ``scan_checkpoints``: the states every ``save_every_N`` steps of
the same loop ``scan`` runs, and the same gradients."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.scan import Scan
from tracegrad.testing import verify_grad


def _rnn(xt, h, W):
    return T.tanh(T.dot(h, W) + xt)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3)), rng.standard_normal(3),
            rng.standard_normal((3, 3)) * 0.5)


@pytest.mark.parametrize("n,every", [(10, 4), (12, 4), (1, 5), (7, 1), (5, 5), (6, 10)])
def test_outputs_are_the_states_at_each_checkpoint(n, every):
    x, h0, W = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("W")
    full, _ = tg.scan(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W])
    ck, _ = tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W],
                                save_every_N=every)
    f = tg.function([x, h0, W], [full, ck])
    a, b = f(*_data(n))
    ends = sorted(set(list(range(every - 1, n, every)) + [n - 1]))
    assert b.shape == (len(ends), 3)
    np.testing.assert_allclose(b, a[ends], rtol=1e-13)


def test_gradients_equal_the_full_scans():
    x, h0, W = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("W")
    full, _ = tg.scan(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W])
    ck, _ = tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W],
                                save_every_N=3)
    wrt = [x, h0, W]
    g_full = tg.grad((full[-1] ** 2).sum(), wrt)
    g_ck = tg.grad((ck[-1] ** 2).sum(), wrt)
    f = tg.function(wrt, g_full + g_ck)
    out = f(*_data(11))
    for a, b in zip(out[:3], out[3:]):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_verify_grad_through_checkpoints():
    xv, hv, Wv = _data(7, seed=3)

    def cost(x, h0, W):
        ck, _ = tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[h0],
                                    non_sequences=[W], save_every_N=2)
        return (ck ** 2).sum()
    verify_grad(cost, [xv, hv, Wv])


def test_the_forward_stores_one_state_per_chunk():
    # the outer loop runs one step per chunk and holds the inner loop in its
    # body, so the gradient's reverse loop recomputes each chunk's steps
    from tracegrad.trace import ancestors
    x, h0, W = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("W")
    ck, _ = tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W],
                                save_every_N=5)
    outer = [v.owner for v in ancestors([ck]) if v.owner is not None
             and isinstance(v.owner.op, Scan)]
    assert len(outer) == 1
    body = outer[0].op.inner
    inner = [v.owner for v in ancestors(list(body.outputs), blockers=body.inputs)
             if v.owner is not None and isinstance(v.owner.op, Scan)]
    assert len(inner) == 1
    f = tg.function([x, h0, W], ck)
    assert f(*_data(20)).shape == (4, 3)


def test_per_step_outputs_and_n_steps_without_sequences():
    h0 = T.dscalar("h0")
    (a, b), _ = tg.scan_checkpoints(lambda h: (h * 2, h * 3), outputs_info=[h0, None],
                                    n_steps=7, save_every_N=3)
    f = tg.function([h0], [a, b])
    ra, rb = f(1.0)
    # states after steps 3, 6, 7: 2^3, 2^6, 2^7; the per-step output at those steps
    np.testing.assert_allclose(ra, [8.0, 64.0, 128.0])
    np.testing.assert_allclose(rb, [3 * 4.0, 3 * 32.0, 3 * 64.0])


def test_padding_false_with_whole_chunks():
    x, h0, W = T.dmatrix("x"), T.dvector("h0"), T.dmatrix("W")
    full, _ = tg.scan(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W])
    ck, _ = tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[h0], non_sequences=[W],
                                save_every_N=4, padding=False)
    a, b = tg.function([x, h0, W], [full, ck])(*_data(8))
    np.testing.assert_allclose(b, a[[3, 7]], rtol=1e-13)


def test_theano_paths_and_errors():
    from tracegrad.scan_module import scan_checkpoints
    assert scan_checkpoints is tg.scan_checkpoints
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    with pytest.raises(ValueError, match="tap 0"):
        tg.scan_checkpoints(_rnn, sequences=[dict(input=x, taps=[-1])], outputs_info=[h0])
    with pytest.raises(ValueError, match="tap -1"):
        tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[dict(initial=h0, taps=[-2])])
    with pytest.raises(ValueError, match="save_every_N"):
        tg.scan_checkpoints(_rnn, sequences=[x], outputs_info=[h0], save_every_N=0)
    with pytest.raises(ValueError, match="n_steps"):
        tg.scan_checkpoints(lambda h: h, outputs_info=[h0])
