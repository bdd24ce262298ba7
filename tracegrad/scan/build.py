"""``scan(fn, ...)``: trace the loop body once and build a ``Scan`` node.

``fn`` is called once (twice when an initial value is a Python number, see
``_trace``), on placeholders for the sequence slices and previous outputs and
on the non-sequences themselves (the outer variables, so that
``fn`` may differentiate through them, as ``tg.jacobian`` does). The traced
graph is then cut into the loop body: every sub-expression that does not
depend on a per-step placeholder (the non-sequences, shared variables and
free variables ``fn`` closes over, and whole invariant expressions such as
``W.T``) becomes an input of the loop computed once outside it. Shared
variables that ``fn`` updates -- explicitly or through a ``default_update``
such as a random stream's state -- become loop state advanced every step;
their final value flows out through the returned updates.
"""
from collections import OrderedDict

import numpy as np

from tracegrad.frozen_random import no_frozen_draws
from tracegrad.ops import api as _ops  # the op functions (scan sits below tracegrad.tensor)
from tracegrad.scan.axis import axis_slice
from tracegrad.scan.body import InnerGraph, ScanSpec, cut_body
from tracegrad.scan.op import Scan
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import Variable, ancestors, clone_replace


class until:
    """Stop condition for ``scan``: ``return value, tg.until(value > 40)``.

    The step that makes the condition true is the last one run (and kept).
    """

    def __init__(self, condition):
        condition = as_tensor_variable(condition)
        if condition.ndim != 0:
            raise TypeError(f"until: the condition must be a scalar, got {condition.type}")
        self.condition = condition


def _listify(x):
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _is_shared(var):
    from tracegrad.shared import SharedVariable
    return isinstance(var, SharedVariable)


def _is_update_list(x):
    return (isinstance(x, (list, tuple)) and len(x) > 0 and
            all(isinstance(p, (list, tuple)) and len(p) == 2 and _is_shared(p[0]) for p in x))


def _parse_return(result):
    """``fn``'s return value -> (outputs, updates dict, until condition or None)."""
    condition = None
    updates = OrderedDict()
    outputs = []
    if isinstance(result, until):
        return [], updates, result.condition
    if result is None:
        return [], updates, None
    if isinstance(result, dict) or _is_update_list(result):
        return [], OrderedDict(result), None
    if not isinstance(result, (list, tuple)):
        return [result], updates, None
    parts = list(result)
    rest = []
    for part in parts:
        if isinstance(part, until):
            condition = part.condition
        elif isinstance(part, dict):
            updates.update(part)
        elif _is_update_list(part):
            updates.update(part)
        else:
            rest.append(part)
    if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
        outputs = list(rest[0])
    elif len(rest) != len(parts) or condition is not None or updates:
        outputs = rest
    else:
        outputs = parts
    return outputs, updates, condition


# ------------------------------------------------------------ argument parsing
class _Sequence:
    def __init__(self, entry, go_backwards):
        if isinstance(entry, dict):
            if "input" not in entry:
                raise TypeError("scan: a sequence given as a dict needs 'input'")
            taps = list(entry.get("taps", [0]) or [0])
            var = entry["input"]
        else:
            taps, var = [0], entry
        var = as_tensor_variable(var)
        if var.ndim == 0:
            raise TypeError(f"scan: sequence {var} is 0-d; sequences are iterated along "
                            "their first axis")
        if go_backwards:
            var = axis_slice(var, reverse=True)
        low, high = min(min(taps), 0), max(max(taps), 0)
        self.outer = var
        self.taps = [int(k) for k in taps]
        self.offsets = tuple(k - low for k in self.taps)
        self.span = high - low
        self.placeholders = [self._placeholder(var, k) for k in self.taps]

    @staticmethod
    def _placeholder(var, tap):
        ph = var.type.clone(shape=var.type.shape[1:])()
        base = var.name or "seq"
        ph.name = f"{base}[t]" if tap == 0 else f"{base}[t{tap:+d}]"
        return ph


