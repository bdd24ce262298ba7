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


def test_no_merge_conflict_markers_are_committed():
    # (a "keep both" merge once left markers in docs/ that nothing else checks)
    found = []
    for folder in ("tracegrad", "tests", "docs", "examples", "bench", "tools"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".md", ".cfg", ".txt", ".toml") or not path.is_file():
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======":
                    found.append(f"{path.relative_to(ROOT)}:{n}")
    for name in ("README.md", "setup.cfg"):
        text = (ROOT / name).read_text()
        found += [name for line in text.splitlines() if line.startswith("<<<<<<< ")]
    assert not found, found
