"""Safe in-place planning: nodes overwrite buffers nobody needs any more.

``plan_inplace(fgraph)`` runs in ``'fast_run'`` after fusion
(``compile/pipeline.py``). It swaps a node for an in-place variant of its op
(``op.inplace_version(i)``: the same computation writing its only output into
input ``i``'s buffer, declared by ``destroy_map = {0: [i]}``) when that is
safe. Ops offering variants: ``Elemwise`` rows that are plain ufuncs
(``out=``), single-output ``FusedElemwise`` and ``IncSubtensor``. A variant
falls back to a new array at run time when the buffer does not fit (shape
after broadcasting, read-only), so only dtype and ndim are checked here.

Node ``N`` may overwrite input ``v`` only if

- ``v``'s buffer is an intermediate result: ``v`` is computed by a node, is
  not a view (``view_map``) of anything, and, when it was itself produced in
  place, so was everything down to a fresh buffer. User inputs, shared
  variables and constants, and views of them, are therefore never
  overwritten (and shared buffers change only when the call's updates are
  written, so a failing call leaves them unchanged);
- no output of the function (a result the user receives, an update value)
  is ``v`` or a view of it;
- every other node reading ``v`` or a view of it comes before ``N`` in the
  graph's order (the schedule keeps it that way: ``FunctionGraph.toposort``
  runs a destroyer after the other readers of its buffer). So no other node
  overwrites that buffer too: it would have to run after ``N``, a reader;
- ``N`` reads no other view of ``v`` (``x + x.T`` written into ``x`` would
  read elements it has already overwritten).

The order is the one the graph had before planning, so the plan never needs
a node to run both before and after another (no cycle). Storage belongs to a
call (``compile/runtime.py``), so buffers overwritten in place are never
shared between concurrent calls.

Updates: a shared variable's new value computed by an in-place node lands in
a dead intermediate's buffer and is copied into the persistent buffer after
every step succeeded; fused update kernels write into the persistent buffer
themselves on backends with ``fused_updates`` (``backend/inplace.py``).
"""

from tracegrad.fgraph import OUTPUT
from tracegrad.trace import Apply

__all__ = ["plan_inplace"]


def plan_inplace(fgraph, stats=None):
    """Swap nodes of ``fgraph`` (a ``FunctionGraph``) for in-place variants
    where that is safe (see the module doc); returns how many were swapped.
    ``stats``: a dict that receives ``'inplace'`` (that count) and
    ``'inplace_nodes'`` (the new nodes, in order)."""
    order = fgraph.toposort()
    readers = _Readers(fgraph, order)
    position, owned = readers.position, readers.owned
    # (whether the graph's nodes may be edited where they stand cannot
    # change while planning: asked once, not per swap)
    in_place = getattr(fgraph, "edits_in_place", lambda: False)()
    swapped = []
    for node in order:
        make = node.op.inplace_version
        if make is None or len(node.outputs) != 1 or node.op.destroy_map:
            continue
        for i in _candidate_inputs(node, owned):
            if not readers.dead_after(node, i):
                continue
            op = make(i)
            if op is None:
                continue
            new = _swap(fgraph, node, op, in_place)
            if new is not node:
                readers.moved(node.outputs[0], new.outputs[0])
            position[new] = position[node]
            owned.add(new.outputs[0])
            swapped.append(new)
            break
    if swapped and in_place:
        # Each swap made a node overwrite a buffer nothing after it reads,
        # so ``order`` (the same nodes) already runs every overwrite after
        # the other readers of its buffer: it stays the graph's order.
        fgraph.changed_order(order)
    if stats is not None:
        stats["inplace"] = stats.get("inplace", 0) + len(swapped)
        stats.setdefault("inplace_nodes", []).extend(swapped)
    return len(swapped)


def _candidate_inputs(node, owned):
    """Inputs whose buffer could hold the output (owned, same dtype and
    ndim, no static length that differs from the output's, no broadcast
    axis where the output's length is unknown); exact static shape first."""
    out = node.outputs[0].type
    out_shape = getattr(out, "shape", _NONE)
    if out_shape is _NONE:
        return ()
    exact, maybe = [], []
    for i, var in enumerate(node.inputs):
        if var not in owned:
            continue
        t = var.type
        shape = getattr(t, "shape", _NONE)
        if shape is _NONE or t.dtype != out.dtype or len(shape) != len(out_shape):
            continue
        if shape == out_shape:   # (the common case, without the pairs below)
            (maybe if None in shape else exact).append(i)
            continue
        pairs = list(zip(shape, out_shape))
        if any(a is not None and a != b and (b is not None or a == 1) for a, b in pairs):
            continue  # broadcast along that axis: (almost) never fits
        if all(a is not None and a == b for a, b in pairs):
            exact.append(i)
        else:
            maybe.append(i)
    return exact + maybe


