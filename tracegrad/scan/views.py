"""Theano's ``scan`` views (``theano.map``, ``reduce``, ``foldl``,
``foldr``), each a ``scan`` call.

``map(fn, sequences)`` applies ``fn`` to each slice; ``reduce(fn,
sequences, outputs_info)`` keeps only the last value of each output;
``foldl``/``foldr`` reduce from the front / the back. Each returns
``(outputs, updates)`` as ``scan`` does.
"""
from tracegrad.scan.build import scan

__all__ = ["map", "reduce", "foldl", "foldr"]


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
