"""The package stays free of pyflakes findings (undefined names, unused
imports): ``ruff check --select F`` over ``tracegrad/``."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_select_f_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "F", "--output-format",
         "concise", "tracegrad"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
