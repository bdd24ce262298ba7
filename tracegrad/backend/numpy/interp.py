"""Running a long generated block function before (or without) compiling it.

A cluster of 10^5 elementwise nodes (a 50k-op chain fused with its
gradient) generates a block function of 10^5 lines, and Python's
``compile`` of it takes 1.5-2 s, most of a first call. Every line of such a
function is a call ``f3(i0, k1, s2)`` (a ufunc writing into its last
argument, see ``codegen``), so ``interpreted`` runs the same calls, in the
same order and on the same arrays, from a table: no compilation, ~0.2 us
more per line and block than the compiled function. ``Tiered`` is what
``Generated.fn`` gives for a long block: the table for the first
``COMPILE_AFTER`` blocks, then the compiled function (a function called
often pays the compilation once, a function called a few times never does).
Results are identical either way: only the dispatch differs.
"""
import gc
import re
from operator import itemgetter

# (tunables, with their reasons, in tracegrad/config.py; module globals here,
# so tests patch them here)
from tracegrad.config import COMPILE_AFTER, INTERPRET_LINES  # noqa: E402,F401 (read by codegen)

_PARAMS = re.compile(r"def block\(([\w, ]*)\):\Z")


def interpreted(source, env):
    """A function running ``source`` (a ``def block(...)`` of call lines
    only) over ``env``'s globals without compiling it, or ``None`` when a
    line is anything but ``name(arg, ..., [out=arg])`` (then it must be
    compiled)."""
    # (The collector is paused meanwhile, as while compiling: the table's
    # 10^5 rows all survive, and full passes over them cost more than the
    # parse.)
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _interpreted(source, env)
    finally:
        if paused:
            gc.enable()


def _interpreted(source, env):
    lines = source.split("\n")
    head = _PARAMS.match(lines[0])
    if head is None:
        return None
    params = head.group(1).split(", ") if head.group(1) else []
    index = {name: k for k, name in enumerate(params)}
    extra = []  # globals the calls read (constants), after the parameters
    rows = []
    for line in lines[1:]:
        if not line:
            continue
        # (The generator's own format, ``    f3(i0, k1, s2)``: split, not
        # parsed; anything else is refused below.)
        name, paren, rest = line.strip().partition("(")
        fn = env.get(name)
        if fn is None or not paren or not rest.endswith(")") or not name.isidentifier():
            return None
        slots = []
        out = None
        for arg in rest[:-1].split(", "):
            keyword = arg.startswith("out=")
            if keyword:
                arg = arg[4:]
            k = index.get(arg)
            if k is None:
                if not arg.isidentifier() or arg not in env:
                    return None
                k = index[arg] = len(params) + len(extra)
                extra.append(env[arg])
            if keyword:
                out = k
            elif out is not None:
                return None  # (positional after keyword: not generated)
            else:
                slots.append(k)
        if not slots:
            return None
        rows.append((fn, _getter(slots), out))
    return _runner(rows, len(params), tuple(extra))


def _getter(slots):
    """``frame -> tuple of the slots' values`` (``itemgetter`` of one item
    returns the item itself, not a tuple)."""
    if len(slots) == 1:
        k = slots[0]
        return lambda frame: (frame[k],)
    return itemgetter(*slots)


def _runner(rows, n_params, extra):
    rows = tuple(rows)

    def block(*args):
        if len(args) != n_params:
            raise TypeError(f"block() takes {n_params} arguments ({len(args)} given)")
        frame = args + extra
        for fn, get, out in rows:
            if out is None:
                fn(*get(frame))
            else:
                fn(*get(frame), out=frame[out])
    return block


class Tiered:
    """The block function of ``generated``: interpreted for the first
    ``COMPILE_AFTER`` runs, then compiled (``compile_block()`` gives the
    compiled function and makes ``generated.fn`` return it from then on)."""

    __slots__ = ("run", "compile_block", "left")

    def __init__(self, run, compile_block):
        self.run = run
        self.compile_block = compile_block
        self.left = COMPILE_AFTER

    def __call__(self, *args):
        self.left -= 1  # (a race between threads only shifts the switch)
        if self.left < 0:
            return self.compile_block()(*args)
        return self.run(*args)
