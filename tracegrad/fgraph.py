"""``FunctionGraph``: the graph a compiled function owns, and edits in place.

It is the object every compile pass works on (rewrites, fusion, in-place
planning, scheduling). It holds:

- ``inputs``: the function's explicit inputs (fresh clones of the user's
  variables), then the shared variables the graph reads;
- ``outputs``: the user's outputs, then one new value per updated shared
  variable (``update_targets`` lists those shared variables, in order);
- ``clients``: ``{variable: [(node, i), ...]}`` — who reads each variable;
  ``node`` is the string ``"output"`` (``OUTPUT``) for ``outputs[i]``;
- ``apply_nodes`` and ``variables`` (the keys of ``clients``): everything
  between inputs and outputs.

It is the one graph of the compile, from the clone to the schedule: the
rewriter (``rewrite/graph.RewriteGraph``) edits this object's nodes, outputs
and ``clients`` while it runs, keeping its merge index and worklist beside
them for the rewrite phase only.

Rewrites edit it with ``replace(old, new)`` / ``replace_all`` /
``change_input``; nodes no longer used are pruned. Objects attached with
``attach_listener`` hear about every change (``on_import(fgraph, node,
reason)``, ``on_prune(fgraph, node, reason)``, ``on_change_input(fgraph, node,
i, old, new, reason)``; each optional).

The user's own graph is never touched: with ``clone=True`` (the default) the
graph is copied first.
"""
from tracegrad.clientlist import ClientList
from tracegrad.inplace_order import order_destroyers
from tracegrad.trace import Apply, Constant, Variable, clone_graph, copy_node, toposort
from tracegrad.trace_pickle import graph_prelude


# The reader recorded for a graph output: ``(OUTPUT, position)``.
OUTPUT = "output"


class MissingInputError(ValueError):
    """An output depends on a variable that is neither an input, a constant
    nor a shared variable."""


def _is_persistent(var):
    # Shared variables (and anything else holding its own value) stay the
    # same objects in the clone: their containers are the state.
    return getattr(var, "container", None) is not None