class _Recurrent:
    """An output with an initial value (``taps`` steps back)."""

    def __init__(self, init, taps, name=None):
        self.taps = [int(k) for k in taps]
        if not self.taps or any(k >= 0 for k in self.taps):
            raise ValueError(f"scan: output taps must be negative, got {taps}")
        self.stacked = self.taps != [-1]
        self.weak = getattr(init, "weak", False)
        self.init = init
        self.name = name
        self.make_placeholders()

    def row_type(self):
        t = self.init.type
        if self.stacked:
            if t.ndim == 0:
                raise TypeError(f"scan: the initial value for taps {self.taps} needs a "
                                "leading axis with one row per step back")
            return t.clone(shape=t.shape[1:])
        return t

    def make_placeholders(self):
        base = self.name or getattr(self.init, "name", None) or "out"
        self.placeholders = []
        for k in self.taps:
            ph = self.row_type()()
            ph.name = f"{base}[t{k:+d}]"
            self.placeholders.append(ph)

    def cast_init(self, dtype, weak=False):
        """Give a Python-number initial value the dtype ``dtype``."""
        self.init = _ops.constant(np.asarray(self.init.data, dtype=dtype))
        self.weak = weak
        self.make_placeholders()


def _parse_outputs_info(outputs_info):
    if outputs_info is None:
        return None
    entries = outputs_info if isinstance(outputs_info, (list, tuple)) else [outputs_info]
    parsed = []
    for entry in entries:
        if entry is None:
            parsed.append(None)
        elif isinstance(entry, dict):
            if entry.get("initial") is None:
                if entry.get("taps"):
                    raise ValueError("scan: taps given without an initial value")
                parsed.append(None)
            else:
                parsed.append(_Recurrent(as_tensor_variable(entry["initial"]),
                                         entry.get("taps", [-1])))
        else:
            parsed.append(_Recurrent(as_tensor_variable(entry), [-1]))
    return parsed


# ------------------------------------------------------------ the front end
def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None,
         go_backwards=False, truncate_gradient=-1, name=None, return_list=False,
         mode=None, profile=False, strict=False, allow_gc=None):
    """Loop ``fn`` over ``sequences``; returns ``(outputs, updates)``.

    ``fn`` receives, in order, the slices of each sequence (one per tap for a
    sequence given as ``dict(input=x, taps=[-1, 0])``), the previous values of
    each output with an initial value (one per tap; ``outputs_info`` entries
    are ``None``, an initial value, or ``dict(initial=v, taps=[-2, -1])``),
    then the non-sequences. It returns the outputs, optionally with an updates
    dict and a ``tg.until(condition)``. The loop runs ``n_steps`` steps or as
    many as the shortest sequence allows, whichever is fewer. Each output is
    stacked along a new first axis (one row per step, initial values not
    included). ``updates`` maps the shared variables that ``fn`` updates
    (including random streams drawn inside ``fn``) to their value after the
    loop; pass it to ``tg.function``. ``truncate_gradient=k > 0`` back-propagates
    through the last ``k`` steps only. ``mode``: how the body is compiled
    (``None``: ``tg.config.optimizer``; a ``MonitorMode`` or ``DebugMode``
    watches the body's nodes at every step). ``strict=True``: every shared
    variable the body reads must be in ``non_sequences`` (those it updates,
    random streams included, need not).
    """
    seqs = [_Sequence(s, go_backwards) for s in _listify(sequences)]
    recs_info = _parse_outputs_info(outputs_info)
    nonseqs = [as_tensor_variable(v) if not isinstance(v, Variable) else v
               for v in _listify(non_sequences)]
    n_steps = _n_steps_input(n_steps, seqs)

    outputs, updates, condition = _trace(fn, seqs, recs_info, nonseqs)
    recs_info, recs, rec_outs, nit_outs = _split_outputs(recs_info, outputs)

    states, state_outs = _loop_state(updates, outputs + [condition] + list(updates.values()),
                                     nonseqs)
    if strict:
        _check_strict(outputs + [condition] + state_outs, nonseqs, states)
    inner_outs = rec_outs + state_outs + nit_outs + ([condition] if condition is not None
                                                     else [])
    inner, hoisted = _inner_graph(seqs, recs, states, inner_outs, nonseqs, mode)
    n_rec = len(recs) + len(states)
    spec = ScanSpec(
        seq_offsets=tuple(s.offsets for s in seqs),
        seq_spans=tuple(s.span for s in seqs),
        rec_taps=tuple(tuple(r.taps) for r in recs) + ((-1,),) * len(states),
        rec_stacked=tuple(r.stacked for r in recs) + (False,) * len(states),
        n_nit=len(nit_outs),
        n_nonseq=len(hoisted),
        has_n_steps=n_steps is not None,
        has_until=condition is not None,
        keep=(None,) * len(recs) + (1,) * len(states) + (None,) * len(nit_outs),
        truncate_gradient=int(truncate_gradient),
        name=name,
    )
    node = Scan(inner, spec).make_node(*_outer_inputs(n_steps, seqs, recs, states, hoisted))
    bufs = node.outputs

    results = _results(recs_info, recs, bufs[:len(recs)],
                       bufs[n_rec:n_rec + len(nit_outs)], outputs)
    new_updates = OrderedDict()
    for (shared, _), buf in zip(states, bufs[len(recs):n_rec]):
        new_updates[shared] = axis_slice(buf, -1, squeeze=True)
    if return_list or len(results) != 1:
        return results, new_updates
    return results[0], new_updates


