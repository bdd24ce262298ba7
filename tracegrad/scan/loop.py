"""Running a ``Scan`` node: the step loop and the row stores it fills."""
import numpy as np


class RowStore:
    """Rows ``0, 1, 2, ...`` of one output buffer, the first ``head`` of them
    initial values.

    With ``keep=None`` every row is kept (the buffer grows by doubling when the
    number of steps is not known in advance). With ``keep=K`` only a ring of
    ``max(K, reach)`` rows lives -- enough for taps reading ``reach`` rows
    back -- and the result is the ``head`` initial rows followed by the last
    ``K`` step rows: every read of the buffer from its end (``[-1]``) or of its
    initial rows gives what it would on the full buffer.
    """

    def __init__(self, xp, dtype, keep, reach, head, capacity, what):
        self.xp = xp
        self.dtype = dtype
        self.ring = None if keep is None else max(keep, reach, 1)
        self.keep = keep
        self.head = head
        self.head_rows = None
        self.capacity = capacity if self.ring is None else self.ring
        self.rows = None
        self.count = 0
        self.what = what

    def _slot(self, pos):
        return pos if self.ring is None else pos % self.ring

    def write(self, pos, value):
        xp = self.xp
        if self.rows is None:
            self.rows = xp.empty((max(self.capacity, 1),) + value.shape, dtype=self.dtype)
        elif value.shape != self.rows.shape[1:]:
            raise ValueError(
                f"scan: {self.what} has shape {value.shape} at step {pos - self.head}, "
                f"but shape {self.rows.shape[1:]} before (each step must give the same shape)")
        if self.ring is None and pos >= self.rows.shape[0]:
            grown = xp.empty((2 * self.rows.shape[0],) + self.rows.shape[1:], dtype=self.dtype)
            grown[:self.rows.shape[0]] = self.rows
            self.rows = grown
        elif xp.may_share_memory(value, self.rows):
            value = value.copy()
        self.rows[self._slot(pos)] = value
        self.count = pos + 1

    def write_head(self, values):
        """The initial rows (kept aside when the ring will overwrite them)."""
        for pos in range(values.shape[0]):
            self.write(pos, values[pos])
        if self.ring is not None:
            self.head_rows = values.astype(self.dtype, copy=True)

    def read(self, pos):
        return self.rows[self._slot(pos)]

    def result(self, row_shape):
        xp = self.xp
        if self.rows is None:
            shape = tuple(0 if s is None else s for s in row_shape)
            return xp.zeros((0,) + shape, dtype=self.dtype)
        if self.ring is None:
            out = self.rows[:self.count]
            return out.copy() if 2 * self.count < self.rows.shape[0] else out
        n = min(self.keep, self.count - self.head)
        order = [self._slot(p) for p in range(self.count - n, self.count)]
        tail = self.rows[xp.asarray(order, dtype=np.int64)] if order else self.rows[:0]
        if self.head_rows is None:
            return tail
        return xp.concatenate([self.head_rows, tail])


def _n_steps(op, limit, seqs):
    spec = op.spec
    n = None
    if limit is not None:
        n = int(limit)
        if n < 0:
            raise ValueError(f"{op.name}: n_steps must be >= 0, got {n}")
    for x, span in zip(seqs, spec.seq_spans):
        available = max(x.shape[0] - span, 0)
        n = available if n is None else min(n, available)
    if n is None and not spec.has_until:
        raise ValueError(f"{op.name}: the number of steps is unknown (no n_steps, "
                         "no sequences and no until condition)")
    return n


def run_loop(op, xp, arrays):
    """Run the loop of ``op`` on the outer ``arrays``; returns the outer outputs."""
    spec = op.spec
    limit, seqs, inits, nonseqs = op.split_outer(arrays)
    n = _n_steps(op, limit, seqs)
    fn = op.inner.function(xp)
    outs = op.inner.outputs
    n_rec, n_nit = len(spec.rec_taps), spec.n_nit
    # With an until condition, grow buffers instead of allocating n_steps rows.
    planned = n if n is not None and not spec.has_until else min(16 if n is None else n, 16)

    rec = []
    for i, (init, taps, stacked) in enumerate(zip(inits, spec.rec_taps, spec.rec_stacked)):
        reach = -min(taps)
        if not stacked:
            init = init[None]
        if init.shape[0] < reach:
            raise ValueError(f"{op.name}: output {i} reads {reach} steps back (taps "
                             f"{list(taps)}) but its initial value has {init.shape[0]} rows")
        store = RowStore(xp, outs[i].type.dtype, spec.keep[i], reach, reach, reach + planned,
                         f"output {i}")
        store.write_head(init[:reach])
        rec.append((store, reach, taps))
    nit = [RowStore(xp, out.type.dtype, spec.keep[n_rec + j], 0, 0, planned,
                    f"output {n_rec + j}")
           for j, out in enumerate(outs[n_rec:n_rec + n_nit])]

    steps = 0
    while n is None or steps < n:
        t = steps
        args = []
        for x, offsets in zip(seqs, spec.seq_offsets):
            args.extend(x[t + o] for o in offsets)
        for store, reach, taps in rec:
            args.extend(store.read(reach + t + k) for k in taps)
        args.extend(nonseqs)
        values = fn(*args)
        for (store, reach, _), value in zip(rec, values):
            store.write(reach + t, _as_array(xp, value))
        for j, store in enumerate(nit):
            store.write(t, _as_array(xp, values[n_rec + j]))
        steps += 1
        if spec.has_until and bool(values[n_rec + n_nit]):
            break

    results = [store.result(outs[i].type.shape) for i, (store, _, _) in enumerate(rec)]
    results += [store.result(outs[n_rec + j].type.shape) for j, store in enumerate(nit)]
    results.append(xp.asarray(steps, dtype=np.int64))
    return tuple(results)


def _as_array(xp, value):
    if not isinstance(value, xp.ndarray):
        value = xp.asarray(value)
    return value
