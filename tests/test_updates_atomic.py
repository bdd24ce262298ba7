"""Updates under interruption, aliasing arguments and threads: all or
nothing, never torn (API.md, "All or nothing")."""
import threading
import time

import numpy as np
import pytest
from asynccheck import sweep
from hypothesis import given, settings
from hypothesis import strategies as st
from threadcheck import run_in_threads

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.backend import CPU
from tracegrad.compile.publish import PUBLISH, READERS, UPDATE_LOCK
from tracegrad.backend import numpy as cpu
from tracegrad.backend.numpy import runner


class Injected(BaseException):
    """Stands for any exception a signal handler may raise."""


def _assert_locks_free():
    assert not READERS
    assert not PUBLISH.locked()
    assert UPDATE_LOCK.acquire(blocking=False)  # not held by a dead call
    UPDATE_LOCK.release()


def _counters(n):
    return [tg.shared(np.zeros(3), name=f"s{i}") for i in range(n)]


def _check_all_equal(shared):
    def check(k, raised):
        values = {float(v.get_value()[0]) for v in shared}
        assert len(values) == 1, f"interrupted at trace event {k}: torn updates {values}"
        _assert_locks_free()
    return check


# ------------------------------------------------------------ interruption
@pytest.mark.parametrize("exc", [KeyboardInterrupt, Injected])
def test_interrupted_call_applies_every_update_or_none(exc):
    shared = _counters(8)
    x = T.dscalar("x")
    f = tg.function([x], shared[0] * x, updates=[(v, v + 1.0) for v in shared])
    raised = sweep(lambda: f(1.0), _check_all_equal(shared), exc=exc)
    assert raised > 100  # every point of the call was tried
    f(1.0)
    assert all(v.get_value()[0] == shared[0].get_value()[0] for v in shared)


def test_interrupted_call_with_a_replaced_buffer_is_all_or_nothing():
    # One update replaces its buffer (new shape), the others write in place.
    a, b = _counters(2)
    grow = tg.shared(np.zeros(1), name="grow", shape_can_change=True)
    f = tg.function([], [], updates=[(a, a + 1.0), (b, b + 1.0),
                                     (grow, T.concatenate([grow, grow[:1] + 1.0]))])

    def check(k, raised):
        na = a.get_value()[0]
        assert b.get_value()[0] == na and grow.get_value().shape == (int(na) + 1,), k
        _assert_locks_free()
    assert sweep(f, check) > 50


def test_interrupted_reader_leaves_no_registration():
    v = tg.shared(np.arange(4.0), name="v")
    read = tg.function([], v * 2.0)
    assert sweep(read, lambda k, raised: _assert_locks_free()) > 10
    write = tg.function([], [], updates=[(v, v + 1.0)])
    done = []
    worker = threading.Thread(target=lambda: done.append(write()))
    worker.start()
    worker.join(5)
    assert done, "an update waited for a reader that was interrupted long ago"


def test_sigint_during_fused_in_place_updates(monkeypatch):
    # Fused kernels writing into the shared buffers run Python code while
    # writing: SIGINT is held back until every buffer is written.
    import signal
    monkeypatch.setattr(CPU, "fused_updates", True)
    # Python's own SIGINT handler, as in an interactive session: a process
    # started in the background by a shell (``cmd &``) inherits SIGINT
    # ignored, and then no interrupt is ever raised.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _check_sigint_sweep()
    finally:
        signal.signal(signal.SIGINT, old)


def _check_sigint_sweep():
    a, b = _counters(2)
    u = T.dscalar("u")
    f = tg.function([u], [], updates={a: a * 0.5 + u, b: b * 0.5 + u})
    assert len(f.schedule.deferred) == 2
    assert sweep(lambda: f(1.0), _check_all_equal([a, b]), via_signal=True) > 50


