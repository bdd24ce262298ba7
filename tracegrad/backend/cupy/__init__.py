"""The CuPy backend: ``device='cuda'``.

Imported only by ``get_backend('cuda')`` (importing tracegrad never imports
CuPy). ``load()`` imports CuPy, checks that it sees a GPU and returns the
backend; without CuPy, or without a GPU, it raises ``RuntimeError`` saying
which and how to fix it.

Where each part of the GPU path lives:

- the array module: every op's ``impl(xp, ...)`` is written once against
  ``xp``; with ``xp = cupy`` reductions run as CuPy reductions, ``dot`` and
  ``matmul`` through cuBLAS, special functions through
  ``cupyx.scipy.special`` (``ops/special_math.py``) and random draws through
  ``cupy.random.RandomState`` seeded from the draw's ``[key, counter]`` state
  (``ops/random.py``);
- fused elementwise clusters: ``FusedElemwise`` on CuPy arrays runs the
  program of ``backend/cupy/kernel.py`` (registered for CuPy arrays in
  ``fuse.targets``), which builds one ``cupy.ElementwiseKernel`` per cluster
  structure (cached by ``FusionSpec``; CuPy compiles it once per argument
  layout and keeps the binary in its own disk cache). Values of ``float16``
  are computed in ``float`` inside the kernel and rounded to half precision
  only when stored;
- transfers: this module (host -> device for inputs, shared values and
  constants; device -> host for ``get_value``);
- in-place updates: ``fused_updates = True`` lets the schedule hand a shared
  variable's buffer to the fused kernel that computes its update
  (``tracegrad.backend.inplace``), so ``w - lr * g`` is one kernel writing
  into ``w``.
"""
import numpy as np

from tracegrad.backend import Backend

INSTALL_HINT = ("install it with `pip install tracegrad[gpu]` (or the CuPy wheel "
                "matching your CUDA version, e.g. `pip install cupy-cuda12x`)")


def load():
    """The CUDA backend, or ``RuntimeError`` naming what is missing."""
    try:
        import cupy
    except ImportError as exc:
        reason = "CuPy is not installed" if _is_missing(exc) else \
            f"CuPy cannot be imported ({exc})"
        raise RuntimeError(
            f"device='cuda' needs CuPy and an NVIDIA GPU, but {reason}; "
            f"{INSTALL_HINT}, or use device='cpu'") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, or no device: CuPy raises
        raise RuntimeError(
            f"device='cuda': CuPy is installed but finds no usable GPU ({exc}); "
            "check the NVIDIA driver and CUDA_VISIBLE_DEVICES, or use "
            "device='cpu'") from None
    if count < 1:
        raise RuntimeError("device='cuda': CuPy is installed but there is no GPU; "
                           "use device='cpu'")
    return CupyBackend(cupy)


def _is_missing(exc):
    name = getattr(exc, "name", None)
    return isinstance(exc, ModuleNotFoundError) and (name is None or
                                                     name.split(".")[0] == "cupy")


class CupyBackend(Backend):
    """CuPy on the current CUDA device."""

    fused_updates = True

    def __init__(self, cupy):
        Backend.__init__(self, "cuda", cupy)

    def asarray(self, value, dtype=None):
        """``value`` on the device (host arrays, lists and scalars are
        copied there; a device array of the right dtype is returned as is)."""
        return self.xp.asarray(value, dtype=dtype)

    def to_host(self, value):
        if isinstance(value, self.ndarray):
            return self.xp.asnumpy(value)
        return np.asarray(value)

    def host_copy(self, value):
        if isinstance(value, self.ndarray):
            return self.xp.asnumpy(value)
        return np.array(value, copy=True)

    def synchronize(self):
        self.xp.cuda.Device().synchronize()

    def device_name(self):
        """The GPU's name (e.g. ``'NVIDIA H100 80GB HBM3'``)."""
        runtime = self.xp.cuda.runtime
        name = runtime.getDeviceProperties(runtime.getDevice())["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def __repr__(self):
        return "Backend('cuda')"
