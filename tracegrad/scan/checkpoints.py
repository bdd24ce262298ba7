"""``scan_checkpoints``: Theano's memory-saving scan.

The loop is cut into chunks of ``save_every_N`` steps: an outer scan runs one
chunk per step, each chunk an inner scan that keeps only its last state. So
the forward pass stores one state per chunk, and the gradient (a reverse
scan over the outer loop) recomputes each chunk's inner states from its
stored first state while it goes back — memory of about ``n / N + N`` states
instead of ``n``, for about one more forward pass of compute.

Theano's restrictions hold: sequences are read with tap 0 only, every output
has an initial value read with tap -1 (or is ``None``: a per-step output),
``fn`` returns no ``until``. As in Theano, the outputs hold the state after
every ``save_every_N``-th step (and after the last step): ``outputs[-1]`` is
the final state; the steps in between are not returned.
"""
from tracegrad.ops import api as T  # the op functions (scan sits below tracegrad.tensor)
from tracegrad.scan.build import scan
from tracegrad.tensor.variable import as_tensor_variable


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _check_taps(sequences, outputs_info):
    for s in sequences:
        if isinstance(s, dict):
            raise ValueError("scan_checkpoints: sequences are read with tap 0 only "
                             "(give the variable itself, not a dict with taps)")
    for o in outputs_info:
        if isinstance(o, dict) and list(o.get("taps", [-1])) != [-1]:
            raise ValueError("scan_checkpoints: outputs are read with tap -1 only, "
                             f"got taps {o.get('taps')}")


def _steps(sequences, n_steps):
    """The number of steps (symbolic or an int)."""
    if n_steps is not None:
        return as_tensor_variable(n_steps).astype("int64")
    if not sequences:
        raise ValueError("scan_checkpoints needs sequences or n_steps")
    lengths = [T.shape(s)[0] for s in sequences]
    n = lengths[0]
    for m in lengths[1:]:
        n = T.minimum(n, m)
    return n


def _chunked(s, n, every, padding):
    """Sequence ``s`` cut to ``n`` steps, padded with zeros to whole chunks
    when ``padding``, as a ``(chunks, every, ...)`` tensor."""
    s = s[:n]
    if padding:
        pad = (every - n % every) % every
        zeros = T.zeros(T.concatenate([T.stack([pad]), T.shape(s)[1:]]), dtype=s.dtype)
        s = T.concatenate([s, zeros], axis=0)
    chunks = T.shape(s)[0] // every
    return T.reshape(s, T.concatenate([T.stack([chunks, every]), T.shape(s)[1:]]),
                     ndim=s.ndim + 1)


def scan_checkpoints(fn, sequences=None, outputs_info=None, non_sequences=None,
                     name="checkpointscan_fn", n_steps=None, save_every_N=10, padding=True):
    """Theano's ``scan_checkpoints``: ``scan`` storing one state every
    ``save_every_N`` steps (see the module docstring). Returns ``(outputs,
    updates)``; each output has one row per chunk of ``save_every_N`` steps.

    ``padding=False`` promises that the sequences' length is a multiple of
    ``save_every_N`` (nothing is padded).
    """
    sequences = _as_list(sequences)
    outputs_info = _as_list(outputs_info)
    non_sequences = _as_list(non_sequences)
    _check_taps(sequences, outputs_info)
    sequences = [as_tensor_variable(s) for s in sequences]
    every = int(save_every_N)
    if every < 1:
        raise ValueError(f"save_every_N must be >= 1, got {save_every_N}")
    n = _steps(sequences, n_steps)
    n_chunks = (n + every - 1) // every
    rest = n % every
    last = T.switch(T.eq(rest, 0), every, rest)
    inner_steps = T.concatenate([T.ones([n_chunks - 1], dtype="int64") * every,
                                 T.stack([last])])
    chunked = [_chunked(s, n, every, padding) for s in sequences]
    per_step = sum(o is None for o in outputs_info)
    n_seq, n_rec = len(chunked), len(outputs_info) - per_step

    def outer_step(*args):
        seqs = list(args[:n_seq])
        steps = args[n_seq]
        prev = list(args[n_seq + 1: n_seq + 1 + n_rec])
        nonseqs = list(args[n_seq + 1 + n_rec:])
        infos, k = [], 0
        for o in outputs_info:
            if o is None:
                infos.append(None)
            else:
                infos.append(prev[k])
                k += 1
        results, updates = scan(fn, sequences=seqs, outputs_info=infos,
                                non_sequences=nonseqs, n_steps=steps,
                                name=f"{name}_inner", return_list=True)
        return [r[-1] for r in results], updates

    outer_infos = [None if o is None else (o["initial"] if isinstance(o, dict) else o)
                   for o in outputs_info]
    return scan(outer_step, sequences=chunked + [inner_steps], outputs_info=outer_infos,
                non_sequences=non_sequences, n_steps=n_chunks, name=f"{name}_outer")
