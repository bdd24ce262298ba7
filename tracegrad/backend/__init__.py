"""Backends: which array module (``xp``) runs a compiled function or holds a
shared variable's buffer.

``get_backend(device)`` is the one place that decides whether a device is
available: ``'cpu'`` is NumPy; ``'cuda'`` is CuPy (``tracegrad.backend.cupy``,
imported only when asked for: importing tracegrad never imports CuPy) and
raises ``RuntimeError`` saying whether CuPy or the GPU is missing.

Devices do not mix: a compiled function reads only shared variables of its
own device (``check_devices`` refuses the others when compiling, with
``DeviceMismatchError``), so no call ever copies a buffer between host and
device behind the user's back.
"""
import sys

import numpy as np

from tracegrad.config import normalize_device


class DeviceMismatchError(TypeError, ValueError):
    """A graph mixes values of two devices (e.g. a CPU shared variable in a
    CUDA function). A ``TypeError`` and a ``ValueError``, as NumPy's
    ``AxisError`` is both an ``IndexError`` and a ``ValueError``."""


class Backend:
    """An array module and how to move values onto it.

    ``xp`` is the array module (``numpy`` or ``cupy``); ``name`` the device
    name (``'cpu'`` or ``'cuda'``); ``fused_updates``: whether a fused
    kernel computing a shared variable's update may write straight into the
    shared buffer (``tracegrad.backend.inplace``); ``step_wrapper``:
    ``None`` or ``wrap(node, fn) -> fn`` that the schedule applies to the
    callable of each step whose op is an instance of ``wrapped_ops`` (the
    CPU's: ``backend.lone`` on ``Elemwise`` ops, set by its ``install``;
    asking first spares the other nodes a call and their op's ``impl`` a
    ``partial``).
    """

    fused_updates = False
    step_wrapper = None
    wrapped_ops = ()

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp
        self.ndarray = xp.ndarray

    def asarray(self, value, dtype=None):
        """``value`` as an array of this device (no copy when already one)."""
        return self.xp.asarray(value, dtype=dtype)

    def to_host(self, value):
        """A NumPy array with the values of ``value`` (no copy when it is one)."""
        if isinstance(value, np.ndarray):
            return value
        if is_device_array(value):
            return value.get()
        return np.asarray(value)

    def host_copy(self, value):
        """A new NumPy array with the values of ``value`` (never aliases it)."""
        if isinstance(value, np.ndarray):
            return value.copy()
        if is_device_array(value):
            return value.get()
        return np.array(value, copy=True)

    def synchronize(self):
        """Wait until the device has finished its queued work (timing)."""

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __reduce__(self):
        return (get_backend, (self.name,))


class CpuBackend(Backend):
    """NumPy; device arrays given to it are copied to the host."""

    def __init__(self):
        Backend.__init__(self, "cpu", np)

    def asarray(self, value, dtype=None):
        if not isinstance(value, np.ndarray) and is_device_array(value):
            value = value.get()
        return np.asarray(value, dtype=dtype)


CPU = CpuBackend()
_CUDA = None


def is_device_array(value):
    """Whether ``value`` is a CuPy array (without importing CuPy)."""
    cupy = sys.modules.get("cupy")
    ndarray = getattr(cupy, "ndarray", None)
    return ndarray is not None and isinstance(value, ndarray)


def _cuda_backend():
    global _CUDA
    if _CUDA is None:
        from tracegrad.backend.cupy import load
        _CUDA = load()
    return _CUDA


# The one normaliser of device names lives in config (importable by every
# layer); this name is kept for the code and tests that know it from here.
canonical_device = normalize_device


def get_backend(device=None):
    """The backend for ``device`` (``None``: ``tg.config.device``).

    Raises ``RuntimeError`` when ``'cuda'`` is asked for without CuPy or a GPU.
    """
    device = canonical_device(device)
    if device == "cpu":
        return CPU
    return _cuda_backend()


def check_devices(backend, shared_variables, what):
    """``DeviceMismatchError`` when a shared variable lives on another device
    than ``backend`` (``what`` names the function in the message)."""
    wrong = [v for v in shared_variables
             if getattr(v, "device", backend.name) != backend.name]
    if not wrong:
        return
    other = wrong[0].device
    names = ", ".join(str(v) for v in wrong[:5]) + (", ..." if len(wrong) > 5 else "")
    raise DeviceMismatchError(
        f"{what} runs on device '{backend.name}' but reads shared variable"
        f"{'s' if len(wrong) > 1 else ''} {names} stored on '{other}'; devices do not "
        f"mix (no silent copies each call). Create the shared variables with "
        f"shared(..., device='{backend.name}') -- or set tg.config.device = "
        f"'{backend.name}' before creating them and any RandomStreams draws -- or "
        f"compile with device='{other}'")
