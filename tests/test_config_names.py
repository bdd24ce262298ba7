"""Mode and device names are normalised in one place (``tracegrad.config``)
and every entry point that takes one agrees with it."""
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.backend import canonical_device, get_backend
from tracegrad.compile import Mode
from tracegrad.compile.pipeline import resolve_mode
from tracegrad.config import (DEVICES, MODES, Config, normalize_device, normalize_mode)
from tracegrad.fuse.rewrite import fuse_outputs
from tracegrad.rewrite import engine

MODE_SPELLINGS = [("fast_run", "fast_run"), ("FAST_RUN", "fast_run"), ("Fast_Run", "fast_run"),
                  ("fast_compile", "fast_compile"), ("FAST_COMPILE", "fast_compile"),
                  ("fast_math", "fast_math"), ("FAST_MATH", "fast_math"),
                  ("None", "None"), ("none", "None"), ("NONE", "None")]
DEVICE_SPELLINGS = [("cpu", "cpu"), ("CPU", "cpu"), ("cuda", "cuda"), ("CUDA", "cuda"),
                    ("cuda0", "cuda"), ("cuda:1", "cuda"), ("gpu", "cuda"), ("GPU", "cuda")]


@pytest.mark.parametrize("name,expected", MODE_SPELLINGS)
def test_every_mode_entry_point_agrees(name, expected):
    assert normalize_mode(name) == expected
    assert resolve_mode(name) == expected
    assert Mode(optimizer=name).optimizer == expected
    assert engine.phases_for(name) == engine.MODES[expected]
    assert engine.is_fast_math(name) == (expected == "fast_math")
    config = Config()
    config.optimizer = name
    assert config.optimizer == expected


@pytest.mark.parametrize("name,expected", DEVICE_SPELLINGS)
def test_every_device_entry_point_agrees(name, expected):
    assert normalize_device(name) == expected
    assert canonical_device(name) == expected
    config = Config()
    config.device = name
    assert config.device == expected
    if expected == "cpu":
        assert get_backend(name).name == "cpu"


def test_none_means_the_configured_value(monkeypatch):
    monkeypatch.setattr(tg.config, "optimizer", "fast_math")
    monkeypatch.setattr(tg.config, "device", "cpu")
    assert normalize_mode(None) == resolve_mode(None) == "fast_math"
    # the rewrite engine asked with no mode follows the configured one,
    # value-changing algebra included
    assert engine.is_fast_math(None)
    assert engine.phases_for(None) == engine.MODES["fast_math"]
    assert normalize_device(None) == "cpu"


def test_the_accepted_names_are_the_engine_modes():
    assert set(MODES) == set(engine.MODES)
    assert DEVICES == ("cpu", "cuda")


@pytest.mark.parametrize("bad", ["fast_runn", "O3", ""])
def test_unknown_modes_name_the_value_and_the_choices(bad):
    for attempt in (normalize_mode, resolve_mode, engine.phases_for,
                    lambda m: Mode(optimizer=m), lambda m: setattr(Config(), "optimizer", m)):
        with pytest.raises(ValueError) as info:
            attempt(bad)
        assert repr(bad) in str(info.value)
        assert all(m in str(info.value) for m in MODES)


@pytest.mark.parametrize("bad", ["tpu", "Metal", "none"])
def test_unknown_devices_name_the_value_and_the_choices(bad):
    x = T.dvector("x")
    for attempt in (normalize_device, canonical_device, get_backend,
                    lambda d: fuse_outputs([T.exp(x) + 1], target=d),
                    lambda d: setattr(Config(), "device", d)):
        with pytest.raises(ValueError) as info:
            attempt(bad)
        assert f"unknown device {bad!r}" in str(info.value)
        assert all(f"'{d}'" in str(info.value) for d in DEVICES)


def test_assigning_none_to_the_optimizer_means_no_rewrites():
    # as in Theano: optimizer=None runs no rewrite (a setting is never None)
    config = Config()
    config.optimizer = None
    assert config.optimizer == "None"
    with pytest.raises(ValueError, match="unknown device 'None'"):
        config.device = None