def _check_strict(roots, nonseqs, states):
    """Theano's ``strict=True``: every shared variable the step reads is a
    non-sequence, except those it advances (updates, random streams)."""
    advanced = {shared for shared, _ in states}
    stray = [v for v in ancestors([r for r in roots if r is not None], blockers=nonseqs)
             if _is_shared(v) and v not in advanced and v not in nonseqs]
    if stray:
        names = ", ".join(str(v) for v in stray)
        raise ValueError(f"scan(strict=True): the step function reads the shared variable(s) "
                         f"{names} without their being in non_sequences; pass them in "
                         "non_sequences (or use strict=False)")


def _n_steps_input(n_steps, seqs):
    """``n_steps`` as an int64 scalar (``None`` when not given)."""
    if n_steps is not None:
        n_steps = as_tensor_variable(n_steps)
        if n_steps.ndim != 0 or n_steps.dtype[0] not in "iu":
            raise TypeError(f"scan: n_steps must be an integer scalar, got {n_steps.type}")
        n_steps = _ops.cast(n_steps, "int64")
    elif not seqs:
        raise ValueError("scan: give n_steps or at least one sequence")
    return n_steps


def _split_outputs(recs_info, outputs):
    """``(recs_info, recurrences, their outputs, the other outputs)``, with
    ``recs_info`` one entry per output (all ``None`` when not given)."""
    if recs_info is None:
        recs_info = [None] * len(outputs)
    if len(recs_info) != len(outputs):
        raise ValueError(f"scan: fn returned {len(outputs)} outputs but outputs_info has "
                         f"{len(recs_info)} entries")
    recs = [r for r in recs_info if r is not None]
    rec_outs = [o for r, o in zip(recs_info, outputs) if r is not None]
    nit_outs = [o for r, o in zip(recs_info, outputs) if r is None]
    return recs_info, recs, rec_outs, nit_outs


def _inner_graph(seqs, recs, states, inner_outs, nonseqs, mode=None):
    """The loop body over its placeholders, and the outer values its
    loop-invariant parts were cut into (``cut_body``)."""
    placeholders = ([p for s in seqs for p in s.placeholders] +
                    [p for r in recs for p in r.placeholders] +
                    [p for _, p in states])
    replace = {shared: ph for shared, ph in states}
    inner_outs, _ = clone_replace(inner_outs, replace, blockers=nonseqs)
    hoisted, inner_nonseqs, inner_outs = cut_body(inner_outs, placeholders, nonseqs)
    return InnerGraph(placeholders + inner_nonseqs, inner_outs, mode), hoisted


def _outer_inputs(n_steps, seqs, recs, states, hoisted):
    """The ``Scan`` node's inputs, in the order ``ScanSpec`` describes."""
    return ([n_steps] if n_steps is not None else []) + [s.outer for s in seqs] + \
        [r.init for r in recs] + [shared for shared, _ in states] + hoisted


def _results(recs_info, recs, rec_bufs, nit_bufs, outputs):
    """One result per output of ``fn``: a recurrence's buffer without its
    initial rows, or the stacked per-step values; named after ``fn``'s."""
    results = []
    rec_iter = iter(zip(recs, rec_bufs))
    nit_iter = iter(nit_bufs)
    for info in recs_info:
        if info is None:
            results.append(next(nit_iter))
        else:
            rec, buf = next(rec_iter)
            results.append(axis_slice(buf, -min(rec.taps)))
    for out, var in zip(results, outputs):
        if out.name is None and getattr(var, "name", None):
            out.name = var.name
    return results


_PROBE = {"i": "int8", "u": "int8", "f": "float16"}
_DEFAULT = {"i": "int64", "u": "int64", "f": "float64"}


