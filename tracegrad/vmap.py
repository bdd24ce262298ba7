"""``tg.vmap``: vectorize a function over an axis of its arguments, with
JAX's semantics, by rewriting its graph.

``fn`` is traced once on *unbatched stand-ins* (each mapped argument without
its mapped axis); then the graph is walked in order, carrying for every
variable its batch axis (``None``: the same for every example). A node none
of whose inputs is batched is kept as it is; any other node is rebuilt by its
op's batching rule, ``op.vmap_rule(node, inputs, batch_axes) -> (outputs,
out_axes)`` (``trace.Op``; the shared helpers are in ``ops/batching.py``).
An op without a rule (``vmap_rule`` returns ``None``) is run once per
example by a ``scan`` over the batch axis: every op works under ``vmap``,
those without a rule just more slowly. Random ops refuse (their draws would
be shared, or not, silently).

The result is a graph of ordinary ops, so ``vmap`` composes with everything
else: ``tg.vmap(tg.grad(loss), in_axes=(None, 0, 0))`` gives per-example
gradients, ``tg.grad`` of a vmapped function differentiates the batched
graph, ``tg.jit(tg.vmap(f))`` and ``tg.vmap(tg.vmap(f))`` trace it inside
another trace. Like the other transforms it is compiled once per argument
signature (``jit.Compiled``) and inlined when called while tracing.
"""
import numpy as np

from tracegrad.jit import Compiled, _FreeArgument, _StaticArgument, call_traced, flatten_outputs
from tracegrad.ops import api as _ops
from tracegrad.ops.batching import materialize, to_front
from tracegrad.pytree import CONTAINERS, Static, _children, _rebuild, flatten, unflatten
from tracegrad.scan import scan
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import TensorVariable, as_tensor_variable
from tracegrad.trace import Variable, toposort

__all__ = ["vmap"]


def _is_axis(a):
    return a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool))


# ------------------------------------------------------------ axis specifications
def _check_spec(spec, what):
    """``spec`` (an int, ``None``, or a container of them) or ``ValueError``."""
    if _is_axis(spec):
        return
    node = _children(spec)
    if node is None:
        raise ValueError(f"vmap {what} must be an int, None, or (nested) container with "
                         f"those types as leaves, but got {spec!r}")
    for _, child in node[1]:
        _check_spec(child, what)


def _tree_str(tree):
    structure, _ = flatten(tree, lambda o, n: (("leaf",), o))
    return _describe(structure)


def _describe(s):
    if s[0] in CONTAINERS:
        inner = ", ".join(_describe(c) for c in s[-1])
        if s[0] in ("dict", "odict"):
            inner = ", ".join(f"{k!r}: {_describe(c)}" for k, c in zip(s[1], s[-1]))
            return "{" + inner + "}"
        if s[0] == "list":
            return f"[{inner}]"
        return f"({inner}{',' if len(s[-1]) == 1 else ''})"
    return "*"


def _map_prefix(spec, tree, fn, what, name):
    """``tree`` with each leaf ``o`` replaced by ``fn(o, axis, name)``, where
    ``axis`` comes from ``spec``, a tree prefix of ``tree`` (JAX's in_axes)."""
    if _is_axis(spec):
        def walk(o, name):
            node = _children(o)
            if node is None:
                return fn(o, spec, name)
            header, items = node
            return _rebuild(header, [walk(c, name + label) for label, c in items])
        return walk(tree, name)
    s_node, t_node = _children(spec), _children(tree)
    if (t_node is None or s_node[0] != t_node[0]
            or [lbl for lbl, _ in s_node[1]] != [lbl for lbl, _ in t_node[1]]):
        raise ValueError(f"vmap {what} specification must be a tree prefix of the "
                         f"corresponding value, got specification {spec!r} for value tree "
                         f"{_tree_str(tree)}")
    header, items = t_node
    return _rebuild(header, [_map_prefix(s, c, fn, what, name + label)
                             for (_, s), (label, c) in zip(s_node[1], items)])


def _symbolic(o):
    """A leaf as a variable, or ``None`` for a static leaf (``None``, strings)."""
    if isinstance(o, Variable):
        return o
    if type(o) in (int, float, complex) or isinstance(o, (np.ndarray, np.generic)):
        return as_tensor_variable(o)
    return None


def _type_str(var):
    return f"{var.dtype}[{','.join('?' if d is None else str(d) for d in var.type.shape)}]"


