"""Theano's ``theano.sandbox`` path: ``tracegrad.sandbox.rng_mrg``."""
from tracegrad.sandbox import rng_mrg  # noqa: F401,E402  (theano.sandbox.rng_mrg.MRG_RandomStreams)
