"""Replace clusters of elementwise nodes by ``FusedElemwise`` nodes.

``fuse_outputs(outputs)`` works on plain graphs and returns new outputs;
``fuse(fgraph)`` is the adapter for a ``FunctionGraph`` (anything with
``outputs`` and ``replace(old, new)``).

First (CPU), ``broadcast_to(b, shape(a))`` of a single value ``b`` read
only by fusable nodes becomes the elementwise ``second(a, b)``
(``spec.FILL``), so it joins their cluster instead of standing between two
of them (the gradient of ``mean`` is such a broadcast).

Then (CPU) a ``SumTo(g, like)`` whose ``like`` is computed by a fusable
node and read there only for its shape reads instead an operand of ``g``'s
node that provably has ``like``'s shape (``like_replacements``): the
cluster computing ``like`` then need not store it as an output nobody reads
as data (issue 18: W4's ``Fused{add,tanh,sqr,sub}.0``).
"""
from tracegrad.config import normalize_device
from tracegrad.fuse.cluster import DEFAULT_MAX_OPERANDS, Cluster, find_units, is_fusable
from tracegrad.fuse.op import FusedElemwise
from tracegrad.fuse.reduce import fuse_sums, may_sum_fused
from tracegrad.fuse.spec import FILL, spec_from_cluster
from tracegrad.ops.elemwise import SumTo
from tracegrad.ops.shape import BroadcastTo
from tracegrad.progress import current as current_progress
from tracegrad.trace import Constant, clone_replace, rebuild_node, toposort


def fused_node(cluster, memo=None):
    """A ``FusedElemwise`` Apply computing ``cluster.outputs`` (in order) from
    its inputs, mapped through ``memo`` (old variable -> new variable)."""
    spec, inputs, sources = spec_from_cluster(cluster)
    if memo:
        inputs = [memo.get(v, v) for v in inputs]
    node = FusedElemwise(spec, sources).make_node(*inputs, source=cluster.nodes[-1].source)
    for old, new in zip(cluster.outputs, node.outputs):
        new.name = old.name
        new._tag = old._tag
    return node


def fill_replacements(outputs, target="cpu", nodes=None):
    """``{broadcast output: second(a, b)}`` for each ``broadcast_to(b,
    shape(a))`` of a value ``b`` of one element and ``a``'s ndim or fewer,
    whose readers are all fusable nodes. ``nodes``: ``toposort(outputs)``,
    when the caller has it already."""
    if nodes is None:
        nodes = toposort(outputs)
    broadcasts = [node for node in nodes if isinstance(node.op, BroadcastTo)]
    if not broadcasts:
        return {}  # (most graphs: no readers map to build)
    readers = {}
    for node in nodes:
        for inp in node.inputs:
            readers.setdefault(inp, []).append(node)
    kept = set(outputs)
    found = {}
    for node in broadcasts:
        out = node.outputs[0]
        if out in kept or not all(is_fusable(r, target) for r in readers.get(out, ())):
            continue
        new = _fill_of(node)
        if new is not None:
            found[out] = new
    return found


def _fill_of(node):
    """``second(a, b)`` for the ``broadcast_to(b, shape(a))`` ``node`` when
    ``b`` has one element and ``a``'s dtype-compatible ndim, else ``None``."""
    from tracegrad.ops.elemwise import Elemwise
    from tracegrad.ops.shape import DimShuffle
    from tracegrad.ops.shape_static import Shape
    out = node.outputs[0]
    b, shp = node.inputs
    if shp.owner is None or not isinstance(shp.owner.op, Shape):
        return None
    a = shp.owner.inputs[0]
    if (b.type.dtype != out.type.dtype or any(d != 1 for d in b.type.shape)
            or a.type.ndim != out.type.ndim):
        return None
    while (b.owner is not None and isinstance(b.owner.op, DimShuffle)
           and all(p == "x" for p in b.owner.op.pattern)):
        b = b.owner.inputs[0]  # (a 0-d value given axes of length 1)
    new = Elemwise(FILL).make_node(a, b).outputs[0]
    return new if new.type == out.type or out.type.is_super(new.type) else None


def like_replacements(outputs, nodes=None):
    """``{SumTo output: SumTo(g, u)}`` for each ``SumTo(g, like)`` whose
    ``like`` comes from a fusable node and whose ``g`` comes from an
    elementwise node reading a ``u`` of ``like``'s static and (provably,
    ``rewrite.algebra.same_shape``) run-time shape. ``u`` is read there as
    data, so it is kept anyway; ``like``, read only for its shape, may then
    stay inside its cluster. ``nodes``: ``toposort(outputs)``, when the
    caller has it already."""
    from tracegrad.ops.elemwise import Elemwise
    if nodes is None:
        nodes = toposort(outputs)
    kept = set(outputs)  # (graph outputs are left alone, as by ``fill_replacements``)
    found = {}
    memo = {}  # (shape roots, shared by every proof of this graph)
    for node in nodes:
        if not isinstance(node.op, SumTo):
            continue
        g, like = node.inputs
        producer = like.owner
        if (node.outputs[0] in kept or producer is None or g.owner is None
                or not isinstance(g.owner.op, Elemwise) or not is_fusable(producer)):
            continue
        new = _like_from(node, g.owner.inputs, memo)
        if new is not None:
            found[node.outputs[0]] = new
    return found


