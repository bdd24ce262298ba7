"""Printing (being written)."""


def pp(var):
    raise NotImplementedError("pp is not written yet")