class FunctionGraph:
    """A mutable graph from ``inputs`` to ``outputs`` (see the module doc)."""

    def __init__(self, inputs, outputs, update_targets=(), clone=True):
        inputs = list(inputs)
        outputs = list(outputs)
        if len(set(inputs)) != len(inputs):
            raise ValueError("FunctionGraph: an input is listed twice")
        nodes = None
        if clone:
            inputs, outputs, nodes = _clone(inputs, outputs)
        self._setup(inputs, outputs, update_targets, clone)
        first_outputs = {}
        for i, out in enumerate(outputs):
            first_outputs.setdefault(out, []).append(i)
        if nodes is None:
            self._index_from([], first_outputs.items(), "init")
        else:
            # (a clone knows its nodes and was checked for missing inputs
            # while it was made: the rest of the index waits, see
            # ``_defer_index``)
            if not self._destroys(nodes):
                self._order = self._plain = nodes  # (the clone's walk is ``toposort``'s)
            self._defer_index(set(nodes), [], first_outputs.items(), "init")

    def _setup(self, inputs, outputs, update_targets, owns_nodes):
        # Whether the nodes are this graph's own copy (see ``edits_in_place``).
        self._owns_nodes = bool(owns_nodes)
        self.inputs = inputs
        self.outputs = outputs
        self.update_targets = list(update_targets)
        if len(self.update_targets) > len(outputs):
            raise ValueError("FunctionGraph: more update targets than outputs")
        self._listeners = []
        self._removed = set()
        self._order = None
        # the plain ``trace.toposort`` of the outputs (data edges only) when
        # known: an in-place swap (``changed_order``) keeps it
        self._plain = None
        self._input_set = set(inputs)

    @classmethod
    def over(cls, outputs):
        """A graph of the nodes computing ``outputs``, as they are (no copy,
        no inputs: its leaves need not be listed) and not yet indexed: the
        rewriter's graph when it rewrites bare outputs (``RewriteGraph``),
        which fills ``apply_nodes`` and ``clients`` as it loads the nodes."""
        graph = cls.__new__(cls)
        graph._setup([], list(outputs), (), True)
        graph.apply_nodes = set()
        graph.clients = {}
        return graph

    def begin_rewrite(self, clients, nodes):
        """The rewriter's index from now on: it edits ``outputs`` (the same
        list), ``nodes`` and ``clients`` in place as it rewrites (the readers
        of an output are ``(OUTPUT, position)`` in both). Returns what
        ``end_rewrite`` needs of the graph as it was."""
        before = (list(self.outputs), self.apply_nodes)
        self.__dict__.pop("_deferred", None)
        self.__dict__.pop("_deferred_variables", None)
        self._forget_order()
        for var in self.inputs:  # (every input has its entry, read or not)
            clients.setdefault(var, ClientList())
        self.clients = clients
        self.apply_nodes = nodes
        return before

    def end_rewrite(self, before, order=None):
        """The rewrite is over: the graph reads as if its result had been
        handed to ``reset_outputs(outputs, nodes=...)`` (the index the walk
        from the outputs builds, client order included, is built when
        first read; the replaced nodes' variables count as removed).
        ``before``: ``begin_rewrite``'s answer; ``order``: the rewriter's
        ``toposort`` of the outputs when it knows it."""
        outputs, nodes = list(self.outputs), self.apply_nodes
        self.outputs, self.apply_nodes = before
        self.reset_outputs(outputs, reason="rewrite", nodes=nodes, order=order)

    def __reduce__(self):
        # Flat, whatever the depth; listeners and caches are not kept.
        return (rebuild_graph, (graph_state(self),))

    # ------------------------------------------------------------ views
    @property
    def variables(self):
        """Every variable of the graph (inputs, constants, the nodes'
        outputs): the keys of ``clients``, one index for both. While the
        index waits (``_defer_index``), the same keys in the same order,
        found by the same walk without recording the readers (the
        schedule reads the constants, not the readers)."""
        clients = self.__dict__.get("clients")
        if clients is not None:
            return clients.keys()
        known = self.__dict__.get("_deferred_variables")
        if known is None:
            kept, groups, _ = self._deferred
            known = self._deferred_variables = self._variables_from(kept, groups)
        return known.keys()

    @property
    def n_user_outputs(self):
        """How many of ``outputs`` are the user's (the rest are updates)."""
        return len(self.outputs) - len(self.update_targets)

    @property
    def user_outputs(self):
        return self.outputs[:self.n_user_outputs]

    def update_pairs(self):
        """``[(shared variable, new value variable), ...]``."""
        return list(zip(self.update_targets, self.outputs[self.n_user_outputs:]))

    def toposort(self):
        """The apply nodes in an order that runs each after its inputs.

        Nodes that overwrite an input (``op.destroy_map``) come after every
        other reader of that input's buffer (and of the views of it).
        """
        if self._order is None:
            order = self._plain
            if order is None:
                order = self._plain = toposort(self.outputs, blockers=self._input_set)
            if any(node.op.destroy_map for node in order):
                order = order_destroyers(order)
            self._order = order
        return list(self._order)

    def known_order(self):
        """``toposort()`` when known without a walk and it is the plain
        ``trace.toposort`` of the outputs (no in-place node reorders it),
        else ``None``: a pass that walks the graph in that order may start
        from it."""
        order = self._order
        if order is None or self._destroys(order):
            return None
        return list(order)

    @staticmethod
    def _destroys(order):
        return any(node.op.destroy_map for node in order)

    def changed_order(self, order=None):
        """Forget the cached order: a pass changed a node's op in place
        (an in-place variant: its ``destroy_map`` orders its readers). The
        data edges did not change: the next ``toposort`` starts from their
        order instead of walking the graph again.

        ``order``: the ``toposort()`` the pass started from, when it knows
        that order still runs each node overwriting a buffer after every
        other reader of that buffer (the in-place planner's rule). When it
        was the plain order of the data edges, it is what ``toposort``
        would find again (``order_destroyers`` keeps an order that already
        respects the overwrites), so it stays, without that check."""
        self._order = None
        if order is not None and order == self._plain:
            self._order = order

    def _forget_order(self):
        self._order = self._plain = None

    def edits_in_place(self):
        """Whether a pass may edit the nodes themselves (re-point their
        ``inputs``) and then hand the graph's new outputs to
        ``reset_outputs``, instead of going through ``replace``: the nodes
        are this graph's own copy of the user's, its inputs are leaves (the
        walk stops at them) and no listener waits for per-edit events."""
        return (self._owns_nodes and not self._listeners
                and all(v.owner is None for v in self.inputs))

    def reset_outputs(self, outputs, reason=None, nodes=None, order=None):
        """Make ``outputs`` (one per output, each of the old one's type or a
        more precise one) the graph's outputs, and rebuild what the graph
        knows (clients, nodes, variables) by one walk from them.

        For a pass that edited the nodes in place (``edits_in_place``) and
        would otherwise have built new nodes and called ``replace(old, new)``
        for each output in turn: the graph is the one those replacements
        leave, the order of every client list included (later passes walk
        clients in order), without importing and pruning node by node. So
        an output that stays the same leaf keeps its place before the new
        readers of that leaf, each other output is imported in turn and its
        positions (all of them, for an output listed twice) come after the
        readers its import found.

        ``nodes``: the apply nodes computing ``outputs``, when the pass knows
        them (the rewriter's live nodes, fusion's units). Then the walk waits
        until ``clients`` or ``variables`` is read (``_defer_index``): a
        pass that follows and resets the outputs again, or that reads only
        the outputs and ``apply_nodes``, costs no walk. ``order``: those
        nodes in ``trace.toposort(outputs)``'s order, when the pass has it.
        """
        outputs = list(outputs)
        old_outputs = self.outputs
        if len(outputs) != len(old_outputs):
            raise ValueError(f"reset_outputs: {len(outputs)} outputs for a graph of "
                             f"{len(old_outputs)}")
        for old, new in zip(old_outputs, outputs):
            self._check_types(old, new)
        kept = [i for i, (old, new) in enumerate(zip(old_outputs, outputs))
                if old is new and old.owner is None]
        positions = {}
        for i, old in enumerate(old_outputs):
            if i not in kept:
                positions.setdefault(old, []).append(i)
        final = list(outputs)
        groups = []
        for old, where in positions.items():
            new = outputs[where[0]]
            for i in where:   # (an output listed twice goes where its first went)
                final[i] = new
            groups.append((new, where))
        self.outputs = final
        if nodes is None or self._listeners:
            self._ensure_index()
            previous = self.variables
            self._index_from(kept, groups, reason)
            self._removed |= previous - self.variables
        else:
            nodes = set(nodes)
            for node in self.apply_nodes - nodes:  # (their variables are removed)
                self._removed.update(node.outputs)
            self._defer_index(nodes, kept, groups, reason)
        self._forget_order()
        if order is not None and nodes is not None and not self._destroys(order):
            self._order = self._plain = list(order)

    # ------------------------------------------------------------ the index
    # ``clients`` is an attribute, read in the passes' inner loops (and
    # ``variables`` is its keys); while deferred it is missing and
    # ``__getattr__`` (asked only for a missing attribute) builds it on the
    # first read.
    def _defer_index(self, nodes, kept, groups, reason):
        self.apply_nodes = nodes
        self.__dict__.pop("clients", None)
        self.__dict__.pop("_deferred_variables", None)
        self._deferred = (kept, groups, reason)

    def __getattr__(self, name):
        if name == "clients" and "_deferred" in self.__dict__:
            self._ensure_index()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _ensure_index(self):
        deferred = self.__dict__.pop("_deferred", None)
        self.__dict__.pop("_deferred_variables", None)
        if deferred is not None:
            order, plain = self._order, self._plain
            self._index_from(*deferred)
            self._order, self._plain = order, plain  # (the same graph: its order stands)

    def _index_from(self, kept, groups, reason):
        """Build ``clients``, ``apply_nodes`` and ``variables`` by importing
        the outputs at positions ``kept`` (leaves that stayed), then each
        ``(output, positions)`` of ``groups``."""
        self.clients = {v: ClientList() for v in self.inputs}
        self.apply_nodes = set()
        outputs = self.outputs
        for i in kept:
            self._import_var(outputs[i], reason)
            self.clients[outputs[i]].append((OUTPUT, i))
        for new, where in groups:
            self._import_var(new, reason)
            for i in where:
                self.clients[new].append((OUTPUT, i))

    def _variables_from(self, kept, groups):
        """The keys ``_index_from(kept, groups)`` would give ``clients``, in
        its order (inputs, then ``_import_var``'s walk from each output),
        as a dict of ``None``s."""
        found = dict.fromkeys(self.inputs)
        outputs = self.outputs
        for var in [outputs[i] for i in kept] + [new for new, _ in groups]:
            stack = [var]
            while stack:
                v = stack.pop()
                if v in found:
                    continue
                node = v.owner
                if node is None:
                    if not isinstance(v, Constant):
                        self._ensure_index()  # (raises MissingInputError)
                    found[v] = None
                else:   # (not seen yet: its outputs would be known)
                    for out in node.outputs:
                        found.setdefault(out)
                    stack.extend(node.inputs)
        return found

    def release_removed(self):
        """Forget the variables removed so far, once compiling is over.

        ``replace`` remembers them (replacing one again does nothing) while
        passes run; kept afterwards they would hold every node the passes
        replaced (several times the final graph). For a graph owning its
        nodes, the removed nodes' output links are cut too, so reference
        counting frees them at once instead of leaving ~10 cyclic objects
        per node for the garbage collector's next full pass.
        """
        removed, self._removed = self._removed, set()
        if not self._owns_nodes:
            return
        live = self.apply_nodes
        for var in removed:
            owner = var.owner
            if owner is not None and owner not in live:
                var.owner = None

    def constants(self):
        """The constants read by the graph's nodes or used as outputs."""
        return [v for v in self.variables if isinstance(v, Constant)]

    # ------------------------------------------------------------ listeners
    def attach_listener(self, listener):
        self._ensure_index()  # (a listener hears of edits made from now on)
        self._listeners.append(listener)

    def remove_listener(self, listener):
        self._listeners.remove(listener)

    def _notify(self, event, *args):
        for listener in self._listeners:
            method = getattr(listener, event, None)
            if method is not None:
                method(self, *args)

    # ------------------------------------------------------------ edits
    def _import_var(self, var, reason=None):
        """Add ``var`` and the nodes computing it (down to known variables)."""
        clients = self.clients
        if var in clients:
            return
        stack = [var]
        new_nodes = []
        while stack:
            v = stack.pop()
            if v in clients:
                continue
            if v.owner is None:
                if not isinstance(v, Constant):
                    raise MissingInputError(
                        f"the graph needs {v} (of type {v.type}), which is not an input "
                        f"of the function; inputs are {self.inputs}")
                clients[v] = ClientList()
                continue
            node = v.owner
            if node in self.apply_nodes:
                continue
            self.apply_nodes.add(node)
            new_nodes.append(node)
            for out in node.outputs:
                clients.setdefault(out, ClientList())
            stack.extend(node.inputs)
        for node in new_nodes:
            for i, inp in enumerate(node.inputs):
                clients[inp].append((node, i))
        self._forget_order()
        for node in new_nodes:
            self._notify("on_import", node, reason)

    def change_input(self, node, i, new, reason=None):
        """Make ``node`` (or ``"output"``) read ``new`` at position ``i``."""
        if node == OUTPUT:
            old = self.outputs[i]
        else:
            old = node.inputs[i]
        if old is new:
            return
        self._check_types(old, new)
        self._import_var(new, reason)
        if node == OUTPUT:
            self.outputs[i] = new
        else:
            node.inputs[i] = new
        self.clients[old].remove((node, i))
        self.clients[new].append((node, i))
        self._forget_order()
        self._notify("on_change_input", node, i, old, new, reason)
        self._prune(old, reason)

    def replace(self, old, new, reason=None):
        """Every reader of ``old`` (outputs included) reads ``new`` instead.

        ``new``'s type must equal ``old``'s or be more precise (a static
        length where ``old`` had none). Nodes left without readers are removed;
        replacing a variable that was removed that way does nothing.
        """
        if old is new:
            return
        if old not in self.clients:
            if old in self._removed:
                return  # already replaced and pruned: nothing reads it any more
            raise ValueError(f"replace: {old} is not in this graph")
        self._check_types(old, new)
        for node, i in list(self.clients[old]):
            self.change_input(node, i, new, reason)

    def replace_all(self, pairs, reason=None):
        """``replace`` for each ``(old, new)`` pair, in order."""
        for old, new in pairs:
            self.replace(old, new, reason)

    @staticmethod
    def _check_types(old, new):
        if old.type == new.type:
            return
        is_super = getattr(old.type, "is_super", None)
        if is_super is not None and is_super(new.type):
            return
        raise TypeError(f"cannot replace {old} of type {old.type} by {new} "
                        f"of type {new.type}")

    def _prune(self, var, reason):
        stack = [var]
        while stack:
            v = stack.pop()
            if self.clients.get(v) or v in self._input_set:
                continue
            node = v.owner
            if node is None:
                if v in self.clients:
                    self._removed.add(v)
                    del self.clients[v]
                continue
            if node not in self.apply_nodes or any(self.clients[o] for o in node.outputs):
                continue
            self.apply_nodes.discard(node)
            for out in node.outputs:
                self._removed.add(out)
                del self.clients[out]
            for i, inp in enumerate(node.inputs):
                self.clients[inp].remove((node, i))
                stack.append(inp)
            self._forget_order()
            self._notify("on_prune", node, reason)

    # ------------------------------------------------------------ checks
    def check_integrity(self):
        """Raise ``AssertionError`` when ``clients`` disagree with the graph."""
        expected = {v: [] for v in self.variables}
        for node in self.apply_nodes:
            for i, inp in enumerate(node.inputs):
                assert inp in self.variables, f"{node} reads {inp}, unknown to the graph"
                expected[inp].append((node, i))
            for out in node.outputs:
                assert out.owner is node and out in self.variables
        for i, out in enumerate(self.outputs):
            assert out in self.variables, f"output {i} ({out}) unknown to the graph"
            expected[out].append((OUTPUT, i))
        for v, clients in expected.items():
            got = self.clients.get(v, [])
            assert sorted(map(_client_key, got)) == sorted(map(_client_key, clients)), \
                f"clients of {v}: {got} != {clients}"
        reachable = set(toposort(self.outputs, blockers=self._input_set))
        assert reachable == self.apply_nodes, "apply_nodes differ from the nodes in use"

    def clone(self):
        """An independent copy (shared variables and constants are kept)."""
        plain = [v for v in self.inputs if not _is_persistent(v)]
        _, outputs, memo = clone_graph(self.outputs, plain)
        inputs = [memo.get(v, v) for v in self.inputs]
        copy = FunctionGraph(inputs, outputs, self.update_targets, clone=False)
        copy._owns_nodes = True
        return copy

    def __repr__(self):
        return (f"FunctionGraph({len(self.inputs)} inputs, {len(self.outputs)} outputs, "
                f"{len(self.apply_nodes)} nodes)")


