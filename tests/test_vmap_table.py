"""``tg.vmap`` of every op-table row (``tests/test_ops_*.py``'s ``CASES``)
equals the row's NumPy reference applied to each example and stacked.

Each row's first shape set is one example; three examples (independent
draws, so index arrays differ too and batched indices are covered) are
stacked along the mapped axis, first (``in_axes=0``) and last
(``in_axes=-1``). The batched graph is built symbolically (``vmap`` inlined
on variables) and evaluated without compiling, so the whole table stays
quick; the ops without a native rule run through the fallback loop, which
is checked by the same comparison.
"""
import importlib
import pathlib

import numpy as np
import pytest

import tracegrad as tg
from optable import DEFAULT_TOL, FORWARD_TOL
from tracegrad.evaluate import evaluate
from tracegrad.tensor.type import TensorType

BATCH = 3
TABLE_MODULES = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("test_ops_*.py"))


def _rows():
    params = []
    for name in TABLE_MODULES:
        module = importlib.import_module(name)
        for case in module.CASES:
            for axis in (0, -1):
                params.append(pytest.param(case, axis, id=f"{name[9:]}-{case.name}-{axis}",
                                           marks=case.marks))
    return params


def _examples(case, dtype, shapes):
    out = []
    for seed in range(BATCH):
        rng = np.random.default_rng(seed)
        out.append(case.inputs(rng, dtype, shapes))
    return out


# Rows whose intermediate shapes depend on each example's values: the loop
# over the batch refuses them at run time, as JAX refuses a boolean mask.
DATA_DEPENDENT = {"inc_mask": "the mask selects a different number of entries per example"}


@pytest.mark.parametrize("case,axis", _rows())
def test_vmap_of_a_table_row_is_the_stacked_examples(case, axis):
    dtype = case.dtypes[0]
    examples = _examples(case, dtype, case.shapes[0])
    try:
        expected = [np.asarray(case.ref(*ex)) for ex in examples]
    except Exception as exc:  # the row's own inputs: NumPy must accept them
        pytest.fail(f"the reference of {case.name} failed on its inputs: {exc}")
    if any(e.shape != expected[0].shape for e in expected):
        pytest.skip(f"{case.name}: the examples' results have different shapes "
                    "(data-dependent), which vmap cannot stack")
    stacked = [np.stack(list(parts), axis=axis) for parts in zip(*examples)]
    variables = [TensorType(a.dtype.name, (None,) * a.ndim)(f"x{i}")
                 for i, a in enumerate(stacked)]
    out = tg.vmap(case.sym, in_axes=axis, out_axes=axis)(*variables)
    if case.name in DATA_DEPENDENT:
        with pytest.raises(ValueError, match="each step must give the same shape"):
            evaluate([out], dict(zip(variables, stacked)))
        return
    got = evaluate([out], dict(zip(variables, stacked)))[0]
    want = np.stack(expected, axis=axis)
    assert got.dtype == want.dtype, f"{case.name}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{case.name}: shape {got.shape} != {want.shape}"
    rtol, atol = case.tol or FORWARD_TOL.get(want.dtype.name, DEFAULT_TOL)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=f"vmap of {case.name}, in_axes={axis}")