# ------------------------------------------------------------ aliasing arguments
def _alias_cases():
    def same_array():
        s = tg.shared(np.arange(4.0))
        t = tg.shared(np.zeros(4))
        x = T.dvector("x")
        f = tg.function([x], [], updates=[(s, s * 2.0), (t, x)])
        return f, (s.get_value(borrow=True),), t, np.arange(4.0)

    def slice_of_it():
        s = tg.shared(np.arange(4.0))
        t = tg.shared(np.zeros(2))
        x = T.dvector("x")
        f = tg.function([x], [], updates=[(s, s * 2.0), (t, x)])
        return f, (s.get_value(borrow=True)[1:3],), t, np.array([1.0, 2.0])

    def reshaped():
        m = tg.shared(np.arange(6.0).reshape(2, 3))
        v = tg.shared(np.zeros(6))
        x = T.dvector("x")
        f = tg.function([x], [], updates=[(m, m + 10.0), (v, x + 0.0)])
        return f, (m.get_value(borrow=True).reshape(-1),), v, np.arange(6.0)

    def transposed():
        m = tg.shared(np.arange(6.0).reshape(2, 3))
        mt = tg.shared(np.zeros((3, 2)))
        x = T.dmatrix("x")
        f = tg.function([x], [], updates=[(m, m + 10.0), (mt, x)])
        return f, (m.get_value(borrow=True).T,), mt, np.arange(6.0).reshape(2, 3).T

    def one_array_twice():
        a = tg.shared(np.ones(3))
        b = tg.shared(np.ones(3))
        p, q = T.dvectors("p", "q")
        f = tg.function([p, q], [], updates=[(a, p * 2.0), (b, q)])
        buf = a.get_value(borrow=True)
        return f, (buf, buf), b, np.ones(3)

    return [same_array, slice_of_it, reshaped, transposed, one_array_twice]


@pytest.mark.parametrize("case", _alias_cases(), ids=lambda c: c.__name__)
def test_argument_aliasing_a_shared_buffer(case):
    f, args, target, expected = case()
    f(*args)
    np.testing.assert_array_equal(target.get_value(), expected)


def test_two_updates_swapping_two_shared_variables_through_arguments():
    a = tg.shared(np.ones(3), name="a")
    b = tg.shared(np.full(3, 2.0), name="b")
    p, q = T.dvectors("p", "q")
    f = tg.function([p, q], [], updates=[(a, p), (b, q)])
    buffers = (a.get_value(borrow=True), b.get_value(borrow=True))
    f(b.get_value(borrow=True), a.get_value(borrow=True))
    np.testing.assert_array_equal(a.get_value(), np.full(3, 2.0))
    np.testing.assert_array_equal(b.get_value(), np.ones(3))
    assert (a.get_value(borrow=True), b.get_value(borrow=True)) == buffers  # in place


_VIEWS = [lambda b: b, lambda b: b[::-1], lambda b: b[1:], lambda b: b[:-1],
          lambda b: b[::2], lambda b: b.reshape(2, -1)[::-1].reshape(-1)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, len(_VIEWS) - 1)),
                min_size=3, max_size=3), st.booleans())
def test_updates_from_views_of_shared_buffers_match_copies(picks, scaled):
    # Argument k is a view of shared buffer picks[k][0]; shared k gets
    # argument k as its new value when the shapes fit (else s * 2). Every
    # update must get the values from before the call, as with copies.
    n = 6
    shared = [tg.shared(np.arange(n, dtype=float) * (i + 1)) for i in range(3)]
    xs = [T.dvector(f"x{k}") for k in range(3)]
    args = [_VIEWS[v](shared[i].get_value(borrow=True)) for i, v in picks]
    copies = [a.copy() for a in args]
    fits = [a.shape == (n,) for a in args]
    updates = [(s, (x * 1.0 if scaled else x) if fit else s * 2.0)
               for s, x, fit in zip(shared, xs, fits)]
    want = [c if fit else s.get_value() * 2.0 for s, c, fit in zip(shared, copies, fits)]
    f = tg.function(xs, [x + 0.0 for x in xs], updates=updates, on_unused_input="ignore")
    outs = f(*args)
    for out, c in zip(outs, copies):
        np.testing.assert_array_equal(out, c)
    for s, w in zip(shared, want):
        np.testing.assert_array_equal(s.get_value(), w)


