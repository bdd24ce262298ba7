"""``FusedElemwise``: a fused cluster as one graph op.

Its node replaces the cluster's nodes in a graph; ``impl(xp, *inputs)`` runs
the program of its spec made by the backend registered for ``xp``
(``targets.PROGRAMS``: ``backend/numpy`` for NumPy arrays, which hands
large calls to the compiled tier, ``backend/cupy/kernel`` for CuPy's; an
array module nobody registered runs the spec's reference), so any scheduler
runs it like any other op. ``run(xp, inputs, outs=...)`` additionally
writes into given output buffers (a shared variable's buffer).
Gradients expand the cluster back into its elementwise nodes.
"""
from functools import partial

from tracegrad.fuse.targets import backend_for
from tracegrad.ops.elemwise import fits_in_place
from tracegrad.tensor.type import TensorType
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op, Variable


class FusedElemwise(Op):
    """Several elementwise nodes computed in one pass (see ``FusionSpec``)."""

    __props__ = ("spec",)
    view_map = {}
    destroy_map = {}

    def __init__(self, spec, sources=None):
        self.spec = spec
        # Where user code built each fused node (for error messages only:
        # not part of the op's identity).
        self.sources = sources
        # The program made for the first array module asked (nearly always
        # the only one): two attributes, not a tracked dict per node; others
        # in ``_programs`` (array module name -> Program, made at first use).
        self._first = None
        self._first_program = None
        self._programs = {}

    @property
    def name(self):
        return self.spec.name

    def make_node(self, *inputs, source=None):
        spec = self.spec
        if len(inputs) != len(spec.in_types):
            raise TypeError(f"{self.name} takes {len(spec.in_types)} inputs, "
                            f"got {len(inputs)}")
        # (fusion passes tensor variables: no conversion to ask for)
        inputs = [i if isinstance(i, Variable) and isinstance(i.type, TensorType)
                  else as_tensor_variable(i) for i in inputs]
        for k, (var, (dtype, ndim)) in enumerate(zip(inputs, spec.in_types)):
            if var.type.dtype != dtype or var.type.ndim != ndim:
                raise TypeError(f"{self.name}: input {k} must be {dtype} with ndim "
                                f"{ndim}, got {var.type}")
        shapes = spec.output_shapes([v.type.shape for v in inputs])
        outputs = [TensorType(dt, shape)() for dt, shape in zip(spec.out_dtypes, shapes)]
        # (``source``: fusion passes the cluster's, so the user's frames are
        # not looked up again for a node that replaces theirs)
        return Apply(self, inputs, outputs, source)

    def source_of(self, node, message):
        """The user line of the fused row ``message`` names (NumPy's
        "... encountered in log" names the ufunc): the first such row's;
        the fused node's own when none is named."""
        named = message.rpartition(" in ")[2].strip()
        if self.sources and named:
            for instr, src in zip(self.spec.instrs, self.sources):
                row = instr.row
                if named in (getattr(row, "name", None),
                             getattr(getattr(row, "ufunc", None), "__name__", None)):
                    return src
        return node.source

    def program(self, xp):
        """The program of the spec for arrays of ``xp`` (made once), or
        ``None`` when no backend is registered for ``xp``."""
        name = xp.__name__
        if name == self._first:
            return self._first_program
        program = self._programs.get(name)
        if program is None:
            backend = backend_for(xp)
            if backend is None:
                return None
            program = backend.program(self.spec)
            if self._first is None:
                self._first, self._first_program = name, program
            else:
                self._programs[name] = program
        return program

    def impl(self, xp, *arrays):
        results = self.run(xp, arrays)
        return results[0] if len(results) == 1 else tuple(results)

    def impl_for(self, xp):
        """``impl`` bound to ``xp`` (the schedule calls it once per node):
        the program is found at the first call (not when compiling) and its
        ``fast`` path tried first (``_Runner``)."""
        if type(self).impl is not FusedElemwise.impl or backend_for(xp) is None:
            return partial(self.impl, xp)
        return _Runner(self, xp).run

    def run(self, xp, arrays, outs=None):
        """The outputs as a list; written into ``outs`` when given."""
        program = self.program(xp)
        if program is not None:
            return program.run(arrays, outs, self.sources)
        results = self.spec.reference(xp, arrays, self.sources)
        if outs is None:
            return results
        for o, r in zip(outs, results):
            o[...] = r
        return list(outs)

    def vjp(self, node, output_grads):
        from tracegrad.grad.reverse import backpropagate
        from tracegrad.trace import clone_replace
        # Differentiate the unfused graph over stand-ins, so an input given
        # at two positions gets each position's own gradient.
        stand_ins = [v.type() for v in node.inputs]
        outputs = self.spec.build(stand_ins)
        seeds = {out: g for out, g in zip(outputs, output_grads) if g is not None}
        grads = backpropagate(seeds, stand_ins)
        found = [grads.get(s) for s in stand_ins]
        wanted = [g for g in found if g is not None]
        if not wanted:
            return found
        rebuilt, _ = clone_replace(wanted, dict(zip(stand_ins, node.inputs)))
        it = iter(rebuilt)
        return [None if g is None else next(it) for g in found]

    def inplace_version(self, i):
        """This op writing its only output into input ``i``'s buffer
        (``InplaceFusedElemwise``), or ``None`` when it has several outputs
        or input ``i`` differs from the output in dtype or ndim. Used by the
        in-place planner (``tracegrad/rewrite/inplace.py``)."""
        spec = self.spec
        if (len(spec.outputs) != 1 or not 0 <= i < len(spec.in_types)
                or spec.in_types[i] != (spec.out_dtypes[0], spec.ndim)):
            return None
        return InplaceFusedElemwise(spec, self.sources, i)

    def __reduce__(self):
        return (FusedElemwise, (self.spec, self.sources))


