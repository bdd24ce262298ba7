"""``pp``: the infix text of an expression, one line when it is short, else
numbered lines (``%1 = …``) as in a jaxpr.

Every walk is iterative and ``pp`` emits tokens from an explicit stack, so
graphs of any depth print without touching Python's recursion limit, and the
cost is linear in the length of the text returned.
"""
import re

from tracegrad.printing.labels import _leaf_text, _tokens
from tracegrad.trace import Variable, toposort

# The room a line's ``%12 = `` takes (longer names: the lines are wrapped).
_PREFIX = 6
# A shared subexpression this short or shorter is repeated rather than named:
# ``(-y)`` or ``dot(x, w)`` read better inline than as lines of their own.
# (Readability of the text, not performance.)
_SHARED_MIN_CHARS = 16
_CAP = 10 ** 9  # expanded lengths are capped: a tree expansion may be exponential
_HIDDEN = "…"


def pp(var, max_width=100, max_depth=None, max_args=None):
    """Readable infix text of the expression computing ``var``.

    ``tg.pp(x + y)`` is ``'(x + y)'``; other ops print in function-call style
    (``exp(x)``, ``sum(x, axis=0)``), constants as their values, leaves by
    name. An expression whose text fits in ``max_width`` characters prints
    on one line. A longer one prints as numbered lines, as in a jaxpr: each
    subexpression used more than once (unless short, like ``(-y)``), or too
    long to inline, is written once as ``%3 = …`` and referred to as
    ``%3``; the last line is the result. Lines still longer than
    ``max_width`` are wrapped with an indent. ``max_width=None``: no width
    limit (numbered lines are used only when the one-line text would be far
    larger than the graph).

    ``max_depth``: subexpressions more than ``max_depth`` ops below the
    result print as ``…``; ``max_args``: a call with more inputs shows the
    first ``max_args`` and ``… N more``. When either hides part of the
    graph, a last line ``… N more nodes`` says how much. A list of
    variables prints one expression per line (or block of lines).
    """
    if isinstance(var, (list, tuple)):
        return "\n".join(pp(v, max_width, max_depth, max_args) for v in var)
    if not isinstance(var, Variable):
        raise TypeError(f"pp: expected a symbolic variable, got {type(var).__name__}")
    for what, value, least in (("max_width", max_width, 20), ("max_depth", max_depth, 1),
                               ("max_args", max_args, 1)):
        if value is not None and (not isinstance(value, int) or value < least):
            raise ValueError(f"pp: {what} must be None or an int >= {least}, got {value!r}")
    if var.owner is None:
        return _leaf_text(var)

    graph = _Graph(var, max_depth, max_args)
    limit = max_width if max_width is not None else 4 * graph.own_total + 200
    if graph.n_hidden == 0 and graph.expanded_size() <= limit:
        return _emit(var, graph.tokens, {}, graph.hidden)
    names = _bind(graph, max_width)
    lines = []
    for v, name in names.items():
        lines.extend(_wrap(f"{name} = {_emit(v, graph.tokens, names, graph.hidden, top=v)}",
                           max_width))
    lines.extend(_wrap(_emit(var, graph.tokens, names, graph.hidden), max_width))
    if graph.n_hidden:
        lines.append(f"{_HIDDEN} {graph.n_hidden} more node{'s' * (graph.n_hidden != 1)}")
    return "\n".join(lines)


