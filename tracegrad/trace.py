"""The graph: ``Type``, ``Variable``, ``Constant``, ``Apply``, ``Op``.

A graph is a bipartite DAG of variables and applications of ops. Placeholders
(``T.dmatrix('x')``) are variables without an owner; calling an op on
variables records an ``Apply`` whose outputs are new variables. Every walk over
a graph here is iterative, so graphs of any depth are fine.

Each ``Apply`` remembers where user code created it (``node.source``), found by
skipping the frames that belong to tracegrad itself (and NumPy's dispatch), so
errors can point at the user's own line.
"""
import os
import sys
import threading
from collections import namedtuple

from tracegrad.config import config
from tracegrad.postorder import postorder
from tracegrad.trace_pickle import (copy_object, reduce_apply, reduce_variable,
                                   set_object_state, set_output_states)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NUMPY_DIR = None


def _skip_dirs():
    global _NUMPY_DIR
    if _NUMPY_DIR is None:
        import numpy
        _NUMPY_DIR = os.path.dirname(os.path.abspath(numpy.__file__)) + os.sep
    return (_PACKAGE_DIR, _NUMPY_DIR)


# ``callers``: up to ``MAX_CALLERS`` ``(filename, lineno, function)`` of the
# user frames that called the innermost one (outermost last); ``called``: the
# tracegrad function or NumPy function the user's line called (``numpy.dot``,
# ``T.dot``'s ``dot``, an operator ``@``), which may differ from the op built
# (``tensordot``). Both default to empty so older pickles still load.
SourceLocation = namedtuple("SourceLocation", "filename lineno function callers called",
                            defaults=((), None))

MAX_CALLERS = 3

# Frames above the user's line that are never the user's own code: the
# standard library (runpy, importlib) and installed packages (pytest,
# IPython), found once.
_OUTER_DIRS = None

# What the user wrote for an operator's method.
_OPERATORS = {
    "__add__": "+", "__radd__": "+", "__sub__": "-", "__rsub__": "-",
    "__mul__": "*", "__rmul__": "*", "__truediv__": "/", "__rtruediv__": "/",
    "__floordiv__": "//", "__rfloordiv__": "//", "__mod__": "%", "__rmod__": "%",
    "__pow__": "**", "__rpow__": "**", "__matmul__": "@", "__rmatmul__": "@",
    "__neg__": "unary -", "__pos__": "unary +", "__abs__": "abs",
    "__invert__": "~", "__and__": "&", "__rand__": "&", "__or__": "|",
    "__ror__": "|", "__xor__": "^", "__rxor__": "^", "__lshift__": "<<",
    "__rshift__": ">>", "__lt__": "<", "__le__": "<=", "__gt__": ">",
    "__ge__": ">=", "__eq__": "==", "__ne__": "!=", "__getitem__": "x[...]",
}


