"""scan (being written)."""


def scan(*args, **kwargs):
    raise NotImplementedError("scan is not written yet")


def until(condition):
    raise NotImplementedError("until is not written yet")
