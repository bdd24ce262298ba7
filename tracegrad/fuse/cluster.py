"""Find fusable clusters: maximal convex sets of elementwise nodes.

A cluster is a set of ``Elemwise`` nodes (and, on the CPU, ``SumTo`` nodes
that sum nothing when shapes agree: see ``is_fusable``), connected through producer →
consumer edges, that can run as one fused kernel:

- every node has the same output ndim and the same static broadcast pattern
  (which axes are known to have length 1), so the cluster has one iteration
  space and no node is computed on more elements than the unfused graph
  would compute it on (inputs of other patterns simply broadcast in);
- it is *convex*: no path leaves the cluster and re-enters it (``y = exp(x);
  z = y * sum(y)``: ``exp`` and ``mul`` cannot share a kernel because ``sum``
  needs all of ``y`` first). Reductions and every other non-elementwise node
  therefore end a cluster;
- it has at most ``max_operands`` inputs plus outputs (a kernel's parameter
  list is finite); a cluster that would grow past the cap stops growing there
  and the rest forms further clusters.

Intermediate values may also be used outside the cluster (or be graph
outputs): they become extra outputs of the fused kernel.

The search is greedy in topological order: each node joins the clusters of
the producers it may legally merge with. Convexity is checked with ancestor
bitsets (Python ints) over node positions, so the walk is iterative and cheap.
"""
from tracegrad.fuse.targets import node_check
from tracegrad.ops.elemwise import Elemwise, SumTo
from tracegrad.progress import current as current_progress
from tracegrad.trace import Constant, toposort

from tracegrad.config import DEFAULT_MAX_OPERANDS  # (a tunable: tracegrad/config.py)


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


def is_fusable(node, target="cpu"):
    """Whether ``node`` may join a cluster for ``target`` (``'cpu'``/``'cuda'``).

    Every elementwise row runs on the CPU program (rows that are not plain
    ufuncs are called on each block); a device's backend may restrict its
    rows (``fuse.targets.NODE_CHECKS``: on CUDA a row needs a ``c``
    expression).
    On the CPU, a ``SumTo(g, like)`` whose operands have one ndim and one
    static broadcast pattern joins too: it sums nothing whenever the shapes
    agree at run time, which the program checks (see ``spec.SUM_TO``); this
    lets the gradient of a product fuse across it.
    """
    op = node.op
    if isinstance(op, SumTo):
        g, like = node.inputs
        return target == "cpu" and _pattern(g) == _pattern(like)
    if not isinstance(op, Elemwise) or len(node.outputs) != 1:
        return False
    check = node_check(target)   # (a backend's: fuse.targets)
    return check is None or check(node)


def _pattern(var):
    shape = var.type.shape
    return len(shape), tuple(s == 1 for s in shape)


def find_clusters(outputs, target="cpu", max_operands=DEFAULT_MAX_OPERANDS,
                  min_size=2, order=None):
    """The fusable clusters of the graph computing ``outputs``.

    Returns a list of ``Cluster`` in topological order of their last member;
    clusters of fewer than ``min_size`` nodes are left out (a lone node gains
    nothing from fusion). ``order``: ``toposort(outputs)``, when the caller
    has it already.
    """
    return find_units(outputs, target, max_operands, min_size, order)[0]


def find_units(outputs, target="cpu", max_operands=DEFAULT_MAX_OPERANDS,
               min_size=2, order=None):
    """``(clusters, units)``: ``find_clusters``'s clusters and
    ``cluster_order``'s units, from one walk of the contracted graph. That
    walk is also the cycle check: only when it finds a cycle (which the
    ancestor sets of the search can miss, see ``_break_cycles``) are the
    clusters cut and ordered again."""
    search = _Search(outputs, target, max_operands, order)
    search.run()
    nodes, position = search.nodes, search.position
    live = []
    seen = set()
    for group in search.group_of:
        if group is not None and id(group) not in seen:
            seen.add(id(group))
            if len(group.members) >= min_size:
                live.append(group)
    clusters = [_cluster_of(group, search) for group in live]
    clusters.sort(key=lambda c: position[c.nodes[-1]])
    units = _unit_order(nodes, clusters)
    if units is None:
        groups = _break_cycles([sorted(g.members) for g in live], nodes, position)
        clusters = [_make_cluster(g, nodes, position, search.clients, search.graph_outputs)
                    for g in groups if len(g) >= min_size]
        clusters.sort(key=lambda c: position[c.nodes[-1]])
        units = _unit_order(nodes, clusters)
    return clusters, units


