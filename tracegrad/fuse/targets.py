"""The registry through which fusion reaches the backends that run it.

``fuse/`` finds clusters and describes each as a ``FusionSpec``; it knows
no backend. A backend module under ``tracegrad/backend/`` (the compile
layer, above this one) registers itself here from its ``install()``:

- ``PROGRAMS[array module name]``: the module offering ``can_run(spec)``
  and ``program(spec) -> Program`` for arrays of that module (``'numpy'``:
  ``backend/numpy``; ``'cupy'``: ``backend/cupy/kernel``). A
  ``FusedElemwise`` called with arrays of ``xp`` runs
  ``PROGRAMS[xp.__name__].program(spec)``; an array module nobody
  registered runs the spec's reference (each row's ``impl`` on ``xp``).
- ``NODE_CHECKS[device]``: ``check(node) -> bool``, whether an elementwise
  node may join a cluster compiled for that device (``'cuda'``: the row
  has a C form the CUDA emitter can write); devices without one fuse every
  elementwise row.

``Program`` below is the protocol every backend's programs follow (the
backends subclass it; its defaults are what a backend without the optional
paths offers).
"""

PROGRAMS = {}
NODE_CHECKS = {}


def backend_for(xp):
    """The backend module registered for the array module ``xp``, or
    ``None``."""
    return PROGRAMS.get(xp.__name__)


def node_check(device):
    """The registered ``check(node)`` of ``device``, or ``None``."""
    return NODE_CHECKS.get(device)


class Program:
    """A fused spec compiled for one backend. Thread-safe: one program
    serves concurrent calls.

    Required: ``run(inputs, outs=None, sources=None)`` computes the spec's
    outputs for ``inputs`` (arrays of the backend, broadcast against each
    other) and returns them as a list; given ``outs`` (arrays of the output
    shapes and dtypes, e.g. shared buffers: the ``out=`` targets the
    schedule decided on), it writes into them and returns them. An output
    buffer may be the very array of an input (an in-place update: each
    element is read before it is written); any other overlap is the
    program's to handle (by computing into fresh buffers and copying).
    ``sources``: where user code built each fused row, for error messages.

    Optional (defaults here mean "not offered"):

    - ``fast``: ``f(*inputs)`` -> the list of outputs, or ``None`` when the
      call is not one it handles (a whole small call inline, no checks
      beyond its own);
    - ``inplace_fast(k)``: the same, writing output 0 into input ``k``;
    - ``run_small_into(inputs, k)``: ``True`` after writing output 0 into
      input ``k`` when the call is small enough for a direct path;
    - ``direct``: a block function over whole arrays (``fn(*operands,
      *outs, *scratch)``, ``slot_dtypes``) for callers that cut the space
      themselves (``FusedSum``'s slabs).
    """

    fast = None
    direct = None

    def run(self, inputs, outs=None, sources=None):
        raise NotImplementedError

    def inplace_fast(self, k):
        """``f(*inputs)`` writing output 0 into input ``k``, or ``None``."""
        return None

    def run_small_into(self, inputs, k):
        """Whether the call was run (small) straight into input ``k``."""
        return False
