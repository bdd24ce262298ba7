"""Benchmarks: tracegrad side by side with its peers (``shared/BENCHMARKS.md``).

Run ``python -m bench --quick`` (a few minutes) or ``python -m bench`` (full),
optionally ``--json out.json`` and ``--only W1,W3``. Peers (numexpr,
pytensor, jax, autograd) are the optional ``bench`` extra; a missing one is
reported as missing. Not part of the test suite and never imported by
tracegrad.
"""
