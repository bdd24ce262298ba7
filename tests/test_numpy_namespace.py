"""``tracegrad.numpy``: NumPy's whole namespace, answering traced values
(also inside lists and tuples) with tracegrad and everything else with NumPy;
the errors of plain NumPy on traced values; the committed coverage table; and
random compositions of its functions against NumPy and finite differences."""
import importlib.util
from pathlib import Path

import numpy
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.numpy as tnp
import tracegrad.tensor as T
from tracegrad.tensor.dispatch import FUNCTIONS, UFUNCS

ROOT = Path(__file__).resolve().parent.parent
MODULES = [(numpy, tnp), (numpy.linalg, tnp.linalg), (numpy.fft, tnp.fft),
           (numpy.random, tnp.random)]


# ------------------------------------------------------------ the namespace
@pytest.mark.parametrize("ref, ours", MODULES, ids=lambda m: m.__name__)
def test_every_public_numpy_name_is_present(ref, ours):
    public = [n for n in dir(ref) if not n.startswith("_")]
    missing = [n for n in public if not hasattr(ours, n)]
    assert not missing, f"{ours.__name__} lacks {missing}"
    assert set(public) <= set(dir(ours))


def test_star_import_gives_numpys_names():
    scope = {}
    exec("from tracegrad.numpy import *", scope)
    assert scope["pi"] is numpy.pi and scope["sum"] is tnp.sum
    assert scope["float32"] is tnp.float32 and "linalg" in scope


def test_constants_classes_and_other_modules_are_numpys_own():
    for name in ("pi", "e", "inf", "nan", "newaxis", "ndarray", "dtype", "finfo",
                 "iinfo", "errstate", "ma", "polynomial", "floating", "generic"):
        assert getattr(tnp, name) is getattr(numpy, name), name
    assert tnp.linalg.LinAlgError is numpy.linalg.LinAlgError
    assert tnp.__version__ == numpy.__version__


@pytest.mark.parametrize("name", ["float64", "float32", "int64", "int8", "uint16",
                                  "bool", "complex128"])
def test_scalar_types_are_numpys_for_numpy_and_cast_traced_values(name):
    ours, theirs = getattr(tnp, name), getattr(numpy, name)
    assert numpy.dtype(ours) == numpy.dtype(theirs)
    assert ours == theirs and hash(ours) == hash(theirs) and {theirs: 1}[ours] == 1
    assert isinstance(theirs(1), ours) and issubclass(theirs, ours)
    assert numpy.zeros(2, dtype=ours).dtype == theirs
    assert type(ours(1)) is theirs  # NumPy's scalar on a plain value
    x = T.dvector("x")
    cast = ours(x)
    assert isinstance(cast, T.TensorVariable) and cast.dtype == numpy.dtype(theirs).name
    values = numpy.array([0.0, 1.5, -2.0])
    numpy.testing.assert_array_equal(cast.eval({x: values}), values.astype(theirs))


@pytest.mark.parametrize("call", [
    lambda np: np.sum(numpy.arange(5)),
    lambda np: np.unique([3, 1, 3]),
    lambda np: np.linspace(0, 1, 5),
    lambda np: np.exp([0.0, 1.0]),
    lambda np: np.add.reduce([1, 2, 3]),
    lambda np: np.array([[1, 2], [3, 4]], dtype=np.float32),
    lambda np: np.r_[1:4, 7],
    lambda np: np.c_[[1, 2], [3, 4]],
    lambda np: np.linalg.eigvalsh(numpy.eye(2) * 2),
    lambda np: np.fft.fftfreq(4),
    lambda np: np.float32(2.5),
], ids=["sum", "unique", "linspace", "exp_list", "reduce", "array", "r_", "c_",
        "eigvalsh", "fftfreq", "float32"])
def test_plain_values_are_numpys_answer(call):
    got, want = call(tnp), call(numpy)
    assert type(got) is type(want)
    numpy.testing.assert_array_equal(got, want)
    assert numpy.asarray(got).dtype == numpy.asarray(want).dtype


X, Y = numpy.array([0.5, -1.0, 2.0]), numpy.array([1.5, 0.25, -0.75])


