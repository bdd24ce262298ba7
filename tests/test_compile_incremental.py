"""Structural checks of the compile-time mechanisms that keep compiling
near-linear in graph size (issue 14). None is timed: each checks that a
cheaper mechanism gives what the straightforward one gave, and that the
data it keeps stays small."""
import numpy as np

import tracegrad as tg
import tracegrad.tensor as T
from tracegrad.compile import schedule


def _sum_indexed(n):
    x = T.dvector("x")
    cost = sum(T.sin(x[i]) * i for i in range(n))
    return x, cost, tg.grad(cost, x)


def _full_closure(fgraph, order):
    """The alias sets as ``_alias_roots`` kept them before: every variable a
    value may be a view of, through each chain of views."""
    roots = {v: frozenset((v,)) for v in fgraph.variables if v.owner is None}
    for node in order:
        for k, out in enumerate(node.outputs):
            srcs = list(node.op.view_map.get(k, ())) + list(node.op.destroy_map.get(k, ()))
            r = {out}
            for j in srcs:
                r |= roots[node.inputs[j]]
            roots[out] = frozenset(r)
    return roots


def _view_graph():
    m = T.dmatrix("m")
    s = tg.shared(np.ones((3, 3)), name="s")
    t = T.exp(m)
    u = T.set_subtensor(t[0], 1.0)
    outs = [u.T * 2.0, (t + s)[1:], T.inc_subtensor(u[1:], 2.0), m.T, s[0] * 3.0]
    return tg.function([m], outs, updates={s: s * 2.0 + u})


# ------------------------------------------------------------ alias roots
def _set_chain(n):
    v = T.dvector("v")
    x = T.zeros((n + 5,))
    for i in range(n):
        x = T.set_subtensor(x[i], v[i] * 2.0)
    return v, x


def test_alias_roots_stay_small_on_a_chain_of_in_place_updates():
    v, x = _set_chain(60)
    f = tg.function([v], x)
    fgraph = f.maker.fgraph
    order = fgraph.toposort()
    assert sum(bool(n.op.destroy_map) for n in order) >= 59  # the chain is in place
    roots, _ = schedule._alias_roots(fgraph, order)
    assert max(len(r) for r in roots.values()) == 1
    assert max(len(r) for r in _full_closure(fgraph, order).values()) > 59
    np.testing.assert_allclose(f(np.arange(60.0)), np.r_[np.arange(60.0) * 2, np.zeros(5)])


def test_alias_roots_meet_exactly_where_the_full_alias_sets_did():
    v, x = _set_chain(12)
    for f in (_view_graph(), tg.function([v], x)):
        fgraph = f.maker.fgraph
        order = fgraph.toposort()
        roots, _ = schedule._alias_roots(fgraph, order)
        full = _full_closure(fgraph, order)
        variables = list(full)
        for a in variables:
            assert schedule._view_closure(a) == full[a]
            assert roots[a] <= full[a]
            for b in variables:
                assert bool(roots[a] & roots[b]) == bool(full[a] & full[b])


def test_view_graph_still_computes_what_mode_none_computes():
    m = np.arange(9.0).reshape(3, 3) / 10
    got = _view_graph()(m)
    s = tg.shared(np.ones((3, 3)), name="s")
    mm = T.dmatrix("m")
    t = T.exp(mm)
    u = T.set_subtensor(t[0], 1.0)
    ref = tg.function([mm], [u.T * 2.0, (t + s)[1:], T.inc_subtensor(u[1:], 2.0), mm.T,
                             s[0] * 3.0], mode="None")(m)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-14)
