"""``einsum``: Einstein summation over traced arrays.

The front end (``einsum``) turns the subscripts into one canonical
contraction: ellipses become fresh labels (right-aligned across operands,
as NumPy broadcasts them), a label repeated within one operand becomes a
``diagonal`` of that operand, and a label found in one operand only and not
in the output is summed out there. What is left is ``Einsum(inputs,
output)``, where every operand has distinct labels and every label appears
in two places (two operands, or an operand and the output). Its gradient
with respect to operand ``i`` is then again such an einsum: the other
operands and the output gradient, contracted to operand ``i``'s labels
(a linear map passes on its plain transpose: no conjugation, docs/user-guide.md
"Complex gradients"). Labels of size 1 broadcast against longer ones, as in
NumPy, so that gradient is fitted back to the operand's shape (``FitTo``).

The op runs pairwise contractions in the order of ``np.einsum_path``
(greedy; cached per input shapes), each as a transpose, reshape and one
batched ``matmul``, so matrix-product-like subscripts run at BLAS speed.
"""
import string

import numpy as np

from tracegrad.ops.elemwise import cast, is_differentiable, match_gradient_dtype
from tracegrad.ops.linalg import diagonal
from tracegrad.ops.reduce import sum as _sum
from tracegrad.ops.shape import dimshuffle
from tracegrad.tensor.dispatch import implements
from tracegrad.tensor.type import TensorType, canonical_dtype
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Apply, Op

__all__ = ["einsum", "Einsum", "FitTo"]

_LETTERS = string.ascii_letters


class FitTo(Op):
    """``g`` fitted to the shape of ``like``: summed (keeping the axis) where
    ``like`` has length 1 and ``g`` more, broadcast where ``g`` has length 1
    and ``like`` more; ``g`` itself when the shapes agree."""

    view_map = {0: [0]}

    def make_node(self, g, like):
        g, like = as_tensor_variable(g), as_tensor_variable(like)
        if g.ndim != like.ndim:
            raise ValueError(f"FitTo: ndim {g.ndim} != {like.ndim}")
        return Apply(self, [g, like], [TensorType(g.dtype, like.type.shape)()])

    def impl(self, xp, g, like):
        if g.shape == like.shape:
            return g
        axes = tuple(i for i, (n, m) in enumerate(zip(g.shape, like.shape)) if m == 1 != n)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        return xp.broadcast_to(g, like.shape)

    def vjp(self, node, output_grads):
        g, like = node.inputs
        return [FitTo()(output_grads[0], g), None]


class Einsum(Op):
    """``einsum(",".join(inputs) + "->" + output)`` where each input's labels
    are distinct and every label appears in two places."""

    __props__ = ("inputs", "output")

    def __init__(self, inputs, output):
        self.inputs, self.output = tuple(inputs), str(output)
        self._paths = {}

    def __str__(self):
        return f"einsum{{{','.join(self.inputs)}->{self.output}}}"

    def __getstate__(self):
        return {"inputs": self.inputs, "output": self.output}

    def __setstate__(self, state):
        self.__init__(state["inputs"], state["output"])

    def make_node(self, *operands):
        operands = [as_tensor_variable(x) for x in operands]
        sizes = {}
        for x, sub in zip(operands, self.inputs):
            if x.ndim != len(sub):
                raise ValueError(f"{self}: operand with ndim {x.ndim} for labels {sub!r}")
            for label, n in zip(sub, x.type.shape):
                if n is not None and n != 1:
                    if sizes.get(label, n) != n:
                        raise ValueError(f"{self}: label {label!r} has lengths "
                                         f"{sizes[label]} and {n}")
                    sizes[label] = n
        dtype = np.result_type(*[x.dtype for x in operands]).name
        shape = []
        for label in self.output:
            known = [x.type.shape[s.index(label)] for x, s in zip(operands, self.inputs)
                     if label in s]
            shape.append(sizes.get(label, 1 if known and all(n == 1 for n in known) else None))
        return Apply(self, operands, [TensorType(dtype, tuple(shape))()])

    def impl(self, xp, *arrays):
        dtype = np.result_type(*[a.dtype for a in arrays])
        ops = [(a, s) for a, s in zip(arrays, self.inputs)]
        if len(ops) > 2:
            for step in self._path(arrays):
                picked = [ops[k] for k in step]
                ops = [o for k, o in enumerate(ops) if k not in step]
                keep = set(self.output).union(*[s for _, s in ops])
                acc = picked[0]
                for k, other in enumerate(picked[1:], 2):
                    # (a step of more than two operands, if the path has one)
                    acc = _pair(xp, acc, other, keep.union(*[s for _, s in picked[k:]]))
                ops.append(acc)
        if len(ops) == 2:
            ops = [_pair(xp, ops[0], ops[1], set(self.output))]
        a, sub = ops[0]
        a = _sum_unkept(a, sub, set(self.output))
        sub = [c for c in sub if c in self.output]
        out = xp.transpose(a, [sub.index(c) for c in self.output])
        return out.astype(dtype, copy=False)

    def _path(self, arrays):
        shapes = tuple(a.shape for a in arrays)
        path = self._paths.get(shapes)
        if path is None:
            # (zero-memory stand-ins: einsum_path only reads the shapes)
            fakes = [np.broadcast_to(np.empty((), "int8"), s) for s in shapes]
            spec = ",".join(self.inputs) + "->" + self.output
            steps = np.einsum_path(spec, *fakes, optimize="greedy")[0][1:]
            path = self._paths[shapes] = [tuple(sorted(p)) for p in steps]
        return path

    def vjp(self, node, output_grads):
        g = output_grads[0]
        grads = []
        for i, x in enumerate(node.inputs):
            if not is_differentiable(x):
                grads.append(None)
                continue
            others = [node.inputs[k] for k in range(len(node.inputs)) if k != i]
            subs = [self.inputs[k] for k in range(len(node.inputs)) if k != i]
            raw = Einsum(subs + [self.output], self.inputs[i])(*others, g)
            grads.append(match_gradient_dtype(FitTo()(raw, x), x))
        return grads