def _cluster_of(group, search):
    """The ``Cluster`` of a grown group: its outputs are the group's border
    (``_Group.outputs``: exactly its members' variables needed outside),
    in member order."""
    position, nodes = search.position, search.nodes
    members = sorted(group.members)
    outputs = list(group.outputs.values())
    if len(outputs) > 1:
        outputs.sort(key=lambda v: position[v.owner])
    return Cluster([nodes[m] for m in members], None, outputs)


class _Search:
    """The greedy walk of ``find_clusters`` over the nodes in topological
    order (positions ``k``).

    ``anc[k]``: for a node outside every group, every node it depends on
    once each group is contracted to one node (a path may enter a group at
    one member and leave at another); a group keeps the same set for all of
    its members (``_Group.anc``), a member's own is never read again.
    """

    def __init__(self, outputs, target, max_operands, order=None):
        self.nodes = nodes = toposort(outputs) if order is None else order
        self.position = {node: k for k, node in enumerate(nodes)}
        self.clients = clients = {}
        for k, node in enumerate(nodes):
            for inp in node.inputs:
                clients.setdefault(inp, []).append(k)
        self.graph_outputs = set(outputs)
        self.target = target
        self.max_operands = max_operands
        self.anc = [0] * len(nodes)
        self.group_of = [None] * len(nodes)
        # (dtype-free) output pattern per position, asked once per edge
        self.patterns = [None] * len(nodes)

    def producers(self, node):
        """Positions of the nodes computing ``node``'s inputs (in input order)."""
        get = self.position.get  # (``get(None)`` is None: graph inputs drop out)
        return [p for inp in node.inputs if (p := get(inp.owner)) is not None]

    def contracted_ancestors(self, producers):
        """What a node reading ``producers`` depends on, groups contracted:
        each producer's ancestors and the producer, or its group's."""
        anc, group_of = self.anc, self.group_of
        bits = 0
        for p in producers:
            g = group_of[p]
            bits |= (anc[p] | (1 << p)) if g is None else (g.anc | g.mask)
        return bits

    def run(self):
        nodes, group_of, target = self.nodes, self.group_of, self.target
        known = {}  # static shape -> its pattern (few distinct shapes)
        progress = current_progress()
        report = progress.every or -1
        for k, node in enumerate(nodes):
            if k == report:  # (the progress line, on a big graph only)
                report += progress.every
                progress.advance(k, len(nodes))
            producers = self.producers(node)
            if not is_fusable(node, target):
                self.anc[k] = self.contracted_ancestors(producers)
                continue
            shape = node.outputs[0].type.shape
            pattern = known.get(shape)
            if pattern is None:
                pattern = known[shape] = _pattern(node.outputs[0])
            self.patterns[k] = pattern
            mine = group_of[k] = _Group(k, node, self, producers)
            self.grow(mine, k, producers)

    def grow(self, mine, k, producers):
        """Merge the new group of node ``k`` with its producers' groups, one
        after the other, where the union stays legal."""
        group_of, patterns = self.group_of, self.patterns
        pattern = patterns[k]
        for p in producers:
            other = group_of[p]
            if other is None or other is mine or patterns[p] != pattern:
                continue
            merged = mine.merged_with(other, self)
            if merged is None or merged.operands() > self.max_operands:
                continue
            mine = merged.adopt_members(mine, other, group_of)
        if mine.anc is None:  # no merge: its ancestors are read from now on
            mine.anc = self.contracted_ancestors(producers)


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


