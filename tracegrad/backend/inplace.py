"""Fused kernels that write updates straight into shared buffers.

``w <- w - lr * g`` fused into one kernel can write into ``w``'s own buffer
instead of a fresh array that is then copied into ``w``: one pass over the
memory instead of two, and no temporary. Backends with ``fused_updates``
(CuPy) get this plan; it is backend-neutral (``FusedElemwise.run(xp, arrays,
outs=...)`` exists for NumPy too), so another backend may switch it on.

Planning, once per function (``defer_fused_updates``): a ``FusedElemwise``
node is *deferred* to the update phase of the call when

- each of its outputs is used only as the new value of one shared variable
  of the same dtype;
- it reads no buffer that another update writes, and reads the buffers it
  writes only as the shared variables themselves (element ``i`` is read
  before element ``i`` is written, by the same thread: never a view);
- no later node overwrites (``destroy_map``) a buffer it reads.

Each call, after every other step has run and before anything is written
(``prepare_deferred``): a deferred node whose buffers do not fit this call
(``set_value`` changed a shape, broadcasting needs a bigger buffer, an input
overlaps a target) runs the ordinary way instead and its update is written
like any other; an error it raises leaves every shared variable unchanged.
Then the remaining update values are snapshotted as usual, and only then
the deferred kernels write into their buffers (``launch_deferred``), before
the other updates are written: all-or-nothing and "updates read the values
from before the call" both hold.
"""
import numpy as np

from tracegrad.evaluate import reraise_with_context


class Deferred:
    """A fused node whose kernel writes into shared buffers."""

    __slots__ = ("node", "op", "step", "plans", "containers", "ins", "dtypes",
                 "out_deps", "const_shapes")

    def __init__(self, node, step, plans):
        self.node = node
        self.op = node.op
        self.step = step
        self.plans = plans
        self.containers = [plan.container for plan in plans]
        self.ins = step.ins
        self.dtypes = [np.dtype(o.type.dtype) for o in node.outputs]
        spec = node.op.spec
        self.out_deps = spec.output_deps
        self.const_shapes = [c.shape for c in spec.constants if c.ndim]

    def fits(self, arrays, buffers, ndarray, may_share):
        """Whether the buffers can take this call's outputs directly."""
        for b, dt in zip(buffers, self.dtypes):
            if (type(b) is not ndarray or b.dtype != dt
                    or not getattr(b.flags, "writeable", True)):
                return False
        try:
            shape = np.broadcast_shapes(*[a.shape for a in arrays], *self.const_shapes)
            for deps in self.out_deps:
                if deps is not None and np.broadcast_shapes(
                        *[arrays[k].shape for k in deps[0]], *deps[1]) != shape:
                    return False
        except ValueError:
            return False  # the ordinary run raises the error, naming the node
        for k, b in enumerate(buffers):
            if b.shape != shape:
                return False
            for other in buffers[k + 1:]:
                if other is b or may_share(other, b):
                    return False
            for a in arrays:
                if a is not b and may_share(a, b):
                    return False
        return True


def defer_fused_updates(schedule, fgraph, order, roots, backend, make_step_runner):
    """Move qualifying fused update nodes from ``schedule.steps`` to
    ``schedule.deferred`` (see the module doc). ``make_step_runner(step,
    backend)`` builds a step's runner (passed in by ``compile/schedule.py``,
    which calls this: the backend layer does not import the compiler)."""
    deferred = _deferrable(schedule, fgraph, order, roots)
    if deferred:
        _move(schedule, deferred, backend, make_step_runner)


def _deferrable(schedule, fgraph, order, roots):
    """The ``Deferred`` of every fused node that may write its updates
    into the shared buffers, in run order."""
    from tracegrad.fuse.op import FusedElemwise
    n_user = fgraph.n_user_outputs
    plan_of = {plan.shared: plan for plan in schedule.updates}
    written = set(plan_of)
    step_of = {step.node: step for step in schedule.steps}
    deferred = []
    for k, node in enumerate(order):
        if not isinstance(node.op, FusedElemwise):
            continue
        plans = _update_plans(node, fgraph, n_user, plan_of)
        if plans and _safe(node, {p.shared for p in plans}, written, roots, order[k + 1:]):
            deferred.append(Deferred(node, step_of[node], plans))
    return deferred


def _move(schedule, deferred, backend, make_step_runner):
    """Take the ``deferred`` nodes' steps and update plans out of the
    schedule; the slots they read stay alive until the update phase."""
    moved = {d.node for d in deferred}
    moved_plans = {id(p) for d in deferred for p in d.plans}
    keep = {i for d in deferred for i in d.ins}
    schedule.steps = [step for step in schedule.steps if step.node not in moved]
    schedule.updates = [p for p in schedule.updates if id(p) not in moved_plans]
    for step in schedule.steps:
        if keep.intersection(step.frees):
            # A deferred node still reads these slots after the steps ran.
            step.frees = tuple(i for i in step.frees if i not in keep)
            step.run = make_step_runner(step, backend)
    for d in deferred:
        d.step.frees = ()
        d.step.run = make_step_runner(d.step, backend)
    schedule.deferred = deferred


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


def prepare_deferred(s, deferred, plans, ndarray, may_share):
    """Before any write: the deferred kernels that will write into their
    buffers (``[(deferred, arrays, buffers)]``) and the update plans, with
    those of the deferred nodes that had to run the ordinary way added."""
    ready = []
    extra = []
    for d in deferred:
        arrays = [s[i] for i in d.ins]
        buffers = [c.value for c in d.containers]
        if d.fits(arrays, buffers, ndarray, may_share):
            ready.append((d, arrays, buffers))
        else:
            d.step.run(s)
            extra.extend(d.plans)
    return ready, (plans + extra if extra else plans)


def launch_deferred(ready, xp):
    """Run the deferred kernels into the shared buffers."""
    for d, arrays, buffers in ready:
        try:
            d.op.run(xp, arrays, outs=buffers)
        except Exception as exc:
            reraise_with_context(d.node, arrays, exc)
