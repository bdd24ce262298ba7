"""How collectives move CuPy arrays (``set_gpu_collectives``): NCCL
(``nccl.py``), a CUDA-aware MPI (``cudampi.py``) or the host."""
from tracegrad.distributed import cudampi, nccl
from tracegrad.distributed.state import gpu_collectives

__all__ = ["runner"]


def runner(comm, xp):
    """The device runner of ``comm`` for the current policy, or ``None``
    for the host path (copy to the host, mpi4py, copy back):

    - ``'auto'``: NCCL when ``cupy.cuda.nccl`` imports, else CUDA-aware MPI
      when the library is (``cudampi.cuda_aware``), else the host;
    - ``'nccl'`` / ``'mpi'``: that one, or a ``RuntimeError`` saying why not;
    - ``'host'``: the host."""
    mode = gpu_collectives()
    if mode == "host":
        return None
    if mode in ("auto", "nccl"):
        found = nccl.runner(comm, xp)
        if found is not None:
            return found
        if mode == "nccl":
            raise RuntimeError("set_gpu_collectives('nccl'): cupy.cuda.nccl is not "
                               "available (install CuPy built with NCCL, e.g. the "
                               "cupy-cuda12x wheel with nccl)")
    if cudampi.cuda_aware():
        return cudampi.runner(comm, xp)
    if mode == "mpi":
        raise RuntimeError("set_gpu_collectives('mpi'): the MPI library does not say it is "
                           "CUDA-aware (mpi4py's MPI.Query_cuda_support() is absent or "
                           "False); set TRACEGRAD_CUDA_AWARE_MPI=1 if it is, or use 'nccl' "
                           "or 'host'")
    return None