def _like_from(node, candidates, memo):
    """``SumTo(g, u)`` for the first ``u`` of ``candidates`` (not a
    constant) provably of ``like``'s shape, or ``None``."""
    from tracegrad.rewrite.algebra import same_shape
    g, like = node.inputs
    for u in candidates:
        if (u is like or isinstance(u, Constant) or u.type.shape != like.type.shape
                or not same_shape(u, like, memo)):
            continue
        return node.op.make_node(g, u).outputs[0]
    return None


def fuse_outputs(outputs, target=None, max_operands=DEFAULT_MAX_OPERANDS):
    """The graph of ``outputs`` with each fusable cluster replaced by one
    ``FusedElemwise`` node; returns the new output variables (the old graph
    is left untouched; nodes outside clusters are shared when unaffected).

    ``target``: ``'cpu'`` or ``'cuda'`` (default: ``tg.config.device``).
    """
    outputs = list(outputs)
    if normalize_device(target) == "cpu":
        for find in (fill_replacements, like_replacements):
            found = find(outputs)
            if found:
                outputs, _ = clone_replace(outputs, found)
    clusters, units = find_units(outputs, normalize_device(target), max_operands)
    if not clusters:
        return outputs
    memo = {}
    for unit in units:
        if isinstance(unit, Cluster):
            node = fused_node(unit, memo)
            for old, new in zip(unit.outputs, node.outputs):
                memo[old] = new
            continue
        rebuild_node(unit, memo)
    return [memo.get(o, o) for o in outputs]


def fuse(fgraph, target=None, max_operands=DEFAULT_MAX_OPERANDS):
    """Fuse the elementwise clusters of a ``FunctionGraph`` in place.

    Each cluster becomes one ``FusedElemwise`` node built on the graph's own
    variables; every cluster output is then swapped in with
    ``fgraph.replace(old, new, reason="fusion")``. Returns the number of
    clusters fused.
    """
    outputs = list(fgraph.outputs)
    # (one walk of the graph for both, none when the graph knows its order)
    order = getattr(fgraph, "known_order", lambda: None)() or toposort(outputs)
    in_place = getattr(fgraph, "edits_in_place", lambda: False)()
    if normalize_device(target) == "cpu":
        outputs, order = _fills_and_likes(fgraph, outputs, order, in_place)
    clusters, units = find_units(outputs, normalize_device(target), max_operands, order=order)
    if in_place:
        _fuse_in_place(fgraph, outputs, units)
    else:
        memo = {}
        for unit in _reported(units):
            if not isinstance(unit, Cluster):
                continue
            node = fused_node(unit, memo)
            for old, new in zip(unit.outputs, node.outputs):
                memo[old] = new
                fgraph.replace(old, new, reason="fusion")
    if clusters and normalize_device(target) == "cpu" and may_sum_fused(units):
        fuse_sums(fgraph)
    return len(clusters)


def _fills_and_likes(fgraph, outputs, order, in_place):
    """Apply ``fill_replacements`` and then ``like_replacements`` to the
    graph; returns its outputs and order after them."""
    classes = {type(node.op) for node in order}
    for find, wanted in ((fill_replacements, BroadcastTo), (like_replacements, SumTo)):
        # (each finds replacements only at nodes of its op: one look at the
        # graph's op classes spares the walks that could find none)
        if not any(issubclass(c, wanted) for c in classes):
            continue
        found = find(outputs, nodes=order)
        if found:
            _apply_fills(fgraph, found, order, in_place)
            outputs = list(fgraph.outputs)
            order = toposort(outputs)
            classes = {type(node.op) for node in order}
    return outputs, order


def _apply_fills(fgraph, fills, order, in_place):
    """``fgraph.replace(old, new)`` for each of ``fills``. In a graph that
    owns its nodes (``in_place``) the readers in ``order`` (and the new
    nodes) are re-pointed instead, and ``_fuse_in_place``'s
    ``reset_outputs`` tells the graph (``fill_replacements`` leaves the
    graph's outputs alone): no index of readers is needed, so none is
    built for it."""
    if not in_place:
        for old, new in fills.items():
            fgraph.replace(old, new, reason="fusion")
        return

    def final(var):
        while var in fills:  # (a new node may read another replaced one)
            var = fills[var]
        return var
    nodes = list(order) + [new.owner for new in fills.values()]
    for node in nodes:
        inputs = node.inputs
        for i, var in enumerate(inputs):
            if var in fills:
                inputs[i] = final(var)


def _fuse_in_place(fgraph, outputs, units):
    """``fuse`` for a graph that owns its nodes: every other node is
    re-pointed at the fused outputs and the graph re-read once from its new
    outputs (``reset_outputs``), instead of one ``replace`` (import, prune)
    per cluster output — the same graph, in linear time."""
    memo = {}
    nodes = []  # (the graph's nodes once fused: it need not walk them)
    for unit in _reported(units):
        if isinstance(unit, Cluster):
            node = fused_node(unit, memo)
            memo.update(zip(unit.outputs, node.outputs))
            nodes.append(node)
            continue
        nodes.append(unit)
        inputs = unit.inputs
        for i, var in enumerate(inputs):
            new = memo.get(var)
            if new is not None:
                inputs[i] = new
    fgraph.reset_outputs([memo.get(o, o) for o in outputs], reason="fusion", nodes=nodes)


def _reported(units):
    """``units``, telling the progress line how many are done (a big graph
    only: ``progress.py``; a cluster counts as one node)."""
    progress = current_progress()
    if not progress.every:
        return units  # (no line to tell: no generator step per unit)
    return _reporting(units, progress)


def _reporting(units, progress):
    report = progress.every
    for k, unit in enumerate(units):
        if k == report:
            report += progress.every
            progress.advance(k, len(units))
        yield unit