def _clone(inputs, outputs):
    """A copy of the graph for a ``FunctionGraph`` (``clone_graph``'s, in the
    same walk checking that every variable the graph needs is an input, a
    constant or a shared variable: ``MissingInputError``). Returns the new
    ``(inputs, outputs, nodes)``, ``nodes`` in run order."""
    memo = {v: v.clone() for v in inputs if not _is_persistent(v)}
    new_inputs = [memo.get(v, v) for v in inputs]
    known = (set(inputs), new_inputs)
    for out in outputs:
        _check_leaf(out, known)
    nodes = []
    get = memo.get
    for node in toposort(outputs, blockers=memo):
        new_in = []
        for inp in node.inputs:
            new = get(inp)
            if new is None:
                _check_leaf(inp, known)
                # (a leaf kept as it is: checked once, however many read it)
                memo[inp] = new = inp
            new_in.append(new)
        nodes.append(copy_node(node, new_in, memo))
    return new_inputs, [memo.get(o, o) for o in outputs], nodes


def _check_leaf(var, known):
    if var.owner is None and var not in known[0] and not isinstance(var, Constant):
        raise MissingInputError(
            f"the graph needs {var} (of type {var.type}), which is not an input "
            f"of the function; inputs are {known[1]}")


def _client_key(client):
    node, i = client
    return (id(node), i)