def _outer_dirs():
    global _OUTER_DIRS
    if _OUTER_DIRS is None:
        import sysconfig
        paths = sysconfig.get_paths()
        dirs = {os.path.abspath(paths[k]) + os.sep
                for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
        _OUTER_DIRS = tuple(sorted(dirs)) + ("<frozen ",)
    return _OUTER_DIRS


def _called_name(frame):
    """What the user's line called, from tracegrad's outermost frame."""
    code = frame.f_code
    name = code.co_name
    if name in ("__array_function__", "__array_ufunc__"):
        func = frame.f_locals.get("func" if name == "__array_function__" else "ufunc")
        module = getattr(func, "__module__", None) or "numpy"
        if module.startswith("numpy") and any(p.startswith("_") for p in module.split(".")):
            module = "numpy"  # (a private module: the public name is numpy.X)
        return f"{module}.{getattr(func, '__name__', func)}"
    return _OPERATORS.get(name, name)


# Per thread: ``(frame, its source)`` set by ``anchor_sources`` (see there).
_ANCHOR = threading.local()


def user_source_location(frame=None):
    """Where user code built a node: the innermost frame outside tracegrad
    (and NumPy's dispatch), up to ``MAX_CALLERS`` of its user callers, and
    the name of the function it called. ``frame``: start the search there
    (default: the caller's frame)."""
    skip = _skip_dirs()
    frame = sys._getframe(1) if frame is None else frame
    anchor = getattr(_ANCHOR, "at", None)
    anchor_frame = anchor[0] if anchor is not None else None
    entry = None
    while frame is not None:
        if frame is anchor_frame:
            return anchor[1]
        filename = frame.f_code.co_filename
        if not filename.startswith(skip):
            break
        entry = frame
        frame = frame.f_back
    else:
        return None
    user = frame
    callers = []
    outer = _OUTER_DIRS or _outer_dirs()
    frame = frame.f_back
    while frame is not None and len(callers) < MAX_CALLERS:
        code = frame.f_code
        if code.co_filename.startswith(outer):
            break  # the runner above the user's code (runpy, pytest, IPython)
        if not code.co_filename.startswith(skip):
            callers.append((code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    return SourceLocation(user.f_code.co_filename, user.f_lineno, user.f_code.co_name,
                          tuple(callers), _called_name(entry) if entry is not None else None)


def anchor_sources(frame):
    """Remember the source of ``frame`` (a tracegrad frame, e.g. an engine's
    loop) for this thread until ``release_sources`` is called with what
    this returns. A node built below ``frame`` with no user frame in
    between has that same source, so ``user_source_location`` stops its
    walk there instead of walking on to the user's frame and its callers
    every time (``grad`` builds tens of thousands of nodes in one call; a
    rule of a user-defined op still gets its own line)."""
    previous = getattr(_ANCHOR, "at", None)
    _ANCHOR.at = (frame, user_source_location(frame))
    return previous


def release_sources(previous):
    """Undo ``anchor_sources`` (``previous``: what it returned)."""
    _ANCHOR.at = previous


def describe_source(src, indent="  "):
    """The "built at" lines of an error: the user's line, then its callers."""
    if src is None:
        return ""
    lines = [f"\n{indent}built at {src.filename}:{src.lineno} in {src.function}"]
    for filename, lineno, function in getattr(src, "callers", ()):
        lines.append(f"\n{indent}  called from {filename}:{lineno} in {function}")
    return "".join(lines)


def describe_op(node, source=None):
    """The failing node's op, named as the user wrote it when that differs:
    ``numpy.dot (op tensordot)`` (``source``: the ``SourceLocation`` to
    take the name from, ``node.source`` by default)."""
    name = node.op.name
    called = getattr(node.source if source is None else source, "called", None)
    if called is None or called.rsplit(".", 1)[-1].lower() == name.lower():
        return name
    return f"{called} (op {name})"


class Type:
    """The type of a variable: which values it may hold."""

    variable_class = None  # set by subclasses
    # Whether a value of this type is one backend array of ``self.dtype``
    # (``TensorType``): the runtime then casts inputs and op results to it.
    # Values of other types (scipy.sparse matrices) are kept as their ops
    # return them, and inputs go through the type's own
    # ``filter(value, strict, allow_downcast)``.
    array_values = False

    def make_variable(self, name=None):
        return self.variable_class(self, name=name)

    def __call__(self, name=None):
        return self.make_variable(name)


class Scratchpad:
    """A variable's ``tag``: an object taking any attribute."""

    def __repr__(self):
        return f"Scratchpad({vars(self)})"


# Functions called with every new ``Apply`` an op builds (``Op.__call__``);
# tracegrad/test_values.py adds one while config.compute_test_value is on.
NODE_HOOKS = []


class Variable:
    """A node of the graph holding a value of ``type``.

    ``owner`` is the ``Apply`` that computes it (``None`` for inputs, shared
    variables and constants) and ``index`` its position among that Apply's
    outputs.
    """

    __slots__ = ("type", "owner", "index", "name", "_tag", "__weakref__")

    def __init__(self, type, owner=None, index=None, name=None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self._tag = None

    @property
    def tag(self):
        """Theano's scratchpad: free attributes (``x.tag.test_value``),
        made on first use."""
        if self._tag is None:
            self._tag = Scratchpad()
        return self._tag

    @tag.setter
    def tag(self, value):
        self._tag = value

    def __reduce_ex__(self, protocol):
        # Flat, whatever the graph's depth (see trace_pickle).
        return reduce_variable(self)

    def __setstate__(self, state):
        set_object_state(self, state)

    def __copy__(self):
        return copy_object(self)

    def clone(self):
        """A new ownerless variable of the same type and name."""
        cp = type(self).__new__(type(self))
        Variable.__init__(cp, self.type, None, None, self.name)
        return cp

    def __repr__(self):
        """``TensorVariable(x, float64, shape=(None, 784))``: the class, the
        name (or the op that built it: ``exp.out``), the dtype and the static
        shape (``None`` where unknown, ``1`` on a broadcastable axis)."""
        if config.print_test_value:
            shown = self._test_value_repr()
            if shown is not None:
                return shown
        t = self.type
        shape = getattr(t, "shape", None)
        if hasattr(t, "dtype") and isinstance(shape, tuple):
            type_text = f"{t.dtype}, shape={shape!r}"
        else:
            type_text = str(t)
        if self.name is None and self.owner is None and not isinstance(self, Constant):
            return f"{type(self).__name__}({type_text})"
        label = str(self)
        data = getattr(self, "data", None)
        if self.name is None and 1 < getattr(data, "size", 0) <= 16:
            label = repr(data.tolist())  # a small constant array: its values
        return f"{type(self).__name__}({label}, {type_text})"

    def _test_value_repr(self):
        """Theano's ``print_test_value``: the name, then the test value (or a
        constant's or shared variable's value); ``None`` without one."""
        tag = self._tag
        value = getattr(tag, "test_value", None) if tag is not None else None
        if value is None and getattr(self, "data", None) is not None:   # a constant
            value = self.data
        if value is None and getattr(self, "container", None) is not None:  # shared
            value = self.container.value
        return None if value is None else f"{self}\n{value!r}"

    def __str__(self):
        if self.name is not None:
            return self.name
        if self.owner is not None:
            op = self.owner.op
            if len(self.owner.outputs) == 1:
                return f"{op.name}.out"
            return f"{op.name}.{self.index}"
        return f"<{self.type}>"


class Constant(Variable):
    """A variable with a fixed value ``data``."""

    __slots__ = ("data",)

    def __init__(self, type, data, name=None):
        Variable.__init__(self, type, None, None, name)
        self.data = data

    def clone(self):
        cp = type(self).__new__(type(self))
        Constant.__init__(cp, self.type, self.data, self.name)
        return cp

    def signature(self):
        """A hashable key: equal for constants with the same type and value."""
        return (self.type, getattr(self.data, "tobytes", lambda: self.data)())

    def __str__(self):
        if self.name is not None:
            return self.name
        data = self.data
        if getattr(data, "size", 2) == 1 and getattr(data, "ndim", 0) == 0:
            return str(data.item() if hasattr(data, "item") else data)
        return f"Constant{{{getattr(data, 'shape', '')}}}"


class Apply:
    """One application of ``op`` to ``inputs`` producing ``outputs``."""

    __slots__ = ("op", "inputs", "outputs", "source", "__weakref__")

    def __init__(self, op, inputs, outputs, source=None):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        for i, out in enumerate(self.outputs):
            out.owner = self
            out.index = i
        self.source = source if source is not None else user_source_location()

    def __reduce_ex__(self, protocol):
        # Flat, whatever the graph's depth (see trace_pickle).
        return reduce_apply(self)

    def __setstate__(self, state):
        set_output_states(self, state)

    def __copy__(self):
        return copy_object(self)

    @property
    def out(self):
        """The only output (error if the op has several)."""
        if len(self.outputs) != 1:
            raise AttributeError(f"{self.op.name} has {len(self.outputs)} outputs")
        return self.outputs[0]

    def clone_with_new_inputs(self, inputs):
        """Rebuild this application on ``inputs`` (types re-inferred)."""
        node = self.op.make_node(*inputs)
        node.source = self.source
        return node

    def __repr__(self):
        return f"Apply({self.op.name}, [{', '.join(map(str, self.inputs))}])"


class Op:
    """An operation. Everything an engine (grad, rewrite, fuse, compile) may
    ask of an op is declared here with its default; subclasses override what
    applies to them (``OP_HOOKS`` lists the names; docs/ARCHITECTURE.md, "Op
    declarations"). Elementwise ops answer the value and algebra facts from
    their table row (``ops/elemwise.py``), so a row is the declaration.

    Required of every op: ``make_node(*inputs) -> Apply`` (checks the inputs
    and infers the output types: the static shape rule), ``impl(xp,
    *arrays)`` (computes with the array module ``xp``, NumPy or CuPy; one
    array, or a tuple for several outputs), and ``vjp(node, output_grads)``
    where a gradient exists (``None`` per disconnected input; the default
    raises). Forward-mode derivatives (``Rop``) are built from ``vjp``.
    """

    # -- identity and memory
    __props__ = ()     # attributes defining equality and hash (merging, caches)
    view_map = {}      # {output: [input]}: outputs that may be views of an input
    destroy_map = {}   # {output: [input]}: outputs written over an input's buffer
    inplace_version = None  # fn(i) -> an op overwriting input i, or None (rewrite/inplace.py)

    # -- running
    impl_for = None    # fn(xp) -> f(*arrays): a faster ``partial(impl, xp)`` (schedule)
    # fn(xp, out, *arrays) -> out holding impl's (one) result, or None where
    # out does not fit (shape, dtype): producers writing into a bucket's
    # buffer (tracegrad.distributed, gradient as bucket view)
    impl_into = None
    # fn(xp) -> f(out, *arrays): a faster ``impl_into`` (what ``impl_for`` is
    # to ``impl``), the checks that do not depend on the arrays made once
    into_for = None
    # True: impl returns a tuple of one array per output (several outputs),
    # each the backend's array class in its output's dtype, so the schedule
    # stores them unchecked (a bucket's 64 views: ~6 us of dtype checks)
    exact_outputs = False

    # -- rewriting and folding
    is_random = False          # never merged nor constant-folded (two draws differ)
    constant_foldable = True   # False: never replaced by its value
    foldable = False           # True: build-time shape values may be computed through it
    static_output = None       # fn(node) -> output values known from static types, or None
    static_entries = None      # fn(node, depth) -> known entries of a 1-d shape vector

    # -- the elementwise table row (``Elemwise`` ops) or None
    scalar_op = None           # the ``ScalarOp`` row; rewrite rules are keyed by its name

    # -- value facts (for every input value, in exact arithmetic)
    positive = False           # every output entry > 0 for finite inputs
    positive_if_inputs = False  # output > 0 wherever every input is > 0
    finite_if_inputs = False   # finite inputs give a finite output, but for overflow
    zero_or_inf_at_inf = False  # output is 0, inf or NaN where its input is inf or NaN
    bounded = False            # never inf (NaN only of a NaN or inf input)
    selects = False            # every output entry is an entry of input 0 (views, indexing)
    broadcasts = False         # the output is input 0's values broadcast to a shape

    # -- algebra (two-input elementwise ops)
    commutative = False        # op(a, b) == op(b, a)
    associative = False        # op(op(a, b), c) == op(a, op(b, c)) (up to rounding)
    identity = None            # e with op(x, e) == op(e, x) == x, or None
    inverse_of = None          # name of the row ``f`` with op(a, b) == f(a, inverse(b)), or None
    negation = False           # op(x) == -x (joins both sums and products)

    def shape_relation(self, node):
        """How an output's shape follows from one input's, for shape proofs
        (``rewrite/algebra.py``): ``('same', var)`` (the shape of ``var``),
        ``('dimshuffle', var, pattern, input_ndim)``, ``('reduce', var,
        axes, keepdims)``, or ``None`` (unknown; elementwise ops broadcast)."""
        return None

    @property
    def name(self):
        return type(self).__name__

    def make_node(self, *inputs):
        """Check ``inputs`` and build the ``Apply`` (output types: the shape rule)."""
        raise NotImplementedError(f"{self.name}.make_node")

    def impl(self, xp, *arrays):
        """The outputs' values computed with the array module ``xp``."""
        raise NotImplementedError(f"{self.name} has no implementation")

    def vjp(self, node, output_grads):
        """The gradient per input (``None``: disconnected) given the outputs'.
        An op written to Theano's protocol defines ``grad(inputs,
        output_grads)`` instead; it is called with the node's inputs."""
        if getattr(type(self), "grad", None) is not None:
            return list(self.grad(list(node.inputs), list(output_grads)))
        raise NotImplementedError(
            f"tracegrad has no gradient rule for op {self.name}")

    def accumulate_onto(self, node, total):
        """For a gradient term ``node.outputs[0]`` that writes values into
        fresh zeros (``zeros.at[idx].add(y)``): the same term written onto
        ``total`` instead (``total.at[idx].add(y)``), or ``None``. ``grad``
        sums the many terms of an indexed leaf (``sum(f(x[i]))``) this way:
        one node per term instead of zeros, scatter and add."""
        return None

    def vmap_rule(self, node, inputs, batch_axes):
        """The batching rule (``tg.vmap``): ``node`` rebuilt on ``inputs``, the
        node's inputs where ``batch_axes[i]`` is not ``None`` carrying a batch
        axis there. Returns ``(outputs, out_axes)`` (each output's batch axis,
        or ``None`` where it is the same for every example), or ``None``:
        no rule for these inputs, and ``vmap`` loops over the batch
        (``tracegrad/vmap.py``; helpers in ``ops/batching.py``)."""
        return None

    def source_of(self, node, message):
        """Where user code built what ``message`` (an error or a NumPy
        warning raised running ``node``) is about: ``node.source``; an op
        made of several user nodes (a fused kernel) answers the one the
        message names (``evaluate.node_error_message``, ``compile/warnpoint.py``)."""
        return node.source

    def __call__(self, *inputs):
        node = self.make_node(*inputs)
        for hook in NODE_HOOKS:     # (test values: tracegrad/test_values.py)
            hook(node)
        if len(node.outputs) == 1:
            return node.outputs[0]
        return node.outputs

    def _props(self):
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other):
        return type(self) is type(other) and self._props() == other._props()

    def __hash__(self):
        return hash((type(self), self._props()))

    def __str__(self):
        return self.name

    __repr__ = __str__


# Every hook above, by name (tests/test_op_declarations.py checks each is
# declared on ``Op`` and holds on every registered op).
OP_HOOKS = ("make_node", "impl", "vjp", "__props__", "view_map", "destroy_map",
            "inplace_version", "impl_for", "impl_into", "exact_outputs", "into_for", "is_random",
            "constant_foldable",
            "foldable", "static_output", "static_entries", "scalar_op", "positive",
            "positive_if_inputs", "finite_if_inputs", "zero_or_inf_at_inf", "bounded",
            "selects", "broadcasts", "commutative", "associative", "identity",
            "inverse_of", "negation", "shape_relation", "vmap_rule", "accumulate_onto",
            "source_of")


# ---------------------------------------------------------------- graph walks

def uses_perform(op):
    """True for an op written to Theano's protocol: ``perform(node, inputs,
    output_storage)`` and no ``impl`` of its own."""
    return class_uses_perform(type(op))


def class_uses_perform(cls):
    """``uses_perform`` of the ops of class ``cls``."""
    return getattr(cls, "perform", None) is not None and cls.impl is Op.impl


def node_runner(node, xp):
    """``f(*arrays)`` computing ``node``'s outputs with ``xp``: the op's
    ``impl``, or for a Theano-protocol op (``uses_perform``) its ``perform``
    with one storage cell per output (``perform`` runs on NumPy arrays: a
    device array is copied to the host and the results back)."""
    op = node.op
    if not uses_perform(op):
        return lambda *arrays: op.impl(xp, *arrays)
    n_out = len(node.outputs)
    host = xp.__name__ != "numpy"

    def run(*arrays):
        if host:
            arrays = [a.get() if hasattr(a, "get") else a for a in arrays]
        storage = [[None] for _ in range(n_out)]
        op.perform(node, list(arrays), storage)
        results = [xp.asarray(cell[0]) if host else cell[0] for cell in storage]
        return results[0] if n_out == 1 else tuple(results)
    return run


def ancestors(outputs, blockers=()):
    """All variables the ``outputs`` depend on (outputs included)."""
    blockers = set(blockers)
    seen = set()
    order = []
    stack = list(outputs)
    while stack:
        var = stack.pop()
        if var in seen:
            continue
        seen.add(var)
        order.append(var)
        if var.owner is not None and var not in blockers:
            stack.extend(var.owner.inputs)
    return order


def graph_inputs(outputs, blockers=()):
    """Variables without owner (or in ``blockers``) that ``outputs`` depend on."""
    blockers = set(blockers)
    return [v for v in ancestors(outputs, blockers) if v.owner is None or v in blockers]


def toposort(outputs, blockers=()):
    """Apply nodes computing ``outputs``, each after the nodes it depends on.

    Iterative depth-first post-order; ``blockers`` are treated as inputs.
    """
    return postorder(outputs, blockers)


def clone_replace(outputs, replace=None, blockers=()):
    """Rebuild the graph of ``outputs`` with ``replace`` (var -> var) applied.

    Returns ``(new_outputs, memo)`` where ``memo`` maps each old variable to
    its counterpart. Nodes not affected by a replacement are shared, so this
    is cheap when nothing depends on a replaced variable.
    """
    memo = dict(replace or {})
    for node in toposort(outputs, blockers=set(memo) | set(blockers)):
        rebuild_node(node, memo)
    return [memo.get(o, o) for o in outputs], memo


def rebuild_node(node, memo):
    """Rebuild ``node`` on its inputs' replacements in ``memo`` (if any
    changed), recording its outputs' replacements in ``memo``."""
    new_inputs = [memo.get(i, i) for i in node.inputs]
    if all(a is b for a, b in zip(new_inputs, node.inputs)):
        return
    new_node = node.clone_with_new_inputs(new_inputs)
    for old, new in zip(node.outputs, new_node.outputs):
        if new.name is None:
            new.name = old.name
        memo[old] = new


def clone_graph(outputs, inputs=None):
    """A full copy of the graph: every Apply and every owned variable is new.

    Ownerless variables (inputs, shared variables, constants) are kept unless
    listed in ``inputs``, which are replaced by fresh clones. Returns
    ``(new_inputs, new_outputs, memo)``.
    """
    memo = {}
    new_inputs = []
    for var in inputs or ():
        memo[var] = var.clone()
        new_inputs.append(memo[var])
    for node in toposort(outputs, blockers=memo):
        copy_node(node, [memo.get(i, i) for i in node.inputs], memo)
    return new_inputs, [memo.get(o, o) for o in outputs], memo


def copy_node(node, inputs, memo):
    """A copy of ``node`` reading ``inputs`` (a new list), each output's copy
    (tag kept) recorded in ``memo``: ``Apply(node.op, inputs, copies,
    source=node.source)`` without its constructors' calls and list copies
    (a clone copies every node; the arguments are fresh already)."""
    new = _new_apply(Apply)
    new.op = node.op
    new.inputs = inputs
    outputs = []
    for k, old in enumerate(node.outputs):
        cls = type(old)
        if cls.clone is not _plain_clone:   # (a class with a clone of its own)
            out = old.clone()
            out._tag = old._tag
            out.owner, out.index = new, k
        else:
            out = cls.__new__(cls)
            out.type, out.owner, out.index, out.name = old.type, new, k, old.name
            out._tag = old._tag
        memo[old] = out
        outputs.append(out)
    new.outputs = outputs
    source = node.source
    new.source = source if source is not None else user_source_location()
    return new


_new_apply = object.__new__
_plain_clone = Variable.clone
