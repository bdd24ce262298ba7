"""The rewrite engine: rules as data, run in named ordered phases.

A rule is looked up by the op key of a node (``pattern.op_key``: the row name
of an elementwise op, else the op class) and returns a replacement for the
node's output (or a list, one per output, ``None`` keeping an output), or
``None`` when it does not apply. Two kinds:

- ``PatternRule(name, pattern, build, when=None)``: a ``pattern`` (see
  ``tracegrad.rewrite.pattern``) and ``build(b)`` making the replacement from
  the bindings ``b`` (attribute access: ``b.x``; ``b.out`` is the matched
  variable). ``when(b)`` may refuse a match;
- ``Rule(name, tracks, fn)``: ``fn(node, ctx)`` for rewrites a pattern cannot
  say (sums and products of any length, constant folding).

Rules are registered under a group (``register('stabilize', rule)``). A phase
runs the rules of some groups over the graph, walking the nodes in
topological order once per pass, to a fixpoint bounded by ``MAX_PASSES``;
nodes a rewrite creates are visited right after it. The engine guarantees
what every rule must keep: a replacement has the replaced variable's dtype
(a cast is added) and a static shape at least as precise (else the rewrite is
dropped), never reads the variable it replaces, and its new nodes carry the
replaced node's ``source`` (so errors still point at the user's line).
"""
import sys
import time
import warnings
from collections import deque
from types import SimpleNamespace

from tracegrad.fgraph import OUTPUT  # noqa: F401 (the output reader, for rules)
from tracegrad.rewrite.graph import RewriteGraph
from tracegrad.rewrite.pattern import bind_names, match, op_key
from tracegrad.progress import current as current_progress
from tracegrad.trace import Variable, anchor_sources, release_sources

from tracegrad.config import MAX_PASSES, MAX_REWRITES_PER_NODE  # (tunables)

# Skip the rules a node's token says leave it unchanged (see ``run_phase``);
# False runs every rule on every node in every pass (what the tests compare
# the worklist with: the rewrites done must be the same).
WORKLIST = True

# Raise exceptions from rules instead of skipping the rule with a warning
# (the rewrite tests set it).
STRICT = False

GROUPS = {}  # group name -> list of rules, in registration order

PHASES = {
    "merge": (),
    "constant_fold": ("constant_fold",),
    "canonicalize": ("constant_fold", "canonicalize"),
    "stabilize": ("constant_fold", "canonicalize", "stabilize"),
    "specialize": ("constant_fold", "canonicalize", "specialize"),
}

MODES = {
    "fast_run": ("merge", "constant_fold", "canonicalize", "stabilize", "specialize"),
    # fast_run's phases with value-changing algebra allowed (see FAST_MATH)
    "fast_math": ("merge", "constant_fold", "canonicalize", "stabilize", "specialize"),
    "fast_compile": ("merge", "constant_fold"),
    "None": (),
}


# The group every phase of mode 'fast_math' adds: rules that may change an
# IEEE result (cancel ``x - x`` when ``x`` may be inf or NaN...) consult
# ``ctx.fast_math``; rules registered under this group run only then.
FAST_MATH = "fast_math"


class Abort(Exception):
    """Raised by a rule that finds, half-way, that it cannot rewrite."""


class Rule:
    """A rewrite computed by ``fn(node, ctx)`` for nodes whose op key is in
    ``tracks`` (``None``: every node). The engine calls ``fn`` itself when
    set; a subclass that computes its rewrite otherwise passes ``fn=None``
    and overrides ``apply`` (``PatternRule``)."""

    def __init__(self, name, tracks, fn, readers=None):
        """``readers(node, ctx)`` (optional): what ``fn`` reads of readers
        through ``ctx.clients``, None where ``fn`` then returns None at once,
        else the summary ``fn`` records (``ctx.answer``); ``fn``'s other
        reader questions are counts (``ctx.n_clients``). Asked instead of
        running ``fn`` again when those readers change
        (``RewriteGraph.recheck``)."""
        self.name = name
        self.tracks = None if tracks is None else tuple(tracks)
        self.fn = fn
        self.readers = readers

    def apply(self, node, ctx):
        return self.fn(node, ctx)

    def __repr__(self):
        return f"Rule({self.name})"