def _trace(fn, seqs, recs_info, nonseqs):
    """Call ``fn`` on placeholders.

    A Python-number initial value is weak, as in NumPy 2: it takes the dtype
    the body gives it (``outputs_info=0`` summing float32 values is float32).
    ``fn`` is first traced with the smallest dtype of the number's kind to
    learn what the rest of the body promotes it to, then traced again with
    that dtype (or the default int64 / float64 when nothing promotes it).
    """
    recs = [r for r in (recs_info or []) if r is not None]
    weak = [r for r in recs if r.weak and r.init.dtype[0] in _PROBE]
    for r in weak:
        r.cast_init(_PROBE[r.init.dtype[0]], weak=True)
    outputs, updates, condition = _call(fn, seqs, recs, nonseqs)
    if weak:
        _settle_weak(weak, recs, _rec_outputs(recs_info, outputs))
        outputs, updates, condition = _call(fn, seqs, recs, nonseqs)
    if recs_info is not None:
        _match_initial_values(recs_info, outputs)
    if condition is not None and condition.dtype != "bool":
        condition = _ops.neq(condition, 0)
    return outputs, updates, condition


def _settle_weak(weak, recs, rec_outs):
    """Give each weak initial value the dtype its probe trace promoted it
    to (the default of its kind when nothing did)."""
    for r, out in zip(recs, rec_outs):
        if r in weak:
            probe = r.row_type().dtype
            dtype = out.dtype if out.dtype != probe else _DEFAULT[probe[0]]
            r.cast_init(dtype, weak=False)


def _match_initial_values(recs_info, outputs):
    """Check each recurrent output against its initial value's row type,
    casting it where that is safe (``outputs`` is edited in place)."""
    if len(recs_info) != len(outputs):
        raise ValueError(f"scan: fn returned {len(outputs)} outputs but outputs_info has "
                         f"{len(recs_info)} entries")
    for i, (rec, out) in enumerate(zip(recs_info, outputs)):
        if rec is None:
            continue
        row = rec.row_type()
        if out.ndim != row.ndim:
            raise TypeError(
                f"scan: output {i} has ndim {out.ndim} but its initial value has "
                f"ndim {row.ndim} per step ({rec.init.type})")
        if out.dtype == row.dtype:
            continue
        if np.can_cast(out.dtype, row.dtype, "safe"):
            outputs[i] = _ops.cast(out, row.dtype)
        else:
            raise TypeError(
                f"scan: output {i} of fn has dtype {out.dtype} but its initial value "
                f"(outputs_info) has dtype {row.dtype}; cast one of them")


def _call(fn, seqs, recs, nonseqs):
    args = [p for s in seqs for p in s.placeholders]
    args += [p for r in recs for p in r.placeholders]
    args += nonseqs
    with no_frozen_draws(fn, "scan"):  # a draw would repeat at every step and call
        outputs, updates, condition = _parse_return(fn(*args))
    return [as_tensor_variable(o) for o in outputs], updates, condition


def _rec_outputs(recs_info, outputs):
    if recs_info is None or len(recs_info) != len(outputs):
        raise ValueError(f"scan: fn returned {len(outputs)} outputs but outputs_info has "
                         f"{len(recs_info or [])} entries")
    return [o for r, o in zip(recs_info, outputs) if r is not None]


def _loop_state(updates, roots, nonseqs):
    """Shared variables advanced each step: those ``fn`` updates explicitly and
    those with a ``default_update`` that the body uses (random streams)."""
    chosen = OrderedDict()
    for shared, expr in updates.items():
        if not _is_shared(shared):
            raise TypeError(f"scan: updates must be keyed by shared variables, got {shared}")
        chosen[shared] = as_tensor_variable(expr)
    pending = [r for r in roots if r is not None] + list(chosen.values())
    seen = set()
    while pending:
        found = []
        for var in ancestors(pending, blockers=nonseqs):
            if var in seen:
                continue
            seen.add(var)
            default = getattr(var, "default_update", None)
            if _is_shared(var) and var not in chosen and default is not None and \
                    var not in nonseqs:
                chosen[var] = as_tensor_variable(default)
                found.append(chosen[var])
        pending = found
    states, outs = [], []
    for shared, expr in chosen.items():
        if expr.ndim != shared.ndim:
            raise TypeError(f"scan: the update of {shared} has ndim {expr.ndim}, "
                            f"expected {shared.ndim}")
        if expr.dtype != shared.dtype:
            expr = _ops.cast(expr, shared.dtype)
        ph = shared.type()
        ph.name = shared.name
        states.append((shared, ph))
        outs.append(expr)
    return states, outs
