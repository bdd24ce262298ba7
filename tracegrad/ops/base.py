"""The ops every other op module builds on.

``Elemwise`` (one op per table row, ``ScalarOp``; the rows themselves are in
``elemwise``), ``cast``, ``SumTo`` and ``BroadcastTo`` (each the other's vjp)
and ``Shape``: an elementwise vjp undoes broadcasting with ``sum_to``, whose
own vjp broadcasts back to ``shape(x)``, and shape vectors are cast to int64,
so these sit together below every other op module. They import only the
tensor types and ``ops.static``; ``elemwise``, ``shape_static`` and ``alloc``
re-export them under their old names.
"""
from functools import lru_cache, partial

import numpy as np

from tracegrad.ops import batching
from tracegrad.ops.static import _check_shape_input, _check_runtime_length, _ints
from tracegrad.tensor.dispatch import register_ufunc
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import TensorConstant, as_tensor_variable, resolve_weak
from tracegrad.trace import Apply, Op


class _Zero:
    """A gradient known to be zero (a piecewise-constant function's vjp, as
    JAX's symbolic zeros): a vjp returns ``ZERO`` and the reverse engine
    (``grad.reverse``) carries it symbolically (no vjp is asked to multiply
    it) and makes it ``zeros_like`` only where a requested gradient is
    nothing else, so the op modules need no array constructor."""

    __slots__ = ()

    def __repr__(self):
        return "ZERO"


ZERO = _Zero()


class NotDifferentiableError(TypeError):
    """A gradient was asked through an argument that has none in tracegrad
    (the integer order of a Bessel function, ``gammainc``'s shape...)."""


class NoGradient:
    """A vjp term that refuses: returned by a rule for an input without a
    derivative. The reverse engine (``grad.reverse``) raises
    ``NotDifferentiableError(message)`` only when a gradient is asked through
    that input; a gradient with respect to the other inputs is unaffected."""

    __slots__ = ("message",)

    def __init__(self, message):
        self.message = message

    def __repr__(self):
        return f"NoGradient({self.message!r})"


# The facts a row may declare (their meaning: ``trace.Op``), with defaults.
ROW_FACTS = ("positive", "positive_if_inputs", "finite_if_inputs", "zero_or_inf_at_inf",
             "bounded", "commutative", "associative", "identity", "inverse_of", "negation")


class ScalarOp:
    """One pointwise function (a row of the table)."""

    positive = positive_if_inputs = finite_if_inputs = zero_or_inf_at_inf = False
    bounded = commutative = associative = negation = False
    identity = inverse_of = None

    def __init__(self, name, nin, impl, c, grad=None, ufunc=None, params=(), expand=None,
                 symbol=None, **facts):
        self.name = name
        self.nin = nin
        self.impl = impl
        self.c = c
        self.grad = grad
        self.ufunc = ufunc
        self.params = params
        self.expand = expand
        self.symbol = symbol
        for fact, value in facts.items():
            if fact not in ROW_FACTS:
                raise TypeError(f"row {name}: unknown fact {fact!r}")
            setattr(self, fact, value)
        # (name and params never change: the hash is computed once; rows
        # are hashed per node by merging, rule lookup and lowering. Pickles
        # do not carry it: ``__reduce__`` finds the row by name.)
        self._hash = hash((name, params))

    def __eq__(self, other):
        return (isinstance(other, ScalarOp) and self.name == other.name
                and self.params == other.params)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return self.name

    @property
    def key(self):
        """The name rewrite rules know the row by (all casts: ``'cast'``)."""
        return self.name

    def output_dtype(self, dtypes):
        return _output_dtype(self, tuple(dtypes))

    def __reduce__(self):
        # Rows hold lambdas; pickle them by name and find the row on load.
        return (row_by_name, (self.name,))


def row_by_name(name):
    """The table row called ``name``."""
    for scalar in _ROWS:
        if scalar.name == name:
            return scalar
    raise KeyError(f"no elementwise row named {name!r}")


@lru_cache(maxsize=4096)
def _output_dtype(row, dtypes):
    dummies = [np.zeros(0, dtype=d) for d in dtypes]
    try:
        return np.asarray(row.impl(np, *dummies)).dtype.name
    except TypeError as e:  # (NumPy's message names the ufunc, not the dtypes)
        raise TypeError(f"{row.name} does not support input dtype(s) "
                        f"{', '.join(dtypes)}: {e}") from None


