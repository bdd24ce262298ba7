"""Write docs/numpy-coverage.md: which NumPy (and SciPy special) functions
``tracegrad.numpy`` computes on traced values, and which it differentiates.

Every public callable of ``numpy``, ``numpy.linalg``, ``numpy.fft`` and
``scipy.special`` (classes other than the numeric scalar types left out) is
*probed*, not looked up: it is called through ``tracegrad.numpy`` (SciPy's
through ``tracegrad.scipy.special`` where that exists, else SciPy's own
function, whose ufuncs dispatch) on traced arguments of a few common forms
(vectors, matrices, scalars, integer vectors, with an axis, a count or a
shape). A form counts when the call builds a graph whose value, evaluated,
matches what NumPy/SciPy give for the same arguments as arrays. Then:

- **with gradient**: ``tg.grad`` of the sum of its float outputs with respect
  to the float arguments builds and evaluates;
- **without gradient**: it computes, but gives no gradient (integer or bool
  results, or no rule);
- **not supported**: no form computed.

Usage: ``python tools/coverage_table.py [--check]`` (``--check`` compares with
the committed table instead of writing it).
"""
import argparse
import importlib
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import tracegrad as tg  # noqa: E402
import tracegrad.tensor as T  # noqa: E402
from tracegrad.evaluate import evaluate  # noqa: E402
from tracegrad.trace import Variable  # noqa: E402

TABLE = ROOT / "docs" / "numpy-coverage.md"
MODULES = ["numpy", "numpy.linalg", "numpy.fft", "scipy.special"]
WITH, WITHOUT, NOT = "with gradient", "without gradient", "not supported"

# Argument values: small, inside every common domain (0 < v < 1), a
# symmetric positive definite ``m`` (cholesky, inv, solve, logm...).
VALUES = {
    "v": np.array([0.3, 0.5, 0.7, 0.2]),
    "w": np.array([0.6, 0.4, 0.25, 0.8]),
    "m": np.array([[2.0, 0.5, 0.1], [0.5, 1.5, 0.2], [0.1, 0.2, 1.0]]),
    "n": np.array([[0.3, 0.2, 0.1], [0.4, 0.6, 0.5], [0.9, 0.7, 0.8]]),
    "s": np.array(0.4),
    "k": np.array(3),
    "t": np.arange(1.0, 13.0).reshape(2, 3, 2) / 13,
    "i": np.array([3, 1, 2, 5]),
    "j": np.array([2, 2, 1, 3]),
    "b": np.array([True, False, True, False]),
}


def _symbols():
    return {k: T.tensor(str(v.dtype), shape=v.shape, name=k) for k, v in VALUES.items()}


# The argument forms tried, in order: names of VALUES (traced), or plain
# Python values (any other string too: einsum's subscripts).
FORMS = [
    ("v",), ("m",), ("s",), ("v", "w"), ("m", "n"), ("i",), ("i", "j"),
    ("v", 2), ("m", 1), ("v", (2, 2)), ("m", 0, 1), ("v", 0.25, 0.6),
    ("m", "n", 1), ("s", "v"), ("v", "s"), ("v", "w", "s"), (["v", "w"],),
    ("v", 1.5), ("m", 2), ("v", "i"), ("i", "v"), ("s", (2, 2)), ("v", (3, 4)),
    ("v", np.float32), ("t",), ("t", 2), (["m", "n", "m"],), ("i,i->", "v", "w"),
    ("ij,jk->ik", "m", "n"), ("m", "v"), ("v", "m"), ("m", "m"), ("k",), ("k", "s"),
    (["b"], ["v"]),   # lists of conditions and choices (np.select, np.piecewise)
]


def _fill(form, table):
    """``form`` with each name replaced from ``table`` (lists too)."""
    def one(a):
        if isinstance(a, str) and a in table:
            return table[a]
        if isinstance(a, list):
            return [one(e) for e in a]
        return a
    return [one(a) for a in form]


def _leaves(obj):
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in _leaves(o)]
    return [obj]


def _names(form):
    return {a for a in _leaves(list(form)) if isinstance(a, str) and a in VALUES}


# Functions whose values NumPy leaves unspecified (uninitialised memory):
# only shapes and dtypes are compared, or the table would change from run
# to run.
UNSPECIFIED = frozenset({"empty", "empty_like"})


def _matches(got, want, values=True):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        w = np.asarray(w)
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "biufc":
            return False
        g = np.asarray(g)
        if g.shape != w.shape:
            return False
        if not values:
            if g.dtype != w.dtype:
                return False
        elif not np.allclose(g, w, rtol=1e-6, atol=1e-9, equal_nan=True):
            return False
    return True