@pytest.mark.parametrize("build", [
    lambda np, x, y: np.array([x, y]),
    lambda np, x, y: np.array([[x[0], 1.0], [2.0, y[1]]], dtype=np.float32),
    lambda np, x, y: np.asarray((x, y), dtype="float32"),
    lambda np, x, y: np.array(x, ndmin=3),
    lambda np, x, y: np.stack([x, y], axis=1),
    lambda np, x, y: np.mean([x, y], axis=0),
    lambda np, x, y: np.sum([x, y]),
    lambda np, x, y: np.concatenate([x, numpy.ones(2), y]),
    lambda np, x, y: np.vstack((x, y)),
    lambda np, x, y: np.exp([x, y]),
    lambda np, x, y: np.maximum([x, y], 0.0),
    lambda np, x, y: np.add.reduce([x, y]),
    lambda np, x, y: np.r_[x, 1.0, y, 0:2],
    lambda np, x, y: np.c_[x, y, numpy.zeros(3)],
    lambda np, x, y: np.float32(x) * np.int64(y),
    lambda np, x, y: np.zeros(x.shape) + np.ones(y.shape[0]) + np.full(x.shape, 2.0),
    lambda np, x, y: np.arange(x.shape[0]) * x + np.eye(3)[1],
    lambda np, x, y: np.where(x > y, x, y),
    lambda np, x, y: np.linalg.norm(np.outer(x, y)) + np.linalg.trace(np.outer(x, y)),
    lambda np, x, y: np.linalg.multi_dot([np.outer(x, y), np.outer(y, x), x]),
    lambda np, x, y: np.real(np.fft.ifft(np.fft.fft(x) * y)),
    lambda np, x, y: np.copy(x) + np.size(y) + np.ndim(x) + np.shape(x)[0],
], ids=["array", "array_nested_dtype", "asarray", "ndmin", "stack", "mean_list",
        "sum_list", "concatenate", "vstack", "exp_list", "maximum_list", "reduce_list",
        "r_", "c_", "scalar_types", "constructors", "arange_eye", "where", "linalg",
        "multi_dot", "fft", "size_shape"])
def test_traced_values_and_lists_of_them_match_numpy(build):
    x, y = T.dvector("x"), T.dvector("y")
    out = build(tnp, x, y)
    assert isinstance(out, T.TensorVariable)
    want = build(numpy, X, Y)
    got = tg.function([x, y], out, on_unused_input="ignore")(X, Y)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    numpy.testing.assert_allclose(got, want, rtol=1e-6)


def test_gradients_flow_through_lists():
    def f(x):
        return tnp.sum(tnp.array([x, x ** 2]) * tnp.r_[1.0, 2.0][:, None])

    numpy.testing.assert_allclose(tg.grad(f)(X), 1 + 4 * X)
    numpy.testing.assert_allclose(tg.jit(f)(X), numpy.sum(X + 2 * X ** 2))


def _unregistered(module, candidates):
    """The first of ``candidates`` with no tracegrad implementation (other
    helpers keep adding them)."""
    for name in candidates:
        obj = getattr(module, name)
        if obj not in FUNCTIONS and obj not in UFUNCS:
            return name
    pytest.skip(f"every candidate of {module.__name__} is implemented now")


@pytest.mark.parametrize("ref, ours, candidates", [
    (numpy, tnp, ["unique", "histogram", "busday_count", "packbits"]),
    (numpy, tnp, ["gcd", "nextafter", "spacing", "ldexp"]),
    (numpy.linalg, tnp.linalg, ["matrix_rank", "lstsq", "tensorinv"]),
    (numpy.random, tnp.random, ["normal", "uniform"]),
], ids=["function", "ufunc", "linalg", "random"])
def test_unsupported_names_raise_naming_the_function(ref, ours, candidates):
    name = _unregistered(ref, candidates)
    x = T.dvector("x")
    with pytest.raises(TypeError) as info:
        getattr(ours, name)(x)
    msg = str(info.value)
    assert f"{ours.__name__}.{name}" in msg and "traced" in msg
    with pytest.raises(TypeError, match=f"{ours.__name__}.{name}"):
        getattr(ours, name)([x, x])  # inside a list too


def test_functions_registered_later_are_used(monkeypatch):
    x = T.dvector("x")
    name = _unregistered(numpy, ["unique", "histogram", "packbits"])
    before = getattr(tnp, name)  # made (and kept) before the registration
    monkeypatch.setitem(FUNCTIONS, getattr(numpy, name), lambda a, *r, **k: a * 2)
    numpy.testing.assert_array_equal(before(x).eval({x: X}), 2 * X)


def test_wrappers_keep_numpys_names_docs_and_ufunc_attributes():
    assert tnp.sum.__name__ == "sum" and tnp.sum.__doc__ == numpy.sum.__doc__
    assert tnp.linalg.norm.__module__ == "tracegrad.numpy.linalg"
    assert tnp.exp.nin == 1 and tnp.add.identity == 0 and "exp" in repr(tnp.exp)
    assert tnp.sum is tnp.sum  # made once


def test_plain_numpy_on_traced_values_points_to_tracegrad_numpy():
    x, y = T.dscalar("x"), T.dscalar("y")
    for call in (lambda: numpy.array([x, y]), lambda: numpy.asarray(x),
                 lambda: numpy.float64(x), lambda: numpy.mean([x, y]),
                 lambda: numpy.exp([x, y])):
        with pytest.raises(TypeError, match="import tracegrad.numpy as np"):
            call()