def format_shape(shape):
    """``(3, ?)`` for a static shape (``?`` = unknown)."""
    inner = ", ".join("?" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def broadcast_static(shapes, opname="op"):
    """NumPy broadcasting of static shapes; raise when known lengths clash."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        dims = [s[axis] for s in shapes if len(s) >= -axis]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            listed = " and ".join(format_shape(s) for s in shapes)
            raise ValueError(
                f"{opname}: shapes {listed} cannot be broadcast together "
                f"(axis {axis + ndim} has lengths {sorted(known)})")
        if known:
            out.append(known.pop())
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(None)
    return tuple(out)


class Elemwise(Op):
    """Apply a ``ScalarOp`` pointwise with NumPy broadcasting."""

    __props__ = ("scalar_op",)
    foldable = True  # ``static_value`` may run it on values known while building

    def __init__(self, scalar_op):
        self.scalar_op = scalar_op

    @property
    def name(self):
        return self.scalar_op.name

    def make_node(self, *inputs):
        row = self.scalar_op
        if len(inputs) != row.nin:
            raise TypeError(f"{row.name} takes {row.nin} inputs, got {len(inputs)}")
        inputs = resolve_weak([as_tensor_variable(i) for i in inputs], row.ufunc)
        dtype = row.output_dtype([i.dtype for i in inputs])
        shape = broadcast_static([i.type.shape for i in inputs], row.name)
        return Apply(self, inputs, [TensorType(dtype, shape)()])

    def impl(self, xp, *arrays):
        return self.scalar_op.impl(xp, *arrays)

    # The facts (``trace.Op``) are the row's.
    positive = property(lambda self: self.scalar_op.positive)
    positive_if_inputs = property(lambda self: self.scalar_op.positive_if_inputs)
    finite_if_inputs = property(lambda self: self.scalar_op.finite_if_inputs)
    zero_or_inf_at_inf = property(lambda self: self.scalar_op.zero_or_inf_at_inf)
    bounded = property(lambda self: self.scalar_op.bounded)
    commutative = property(lambda self: self.scalar_op.commutative)
    associative = property(lambda self: self.scalar_op.associative)
    identity = property(lambda self: self.scalar_op.identity)
    inverse_of = property(lambda self: self.scalar_op.inverse_of)
    negation = property(lambda self: self.scalar_op.negation)

    def vjp(self, node, output_grads):
        row = self.scalar_op
        if row.grad is None:
            raise NotImplementedError(f"tracegrad has no gradient rule for op {row.name}")
        raw = row.grad(node.inputs, node.outputs[0], output_grads[0])
        return [None if g is None or not is_differentiable(x) else
                g if g is ZERO or isinstance(g, NoGradient) else _match_dtype(sum_to(g, x), x)
                for x, g in zip(node.inputs, raw)]

    def vmap_rule(self, node, inputs, batch_axes):
        """Pointwise: batch axes first, inputs lined up for broadcasting."""
        return batching.elementwise_rule(node, inputs, batch_axes)

    def inplace_version(self, i):
        """The op writing its result into input ``i``'s buffer
        (``InplaceElemwise``), or ``None`` for rows that are not plain ufuncs
        (no ``out=``). Used by the in-place planner (``rewrite/inplace.py``)."""
        if _plain_ufunc_name(self.scalar_op) is None or not 0 <= i < self.scalar_op.nin:
            return None
        return InplaceElemwise(self.scalar_op, i)


# ------------------------------------------------------------ in-place variant
def _plain_ufunc_name(row):
    """The name of the ufunc (``xp.<name>``, NumPy and CuPy) that *is* the
    row's implementation, or ``None``."""
    uf = getattr(row, "ufunc", None)
    name = getattr(row.impl, "__name__", None)
    return name if isinstance(uf, np.ufunc) and getattr(np, name or "_", None) is uf else None


def fits_in_place(target, arrays, extra_shapes=()):
    """Whether a pointwise result over ``arrays`` (and constants of
    ``extra_shapes``) can be written into ``target``, one of ``arrays``: a
    writeable array into whose shape every operand broadcasts. (Dtypes are
    checked when planning.)"""
    if not getattr(getattr(target, "flags", None), "writeable", True):
        return False
    shape = target.shape
    for a in arrays:
        if a.shape != shape and not broadcasts_into(a.shape, shape):
            return False
    return all(broadcasts_into(s, shape) for s in extra_shapes)


def broadcasts_into(small, shape):
    """Whether an array of shape ``small`` broadcasts to exactly ``shape``."""
    lead = len(shape) - len(small)
    return lead >= 0 and all(d == t or d == 1 for d, t in zip(small, shape[lead:]))


class InplaceElemwise(Elemwise):
    """``Elemwise`` writing its result into input ``destroyed``'s buffer
    (``out=``; ``destroy_map``). When that array does not fit the result
    (broadcasting, read-only) it computes a new array instead."""

    __props__ = ("scalar_op", "destroyed")

    def __init__(self, scalar_op, destroyed):
        Elemwise.__init__(self, scalar_op)
        self.destroyed = destroyed
        self.destroy_map = {0: [destroyed]}
        self._ufunc_name = _plain_ufunc_name(scalar_op)
        if self._ufunc_name is None:
            raise ValueError(f"{scalar_op.name} is not a plain ufunc: no in-place version")

    @property
    def name(self):
        return f"{self.scalar_op.name}{{inplace}}"

    def make_node(self, *inputs):
        node = Elemwise.make_node(self, *inputs)
        target, out = node.inputs[self.destroyed].type, node.outputs[0].type
        if target.dtype != out.dtype or target.ndim != out.ndim:
            raise TypeError(f"{self.name}: input {self.destroyed} ({target}) cannot "
                            f"hold the result ({out})")
        return node

    def impl(self, xp, *arrays):
        return self.impl_for(xp)(*arrays)

    def impl_for(self, xp):
        ufunc = getattr(xp, self._ufunc_name)
        plain = self.scalar_op.impl
        k = self.destroyed

        def run(*arrays):
            target = arrays[k]
            if fits_in_place(target, arrays):
                return ufunc(*arrays, out=target)
            return plain(xp, *arrays)

        if xp is not np:
            return run

        def run_numpy(*arrays):
            # The common case first: every operand has the result's shape.
            target = arrays[k]
            shape = target.shape
            for a in arrays:
                if a.shape != shape:
                    return run(*arrays)
            if target.flags.writeable:
                return ufunc(*arrays, out=target)
            return plain(xp, *arrays)
        return run_numpy

    def inplace_version(self, i):
        return None


def is_differentiable(var):
    """Gradients flow only into non-constant float/complex variables."""
    return var.dtype[0] in "fc" and not isinstance(var, TensorConstant)


def _match_dtype(g, x):
    return match_gradient_dtype(g, x)


class SumTo(Op):
    """Sum ``g`` down to the shape of ``like`` (undo NumPy broadcasting).

    Returns ``g`` itself when the shapes already agree at run time.
    """

    view_map = {0: [0]}

    def make_node(self, g, like):
        return Apply(self, [g, like], [TensorType(g.dtype, like.type.shape)()])

    def shape_relation(self, node):
        return ("same", node.inputs[1])

    def impl(self, xp, g, like):
        target = like.shape
        if g.shape == target:
            return g
        axes = _summed_axes(g.shape, target)
        if not axes:
            return g.reshape(target)
        if xp is np:
            # ``add.reduce`` skips ``ndarray.sum``'s Python layer (a gradient
            # step sums a bias gradient every call).
            return np.add.reduce(g, axis=axes, keepdims=True).reshape(target)
        return g.sum(axis=axes).reshape(target)

    def impl_into(self, xp, out, g, like):
        """``impl``'s sum written into ``out`` (``Op.impl_into``)."""
        target = like.shape
        if xp is not np or out.shape != target or out.dtype != g.dtype:
            return None
        axes = _summed_axes(g.shape, target)
        if not axes:
            out[...] = g.reshape(target)
        else:
            kept = tuple(1 if i in axes else n for i, n in enumerate(g.shape))
            np.add.reduce(g, axis=axes, keepdims=True, out=out.reshape(kept))
        return out

    def vmap_rule(self, node, inputs, batch_axes):
        return batching.sum_to_rule(node, inputs, batch_axes)

    def vjp(self, node, output_grads):
        g, _ = node.inputs
        # ``broadcast_to(gz, shape(g))``: that function lives above (``alloc``).
        return [BroadcastTo(g.ndim)(output_grads[0], shape(g)), None]


def _summed_axes(shape, target):
    """The axes of ``shape`` that ``SumTo`` sums to reach ``target``."""
    lead = len(shape) - len(target)
    return tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(target) if s == 1 and shape[lead + i] != 1)


