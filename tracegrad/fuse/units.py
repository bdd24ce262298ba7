"""Clusters as units of the fused graph: the ``Cluster`` record, the order
in which units (clusters and lone nodes) run, and the repair of a grouping
whose clusters would form a cycle.

Split from ``cluster.py`` (the search): nothing here depends on how the
clusters were found, only on the nodes in topological order.
"""


class Cluster:
    """A fusable set of nodes.

    ``nodes``: the members in topological order; ``inputs``: the variables
    read from outside (first-use order, constants included); ``outputs``: the
    members' variables needed outside (by other nodes or as graph outputs).
    """

    __slots__ = ("nodes", "_inputs", "outputs")

    def __init__(self, nodes, inputs, outputs):
        self.nodes = nodes
        self._inputs = inputs  # (``None``: found when first asked for)
        self.outputs = outputs

    @property
    def inputs(self):
        inputs = self._inputs
        if inputs is None:
            inside = set(self.nodes)
            inputs, seen = [], set()
            for node in self.nodes:
                for inp in node.inputs:
                    if inp.owner not in inside and id(inp) not in seen:
                        seen.add(id(inp))
                        inputs.append(inp)
            self._inputs = inputs
        return inputs

    def __repr__(self):
        names = ",".join(n.op.name for n in self.nodes)
        return f"Cluster({names}; {len(self.inputs)} in, {len(self.outputs)} out)"


def _break_cycles(groups, nodes, position):
    """Make sure the graph of clusters has no cycle (the contracted ancestor
    sets above can miss one when a group grows after a node downstream of it
    was visited): while some clusters lie on a cycle, the one whose last
    member comes latest gives that member up (the rest stays convex)."""
    while True:
        unit = list(range(len(nodes)))
        for gi, g in enumerate(groups):
            for m in g:
                unit[m] = len(nodes) + gi
        on_cycle = _units_on_cycles(nodes, position, unit)
        if not on_cycle:
            return groups
        candidates = [gi for gi in range(len(groups)) if len(nodes) + gi in on_cycle]
        worst = max(candidates, key=lambda gi: groups[gi][-1])
        groups[worst] = groups[worst][:-1]


def _units_on_cycles(nodes, position, unit):
    """Units of the contracted graph that lie on (or between) cycles."""
    succ, pred = {}, {}
    for k, node in enumerate(nodes):
        u = unit[k]
        for inp in node.inputs:
            p = position.get(inp.owner) if inp.owner is not None else None
            if p is not None and unit[p] != u:
                succ.setdefault(unit[p], set()).add(u)
                pred.setdefault(u, set()).add(unit[p])
    alive = set(unit)
    for edges, other in ((pred, succ), (succ, pred)):
        # Peel units without live predecessors (then without successors).
        count = {u: len(edges.get(u, ())) for u in alive}
        ready = [u for u in alive if count[u] == 0]
        while ready:
            u = ready.pop()
            alive.discard(u)
            for v in other.get(u, ()):
                if v in alive:
                    count[v] -= 1
                    if count[v] == 0:
                        ready.append(v)
    return alive


def _make_cluster(order, nodes, position, clients, graph_outputs):
    members = [nodes[m] for m in order]
    inside = set(order)
    inputs, seen = [], set()
    for node in members:
        for inp in node.inputs:
            p = position.get(inp.owner) if inp.owner is not None else None
            if (p is None or p not in inside) and id(inp) not in seen:
                seen.add(id(inp))
                inputs.append(inp)
    outputs = [n.outputs[0] for n in members
               if n.outputs[0] in graph_outputs or
               any(c not in inside for c in clients.get(n.outputs[0], ()))]
    return Cluster(members, inputs, outputs)


def _unit_order_of_nodes(nodes, clusters):
    """``cluster_order`` over the topologically sorted ``nodes``, or ``None``
    when the clusters form a cycle."""
    units, number = _numbered_units(nodes, clusters)
    deps = []
    dependents = [[] for _ in units]
    for j, unit in enumerate(units):
        preds = set()
        for node in (unit.nodes if isinstance(unit, Cluster) else (unit,)):
            for inp in node.inputs:
                owner = inp.owner
                if owner is None:
                    continue
                # (-1: a node outside ``nodes``, a unit that never runs)
                i = number.get(owner, -1)
                if i != j and i not in preds:
                    preds.add(i)
                    if i >= 0:
                        dependents[i].append(j)
        deps.append(len(preds))
    return _kahn(units, deps, dependents)


def _numbered_units(nodes, clusters):
    """``(units, number)``: the units in order of their first node, and the
    number (index in ``units``) of each node's unit, so the edges between
    units are found with one lookup per input."""
    unit_of = {}
    for cluster in clusters:
        for node in cluster.nodes:
            unit_of[node] = cluster
    number = {}  # node (and cluster) -> the number of its unit
    units = []
    for node in nodes:
        cluster = unit_of.get(node)
        if cluster is None:
            number[node] = len(units)
            units.append(node)
            continue
        j = number.get(cluster)
        if j is None:
            j = number[cluster] = len(units)
            units.append(cluster)
        number[node] = j
    return units, number


def _unit_order_of_positions(nodes, position, producers, clusters):
    """``_unit_order_of_nodes`` from the search's walk of the edges:
    ``position`` (node -> index in ``nodes``) and ``producers`` (per
    position, those of its inputs' owners; every owner among ``nodes``).
    The units, their numbers and the order are the same; each edge costs
    a list lookup instead of a dict lookup per input."""
    count = len(nodes)
    cluster_no = [-1] * count
    for ci, cluster in enumerate(clusters):
        for node in cluster.nodes:
            cluster_no[position[node]] = ci
    number = [0] * count  # position -> the number of its unit
    first = [-1] * len(clusters)
    units, members = [], []
    for k in range(count):
        ci = cluster_no[k]
        if ci < 0:
            number[k] = len(units)
            units.append(nodes[k])
            members.append((k,))
            continue
        j = first[ci]
        if j < 0:
            j = first[ci] = len(units)
            units.append(clusters[ci])
            members.append([])
        number[k] = j
        members[j].append(k)
    deps = []
    dependents = [[] for _ in units]
    # (``seen[i] == j``: unit ``i`` already counted as a predecessor of
    # unit ``j``; the units are walked one at a time, so no set per unit)
    seen = [-1] * len(units)
    for j, mine in enumerate(members):
        d = 0
        for k in mine:
            for p in producers[k]:
                i = number[p]
                if i != j and seen[i] != j:
                    seen[i] = j
                    d += 1
                    dependents[i].append(j)
        deps.append(d)
    return _kahn(units, deps, dependents)


def _kahn(units, deps, dependents):
    """Kahn's walk over the units (``deps[j]``: how many units unit ``j``
    waits for; ``dependents[i]``: the units waiting for unit ``i``), the
    ready units kept as a stack (at the start, lowest number on top);
    ``None`` when the units form a cycle."""
    ready = [j for j in range(len(units) - 1, -1, -1) if deps[j] == 0]
    order = []
    while ready:
        j = ready.pop()
        order.append(units[j])
        for nxt in dependents[j]:
            deps[nxt] -= 1
            if deps[nxt] == 0:
                ready.append(nxt)
    return order if len(order) == len(units) else None
