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
# (``Cluster`` and the unit order live in ``units``; re-exported here)
from tracegrad.fuse.units import (  # noqa: F401
    Cluster, _break_cycles, _make_cluster, _numbered_units, _unit_order_of_nodes,
    _unit_order_of_positions, _units_on_cycles)


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
    live = [group for group in search.live if len(group.members) >= min_size]
    clusters = [_cluster_of(group, search) for group in live]
    clusters.sort(key=lambda c: position[c.nodes[-1]])
    units = _unit_order(search, clusters)
    if units is None:
        groups = _break_cycles([sorted(g.members) for g in live], nodes, position)
        clusters = [_make_cluster(g, nodes, position, search.clients, search.graph_outputs)
                    for g in groups if len(g) >= min_size]
        clusters.sort(key=lambda c: position[c.nodes[-1]])
        units = _unit_order(search, clusters)
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
    ``live``: the groups grown so far (a dict: insertion order).
    """

    def __init__(self, outputs, target, max_operands, order=None):
        self.nodes = nodes = toposort(outputs) if order is None else order
        # One walk of the edges: the readers of each variable computed here
        # and the producers' positions of each node (in input order; graph
        # inputs drop out: ``get(None)`` is None). A producer comes before
        # its reader, so its position is known when the reader is reached.
        self.position = position = {}
        self.clients = clients = {}
        self.producers = producers = []
        get = position.get
        foreign = False
        for k, node in enumerate(nodes):
            position[node] = k
            mine = []
            for inp in node.inputs:
                owner = inp.owner
                p = get(owner)
                if p is None:
                    # (nobody asks for the readers of a graph input; a node
                    # outside ``nodes``: the units are ordered from a walk of
                    # the nodes, ``_unit_order``)
                    foreign = foreign or owner is not None
                    continue
                mine.append(p)
                readers = clients.get(inp)
                if readers is None:
                    clients[inp] = [k]
                else:
                    readers.append(k)
            producers.append(mine)
        self.foreign = foreign
        self.graph_outputs = set(outputs)
        self.target = target
        self.max_operands = max_operands
        self.anc = [0] * len(nodes)
        self.group_of = [None] * len(nodes)
        self.live = {}
        # (dtype-free) output pattern per position, asked once per edge
        self.patterns = [None] * len(nodes)

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
        nodes, producers, target = self.nodes, self.producers, self.target
        known = {}  # static shape -> its pattern (few distinct shapes)
        kinds = {}  # op class -> ``_fusable_kind``
        check = node_check(target)
        progress = current_progress()
        report = progress.every or -1
        for k, node in enumerate(nodes):
            if k == report:  # (the progress line, on a big graph only)
                report += progress.every
                progress.advance(k, len(nodes))
            op = node.op
            kind = kinds.get(type(op))
            if kind is None:
                kind = kinds[type(op)] = _fusable_kind(op)
            # (a plain elementwise row on a target without a row check needs
            # no call of ``is_fusable``: most nodes)
            if not (len(node.outputs) == 1 if kind is _ELEMWISE and check is None
                    else kind is not None and is_fusable(node, target)):
                self.anc[k] = self.contracted_ancestors(producers[k])
                continue
            shape = node.outputs[0].type.shape
            pattern = known.get(shape)
            if pattern is None:
                pattern = known[shape] = _pattern(node.outputs[0])
            self.patterns[k] = pattern
            self.grow(k, node, producers[k], pattern)

    def grow(self, k, node, producers, pattern):
        """Merge node ``k`` with its producers' groups, one after the other,
        where the union stays legal: first the node joins a group (``_join``),
        then that group merges with the others (``_merge``); a node that joins
        none forms a group of its own."""
        group_of, patterns = self.group_of, self.patterns
        mine = None  # (the node's group, once it has one)
        for p in producers:
            other = group_of[p]
            if other is None or other is mine or patterns[p] != pattern:
                continue
            if mine is None:
                if self._join(k, node, producers, other):
                    mine = other
            else:
                mine = self._merge(mine, other)
        if mine is None:
            mine = group_of[k] = _Group(k, node, self, producers)
            self.live[mine] = None

    def _join(self, k, node, producers, other):
        """Add node ``k`` (reached now, in no group yet) to ``other``, a
        producer's group, when the union is convex and within
        ``max_operands``; returns whether it did. Only the node's side is
        examined: ``other``'s own lone feeders never depend on the union (a
        lone feeder's ancestors come before it, so before ``k``, and
        ``_merge`` and this check kept them off ``other``'s members), and
        only the variables the node reads can stop crossing the border.
        Every ancestor set asked here holds only nodes before ``k``, so
        ``other.mask`` stands for the union's."""
        group_of, anc, mask = self.group_of, self.anc, other.mask
        lone, feeders, rest = 0, [], []  # (``rest``: producers outside ``other``)
        for p in producers:
            g = group_of[p]
            if g is other:
                continue
            rest.append(p)
            if g is None:
                lone |= anc[p]
            else:
                feeders.append(p)
        if lone & mask:
            return False
        for group_feeders in (other.feeders, feeders):
            for p in group_feeders:
                g = group_of[p]
                if g is not other and g.anc & mask:
                    return False
        border = self._join_border(k, node, other)
        if border is None:
            return False
        added, dropped, out = border
        if rest:  # (else, a chain: the union's ancestors are ``other``'s)
            # (the checks above kept what ``rest`` depends on off the union)
            other.anc |= self.contracted_ancestors(rest)
        other.mask = mask | (1 << k)
        other.lone_anc |= lone
        other.feeders.update(feeders)
        other.inputs.update(added)
        outputs = other.outputs
        for key in dropped:
            del outputs[key]
        if out is not None:
            outputs[id(out)] = out
        other.members.append(k)
        group_of[k] = other
        return True

    def _join_border(self, k, node, other):
        """``(added inputs, dropped output keys, output or None)``: how
        ``other``'s border changes when node ``k`` joins it, or ``None`` when
        the union would have more than ``max_operands`` operands. The node
        comes after every member of ``other`` and before every other reader
        of its own output: that output crosses the border when it is read
        at all or is a graph output."""
        group_of, position = self.group_of, self.position
        inputs, outputs = other.inputs, other.outputs
        added, dropped = {}, set()
        for var in node.inputs:
            key = id(var)
            if key in added or key in dropped or isinstance(var, Constant):
                continue
            owner = var.owner
            p = position.get(owner) if owner is not None else None
            if p is None or group_of[p] is not other:
                if key not in inputs:
                    added[key] = var
            elif key in outputs and not self._read_outside(var, k, other):
                dropped.add(key)
        out = node.outputs[0]
        if out not in self.graph_outputs and out not in self.clients:
            out = None
        count = (len(inputs) + len(added) + len(outputs) - len(dropped)
                 + (out is not None))
        return None if count > self.max_operands else (added, dropped, out)

    def _read_outside(self, var, k, other):
        """Whether ``var`` is a graph output or read by a node outside the
        union of node ``k`` and ``other``."""
        if var in self.graph_outputs:
            return True
        group_of = self.group_of
        for c in self.clients.get(var, ()):
            if c != k and group_of[c] is not other:
                return True
        return False

    def _merge(self, mine, other):
        """The union of ``mine`` and ``other`` when it is legal (convex,
        within ``max_operands``; else ``mine``): the larger of the two
        groups takes in the smaller's members and only those are re-pointed
        in ``group_of``, so growing a group one node at a time costs
        O(n log n) in all, not O(n^2). Returns the node's group, the live
        one. (Member order is irrelevant: clusters sort their members.)"""
        big, small = (mine, other) if len(mine.members) >= len(other.members) \
            else (other, mine)
        mask = big.mask | small.mask
        lone = big.lone_anc | small.lone_anc
        if lone & mask:
            return mine
        feeders = big.feeders_outside(small, mask, self)
        if feeders is None:
            return mine
        border = self._merge_border(big, small)
        if border is None:
            return mine
        added, removed, dropped, kept = border
        big.anc = (big.anc | small.anc) & ~mask
        big.mask, big.lone_anc, big.feeders = mask, lone, feeders
        inputs, outputs = big.inputs, big.outputs
        for key in removed:
            del inputs[key]
        inputs.update(added)
        for key in dropped:
            del outputs[key]
        outputs.update(kept)
        big.members.extend(small.members)
        group_of = self.group_of
        for m in small.members:
            group_of[m] = big
        small.members = None  # dead: merged into ``big``
        del self.live[small]
        return big

    def _merge_border(self, big, small):
        """``(inputs added, input keys removed, output keys removed, outputs
        added)``: how ``big``'s border changes when ``small`` merges into it,
        or ``None`` when the union would have more than ``max_operands``
        operands. A group's inputs and outputs never share a variable, and
        a variable one group reads from the other is among the other's
        outputs, so the union's inputs are both groups' less both groups'
        outputs; an output stays one unless the other group reads it and
        nothing outside the union does. Only ``small``'s variables are
        looked at (a merge costs the smaller border, not the larger)."""
        big_in, big_out = big.inputs, big.outputs
        added, dropped = {}, []
        for key, var in small.inputs.items():
            if key in big_out:
                if not big.needed_outside(var, small, self):
                    dropped.append(key)
            elif key not in big_in:
                added[key] = var
        removed, kept = [], {}
        for key, var in small.outputs.items():
            if key in big_in:
                removed.append(key)
                if not big.needed_outside(var, small, self):
                    continue
            kept[key] = var
        count = (len(big_in) + len(added) - len(removed)
                 + len(big_out) - len(dropped) + len(kept))
        return None if count > self.max_operands else (added, removed, dropped, kept)


