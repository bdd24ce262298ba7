"""The suite's second pass: the tests that reach fused and elementwise calls,
on the compiled CPU tier (``TRACEGRAD_TEST_CPU_CODEGEN=auto``: kernels built
by the system C++ compiler, synchronously; see tests/conftest.py).

The first pass (``python -m pytest -q``) runs everything on the NumPy tier,
the reference. This one runs, on the compiled tier:

- ``test_backend_c.py``: every elementwise row and dtype against the NumPy
  tier, layouts, in-place writes, lone nodes, the cache, threads, warnings
  (it selects the compiled tier itself; here its module-level setup does
  too);
- the elementwise op tables (``test_ops_elemwise.py``,
  ``test_ops_numpy_ufuncs.py``, ``test_ops_special.py``): forward values,
  special values and gradients through compiled functions;
- in-place and update tests (``test_inplace.py``, ``test_function_updates.py``,
  ``test_errors_shared_updates.py``): buffers written in place, no
  call-sized temporaries, all-or-nothing updates;
- fusion (``test_fuse_cluster.py``).

(The training examples, ``test_examples.py``, are left to the first pass:
a minute of CI for calls mostly below the tier's size threshold.)

With no C++ compiler the pass still runs (the NumPy tier takes every call,
as for a user without one). Usage, from the repository root:
``python tests/compiled_tier.py [pytest arguments]``.
"""
import os
import subprocess
import sys
from pathlib import Path

SUBSET = [
    "tests/test_backend_c.py",
    "tests/test_backend_c_small.py",
    "tests/test_ops_elemwise.py",
    "tests/test_ops_numpy_ufuncs.py",
    "tests/test_ops_special.py",
    "tests/test_inplace.py",
    "tests/test_function_updates.py",
    "tests/test_errors_shared_updates.py",
    "tests/test_fuse_cluster.py",
]


def main(argv):
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, TRACEGRAD_TEST_CPU_CODEGEN="auto")
    return subprocess.call([sys.executable, "-m", "pytest", "-q", *SUBSET, *argv],
                           cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