_sum_to = SumTo()


def sum_to(g, like):
    """``g`` summed over the axes along which ``like`` was broadcast."""
    shape = like.type.shape
    if g.type.shape == shape and None not in shape:
        return g
    return _sum_to(g, like)


_ROWS = []
ROW_NAMES = []  # the public functions of the rows (``elemwise.__all__``)


def row(name, nin, impl, c, grad=None, ufunc=None, expand=None, symbol=None, **facts):
    """Add a table row; returns its public function (bound to ``name`` by the
    caller). ``facts``: the row's declarations (``ROW_FACTS``); ``symbol``:
    the Python operator ``pp`` prints it with."""
    scalar = ScalarOp(name, nin, impl, c, grad, ufunc, expand=expand, symbol=symbol, **facts)
    op = Elemwise(scalar)
    _ROWS.append(scalar)

    def fn(*inputs):
        return op(*inputs)
    fn.__name__ = fn.__qualname__ = name
    # (the code's own name too: errors name the function a user line called
    # from the frame, ``trace.user_source_location``)
    fn.__code__ = fn.__code__.replace(co_name=name, co_qualname=name)
    fn.__doc__ = f"Elementwise ``{name}`` with NumPy broadcasting and promotion."
    fn.op = op
    ROW_NAMES.append(name)
    if ufunc is not None:
        register_ufunc(ufunc, fn)
    return fn