class PatternRule(Rule):
    """``pattern -> build(bindings)``, optionally guarded by ``when``."""

    def __init__(self, name, pattern, build, when=None):
        super().__init__(name, (pattern[0],), None)
        self.pattern = pattern
        self.build = build
        self.when = when
        # (a pattern of names only is bound without the matcher: ``bind_names``)
        names = pattern[1:]
        self.names = names if all(type(p) is str for p in names) else None

    def apply(self, node, ctx):
        if len(node.outputs) != 1:
            return None
        out = node.outputs[0]
        names = self.names
        if names is None:
            binds = match(self.pattern, out)
        else:
            binds = bind_names(names, node, self.pattern[0])
        if binds is None:
            return None
        b = SimpleNamespace(out=out, ctx=ctx, **binds)
        if self.when is not None and not self.when(b):
            return None
        return self.build(b)


def register(group, rule):
    """Add ``rule`` to ``group`` (``'canonicalize'``, ``'stabilize'``...)."""
    GROUPS.setdefault(group, []).append(rule)
    return rule


def pattern_rule(group, name, pattern, when=None):
    """Decorator form: ``@pattern_rule('stabilize', 'log1p', ('log', ...))``
    over ``build(b)``."""
    def deco(build):
        register(group, PatternRule(name, pattern, build, when))
        return build
    return deco


class _Groups:
    """The active groups as rules see them (``ctx.groups``): a set whose
    membership answers are recorded in ``asked`` (``(group, answer)``
    pairs; ``("*", groups)`` once the whole set was read), so the engine
    knows in which phases a rule's result on a node still holds."""

    __slots__ = ("_set", "asked")

    def __init__(self, groups):
        self._set = groups
        self.asked = None

    def _note(self, pair):
        if self.asked is None:
            self.asked = {pair}
        else:
            self.asked.add(pair)

    def __contains__(self, group):
        answer = group in self._set
        if self.asked is None:
            self.asked = {(group, answer)}
        else:
            self.asked.add((group, answer))
        return answer

    def _all(self):
        self._note(("*", self._set))
        return self._set

    def __iter__(self):
        return iter(self._all())

    def __len__(self):
        return len(self._all())

    def __eq__(self, other):
        return self._all() == (other._all() if isinstance(other, _Groups) else other)

    __hash__ = None

    def __getattr__(self, name):
        # any other use of the set (``issubset``, ``union``...) reads it all
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._all(), name)

    def __repr__(self):
        return f"groups{set(self._set)}"


def _whole_set_operator(name):
    def operator(self, *args):
        return getattr(self._all(), name)(*args)
    operator.__name__ = name
    return operator


for _name in ("__or__", "__ror__", "__and__", "__rand__", "__sub__", "__rsub__",
              "__xor__", "__rxor__", "__le__", "__lt__", "__ge__", "__gt__"):
    setattr(_Groups, _name, _whole_set_operator(_name))


class Context:
    """What rules may consult besides the node: the graph (clients), the
    active groups, and caches valid for one optimisation.

    The engine records what a rule reads of it: asking for a variable's
    readers makes the visited node a watcher of them (``RewriteGraph.watch``),
    and the answers of ``groups`` (``'stabilize' in ctx.groups``) and
    ``fast_math`` tie the rule's result on the node to them (``run_phase``)."""

    def __init__(self, graph, groups):
        self.graph = graph
        self.active = frozenset(groups)
        self.groups = _Groups(self.active)
        self.memo = {}
        self.node = None  # the node the engine is visiting
        self.rule = None  # the rule running on it

    @property
    def fast_math(self):
        """Value-changing algebra allowed (mode 'fast_math')."""
        return FAST_MATH in self.groups

    def n_clients(self, var):
        if self.node is not None:
            self.graph.watch(var, self.node, self.rule, counted=True)
        return self.graph.n_clients(var)

    def answer(self, summary):
        """Record what the running rule read of the readers (``Rule.readers``)."""
        if self.node is not None:
            self.graph.answers[(self.node, self.rule)] = summary

    def clients(self, var):
        if self.node is not None:
            self.graph.watch(var, self.node, self.rule)
        return self.graph.client_list(var)


def coerce(new, old):
    """``new`` made to stand for ``old`` (same dtype, static shape at least
    as precise), or ``None`` when it cannot."""
    if not isinstance(new, Variable):
        from tracegrad.tensor.variable import as_tensor_variable
        new = as_tensor_variable(new)
    if new.type == old.type:
        return new
    if new.type.ndim != old.type.ndim:
        return None
    if new.type.dtype != old.type.dtype:
        from tracegrad.ops.elemwise import cast
        new = cast(new, old.type.dtype)
    return new if old.type.is_super(new.type) else None