def _checked_axis(var, axis, name):
    """``axis`` made non-negative for ``var``, or JAX's ``ValueError``."""
    ndim = var.ndim
    if not -ndim <= axis < ndim:
        shape = "(" + ", ".join("?" if d is None else str(d) for d in var.type.shape) \
            + ("," if ndim == 1 else "") + ")"
        raise ValueError(f"vmap was requested to map its argument along axis {axis}, which "
                         f"implies that its rank should be at least {max(axis + 1, -axis)}, "
                         f"but is only {ndim} (its shape is {shape}) (argument {name})")
    return int(axis) % ndim


def _stand_in(var, axis):
    """A placeholder for one example of ``var`` (mapped along ``axis``): the
    argument ``fn`` is traced on; a traced argument's kind is kept, so
    ``x.shape`` stays a tuple of ints where the shapes are static."""
    shape = var.type.shape[:axis] + var.type.shape[axis + 1:]
    cls = type(var) if type(var) in (TensorVariable, _FreeArgument, _StaticArgument) \
        else TensorVariable
    stand = cls(TensorType(var.dtype, shape), name=var.name)
    stand.traced_argument = True
    return stand


# ------------------------------------------------------------------ sizes
def _sizes_message(found):
    lines = ["vmap got inconsistent sizes for array axes to be mapped:"]
    by_size = {}
    for size, desc in found:
        by_size.setdefault(size, []).append(desc)
    for size, descs in by_size.items():
        if len(descs) == 1:
            lines.append(f"  * one axis had size {size}: {descs[0]}")
        else:
            lines.append(f"  * {len(descs)} axes had size {size}, e.g. {descs[0]}")
    return "\n".join(lines)


def _check_sizes(found, axis_size):
    """``found``: ``[(size or None, description)]`` of the mapped axes."""
    known = [(s, d) for s, d in found if s is not None]
    if axis_size is not None:
        known.append((int(axis_size), "axis_size"))
    if len({s for s, _ in known}) > 1:
        raise ValueError(_sizes_message(known))


# ------------------------------------------------------------------ the walk
def _loop(node, inputs, batch_axes):
    """The fallback of an op without a batching rule: a ``scan`` over the
    batch applying the op to each example."""
    mapped = [i for i, a in enumerate(batch_axes) if a is not None]
    seqs = [to_front(inputs[i], batch_axes[i]) for i in mapped]

    def step(*slices):
        args = list(inputs)
        for i, s in zip(mapped, slices):
            args[i] = s
        outs = node.op.make_node(*args).outputs
        return outs[0] if len(outs) == 1 else outs

    outs, _ = scan(step, sequences=seqs)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    return outs, [0] * len(outs)


def _refuse_random(node):
    raise NotImplementedError(
        f"vmap: the random op {node.op.name} depends on a mapped argument (its value or "
        "its shape); vmap does not batch random draws (each example would need its own "
        "stream): draw the batch of random numbers outside vmap and pass it in with "
        "in_axes=0")


def _batch_node(node, inputs, batch_axes):
    op = node.op
    ruled = op.vmap_rule(node, inputs, batch_axes)
    if ruled is None:
        ruled = _loop(node, inputs, batch_axes)
    outs, axes = ruled
    outs = list(outs)
    for old, new in zip(node.outputs, outs):
        if new.dtype != old.dtype or new.ndim != old.ndim + 1:
            if new.ndim == old.ndim and new.dtype == old.dtype:
                continue  # an unbatched output (its axis is None)
            raise TypeError(f"vmap: the batching rule of {op.name} returned {new.type} for "
                            f"an output of type {old.type}")
    return outs, list(axes)


def batch_graph(outputs, mapped):
    """``[(variable, axis)]`` for ``outputs`` of a graph whose inputs
    ``mapped`` (``{stand-in: (batched variable, axis)}``) carry a batch axis."""
    env = dict(mapped)
    for node in toposort(outputs, blockers=set(mapped)):
        ins = [env.get(v, (v, None)) for v in node.inputs]
        if node.op.is_random and any(v in env for v in node.inputs):
            _refuse_random(node)
        if all(a is None for _, a in ins):
            # The same for every example; rebuilt where an input was (an
            # example's shape: ``shape`` of a batched value is unbatched).
            if any(v is not old for (v, _), old in zip(ins, node.inputs)):
                rebuilt = node.clone_with_new_inputs([v for v, _ in ins])
                for old, new in zip(node.outputs, rebuilt.outputs):
                    env[old] = (new, None)
            continue
        outs, axes = _batch_node(node, [v for v, _ in ins], [a for _, a in ins])
        for old, new, a in zip(node.outputs, outs, axes):
            env[old] = (new, a)
    return [env.get(o, (o, None)) for o in outputs]


