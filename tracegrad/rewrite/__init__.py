"""Graph rewrites: merge, constant folding, canonicalize, stabilize, specialize.

``optimize_outputs(outputs, mode)`` returns new outputs computing the same
values with a rewritten graph (the user's graph is never edited: it is
cloned once, then edited in place). ``optimize(fgraph, mode)`` does the same
for a compiled function's ``FunctionGraph``.

Modes (``tg.config.optimizer`` or ``tg.function(..., mode=)``): ``'fast_run'``
runs every phase, ``'fast_compile'`` only merge and constant folding,
``'None'`` nothing; a sequence of phase names runs just those. ``'fast_math'``
runs fast_run's phases and also allows value-changing algebra (a sequence
of phases may include ``'fast_math'`` for the same). Phases, in order, each
to a fixpoint (``engine``):

- ``merge``: common subexpressions and equal constants become one node (the
  rewrite graph stays merged from then on, see ``graph``);
- ``constant_fold`` (``constant_fold``);
- ``canonicalize``: flat sums and products, cancellation, constants,
  ``x ** 2 -> sqr``, casts (``canonicalize``); ``SumTo``, broadcasts and
  dimshuffles (``shapes``);
- ``stabilize``: ``log1p``, ``softplus``, ``sigmoid``, ``expm1``... and the
  forms gradients of them take (``stabilize``); ``log_softmax``,
  ``logsumexp`` (``stabilize_nnet``);
- ``specialize``: ``sqrt``, ``sqr``, ``dot`` forms, cast chains
  (``specialize``); a softmax cross-entropy's gradient as one node
  (``softmax_grad``).

Ops talk to the rewriter through their declarations (``trace.Op``, listed
in ``trace.OP_HOOKS``): ``is_random = True`` (never merged nor folded),
``constant_foldable = False`` (never folded), ``static_output(node)``
(values known from static types are folded), and the facts the algebra
proves with (``positive``, ``finite_if_inputs``, ``selects``,
``commutative``, ``shape_relation``...). No rule module keeps a table of op
names for such a fact. Rules are data: see ``engine.register`` and
``engine.PatternRule``.

IEEE semantics: outside ``'fast_math'`` a rewrite keeps what a
NaN, inf or huge input gives at the outputs (it may only replace an
*intermediate* overflow or underflow with the right finite value, which is
what the stability rules are for). Cancellation (``x - x``, ``x / x``),
constant reassociation that would overflow, distribution over a factor that
may be inf, and ``x ** 0.5 -> sqrt(x)`` where ``x`` may be ``-inf`` fire
only with a proof (``algebra.is_finite``, ``algebra.is_nonnegative``).
"""
from tracegrad.rewrite import engine
from tracegrad.rewrite import constant_fold, canonicalize, shapes  # noqa: F401
from tracegrad.rewrite import stabilize  # noqa: F401
from tracegrad.rewrite import stabilize_nnet, specialize  # noqa: F401
from tracegrad.rewrite import factor_sum  # noqa: F401
from tracegrad.rewrite import softmax_grad  # noqa: F401
from tracegrad.rewrite.engine import (MODES, PHASES, PatternRule, Rule,  # noqa: F401
                                      pattern_rule, phases_for, register)
from tracegrad.rewrite.graph import RewriteGraph  # noqa: F401
from tracegrad.rewrite.inplace import plan_inplace  # noqa: F401
from tracegrad.trace import clone_graph, clone_replace

__all__ = ["optimize", "optimize_outputs", "register", "pattern_rule", "Rule",
           "PatternRule", "MODES", "PHASES", "RewriteGraph"]


def optimize_outputs(outputs, mode=None, inputs=None, stats=None):
    """Rewritten outputs computing the same values as ``outputs``.

    ``mode``: ``'fast_run'``, ``'fast_compile'``, ``'None'``, ``None`` (use
    ``tg.config.optimizer``) or a sequence of phase names. ``inputs``:
    variables to treat as graph inputs (what computes them is left alone).
    ``stats``: a dict that receives how often each rule fired and the time
    of each phase (``'time:<phase>'``, seconds).
    """
    outputs = list(outputs)
    phases = phases_for(mode)
    if not phases:
        return outputs
    owned = [v for v in inputs or () if v.owner is not None]
    _, cloned, memo = clone_graph(outputs, inputs=owned)
    graph = engine.build_graph(cloned)
    engine.optimize_graph(graph, mode, stats)
    result = graph.outputs
    if owned:
        result, _ = clone_replace(result, {memo[v]: v for v in owned})
    return result


def optimize(fgraph, mode=None, stats=None):
    """Rewrite a compiled function's ``FunctionGraph`` in place.

    A graph that owns its nodes (``fgraph.edits_in_place()``: a compiled
    function's clone of the user's graph) is rewritten in place: the
    rewriter edits its nodes, outputs and clients (``RewriteGraph``, the
    graph's rewrite phase), then hands it back (``RewriteGraph.finish``:
    the index a walk builds, when first read). Otherwise the graph
    is rewritten on a copy (``optimize_outputs``), then each output the
    rewrite changed is replaced with ``fgraph.replace``, which imports the
    new nodes and prunes the old ones. Both give the same graph; the first
    saves a copy of every node and importing and pruning them one by one.
    """
    phases = phases_for(mode)
    if not phases:
        return fgraph
    if getattr(fgraph, "edits_in_place", lambda: False)():
        graph = engine.build_graph(order=fgraph.known_order(), graph=fgraph)
        try:
            engine.optimize_graph(graph, mode, stats)
        finally:  # (handed back when a rule raised too: removed nodes counted)
            graph.finish()
        return fgraph
    new_outputs = optimize_outputs(fgraph.outputs, mode, inputs=fgraph.inputs,
                                   stats=stats)
    for old, new in zip(list(fgraph.outputs), new_outputs):
        # (an output listed twice is replaced at its first occurrence)
        if old is not new and old in fgraph.variables:
            fgraph.replace(old, new, reason="rewrite")
    return fgraph
