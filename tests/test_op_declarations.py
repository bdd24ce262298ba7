"""Every op's declarations (``trace.Op``: ``OP_HOOKS``) hold on random inputs.

The registries are walked, so a new op is checked without a line here:

- every elementwise row (``ops/elemwise.py``'s table, casts included) against
  its own facts: ``commutative``, ``associative`` (exactly for integers, up to
  rounding for floats), ``identity``, ``inverse_of``, ``negation``,
  ``positive``, ``positive_if_inputs``, ``finite_if_inputs``,
  ``zero_or_inf_at_inf``, ``bounded``, and the operator ``symbol`` it is
  printed with;
- every node of the graphs of the op tables (``tests/test_ops_*.py``'s
  ``CASES``: the graph, its gradient and the optimized graph) against its op's
  facts on the values it computes: the static shape rule (``make_node``)
  against the forward's shapes, ``shape_relation``, ``selects``,
  ``broadcasts``, ``positive``, ``finite_if_inputs``, ``commutative``; and
  every op class that declares a fact is met by that walk.

Then: the rewrites read the declarations, not tables of names (a new row or
op class with a fact is used by ``algebra``/``ieee``/``pattern`` as it is).
"""
import importlib
import pathlib

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.fuse  # noqa: F401 (registers the fused ops' classes)
import tracegrad.scan  # noqa: F401
import tracegrad.tensor as T
from optable import symbolic_like
from tracegrad.ops import elemwise as ew
from tracegrad.ops import nnet
from tracegrad.rewrite import algebra as al
from tracegrad.rewrite import ieee
from tracegrad.rewrite.pattern import match
from tracegrad.evaluate import run_node
from tracegrad.trace import OP_HOOKS, Apply, Constant, Op, toposort

# Every op table (``tests/test_ops_*.py`` with its ``CASES``).
TABLE_MODULES = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("test_ops_*.py"))
# Declarations an op class may make (the others in OP_HOOKS are machinery).
FACTS = ("positive", "positive_if_inputs", "finite_if_inputs", "zero_or_inf_at_inf",
         "bounded", "selects", "broadcasts", "commutative", "associative", "identity",
         "inverse_of", "negation", "shape_relation")
FLAGS = [f for f in FACTS if f not in ("identity", "inverse_of", "shape_relation")]


def _rows():
    return ew.ROWS() + [ew.CastRow("float32"), ew.CastRow("int64"), ew.CastRow("bool")]


def _op_classes():
    found, stack = [], [Op]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return [c for c in found if c is not Op and not c.__name__.startswith("_")
            and c.__module__.startswith("tracegrad.")]


def _declares_facts(cls):
    return any(f in vars(base) for base in cls.__mro__[:-2] for f in FACTS)


# ------------------------------------------------------------ the base class
def test_op_declares_every_hook_with_a_default():
    op = Op()
    for name in OP_HOOKS:
        assert hasattr(Op, name), f"Op does not declare {name}"
    for name in FLAGS:
        assert getattr(op, name) is False, name
    assert op.identity is None and op.inverse_of is None and op.scalar_op is None
    assert op.shape_relation(None) is None
    assert op.inplace_version is None and op.impl_for is None
    assert not op.is_random and op.constant_foldable and not op.foldable
    # ... and every one is documented in docs/ARCHITECTURE.md
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "ARCHITECTURE.md").read_text()
    section = doc[doc.index("## Op declarations (issue 15)"):]
    missing = [name for name in OP_HOOKS if f"`{name}" not in section]
    assert not missing, f"hooks not documented: {missing}"


def test_elemwise_answers_its_rows_facts():
    for row in _rows():
        op = ew.Elemwise(row)
        for fact in ew.ROW_FACTS:
            assert getattr(op, fact) == getattr(row, fact), (row.name, fact)