# ------------------------------------------------------------ pickling
# A ``FunctionGraph`` pickles as its nodes in one flat list, then its ends:
# ``graph_state`` lists every node in run order first (``trace_pickle``'s
# prelude: each node saved shallowly, after the nodes it reads), so the
# inputs, outputs and update targets that follow are short references and the
# pickler never recurses along the graph. Variables keep their identity.


def graph_state(fgraph):
    """A picklable description of ``fgraph`` (see the comment above)."""
    return (graph_prelude(fgraph.outputs), list(fgraph.inputs), list(fgraph.outputs),
            list(fgraph.update_targets))


def rebuild_graph(state):
    """The ``FunctionGraph`` described by ``graph_state``."""
    if isinstance(state, dict):
        return _rebuild_numbered(state)
    _nodes, inputs, outputs, update_targets = state
    return FunctionGraph(inputs, outputs, update_targets, clone=False)


def _rebuild_numbered(state):
    # The format of older pickles: leaves, then per node its op, its inputs
    # by number and its outputs' (class, type, name, tag).
    table = list(state["leaves"])
    for op, input_ids, outputs, source in state["nodes"]:
        new_outputs = []
        for cls, vtype, name, tag in outputs:
            var = cls.__new__(cls)
            Variable.__init__(var, vtype, None, None, name)
            var.tag = tag
            new_outputs.append(var)
        Apply(op, [table[i] for i in input_ids], new_outputs, source=source)
        table.extend(new_outputs)
    outputs = [table[i] for i in state["outputs"]]
    return FunctionGraph(table[:state["n_inputs"]], outputs, state["update_targets"],
                         clone=False)
