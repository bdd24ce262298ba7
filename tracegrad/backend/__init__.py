"""Backends: which array module (``xp``) runs a compiled function or holds a
shared variable's buffer.

``get_backend(device)`` is the one place that decides whether a device is
available: ``'cpu'`` is NumPy; ``'cuda'`` needs CuPy and a GPU and raises
``RuntimeError`` saying which is missing.
"""
import numpy as np


class Backend:
    """An array module and how to move values onto it.

    ``xp`` is the array module (``numpy`` or ``cupy``); ``name`` the device
    name (``'cpu'`` or ``'cuda'``).
    """

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp
        self.ndarray = xp.ndarray

    def asarray(self, value, dtype=None):
        """``value`` as an array of this device (no copy when already one)."""
        return self.xp.asarray(value, dtype=dtype)

    def to_host(self, value):
        """A NumPy array with the values of ``value``."""
        if isinstance(value, np.ndarray):
            return value
        return self.xp.asnumpy(value)

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __reduce__(self):
        return (get_backend, (self.name,))


CPU = Backend("cpu", np)
_CUDA = None


def _cuda_backend():
    global _CUDA
    if _CUDA is not None:
        return _CUDA
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            f"device='cuda' needs CuPy, which is not installed ({exc}); "
            "install cupy for your CUDA version or use device='cpu'") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(f"device='cuda': CuPy finds no usable GPU ({exc})") from None
    if count < 1:
        raise RuntimeError("device='cuda': CuPy is installed but there is no GPU")
    _CUDA = Backend("cuda", cupy)
    return _CUDA


def canonical_device(device):
    """``None`` -> ``config.device``; ``'gpu'``/``'cuda0'`` -> ``'cuda'``."""
    if device is None:
        from tracegrad.config import config
        device = config.device
    device = str(device).lower()
    if device == "gpu" or device.startswith("cuda"):
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    return device


def get_backend(device=None):
    """The backend for ``device`` (``None``: ``tg.config.device``).

    Raises ``RuntimeError`` when ``'cuda'`` is asked for without CuPy or a GPU.
    """
    device = canonical_device(device)
    if device == "cpu":
        return CPU
    return _cuda_backend()


def backend_of(array):
    """The backend whose array module made ``array``."""
    if isinstance(array, np.ndarray):
        return CPU
    if _CUDA is not None and isinstance(array, _CUDA.xp.ndarray):
        return _CUDA
    return CPU