def ufunc_impl(name):
    """``impl`` calling ``xp.<name>`` (the same ufunc on NumPy and CuPy)."""
    def impl(xp, *args):
        return getattr(xp, name)(*args)
    impl.__name__ = name
    return impl


class _Prims:
    """Rows by name as functions over arrays of one array module."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        scalar = row_by_name(name)
        ufunc = _plain_ufunc_name(scalar)
        fn = getattr(self._xp, ufunc) if ufunc is not None else partial(scalar.impl, self._xp)
        setattr(self, name, fn)  # found once per module and row
        return fn


_PRIMS = {}


def prims(xp):
    """Every row as a function over arrays of ``xp`` (``prims(np).exp(a)``):
    the ``f`` that ``expand`` functions get when run eagerly."""
    found = _PRIMS.get(xp)
    if found is None:
        found = _PRIMS[xp] = _Prims(xp)
    return found


def expanded_impl(expand, fallback):
    """``impl`` running ``expand`` over arrays, or ``fallback(xp, *arrays)``
    for arguments ``expand`` does not take."""
    def impl(xp, *arrays):
        if all(hasattr(a, "dtype") for a in arrays):
            result = expand(prims(xp), *arrays)
            if result is not None:
                return result
        return fallback(xp, *arrays)
    return impl


class CastRow(ScalarOp):
    """Conversion to ``dtype`` (a row with a parameter)."""

    finite_if_inputs = True
    key = "cast"  # (one rule key for every target dtype)

    def __init__(self, dtype):
        super().__init__(f"cast_{dtype}", 1, self._impl, f"(({_C_TYPES[dtype]}) {{0}})",
                         self._grad, params=(dtype,))
        self.dtype = dtype

    def _impl(self, xp, x):
        return x.astype(self.dtype)

    def __reduce__(self):
        return (CastRow, (self.dtype,))

    def _grad(self, inputs, output, gz):
        return [gz]


_C_TYPES = {"bool": "bool", "int8": "signed char", "int16": "short", "int32": "int",
            "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
            "uint32": "unsigned int", "uint64": "unsigned long long",
            "float16": "float16", "float32": "float", "float64": "double",
            "complex64": "complex<float>", "complex128": "complex<double>"}

_CASTS = {}


def cast(x, dtype):
    """``x`` converted to ``dtype`` (``'floatX'`` allowed); no-op if equal."""
    x = as_tensor_variable(x)
    dtype = canonical_dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype not in _CASTS:
        _CASTS[dtype] = Elemwise(CastRow(dtype))
    return _CASTS[dtype](x)



# ``real`` is a row of the table, defined here because the gradient of a real
# input keeps the real part of a complex gradient (``match_gradient_dtype``).
# ``xp.real`` returns its input itself (or a view of it): copy, since
# ``Elemwise`` declares no ``view_map`` (a result must never alias an input).
real = row("real", 1, lambda xp, x: xp.real(x).copy(), "real({0})", lambda i, o, gz: [gz])


def match_gradient_dtype(g, x):
    """The gradient ``g`` in the dtype of the input ``x``. A complex gradient
    of a real input keeps its real part (``dL = Re(g * dx)`` with ``dx``
    real; see "Complex gradients" in docs/user-guide.md), taken explicitly
    rather than by a cast that warns and drops the imaginary part."""
    if g.dtype[0] == "c" and x.dtype[0] != "c":
        g = real(g)
    return g if g.dtype == x.dtype else cast(g, x.dtype)


def _grad_for(x, g):
    """``g`` as the gradient of input ``x``: ``None`` where none flows, else in x's dtype."""
    if g is None or not is_differentiable(x):
        return None
    return match_gradient_dtype(g, x)



