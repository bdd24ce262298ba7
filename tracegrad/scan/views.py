"""Theano's ``scan`` views (``theano.map``, ``reduce``, ``foldl``,
``foldr``) and ``scan_checkpoints``, each a ``scan`` call.

``map(fn, sequences)`` applies ``fn`` to each slice; ``reduce(fn,
sequences, outputs_info)`` keeps only the last value of each output;
``foldl``/``foldr`` reduce from the front / the back. Each returns
``(outputs, updates)`` as ``scan`` does.

``scan_checkpoints(fn, sequences, outputs_info, non_sequences, n_steps,
save_every_N, padding)``: Theano's memory-saving scan (it stores every
``save_every_N``-th state and recomputes the rest for the gradient). The
values and gradients are those of ``scan``; the memory use is ``scan``'s
(whose gradient already recomputes the history of a loop whose rows were
trimmed). Its restrictions are Theano's: only ``-1`` taps, no updates.
"""
from tracegrad.scan.build import scan

__all__ = ["map", "reduce", "foldl", "foldr", "scan_checkpoints"]


def map(fn, sequences, non_sequences=None, truncate_gradient=-1, go_backwards=False,
        mode=None, name=None):
    """``fn`` applied to each slice of ``sequences`` (no recurrence)."""
    return scan(fn, sequences=sequences, outputs_info=None, non_sequences=non_sequences,
                truncate_gradient=truncate_gradient, go_backwards=go_backwards,
                mode=mode, name=name)


def reduce(fn, sequences, outputs_info, non_sequences=None, go_backwards=False, mode=None,
           name=None):
    """The last value of each output of ``scan(fn, sequences, outputs_info)``."""
    outputs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info,
                            non_sequences=non_sequences, go_backwards=go_backwards,
                            mode=mode, name=name)
    if isinstance(outputs, (list, tuple)):
        return [out[-1] for out in outputs], updates
    return outputs[-1], updates


def foldl(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """``reduce`` from the first slice to the last."""
    return reduce(fn, sequences, outputs_info, non_sequences, False, mode, name)


def foldr(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """``reduce`` from the last slice to the first."""
    return reduce(fn, sequences, outputs_info, non_sequences, True, mode, name)


def scan_checkpoints(fn, sequences=None, outputs_info=None, non_sequences=None,
                     name="checkpointscan_fn", n_steps=None, save_every_N=10,
                     padding=True):
    """Theano's ``scan_checkpoints`` (module doc): ``scan`` with Theano's
    restrictions checked; ``save_every_N`` (a positive int) and ``padding``
    are accepted."""
    if int(save_every_N) < 1:
        raise ValueError(f"scan_checkpoints: save_every_N must be a positive int, "
                         f"got {save_every_N!r}")
    for info in (outputs_info if isinstance(outputs_info, (list, tuple)) else [outputs_info]):
        if isinstance(info, dict) and list(info.get("taps", [-1])) != [-1]:
            raise ValueError("scan_checkpoints: outputs_info supports only the tap -1 "
                             f"(as Theano's), got taps {info['taps']}")
    for seq in (sequences if isinstance(sequences, (list, tuple)) else [sequences]):
        if isinstance(seq, dict):
            raise ValueError("scan_checkpoints: sequences are plain variables (taps [0]), "
                             "as in Theano")
    outputs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info,
                            non_sequences=non_sequences, n_steps=n_steps, name=name)
    if updates:
        raise ValueError("scan_checkpoints: fn must not update shared variables "
                         "(Theano's restriction); use scan")
    return outputs, updates
