"""What a user reads when a NumPy function is not supported on symbolic
values, and when they assign into one (exact messages)."""
import numpy as np
import pytest

import tracegrad.tensor as T

TAIL = (" is not supported yet on symbolic (traced) values by tracegrad; the supported "
        "functions are listed in docs/numpy-coverage.md (and are the names of "
        "tracegrad.numpy). It still works on NumPy arrays")


def test_unsupported_numpy_function_is_named_with_its_module():
    x = T.dvector("x")
    with pytest.raises(TypeError) as info:
        np.apply_along_axis(np.sum, 0, x)
    assert str(info.value) == "NumPy function numpy.apply_along_axis" + TAIL


def test_unsupported_function_of_a_submodule_keeps_the_submodule():
    x = T.dvector("x")
    with pytest.raises(TypeError) as info:
        np.lib.stride_tricks.sliding_window_view(x, 2)
    assert str(info.value) == \
        "NumPy function numpy.lib.stride_tricks.sliding_window_view" + TAIL


def test_unsupported_ufunc_method():
    x = T.dvector("x")
    with pytest.raises(TypeError) as info:
        np.add.at(x, [0], 1.0)
    assert str(info.value) == "NumPy's numpy.add.at" + TAIL


def test_unsupported_functions_still_run_on_arrays():
    np.testing.assert_array_equal(np.unique(np.array([2, 1, 2])), [1, 2])


@pytest.mark.parametrize("key, text", [
    (0, "x[0]"),
    ((0, slice(1, None)), "x[0, 1:]"),
    (slice(None, None, 2), "x[::2]"),
    (Ellipsis, "x[...]"),
    ((slice(None), None), "x[:, None]"),
])
def test_item_assignment_says_to_use_set_subtensor(key, text):
    x = T.dmatrix("x")
    with pytest.raises(TypeError) as info:
        x[key] = 1.0
    assert str(info.value) == (
        f"{text} = v: a symbolic (traced) value cannot be assigned to in place. "
        f"Write x = T.set_subtensor({text}, v) (a new value equal to x with {text} "
        f"replaced), or x = T.inc_subtensor({text}, v) for {text} += v")


def test_item_assignment_names_a_symbolic_index_and_an_unnamed_value():
    i = T.lscalar("i")
    y = T.exp(T.dvector())
    with pytest.raises(TypeError, match=r"^x\[i\] = v: .* Write x = "
                       r"T\.set_subtensor\(x\[i\], v\)"):
        y[i] = 0.0


def test_the_suggested_fix_works():
    x = T.dvector("x")
    y = T.set_subtensor(x[0], 5.0)
    np.testing.assert_array_equal(y.eval({x: np.zeros(3)}), [5.0, 0.0, 0.0])