def _sum_unkept(a, sub, keep):
    axes = tuple(k for k, c in enumerate(sub) if c not in keep)
    return a.sum(axis=axes) if axes else a


def _pair_labels(sa, sb, keep):
    """(batch, inner, free_a, free_b) labels of a pairwise contraction."""
    batch = [c for c in sa if c in sb and c in keep]
    inner = [c for c in sa if c in sb and c not in keep]
    return batch, inner, [c for c in sa if c not in sb], [c for c in sb if c not in sa]


def _size(labels, dims):
    return int(np.prod([dims[c] for c in labels]))


def _pair(xp, first, second, keep):
    """Contract two (array, labels) operands, keeping the labels in ``keep``."""
    (a, sa), (b, sb) = first, second
    a = _sum_unkept(a, sa, keep | set(sb))
    sa = [c for c in sa if c in keep or c in sb]
    b = _sum_unkept(b, sb, keep | set(sa))
    sb = [c for c in sb if c in keep or c in sa]
    batch, inner, free_a, free_b = _pair_labels(sa, sb, keep)
    dim_a, dim_b = dict(zip(sa, a.shape)), dict(zip(sb, b.shape))
    labels = batch + free_a + free_b
    if any(dim_a[c] != dim_b[c] for c in batch + inner):
        # (a length-1 label broadcast against a longer one)
        spec = f"{''.join(sa)},{''.join(sb)}->{''.join(labels)}"
        return xp.einsum(spec, a, b), labels
    at = xp.transpose(a, [sa.index(c) for c in batch + free_a + inner]).reshape(
        _size(batch, dim_a), _size(free_a, dim_a), _size(inner, dim_a))
    bt = xp.transpose(b, [sb.index(c) for c in batch + inner + free_b]).reshape(
        _size(batch, dim_a), _size(inner, dim_a), _size(free_b, dim_b))
    out = xp.matmul(at, bt)
    shape = [dim_a[c] for c in batch + free_a] + [dim_b[c] for c in free_b]
    return out.reshape(shape), labels


# ------------------------------------------------------------------ parsing
def _from_sublists(args):
    """The interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``."""
    operands, terms = [], []
    args = list(args)
    while len(args) >= 2:
        operands.append(args.pop(0))
        terms.append(_sublist_term(args.pop(0)))
    spec = ",".join(terms)
    if args:
        spec += "->" + _sublist_term(args[0])
    return spec, operands


def _sublist_term(sub):
    out = []
    for s in sub:
        if s is Ellipsis:
            out.append("...")
        elif isinstance(s, (int, np.integer)) and 0 <= s < len(_LETTERS):
            out.append(_LETTERS[s])
        else:
            raise ValueError(f"einsum: subscript {s!r} is not an int in [0, 52) or ...")
    return "".join(out)


def _split_term(term, ndim, where):
    """(labels before the ellipsis, after it, has an ellipsis)."""
    if term.count("...") > 1 or term.replace("...", "").count(".") > 0:
        raise ValueError(f"einsum: invalid ellipsis in {where} {term!r}")
    head, dots, tail = term.partition("...")
    for c in head + tail:
        if c not in _LETTERS:
            raise ValueError(f"einsum: invalid subscript {c!r} in {where} {term!r} "
                             "(labels are ASCII letters)")
    if ndim is not None:
        n = ndim - len(head) - len(tail)
        if n < 0 or (n > 0 and not dots):
            raise ValueError(f"einsum: {where} {term!r} has {len(head) + len(tail)} labels "
                             f"for an operand of ndim {ndim}")
    return head, tail, bool(dots)