# ------------------------------------------------------------ the coverage table
def test_committed_coverage_table_is_current():
    pytest.importorskip("scipy")
    spec = importlib.util.spec_from_file_location(
        "coverage_table", ROOT / "tools" / "coverage_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    committed = tool.TABLE.read_text()
    table = tool.parse(committed)
    assert list(table) == tool.MODULES
    results = {m: tool.classify(m) for m in tool.MODULES}
    for mod in tool.MODULES:
        changed = {n: (table[mod].get(n), s) for n, s in results[mod].items()
                   if table[mod].get(n) != s}
        gone = set(table[mod]) - set(results[mod])
        assert not changed and not gone, (
            f"docs/numpy-coverage.md is out of date for {mod} (run python "
            f"tools/coverage_table.py): changed {changed}, gone {sorted(gone)}")
    assert committed == tool.render(results, tool.versions()), (
        "docs/numpy-coverage.md is out of date (run python tools/coverage_table.py)")


# ------------------------------------------------------------ compositions
# name -> (arity, fn(np, *operands)); every one smooth and bounded on
# bounded inputs, each written once and run with NumPy and tracegrad.numpy.
STEPS = {
    "sin": (1, lambda np, a: np.sin(a)),
    "tanh": (1, lambda np, a: np.tanh(a)),
    "arctan": (1, lambda np, a: np.arctan(a)),
    "log1p_square": (1, lambda np, a: np.log1p(np.square(a))),
    "hypot": (1, lambda np, a: np.hypot(a, 1.0)),
    "gauss": (1, lambda np, a: np.exp(-a * a)),
    "roll": (1, lambda np, a: np.roll(a, 1)),
    "flip": (1, lambda np, a: np.flip(a)),
    "cumsum": (1, lambda np, a: np.cumsum(a) / 4),
    "cast": (1, lambda np, a: np.float64(a) * 0.5),
    "fft": (1, lambda np, a: np.real(np.fft.fft(a)) / 4),
    "normalize": (1, lambda np, a: a / (1.0 + np.linalg.norm(a))),
    "add": (2, lambda np, a, b: np.add(a, b)),
    "mul": (2, lambda np, a, b: a * b),
    "mean_list": (2, lambda np, a, b: np.mean([a, b], axis=0)),
    "array_list": (2, lambda np, a, b: np.array([a, 2 * b])[1] - a),
    "exp_list": (2, lambda np, a, b: np.exp([a, -b]).sum(axis=0) / 4),
    "stack_matmul": (2, lambda np, a, b: np.stack([a, b], axis=1) @ numpy.array([0.3, 0.7])),
    "c_sum": (2, lambda np, a, b: np.sum(np.c_[a, b], axis=1)),
    "r_stride": (2, lambda np, a, b: np.r_[a, b][::2]),
    "concat_fold": (2, lambda np, a, b: np.concatenate([a, b]).reshape(2, -1).T.sum(axis=1)),
    "outer_row": (2, lambda np, a, b: np.outer(a, b).mean(axis=0)),
}


@st.composite
def programs(draw):
    n = draw(st.integers(1, 4))
    steps = []
    for k in range(draw(st.integers(1, 5))):
        name = draw(st.sampled_from(sorted(STEPS)))
        operands = [draw(st.integers(0, k + 1)) for _ in range(STEPS[name][0])]
        steps.append((name, operands))
    elements = st.floats(-1.5, 1.5, allow_nan=False)
    x = numpy.array(draw(st.lists(elements, min_size=n, max_size=n)))
    y = numpy.array(draw(st.lists(elements, min_size=n, max_size=n)))
    weights = numpy.array(draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
    return steps, x, y, weights


def _run(np, steps, weights, x, y):
    pool = [x, y]
    for name, operands in steps:
        pool.append(STEPS[name][1](np, *(pool[i] for i in operands)))
    return np.sum(pool[-1] * weights)


@settings(max_examples=40, deadline=None)
@given(programs())
def test_random_compositions_match_numpy_and_finite_differences(program):
    steps, x, y, weights = program
    note(f"steps {steps}")

    def f(a, b):
        return _run(tnp, steps, weights, a, b)

    want = _run(numpy, steps, weights, x, y)
    numpy.testing.assert_allclose(tg.jit(f)(x, y), want, rtol=1e-9, atol=1e-12)
    gx, gy = tg.grad(f, argnums=(0, 1))(x, y)
    eps = 1e-6
    for got, k in ((gx, 0), (gy, 1)):
        fd = numpy.empty_like(got)
        for i in range(len(fd)):
            args = [x.copy(), y.copy()]
            args[k][i] += eps
            up = _run(numpy, steps, weights, *args)
            args[k][i] -= 2 * eps
            fd[i] = (up - _run(numpy, steps, weights, *args)) / (2 * eps)
        # central differences: error ~ eps**2 * f''' + 1e-16 / eps
        numpy.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-7)


def test_object_arrays_of_traced_values_are_stacked():
    x, y = T.dscalar("x"), T.dscalar("y")
    held = numpy.empty(2, dtype=object)
    held[0], held[1] = x, y
    for out in (tnp.array(held), tnp.stack(held), numpy.stack(held), tnp.exp(held) - 1):
        assert isinstance(out, T.TensorVariable) and out.ndim == 1
    f = tg.function([x, y], [tnp.mean(held), tnp.array(held) * 2])
    mean, doubled = f(1.0, 3.0)
    assert mean == 2.0
    numpy.testing.assert_array_equal(doubled, [2.0, 6.0])
