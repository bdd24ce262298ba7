"""The import layers of tracegrad (docs/ARCHITECTURE.md, "Layers (issue 15)").

Every module of the package belongs to one layer; a module imports only
modules of its own layer or of layers below, and no modules import one
another in a cycle. Imports inside functions count as much as those at the
top of a file: a lazy import hides a cycle from Python, not from the reader.
As in /work/shared/tools/import_cycles.py, importing ``a.b.c`` is not
counted as importing the package ``a.b``'s ``__init__``, nor is a module's
import of its own package (``from tracegrad.backend import Backend`` in
``backend/cupy.py``): Python runs a package's ``__init__`` before any of its
modules anyway.
"""
import ast
from pathlib import Path

import tracegrad

ROOT = Path(tracegrad.__file__).resolve().parent

# Bottom to top. A module belongs to the layer of the longest prefix listed
# (``tracegrad.backend`` is the device registry; ``tracegrad.backend.inplace``
# launches fused kernels, with ``compile``).
LAYERS = [
    ("trace", ["tracegrad.trace", "tracegrad.trace_pickle", "tracegrad.postorder",
               "tracegrad.config", "tracegrad.clientlist", "tracegrad.printing",
               "tracegrad.evaluate", "tracegrad.backend", "tracegrad.backend.cupy",
               "tracegrad.frozen_random", "tracegrad.shared_access",
               "tracegrad.progress", "tracegrad.collector", "tracegrad.fgraph",
               "tracegrad.inplace_order", "tracegrad.dtype_names"]),
    ("types", ["tracegrad.tensor.type", "tracegrad.tensor.variable",
               "tracegrad.tensor.protocols",
               "tracegrad.tensor.dispatch", "tracegrad.casting", "tracegrad.shared"]),
    ("ops", ["tracegrad.ops", "tracegrad.ops.cumulative", "tracegrad.ops.nlinalg"]),
    ("transforms", ["tracegrad.grad", "tracegrad.rewrite", "tracegrad.fuse",
                    "tracegrad.scan"]),
    ("compile", ["tracegrad.compile", "tracegrad.backend.inplace", "tracegrad.backend.c",
                 "tracegrad.backend.numpy", "tracegrad.backend.lone",
                 "tracegrad.backend.csource", "tracegrad.backend.ccompiler",
                 "tracegrad.backend.crunner", "tracegrad.backend.crun",
                 "tracegrad.backend.csmall", "tracegrad.backend.emit",
                 "tracegrad.backend.cupy.kernel"]),
    ("api", ["tracegrad", "tracegrad.tensor", "tracegrad.tensor.nnet",
             "tracegrad.tensor.shared_randomstreams", "tracegrad.tensor.nlinalg",
             "tracegrad.jit", "tracegrad.random", "tracegrad.testing",
             "tracegrad.pytree", "tracegrad.differentiate", "tracegrad.transforms",
             "tracegrad.vmap", "tracegrad.distributed"]),
]