def test_row_facts_are_well_formed():
    names = {r.name for r in ew.ROWS()}
    for row in _rows():
        for fact in ew.ROW_FACTS:
            value = getattr(row, fact)
            if fact == "inverse_of":
                assert value is None or value in names, row.name
            elif fact == "identity":
                assert value is None or isinstance(value, (int, float)), row.name
            else:
                assert value in (True, False), (row.name, fact)
        if row.commutative or row.associative or row.identity is not None \
                or row.inverse_of is not None:
            assert row.nin == 2, f"{row.name}: algebra facts are about binary rows"
        if row.negation:
            assert row.nin == 1, row.name
    with pytest.raises(TypeError, match="unknown fact"):
        ew.ScalarOp("bad", 1, None, None, positivity=True)


# ------------------------------------------------------------ rows: values
def _run(row, *arrays):
    with np.errstate(all="ignore"):
        return np.asarray(row.impl(np, *arrays))


def _draws(rng, dtype, n=64, lo=-3.0, hi=3.0):
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.random(n) > 0.5
    if kind in "iu":
        return rng.integers(-50, 50, size=n).astype(dtype)
    return rng.uniform(lo, hi, size=n).astype(dtype)


def _accepts(row, dtype):
    try:
        _run(row, *[np.zeros(2, dtype)] * row.nin)
        return True
    except TypeError:
        return False
    except ImportError:  # (a scipy.special row without SciPy: nothing to run)
        return False


def _needs_missing_scipy(row):
    try:
        _run(row, *[np.zeros(2)] * row.nin)
        return False
    except ImportError:
        return True
    except TypeError:
        return False


def _same(a, b, dtype, exact, what):
    if exact or np.dtype(dtype).kind in "biu":
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("row", ew.ROWS(), ids=lambda r: r.name)
def test_algebra_facts_hold(row):
    rng = np.random.default_rng(0)
    for dtype in ("float64", "int64", "bool"):
        if not _accepts(row, dtype):
            continue
        a, b, c = (_draws(rng, dtype) for _ in range(3))
        what = f"{row.name} {dtype}: declared %s"
        if row.commutative:
            _same(_run(row, a, b), _run(row, b, a), dtype, True, what % "commutative")
        if row.associative:
            _same(_run(row, _run(row, a, b), c), _run(row, a, _run(row, b, c)), dtype,
                  False, what % "associative")
        if row.identity is not None and dtype != "bool":
            e = np.asarray(row.identity, dtype)
            _same(_run(row, a, e), a, dtype, True, what % "identity")
            _same(_run(row, e, a), a, dtype, True, what % "identity")
        if row.inverse_of is not None and dtype == "float64":
            base = ew.row_by_name(row.inverse_of)
            e = np.asarray(base.identity, dtype)  # b's inverse: op(e, b)
            _same(_run(row, a, b), _run(base, a, _run(row, e, b)), dtype, False,
                  what % "inverse_of")
        if row.negation and dtype != "bool":
            _same(_run(row, a), -a, dtype, True, what % "negation")


@pytest.mark.parametrize("row", [r for r in ew.ROWS() if r.symbol is not None],
                         ids=lambda r: r.name)
def test_symbols_are_the_python_operators(row):
    """``pp`` prints ``a <symbol> b`` (``<symbol>a``): it must mean the row."""
    rng = np.random.default_rng(3)
    for dtype in ("float64", "int64", "bool"):
        if not _accepts(row, dtype):
            continue
        arrays = [_draws(rng, dtype, lo=0.5, hi=3.0) for _ in range(row.nin)]
        if dtype == "int64" and row.name in ("floor_div", "mod", "pow", "true_div"):
            arrays = [np.abs(a) + 1 for a in arrays]  # (no 0 divisor, no negative power)
        text = f"a {row.symbol} b" if row.nin == 2 else f"{row.symbol}a"
        with np.errstate(all="ignore"):
            expected = eval(text, {}, dict(zip("ab", arrays)))
        np.testing.assert_array_equal(_run(row, *arrays), expected,
                                      err_msg=f"{row.name} {dtype}: {text}")


