"""The per-dtype cache of ``dtype.name`` answers what NumPy answers, byte
order and structured dtypes included."""
import numpy as np
import pytest

from tracegrad.dtype_names import dtype_name

DTYPES = ["<f8", ">f8", "f4", "f2", "i8", ">i4", "u1", "?", "c16", ">c8", "O", "U5", "S3",
          "datetime64[s]", "m8[ns]", [("a", "f8"), ("b", ">i4")]]


@pytest.mark.parametrize("spec", DTYPES, ids=str)
def test_dtype_name_matches_numpy(spec):
    dt = np.dtype(spec)
    assert dtype_name(dt) == dt.name
    assert dtype_name(np.dtype(spec)) == dt.name   # asked again: from the cache