class _Group:
    """A cluster being grown: members (node positions), their bitset, the
    contracted ancestors of the members, the outside nodes feeding them, and
    the variables crossing its border (constants left out: see ``__init__``).

    A new group of one node ``k`` leaves ``anc`` at ``None`` until it is
    needed (``_ancestors``): when ``k`` joins a producer's group, the union's
    ancestors are mostly that group's (see ``merged_with``), so the node's
    own set, O(n) bits on a chain, is never built."""

    __slots__ = ("members", "mask", "anc", "feeders", "inputs", "outputs",
                 "graph_outputs", "producers")

    def __init__(self, k, node, search, producers):
        self.members = [k]
        self.mask = 1 << k
        self.anc = None
        self.producers = producers
        self.feeders = set(producers)
        # Constants are left out: they are no operand of the kernel (baked
        # into its spec) and always cross the border, so a merge neither
        # re-examines nor counts them (a chain of ``+ c_i * f(x_i)`` has as
        # many constants as inputs).
        self.inputs = {id(inp): inp for inp in node.inputs
                       if not isinstance(inp, Constant)}
        out = node.outputs[0]
        self.graph_outputs = search.graph_outputs
        self.outputs = {id(out): out}

    def _union_ancestors(self, other, mask, search):
        """``(self.anc | other.anc) & ~mask``, the union's contracted
        ancestors. For a new one-node group whose producers all lie in
        ``other`` (a chain) that is ``other.anc`` (its own set is
        ``other.anc | other.mask`` then): no O(n)-bit operation."""
        if self.anc is None:
            group_of = search.group_of
            rest = [p for p in self.producers if group_of[p] is not other]
            if not rest:
                return other.anc
            # (The producers' groups are as they were when the node was
            # visited: only merges with this group change them.)
            self.anc = search.contracted_ancestors(self.producers)
        return (self.anc | other.anc) & ~mask

    def _feeders_outside(self, other, mask, search):
        """The nodes outside the union feeding it, or ``None`` when one of
        them depends on the union (a path would leave it and come back).
        Membership is asked of ``group_of``, not of the bit ``(mask >> p) &
        1``, whose shift copies O(n) bits."""
        group_of, anc = search.group_of, search.anc
        feeders = set()
        for group in (self, other):
            for p in group.feeders:
                g = group_of[p]
                if g is None:
                    if anc[p] & mask:
                        return None
                elif g is not self and g is not other:
                    if g.anc & mask:
                        return None
                else:
                    continue
                feeders.add(p)
        return feeders

    def merged_with(self, other, search):
        """The union of two groups, or ``None`` when a path would leave it
        and come back (it would not be convex, or clusters would form a
        cycle)."""
        mask = self.mask | other.mask
        feeders = self._feeders_outside(other, mask, search)
        if feeders is None:
            return None
        new = _Group.__new__(_Group)
        new.members = None  # filled by ``adopt_members`` once accepted
        new.producers = None
        new.mask = mask
        new.anc = self._union_ancestors(other, mask, search)
        new.feeders = feeders
        new.graph_outputs = self.graph_outputs
        if self.anc is None:
            new.inputs, new.outputs = self._border_with_one(other, search)
        else:
            new.inputs, new.outputs = self._border(other, search)
        return new

    def _border(self, other, search):
        """The union's inputs and outputs, from both groups'. A variable one
        group reads from the other is among the other's outputs (it is
        needed outside that group), so the union's inputs are both groups'
        less both groups' outputs; an output stays one unless the other
        group reads it and nothing outside the union does. (Dict copies and
        key lookups: this runs once per merge over up to ``max_operands``
        variables, the inner loop of the search.)"""
        inputs = dict(self.inputs)
        inputs.update(other.inputs)
        outputs = {}
        for group, rest in ((self, other), (other, self)):
            read = rest.inputs
            for key, var in group.outputs.items():
                inputs.pop(key, None)
                if key not in read or self._needed_outside(var, other, search):
                    outputs[key] = var
        return inputs, outputs

    def _border_with_one(self, other, search):
        """``_border`` when ``self`` is a new node's group (``anc`` not made
        yet), ``other`` a producer's: the node comes after every member of
        ``other``, so only the variables it reads can stop crossing the
        border; ``other``'s inputs and outputs are copied, not re-examined."""
        group_of, position = search.group_of, search.position
        inputs = dict(other.inputs)
        outputs = dict(other.outputs)
        for key, var in self.inputs.items():
            owner = var.owner
            p = position.get(owner) if owner is not None else None
            if p is None or group_of[p] is not other:
                inputs[key] = var
            elif key in outputs and not self._needed_outside(var, other, search):
                del outputs[key]
        for key, var in self.outputs.items():
            if self._needed_outside(var, other, search):
                outputs[key] = var
        return inputs, outputs

    def _needed_outside(self, var, other, search):
        """Whether ``var`` is a graph output or read by a node outside the
        union of ``self`` and ``other``."""
        if var in self.graph_outputs:
            return True
        group_of = search.group_of
        for c in search.clients.get(var, ()):
            g = group_of[c]
            if g is not self and g is not other:
                return True
        return False

    def adopt_members(self, first, second, group_of):
        """Make the union of ``first`` and ``second`` live, ``self`` being that
        union as ``merged_with`` computed it: the larger of the two groups
        takes ``self``'s attributes and the smaller's members, and only those
        are re-pointed in ``group_of``, so growing a group one node at a time
        costs O(n log n) in all, not O(n^2). Returns the live group. (Member
        order is irrelevant: clusters sort their members.)"""
        big, small = (first, second) if len(first.members) >= len(second.members) \
            else (second, first)
        big.mask, big.anc, big.feeders = self.mask, self.anc, self.feeders
        big.inputs, big.outputs, big.producers = self.inputs, self.outputs, None
        big.members.extend(small.members)
        for m in small.members:
            group_of[m] = big
        small.members = None  # dead: merged into ``big``
        return big

    def operands(self):
        return len(self.inputs) + len(self.outputs)  # (no constants: see __init__)


