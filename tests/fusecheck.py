"""The check the fusion tests share: a graph evaluated fused against the
reference evaluator on the unfused graph."""
import warnings

import numpy as np

from tracegrad.evaluate import evaluate
from tracegrad.fuse import fuse_outputs


def compare_fused(outputs, values, fused=None, rtol=None, *, tol):
    """Evaluate ``outputs`` unfused and ``fused`` (default
    ``fuse_outputs(outputs)``) on ``values``; assert equal dtypes and shapes,
    and values equal (integers, booleans) or within ``rtol`` (default
    ``tol[name of the real dtype]``; NaN matches NaN). Returns ``fused``."""
    fused = fuse_outputs(outputs) if fused is None else fused
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = evaluate(outputs, values)
        got = evaluate(fused, values)
    for r, g in zip(ref, got):
        assert g.dtype == r.dtype, (g.dtype, r.dtype)
        assert g.shape == r.shape, (g.shape, r.shape)
        if r.dtype.kind in "fc":
            np.testing.assert_allclose(g, r, rtol=rtol or tol[np.dtype(r.real.dtype).name],
                                       atol=0, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, r)
    return fused
