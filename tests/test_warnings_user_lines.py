"""NumPy's RuntimeWarnings in a compiled call name the user line that built
the op (``compile/warnpoint.py``), on every path a step can run on: the
straight-line runner, the table runner of big schedules, profiling, fused
kernels (the row the message names, on worker threads too) and the
compiled C tier (which re-runs a flagged call on NumPy). Filters,
deduplication and ``-W error`` act on the user's line.

Line numbers are read from this file (the ``# [name]`` markers).
"""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from markers import marker_line
from tracegrad.compile import warnpoint

HERE = __file__
MESSAGE = "divide by zero encountered in log"


def line(marker):
    """The line number of ``# [marker]`` in this file."""
    return marker_line(HERE, marker)


def recorded(f, *args, action="always"):
    """``[(filename, lineno, message)]`` of the warnings of ``f(*args)``."""
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter(action)
        f(*args)  # [call]
    return [(w.filename, w.lineno, str(w.message)) for w in log]


def fused_log():
    x = T.dvector("x")
    y = T.log(x)  # [fused-log]
    return x, y * 2 + T.exp(x)  # [fused-rest]


def test_log_of_zero_points_at_the_user_line():
    x = T.dvector("x")
    f = tg.function([x], T.log(x))  # [plain]
    assert recorded(f, np.zeros(3)) == [(HERE, line("plain"), MESSAGE)]
    assert recorded(f, np.ones(3)) == []


def test_a_fused_kernel_names_the_row_of_the_message():
    x, z = fused_log()
    f = tg.function([x], z)
    assert any("Fused" in n.op.name for n in f.maker.fgraph.toposort())
    assert recorded(f, np.zeros(3)) == [(HERE, line("fused-log"), MESSAGE)]


def test_blocks_on_worker_threads_name_the_user_line(monkeypatch):
    monkeypatch.setattr(tg.config, "num_threads", 2)
    x, z = fused_log()
    f = tg.function([x], z)
    got = recorded(f, np.zeros(2_000_000))
    assert got and set(got) == {(HERE, line("fused-log"), MESSAGE)}


@pytest.mark.parametrize("tier", ["numpy", "c"])
def test_both_cpu_tiers_name_the_user_line(monkeypatch, tmp_path, tier):
    from tracegrad.backend import c as c_tier
    from tracegrad.backend import ccompiler
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tg.config, "cpu_codegen", tier)
    monkeypatch.setattr(tg.config, "cpu_codegen_sync", True)
    flagged = []
    noticed = c_tier._noticed_flags
    monkeypatch.setattr(c_tier, "_noticed_flags", lambda fl: flagged.append(noticed(fl))
                        or flagged[-1])
    x, z = fused_log()
    f = tg.function([x], z)
    assert set(recorded(f, np.zeros(20_000))) == {(HERE, line("fused-log"), MESSAGE)}
    if tier == "c" and ccompiler.compiler() is not None:
        assert flagged == [True]  # the kernel ran, flagged, and NumPy ran it again
    elif tier == "numpy":
        assert flagged == []


def test_the_table_runner_and_profiling_name_the_user_line(monkeypatch):
    from tracegrad.compile import runtime
    x = T.dvector("x")
    y = T.log(x)  # [table]
    monkeypatch.setattr(runtime, "STRAIGHT_LINE_STEPS", 0)
    f = tg.function([x], y)
    assert recorded(f, np.zeros(3)) == [(HERE, line("table"), MESSAGE)]
    monkeypatch.undo()
    g = tg.function([x], y, profile=True)
    assert recorded(g, np.zeros(3)) == [(HERE, line("table"), MESSAGE)]


def test_default_action_shows_each_user_line_once():
    x = T.dvector("x")
    f = tg.function([x], T.log(x))  # [first]
    g = tg.function([x], T.log(x) + 1)  # [second]
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("default")
        for _ in range(3):
            f(np.zeros(3))
            g(np.zeros(3))
    assert [(w.filename, w.lineno) for w in log] == [(HERE, line("first")),
                                                    (HERE, line("second"))]


def test_once_action_shows_one_warning():
    x = T.dvector("x")
    f = tg.function([x], T.log(x))  # [once]
    g = tg.function([x], T.log(x) + 1)
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("once")
        warnings._onceregistry.clear()  # (a test before may have shown it)
        f(np.zeros(3))
        g(np.zeros(3))
        f(np.zeros(3))
    assert [(w.filename, w.lineno) for w in log] == [(HERE, line("once"))]


def test_a_filter_on_the_users_module_applies():
    x = T.dvector("x")
    f = tg.function([x], T.log(x))  # [module]
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=__name__)
        f(np.zeros(3))
    assert log == []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.filterwarnings("error", category=RuntimeWarning, module=__name__)
        with pytest.raises(RuntimeWarning) as info:
            f(np.zeros(3))
    assert f"built at {HERE}:{line('module')}" in str(info.value)


def test_warnings_as_errors_name_the_user_line():
    x, z = fused_log()  # [errors]
    f = tg.function([x], z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning) as info:
            f(np.zeros(3))
    assert str(info.value) == (
        f"{MESSAGE}\n  while computing log (op Fused{{log,mul,exp,add}}) with inputs of "
        f"shapes [(3,) float64]\n  built at {HERE}:{line('fused-log')} in fused_log\n"
        f"    called from {HERE}:{line('errors')} in test_warnings_as_errors_name_the_user_line")


def test_warnings_outside_tracegrad_are_untouched():
    warnpoint.install()
    assert recorded(np.log, np.zeros(3)) == [(HERE, line("call"), MESSAGE)]


def test_the_reference_evaluator_names_the_user_line():
    from tracegrad.evaluate import evaluate
    x = T.dvector("x")
    y = T.log(x)  # [evaluate]
    got = recorded(lambda: evaluate([y], {x: np.zeros(3)}))
    assert got == [(HERE, line("evaluate"), MESSAGE)]


def test_a_fused_kernel_run_row_by_row_names_the_row():
    x, z = fused_log()
    f = tg.function([x], z)
    node, = [n for n in f.maker.fgraph.toposort() if "Fused" in n.op.name]
    got = recorded(lambda: node.op.spec.reference(np, [np.zeros(3)], node.op.sources))
    assert got == [(HERE, line("fused-log"), MESSAGE)]