def _float_inputs(row, rng, lo, hi, n=256):
    return [rng.uniform(lo, hi, size=n) for _ in range(row.nin)]


VALUE_FACTS = ("positive", "positive_if_inputs", "finite_if_inputs", "zero_or_inf_at_inf",
               "bounded")


def test_value_facts_are_about_float_rows():
    for row in _rows():
        if not _accepts(row, "float64") and not _needs_missing_scipy(row):
            # (bitwise rows: integers only)
            assert not any(getattr(row, f) for f in VALUE_FACTS), row.name


@pytest.mark.parametrize("row", [r for r in _rows() if _accepts(r, "float64")],
                         ids=lambda r: r.name)
def test_value_facts_hold(row):
    rng = np.random.default_rng(1)
    if row.positive:
        # > 0 where nothing underflows; >= 0 anywhere finite (exp(-800) is 0)
        assert np.all(_run(row, *_float_inputs(row, rng, -20, 20)) > 0), row.name
        assert np.all(_run(row, *_float_inputs(row, rng, -800, 800)) >= 0), row.name
    if row.positive_if_inputs:
        assert np.all(_run(row, *_float_inputs(row, rng, 1e-3, 1e3)) > 0), row.name
    if row.finite_if_inputs:
        assert np.all(np.isfinite(_run(row, *_float_inputs(row, rng, -5, 5)))), row.name
    special = np.array([np.inf, -np.inf, np.nan])
    if row.zero_or_inf_at_inf:
        out = _run(row, special)
        assert np.all((out == 0) | np.isinf(out) | np.isnan(out)), (row.name, out)
    if row.bounded:
        wide = np.concatenate([special, rng.uniform(-1e300, 1e300, size=64)])
        assert not np.any(np.isinf(_run(row, wide))), row.name


# ------------------------------------------------------------ op classes
def _cases():
    assert len(TABLE_MODULES) >= 6
    for name in TABLE_MODULES:
        for case in importlib.import_module(name).CASES:
            yield name, case


def _graphs(case, rng):
    """(inputs, arrays, outputs) of a case's graph, with its gradient."""
    dtype = "float64" if "float64" in case.dtypes else case.dtypes[0]
    arrays = case.inputs(rng, dtype, case.shapes[0])
    xs = [symbolic_like(a, f"x{i}") for i, a in enumerate(arrays)]
    out = case.sym(*xs)
    outs = [out]
    wrt = [x for x in xs if x.dtype[0] == "f"]
    if case.grad and out.dtype[0] == "f" and wrt:
        weight = T.constant(np.asarray(rng.uniform(0.5, 1.5), dtype=out.dtype))
        outs += tg.grad(T.sum(out * weight), wrt, disconnected_inputs="ignore")
    return xs, arrays, outs


def _values(nodes, values):
    """The values of every node's inputs and outputs (nodes in order)."""
    for node in nodes:
        arrays = [values[i] if i in values else np.asarray(i.data) if isinstance(i, Constant)
                  else i.container.value for i in node.inputs]
        with np.errstate(all="ignore"):  # (an in-place op runs on copies: the
            # inputs stay as they were for the checks)
            outs = run_node(node, [np.array(a, copy=True) for a in arrays]
                            if node.op.destroy_map else arrays)
        values.update(zip(node.outputs, outs))
        yield node, arrays, outs


def _check_shape_relation(node, outs, values):
    rel = node.op.shape_relation(node)
    if rel is None:
        return
    kind, src = rel[0], values_of(rel[1], values)
    for out in outs:
        if kind == "same":
            expected = src.shape
        elif kind == "dimshuffle":
            expected = tuple(1 if p == "x" else src.shape[p] for p in rel[2])
        else:
            assert kind == "reduce", f"{node.op}: unknown shape relation {kind!r}"
            axes, keepdims = rel[2], rel[3]
            expected = tuple(1 if i in axes else d for i, d in enumerate(src.shape)
                             if keepdims or i not in axes)
        assert out.shape == expected, f"{node.op}: {kind} says {expected}, got {out.shape}"


