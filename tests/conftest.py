"""Test-suite configuration shared by every test file."""
import importlib.util
import os

import pytest

# ------------------------------------------------------------ Hypothesis
# The default profile is derandomized: CI runs the same examples every time,
# so a submission never fails by the luck of a draw. Explore new examples
# locally with HYPOTHESIS_PROFILE=explore.
try:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None, database=None)
    settings.register_profile("explore", deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass


# ------------------------------------------------------------ CPU tiers
# The suite runs on the NumPy tier, the reference: whether a call takes the
# compiled tier depends on when its background compile ends, and that tier
# may differ from NumPy in the last bits (a few ulps, more after
# cancellation), which the many exact fused-vs-unfused comparisons here
# would see. tests/test_backend_c.py checks the compiled tier against it
# (every row and dtype, layouts, updates). TRACEGRAD_TEST_CPU_CODEGEN=auto
# runs the whole suite on the compiled tier instead (kernels built
# synchronously).
def _select_cpu_tier():
    import tracegrad as tg
    tier = os.environ.get("TRACEGRAD_TEST_CPU_CODEGEN", "numpy")
    tg.config.cpu_codegen = tier
    tg.config.cpu_codegen_sync = tier != "numpy"


_select_cpu_tier()


@pytest.fixture
def numpy_tier(monkeypatch):
    """The NumPy tier for this test, whatever TRACEGRAD_TEST_CPU_CODEGEN
    selects: for tests of the NumPy program's own machinery (its blocks
    and threads, generated block functions, the table interpreter), which
    calls taken by the compiled tier never reach. The compiled tier's
    counterparts (layouts, threads, in-place writes) are in
    tests/test_backend_c.py."""
    import tracegrad as tg
    monkeypatch.setattr(tg.config, "cpu_codegen", "numpy")


# ------------------------------------------------------------ GPU tests
# Tests marked ``gpu`` need CuPy and a CUDA device; without them they are
# skipped (with the reason), never failed. CuPy is imported only when the
# selected tests include such a test.
def _gpu_missing():
    """Why the ``gpu`` tests cannot run here, or ``None`` when they can."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install tracegrad[gpu])"
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # a broken install, no driver, no device
        return f"CuPy finds no usable GPU ({type(exc).__name__}: {exc})"
    return None if count > 0 else "CuPy finds no GPU"


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    reason = _gpu_missing()
    if reason is not None:
        skip = pytest.mark.skip(reason=f"gpu test: {reason}")
        for item in gpu_items:
            item.add_marker(skip)
