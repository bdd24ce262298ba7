"""The op-table harness: one ``OpCase`` row per op drives forward and
gradient checks. Each op module has a test file listing its rows and calling
``check_forward`` / ``check_grad`` through ``parametrize_cases``.

A row says how to build the graph from symbolic inputs (``sym``), the NumPy
reference (``ref``), input shapes (several shape sets cover broadcasting,
0-length axes and 0-d inputs), the dtypes to check forward, the value domain,
and whether a gradient exists. ``grad_dtypes`` lists the dtypes whose
gradients are checked; ``complex128`` draws complex inputs (real and imaginary
parts in the domain) and checks the convention of docs/user-guide.md
("Complex gradients") with complex finite differences.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest

import tracegrad.tensor as T
from tracegrad.evaluate import evaluate
from tracegrad.testing import verify_grad, verify_rop

FORWARD_TOL = {"float16": (1e-2, 1e-3), "float32": (2e-5, 1e-6),
               "complex64": (2e-5, 1e-6)}
DEFAULT_TOL = (1e-10, 1e-12)


@dataclass
class OpCase:
    name: str
    sym: Callable                  # (*symbolic inputs) -> variable
    ref: Callable                  # (*numpy arrays) -> array
    shapes: list                   # list of shape sets, each a list of input shapes
    dtypes: tuple = ("float64", "float32")
    domain: tuple = (-2.0, 2.0)
    grad: bool = True
    input_dtypes: Optional[tuple] = None   # per input, overrides the dtype (e.g. 'int64')
    make_inputs: Optional[Callable] = None  # (rng, dtype, shapes) -> list of arrays
    grad_shapes: Optional[list] = None      # shape sets for the gradient check
    tol: Optional[tuple] = None             # (rtol, atol) for forward checks
    grad_dtypes: tuple = ("float64",)       # dtypes of the gradient checks
    marks: list = field(default_factory=list)

    def inputs(self, rng, dtype, shapes):
        if self.make_inputs is not None:
            return [np.asarray(a) for a in self.make_inputs(rng, dtype, shapes)]
        arrays = []
        for i, shape in enumerate(shapes):
            dt = self.input_dtypes[i] if self.input_dtypes and self.input_dtypes[i] else dtype
            lo, hi = self.domain
            if np.dtype(dt).kind == "b":
                arrays.append(rng.random(shape) > 0.5)
            elif np.dtype(dt).kind in "iu":
                arrays.append(rng.integers(int(lo), int(hi) + 1, size=shape).astype(dt))
            elif np.dtype(dt).kind == "c":
                arrays.append((rng.uniform(lo, hi, size=shape)
                               + 1j * rng.uniform(lo, hi, size=shape)).astype(dt))
            else:
                arrays.append(rng.uniform(lo, hi, size=shape).astype(dt))
        return arrays


def symbolic_like(array, name):
    return T.TensorType(array.dtype, (None,) * array.ndim)(name)


def check_forward(case, dtype, shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng, dtype, shapes)
    variables = [symbolic_like(a, f"x{i}") for i, a in enumerate(arrays)]
    out = case.sym(*variables)
    expected = np.asarray(case.ref(*arrays))
    got = evaluate([out], dict(zip(variables, arrays)))[0]
    assert out.dtype == expected.dtype.name, \
        f"{case.name}: symbolic dtype {out.dtype} != NumPy {expected.dtype}"
    assert got.dtype == expected.dtype, f"{case.name}: value dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"{case.name}: shape {got.shape} != {expected.shape}"
    for static, actual in zip(out.type.shape, got.shape):
        assert static is None or static == actual, \
            f"{case.name}: static shape {out.type.shape} contradicts {got.shape}"
    rtol, atol = case.tol or FORWARD_TOL.get(expected.dtype.name, DEFAULT_TOL)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=f"{case.name} {dtype} {shapes}")


def check_grad(case, shapes, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng, dtype, shapes)
    differentiable = [i for i, a in enumerate(arrays) if a.dtype.kind in "fc"]
    fixed = {i: a for i, a in enumerate(arrays) if i not in differentiable}

    def fn(*free):
        it = iter(free)
        full = [T.constant(fixed[i]) if i in fixed else next(it) for i in range(len(arrays))]
        return case.sym(*full)

    verify_grad(fn, [arrays[i] for i in differentiable], rng=rng)


def check_jvp(case, shapes, seed=0, dtype="float64"):
    """``Rop`` of the row's graph against central differences (the jvp)."""
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng, dtype, shapes)
    differentiable = [i for i, a in enumerate(arrays) if a.dtype.kind in "fc"]
    fixed = {i: a for i, a in enumerate(arrays) if i not in differentiable}

    def fn(*free):
        it = iter(free)
        full = [T.constant(fixed[i]) if i in fixed else next(it) for i in range(len(arrays))]
        return case.sym(*full)

    verify_rop(fn, [arrays[i] for i in differentiable], rng=rng)


def forward_params(cases):
    params = []
    for case in cases:
        for dtype in case.dtypes:
            for k, shapes in enumerate(case.shapes):
                params.append(pytest.param(case, dtype, shapes, id=f"{case.name}-{dtype}-{k}",
                                           marks=case.marks))
    return params


def grad_params(cases):
    params = []
    for case in cases:
        if not case.grad:
            continue
        for dtype in case.grad_dtypes:
            for k, shapes in enumerate(case.grad_shapes or case.shapes[:2]):
                name = case.name if dtype == "float64" else f"{case.name}-{dtype}"
                params.append(pytest.param(case, shapes, dtype, id=f"{name}-{k}",
                                           marks=case.marks))
    return params


def table_tests(cases):
    """The forward and gradient tests of a table: in a test module,
    ``test_forward, test_grad = table_tests(CASES)``."""
    @pytest.mark.parametrize("case,dtype,shapes", forward_params(cases))
    def test_forward(case, dtype, shapes):
        check_forward(case, dtype, shapes)

    @pytest.mark.parametrize("case,shapes,dtype", grad_params(cases))
    def test_grad(case, shapes, dtype):
        # Both directions of differentiation: the vjp (grad) and the jvp (Rop).
        check_grad(case, shapes, dtype=dtype)
        check_jvp(case, shapes, dtype=dtype)

    return test_forward, test_grad


def uncovered_functions(public_names, cases):
    """Public functions (lower-case names) of an op module without a table
    case; a case named ``sum[axis=0]`` or ``sum_keepdims`` covers ``sum``."""
    import re
    covered = set()
    for case in cases:
        base = re.split(r"[\[\-]", case.name)[0]
        covered |= {case.name, base, base.split("_")[0]}
    return [n for n in public_names if n[:1].islower() and n not in covered]