def _move_out(var, axis, out_axis, like, name):
    """An output with its batch axis at ``out_axis`` (``None``: unbatched)."""
    if out_axis is None:
        if axis is not None:
            raise ValueError(f"vmap has mapped output ({name}) but out_axes is None")
        return var
    if axis is None:
        var = materialize(var, like)
        axis = 0
    ndim = var.ndim
    if not -ndim <= out_axis < ndim:
        raise ValueError(f"vmap out_axes {out_axis} is out of bounds for an output ({name}) "
                         f"of rank {ndim - 1} (rank {ndim} with the batch axis)")
    out_axis %= ndim
    if out_axis == axis:
        return var
    return _ops.moveaxis(var, axis, out_axis)


# ------------------------------------------------------------------ transform
class _Transform:
    def __init__(self, fn, in_axes, out_axes, axis_size):
        self.fn, self.in_axes, self.out_axes = fn, in_axes, out_axes
        self.axis_size = axis_size
        self.fname = getattr(fn, "__name__", type(fn).__name__)

    def _args_spec(self, args, kwargs):
        in_axes = self.in_axes
        if isinstance(in_axes, list):
            in_axes = tuple(in_axes)  # (as JAX: a top-level list is the tuple)
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap in_axes must be an int, None, or a tuple of entries "
                             f"corresponding to the positional arguments passed to the "
                             f"function, but got len(in_axes)={len(in_axes)}, "
                             f"len(args)={len(args)}")
        # kwargs are always mapped over their axis 0 (as JAX)
        return in_axes, 0

    def __call__(self, args, kwargs):
        in_axes, kw_axes = self._args_spec(args, kwargs)
        mapped, found = {}, []

        def leaf(o, axis, name):
            var = _symbolic(o)
            if var is None or axis is None:
                return o if var is None or isinstance(o, Variable) else var
            axis = _checked_axis(var, axis, name)
            stand = _stand_in(var, axis)
            mapped[stand] = (var, axis)
            found.append((var.type.shape[axis],
                          f"axis {axis} of argument {name} of type {_type_str(var)}"))
            return stand

        names = [f"args[{i}]" for i in range(len(args))]
        new_args = [_map_prefix(in_axes if _is_axis(in_axes) else in_axes[i], a, leaf,
                                "in_axes", names[i]) for i, a in enumerate(args)]
        new_kwargs = {k: _map_prefix(kw_axes, v, leaf, "in_axes", k)
                      for k, v in kwargs.items()}
        if not mapped and self.axis_size is None:
            raise ValueError("vmap must have at least one non-None value in in_axes "
                             "(or be given axis_size=)")
        _check_sizes(found, self.axis_size)
        out = call_traced(self.fn, new_args, new_kwargs)
        structure, outs = flatten_outputs(out, self.fname, "vmap")
        batched = batch_graph(outs, mapped)
        like = self._like(mapped, batched)
        specs = self._out_specs(structure)
        results = [_move_out(v, a, s, like, f"result{n}")
                   for (v, a), (s, n) in zip(batched, specs)]
        return unflatten(structure, results, static=Static)

    def _like(self, mapped, batched):
        """A variable whose axis 0 has the batch length."""
        for var, axis in list(mapped.values()) + batched:
            if axis is not None:
                return to_front(var, axis)
        return _ops.zeros((int(self.axis_size),), dtype="int8")

    def _out_specs(self, structure):
        """``[(out_axis, name)]`` per dynamic output leaf."""
        template = unflatten(structure, [_Leaf() for _ in range(_count(structure))],
                             static=lambda v: None)
        specs = []

        def leaf(o, axis, name):
            if isinstance(o, _Leaf):
                if not _is_axis(axis):
                    raise ValueError(f"vmap out_axes must be an int, None, or (nested) "
                                     f"container with those types as leaves, but got "
                                     f"{self.out_axes!r}")
                specs.append((axis, name))
            return o

        out_axes = self.out_axes
        if isinstance(out_axes, list) and isinstance(template, tuple):
            out_axes = tuple(out_axes)
        _map_prefix(out_axes, template, leaf, "out_axes", "")
        return specs


class _Leaf:
    __slots__ = ()


def _count(structure):
    if structure[0] in CONTAINERS:
        return sum(_count(c) for c in structure[-1])
    return 0 if structure[0] == "static" else 1


