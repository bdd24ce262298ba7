"""``dtype.name`` cached per dtype.

NumPy builds a dtype's name string on every ask (~1.8 us, a Python-level
property), and the compile path asks it per folded constant and per checked
value; a program sees few distinct dtypes, so a dict answers in ~50 ns.
"""

_NAMES = {}


def dtype_name(dtype):
    """``dtype.name`` of a NumPy (or CuPy) dtype, from a per-dtype cache."""
    name = _NAMES.get(dtype)
    if name is None:
        # Equal dtypes have equal names (byte order and itemsize are part
        # of both), so the first dtype asked answers for the equal ones.
        name = _NAMES[dtype] = dtype.name
    return name