def _parse(spec, operands):
    """(input label lists, output labels) with the ellipses expanded."""
    spec = spec.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    if "->" in rhs or (arrow and not lhs):
        raise ValueError(f"einsum: invalid subscripts {spec!r}")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} terms in {spec!r} for {len(operands)} operands")
    split = [_split_term(t, x.ndim, f"term {k}") for k, (t, x) in
             enumerate(zip(terms, operands))]
    n_ell = max(x.ndim - len(h) - len(t) for (h, t, _), x in zip(split, operands))
    free = [c for c in _LETTERS if c not in spec]
    if n_ell > len(free):
        raise ValueError("einsum: too many labels and broadcast axes (at most 52)")
    ell = free[:n_ell]
    inputs = []
    for (head, tail, _), x in zip(split, operands):
        k = x.ndim - len(head) - len(tail)
        inputs.append(list(head) + ell[n_ell - k:] + list(tail))
    if arrow:
        return inputs, _explicit_output(spec, rhs, inputs, ell)
    counts = {}
    for sub in inputs:
        for c in sub:
            counts[c] = counts.get(c, 0) + 1
    return inputs, ell + sorted(c for c, n in counts.items() if n == 1 and c not in ell)


def _explicit_output(spec, rhs, inputs, ell):
    head, tail, dots = _split_term(rhs, None, "output")
    if ell and not dots:
        raise ValueError(f"einsum: {spec!r}: output has no '...' for the broadcast axes")
    output = list(head) + (ell if dots else []) + list(tail)
    used = set().union(*inputs)
    for c in output:
        if output.count(c) > 1:
            raise ValueError(f"einsum: output label {c!r} repeated in {spec!r}")
        if c not in used:
            raise ValueError(f"einsum: output label {c!r} not in the inputs of {spec!r}")
    return output


def _canonical(x, sub, needed):
    """``x`` with repeated labels turned into diagonals and labels outside
    ``needed`` summed out; returns (variable, labels)."""
    sub = list(sub)
    while True:
        dup = next((c for c in sub if sub.count(c) > 1), None)
        if dup is None:
            break
        i = sub.index(dup)
        j = sub.index(dup, i + 1)
        x = diagonal(x, 0, i, j)           # (the diagonal axis goes last)
        sub = [c for k, c in enumerate(sub) if k not in (i, j)] + [dup]
    axes = tuple(k for k, c in enumerate(sub) if c not in needed)
    if axes:
        x = _sum(x, axis=axes, dtype=x.dtype)   # (einsum keeps the dtype)
        sub = [c for c in sub if c in needed]
    return x, sub


@implements(np.einsum)
def einsum(*operands, out=None, dtype=None, order="K", casting="safe", optimize=False):
    """NumPy ``einsum``: subscripts with ``...``, implicit output, repeated
    labels (diagonals, traces) and the interleaved sublist form. ``optimize``
    is accepted and moot: contractions always run pairwise in a greedy order
    through ``matmul``. Differentiable in every operand."""
    if out is not None:
        raise TypeError("einsum(..., out=) cannot write into a symbolic variable")
    if order not in ("K", "C", "A", "F"):
        raise ValueError(f"einsum: order must be 'K', 'C', 'A' or 'F', got {order!r}")
    if not operands:
        raise TypeError("einsum needs subscripts and at least one operand")
    if isinstance(operands[0], str):
        spec, ops = operands[0], list(operands[1:])
    else:
        spec, ops = _from_sublists(operands)
    if not ops:
        raise ValueError("einsum needs at least one operand")
    ops = [as_tensor_variable(x) for x in ops]
    if dtype is not None:
        dtype = canonical_dtype(dtype)
        for x in ops:
            if not np.can_cast(x.dtype, dtype, casting):
                raise TypeError(f"einsum: cannot cast {x.dtype} to {dtype} with "
                                f"casting={casting!r}")
        ops = [x if x.dtype == dtype else cast(x, dtype) for x in ops]
    inputs, output = _parse(spec, ops)
    canon = []
    for k, (x, sub) in enumerate(zip(ops, inputs)):
        needed = set(output).union(*[s for m, s in enumerate(inputs) if m != k])
        canon.append(_canonical(x, sub, needed))
    if len(canon) == 1:
        x, sub = canon[0]
        perm = [sub.index(c) for c in output]
        return x if perm == list(range(x.ndim)) else dimshuffle(x, perm)
    return Einsum(["".join(s) for _, s in canon], "".join(output))(*[x for x, _ in canon])
