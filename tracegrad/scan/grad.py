"""The gradient of ``Scan``: a reverse scan built from the body's vjps.

For a forward loop over steps ``t = 0 .. N-1`` the reverse loop runs
``t = N-1 .. N-T`` (``T = min(N, truncate_gradient)``, all steps by default).
At each step it recomputes the body on the step's inputs (sequence slices and
the previous outputs, read back from the forward buffers, reversed), and pulls
back the step's total output gradient: the gradient arriving from outside for
that row plus what later steps sent to it through their taps. That flow is
itself a recurrence: for an output read ``k`` steps back, the contribution the
step ``t`` body sends to row ``t + k`` is an output of the reverse loop with
tap ``k``, so row ``t``'s step finds it waiting ``|k|`` reverse steps later.
Non-sequence gradients are summed in a recurrent accumulator. The reverse
loop is an ordinary ``Scan``, so it has a gradient too.
"""
from tracegrad.ops import api as _ops  # the op functions (scan sits below tracegrad.tensor)
from tracegrad.scan.axis import axis_slice, axis_slice_grad
from tracegrad.scan.body import InnerGraph, ScanSpec, cut_body


def _is_float(var):
    return var.dtype[0] in "fc"


def _full_history(node, output_grads):
    """A node whose buffers keep every row, and output gradients to match.

    Buffers trimmed by ``keep`` lack the rows the reverse loop reads, so the
    loop is recomputed with full buffers (only second and later derivatives
    of trimmed loops pay for this)."""
    op = node.op
    spec = op.spec
    if all(k is None for k in spec.keep):
        return node, output_grads
    T = _ops
    full = op.with_spec(keep=(None,) * len(spec.keep)).make_node(*node.inputs)
    n_done = full.outputs[-1]
    grads = list(output_grads)
    for i, keep in enumerate(spec.keep):
        if keep is None or grads[i] is None:
            continue
        # A trimmed buffer: L initial rows, then the last min(keep, n) steps.
        L = -min(spec.rec_taps[i]) if i < len(spec.rec_taps) else 0
        buf, g = full.outputs[i], grads[i]
        tail = axis_slice_grad(buf, axis_slice(g, L), L + n_done - T.minimum(keep, n_done))
        grads[i] = tail if not L else axis_slice_grad(buf, axis_slice(g, 0, L), 0, L) + tail
    return full, grads


def scan_vjp(node, output_grads):
    """Gradients of a ``Scan`` node's outer inputs (see the module docstring)."""
    node, output_grads = _full_history(node, output_grads)
    rev = _ReverseScan(node, output_grads)
    seeds = rev.add_sequences()
    known = rev.add_recurrences(seeds)
    rev.pull_back(known)
    return rev.outer_gradients(rev.make_node())


