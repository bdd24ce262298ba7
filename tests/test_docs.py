"""The README's set-up commands, the generated Theano-names table and the
porting guide: what CI runs is what the README says, the table is current,
and the guide gives a replacement for every Theano name tracegrad lacks."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TEST_COMMAND = ("pip install -e '.[test]' && python -m pytest -q "
                "&& python tests/compiled_tier.py")


def _first_bash_block():
    match = re.search(r"^```bash\n(.*?)^```", README, re.S | re.M)
    assert match, "README has no bash block"
    return match.group(1).splitlines()


def test_readme_opens_with_the_set_up_commands_from_a_clone_into_a_venv():
    # The set-up block comes before any other section.
    assert README.index("```bash") < README.index("\n## ")
    lines = _first_bash_block()
    assert lines[0].startswith("git clone ")
    assert ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . "
            "&& python examples/logistic_regression.py") in lines
    assert TEST_COMMAND in lines


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert TEST_COMMAND in ci and TEST_COMMAND in _first_bash_block()


def test_readme_links_the_guides_and_generated_tables():
    for target in ("docs/user-guide.md", "docs/porting-from-theano.md",
                   "docs/theano-names.md", "docs/numpy-coverage.md"):
        assert f"]({target}" in README, target
        assert (ROOT / target).is_file(), target


def test_theano_names_table_is_current():
    # theano.sparse's names are looked up in tracegrad.sparse, which needs SciPy.
    pytest.importorskip("scipy")
    # A fresh process: which submodules other tests imported must not matter.
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "theano_names.py"), "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_porting_guide_names_every_theano_name_that_differs_or_is_missing():
    pytest.importorskip("scipy")
    table = (ROOT / "docs" / "theano-names.md").read_text()
    guide = (ROOT / "docs" / "porting-from-theano.md").read_text()
    quoted = " ".join(re.findall(r"`([^`]*)`", guide))
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    names = [r for r in rows if r.count("|") == 3]       # | `name` | where |
    totals = [int(r.split("|")[-2]) for r in rows if r.count("|") == 6]
    assert names and len(names) == sum(totals), "the table's rows were not all read"
    lacking = sorted({r.split("`")[1] for r in names
                      if "elsewhere:" in r or "| missing" in r})
    left_out = [n for n in lacking if not re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", quoted)]
    assert not left_out, f"docs/porting-from-theano.md does not mention {left_out}"
