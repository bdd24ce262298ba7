"""The compile stage that decides ``out=`` targets: which fused kernels write
a shared variable's update straight into its buffer.

``w <- w - lr * g`` fused into one kernel can write into ``w``'s own buffer
instead of a fresh array that is then copied into ``w``: one pass over the
memory instead of two, and no temporary. The decision is made once, when the
schedule is built (``build_schedule`` calls ``plan_out_targets`` on backends
with ``fused_updates``), from the graph alone; the schedule then keeps those
nodes apart (``Schedule.deferred``) and a call runs them in its update phase
with the shared buffers as their ``outs`` (``backend/inplace.py``: whether a
call's buffers fit, and the launch). No later stage edits the schedule.

A ``FusedElemwise`` node gets ``out=`` targets when

- each of its outputs is used only as the new value of one shared variable
  of the same dtype;
- it reads no buffer that another update writes, and reads the buffers it
  writes only as the shared variables themselves (element ``i`` is read
  before element ``i`` is written, by the same thread: never a view);
- no later node overwrites (``destroy_map``) a buffer it reads.
"""
from tracegrad.fuse.op import FusedElemwise


def plan_out_targets(fgraph, order, roots, update_plans):
    """``{node: [UpdatePlan, ...]}``: the fused nodes (in run order) whose
    outputs are written straight into the shared buffers of those update
    plans (one per output). ``roots``: the alias roots of the schedule."""
    n_user = fgraph.n_user_outputs
    plan_of = {plan.shared: plan for plan in update_plans}
    written = set(plan_of)
    targets = {}
    for k, node in enumerate(order):
        if not isinstance(node.op, FusedElemwise):
            continue
        plans = _update_plans(node, fgraph, n_user, plan_of)
        if plans and _safe(node, {p.shared for p in plans}, written, roots, order[k + 1:]):
            targets[node] = plans
    return targets


def _update_plans(node, fgraph, n_user, plan_of):
    """The update plans fed by ``node``'s outputs, or ``None`` unless every
    output is only the new value of one shared variable of its dtype."""
    plans = []
    for out in node.outputs:
        clients = fgraph.clients.get(out, ())
        if len(clients) != 1 or clients[0][0] != "output" or clients[0][1] < n_user:
            return None
        shared = fgraph.update_targets[clients[0][1] - n_user]
        plan = plan_of.get(shared)
        if plan is None or shared.type.dtype != out.type.dtype:
            return None
        plans.append(plan)
    return plans


def _safe(node, own, written, roots, later):
    others = written - own
    reads = set()
    for var in node.inputs:
        r = roots[var]
        if r & others or (r & own and var not in own):
            return False
        reads |= r
    for other in later:
        for srcs in other.op.destroy_map.values():
            if any(roots[other.inputs[j]] & reads for j in srcs):
                return False
    return True