class _ReverseScan:
    """The reverse loop of one ``Scan`` node, built in steps, and the outer
    gradients read off it.

    The reverse loop's inputs are gathered in the order its ``ScanSpec``
    wants them: sequences (``r_seqs`` with their ``r_offsets``, ``r_spans``
    and inner placeholders ``r_phs``), then recurrences (``r_inits``, tap
    ``r_taps``, inner placeholders ``r_prev`` and ``acc_prev``, and the body's
    ``r_next`` values), then the per-step outputs ``r_nit``."""

    def __init__(self, node, output_grads):
        T = _ops
        op = node.op
        spec = self.spec = op.spec
        self.node, self.output_grads = node, output_grads
        _, self.seqs, self.inits, self.nonseqs = op.split_outer(node.inputs)
        self.seq_slices, self.prev, self.inner_nonseqs = op.split_inner_inputs()
        n_rec = self.n_rec = len(spec.rec_taps)
        self.bufs = node.outputs[:n_rec]
        self.inner_outs = op.inner.outputs
        n_done = self.n_done = node.outputs[-1]

        self.truncated = spec.truncate_gradient > 0
        self.n_back = T.minimum(n_done, spec.truncate_gradient) if self.truncated else n_done
        self.first = n_done - self.n_back if self.truncated else 0   # first forward step pulled back
        self.reach = [-min(taps) for taps in spec.rec_taps]
        self.diff_recs = [i for i in range(n_rec) if _is_float(self.inner_outs[i])]
        self.diff_nonseqs = [n for n, v in enumerate(self.nonseqs) if _is_float(v)]

        self.r_seqs, self.r_offsets, self.r_spans, self.r_phs = [], [], [], []
        self.r_inits, self.r_taps, self.r_prev, self.r_next = [], [], [], []
        self.acc_prev, self.r_nit = [], []

    def _add_sequence(self, seq, offsets, span, placeholders):
        self.r_seqs.append(seq)
        self.r_offsets.append(offsets)
        self.r_spans.append(span)
        self.r_phs.extend(placeholders)

    def add_sequences(self):
        """Sequences of the reverse loop: forward sequences, forward buffers
        and output gradients, each reversed over the steps pulled back.
        Returns each output's gradient placeholder (``None`` where none)."""
        spec, first, n_done = self.spec, self.first, self.n_done
        for x, offsets, span, slices in zip(self.seqs, spec.seq_offsets, spec.seq_spans,
                                            self.seq_slices):
            self._add_sequence(axis_slice(x, first, n_done + span, reverse=True),
                               tuple(span - o for o in offsets), span, slices)
        for buf, taps, phs, L in zip(self.bufs, spec.rec_taps, self.prev, self.reach):
            self._add_sequence(axis_slice(buf, first, n_done + L, reverse=True),
                               tuple(-k for k in taps), L, phs)
        n_out = self.n_rec + spec.n_nit
        seeds = []
        for i, (out, g) in enumerate(zip(self.inner_outs[:n_out], self.output_grads[:n_out])):
            if not _is_float(out) or g is None:
                seeds.append(None)
                continue
            L = self.reach[i] if i < self.n_rec else 0
            seq = axis_slice(g, first + L, n_done + L, reverse=True)
            ph = out.type()
            ph.name = f"grad_{out.name or 'out'}"
            self._add_sequence(seq, (0,), 0, (ph,))
            seeds.append(ph)
        return seeds

    def add_recurrences(self, seeds):
        """Recurrences of the reverse loop: what each step sends back through
        each tap, and the non-sequence gradient sums. Returns the total
        gradient of each inner output, for the body's pull-back."""
        T = _ops
        known = {}
        for i in range(self.n_rec):
            total = seeds[i]
            if i in self.diff_recs:
                total = self._add_sent(i, total)
            _add_seed(known, self.inner_outs[i], total)
        for j in range(self.n_rec, self.n_rec + self.spec.n_nit):
            _add_seed(known, self.inner_outs[j], seeds[j])
        for n in self.diff_nonseqs:
            ph = self.inner_nonseqs[n].type()
            ph.name = f"sum_grad_{self.inner_nonseqs[n].name or 'nonseq'}"
            self.acc_prev.append(ph)
            self.r_inits.append(T.zeros_like(self.nonseqs[n]))
        return known

    def _add_sent(self, i, total):
        """One recurrence per tap of output ``i``: what a step sends back
        through it. Returns ``total`` plus what arrives at this step."""
        T = _ops
        out = self.inner_outs[i]
        for k in self.spec.rec_taps[i]:
            ph = out.type()
            ph.name = f"sent_{out.name or 'out'}[{k}]"
            self.r_prev.append(ph)
            self.r_inits.append(T.zeros_like(axis_slice(self.bufs[i], 0, -k)))
            self.r_taps.append((k,))
            total = ph if total is None else total + ph
        return total

    def pull_back(self, known):
        """The reverse body's outputs: the gradients of the step's slices,
        previous outputs and non-sequences, given ``known``."""
        n_slices = sum(len(o) for o in self.spec.seq_offsets)
        diff_slices = [s for s in self.r_phs[:n_slices] if _is_float(s)]
        diff_prev = [p for i in self.diff_recs for p in self.prev[i]]
        wrt = diff_slices + diff_prev + [self.inner_nonseqs[n] for n in self.diff_nonseqs]
        grads = dict(zip(wrt, _pull_back(known, wrt)))

        for i in self.diff_recs:
            self.r_next.extend(_or_zeros(grads[p], p) for p in self.prev[i])
        for n, acc in zip(self.diff_nonseqs, self.acc_prev):
            g = grads[self.inner_nonseqs[n]]
            self.r_next.append(acc if g is None else acc + g)
        self.r_nit = [_or_zeros(grads[s], s) for s in diff_slices]

    def make_node(self):
        """The reverse ``Scan`` node over the gathered inputs."""
        spec = self.spec
        n_sent, n_acc = len(self.r_taps), len(self.acc_prev)
        variant = self.r_phs + self.r_prev + self.acc_prev
        outer_ns, inner_ns, body_outs = cut_body(self.r_next + self.r_nit, variant,
                                                 self.inner_nonseqs,
                                                 dict(zip(self.inner_nonseqs, self.nonseqs)))
        r_spec = ScanSpec(
            seq_offsets=tuple(self.r_offsets), seq_spans=tuple(self.r_spans),
            rec_taps=tuple(self.r_taps) + ((-1,),) * n_acc,
            rec_stacked=(True,) * n_sent + (False,) * n_acc,
            n_nit=len(self.r_nit), n_nonseq=len(outer_ns), has_n_steps=True, has_until=False,
            keep=tuple(-t[0] for t in self.r_taps) + (1,) * n_acc + (None,) * len(self.r_nit),
            truncate_gradient=-1, name=f"grad_of_{spec.name}" if spec.name else "grad")
        # ``type(node.op)`` is ``Scan``: the op's module imports this one.
        r_op = type(self.node.op)(InnerGraph(variant + inner_ns, body_outs), r_spec)
        return r_op.make_node(self.n_back, *self.r_seqs, *self.r_inits, *outer_ns)

    def outer_gradients(self, r_node):
        """The gradient of each outer input, read off the reverse node."""
        n_sent, n_acc = len(self.r_taps), len(self.acc_prev)
        result = [None] if self.spec.has_n_steps else []
        result += self._sequence_grads(iter(r_node.outputs[n_sent + n_acc:-1]))
        result += self._init_grads(iter(r_node.outputs[:n_sent]))
        sums = iter(r_node.outputs[n_sent:n_sent + n_acc])
        for n in range(len(self.nonseqs)):
            result.append(axis_slice(next(sums), -1, squeeze=True)
                          if n in self.diff_nonseqs else None)
        return result

    def _sequence_grads(self, slice_grads):
        result = []
        for x, offsets in zip(self.seqs, self.spec.seq_offsets):
            if not _is_float(x):
                result.append(None)
                continue
            total = None
            for o in offsets:
                part = axis_slice_grad(x, next(slice_grads), self.first + o, self.n_done + o,
                                       reverse=True)
                total = part if total is None else total + part
            result.append(total)
        return result

    def _init_grads(self, sent):
        result = []
        for i, (init, stacked) in enumerate(zip(self.inits, self.spec.rec_stacked)):
            if i not in self.diff_recs:
                result.append(None)
                continue
            total = self._initial_rows_grad(i, sent)
            if stacked:
                result.append(axis_slice_grad(init, total, 0, self.reach[i]))
            else:
                result.append(axis_slice(total, 0, squeeze=True))
        return result

    def _initial_rows_grad(self, i, sent):
        """Gradient of buffer ``i``'s initial rows: from outside, plus what
        steps sent back past row 0 (read off ``sent``, one buffer per tap)."""
        T = _ops
        L = self.reach[i]
        rows = axis_slice(self.bufs[i], 0, L)
        g = self.output_grads[i]
        total = axis_slice(g, 0, L) if g is not None else None
        for k in self.spec.rec_taps[i]:
            buf = next(sent)
            # Rows of `buf`, newest first, are what steps first, first+1, ...
            # sent back |k| rows; those landing before row 0 are initial rows.
            m = -k if not self.truncated else T.clip(-k - self.first, 0, -k)
            last = axis_slice(buf, k)
            part = axis_slice_grad(rows, axis_slice(last, -k - m, -k), L - m, L, reverse=True)
            total = part if total is None else total + part
        return total


def _add_seed(known, var, g):
    if g is None:
        return
    known[var] = g if var not in known else known[var] + g


def _pull_back(known, wrt):
    """Gradients of ``wrt`` given output gradients ``known`` (``None`` where
    disconnected)."""
    from tracegrad.grad.reverse import grad
    if not wrt:
        return []
    if not known:
        return [None] * len(wrt)
    return grad(None, wrt, known_grads=known, disconnected_inputs="ignore",
                return_disconnected="none")


def _or_zeros(g, like):
    if g is None:
        return _ops.zeros_like(like)
    from tracegrad.ops.elemwise import match_gradient_dtype
    return match_gradient_dtype(g, like)
