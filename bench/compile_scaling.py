"""W7: compile-time scaling in graph size (``python -m bench --only W7``).

Builds graphs of n, 2n and 4n ops and times ``tg.grad``, every compile stage
(clone, rewrite, fuse, in-place planning, linking the schedule) and the first
call (which builds the fused loops' code), then prints the growth factor per
doubling of n (2.0 is linear; 4.0 quadratic). Workloads:

- ``sum indexed``: ``sum(sin(x[i]) * i for i in range(n))`` and its gradient
  in ``x`` (an n-deep chain of adds; n index ops whose gradients accumulate);
- ``sum scalars``: ``sum(sum(exp(w_i * x)) for i in range(n))`` with n scalar
  inputs ``w_i`` and the gradient in every ``w_i``;
- ``chain``: ``y = sin(y) * 1.0001 + 0.1`` repeated to n ops on a vector,
  ``sum(y)`` and its gradient.

Run alone with ``python -m bench.compile_scaling [--quick] [--profile CASE N]``.
"""
import argparse
import time
from contextlib import contextmanager

import numpy as np

STAGES = ("clone", "rewrite", "fuse", "inplace", "link")
# Wall-clock by default; ``--cpu-time`` counts this process's CPU time only
# (steadier on a shared, oversubscribed machine).
CLOCK = time.perf_counter


@contextmanager
def stage_timer(times):
    """Accumulate the seconds of each compile stage into ``times`` while active."""
    from tracegrad.compile import pipeline, runtime
    originals = {}

    def wrap(module, attr, key):
        original = getattr(module, attr)
        originals[(module, attr)] = original

        def timed(*args, **kwargs):
            t0 = CLOCK()
            try:
                return original(*args, **kwargs)
            finally:
                times[key] = times.get(key, 0.0) + CLOCK() - t0
        setattr(module, attr, timed)

    for attr, key in (("clone", "clone"), ("rewrite", "rewrite"), ("fuse", "fuse"),
                      ("plan_inplace", "inplace")):
        wrap(pipeline, attr, key)
    wrap(runtime, "build_schedule", "link")
    try:
        yield times
    finally:
        for (module, attr), original in originals.items():
            setattr(module, attr, original)


def sum_indexed(n):
    """Graph builder: (inputs, outputs, wrt-grad builder, call arguments)."""
    import tracegrad.tensor as T
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(n))
    return [x], cost, [x], [np.linspace(0.0, 1.0, n)]


def sum_scalars(n):
    import tracegrad.tensor as T
    x = T.dvector("x")
    ws = [T.dscalar(f"w{i}") for i in range(n)]
    cost = sum(T.sum(T.exp(w * x)) for w in ws)
    return [x] + ws, cost, ws, [np.linspace(0.0, 1.0, 3)] + [1e-3 * i for i in range(n)]


def chain(n):
    import tracegrad.tensor as T
    x = T.dvector("x")
    y = x
    for _ in range(n // 3):
        y = T.sin(y) * 1.0001 + 0.1
    return [x], T.sum(y), [x], [np.linspace(0.0, 1.0, 16)]


CASES = {"sum indexed": (sum_indexed, 1000), "sum scalars": (sum_scalars, 1000),
         "chain": (chain, 12500)}


def measure(builder, n):
    """Seconds of each step of building, differentiating, compiling and first
    calling the graph ``builder(n)``."""
    import gc

    import tracegrad as tg
    # Start from a collected heap: the previous size's function and graphs
    # are cyclic garbage that would otherwise be walked (and counted) by
    # this size's collections.
    gc.collect()
    t0 = CLOCK()
    inputs, cost, wrt, args = builder(n)
    t1 = CLOCK()
    grads = tg.grad(cost, wrt)
    t2 = CLOCK()
    times = {}
    with stage_timer(times):
        f = tg.function(inputs, [cost] + list(grads))
    t3 = CLOCK()
    f(*args)
    t4 = CLOCK()
    times.update(build=t1 - t0, grad=t2 - t1, compile=t3 - t2, first_call=t4 - t3)
    return times


def scaling_rows(name, builder, n, doublings=2):
    """Rows for n, 2n, 4n...: times per step and the growth factor per doubling."""
    rows = []
    previous = None
    for k in range(doublings + 1):
        size = n * 2 ** k
        times = measure(builder, size)
        total = times["compile"] + times["first_call"]
        row = dict(workload="W7", case=f"{name} n={size}", system="tracegrad",
                   status="ok", grad_s=round(times["grad"], 3),
                   compile_s=round(times["compile"], 3),
                   first_call_s=round(times["first_call"], 3),
                   stages=" ".join(f"{s}={times.get(s, 0.0):.2f}" for s in STAGES))
        if previous is not None:
            row["growth_compile_first"] = round(total / previous[0], 2)
            row["growth_grad"] = round(times["grad"] / previous[1], 2)
        previous = (total, times["grad"])
        rows.append(row)
    return rows


def compile_rows(quick):
    """All W7 rows (the quick run uses a quarter of the sizes)."""
    rows = []
    for name, (builder, n) in CASES.items():
        rows += scaling_rows(name, builder, n // 4 if quick else n)
    return rows


def run(quick, rounds, wid):
    yield dict(rows=compile_rows(quick))


def targets(rows):
    """Lines comparing the W7 rows with the targets of issue 14: the 4k-term
    sum and its gradient compiled and first-called in <= 1 s, the 50k-op
    chain and its gradient in <= 10 s, <= 2.2x time per doubling of n."""
    lines = []
    for row in rows:
        if row.get("workload") != "W7" or row.get("status") != "ok":
            continue
        total = row["compile_s"] + row["first_call_s"]
        verdicts = []
        growth = row.get("growth_compile_first")
        if growth is not None:
            verdicts.append(f"doubling<=2.2x {'met' if growth <= 2.2 else 'missed'}")
        if row["case"] == "sum indexed n=4000":
            verdicts.append(f"<=1 s {'met' if total <= 1.0 else 'missed'}")
        if row["case"] == "chain n=50000":
            verdicts.append(f"<=10 s {'met' if total <= 10.0 else 'missed'}")
        lines.append(f"W7 target {row['case']:<22} compile+first call {total:.2f} s"
                     + (f", growth {growth}" if growth is not None else "")
                     + ("  [" + "; ".join(verdicts) + "]" if verdicts else ""))
    return lines


def _profile(case, n):
    import cProfile
    import pstats
    builder = CASES[case][0]
    profiler = cProfile.Profile()
    profiler.enable()
    times = measure(builder, n)
    profiler.disable()
    print({k: round(v, 3) for k, v in times.items()})
    pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.compile_scaling")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", choices=list(CASES), help="only this case")
    parser.add_argument("--n", type=int, help="starting size")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with this process's CPU time, not wall-clock")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one measurement of --case at --n")
    args = parser.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.profile:
        _profile(args.case or "sum indexed", args.n or 2000)
        return 0
    for name, (builder, n) in CASES.items():
        if args.case and name != args.case:
            continue
        n = args.n or (n // 4 if args.quick else n)
        for row in scaling_rows(name, builder, n):
            print(", ".join(f"{k}={v}" for k, v in row.items()
                            if k not in ("workload", "system", "status")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