# ------------------------------------------------------------------ public
class _Vmapped:
    """The callable ``vmap`` returns: checks the mapped lengths of concrete
    arguments (the compiled function is shared by every batch length), then
    runs the compiled transform."""

    def __init__(self, fn, transform):
        self._transform = transform
        self._compiled = Compiled(fn, transform, what="vmap")
        self.__name__ = f"vmap({transform.fname})"
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def __call__(self, *args, **kwargs):
        self._check_concrete(args, kwargs)
        return self._compiled(*args, **kwargs)

    def _check_concrete(self, args, kwargs):
        t = self._transform
        in_axes, kw_axes = t._args_spec(args, kwargs)
        found = []

        def leaf(o, axis, name):
            if axis is None or isinstance(o, (Variable, str, bytes)) or o is None:
                return o
            shape = np.shape(o) if hasattr(o, "shape") or type(o) in (int, float, complex) \
                else None
            if shape is None:
                return o
            if not -len(shape) <= axis < len(shape) or not shape:
                raise ValueError(f"vmap was requested to map its argument along axis "
                                 f"{axis}, which implies that its rank should be at least "
                                 f"{max(axis + 1, -axis)}, but is only {len(shape)} (its "
                                 f"shape is {shape}) (argument {name})")
            dims = ",".join(map(str, shape))
            found.append((shape[axis], f"axis {axis % len(shape)} of argument {name} of "
                          f"type {np.asarray(o).dtype}[{dims}]"))
            return o

        for i, a in enumerate(args):
            _check_spec(in_axes if _is_axis(in_axes) else in_axes[i], "in_axes")
            _map_prefix(in_axes if _is_axis(in_axes) else in_axes[i], a, leaf, "in_axes",
                        f"args[{i}]")
        for k, v in kwargs.items():
            _map_prefix(kw_axes, v, leaf, "in_axes", k)
        _check_sizes(found, t.axis_size)

    def compiled(self, *args, **kwargs):
        """The compiled ``tg.function`` these arguments' signature uses."""
        return self._compiled.compiled(*args, **kwargs)

    @property
    def cache_size(self):
        """How many signatures have been traced and compiled (one serves
        every batch length)."""
        return self._compiled.cache_size

    def __repr__(self):
        return f"<tg.vmap of {self._transform.fname}>"


def vmap(fn, in_axes=0, out_axes=0, axis_size=None):
    """JAX's ``vmap``: ``fn`` mapped over an axis of its arguments.

    ``in_axes``: an int (every positional argument mapped over that axis),
    ``None`` (not mapped: the same value for every example), or a tuple (a
    list is read as one) with one entry per positional argument, each an
    int, ``None`` or a tree prefix of that argument (``{'w': 0, 'b': None}``
    for a dict argument). Keyword arguments are always mapped over axis 0.
    ``out_axes`` is the same for the result tree: where the batch axis of
    each output goes (``None``: an output that must not depend on the mapped
    axis); negative axes count from the end. Every mapped axis must have the
    same length (``ValueError`` naming each otherwise, as JAX). With every
    ``in_axes`` ``None``, ``axis_size`` gives the batch length (the outputs
    are repeated); without it that is an error.

    Ops with a native batching rule (``op.vmap_rule``): elementwise ops
    (every table row, casts), reductions, ``dot``/``tensordot``/
    ``matmul``, ``reshape``, ``dimshuffle``/``transpose``, indexing
    (basic, and advanced with adjacent index arrays), ``broadcast_to``/
    ``alloc``, ``shape``, ``SumTo``, ``concatenate``/``stack``,
    cumulative ops, ``sort``/``argsort``, ``softmax``/``log_softmax``,
    ``numpy.fft``, ``diagonal``, ``repeat``; other ops (``numpy.linalg``'s
    decompositions, value-dependent shapes) run once per example inside a
    ``scan`` (correct, slower).
    Random draws with a batched input raise ``NotImplementedError``. See
    docs/user-guide.md, "Vectorizing with vmap".
    """
    if not callable(fn):
        raise TypeError(f"vmap: fn must be callable, got {type(fn).__name__}")
    if not (_is_axis(in_axes) or isinstance(in_axes, (tuple, list))):
        raise ValueError("vmap in_axes must be an int, None, or a tuple of entries "
                         "corresponding to the positional arguments passed to the function, "
                         f"but got {in_axes!r}")
    _check_spec(in_axes, "in_axes")
    _check_spec(out_axes, "out_axes")
    if axis_size is not None and (not isinstance(axis_size, (int, np.integer))
                                  or isinstance(axis_size, bool) or axis_size < 0):
        raise TypeError(f"vmap: axis_size must be a non-negative int, got {axis_size!r}")
    return _Vmapped(fn, _Transform(fn, in_axes, out_axes, axis_size))
