"""``RewriteGraph``: the rewrite phase of a ``FunctionGraph``, always merged.

There is one graph, the ``FunctionGraph`` (``tracegrad/fgraph.py``): a
compiled function's, or one made ``over`` bare outputs. The rewriter owns
the nodes it holds (they come from one clone of the user's graph) and edits
them in place: ``replace(old, new)`` re-points every client of ``old`` at
``new``. It edits the graph's own

- ``outputs`` (the same list), ``apply_nodes`` (``nodes`` here) and
  ``clients``: for each variable, the ``(node, input index)`` pairs reading
  it (``node`` is ``OUTPUT``, ``"output"``, for a graph output, the index
  then being the output position), the encoding every pass reads;

and keeps beside them, for the rewrite phase only (dropped with this
object; ``finish`` hands the graph back):

- a hash-consing index ``(op, inputs) -> node``, so two nodes applying the
  same op to the same variables never coexist: building the graph merges
  common subexpressions, a rewrite's new nodes are merged into existing ones
  as they are imported, and a node whose inputs change into those of another
  node is merged with it (the cascade is iterative);
- one constant per signature (``Constant.signature()``).

Ops opt out of merging with ``op.is_random = True`` (two draws must differ).

For the engine's worklist (``engine.run_phase``) the graph also keeps

- ``tokens``: node -> ``(rule keys known to leave the node unchanged,
  epoch when recorded, the engine's plans of the phase that recorded it)``;
- ``changed_at``: node -> the epoch (a count of edits) when the node was
  added or its inputs were re-pointed. A token stays valid while no node at
  or above its node changed after it was recorded; the engine computes the
  latest change above each node as it walks them in topological order;
- ``watchers``: variable -> ``(node, rule, counted)``, a rule that asked
  for its readers while visiting the node (``Context.clients``, or
  ``n_clients``: counted); a change of those readers takes that rule out of
  the node's token (only that rule: the others did not look at the
  readers; and only theirs: a rule below that asks is a watcher too), or,
  for a rule that can say what it read of them (``Rule.readers``: the
  product and sum rules), asks it again once the edit is over
  (``recheck``) and keeps it where nothing it read changed.
"""
from tracegrad.clientlist import ClientList
from tracegrad.fgraph import OUTPUT, FunctionGraph
from tracegrad.trace import Constant, toposort


class OpClasses(dict):
    """``{id(op): (op, class)}``: each op's class of equal ops (an int;
    ``None``: its nodes are not merged), and in ``equal`` the class of each
    op seen first of its class (``op -> class``). Many nodes share one op
    object: the class is worked out once per op object (``node_key``)."""

    __slots__ = ("equal",)

    def __init__(self):
        super().__init__()
        self.equal = {}

    def add(self, op):
        """Record (and return) ``op``'s entry: the class of the first equal
        op seen, else a new one; ``None`` for a random op or one whose
        properties are unhashable."""
        cls = None
        if not getattr(op, "is_random", False):
            equal = self.equal
            try:
                cls = equal.setdefault(op, len(equal))
            except TypeError:  # unhashable op properties
                pass
        entry = self[id(op)] = (op, cls)  # (holds op: its id stays its own)
        return entry


def node_key(node, op_classes):
    """The merge key of ``node``, ``(class of its op, *inputs)`` (see
    ``OpClasses``), or ``None`` when it must not be merged. A plain tuple
    of an int and variables: hashed and compared in C (variables by
    identity), where hashing the op would build the tuple of its
    properties at every lookup."""
    op = node.op
    entry = op_classes.get(id(op))
    if entry is None:
        entry = op_classes.add(op)
    cls = entry[1]
    return None if cls is None else (cls, *node.inputs)


