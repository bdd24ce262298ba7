"""The public API's type hints: ``mypy --strict`` on tests/typing_usage.py
(ordinary tracegrad code) is clean, a wrong call is caught, and the
tensor-constructor stub (tracegrad/tensor/type.pyi) declares every
constructor that type.py makes at import time."""
import ast
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tracegrad.tensor.type import CONSTRUCTORS, TensorType, _FloatXTensorType
from tracegrad.tensor.type import __all__ as TYPE_ALL

ROOT = Path(__file__).resolve().parent.parent
USAGE = ROOT / "tests" / "typing_usage.py"
STUB = ROOT / "tracegrad" / "tensor" / "type.pyi"

# Code a type checker must reject: shared's name is a str (line 5); item
# assignment to a symbolic array, refused at run time too (line 6); a
# keyword T.sum does not take (line 7); two arguments to the one-input
# T.exp (line 8); an op's result is a TensorVariable, not an array (line 9).
WRONG = '''
import numpy as np
import tracegrad as tg
import tracegrad.tensor as T
tg.shared(np.zeros(2), name=3)
T.dvector()[0] = 1.0
T.sum(T.dvector(), axes=0)
T.exp(T.dvector(), T.dvector())
a: np.ndarray = T.dot(T.dmatrix(), T.dmatrix())
'''


def _mypy_available():
    try:
        import mypy  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _mypy_available(), reason="mypy is not installed (pip install mypy)")
def test_mypy_strict_is_clean_on_the_public_surface_and_catches_a_wrong_call(tmp_path):
    wrong = tmp_path / "wrong_usage.py"
    wrong.write_text(WRONG)
    # One run for both files (mypy's start-up dominates); errors inside
    # tracegrad's own modules are not this check's subject (silent imports).
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
         str(USAGE), str(wrong)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert not [line for line in lines if "typing_usage.py" in line], proc.stdout
    assert [line for line in lines if "wrong_usage.py:5:" in line and '"name"' in line], \
        proc.stdout + proc.stderr
    assert [line for line in lines if "wrong_usage.py:6:" in line], proc.stdout
    assert [line for line in lines if "wrong_usage.py:7:" in line and '"axes"' in line], \
        proc.stdout
    assert [line for line in lines if "wrong_usage.py:8:" in line and '"exp"' in line], \
        proc.stdout
    assert [line for line in lines if "wrong_usage.py:9:" in line and "TensorVariable" in line], \
        proc.stdout


def test_op_stubs_are_current():
    """tracegrad/ops/api.pyi and the T.nnet/T.nlinalg/T.fft stubs are what
    tools/op_stubs.py writes (its probes run in their own process)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "op_stubs.py"), "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_usage_file_runs():
    runpy.run_path(str(USAGE), run_name="__main__")


def _stub_declarations():
    tree = ast.parse(STUB.read_text())
    declared, listed = {}, None
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared[node.target.id] = ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign) and node.targets[0].id == "__all__":
            listed = ast.literal_eval(node.value)
    return declared, listed


def test_stub_declares_every_constructor_with_its_kind():
    declared, listed = _stub_declarations()
    expected = {}
    for name, ctor in CONSTRUCTORS.items():
        if isinstance(ctor, _FloatXTensorType):
            expected[name] = "_FloatXTensorType"
        elif isinstance(ctor, TensorType):
            expected[name] = "TensorType"
        else:
            expected[name] = "_Plural"
    assert {n: declared.get(n) for n in expected} == expected
    assert listed == list(TYPE_ALL)


def test_py_typed_marker_is_shipped():
    assert (ROOT / "tracegrad" / "py.typed").is_file()
    cfg = (ROOT / "setup.cfg").read_text()
    assert "py.typed" in cfg and "*.pyi" in cfg



def _stub_class_members(path):
    tree = ast.parse(path.read_text())
    members = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
            members[node.name] = names
    return members


def test_variable_stub_declares_every_public_member_of_symbolic_arrays():
    from tracegrad.tensor import variable
    declared = _stub_class_members(ROOT / "tracegrad" / "tensor" / "variable.pyi")
    for cls in (variable._TensorMixin, variable.TensorVariable, variable.TensorConstant):
        public = {n for n in vars(cls) if not n.startswith("_")
                  or (n.startswith("__") and n.endswith("__") and callable(vars(cls)[n]))}
        public -= {"__init_subclass__", "__subclasshook__", "__setitem__"}  # (see the stub)
        if cls is variable.TensorConstant:
            public -= {"__slots__"}
        missing = public - declared[cls.__name__]
        assert not missing, f"tracegrad/tensor/variable.pyi lacks {cls.__name__}.{sorted(missing)}"