# ------------------------------------------------------------ shape
class Shape(Op):
    """The shape of ``x`` as an int64 vector."""

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim,))()])

    def impl(self, xp, x):
        return xp.asarray(x.shape, dtype="int64")

    def vjp(self, node, output_grads):
        return [None]

    def static_output(self, node):
        shape = node.inputs[0].type.shape
        return None if None in shape else [np.array(shape, dtype="int64")]

    def static_entries(self, node, depth):
        return list(node.inputs[0].type.shape)

    def vmap_rule(self, node, inputs, batch_axes):
        """One example's shape: the same for all (unbatched)."""
        return [shape(batching.to_front(inputs[0], batch_axes[0]))[1:]], [None]


_shape = Shape()


def shape(x):
    """``x``'s shape as a symbolic int64 vector (``x.shape``)."""
    return _shape(as_tensor_variable(x))



# ------------------------------------------------------------ broadcast_to
def _broadcast_target(fname, src, entries):
    """Static shape of ``src`` broadcast to ``entries``; raises on a known clash."""
    shown = f"{format_shape(src)} to {format_shape(entries)}"
    if len(src) > len(entries):
        raise ValueError(f"{fname}: cannot broadcast shape {shown}: the target has fewer "
                         "dimensions")
    if any(e is not None and e < 0 for e in entries):
        raise ValueError(f"{fname}: negative length in the target shape {format_shape(entries)}")
    out = list(entries)
    lead = len(entries) - len(src)
    for i, d in enumerate(src):
        t = entries[lead + i]
        if d is not None and d != 1:
            if t is None:
                out[lead + i] = d
            elif t != d:
                raise ValueError(f"{fname}: cannot broadcast shape {shown} (axis {lead + i}: "
                                 f"{d} vs {t})")
    return tuple(out)


class _ToShape(Op):
    """``(x, shape vector)`` -> ``x`` broadcast to a ``ndim``-long shape: what
    ``BroadcastTo`` and ``Alloc`` share (they differ in ``impl``)."""

    __props__ = ("ndim",)
    fname = None  # the public function's name, for messages
    broadcasts = True

    def __init__(self, ndim):
        self.ndim = ndim

    def make_node(self, x, shp):
        x, shp = as_tensor_variable(x), as_tensor_variable(shp)
        entries = _check_shape_input(shp, self.ndim, self.fname)
        out = _broadcast_target(self.fname, x.type.shape, entries)
        return Apply(self, [x, shp], [TensorType(x.dtype, out)()])

    def shape_relation(self, node):
        """``y``'s shape when the shape input is ``shape(y)``."""
        shp = node.inputs[1]
        if shp.owner is not None and isinstance(shp.owner.op, Shape):
            return ("same", shp.owner.inputs[0])
        return None

    def vjp(self, node, output_grads):
        x = node.inputs[0]
        return [_grad_for(x, sum_to(output_grads[0], x)), None]

    def vmap_rule(self, node, inputs, batch_axes):
        """A batched value with one target shape: the batch length in front
        (a target shape that differs per example has no rule)."""
        if batch_axes[1] is not None:
            return None
        x = batching.pad_front(batching.to_front(inputs[0], batch_axes[0]), self.ndim)
        return [type(self)(self.ndim + 1)(x, batching.with_batch(inputs[1], x))], [0]


class BroadcastTo(_ToShape):
    """``np.broadcast_to(x, shape)``: a read-only view."""

    fname = "broadcast_to"
    view_map = {0: [0]}
    selects = True

    def impl(self, xp, x, shp):
        shp = _ints(shp)
        _check_runtime_length(shp, self.ndim, "broadcast_to")
        if (xp is np and type(x) is np.ndarray and x.size == 1 and x.ndim <= len(shp)
                and min(shp, default=0) >= 0):
            # One value everywhere (the gradient of a sum or mean): the same
            # read-only view, built directly (np.broadcast_to takes ~2 us).
            view = np.ndarray(shp, x.dtype, x, 0, (0,) * len(shp))
            view.flags.writeable = False
            return view
        return xp.broadcast_to(x, shp)
