"""Smoke test: every script in ``examples/`` runs to the end with short
settings (``TRACEGRAD_EXAMPLE_STEPS``), each in its own subprocess, and
prints what it promises (plots go to a temporary folder); and every
```python block of the user documentation runs as written."""
import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# name -> (short step count, text the output must contain, modules it needs)
SETTINGS = {
    "tour.py": (1, "max |tg.grad - analytic|", ()),
    "logistic_regression.py": (3, "training accuracy", ()),
    "minimize.py": (5, "final point", ()),
    "hmc.py": (8, "acceptance rate", ()),
    "mlp_digits.py": (1, "test accuracy", ("sklearn",)),
    "rnn_scan.py": (3, "validation loss", ()),
    "numpy_model.py": (3, "final loss", ()),
    "lenet.py": (1, "test accuracy", ()),
    "denoising_autoencoder.py": (1, "final reconstruction cost", ()),
    "rbm.py": (1, "final pseudo-likelihood cost", ()),
    "data_parallel.py": (2, "final loss", ("mpi4py",)),
}


def example_scripts():
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_has_settings():
    assert example_scripts() == sorted(SETTINGS)


def _missing(modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_example_runs(name, tmp_path):
    steps, expected, needs = SETTINGS[name]
    missing = _missing(needs)
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)} (pip install 'tracegrad[examples]')")
    env = dict(os.environ, TRACEGRAD_EXAMPLE_STEPS=str(steps),
               TRACEGRAD_EXAMPLE_OUTPUT=str(tmp_path), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert expected in proc.stdout, f"{name} did not print {expected!r}:\n{proc.stdout}"
    if name != "logistic_regression.py" and importlib.util.find_spec("matplotlib"):
        assert list(tmp_path.glob("*.png")), f"{name} wrote no plot:\n{proc.stdout}"


# Documents whose ```python blocks run top to bottom in one namespace each
# (```text blocks are shown, not run).
DOCUMENTS = ["docs/user-guide.md", "README.md"]


def python_blocks(path):
    text = (ROOT / path).read_text()
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_code_runs(document, tmp_path, monkeypatch):
    blocks = python_blocks(document)
    assert blocks, f"{document} has no python blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_example__"}
    for k, block in enumerate(blocks):
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(compile(block, f"{document} block {k + 1}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(
                    f"{document}, python block {k + 1} failed: {exc!r}\n{block}") from exc