_INDEX_CACHE = {}


def _index(groups):
    key = (tuple(groups), tuple(len(GROUPS.get(g, ())) for g in groups))
    hit = _INDEX_CACHE.get(key)
    if hit is None:
        hit = _INDEX_CACHE[key] = _build_index(groups)
    return hit


def _build_index(groups):
    by_key, wildcard = {}, []
    for group in groups:
        for rule in GROUPS.get(group, ()):
            if rule.tracks is None:
                wildcard.append(rule)
            else:
                for key in rule.tracks:
                    by_key.setdefault(key, []).append(rule)
    return by_key, wildcard


def apply_rewrite(graph, node, result):
    """Install ``result`` (a variable or a list per output) in place of
    ``node``'s outputs. Returns the new nodes, or ``None`` if refused."""
    outs = result if isinstance(result, (list, tuple)) else [result]
    if len(outs) != len(node.outputs):
        return None
    pairs = []
    for old, new in zip(node.outputs, outs):
        if new is None or new is old:
            continue
        new = coerce(new, old)
        if new is None:
            return None
        pairs.append((old, new))
    added = []
    replaced = False
    for old, new in pairs:
        var, new_nodes = graph.import_var(new, forbidden=old, source=node.source)
        if var is None or var is old:
            continue
        if var.name is None and var.owner in new_nodes:
            var.name = old.name
        added.extend(new_nodes)
        graph.replace(old, var)
        replaced = True
    return added if replaced else None


_NONE = []
_NEVER = float("inf")  # (an input's owner not walked yet: no token holds)
_WARNED = set()


def _warn_once(rule, exc):
    # A failing rule is a bug in tracegrad; the graph stays correct (the rule
    # is skipped), so say it once instead of failing the compile.
    if (rule.name, type(exc)) not in _WARNED:
        _WARNED.add((rule.name, type(exc)))
        warnings.warn(f"tracegrad rewrite rule {rule.name!r} failed and was skipped: "
                      f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)


class _Plans:
    """Which rules a visit of a node must run, given its token (the rule
    keys known to leave it unchanged: ``rule``, or ``(rule, answers)`` for a
    rule that asked about the active groups, see ``_Groups``), and the
    tokens visits make. Tokens are interned: few distinct ones exist."""

    def __init__(self, by_key, wildcard, groups):
        self.by_key = by_key
        self.wildcard = wildcard
        self.groups = groups
        self.plans = {}
        self.unions = {}
        self.holds = {}  # recorded answers -> whether they hold now

    def _holds(self, answers):
        hit = self.holds.get(answers)
        if hit is None:
            groups = self.groups
            hit = self.holds[answers] = all(
                groups == answer if group == "*" else (group in groups) == answer
                for group, answer in answers)
        return hit

    def _covered(self, rule, token):
        if rule in token:
            return True
        return any(type(k) is tuple and k[0] is rule and self._holds(k[1]) for k in token)

    def rules(self, token, key):
        plan = self.plans.get((token, key))
        if plan is None:
            rules = self.by_key.get(key, _NONE)
            if self.wildcard:
                rules = self.wildcard + rules
            if token is not None:
                rules = [r for r in rules if not self._covered(r, token)]
            plan = self.plans[(token, key)] = rules
        return plan

    def token(self, token, done):
        done = tuple(done)
        hit = self.unions.get((token, done))
        if hit is None:
            hit = frozenset(done) if token is None else token.union(done)
            hit = self.unions.setdefault(hit, hit)  # one object per token
            self.unions[(token, done)] = hit
        return hit


def _visit(graph, node, rules, ctx, stats):
    """Run ``rules`` on ``node`` until one rewrites it. Returns the nodes the
    rewrite added, or the keys of the rules that left it unchanged (a
    tuple) when none did."""
    done = []
    ctx.node = node
    groups = ctx.groups
    for rule in rules:
        groups.asked = None
        ctx.rule = rule
        before = graph.changes
        try:
            fn = rule.fn  # (a plain rule's function, called without ``apply``)
            result = fn(node, ctx) if fn is not None else rule.apply(node, ctx)
            added = None if result is None else apply_rewrite(graph, node, result)
        except Abort:
            added = None
        except Exception as exc:
            if STRICT:
                raise
            _warn_once(rule, exc)
            added = None
        if graph.rechecks:
            graph.recheck(ctx)
        if added is None or graph.changes == before:
            asked = groups.asked
            done.append(rule if asked is None else (rule, frozenset(asked)))
            continue
        if stats is not None:
            stats[rule.name] = stats.get(rule.name, 0) + 1
        return added
    return tuple(done)


