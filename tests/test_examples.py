"""Smoke test: every script in ``examples/`` runs to the end with short
settings (``TRACEGRAD_EXAMPLE_STEPS``), each in its own subprocess, prints
what it promises and its progress lines, and writes its PNG (to a temporary
folder) when matplotlib is installed, or says once that it is not (also
checked with matplotlib blocked); and every ```python block of the user
documentation runs as written."""
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
    "contractive_autoencoder.py": (1, "final reconstruction cost", ()),
    "rbm.py": (1, "final pseudo-likelihood cost", ()),
    "data_parallel.py": (2, "final loss", ("mpi4py",)),
}
# The examples that train something, and so print progress lines.
UNTRAINED = {"tour.py"}
# A progress line (examples/_common.py Progress): "epoch 1/4  loss 1.7  3.3 batches/s".
PROGRESS_LINE = re.compile(r"^\w+ +1/\d+  .*  [\d.e+]+ \w+/s$", re.M)
NOTICE = "matplotlib is not installed"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _importable(module):
    # An import, not find_spec: a module blocked or broken at import time counts as missing.
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


HAVE_MATPLOTLIB = _importable("matplotlib")

# Runs an example as ``python examples/NAME.py ARGS`` would, with the modules
# named in argv[1] (comma-separated) made unimportable, as if not installed.
BLOCKING_RUNNER = """
import importlib.abc, runpy, sys
blocked = sys.argv[1].split(",")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, Block())
script = sys.argv[2]
sys.argv = sys.argv[2:]
sys.path.insert(0, script.rsplit("/", 1)[0])
runpy.run_path(script, run_name="__main__")
"""


def example_scripts():
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_has_settings():
    assert example_scripts() == sorted(SETTINGS)


@pytest.mark.parametrize("name", example_scripts())
def test_every_example_uses_the_shared_options(name):
    # --steps/--plot/--no-plot and the matplotlib notice live in _common.parse_args.
    assert "parse_args(__doc__" in (EXAMPLES / name).read_text()


def _missing(modules):
    return [m for m in modules if not _importable(m)]


def run_example(name, tmp_path, *args, steps=None, block=()):
    """Run ``examples/name`` with ``args`` in ``tmp_path``; its CompletedProcess."""
    env = dict(os.environ, TRACEGRAD_EXAMPLE_STEPS=str(steps or SETTINGS[name][0]),
               MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    script = str(EXAMPLES / name)
    command = ([sys.executable, "-c", BLOCKING_RUNNER, ",".join(block), script] if block
               else [sys.executable, script])
    return subprocess.run(command + list(args), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_example_runs(name, tmp_path):
    steps, expected, needs = SETTINGS[name]
    missing = _missing(needs)
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)} (pip install 'tracegrad[examples]')")
    png = tmp_path / "out" / (name[:-3] + ".png")
    proc = run_example(name, tmp_path, "--plot", str(png))
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert expected in proc.stdout, f"{name} did not print {expected!r}:\n{proc.stdout}"
    if name not in UNTRAINED:
        assert PROGRESS_LINE.search(proc.stdout), f"{name}: no progress line:\n{proc.stdout}"
    if HAVE_MATPLOTLIB:
        assert png.read_bytes()[:8] == PNG_MAGIC, f"{name} wrote no PNG:\n{proc.stdout}"
        assert f"saved {png}" in proc.stdout
    else:
        assert proc.stdout.count(NOTICE) == 1, proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == (["out"] if HAVE_MATPLOTLIB else []), \
        f"{name} wrote files other than its --plot PATH"


def test_without_matplotlib_says_so_once_and_carries_on(tmp_path):
    proc = run_example("minimize.py", tmp_path, block=("matplotlib",))
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stdout.splitlines() if NOTICE in line]
    assert notices == ["matplotlib is not installed: not writing minimize.png "
                       "(pip install matplotlib; --no-plot silences this)"], proc.stdout
    assert "final point" in proc.stdout and PROGRESS_LINE.search(proc.stdout)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="needs matplotlib")
def test_default_plot_is_name_png_in_the_current_directory(tmp_path):
    proc = run_example("minimize.py", tmp_path, steps=2)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "minimize.png").read_bytes()[:8] == PNG_MAGIC
    assert "saved minimize.png" in proc.stdout


def test_no_plot_writes_nothing_and_prints_no_notice(tmp_path):
    proc = run_example("minimize.py", tmp_path, "--no-plot", steps=2)
    assert proc.returncode == 0, proc.stderr
    assert NOTICE not in proc.stdout and "saved" not in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_mlp_digits_without_sklearn_fails_with_an_install_hint(tmp_path):
    proc = run_example("mlp_digits.py", tmp_path, block=("sklearn",))
    assert proc.returncode != 0
    assert proc.stderr.strip() == ("mlp_digits.py needs scikit-learn, which is not installed: "
                                   "pip install scikit-learn  "
                                   "(or pip install 'tracegrad[examples]')")
    assert "epoch" not in proc.stdout and "accuracy" not in proc.stdout


def _common_module():
    spec = importlib.util.spec_from_file_location("examples_common", EXAMPLES / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_progress_prints_the_first_and_every_tenth_of_the_steps(capsys):
    progress = _common_module().Progress(100, label="epoch", per_step=4, rate_unit="batches")
    shown = [step for step in range(1, 101) if progress(step, 1 / step, accuracy=0.5)]
    assert shown == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(shown)
    assert re.fullmatch(r"epoch   1/100  loss 1  accuracy 0\.5  [\d.e+]+ batches/s", lines[0])
    assert re.fullmatch(r"epoch 100/100  loss 0\.01  accuracy 0\.5  [\d.e+]+ batches/s",
                        lines[-1])


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