# ------------------------------------------------------------ threads
def _writer_and_readers(read, v, calls=40):
    c = T.dscalar("c")
    write = tg.function([c], [], updates=[(v, T.zeros_like(v) + c)])
    stop = []
    seen = []

    def work(k):
        if k == 0:
            try:
                for i in range(1, calls):
                    write(float(i))
            finally:
                stop.append(True)
            return
        while not stop:
            out = read()
            seen.append(out[0])
            assert (out == out[0]).all(), f"torn read: {out.min()} .. {out.max()}"
    run_in_threads(work, 3)
    return seen


def test_readers_never_see_half_written_updates():
    v = tg.shared(np.zeros(1 << 19), name="v")
    seen = _writer_and_readers(tg.function([], v * 1.0), v)
    assert seen


def test_get_value_never_sees_half_written_updates():
    v = tg.shared(np.zeros(1 << 19), name="v")
    assert _writer_and_readers(v.get_value, v)


def test_readers_run_concurrently_and_writer_is_not_starved():
    v = tg.shared(np.zeros(1 << 16), name="v")
    read = tg.function([], v.sum())
    inc = tg.function([], [], updates=[(v, v + 1.0)])
    start = time.perf_counter()

    def work(k):
        for _ in range(30):
            if k == 0:
                inc()
            else:
                assert float(read()) % (1 << 16) == 0
    run_in_threads(work, 4)
    assert v.get_value()[0] == 30
    assert time.perf_counter() - start < 30


# ------------------------------------------------------------ thread pool
def test_replaced_pool_still_takes_work_from_a_thread_holding_it(monkeypatch):
    monkeypatch.setattr(runner, "_pool", None)
    monkeypatch.setattr(runner, "_pool_size", 0)
    held = runner._executor(2)       # a call got this pool...
    runner._executor(4)              # ...another call needed more workers
    assert held.submit(lambda: 7).result() == 7


def test_pool_is_safe_while_threads_change_the_thread_count(monkeypatch):
    monkeypatch.setattr(cpu, "THREAD_MIN_NS", 1)  # every call wants all threads
    x = T.dvector("x")
    f = tg.function([x], T.exp(x) * 2.0 + T.sin(x) * x)
    big = np.linspace(0.0, 1.0, 1 << 18)
    want = np.exp(big) * 2.0 + np.sin(big) * big
    for size in (3, 4, 5, 6):
        monkeypatch.setattr(runner, "_pool", None)
        monkeypatch.setattr(runner, "_pool_size", 0)

        def work(k):
            if k == 0:
                tg.config.num_threads = size
            np.testing.assert_allclose(f(big), want)
        old = tg.config.num_threads
        tg.config.num_threads = 3
        try:
            run_in_threads(work, 4)
        finally:
            tg.config.num_threads = old


class _Pause(tg.Op):
    """The identity, pausing until the test lets it go."""

    __props__ = ()

    def __init__(self, started, release):
        self.started, self.release = started, release

    def make_node(self, x):
        return tg.Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        self.started.set()
        self.release.wait(10)
        return x.copy()


def test_set_value_during_an_updating_call_is_not_lost():
    # set_value takes turns with updating calls: a value set while a call
    # computes ``s + 1`` from the old value is not overwritten by it.
    started, release = threading.Event(), threading.Event()
    s = tg.shared(np.zeros(3), name="s")
    step = tg.function([], [], updates=[(s, _Pause(started, release)(s) + 1)])
    call = threading.Thread(target=step)
    call.start()
    assert started.wait(10)
    setter = threading.Thread(target=s.set_value, args=(np.full(3, 10.0),))
    setter.start()
    setter.join(0.3)  # without turns it is done by now, in the middle of the call
    release.set()
    call.join()
    setter.join()
    np.testing.assert_array_equal(s.get_value(), np.full(3, 10.0))
    _assert_locks_free()
