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
    T = _ops
    node, output_grads = _full_history(node, output_grads)
    op = node.op
    spec = op.spec
    n_steps_in, seqs, inits, nonseqs = op.split_outer(node.inputs)
    seq_slices, prev, inner_nonseqs = op.split_inner_inputs()
    n_rec = len(spec.rec_taps)
    bufs = node.outputs[:n_rec]
    inner_outs = op.inner.outputs
    n_done = node.outputs[-1]

    truncated = spec.truncate_gradient > 0
    n_back = T.minimum(n_done, spec.truncate_gradient) if truncated else n_done
    first = n_done - n_back if truncated else 0   # first forward step pulled back

    # Sequences of the reverse loop: forward sequences, forward buffers and
    # output gradients, each reversed over the steps pulled back.
    r_seqs, r_offsets, r_spans, r_phs = [], [], [], []
    for x, offsets, span, slices in zip(seqs, spec.seq_offsets, spec.seq_spans, seq_slices):
        r_seqs.append(axis_slice(x, first, n_done + span, reverse=True))
        r_offsets.append(tuple(span - o for o in offsets))
        r_spans.append(span)
        r_phs.extend(slices)
    reach = [-min(taps) for taps in spec.rec_taps]
    for buf, taps, phs, L in zip(bufs, spec.rec_taps, prev, reach):
        r_seqs.append(axis_slice(buf, first, n_done + L, reverse=True))
        r_offsets.append(tuple(-k for k in taps))
        r_spans.append(L)
        r_phs.extend(phs)
    seeds = []   # (inner output, gradient placeholder or None)
    for i, (out, g) in enumerate(zip(inner_outs[:n_rec + spec.n_nit],
                                     output_grads[:n_rec + spec.n_nit])):
        if not _is_float(out) or g is None:
            seeds.append((out, None))
            continue
        L = reach[i] if i < n_rec else 0
        r_seqs.append(axis_slice(g, first + L, n_done + L, reverse=True))
        r_offsets.append((0,))
        r_spans.append(0)
        ph = out.type()
        ph.name = f"grad_{out.name or 'out'}"
        r_phs.append(ph)
        seeds.append((out, ph))

    # Recurrences of the reverse loop: what each step sends back through each
    # tap, and the non-sequence gradient sums.
    known = {}
    r_inits, r_taps, r_prev, r_next = [], [], [], []
    diff_recs = [i for i in range(n_rec) if _is_float(inner_outs[i])]
    for i in range(n_rec):
        total = seeds[i][1]
        if i in diff_recs:
            for k in spec.rec_taps[i]:
                ph = inner_outs[i].type()
                ph.name = f"sent_{inner_outs[i].name or 'out'}[{k}]"
                r_prev.append(ph)
                r_inits.append(T.zeros_like(axis_slice(bufs[i], 0, -k)))
                r_taps.append((k,))
                total = ph if total is None else total + ph
        _add_seed(known, inner_outs[i], total)
    for j in range(n_rec, n_rec + spec.n_nit):
        _add_seed(known, inner_outs[j], seeds[j][1])
    diff_nonseqs = [n for n, v in enumerate(nonseqs) if _is_float(v)]
    acc_prev = []
    for n in diff_nonseqs:
        ph = inner_nonseqs[n].type()
        ph.name = f"sum_grad_{inner_nonseqs[n].name or 'nonseq'}"
        acc_prev.append(ph)
        r_inits.append(T.zeros_like(nonseqs[n]))

    diff_slices = [s for s in r_phs[:sum(len(o) for o in spec.seq_offsets)] if _is_float(s)]
    diff_prev = [p for i in diff_recs for p in prev[i]]
    wrt = diff_slices + diff_prev + [inner_nonseqs[n] for n in diff_nonseqs]
    grads = dict(zip(wrt, _pull_back(known, wrt)))

    for i in diff_recs:
        r_next.extend(_or_zeros(grads[p], p) for p in prev[i])
    for n, acc in zip(diff_nonseqs, acc_prev):
        g = grads[inner_nonseqs[n]]
        r_next.append(acc if g is None else acc + g)
    r_nit = [_or_zeros(grads[s], s) for s in diff_slices]

    n_sent = len(r_taps)
    body_outs = r_next + r_nit
    variant = r_phs + r_prev + acc_prev
    outer_ns, inner_ns, body_outs = cut_body(body_outs, variant, inner_nonseqs,
                                             dict(zip(inner_nonseqs, nonseqs)))
    r_spec = ScanSpec(
        seq_offsets=tuple(r_offsets), seq_spans=tuple(r_spans),
        rec_taps=tuple(r_taps) + ((-1,),) * len(acc_prev),
        rec_stacked=(True,) * n_sent + (False,) * len(acc_prev),
        n_nit=len(r_nit), n_nonseq=len(outer_ns), has_n_steps=True, has_until=False,
        keep=tuple(-t[0] for t in r_taps) + (1,) * len(acc_prev) + (None,) * len(r_nit),
        truncate_gradient=-1, name=f"grad_of_{spec.name}" if spec.name else "grad")
    # ``type(node.op)`` is ``Scan``: the op's module imports this one.
    r_op = type(node.op)(InnerGraph(variant + inner_ns, body_outs), r_spec)
    r_node = r_op.make_node(n_back, *r_seqs, *r_inits, *outer_ns)
    sent = r_node.outputs[:n_sent]
    sums = r_node.outputs[n_sent:n_sent + len(acc_prev)]
    slice_grads = iter(r_node.outputs[n_sent + len(acc_prev):-1])

    # Assemble the gradient of each outer input.
    result = [None] if spec.has_n_steps else []
    for x, offsets, slices in zip(seqs, spec.seq_offsets, seq_slices):
        if not _is_float(x):
            result.append(None)
            continue
        total = None
        for o in offsets:
            part = axis_slice_grad(x, next(slice_grads), first + o, n_done + o, reverse=True)
            total = part if total is None else total + part
        result.append(total)
    sent_iter = iter(sent)
    for i, (init, stacked) in enumerate(zip(inits, spec.rec_stacked)):
        if i not in diff_recs:
            result.append(None)
            continue
        L = reach[i]
        rows = axis_slice(bufs[i], 0, L)
        total = axis_slice(output_grads[i], 0, L) if output_grads[i] is not None else None
        for k in spec.rec_taps[i]:
            buf = next(sent_iter)
            # Rows of `buf`, newest first, are what steps first, first+1, ...
            # sent back |k| rows; those landing before row 0 are initial rows.
            m = -k if not truncated else T.clip(-k - first, 0, -k)
            last = axis_slice(buf, k)
            part = axis_slice_grad(rows, axis_slice(last, -k - m, -k), L - m, L, reverse=True)
            total = part if total is None else total + part
        if stacked:
            result.append(axis_slice_grad(init, total, 0, L))
        else:
            result.append(axis_slice(total, 0, squeeze=True))
    sums = iter(sums)
    for n, v in enumerate(nonseqs):
        result.append(axis_slice(next(sums), -1, squeeze=True) if n in diff_nonseqs else None)
    return result


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