def values_of(var, values):
    return np.asarray(var.data) if isinstance(var, Constant) else values[var]


def _finite(arrays):
    return all(np.all(np.isfinite(a)) for a in arrays
               if np.asarray(a).dtype.kind in "fc")


def check_node(node, arrays, outs, values):
    """The op's declarations against one evaluated node."""
    op = node.op
    for var, value in zip(node.outputs, outs):  # the static shape rule
        assert value.ndim == var.type.ndim, f"{op}: ndim {value.ndim} != {var.type}"
        for static, actual in zip(var.type.shape, value.shape):
            assert static is None or static == actual, f"{op}: {var.type} vs {value.shape}"
    _check_shape_relation(node, outs, values)
    x0 = np.asarray(arrays[0]) if arrays else None
    if op.selects:
        for out in outs:
            assert np.all(np.isin(out, x0) | (out != out)), f"{op}: an entry not from input 0"
    if op.broadcasts:
        np.testing.assert_array_equal(outs[0], np.broadcast_to(x0, outs[0].shape),
                                      err_msg=str(op))
    if op.positive and _finite(arrays):
        assert all(np.all(o > 0) for o in outs), f"{op}: declared positive"
    if op.finite_if_inputs and _finite(arrays) \
            and all(np.all(np.abs(a) < 50) for a in arrays if np.asarray(a).dtype.kind == "f"):
        assert all(np.all(np.isfinite(o)) for o in outs), f"{op}: declared finite"
    if op.impl_into is not None and len(outs) == 1:
        _check_impl_into(op, arrays, np.asarray(outs[0]))
        if op.into_for is not None and op.into_for(np) is not None:
            _check_impl_into(op, arrays, np.asarray(outs[0]), op.into_for(np))
    if op.exact_outputs:    # (stored unchecked by the schedule: the impl's promise)
        for var, value in zip(node.outputs, outs):
            assert type(value) is np.ndarray and value.dtype == var.type.dtype, op
    if op.commutative and len(arrays) == 2:
        swapped = op.impl(np, *[np.array(a, copy=True) for a in arrays[::-1]])
        if np.asarray(outs[0]).dtype.kind == "c":
            # NumPy's complex multiply is not bitwise commutative (its SIMD loop
            # fuses a multiply-add that its scalar tail does not): equal to rounding
            np.testing.assert_allclose(swapped, outs[0], rtol=1e-15, atol=0, err_msg=str(op))
        else:
            np.testing.assert_array_equal(swapped, outs[0], err_msg=str(op))


# (op class, hook) -> nodes whose ``impl_into`` / ``into_for`` wrote the result
INTO_WRITTEN = {}


def _check_impl_into(op, arrays, want, write=None):
    """``impl_into`` (or ``write``, the op's ``into_for(np)``) writes
    ``impl``'s value bit for bit into a fitting ``out`` and returns it, or
    declines (``None``); it declines an ``out`` of another shape or dtype."""
    hook = "impl_into" if write is None else "into_for"
    if write is None:
        def write(out, *arrays):
            return op.impl_into(np, out, *arrays)
    out = np.full_like(want, 7, order="C")
    got = write(out, *arrays)
    if got is None:
        return
    assert got is out, f"{op}: impl_into returned another array than out"
    np.testing.assert_array_equal(out, want, err_msg=f"{op}: impl_into")
    assert out.dtype == want.dtype, op
    misfit = np.empty(want.shape + (2,), want.dtype)
    assert write(misfit, *arrays) is None, f"{op}: wrote into a misfit out"
    other = np.empty(want.shape, np.complex64 if want.dtype != np.complex64 else np.float32)
    assert write(other, *arrays) is None, f"{op}: wrote into an out of another dtype"
    INTO_WRITTEN[type(op), hook] = INTO_WRITTEN.get((type(op), hook), 0) + 1