def run_phase(graph, groups, stats=None):
    """Run the rules of ``groups`` over ``graph`` to a fixpoint (bounded).

    Each pass walks the nodes in topological order, as if every rule ran on
    every node, but skips the rules a node's token says leave it unchanged:
    a rule that did not rewrite a node will not until the node, something
    above it or the readers its rule asked about change (or, for a rule
    that read them, the active groups), and the graph drops the token then.
    So a pass, and the next phase's rules already run, cost only the nodes a
    rewrite reached; the rewrites done, and their order, are the same."""
    by_key, wildcard = _index(groups)
    if not by_key and not wildcard:
        return
    ctx = Context(graph, groups)
    plans = _Plans(by_key, wildcard, ctx.active)
    budget = MAX_REWRITES_PER_NODE * (len(graph.nodes) + 10)
    try:
        for _ in range(MAX_PASSES):
            changed, settled = _pass(graph, plans, ctx, stats, budget)
            if changed is None or not changed or settled:
                # (settled: every node holds a token covering every rule,
                # so another pass would rewrite nothing)
                return
    finally:
        ctx.node = None


def _pass(graph, plans, ctx, stats, budget):
    """One pass over the graph in topological order: ``(number of rewrites,
    whether every node ended with a valid token)``; ``(None, _)`` when over
    ``budget``.

    A node's token is valid if recorded after the latest change at or above
    the node. Edits happen only below the visited node (to readers of what
    it computed, not visited yet), so a token recorded in this pass stays
    valid unless a reader it asked about changes (``graph.dropped`` counts
    those) or the node read a node not walked yet (one a rewrite merged
    with)."""
    tokens, changed_at, nodes = graph.tokens, graph.changed_at, graph.nodes
    if not WORKLIST:
        tokens.clear()
    plan_get = plans.plans.get
    dropped = graph.dropped
    start = graph.epoch
    order = graph.toposort()
    latest, work, changed, settled = _skim(graph, plans, ctx, stats, order)
    for node in _visits(work, nodes):
        last = changed_at.get(node, 0)
        for inp in node.inputs:
            owner = inp.owner
            if owner is not None:
                above = latest.get(owner, _NEVER)
                if above > last:
                    last = above
        latest[node] = last
        token, rules = _rules_to_run(node, last, tokens, plans, plan_get)
        if not rules:
            continue
        epoch = graph.epoch
        result = _visit(graph, node, rules, ctx, stats)
        if type(result) is tuple:
            # unchanged by every rule: record it
            if graph.epoch == epoch and last is not _NEVER and WORKLIST:
                tokens[node] = (plans.token(token, result), epoch, plans)
            else:
                settled = False
            continue
        changed += 1
        if node in nodes:
            settled = False
        work.extendleft(reversed(result))
        if changed > budget:
            return None, False
    _remember_walk(graph, start, latest)
    return changed, settled and graph.dropped == dropped


def _rules_to_run(node, last, tokens, plans, plan_get):
    """``(token, rules)``: the rules of ``plans`` to run on ``node``, whose
    inputs last changed at epoch ``last``, and the token they extend. A
    token recorded after that change leaves out the rules it says leave the
    node unchanged (``rules`` empty when it was recorded in this phase: it
    covers all the phase's rules)."""
    entry = tokens.get(node)
    if entry is not None and entry[1] >= last:
        if entry[2] is plans:
            return None, ()
        token = entry[0]
    else:
        token = None
    key = op_key(node.op)
    rules = plan_get((token, key))
    if rules is None:
        rules = plans.rules(token, key)
    return token, rules


def _remember_walk(graph, start, latest):
    """Keep what a pass found (``_skim`` starts from it): edits happen only
    below the visited node, so the latest change above a node walked before
    an edit still holds (``_NEVER``: its rules all run), and what an edit
    added or re-pointed was walked after it."""
    graph.walked = (graph.epoch, latest)