class _Graph:
    """The part of ``root``'s graph that ``pp`` shows: ``tokens`` of each
    shown computed variable, ``order`` (inputs before their users),
    ``uses`` (occurrences in the shown tokens), ``hidden`` (computed
    variables cut by ``max_depth``) and ``n_hidden`` (nodes not shown)."""

    def __init__(self, root, max_depth, max_args):
        self.root = root
        self.tokens = {}
        self.hidden = set()
        if max_depth is not None:
            self._cut_at_depth(root, max_depth, max_args)
        self.order = self._postorder(root, max_args)
        self.uses = {}
        self.own = {}
        for v in self.order:
            self.own[v] = sum(len(t) for t in self.tokens[v] if isinstance(t, str))
            for t in self.tokens[v]:
                if isinstance(t, Variable):
                    self.uses[t] = self.uses.get(t, 0) + 1
        self.own_total = sum(self.own.values())
        shown = {v.owner for v in self.order}
        self.n_hidden = len(toposort([root])) - len(shown)

    def _children(self, v):
        return [t for t in self.tokens[v] if isinstance(t, Variable)]

    def _cut_at_depth(self, root, max_depth, max_args):
        """Breadth first: a computed variable first reached at depth
        ``max_depth`` (the result is depth 0) is hidden."""
        level, depth = [root], 0
        seen = {root}
        while level:
            following = []
            for v in level:
                if depth >= max_depth:
                    self.hidden.add(v)
                    continue
                self.tokens[v] = _tokens(v, max_args)
                for t in self._children(v):
                    if t.owner is not None and t not in seen:
                        seen.add(t)
                        following.append(t)
            level, depth = following, depth + 1

    def _postorder(self, root, max_args):
        order = []
        done = set()
        stack = [(root, False)]
        while stack:
            v, finished = stack.pop()
            if finished:
                order.append(v)
                continue
            if v in done:
                continue
            done.add(v)
            if v not in self.tokens:
                self.tokens[v] = _tokens(v, max_args)
            stack.append((v, True))
            for t in reversed(self._children(v)):
                if t.owner is not None and t not in self.hidden and t not in done:
                    stack.append((t, False))
        return order

    def leaf_size(self, v):
        return len(_HIDDEN) if v in self.hidden else len(_leaf_text(v))

    def expanded_size(self):
        """The length of the one-line text (capped)."""
        size = {}
        for v in self.order:
            size[v] = min(_CAP, self.own[v] + sum(
                size[t] if t in size else self.leaf_size(t) for t in self._children(v)))
        return size[self.root]


def _bind(graph, max_width):
    """``{variable: '%k'}`` for the subexpressions written on lines of their
    own, in order: those used more than once (unless shorter than
    ``_SHARED_MIN_CHARS``), and those that make their user's line longer
    than ``max_width`` (the longest first)."""
    budget = None if max_width is None else max_width - _PREFIX
    eff = {}        # length of each shown variable's text, given what is bound
    bound = set()
    for v in graph.order:
        children = graph._children(v)
        length = graph.own[v] + sum(eff[t] if t in eff else graph.leaf_size(t)
                                    for t in children)
        room = None if budget is None else budget + _PREFIX * (v is graph.root)
        while room is not None and length > room:
            candidates = [t for t in children if t in eff and t not in bound]
            if not candidates:
                break  # only leaves left: the line is wrapped
            t = max(candidates, key=eff.get)
            name = len(f"%{len(bound) + 1}")
            if eff[t] <= name:
                break
            bound.add(t)
            length -= children.count(t) * (eff[t] - name)
            eff[t] = name
        eff[v] = length
        if graph.uses.get(v, 0) > 1 and v is not graph.root and length > _SHARED_MIN_CHARS:
            bound.add(v)
            eff[v] = len(f"%{len(bound)}")
    ordered = [v for v in graph.order if v in bound]
    return {v: f"%{k}" for k, v in enumerate(ordered, 1)}


def _emit(root, tokens, bound, hidden, top=None):
    """Expand ``root`` into text with an explicit stack (no recursion)."""
    out = []
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif item in bound and item is not top:
            out.append(bound[item])
        elif item in hidden:
            out.append(_HIDDEN)
        elif item.owner is None or item not in tokens:
            out.append(_leaf_text(item))
        else:
            stack.extend(reversed(tokens[item]))
            if item is top:
                top = None
    return "".join(out)


def _wrap(line, width, indent="    "):
    """``line`` cut at spaces into lines of at most ``width`` characters
    (continuations indented); a word longer than that stays whole."""
    if width is None or len(line) <= width:
        return [line]
    lines = []
    current = ""
    for word in re.findall(r"\S+\s*", line):
        if current.strip() and len(current) + len(word.rstrip()) > width:
            lines.append(current.rstrip())
            current = indent
        current += word
    lines.append(current.rstrip())
    return lines
