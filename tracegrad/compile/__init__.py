"""Compiled functions (being written)."""


class In:
    def __init__(self, variable, value=None, name=None):
        raise NotImplementedError("In is not written yet")


class Out:
    def __init__(self, variable, borrow=False):
        raise NotImplementedError("Out is not written yet")


def function(*args, **kwargs):
    raise NotImplementedError("tg.function is not written yet")
