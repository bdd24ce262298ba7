"""NumPy's warnings in a compiled call, pointed at the user's line (issue 20).

A warning NumPy gives while a compiled function runs, or while
``evaluate``/``x.eval()`` runs a graph (``log(0)``: "divide by zero
encountered in log"), names the line that called the ufunc: a line
of tracegrad or of the code it generates. ``install()`` (called when
tracegrad is imported) wraps ``warnings._showwarnmsg``, which CPython's
warning machinery calls for every warning that passed the filters. A call
that gives no warning runs nothing of this module: the whole cost is on
the warning's path.

When a warning's location is tracegrad's, the wrapper walks the stack to
the frame running the call's steps (the generated runner answers which step
its current line runs, ``STEPS_AT``; the loops over steps are looked up by
their code, ``LOOPS``), asks the step's op for the user's line
(``Op.source_of``: a fused kernel answers the row the message names) and
issues the warning again from that line with ``warnings.warn_explicit``,
under the user's module and its registry. The filters (``module=`` ones
included), the ``default``/``module``/``once`` deduplication and ``-W
error`` then act on the user's line as on a warning of the user's own code
(an error raised there leaves the ufunc as its exception, and the runner
names the node, as for any error). So that each user line gets its own
first warning, the entries the first pass wrote in the registries at
tracegrad's location are taken out again.

``-W error`` matched at tracegrad's location raises before anything is
shown: the runner reraises it naming the op and the user's line
(``evaluate.reraise_with_context``, which asks ``source_of`` too).

The blocks of a big fused call run on worker threads too
(``backend/numpy/runner.py``): a warning there has the pool below it, not the runner; the calling
thread's stack (``sys._current_frames``), waiting in ``_work_on_threads``
for the same task, holds the step.

Where the wrapper finds no step (a warning outside a compiled call, or in
a Python without these hooks), the warning is shown as it came.
"""
import os
import sys
import threading
import warnings

from tracegrad.evaluate import run_node
from tracegrad.backend.numpy import runner as blocks
from tracegrad.fuse.spec import FusionSpec, RowNode

# The globals name under which a generated runner keeps ``where(frame) ->
# node or None`` (its step at the frame's current line).
STEPS_AT = "__tracegrad_steps_at__"

# ``{code: where(frame) -> node or None}``: functions that run steps in a
# loop, answering from their locals (registered by their modules).
LOOPS = {}

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_GENERATED = "<tracegrad"
_state = threading.local()
_installed = []
_modules = {}  # filename -> module name (found once per file)
_registries = {}  # filename -> the registry of a file no loaded module has


def install():
    """Wrap ``warnings._showwarnmsg`` once (see the module doc)."""
    if _installed:
        return
    _installed.append(True)
    original = getattr(warnings, "_showwarnmsg", None)
    if original is None or not hasattr(warnings, "_onceregistry"):
        return  # (another Python's warnings module: warnings stay as they are)

    def showwarnmsg(msg):
        if not _repointed(msg):
            original(msg)
    showwarnmsg.__wrapped__ = original
    warnings._showwarnmsg = showwarnmsg


def _ours(filename):
    return filename.startswith(_GENERATED) or filename.startswith(_PACKAGE)


def _repointed(msg):
    """Issue ``msg`` again from the user's line; ``False`` when it is not
    tracegrad's or no step is found (then it is shown as it came)."""
    filename = msg.filename
    if not isinstance(filename, str) or not _ours(filename) or \
            getattr(_state, "busy", False):
        return False
    frame = sys._getframe(2)
    text = str(msg.message)
    src = _user_source(frame, text) or _caller_of_worker(frame, text)
    if src is None:
        return False
    _forget(frame, msg, text)
    module, globs = _module_of(src.filename)
    registry = _registries.setdefault(src.filename, {}) if globs is None else \
        globs.setdefault("__warningregistry__", {})
    _state.busy = True
    try:
        # (no ``module_globals``: warn_explicit would read the source line
        # through the module's loader on every call, shown or not; the line
        # is read from the file when the warning is shown)
        warnings.warn_explicit(msg.message, msg.category, src.filename, src.lineno,
                               module=module, registry=registry, source=msg.source)
    finally:
        _state.busy = False
    return True


def _user_source(frame, text):
    """The user's line of the innermost running step, from ``frame`` out,
    whose op names one for ``text`` (``Op.source_of``), or ``None``."""
    while frame is not None:
        where = frame.f_globals.get(STEPS_AT) or LOOPS.get(frame.f_code)
        node = where(frame) if where is not None else None
        src = node.op.source_of(node, text) if node is not None else None
        if src is not None and not _ours(src.filename):
            return src
        frame = frame.f_back
    return None


def _caller_of_worker(frame, text):
    """On a worker thread of ``backend/numpy/runner.py``: the user's line of
    the step the thread that handed out the blocks runs."""
    while frame is not None and frame.f_code is not blocks._work.__code__:
        frame = frame.f_back
    if frame is None:
        return None
    task = frame.f_locals.get("task")
    me = threading.get_ident()
    waiting = blocks._work_on_threads.__code__
    for ident, top in sys._current_frames().items():
        f = top
        while ident != me and f is not None:
            if f.f_code is waiting and f.f_locals.get("task") is task:
                return _user_source(f, text)
            f = f.f_back
    return None


def _forget(frame, msg, text):
    """Take out what the first pass recorded at tracegrad's location: the
    ``default`` and ``module`` entries of its registry and the ``once``
    entry (the first pass just wrote them: had they been there, it would
    have shown nothing)."""
    category = msg.category
    while frame is not None:
        if frame.f_code.co_filename == msg.filename and frame.f_lineno == msg.lineno:
            registry = frame.f_globals.get("__warningregistry__")
            if isinstance(registry, dict):
                registry.pop((text, category, msg.lineno), None)
                registry.pop((text, category, 0), None)
            break
        frame = frame.f_back
    warnings._onceregistry.pop((text, category), None)


def _module_of(filename):
    """``(module name, its globals)`` of the loaded module of ``filename``
    (``__main__`` for a script), or ``(None, None)``: ``warn_explicit``
    then names it after the file."""
    name = _modules.get(filename)
    module = sys.modules.get(name) if name is not None else None
    if module is None or getattr(module, "__file__", None) != filename:
        module = None
        for candidate in list(sys.modules.values()):
            if getattr(candidate, "__file__", None) == filename:
                module = candidate
                break
        if module is None:
            return None, None
        _modules[filename] = module.__name__
    return module.__name__, vars(module)


# The loops of the reference evaluator (``evaluate``, ``x.eval()``) and of a
# fused kernel's row-by-row path (``FusionSpec.reference``).
LOOPS[run_node.__code__] = lambda frame: frame.f_locals.get("node")
LOOPS[FusionSpec.reference.__code__] = lambda frame: RowNode(
    frame.f_locals["instr"], frame.f_locals["sources"], frame.f_locals["j"]) \
    if "instr" in frame.f_locals else None
install()
