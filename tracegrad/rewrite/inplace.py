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
    position = {node: k for k, node in enumerate(order)}
    owned = _owned_buffers(order)
    readers = _Readers(fgraph, position)
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
            new = _swap(fgraph, node, op)
            position[new] = position[node]
            owned.add(new.outputs[0])
            swapped.append(new)
            break
    if stats is not None:
        stats["inplace"] = stats.get("inplace", 0) + len(swapped)
        stats.setdefault("inplace_nodes", []).extend(swapped)
    return len(swapped)


def _owned_buffers(order):
    """Variables computed into a buffer of their own: not views, and when
    produced in place, of a buffer that is itself owned."""
    owned = set()
    for node in order:
        op = node.op
        for k, out in enumerate(node.outputs):
            if op.view_map.get(k):
                continue
            destroyed = op.destroy_map.get(k, ())
            if all(node.inputs[j] in owned for j in destroyed):
                owned.add(out)
    return owned


def _candidate_inputs(node, owned):
    """Inputs whose buffer could hold the output (owned, same dtype and
    ndim, no static length that differs from the output's, no broadcast
    axis where the output's length is unknown); exact static shape first."""
    out = node.outputs[0].type
    exact, maybe = [], []
    for i, var in enumerate(node.inputs):
        t = var.type
        if (var not in owned or not hasattr(t, "shape") or not hasattr(out, "shape")
                or t.dtype != out.dtype or len(t.shape) != len(out.shape)):
            continue
        pairs = list(zip(t.shape, out.shape))
        if any(a is not None and a != b and (b is not None or a == 1) for a, b in pairs):
            continue  # broadcast along that axis: (almost) never fits
        if all(a is not None and a == b for a, b in pairs):
            exact.append(i)
        else:
            maybe.append(i)
    return exact + maybe


class _Readers:
    """Who reads a buffer, answered in O(1) amortized per question.

    A swap replaces a node by one with the same inputs at the same position
    and adds no view (in-place variants declare ``destroy_map``, not
    ``view_map``), so each variable's aliases and the position of its last
    reader never change during planning: both are computed once. (Scanning
    the readers on every question was quadratic when n nodes read one
    buffer, as the n ``IncSubtensor`` terms of a gradient read one zeros.)
    """

    def __init__(self, fgraph, position):
        self.fgraph = fgraph
        self.position = position
        self._views = {}
        self._last = {}

    def views(self, var):
        """``var`` and every variable that may be a view of it (transitively)."""
        found = self._views.get(var)
        if found is not None:
            return found
        found = {var}
        stack = [var]
        while stack:
            v = stack.pop()
            for client, j in self.fgraph.clients.get(v, ()):
                if client == OUTPUT:
                    continue
                for k, srcs in client.op.view_map.items():
                    out = client.outputs[k]
                    if j in srcs and out not in found:
                        found.add(out)
                        stack.append(out)
        self._views[var] = found
        return found

    def last_reader(self, var):
        """The position of the last node reading ``var`` (infinite when a
        result of the function exposes it or a reader is not in the order)."""
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

    def dead_after(self, node, i):
        """Whether ``node`` may overwrite the buffer of its input ``i``: nothing
        after it reads that buffer's old value and no result exposes it."""
        aliases = self.views(node.inputs[i])
        for j, inp in enumerate(node.inputs):
            if j != i and inp in aliases:
                return False  # reads the buffer through another argument
        here = self.position[node]
        # ``node`` reads ``inputs[i]`` itself, so "every other reader comes
        # before it" is "the last reader is at ``here`` at the latest".
        return all(self.last_reader(var) <= here for var in aliases)


def _swap(fgraph, node, op):
    """Replace ``node`` by an ``Apply`` of ``op`` on the same inputs, with an
    output of exactly the same type, name and source location. A graph that
    owns its nodes (``edits_in_place``) has the node's op changed where it
    stands: the same inputs, outputs and readers, without a ``replace``
    (import, prune) per swap."""
    if getattr(fgraph, "edits_in_place", lambda: False)():
        node.op = op
        fgraph.changed_order()
        return node
    old = node.outputs[0]
    out = old.clone()
    out._tag = old._tag
    new = Apply(op, list(node.inputs), [out], source=node.source)
    fgraph.replace(old, out, reason="inplace")
    return new
