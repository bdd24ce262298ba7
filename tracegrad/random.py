"""Random streams (being written)."""


class RandomStreams:
    def __init__(self, seed=None):
        raise NotImplementedError("RandomStreams is not written yet")
