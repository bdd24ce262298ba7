"""Values tracegrad would misread are refused with an error naming them:
masked arrays (the mask would be dropped) and arrays whose dtype has no
tensor type (datetime, timedelta, structured, object, string)."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T

MASKED = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
UNSUPPORTED = [
    (np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[D]"),
     "datetime64"),
    (np.array([1, 2, 3], dtype="timedelta64[s]"), "timedelta64"),
    (np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]), r"\[\('a'"),
    (np.array([1.0, 2.0, 3.0], dtype=object), "object"),
    (np.array(["a", "b", "c"]), "<U1"),
]


def test_function_refuses_a_masked_array_naming_the_input():
    x = T.dvector("x")
    f = tg.function([x], x * 2)
    with pytest.raises(TypeError, match=r"input 'x'.*MaskedArray.*mask"):
        f(MASKED)
    with pytest.raises(TypeError, match=r"input 'x'.*MaskedArray"):
        tg.function([x], x * 2, allow_input_downcast=True)(MASKED)


def test_jit_refuses_a_masked_array_naming_the_argument():
    f = tg.jit(lambda params: params["w"] * 2)
    with pytest.raises(TypeError, match=r"argument params\['w'\] is a numpy.ma.MaskedArray"):
        f({"w": MASKED})


def test_shared_and_constants_refuse_masked_arrays():
    with pytest.raises(TypeError, match="shared variable 'w'.*MaskedArray"):
        tg.shared(MASKED, name="w")
    w = tg.shared(np.zeros(3), name="w")
    with pytest.raises(TypeError, match="shared variable 'w'.*MaskedArray"):
        w.set_value(MASKED)
    with pytest.raises(TypeError, match="MaskedArray"):
        T.dvector("x") + MASKED


@pytest.mark.parametrize("value, dtype", UNSUPPORTED)
def test_function_refuses_unsupported_dtypes_naming_input_and_dtype(value, dtype):
    x = T.dvector("x")
    f = tg.function([x], x + 1, allow_input_downcast=True)
    with pytest.raises(TypeError, match=rf"input 'x'.* has dtype {dtype}"):
        f(value)


@pytest.mark.parametrize("value, dtype", UNSUPPORTED)
def test_jit_refuses_unsupported_dtypes_naming_argument_and_dtype(value, dtype):
    f = tg.jit(lambda a, b: a + b)
    with pytest.raises(TypeError, match=rf"argument b has dtype {dtype}"):
        f(np.ones(3), value)


def test_supported_values_still_pass():
    x = T.dvector("x")
    f = tg.function([x], x + 1)
    np.testing.assert_array_equal(f(np.arange(3)), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(f([1, 2]), [2.0, 3.0])
    np.testing.assert_array_equal(tg.jit(lambda a: a * 2)(np.float32([1, 2])), [2.0, 4.0])


@pytest.mark.parametrize("c_test", [True, False])   # (one C call, or Python's expression)
@pytest.mark.parametrize("n", [3, 12])   # (12: checked in one pass, ``batch_filter``)
def test_many_inputs_are_checked_and_cast_as_one_by_one(n, c_test, monkeypatch):
    from tracegrad.compile import inputs
    from tracegrad.compile.inputs import BATCH_INPUTS, batch_filter
    if not c_test:
        monkeypatch.setattr(inputs, "_CHECKER", [None])     # (as without a compiler)
    xs = [T.dvector(f"x{k}") for k in range(n - 2)]
    row, scalar = T.TensorType("float64", (None, 3))("row"), T.dscalar("s")
    f = tg.function(xs + [row, scalar], sum(x.sum() for x in xs) + row.sum() * scalar)
    check = batch_filter(f._filters, np.ndarray)
    assert (check is not None) == (n >= BATCH_INPUTS)
    if check is not None:
        assert ("c_check" in check.__globals__) == (c_test and inputs._checker() is not None)
    args = [np.arange(3.0) + k for k in range(n - 2)] + [np.ones((2, 3)), np.array(2.0)]
    want = sum(a.sum() for a in args[:-2]) + 12.0
    assert f(*args) == want
    assert f(*args[:-1], s=args[-1]) == want    # (the arguments bound into a list)
    assert f(*args[:-2], np.ones((1, 3)), args[-1]) == want - 6.0   # (any length on axis 0)
    for k, value in ((0, [0.0, 1.0, 2.0]), (n - 3, np.arange(n - 3.0, n, dtype=np.int32)),
                     (n - 1, 2.0)):     # (cast as the one-by-one filters do)
        assert f(*args[:k], value, *args[k + 1:]) == want
    with pytest.raises(TypeError, match=f"input 'x{n - 3}'.*wrong number of dimensions"):
        f(*args[:n - 3], np.ones((3, 1)), *args[n - 2:])
    with pytest.raises(TypeError, match="input 'row'.*axis 1 has length 4"):
        f(*args[:-2], np.ones((2, 4)), args[-1])
    with pytest.raises(TypeError, match=r"input 'x0'.*MaskedArray"):
        f(MASKED, *args[1:])