class RewriteGraph:
    """The rewrite phase of a graph: merging, the worklist's state."""

    def __init__(self, outputs=None, order=None, graph=None):
        """Rewrite ``graph`` (a ``FunctionGraph`` owning its nodes), or a
        graph ``over`` ``outputs``. ``order``: ``toposort(outputs)`` when
        the caller has it (the clone's walk)."""
        if graph is None:
            graph = FunctionGraph.over(outputs)
        self.graph = graph
        self.outputs = graph.outputs  # (the graph's lists and dicts, edited in place)
        self.clients = {}
        self.nodes = set()
        self._before = graph.begin_rewrite(self.clients, self.nodes)
        self._by_key = {}
        self._op_classes = OpClasses()
        self._constants = {}
        self._forward = {}  # replaced variable -> its replacement
        self.changes = 0
        # ``toposort()`` when known (None: to walk again), and whether nodes
        # were pruned from the graph since, to filter out (``_keeps_order``)
        self._order = None
        self._order_pruned = False
        self.tokens = {}
        self.watchers = {}
        self._token_cuts = {}  # (token, rule) -> the token without the rule
        self.changed_at = {}
        self.dropped = 0  # tokens dropped by watchers
        # {(node, rule): whether a count changed} for the rules with
        # ``Rule.readers`` whose watched readers changed in the edit under
        # way (``recheck`` asks them once it is over), and what
        # they recorded (``Context.answer``)
        self.rechecks = {}
        self.answers = {}
        self.epoch = 0  # counts every edit (added, re-pointed or pruned nodes)
        # (epoch, {node: latest change at or above it}) of the last pass
        # that walked every node without an edit (``engine._skim``), or of
        # the load: each node is loaded after the nodes above it (merged
        # ones included), so that latest change is its own ``changed_at``,
        # which spares the first phase's first pass working it out
        order = toposort(self.outputs) if order is None else order
        memo, merged = self._load(order)
        self.walked = (self.epoch, dict(self.changed_at))
        if not merged:  # (no input re-pointed: the order stands)
            self._order = order
        for i, out in enumerate(self.outputs):
            out = memo.get(out, out)
            if isinstance(out, Constant):
                out = self._canonical_constant(out)
            self.outputs[i] = out
            self._clients_of(out).append((OUTPUT, i))

    def _load(self, order):
        """``_add_node`` for each node of ``order`` (a topological order of
        the whole graph), with what a fresh graph makes certain taken out
        of the loop: no watchers yet, a node's outputs read by nobody
        before it, each leaf seen once (its canonical constant remembered
        in ``memo``). Returns ``(memo, whether a node was merged)``."""
        memo = {}
        merged = False
        by_key, op_classes = self._by_key, self._op_classes
        nodes, clients, changed_at = self.nodes, self.clients, self.changed_at
        canonical = self._canonical_constant
        epoch = self.epoch
        for node in order:
            inputs = node.inputs
            for i, inp in enumerate(inputs):
                new = memo.get(inp)
                if new is None:
                    if inp.owner is not None:
                        continue
                    new = memo[inp] = canonical(inp) if isinstance(inp, Constant) else inp
                if new is not inp:
                    inputs[i] = new
            key = node_key(node, op_classes)
            if key is not None:
                other = by_key.get(key)
                if other is not None:
                    for old, keep in zip(node.outputs, other.outputs):
                        memo[old] = keep
                    merged = True
                    continue
                by_key[key] = node
            nodes.add(node)
            epoch += 1
            changed_at[node] = epoch
            for i, inp in enumerate(inputs):
                readers = clients.get(inp)
                if readers is None:
                    readers = clients[inp] = ClientList()
                readers.append((node, i))
            for out in node.outputs:
                if out not in clients:
                    clients[out] = ClientList()
        self.epoch = epoch
        return memo, merged

    def finish(self):
        """End the rewrite: the graph's index is its own again (see
        ``FunctionGraph.end_rewrite``); this object's state is dropped with
        it. Returns the graph."""
        self.graph.end_rewrite(self._before, self.known_order())
        return self.graph

    # ------------------------------------------------------------ queries
    def toposort(self):
        """Live nodes, each after the nodes computing its inputs (a list
        the caller must not edit): ``trace.toposort`` of the outputs. The
        order is kept until an edit changes it (a phase ending without a
        rewrite leaves the next phase's first pass the same order); a
        ``replace`` that only drops a node from it (``_keeps_order``)
        leaves the order without that node."""
        order = self._order
        if order is None:
            order = self._order = toposort(self.outputs)
        elif self._order_pruned:
            nodes = self.nodes
            order = self._order = [node for node in order if node in nodes]
        self._order_pruned = False
        return order

    def known_order(self):
        """``toposort()`` when it is known without a walk, else ``None``."""
        return None if self._order is None else self.toposort()

    def _keeps_order(self, old, new):
        """Whether ``replace(old, new)`` can change the order only by
        dropping ``old``'s node, when that node is pruned and nothing else
        is (no merge): the node has one output and reads nothing but leaves
        and ``new`` (a leaf, or one of its inputs: ``x * 1 -> x``, a folded
        constant). The walk (a depth-first post-order from the outputs,
        inputs in order) reached ``new``'s node right before ``old``'s, at
        ``old``'s first reader, where it now reaches it."""
        node = old.owner
        if node is None or len(node.outputs) != 1 or new in self._forward:
            return False
        inputs = node.inputs
        if new.owner is not None and not any(inp is new for inp in inputs):
            return False
        return all(inp is new or inp.owner is None for inp in inputs)

    def client_list(self, var):
        """``(node, index)`` pairs reading ``var`` (``node`` ``OUTPUT``: an
        output)."""
        return self.clients.get(var, ())

    def n_clients(self, var):
        return len(self.clients.get(var, ()))

    def __contains__(self, node):
        return node in self.nodes

    # ------------------------------------------------------------ worklist
    def watch(self, var, node, rule=None, counted=False):
        """Take ``rule`` out of ``node``'s token (``None``: drop the whole
        token) when the readers of ``var`` change (``counted``: the rule
        asked how many there are)."""
        pairs = self.watchers.get(var)
        if pairs is None:
            self.watchers[var] = [(node, rule, counted)]
        else:
            last = pairs[-1]
            if last[0] is not node or last[1] is not rule or last[2] is not counted:
                pairs.append((node, rule, counted))

    def _readers_changed(self, var):
        pairs = self.watchers.pop(var, None)
        if pairs is not None:
            tokens = self.tokens
            for node, rule, counted in pairs:
                entry = tokens.get(node)
                if entry is None:
                    continue
                if rule is None:
                    del tokens[node]
                    self.dropped += 1
                elif rule.readers is not None:
                    key = (node, rule)
                    self.rechecks[key] = self.rechecks.get(key, False) or counted
                else:
                    self.cut(node, rule)

    def recheck(self, ctx):
        """Ask each (node, rule) whose watched readers the last edit
        changed (a rule with ``Rule.readers``) whether it would still find
        nothing: it would where ``readers`` says None now (it returns at
        once), or what its run recorded (``Context.answer``) and no count
        it asked for changed. Then it stays in the node's token (``readers``
        watched the readers again, as a run would); else it is cut, to run
        again. ``ctx`` is left as it was (the visit goes on)."""
        node, rule, asked = ctx.node, ctx.rule, ctx.groups.asked
        while self.rechecks:
            pending, self.rechecks = self.rechecks, {}
            for (watcher, watching), counted in pending.items():
                ctx.node, ctx.rule = watcher, watching
                if watcher in self.nodes:
                    now = watching.readers(watcher, ctx)
                    if now is None or (not counted and
                                       self.answers.get((watcher, watching)) == now):
                        continue
                self.cut(watcher, watching)
        ctx.node, ctx.rule, ctx.groups.asked = node, rule, asked

    def cut(self, node, rule):
        """Take ``rule`` out of ``node``'s token: it runs on the node again."""
        entry = self.tokens.get(node)
        if entry is None:
            return
        kept = self._without(entry[0], rule)
        if kept is not entry[0]:
            # (no phase: its rules are no longer all covered)
            self.tokens[node] = (kept, entry[1], None)
            self.dropped += 1

    def _without(self, token, rule):
        """``token`` without ``rule``'s entries (``rule`` and ``(rule,
        answers)``); ``token`` itself when it has none. Cached: few
        distinct tokens exist."""
        key = (token, rule)
        hit = self._token_cuts.get(key)
        if hit is None:
            kept = frozenset(e for e in token
                             if e is not rule and not (type(e) is tuple and e[0] is rule))
            hit = self._token_cuts[key] = token if len(kept) == len(token) else kept
        return hit

    # ------------------------------------------------------------ building
    def _canonical_constant(self, const):
        try:
            sig = const.signature()
            hash(sig)
        except (TypeError, AttributeError):
            return const
        return self._constants.setdefault(sig, const)

    def _add_node(self, node, memo):
        """Insert ``node`` (inputs mapped through ``memo``), merging it with an
        equal node already present. Returns True when ``node`` was added."""
        inputs = node.inputs
        for i, inp in enumerate(inputs):
            new = memo.get(inp, inp)
            if isinstance(new, Constant):
                new = self._canonical_constant(new)
            if new is not inp:
                inputs[i] = new
        key = node_key(node, self._op_classes)
        if key is not None:
            other = self._by_key.get(key)
            if other is not None:
                for old, keep in zip(node.outputs, other.outputs):
                    memo[old] = keep
                return False
            self._by_key[key] = node
        self.nodes.add(node)
        self._order = None
        self.epoch = epoch = self.epoch + 1
        self.changed_at[node] = epoch
        watchers, clients = self.watchers, self.clients
        for i, inp in enumerate(inputs):
            readers = clients.get(inp)
            if readers is None:
                readers = clients[inp] = ClientList()
            readers.append((node, i))
            if inp in watchers:
                self._readers_changed(inp)
        for out in node.outputs:
            if out not in clients:
                clients[out] = ClientList()
        return True

    def _clients_of(self, var):
        clients = self.clients.get(var)
        if clients is None:
            clients = self.clients[var] = ClientList()
        return clients

    def import_var(self, var, forbidden=None, source=None):
        """Bring the nodes computing ``var`` that are not yet in the graph
        into it (merging as it goes). Returns ``(canonical var, new nodes)``,
        or ``(None, [])`` when those nodes read ``forbidden`` (a cycle)."""
        new_nodes = []
        seen = set()
        stack = [(var, False)]
        while stack:
            v, expanded = stack.pop()
            node = v.owner
            if node is None or node in self.nodes:
                continue
            if expanded:
                new_nodes.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((v, True))
            for inp in node.inputs:
                if inp is forbidden:
                    return None, []
                if inp.owner is not None and inp.owner not in self.nodes \
                        and inp.owner not in seen:
                    stack.append((inp, False))
        memo = {}
        added = []
        for node in new_nodes:
            if node in self.nodes:
                continue
            if source is not None:
                node.source = source
            if self._add_node(node, memo):
                added.append(node)
        var = memo.get(var, var)
        if isinstance(var, Constant):
            var = self._canonical_constant(var)
        return var, added

    # ------------------------------------------------------------ editing
    def replace(self, old, new):
        """Make every reader of ``old`` read ``new`` (already imported), then
        drop nodes nobody reads and merge nodes that became equal.

        The replaced nodes are pruned once the merge cascade is over: a node
        the cascade merges into may have lost its last reader meanwhile
        (``shape(alloc(0, shape(x)))`` read by an equal ``alloc``), and
        pruning it at once left the graph's outputs computed by nodes it no
        longer held."""
        keeps_order = self._keeps_order(old, new)
        n_nodes = len(self.nodes)
        pending = [(old, new)]
        replaced = []
        while pending:
            old, new = pending.pop()
            while new in self._forward:  # replaced earlier in this cascade
                new = self._forward[new]
            if old is new or old in self._forward:
                continue
            self._forward[old] = new
            self.changes += 1
            self.epoch += 1
            readers = self.clients.pop(old, ())
            new_clients = self._clients_of(new)
            touched = {}  # (a dict: ordered, O(1) membership)
            for node, i in readers:
                if node is OUTPUT:  # (this graph's marker: the one object)
                    self.outputs[i] = new
                else:
                    if node not in touched:
                        touched[node] = None
                        self._unkey(node)
                        self.changed_at[node] = self.epoch
                        # (a rule asking for the readers of a variable may
                        # look at their other inputs: those readers changed)
                        for inp in node.inputs:
                            if inp in self.watchers:
                                self._readers_changed(inp)
                    node.inputs[i] = new
                new_clients.append((node, i))
            self._readers_changed(old)
            self._readers_changed(new)
            for node in touched:
                key = node_key(node, self._op_classes)
                if key is None:
                    continue
                other = self._by_key.get(key)
                if other is None or other is node:
                    self._by_key[key] = node
                else:
                    pending.extend(zip(node.outputs, other.outputs))
                    keeps_order = False  # (a merge)
            if old.owner is not None:
                replaced.append(old.owner)
        for node in replaced:
            self._prune(node)
        if keeps_order and len(self.nodes) == n_nodes - 1 and replaced[0] not in self.nodes:
            self._order_pruned = True
        else:
            self._order = None

    def _unkey(self, node):
        """Take ``node`` out of the merge index, before its inputs change
        (its key is the one it was indexed under, if it was: the index
        holds the node under the key of its inputs as they are)."""
        key = node_key(node, self._op_classes)
        if key is not None and self._by_key.get(key) is node:
            del self._by_key[key]

    def _prune(self, node):
        """Remove ``node`` and what only it read, if none of it is read."""
        nodes, clients, watchers = self.nodes, self.clients, self.watchers
        stack = [node]
        while stack:
            node = stack.pop()
            if node not in nodes or _is_read(node, clients):
                continue
            nodes.discard(node)
            self.epoch += 1
            self.tokens.pop(node, None)
            self.changed_at.pop(node, None)
            self._unkey(node)
            for out in node.outputs:
                clients.pop(out, None)
                watchers.pop(out, None)
            for i, inp in enumerate(node.inputs):
                readers = clients.get(inp)
                if readers is None:
                    continue
                try:
                    readers.remove((node, i))
                except ValueError:
                    pass
                if inp in watchers:
                    self._readers_changed(inp)
                if not readers and inp.owner is not None:
                    stack.append(inp.owner)


def _is_read(node, clients):
    for out in node.outputs:
        if clients.get(out):
            return True
    return False