def _extra_nodes(rng):
    """Graphs for classes no table case builds (made by rewrites only)."""
    x = T.dmatrix("x")
    a = rng.uniform(-2, 2, size=(3, 4))
    both = nnet.SoftmaxAndLog((1,))(x)
    inplace = ew.InplaceElemwise(ew.add.op.scalar_op, 0)(T.exp(x), x)
    return [x], [a], [both[0], both[1], inplace]


def _walk():
    rng = np.random.default_rng(2)
    met, checked = set(), 0
    runs = [_graphs(case, rng) for _, case in _cases()] + [_extra_nodes(rng)]
    for xs, arrays, outs in runs:
        fn = tg.function(xs, outs, on_unused_input="ignore")
        for graph_outputs, graph_inputs in ((outs, xs), (fn.maker.fgraph.outputs,
                                                         fn.maker.fgraph.inputs)):
            values = dict(zip(graph_inputs, (np.asarray(a) for a in arrays)))
            for node, node_arrays, node_outs in _values(toposort(graph_outputs,
                                                                 blockers=graph_inputs),
                                                        values):
                check_node(node, node_arrays, node_outs, values)
                met.add(type(node.op))
                checked += 1
    return met, checked


def test_op_classes_keep_their_declarations():
    met, checked = _walk()
    assert checked > 1000
    unmet = [c.__name__ for c in _op_classes() if _declares_facts(c) and c not in met]
    assert not unmet, f"op classes declaring facts that no table case builds: {unmet}"
    # every class with impl_into wrote into out on some table node
    unwritten = [f"{c.__name__}.{hook}" for c in _op_classes()
                 for hook in ("impl_into", "into_for")
                 if hook in vars(c) and c.__module__.startswith("tracegrad.ops")
                 and not INTO_WRITTEN.get((c, hook))]
    assert not unwritten, f"never used on a table node: {unwritten}"


# ------------------------------------------------------------ engines read them
def _new_row(**facts):
    row = ew.ScalarOp("test_row", 2 if "commutative" in facts else 1,
                      lambda xp, *a: a[0], "{0}", **facts)
    return ew.Elemwise(row)


def test_a_new_positive_row_is_positive_to_the_rewrites():
    x = T.dvector("x")
    plain, positive = _new_row()(x), _new_row(positive=True)(x)
    assert not al.is_positive(plain) and al.is_positive(positive)
    assert ieee.positive_nodes(positive) == [positive]
    assert not ieee.is_finite(_new_row()(T.constant(np.ones(2))))
    assert ieee.is_finite(_new_row(finite_if_inputs=True)(T.constant(np.ones(2))))


def test_a_new_commutative_row_matches_either_order():
    x, y = T.dvector("x"), T.dvector("y")
    pattern = ("test_row", ("exp", "a"), "b")
    two = ew.ScalarOp("test_row", 2, lambda xp, a, b: a, "{0}")
    assert match(pattern, ew.Elemwise(two)(y, T.exp(x))) is None
    binds = match(pattern, _new_row(commutative=True)(y, T.exp(x)))
    assert binds["a"] is x and binds["b"] is y


class _Pick(Op):
    """A test op: entries of input 0, shaped like it."""
    selects = True

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        return x.copy()

    def shape_relation(self, node):
        return ("same", node.inputs[0])


def test_a_new_op_class_is_read_through_its_declarations():
    x = T.dvector("x")
    picked = _Pick()(T.exp(x))
    assert al.is_positive(picked) and ieee.is_finite(_Pick()(T.constant(np.ones(2))))
    assert al.same_shape(_Pick()(x), x, {})
    assert not al.same_shape(T.exp(x)[1:], x, {})
