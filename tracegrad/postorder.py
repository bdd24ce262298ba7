"""The one graph walk: nodes in run order, without recursion.

Below ``trace`` (which defines the graph) and ``trace_pickle`` (which saves
it), so both use it; it reads only ``owner`` and ``inputs``.
"""


def postorder(outputs, blockers=(), stop=None):
    """Apply nodes computing ``outputs``, each after the nodes it depends on.

    Iterative depth-first post-order (the order of the recursive walk:
    outputs in turn, a node's inputs left to right). ``blockers`` are
    variables treated as inputs; a node for which ``stop(node)`` is true is
    treated as computed already: left out, with everything only it reads.
    """
    blockers = set(blockers)
    order = []
    done = set()
    finish, emit = done.add, order.append
    # The path from a root (``None``: the outputs stand as its inputs) down
    # to the node being expanded, each with an iterator over the inputs it
    # has yet to look at: every edge is looked at once, and no entry is
    # pushed for a node that is done already (the graph is a DAG: no node
    # on the path is reached again before it is done).
    stack = [(None, iter(outputs))]
    while stack:
        node, pending = stack[-1]
        for inp in pending:
            owner = inp.owner
            if owner is None or owner in done or inp in blockers:
                continue
            if stop is not None and stop(owner):
                finish(owner)
                continue
            stack.append((owner, iter(owner.inputs)))
            break
        else:
            stack.pop()
            if node is not None:
                finish(node)
                emit(node)
    return order
