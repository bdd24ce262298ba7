"""``pp``, ``debugprint`` and ``to_dot``."""
import io
import os
import re
import stat

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad import printing
from tracegrad.printing import debugprint, pp, to_dot
from tracegrad.trace import Apply, Op

# Names pp prints, bound to NumPy, so that pp's text can be run as Python.
NUMPY_NAMES = {"exp": np.exp, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
               "log": np.log, "log1p": np.log1p, "sqrt": np.sqrt, "sqr": np.square,
               "abs": np.abs, "maximum": np.maximum, "minimum": np.minimum}


def run_pp_text(text, values):
    """Execute pp's output (bindings then the expression) with NumPy."""
    env = dict(NUMPY_NAMES, **values)
    *bindings, last = text.split("\n")
    for line in bindings:
        name, expr = line.split(" = ", 1)
        env[name.replace("%", "_")] = eval(expr.replace("%", "_"), env)
    return eval(last.replace("%", "_"), env)


# ------------------------------------------------------------------- pp
def test_pp_infix_add():
    x, y = T.dscalars("x", "y")
    assert tg.pp(x + y) == "(x + y)"
    assert tg.pp is printing.pp


@pytest.mark.parametrize("build, text", [
    (lambda x, y: x - y, "(x - y)"),
    (lambda x, y: x * y, "(x * y)"),
    (lambda x, y: x / y, "(x / y)"),
    (lambda x, y: x ** y, "(x ** y)"),
    (lambda x, y: x // y, "(x // y)"),
    (lambda x, y: -x, "(-x)"),
    (lambda x, y: x < y, "(x < y)"),
    (lambda x, y: T.exp(x), "exp(x)"),
    (lambda x, y: T.maximum(x, y), "maximum(x, y)"),
    (lambda x, y: T.exp(x * y) + T.sin(y), "(exp((x * y)) + sin(y))"),
    (lambda x, y: T.switch(x < y, x, y), "switch((x < y), x, y)"),
    (lambda x, y: T.clip(x, 0.0, 1.0), "clip(x, 0.0, 1.0)"),
    (lambda x, y: T.cast(x, "float32"), "cast(x, float32)"),
])
def test_pp_operators_and_functions(build, text):
    x, y = T.dscalars("x", "y")
    assert pp(build(x, y)) == text


def test_pp_constants_print_their_values():
    x = T.dvector("x")
    assert pp(x * 2.0) == "(x * 2.0)"
    assert pp(x + np.array([1.0, 2.5])) == "(x + [1.0, 2.5])"
    big = pp(x + np.zeros((100, 1)))
    assert "shape=(100, 1)" in big and "float64" in big
    named = T.constant(np.float64(3.0), name="three")
    assert pp(x * named) == "(x * three)"


def test_pp_leaves():
    x = T.dmatrix("x")
    assert pp(x) == "x"
    unnamed = T.dvector()
    assert "float64" in pp(unnamed + 1)
    assert pp(T.constant(1.5)) == "1.5"


def test_pp_reductions_function_style():
    x = T.dmatrix("x")
    assert pp(T.sum(x, axis=0)) == "sum(x, axis=0)"
    assert pp(T.max(x, axis=1, keepdims=True)) == "max(x, axis=1, keepdims=True)"


def test_pp_text_computes_the_expression():
    x, y = T.dscalars("x", "y")
    expr = T.tanh(x * y - T.exp(y) / (1.0 + x ** 2)) + T.sqr(T.sin(x)) * -y
    values = {"x": 0.3, "y": -1.7}
    f = expr.eval({x: 0.3, y: -1.7})
    assert np.allclose(run_pp_text(pp(expr), values), f)


def test_pp_gradient_is_a_readable_expression():
    x = T.dscalar("x")
    g = tg.grad(x ** 2, x)
    text = pp(g)
    assert "x" in text and "**" in text
    assert "<" not in text and "object at" not in text and "%" not in text
    assert text.count("(") == text.count(")")
    assert float(g.eval({x: 4.0})) == 8.0


def test_pp_shared_subexpressions_are_bound_not_repeated():
    x = T.dscalar("x")
    w = x
    for _ in range(30):  # expanding this as a tree would take ~4**30 characters
        w = T.tanh(w * w + w)
    text = pp(w)
    assert len(text) < 20_000
    assert text.splitlines()[0].startswith("%1 = ")
    expected = float(w.eval({x: 0.3}))
    assert np.isclose(run_pp_text(text, {"x": 0.3}), expected)


def test_pp_small_shared_subexpressions_are_expanded():
    x = T.dscalar("x")
    e = T.exp(x)
    assert pp(e * e + e) == "((exp(x) * exp(x)) + exp(x))"


class TwoOutputs(Op):
    """A test op with two outputs (value and its negation)."""

    def make_node(self, x):
        return Apply(self, [x], [x.type(), x.type()])

    def impl(self, xp, x):
        return x, -x


class MatPlus(Op):
    __props__ = ("alpha",)

    def __init__(self, alpha):
        self.alpha = alpha

    def make_node(self, a, b):
        return Apply(self, [a, b], [a.type()])


def test_pp_multi_output_ops_and_props():
    x = T.dvector("x")
    a, b = TwoOutputs()(x)
    assert pp(a + b) == "(two_outputs(x)[0] + two_outputs(x)[1])"
    assert pp(MatPlus(0.5)(x, x)) == "mat_plus(x, x, alpha=0.5)"


def test_register_formatter():
    class Affine(Op):
        def make_node(self, a, b):
            return Apply(self, [a, b], [a.type()])

    printing.register_formatter(Affine, lambda node, i: ["<", i[0], " | ", i[1], ">"])
    x, y = T.dvectors("x", "y")
    assert pp(T.exp(Affine()(x, y))) == "exp(<x | y>)"


def test_pp_list_and_bad_input():
    x, y = T.dscalars("x", "y")
    assert pp([x + y, x * y]) == "(x + y)\n(x * y)"
    with pytest.raises(TypeError):
        pp(3.0)


# ------------------------------------------------------------ debugprint
def test_debugprint_format():
    x, y = T.dscalars("x", "y")
    z = x + y
    z.name = "z"
    text = debugprint(z, file="str")
    assert text == (
        "Elemwise{add,no_inplace} [id A] <TensorType(float64, scalar)> 'z'\n"
        " |x [id B] <TensorType(float64, scalar)>\n"
        " |y [id C] <TensorType(float64, scalar)>\n")
    assert debugprint(z, file="str", print_type=False) == (
        "Elemwise{add,no_inplace} [id A] 'z'\n |x [id B]\n |y [id C]\n")


def test_debugprint_layout_is_theanos():
    # Theano's layout: '' after an unnamed computed value, nothing after a
    # leaf, and the last child's subtree hangs from a blank column
    x, y = T.dscalars("x", "y")
    z = T.exp(x) * T.log(y + 1.0)
    assert debugprint(z, file="str", print_type=False) == (
        "Elemwise{mul,no_inplace} [id A] ''\n"
        " |Elemwise{exp,no_inplace} [id B] ''\n"
        " | |x [id C]\n"
        " |Elemwise{log,no_inplace} [id D] ''\n"
        "   |Elemwise{add,no_inplace} [id E] ''\n"
        "     |y [id F]\n"
        "     |TensorConstant{1.0} [id G]\n")


def test_debugprint_of_a_function_numbers_nodes_in_run_order():
    x = T.dvector("x")
    f = tg.function([x], T.exp(x) * T.sum(x))
    lines = debugprint(f, file="str", print_type=False).splitlines()
    order = {node: k for k, node in enumerate(f.maker.fgraph.toposort())}
    root = f.maker.fgraph.outputs[0].owner
    assert lines[0].endswith(f"''   {order[root]}")
    assert re.fullmatch(r" \|sum\{axis=0\} \[id \w+\] ''   \d+", lines[2])
    assert lines[1] == " |x [id B]" and lines[3] == "   |x [id B]"


def test_debugprint_reused_subtree_printed_once():
    x = T.dvector("x")
    e = T.exp(x)
    out = e * e + T.sum(e)
    lines = debugprint(out, file="str", print_type=False).splitlines()
    exp_lines = [ln for ln in lines if "Elemwise{exp,no_inplace}" in ln]
    assert len(exp_lines) == 3
    ident = re.search(r"\[id (\w+)\]", exp_lines[0]).group(1)
    assert all(f"[id {ident}]" in ln for ln in exp_lines)
    # x appears only under the first exp: the repeats are not expanded.
    assert sum(1 for ln in lines if ln.lstrip(" |").startswith("x ")) == 1


def test_debugprint_constants_lists_and_apply():
    x = T.dvector("x")
    y = x * 2.0
    text = debugprint([y, T.exp(x)], file="str", print_type=False)
    assert "TensorConstant{2.0}" in text
    assert text.splitlines()[0] == "Elemwise{mul,no_inplace} [id A] ''"
    assert "Elemwise{exp,no_inplace}" in text
    assert debugprint(y.owner, file="str") == debugprint(y, file="str")


def test_debugprint_writes_to_stdout_and_files(capsys):
    x = T.dscalar("x")
    import sys
    assert debugprint(T.exp(x)) is sys.stdout
    assert "Elemwise{exp,no_inplace}" in capsys.readouterr().out
    buf = io.StringIO()
    assert debugprint(T.exp(x), file=buf) is buf
    assert buf.getvalue().startswith("Elemwise{exp,no_inplace}")


def test_debugprint_depth_and_long_chains():
    x = T.dscalar("x")
    y = x
    for _ in range(10):
        y = T.sin(y)
    assert len(debugprint(y, file="str", depth=3).splitlines()) == 4
    text = debugprint(y, file="str", print_type=False, max_indent=4)
    lines = text.splitlines()
    assert len(lines) == 11 + 2  # every node once, plus the two repeated heads
    assert max(len(ln) - len(ln.lstrip(" |")) for ln in lines) <= 2 * 4
    assert sum(ln.endswith(" ...") for ln in lines) == 2


def test_debugprint_multi_output_and_names():
    x = T.dvector("x")
    a, b = TwoOutputs()(x)
    text = debugprint(a + b, file="str", print_type=False)
    assert "TwoOutputs.0 [id B]" in text and "TwoOutputs.1 [id B]" in text


class _FakeFGraph:
    def __init__(self, outputs):
        self.outputs = outputs
        self.inputs = []


class _FakeFunction:
    """What debugprint reads from a compiled function: ``maker.fgraph``."""

    def __init__(self, outputs):
        self.maker = type("Maker", (), {"fgraph": _FakeFGraph(outputs)})()


def test_debugprint_reads_the_compiled_graph_of_a_function():
    x = T.dscalar("x")
    fake = _FakeFunction([T.exp(x)])
    assert debugprint(fake, file="str") == debugprint(T.exp(x), file="str")


def test_debugprint_real_compiled_function():
    x, y = T.dscalars("x", "y")
    f = tg.function([x, y], T.exp(x) * y)
    text = debugprint(f, file="str")
    assert "x [id" in text and "y [id" in text
    assert np.isclose(f(0.0, 3.0), 3.0)


def test_debugprint_rejects_other_objects():
    with pytest.raises(TypeError):
        debugprint(42, file="str")


# ---------------------------------------------------------------- to_dot
def test_to_dot_text():
    x, y = T.dscalars("x", "y")
    z = T.exp(x) * y
    text = to_dot(z)
    assert text.startswith("digraph")
    assert text.rstrip().endswith("}")
    assert '"Elemwise{exp,no_inplace}"' in text and '"Elemwise{mul,no_inplace}"' in text
    assert text.count("->") == 4  # x->exp, exp->mul, y->mul, mul->output
    assert 'label="x\\nfloat64 ()"' in text


def test_to_dot_writes_dot_files(tmp_path):
    x = T.dscalar("x")
    path = tmp_path / "g.dot"
    text = to_dot(T.exp(x), file=str(path))
    assert path.read_text() == text


def test_to_dot_without_graphviz_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(printing.shutil, "which", lambda name: None)
    x = T.dscalar("x")
    with pytest.raises(RuntimeError, match="Graphviz"):
        to_dot(T.exp(x), file=str(tmp_path / "g.png"))
    assert "digraph" in to_dot(T.exp(x))


def test_to_dot_calls_the_dot_program(tmp_path, monkeypatch):
    # A stand-in for Graphviz: records its arguments and copies stdin to -o.
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\n'
                    'while [ "$1" != "-o" ]; do shift; done\ncat > "$2"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(printing.shutil, "which", lambda name: str(fake))
    x = T.dscalar("x")
    out = tmp_path / "g.svg"
    text = to_dot(T.exp(x), file=str(out))
    assert out.read_text() == text
    assert (tmp_path / "args").read_text().split() == ["-Tsvg", "-o", str(out)]


@pytest.mark.skipif(printing.shutil.which("dot") is None, reason="Graphviz not installed")
def test_to_dot_renders_with_graphviz(tmp_path):
    x = T.dscalar("x")
    out = tmp_path / "g.png"
    to_dot(T.exp(x) + x, file=str(out))
    assert out.read_bytes()[:4] == b"\x89PNG" and os.path.getsize(out) > 100


def test_min_informative_str_tags_and_repeats():
    """Theano's ``min_informative_str``: named variables end the walk, a
    repeated variable prints as its tag, ``indent_level`` shifts it all."""
    import tracegrad as tg
    import tracegrad.tensor as T
    x, y = T.dscalars("x", "y")
    s = x + y
    z = s * T.exp(s)
    assert tg.printing.min_informative_str(z) == "\n".join(
        ["A. mul", " B. add", "  C. x", "  D. y", " E. exp", "  <B>"])
    s.name = "s"
    assert tg.printing.min_informative_str(z, indent_level=1) == "\n".join(
        [" A. mul", "  B. s", "  C. exp", "   <B>"])
    w = T.dvector()
    many = w
    for _ in range(30):                     # tags past Z: AA, AB, ...
        many = T.exp(many)
    assert "AD. " in tg.printing.min_informative_str(many)


def test_theano_verify_grad_path():
    import tracegrad.tensor as T
    from tracegrad.testing import verify_grad
    assert T.verify_grad is verify_grad
