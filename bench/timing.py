"""Timing helpers: interleaved rounds, medians, result checks.

Every system of a workload is timed in the same process on the same data;
rounds visit the systems in turn (rotating the order), so drift of a shared,
noisy machine hits all of them alike, and the median per system is reported
with its ratio to the baseline measured in the same run.
"""
import time

import numpy as np


class Missing(Exception):
    """A peer that is not installed (or cannot run this workload)."""


def calls_per_sample(fn, target_s):
    """How many calls of ``fn`` make one sample of about ``target_s``."""
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(100000, int(target_s / once)))


def warm_up(fn, seconds, at_least=3):
    """Call ``fn`` for about ``seconds`` (and ``at_least`` times) untimed.
    Why: a system's first calls include one-off work (caches, page faults,
    JIT and thread-pool start-up, tracegrad's per-call thread and tier
    choices measuring both ways); a ``--quick`` run has few samples, and
    a sample is a mean of calls, so those first calls moved a W1 row by up
    to 1.8x between repetitions of the same run."""
    end = time.perf_counter() + seconds
    for k in range(100000):
        fn()
        if k + 1 >= at_least and time.perf_counter() >= end:
            break


SPREADS = {}  # name -> (25th, 75th percentile) of the last ``interleaved`` run


def interleaved(systems, rounds, target_s=0.002, budget_s=None, settle_s=0.003,
                warm_s=0.05):
    """Median seconds per call of each callable in ``systems`` (name -> fn);
    the quartiles of each system's samples are left in ``SPREADS``.

    Each sample runs a system ``k`` times (``k`` chosen so a sample lasts
    about ``target_s``); ``rounds`` samples per system, interleaved.
    ``budget_s`` stops early (after at least 3 rounds) when exceeded.
    Each system first runs for ``warm_s`` untimed (``warm_up``).
    """
    names = list(systems)
    for n in names:
        warm_up(systems[n], warm_s)
    repeats = {n: calls_per_sample(systems[n], target_s) for n in names}
    samples = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            fn, k = systems[n], repeats[n]
            # Let the previous system's worker threads (XLA, numexpr, BLAS
            # spin a while after their work) go idle before timing.
            time.sleep(settle_s)
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[n].append((time.perf_counter() - t0) / k)
        if budget_s is not None and r >= 2 and time.perf_counter() - start > budget_s:
            break
    SPREADS.clear()
    SPREADS.update({n: (float(np.percentile(s, 25)), float(np.percentile(s, 75)))
                    for n, s in samples.items()})
    return {n: float(np.median(s)) for n, s in samples.items()}


def check_close(name, got, expected, rtol, atol=0.0):
    """Raise ``AssertionError`` naming ``name`` when results differ."""
    got = [np.asarray(g) for g in _as_list(got)]
    expected = [np.asarray(e) for e in _as_list(expected)]
    if len(got) != len(expected):
        raise AssertionError(f"{name}: {len(got)} results, expected {len(expected)}")
    for k, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape:
            raise AssertionError(f"{name}: result {k} has shape {g.shape}, expected {e.shape}")
        np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True,
                                   err_msg=f"{name}: result {k} differs from NumPy")


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]
