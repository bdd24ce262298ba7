"""Line numbers of ``# [marker]`` comments, for tests that check which user
line an error or a warning names."""


def marker_line(path, marker):
    """The line number of ``# [marker]`` in the file ``path``."""
    with open(path) as f:
        for k, text in enumerate(f, 1):
            if text.rstrip().endswith(f"# [{marker}]"):
                return k
    raise LookupError(marker)