def cluster_order(outputs, clusters, order=None):
    """Units (a ``Cluster`` or a lone ``Apply``) in an order where each comes
    after everything it reads. Convexity makes the cluster graph acyclic.
    ``order``: ``toposort(outputs)``, when the caller has it already."""
    units = _unit_order(toposort(outputs) if order is None else order, clusters)
    if units is None:  # pragma: no cover - convexity guarantees this
        raise AssertionError("fusion produced a cycle between clusters")
    return units


def _unit_order(nodes, clusters):
    """``cluster_order`` over the topologically sorted ``nodes``, or ``None``
    when the clusters form a cycle."""
    unit_of = {}
    for cluster in clusters:
        for node in cluster.nodes:
            unit_of[node] = cluster
    units = []
    seen = set()
    for node in nodes:
        unit = unit_of.get(node, node)
        if id(unit) not in seen:
            seen.add(id(unit))
            units.append(unit)
    deps = {}
    dependents = {}
    for unit in units:
        if isinstance(unit, Cluster):
            members = unit.nodes
            inside = set(members)
        else:  # (most units: a lone node, which never reads itself)
            members = inside = (unit,)
        preds = set()
        for node in members:
            for inp in node.inputs:
                owner = inp.owner
                if owner is None or owner in inside:
                    continue
                pred = unit_of.get(owner, owner)
                if id(pred) not in preds:
                    preds.add(id(pred))
                    dependents.setdefault(id(pred), []).append(unit)
        deps[id(unit)] = len(preds)
    ready = [u for u in units if deps[id(u)] == 0]
    ready.reverse()
    order = []
    while ready:
        unit = ready.pop()
        order.append(unit)
        for nxt in dependents.get(id(unit), ()):
            deps[id(nxt)] -= 1
            if deps[id(nxt)] == 0:
                ready.append(nxt)
    return order if len(order) == len(units) else None
