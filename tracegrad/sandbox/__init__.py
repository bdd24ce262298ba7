"""Theano's ``theano.sandbox`` path: ``tracegrad.sandbox.rng_mrg``."""