_NONE = object()   # (no such attribute)


class _Readers:
    """Who reads a buffer, answered in O(1) amortized per question.

    A swap replaces a node by one with the same inputs at the same position
    and adds no view (in-place variants declare ``destroy_map``, not
    ``view_map``), so each variable's aliases and the position of its last
    reader never change during planning: one pass over ``order`` (the
    graph's ``toposort()``) finds them all, with ``position`` (each node's
    index there) and ``owned`` (the variables computed into a buffer of
    their own: not views and, when produced in place, of a buffer that is
    itself owned), without the graph's index of readers. (Scanning the
    readers on every question was quadratic when n nodes read one buffer,
    as the n ``IncSubtensor`` terms of a gradient read one zeros.)
    """

    def __init__(self, fgraph, order):
        self.fgraph = fgraph
        self.position = position = {}
        # the position of each variable's last reader
        self._last = last = {}
        # each buffer with views: {the buffer's variable, its views...}
        self._views = {}
        self._roots = {}     # a view -> the owned buffers it may share
        self.owned = owned = set()
        for k, node in enumerate(order):
            position[node] = k
            for inp in node.inputs:
                last[inp] = k
            op = node.op
            if op.view_map or op.destroy_map:
                self._add_aliasing(node)
            else:
                owned.update(node.outputs)   # (the common case: fresh buffers)
        for out in fgraph.outputs:
            last[out] = float("inf")    # (exposed by a result of the function)

    def _add_aliasing(self, node):
        """Record the views ``node`` makes, and the outputs it computes into
        a buffer it owns (none of its outputs are read yet). Only owned
        buffers are asked about (``dead_after``), so a view's roots are
        the owned buffers it may share (none, for a view of an input)."""
        op, inputs = node.op, node.inputs
        roots, owned = self._roots, self.owned
        for j, out in enumerate(node.outputs):
            srcs = op.view_map.get(j)
            if srcs:
                shared = set()
                for src in srcs:
                    found = roots.get(inputs[src])
                    if found is not None:
                        shared |= found
                    elif inputs[src] in owned:
                        shared.add(inputs[src])
                roots[out] = shared
                if shared:
                    self._last[out] = -1   # (read by no node so far)
                for root in shared:
                    self._views.setdefault(root, {root}).add(out)
            elif all(inputs[d] in owned for d in op.destroy_map.get(j, ())):
                owned.add(out)

    def views(self, var):
        """``var`` (a buffer's own variable, not a view) and every variable
        that may be a view of it (transitively), as a set (variables compare
        by identity there: ``in`` on a list would call ``__eq__``)."""
        found = self._views.get(var)
        return found if found is not None else {var}

    def last_reader(self, var):
        """The position of the last node reading ``var`` (infinite when a
        result of the function exposes it or a reader is not in the order).
        Known after the first pass for every variable a question names (a
        node's input, a result, a view); the scan of the readers below is
        the definition."""
        last = self._last.get(var)
        if last is None:
            last = -1
            for client, _ in self.fgraph.clients[var]:
                where = None if client == OUTPUT else self.position.get(client)
                if where is None:
                    last = float("inf")
                    break
                last = max(last, where)
            self._last[var] = last
        return last

    def moved(self, old, new):
        """A swap replaced ``old`` (no view) by ``new`` in every reader."""
        self._last[new] = self._last[old]
        views = self._views.get(old)
        if views is not None:
            self._views[new] = (views - {old}) | {new}

    def dead_after(self, node, i):
        """Whether ``node`` may overwrite the buffer of its input ``i`` (a
        buffer's own variable: ``owned``): nothing after it reads that
        buffer's old value and no result exposes it."""
        aliases = self.views(node.inputs[i])
        for j, inp in enumerate(node.inputs):
            if j != i and inp in aliases:
                return False  # reads the buffer through another argument
        here = self.position[node]
        # ``node`` reads ``inputs[i]`` itself, so "every other reader comes
        # before it" is "the last reader is at ``here`` at the latest".
        last_reader = self.last_reader
        return all(last_reader(var) <= here for var in aliases)


def _swap(fgraph, node, op, in_place):
    """Replace ``node`` by an ``Apply`` of ``op`` on the same inputs, with an
    output of exactly the same type, name and source location. A graph that
    owns its nodes (``in_place``: its ``edits_in_place()``) has the node's op
    changed where it stands: the same inputs, outputs and readers, without a
    ``replace`` (import, prune) per swap."""
    if in_place:
        node.op = op
        fgraph.changed_order()
        return node
    old = node.outputs[0]
    out = old.clone()
    out._tag = old._tag
    new = Apply(op, list(node.inputs), [out], source=node.source)
    fgraph.replace(old, out, reason="inplace")
    return new