def _skim(graph, plans, ctx, stats, order):
    """The start of a pass over ``order`` when the previous pass walked the
    same graph without an edit (``graph.walked``: the epoch then and the
    latest change above each node, still exact): the pass's loop without
    working out that latest change, until the first edit. Returns
    ``(latest, work, changed, settled)``: ``latest`` for the nodes up to
    the one edited and the nodes left to walk (``work``) for the loop to
    go on from (empty when no edit happened: the pass is over).

    The next phase's first pass is such a pass: it runs the phase's new
    rules on the nodes they key on and costs the other nodes a lookup."""
    walked = graph.walked
    if walked is None or walked[0] != graph.epoch or not WORKLIST:
        return {}, deque(order), 0, True
    stored = walked[1]
    tokens, nodes = graph.tokens, graph.nodes
    stored_get, plan_get = stored.get, plans.plans.get
    changed, settled = 0, True
    for k, node in enumerate(order):
        last = stored_get(node)
        if last is None:  # (not walked: not in the graph, or a node to walk)
            if node not in nodes:
                continue
            latest = {n: stored[n] for n in order[:k] if n in stored}
            return latest, deque(order[k:]), changed, settled
        token, rules = _rules_to_run(node, last, tokens, plans, plan_get)
        if not rules:
            continue
        epoch = graph.epoch
        result = _visit(graph, node, rules, ctx, stats)
        if type(result) is tuple:
            if graph.epoch == epoch:
                tokens[node] = (plans.token(token, result), epoch, plans)
                continue
            settled = False
            rest = order[k + 1:]
        else:
            changed = 1
            if node in nodes:
                settled = False
            rest = list(result) + order[k + 1:]
        return {n: stored[n] for n in order[:k + 1]}, deque(rest), changed, settled
    return stored, deque(), changed, settled


def _visits(work, nodes):
    """The nodes popped from the front of ``work`` (which the caller extends
    meanwhile) that are still in the graph, telling the progress line how
    many were visited (a big graph only: ``progress.py``)."""
    progress = current_progress()
    total, seen, report = len(work), 0, progress.every or -1
    while work:
        node = work.popleft()
        if node in nodes:
            seen += 1
            if seen == report:
                report += progress.every
                progress.advance(seen, total)
            yield node


def phases_for(mode):
    """The phase names a mode runs: a mode name, ``None`` (the configured
    ``tg.config.optimizer``) or an explicit sequence of phase names."""
    if mode is None or isinstance(mode, str):
        from tracegrad.config import normalize_mode
        return MODES[normalize_mode(mode)]
    phases = tuple(p for p in mode if p != FAST_MATH)
    for name in phases:
        if name not in PHASES:
            raise ValueError(f"unknown rewrite phase {name!r}; known: {list(PHASES)}")
    return phases


def is_fast_math(mode):
    """Whether ``mode`` allows value-changing algebra: ``'fast_math'``, or a
    sequence of phase names that includes ``'fast_math'``."""
    if mode is None or isinstance(mode, str):
        from tracegrad.config import normalize_mode
        return normalize_mode(mode) == FAST_MATH
    return FAST_MATH in tuple(mode)


def optimize_graph(graph, mode=None, stats=None):
    """Run the phases of ``mode`` over a ``RewriteGraph`` in place."""
    extra = (FAST_MATH,) if is_fast_math(mode) else ()
    progress = current_progress()
    # The nodes rules build get the source of this call's user frame (a
    # rule of a user-defined op its own line): found once here, not by a
    # walk up the stack per node (``anchor_sources``).
    anchor = anchor_sources(sys._getframe())
    try:
        for phase in phases_for(mode):
            start = time.perf_counter()
            progress.stage(f"rewrite {phase}", len(graph.nodes))
            run_phase(graph, PHASES[phase] + extra, stats)
            if stats is not None:
                key = f"time:{phase}"
                stats[key] = stats.get(key, 0.0) + time.perf_counter() - start
    finally:
        release_sources(anchor)
    return graph


def build_graph(outputs=None, order=None, graph=None):
    """A ``RewriteGraph`` over ``outputs`` (their nodes are edited in place)
    or over ``graph``, a ``FunctionGraph`` owning its nodes; ``order``:
    ``toposort`` of the outputs, when the caller has it."""
    return RewriteGraph(outputs, order, graph)
