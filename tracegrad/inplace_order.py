"""The run order of a graph with in-place nodes (``op.destroy_map``).

A node that overwrites a buffer must run after every other node reading
that buffer or a view of it (``op.view_map``). ``FunctionGraph.toposort``
asks ``order_destroyers`` to re-sort its data order (``trace.toposort``) so.
"""
import heapq


def order_destroyers(order):
    """Re-sort ``order`` so each node that overwrites a buffer runs after
    every other node reading that buffer or a view of it (Kahn's algorithm
    over the data edges plus those extra edges)."""
    view_of = _view_roots(order)
    if _respects_destroyers(order, view_of):
        # (what ``_stable_kahn`` would return: a ready node of smallest
        # position is always the next one; the in-place planner only makes
        # a node overwrite a buffer nothing after it reads)
        return order
    return _stable_kahn(order, _must_run_after(order, view_of))


def _respects_destroyers(order, view_of):
    """Whether each node of ``order`` overwriting a buffer already comes
    after every other node reading that buffer or a view of it."""
    last = {}
    for k, node in enumerate(order):
        for inp in node.inputs:
            last[_root(inp, view_of)] = k
    for k, node in enumerate(order):
        for srcs in node.op.destroy_map.values():
            for j in srcs:
                if last[_root(node.inputs[j], view_of)] > k:
                    return False
    return True


def _view_roots(order):
    """Each view made in ``order``, mapped to the buffer it is a view of."""
    view_of = {}
    for node in order:
        for k, srcs in node.op.view_map.items():
            for j in srcs:
                view_of[node.outputs[k]] = _root(node.inputs[j], view_of)
    return view_of


def _must_run_after(order, view_of):
    """For each node of ``order``, the nodes it must follow: those that
    compute its inputs and, for a node that overwrites a buffer, every other
    node reading that buffer or a view of it."""
    readers = {}
    for node in order:
        for inp in node.inputs:
            readers.setdefault(_root(inp, view_of), set()).add(node)
    before = {node: set() for node in order}
    for node in order:
        for inp in node.inputs:
            if inp.owner is not None and inp.owner in before:
                before[node].add(inp.owner)
        for srcs in node.op.destroy_map.values():
            for j in srcs:
                for other in readers.get(_root(node.inputs[j], view_of), ()):
                    if other is not node:
                        before[node].add(other)
    return before


def kahn_setup(order, before):
    """``(position, after, pending)`` for a Kahn sort of ``order`` by
    ``before``: each node's index in ``order``, the nodes that wait for it,
    and how many nodes it still waits for."""
    position = {node: i for i, node in enumerate(order)}
    after = {node: [] for node in order}
    for node, deps in before.items():
        for dep in deps:
            after[dep].append(node)
    pending = {node: len(deps) for node, deps in before.items()}
    return position, after, pending


def _stable_kahn(order, before):
    """``order`` topologically sorted by ``before``, keeping its order where
    ``before`` leaves a choice."""
    position, after, pending = kahn_setup(order, before)
    # A heap of positions (not a list re-sorted after each push, which was
    # quadratic): the ready node that came first in ``order`` runs next.
    ready = [position[n] for n in order if not pending[n]]
    heapq.heapify(ready)
    result = []
    while ready:
        node = order[heapq.heappop(ready)]
        result.append(node)
        for nxt in after[node]:
            pending[nxt] -= 1
            if not pending[nxt]:
                heapq.heappush(ready, position[nxt])
    if len(result) != len(order):
        raise ValueError("the in-place plan has a cycle: a buffer is overwritten "
                         "before a node that must read it first")
    return result


def _root(var, view_of):
    return view_of.get(var, var)
