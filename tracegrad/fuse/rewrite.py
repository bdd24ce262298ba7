"""Replace clusters of elementwise nodes by ``FusedElemwise`` nodes.

``fuse_outputs(outputs)`` works on plain graphs and returns new outputs;
``fuse(fgraph)`` is the adapter for a ``FunctionGraph`` (anything with
``outputs`` and ``replace(old, new)``).
"""
from tracegrad.fuse.cluster import (DEFAULT_MAX_OPERANDS, Cluster, cluster_order,
                                    find_clusters)
from tracegrad.fuse.op import FusedElemwise
from tracegrad.fuse.spec import spec_from_cluster


def fused_node(cluster, memo=None):
    """A ``FusedElemwise`` Apply computing ``cluster.outputs`` (in order) from
    its inputs, mapped through ``memo`` (old variable -> new variable)."""
    spec, inputs, sources = spec_from_cluster(cluster)
    if memo:
        inputs = [memo.get(v, v) for v in inputs]
    node = FusedElemwise(spec, sources).make_node(*inputs)
    node.source = cluster.nodes[-1].source
    for old, new in zip(cluster.outputs, node.outputs):
        new.name = old.name
        new.tag = old.tag
    return node


def _target(target):
    if target is None:
        from tracegrad.config import config
        target = config.device
    return "cuda" if str(target).startswith("cuda") or target == "gpu" else "cpu"


def fuse_outputs(outputs, target=None, max_operands=DEFAULT_MAX_OPERANDS):
    """The graph of ``outputs`` with each fusable cluster replaced by one
    ``FusedElemwise`` node; returns the new output variables (the old graph
    is left untouched; nodes outside clusters are shared when unaffected).

    ``target``: ``'cpu'`` or ``'cuda'`` (default: ``tg.config.device``).
    """
    outputs = list(outputs)
    clusters = find_clusters(outputs, _target(target), max_operands)
    if not clusters:
        return outputs
    memo = {}
    for unit in cluster_order(outputs, clusters):
        if isinstance(unit, Cluster):
            node = fused_node(unit, memo)
            for old, new in zip(unit.outputs, node.outputs):
                memo[old] = new
            continue
        new_inputs = [memo.get(i, i) for i in unit.inputs]
        if all(a is b for a, b in zip(new_inputs, unit.inputs)):
            continue
        new_node = unit.clone_with_new_inputs(new_inputs)
        for old, new in zip(unit.outputs, new_node.outputs):
            if new.name is None:
                new.name = old.name
            memo[old] = new
    return [memo.get(o, o) for o in outputs]


def fuse(fgraph, target=None, max_operands=DEFAULT_MAX_OPERANDS):
    """Fuse the elementwise clusters of a ``FunctionGraph`` in place.

    Each cluster becomes one ``FusedElemwise`` node built on the graph's own
    variables; every cluster output is then swapped in with
    ``fgraph.replace(old, new, reason="fusion")``. Returns the number of
    clusters fused.
    """
    outputs = list(fgraph.outputs)
    clusters = find_clusters(outputs, _target(target), max_operands)
    memo = {}
    for unit in cluster_order(outputs, clusters):
        if not isinstance(unit, Cluster):
            continue
        node = fused_node(unit, memo)
        for old, new in zip(unit.outputs, node.outputs):
            memo[old] = new
            fgraph.replace(old, new, reason="fusion")
    return len(clusters)