def _try_form(fn, ref, form, syms):
    """The status of one argument form, or ``None`` when it does not compute."""
    try:
        out = fn(*_fill(form, syms))
    except Exception:
        return None
    outs = _leaves(out)
    if not outs:
        return None
    try:  # (only now: a function never called on traced values never runs)
        want = ref(*_fill(form, VALUES))
    except Exception:
        return None  # not a valid call for NumPy either
    if not any(isinstance(o, Variable) for o in outs):
        # answered while building the graph (np.ndim(x), np.result_type(x))
        same = len(outs) == len(_leaves(want)) and all(
            type(g) is type(w) and g == w for g, w in zip(outs, _leaves(want)))
        return WITHOUT if same else None
    try:
        outs = [o if isinstance(o, Variable) else T.constant(o) for o in outs]
    except TypeError:
        return None
    given = {syms[k]: VALUES[k] for k in _names(form)}
    try:
        got = evaluate(outs, given)
    except Exception:
        return None
    if not _matches(got, _leaves(want), getattr(ref, "__name__", "") not in UNSPECIFIED):
        return None
    return _gradient_status(outs, [syms[k] for k in sorted(_names(form))], given)


def _gradient_status(outs, inputs, given):
    wrt = [x for x in inputs if x.dtype[0] == "f"]
    costs = [T.sum(T.real(o)) for o in outs if o.dtype[0] in "fc"]
    if not wrt or not costs:
        return WITHOUT
    try:
        grads = tg.grad(sum(costs[1:], costs[0]), wrt, disconnected_inputs="ignore",
                        return_disconnected="none")
        grads = [g for g in grads if g is not None]
        if not grads:
            return WITHOUT
        evaluate(grads, given)
    except Exception:
        return WITHOUT
    return WITH


def callables(modname):
    """``{name: (tracegrad callable, reference callable)}`` of a module's
    public callables (classes other than numeric scalar types left out)."""
    numpy_mod = importlib.import_module(modname)
    if modname == "scipy.special":
        try:
            ours = importlib.import_module("tracegrad.scipy.special")
        except ImportError:
            ours = numpy_mod
    else:
        ours = importlib.import_module("tracegrad." + modname)
    out = {}
    for name in sorted(dir(numpy_mod)):
        if name.startswith("_"):
            continue
        ref = getattr(numpy_mod, name)
        if not callable(ref) or isinstance(ref, type(np)):
            continue
        if isinstance(ref, type) and not (issubclass(ref, np.generic) and
                                          ref in np.sctypeDict.values()):
            continue
        fn = getattr(ours, name, ref)
        out[name] = (fn, ref)
    return out


def probe(fn, ref):
    """The status of one function (``WITH``, ``WITHOUT`` or ``NOT``)."""
    syms = _symbols()
    found = None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for form in FORMS:
            status = _try_form(fn, ref, form, syms)
            if status == WITH:
                return WITH
            found = found or status
    return found or NOT


def classify(modname):
    return {name: probe(fn, ref) for name, (fn, ref) in callables(modname).items()}


def render(results, versions):
    lines = ["# NumPy coverage of `tracegrad.numpy`", "",
             "Generated by `python tools/coverage_table.py` (do not edit by hand; "
             "rerun it after adding functions). " + versions, "",
             "Each public callable was *probed*: called through `tracegrad.numpy` "
             "(`scipy.special`: SciPy's own functions, whose ufuncs dispatch) on "
             "traced vectors, matrices, scalars and integer vectors with a few "
             "common extra arguments; it counts as supported when the graph's "
             "value matches NumPy's for the same arrays, *with gradient* when "
             "`tg.grad` of its float outputs builds and evaluates. *Not supported* "
             "functions still work on NumPy arrays: only traced arguments raise.", "",
             "| module | with gradient | without gradient | not supported | total |",
             "| --- | --- | --- | --- | --- |"]
    for mod, res in results.items():
        counts = [sum(1 for s in res.values() if s == k) for k in (WITH, WITHOUT, NOT)]
        lines.append(f"| `{mod}` | {counts[0]} | {counts[1]} | {counts[2]} | {len(res)} |")
    for mod, res in results.items():
        lines += ["", f"## {mod}", "", "| name | status |", "| --- | --- |"]
        lines += [f"| `{name}` | {status} |" for name, status in sorted(res.items())]
    return "\n".join(lines) + "\n"


def parse(text):
    """``{module: {name: status}}`` read back from a rendered table."""
    results, mod = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            mod = line[3:].strip()
            results[mod] = {}
        elif mod and line.startswith("| `"):
            name, status = (c.strip() for c in line.strip("|").split("|"))
            results[mod][name.strip("`")] = status
    return results


def versions():
    import scipy
    return f"NumPy {np.__version__}, SciPy {scipy.__version__}."


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed table instead of writing it")
    args = parser.parse_args(argv)
    text = render({m: classify(m) for m in MODULES}, versions())
    if args.check:
        if TABLE.read_text() != text:
            print(f"{TABLE} is out of date: run python tools/coverage_table.py")
            return 1
        return 0
    TABLE.write_text(text)
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
