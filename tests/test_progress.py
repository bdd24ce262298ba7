"""The compile progress line: shown on a terminal once a compile is slow,
never when stderr is not a terminal, silenced by ``tg.config.progress``."""
import io

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad import progress as progress_module


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


@pytest.fixture
def terminal(monkeypatch):
    """Patch sys.stderr with a fake terminal and a zero threshold. (Returned
    as a function called in the test's body: pytest's capture puts its own
    sys.stderr back between a fixture's setup and the test.)"""
    def patch():
        stream = FakeTerminal()
        monkeypatch.setattr("sys.stderr", stream)
        monkeypatch.setattr(progress_module, "PROGRESS_AFTER_S", 0.0)
        monkeypatch.setattr(progress_module, "_tqdm", lambda: None)  # the plain line
        return stream
    return patch


def _compile():
    x = T.dvector("x")
    f = tg.function([x], T.exp(x) * 2 + 1, name="f")
    np.testing.assert_allclose(f(np.zeros(2)), [3.0, 3.0])


def test_plain_line_names_each_stage_and_the_node_count(terminal):
    terminal = terminal()
    _compile()
    text = terminal.getvalue()
    frames = [part for part in text.split("\r") if part.strip()]
    stages = [f.split(": stage ")[1].split(")")[0] + ")" for f in frames]
    assert stages[0] == "1 (clone)"
    assert stages[-1].startswith(f"{len(stages)} (schedule, ")
    assert any("(rewrite, " in s for s in stages)
    assert any("(rewrite canonicalize, " in s for s in stages)
    assert all(f.startswith("tracegrad: compiling 'f': stage ") for f in frames)
    assert text.endswith("\r")  # the line is cleared at the end


def test_config_progress_false_silences_it(terminal):
    terminal = terminal()
    tg.config.progress = False
    try:
        _compile()
    finally:
        tg.config.progress = True
    assert terminal.getvalue() == ""


def test_nothing_when_stderr_is_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr(progress_module, "PROGRESS_AFTER_S", 0.0)
    _compile()
    assert stream.getvalue() == ""


def test_nothing_for_a_fast_compile(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr(progress_module, "PROGRESS_AFTER_S", 3600.0)
    _compile()
    assert stream.getvalue() == ""


def test_tqdm_is_used_when_installed(terminal, monkeypatch):
    terminal = terminal()
    made = []

    class FakeBar:
        def __init__(self, **kwargs):
            self.kwargs, self.postfix, self.n, self.closed = kwargs, [], 0, False
            made.append(self)

        def set_postfix_str(self, text, refresh=True):
            self.postfix.append(text)

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(progress_module, "_tqdm", lambda: FakeBar)
    _compile()
    bar, = made
    assert bar.kwargs["desc"] == "tracegrad: compiling 'f'" and bar.kwargs["file"] is terminal
    assert bar.postfix[0] == "clone" and bar.postfix[-1].startswith("schedule, ")
    assert bar.n == len(bar.postfix) and bar.closed
    assert terminal.getvalue() == ""


def test_the_setting_is_validated():
    with pytest.raises(ValueError, match="expected a boolean"):
        tg.config.progress = "sometimes"
    assert tg.config.progress is True


def _compile_big(layers=120):
    """A graph of well over ``PROGRESS_EVERY_NODES`` nodes, with its gradient."""
    x = T.dvector("x")
    y = x
    for i in range(layers):
        y = T.tanh(y * (1.0 + i / layers) + T.sin(y))
    cost = (y ** 2).sum()
    return tg.function([x], [cost, tg.grad(cost, x)], name="big")


def test_long_stages_count_their_nodes(terminal):
    terminal = terminal()
    _compile_big()
    frames = [part.rstrip() for part in terminal.getvalue().split("\r") if part.strip()]
    counted = [f.split(" (", 1)[1].split("),")[0] for f in frames if "/" in f.split("(")[1]]
    every = progress_module.PROGRESS_EVERY_NODES
    for stage in ("rewrite canonicalize", "fuse"):
        mine = [c for c in counted if c.startswith(stage + ", ")]
        assert mine and mine[0].startswith(f"{stage}, {every}/"), counted
        done, total = mine[-1].split(", ")[1].split(" ")[0].split("/")
        assert 0 < int(done) <= int(total) and mine[-1].endswith(" nodes")
    # each count is shown under its own stage's number
    numbers = {}
    for f in frames:
        number, what = f.split(": stage ")[1].split(" (", 1)
        numbers.setdefault(what.split(",")[0], set()).add(number)
    assert all(len(n) == 1 for n in numbers.values()), numbers


def test_long_stages_are_silent_when_off_or_not_a_terminal(terminal, monkeypatch):
    calls = []
    monkeypatch.setattr(progress_module._NoProgress, "advance",
                        lambda self, done, total: calls.append(done))
    stream = terminal()
    tg.config.progress = False
    try:
        _compile_big(60)
    finally:
        tg.config.progress = True
    monkeypatch.setattr("sys.stderr", io.StringIO())
    _compile_big(60)
    assert stream.getvalue() == "" and calls == []


def test_tqdm_shows_the_node_counts_without_counting_them_as_stages(terminal, monkeypatch):
    terminal()
    made = []

    class FakeBar:
        def __init__(self, **kwargs):
            self.postfix, self.n = [], 0
            made.append(self)

        def set_postfix_str(self, text, refresh=True):
            self.postfix.append((text, refresh))

        def update(self, n):
            self.n += n

        def close(self):
            pass

    monkeypatch.setattr(progress_module, "_tqdm", lambda: FakeBar)
    _compile_big()
    bar, = made
    stages = [text for text, refresh in bar.postfix if not refresh]
    counts = [text for text, refresh in bar.postfix if refresh]
    assert bar.n == len(stages) and all("/" not in s for s in stages)
    assert counts and all("/" in c and c.endswith(" nodes") for c in counts)
