"""The compile pipeline: clone -> rewrite -> fuse -> plan in-place -> schedule.

Each stage is a plain function over a ``FunctionGraph``, called directly
(the transforms sit in layers below ``compile``; no stage is looked up by
name or signature):

- ``tracegrad.rewrite.optimize(fgraph, mode)`` — rewrites (merge, constant
  folding, canonicalize, stabilize, specialize); ``mode`` is ``'fast_run'``,
  ``'fast_compile'``, ``'None'`` or ``'fast_math'`` (``tg.config.optimizer``
  unless the caller of ``tg.function`` gave ``mode=``);
- ``tracegrad.fuse.fuse(fgraph, target=device)`` — elementwise fusion, run
  in ``'fast_run'`` and ``'fast_math'``;
- ``tracegrad.rewrite.plan_inplace(fgraph)`` — swap nodes for in-place
  variants (``op.destroy_map``), run in ``'fast_run'`` and ``'fast_math'``.

- ``GRAPH_PASSES`` — ``pass(fgraph, mode, device)`` functions that a
  package above the compile layer registers (tracegrad.distributed: merge
  independent allreduces into buckets), run after the rewrites.

Every stage edits the one ``FunctionGraph`` the clone made (the rewriter
too: ``RewriteGraph`` is that graph's rewrite phase, see "ONE GRAPH" in
docs/ARCHITECTURE.md), with ``fgraph.replace`` or in place; the schedule
honours ``destroy_map`` (see ``FunctionGraph.toposort``) and refuses to
overwrite inputs, constants or shared buffers, so all-or-nothing updates
hold whatever the planner does.
"""
from tracegrad.compile.fgraph import FunctionGraph
from tracegrad.compile.mode import MODES, normalize  # noqa: F401 (MODES: re-exported)
from tracegrad.fuse import fuse as fuse_graph
from tracegrad.progress import current as current_progress
from tracegrad.rewrite import optimize as rewrite_graph
from tracegrad.rewrite import plan_inplace as plan_inplace_graph

# modes that run fusion and in-place planning ('fast_math' is 'fast_run' with
# value-changing algebra allowed in the rewrites)
_FULL = ("fast_run", "fast_math")


def resolve_mode(mode):
    """``None`` -> ``tg.config.optimizer``; a ``Mode`` -> its optimizer;
    check the name (``mode.normalize``)."""
    return normalize(mode)


def clone(inputs, outputs, update_targets=()):
    """A ``FunctionGraph`` over a copy of the graph (the user's is untouched)."""
    return FunctionGraph(inputs, outputs, update_targets, clone=True)


def rewrite(fgraph, mode, device=None):
    """Run the rewrite passes (``tracegrad.rewrite.optimize``)."""
    rewrite_graph(fgraph, mode)
    return fgraph


# ``pass(fgraph, mode, device)``, run in order after the rewrites (see the
# module doc); a package above this layer appends to it when imported.
GRAPH_PASSES = []


def graph_passes(fgraph, mode, device=None):
    """Run the registered ``GRAPH_PASSES``."""
    for graph_pass in GRAPH_PASSES:
        graph_pass(fgraph, mode, device)
    return fgraph


def fuse(fgraph, mode, device=None):
    """Fuse elementwise chains (``'fast_run'`` and ``'fast_math'``) for
    ``device``."""
    if mode in _FULL:
        fuse_graph(fgraph, target=device)
    return fgraph


def plan_inplace(fgraph, mode, device=None):
    """Make nodes overwrite dead buffers (``'fast_run'`` and ``'fast_math'``)."""
    if mode in _FULL:
        plan_inplace_graph(fgraph)
    return fgraph


def optimize_graph(fgraph, mode, device=None):
    """Every stage between cloning and scheduling, in order. ``device``
    (``'cpu'``/``'cuda'``) is the device the function will run on."""
    progress = current_progress()
    for stage in (rewrite, graph_passes, fuse, plan_inplace):
        progress.stage(stage.__name__, len(fgraph.apply_nodes))
        stage(fgraph, mode, device)
    return fgraph