class _Runner:
    """``FusedElemwise.impl_for``'s function: ``_Runner(op, xp).run``.

    A bound method of a slotted object: two tracked objects per fused node
    where a closure over its state made seven (function, cells, a list),
    and its program's ``(fast, run)`` pair two more at the first call;
    every one of them is walked by the garbage collector's passes."""

    __slots__ = ("op", "xp", "program", "fast", "single")

    def __init__(self, op, xp):
        self.op = op
        self.xp = xp
        self.program = None   # found at the first call
        self.fast = None
        self.single = len(op.spec.outputs) == 1

    def run(self, *arrays):
        program = self.program
        if program is None:
            program = self.program = self.op.program(self.xp)
            self.fast = program.fast
        fast = self.fast
        results = fast(*arrays) if fast is not None else None
        if results is None:
            results = program.run(arrays, None, self.op.sources)
        return results[0] if self.single else tuple(results)


class _InplaceRunner:
    """``InplaceFusedElemwise.impl_for``'s function (as ``_Runner``):
    the program's ``inplace_fast`` (``False`` when it has none, found at
    the first call), else the op's ``impl``."""

    __slots__ = ("op", "xp", "fast")

    def __init__(self, op, xp):
        self.op = op
        self.xp = xp
        self.fast = None

    def run(self, *arrays):
        fast = self.fast
        if fast is None:
            op = self.op
            fast = self.fast = op.program(self.xp).inplace_fast(op.destroyed) or False
        if fast is not False:
            results = fast(*arrays)
            if results is not None:
                return results[0]
        return self.op.impl(self.xp, *arrays)


def expand(node):
    """The unfused graph of a ``FusedElemwise`` node: its output variables
    rebuilt from elementwise ops over the node's inputs."""
    return node.op.spec.build(node.inputs)


# ------------------------------------------------------------ in-place variant
class InplaceFusedElemwise(FusedElemwise):
    """A single-output ``FusedElemwise`` writing its result into input
    ``destroyed``'s buffer (``destroy_map``). When that array does not fit
    the result (broadcasting, read-only) it computes a new array instead.

    A program may offer a direct path for small calls (``inplace_fast``,
    ``run_small_into``: on NumPy a block program made for writing into that
    input, which reads the input only up to the step writing the result and
    keeps its intermediate values in the buffer once the input is read:
    ``w - lr * g`` needs no scratch); otherwise ``run(outs=...)`` takes care
    of the aliasing."""

    __props__ = ("spec", "destroyed")

    def __init__(self, spec, sources=None, destroyed=0):
        FusedElemwise.__init__(self, spec, sources)
        self.destroyed = destroyed
        self.destroy_map = {0: [destroyed]}
        self._const_shapes = tuple(c.shape for c in spec.constants if c.ndim)

    @property
    def name(self):
        return self.spec.name + "{inplace}"

    def impl(self, xp, *arrays):
        target = arrays[self.destroyed]
        if type(target) is not xp.ndarray or target.dtype != self.spec.out_dtypes[0]:
            return FusedElemwise.impl(self, xp, *arrays)
        program = self.program(xp)
        if program is not None and program.run_small_into(arrays, self.destroyed):
            return target
        if (fits_in_place(target, arrays, self._const_shapes)
                and self.spec.output_shape_ok([a.shape for a in arrays], target.shape)):
            return self.run(xp, arrays, outs=[target])[0]
        return FusedElemwise.impl(self, xp, *arrays)

    def impl_for(self, xp):
        """``impl`` bound to ``xp``; the program's whole-call function
        writing into the destroyed input (``inplace_fast``), when it has
        one, is tried first: it makes the usual checks inline
        (``_InplaceRunner``)."""
        if type(self).impl is not InplaceFusedElemwise.impl or backend_for(xp) is None:
            return partial(self.impl, xp)
        return _InplaceRunner(self, xp).run

    def inplace_version(self, i):
        return None

    def __reduce__(self):
        return (InplaceFusedElemwise, (self.spec, self.sources, self.destroyed))