_ELEMWISE, _SUM_TO = "elemwise", "sum_to"


def _fusable_kind(op):
    """What an op's class says of ``is_fusable``: ``_SUM_TO``,
    ``_ELEMWISE`` (the node may join) or ``None`` (it never does)."""
    if isinstance(op, SumTo):
        return _SUM_TO
    return _ELEMWISE if isinstance(op, Elemwise) else None


class _Group:
    """A cluster being grown: members (node positions), their bitset, the
    contracted ancestors of the members, what feeds them from outside and
    the variables crossing its border (constants left out: see
    ``__init__``).

    Feeders outside every group (lone nodes) stay lone and their ancestor
    sets never change: they are kept as one union, ``lone_anc`` (the union
    is convex only if it meets no member). Feeders in groups (``feeders``,
    positions) are asked of their current group's ancestors at each merge."""

    __slots__ = ("members", "mask", "anc", "lone_anc", "feeders", "inputs", "outputs")

    def __init__(self, k, node, search, producers):
        self.members = [k]
        self.mask = 1 << k
        # (``contracted_ancestors`` and the feeders split in one loop)
        group_of, anc = search.group_of, search.anc
        bits = lone = 0
        feeders = set()
        for p in producers:
            g = group_of[p]
            if g is None:
                lone |= anc[p]
                bits |= anc[p] | (1 << p)
            else:
                feeders.add(p)
                bits |= g.anc | g.mask
        self.anc, self.lone_anc, self.feeders = bits, lone, feeders
        # Constants are left out: they are no operand of the kernel (baked
        # into its spec) and always cross the border, so a merge neither
        # re-examines nor counts them (a chain of ``+ c_i * f(x_i)`` has as
        # many constants as inputs).
        self.inputs = {id(inp): inp for inp in node.inputs
                       if not isinstance(inp, Constant)}
        out = node.outputs[0]
        self.outputs = {id(out): out}

    def feeders_outside(self, other, mask, search):
        """The group feeders outside the union of ``self`` and ``other``
        (``mask``), or ``None`` when one of them depends on the union (a path
        would leave it and come back: it would not be convex, or clusters
        would form a cycle)."""
        group_of = search.group_of
        feeders = set()
        for group in (self, other):
            for p in group.feeders:
                g = group_of[p]
                if g is self or g is other:
                    continue
                if g.anc & mask:
                    return None
                feeders.add(p)
        return feeders

    def needed_outside(self, var, other, search):
        """Whether ``var`` is a graph output or read by a node outside the
        union of ``self`` and ``other``."""
        if var in search.graph_outputs:
            return True
        group_of = search.group_of
        for c in search.clients.get(var, ()):
            g = group_of[c]
            if g is not self and g is not other:
                return True
        return False


def cluster_order(outputs, clusters, order=None):
    """Units (a ``Cluster`` or a lone ``Apply``) in an order where each comes
    after everything it reads. Convexity makes the cluster graph acyclic.
    ``order``: ``toposort(outputs)``, when the caller has it already."""
    units = _unit_order(toposort(outputs) if order is None else order, clusters)
    if units is None:  # pragma: no cover - convexity guarantees this
        raise AssertionError("fusion produced a cycle between clusters")
    return units


def _unit_order(walk, clusters):
    """``cluster_order`` over ``walk``, or ``None`` when the clusters form a
    cycle. ``walk``: the nodes in topological order, or the ``_Search``
    that walked them (its positions and producers then give the edges
    between units, unless a node reads one from outside its nodes)."""
    if not isinstance(walk, _Search):
        return _unit_order_of_nodes(walk, clusters)
    if walk.foreign:
        return _unit_order_of_nodes(walk.nodes, clusters)
    return _unit_order_of_positions(walk.nodes, walk.position, walk.producers, clusters)
