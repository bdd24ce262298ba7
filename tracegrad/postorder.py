"""The one graph walk: nodes in run order, without recursion.

Below ``trace`` (which defines the graph) and ``trace_pickle`` (which saves
it), so both use it; it reads only ``owner`` and ``inputs``.
"""


def postorder(outputs, blockers=(), stop=None):
    """Apply nodes computing ``outputs``, each after the nodes it depends on.

    Iterative depth-first post-order. ``blockers`` are variables treated as
    inputs; a node for which ``stop(node)`` is true is treated as computed
    already: left out, with everything only it reads.
    """
    blockers = set(blockers)
    order = []
    done = set()
    stack = [(v.owner, False) for v in reversed(list(outputs))
             if v.owner is not None and v not in blockers]
    while stack:
        node, expanded = stack.pop()
        if node in done:
            continue
        if expanded:
            done.add(node)
            order.append(node)
            continue
        if stop is not None and stop(node):
            done.add(node)
            continue
        stack.append((node, True))
        for inp in reversed(node.inputs):
            if inp.owner is not None and inp not in blockers and inp.owner not in done:
                stack.append((inp.owner, False))
    return order