def module_name(root, path):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name, modules):
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def imports_of(root, path, modules):
    """``{module: line}`` of the package's modules that ``path`` imports,
    anywhere in the file (function bodies included)."""
    me = module_name(root, path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [_resolve(a.name, modules) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # ``from a import b``: the module ``a.b`` when there is one, else ``a``.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules
                       else _resolve(base, modules) for a in node.names]
        for t in targets:
            if t and t != me and not me.startswith(t + "."):
                found.setdefault(t, node.lineno)
    return found


def import_graph(root):
    files = {module_name(root, p): p for p in root.rglob("*.py")}
    return {m: imports_of(root, p, files) for m, p in files.items()}, files


def cycles(graph):
    """The strongly connected groups of more than one module (iterative Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    group = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        group.append(w)
                        if w == v:
                            break
                    if len(group) > 1:
                        out.append(sorted(group))
    return out


def layer_of(module):
    best, level = "", None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, level = p, i
    return level


def test_no_import_cycles_lazy_imports_included():
    graph, files = import_graph(ROOT)
    found = cycles(graph)
    lines = [f"{files[m].relative_to(ROOT.parent)}:{graph[m][t]} imports {t}"
             for g in found for m in g for t in graph[m] if t in g]
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_every_module_has_a_layer():
    graph, _ = import_graph(ROOT)
    missing = sorted(m for m in graph if layer_of(m) is None)
    assert not missing, f"give these modules a layer in tests/test_layers.py: {missing}"


def test_no_module_imports_a_higher_layer():
    graph, files = import_graph(ROOT)
    wrong = []
    for m, targets in graph.items():
        for t, line in targets.items():
            if layer_of(t) > layer_of(m):
                where = f"{files[m].relative_to(ROOT.parent)}:{line}"
                wrong.append(f"{where} ({LAYERS[layer_of(m)][0]}) imports {t} "
                             f"({LAYERS[layer_of(t)][0]})")
    assert not wrong, "imports of a higher layer:\n" + "\n".join(sorted(wrong))


def test_no_namespace_lookup_helper():
    # The ``_T()`` helpers (``import tracegrad.tensor as T`` inside a function)
    # were lazy imports of the top layer from below; none may come back, nor
    # the rewrite modules' ``T()`` that later only returned ``ops.api``.
    defined = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        top = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        for node in ast.walk(tree):
            # (a method or property named ``T``, like ``x.T``, is not one)
            helper = node.name == "_T" or (node.name == "T" and node in top) \
                if isinstance(node, ast.FunctionDef) else False
            if helper:
                defined.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert not defined, defined


def test_the_checks_see_lazy_cycles_and_upward_imports(tmp_path):
    # The checks themselves: a cycle closed by an import inside a function,
    # and ``from pkg import module`` resolved to the module.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n    return a\n")
    (pkg / "c.py").write_text("import pkg.sub.b\n")
    graph, _ = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b": 1}
    assert graph["pkg.sub.b"] == {"pkg.a": 2}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
    assert layer_of("tracegrad.backend.inplace") > layer_of("tracegrad.fuse.op")
    assert layer_of("tracegrad.tensor") > layer_of("tracegrad.tensor.variable")


# ------------------------------------------------------------ what was turned around
def test_upward_needs_are_handed_down_at_import():
    # Operators of variables call the op functions of ``ops.api``; scan bodies
    # compile with ``tg.function``: both handed over by the layer above.
    from tracegrad.compile import function
    from tracegrad.ops import api
    from tracegrad.scan import body
    from tracegrad.tensor import variable
    assert variable._ops is api
    assert body._compile_function is function


def test_tensor_namespace_re_exports_ops_api():
    import tracegrad.ops.api as api
    import tracegrad.tensor as T
    assert api.__all__ and all(getattr(T, name) is getattr(api, name) for name in api.__all__)


def test_old_import_paths_still_work():
    from tracegrad import casting, shared_access
    from tracegrad.compile import casting as old_casting, publish
    from tracegrad.ops import alloc, base, elemwise, grad_rules, reduce, shape_static, static
    assert publish.UPDATE_LOCK is shared_access.UPDATE_LOCK
    assert publish.READERS is shared_access.READERS and publish.PUBLISH is shared_access.PUBLISH
    assert old_casting.cast_value is casting.cast_value
    assert grad_rules.match_gradient_dtype is elemwise.match_gradient_dtype is \
        base.match_gradient_dtype
    assert grad_rules.abs_grad is elemwise.abs_grad
    assert elemwise.Elemwise is base.Elemwise and elemwise.SumTo is base.SumTo
    assert shape_static.Shape is base.Shape and alloc.BroadcastTo is base.BroadcastTo
    assert reduce.normalize_axis is static.normalize_axis
    assert shape_static.static_value is static.static_value


def test_piecewise_constant_gradients_are_zeros_of_the_input():
    # Their rules return ``ZERO``; the reverse engine ends it as zeros_like(x):
    # a connected gradient (not ``None`` with return_disconnected='none').
    import numpy as np
    import tracegrad as tg
    import tracegrad.tensor as T
    x = T.fmatrix("x")
    y = T.fscalar("y")
    for fn in (T.sign, T.floor, T.ceil, T.rint, T.trunc, T.angle,
               lambda v: T.floor_div(v, y)):
        g = tg.grad((fn(x) * 3).sum(), x, return_disconnected="none")
        assert g is not None and g.dtype == "float32" and g.ndim == 2
        value = tg.function([x, y], g, on_unused_input="ignore")(
            np.ones((2, 3), "float32"), np.float32(2))
        assert value.dtype == np.float32 and value.shape == (2, 3) and not value.any()
    # floor_div's zero gradient for its second input too, added to another term
    gy = tg.grad((T.floor_div(x, y) + y).sum(), y)
    assert tg.function([x, y], gy)(np.ones((2, 3), "float32"), np.float32(2)) == 6
