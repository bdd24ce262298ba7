"""``Lop``, ``Rop``, ``jacobian``, ``hessian`` built on the reverse engine.

``Rop`` uses the double-vjp trick: for ``g(u) = Lop(f, wrt, u)`` (linear in
``u``), ``Rop(f, wrt, v) = Lop(g, u, v)``. Every op therefore needs only a vjp
rule, and the vjps must themselves be differentiable (they are built from ops).
"""
from tracegrad.grad.reverse import grad
from tracegrad.ops.alloc import arange, zeros_like
from tracegrad.ops.elemwise import cast
from tracegrad.ops.reduce import prod
from tracegrad.ops.shape import concatenate, shape
from tracegrad.scan.build import scan
from tracegrad.tensor.variable import as_tensor_variable
from tracegrad.trace import ancestors, clone_replace


def _listify(x):
    if isinstance(x, (list, tuple)):
        return list(x), False
    return [x], True


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):
    """Row-vector times Jacobian: ``eval_points`` · ∂f/∂wrt."""
    f_list, _ = _listify(f)
    e_list, _ = _listify(eval_points)
    if len(f_list) != len(e_list):
        raise ValueError(f"Lop: {len(f_list)} outputs but {len(e_list)} eval_points")
    known = {}
    for fv, ev in zip(f_list, e_list):
        # An output listed twice contributes both directions: they add up.
        ev = as_tensor_variable(ev)
        known[fv] = known[fv] + ev if fv in known else ev
    return grad(None, wrt, consider_constant=consider_constant, known_grads=known,
                disconnected_inputs=disconnected_inputs)


def Rop(f, wrt, eval_points, disconnected_inputs="raise"):
    """Jacobian times column vector: ∂f/∂wrt · ``eval_points``."""
    f_list, f_single = _listify(f)
    wrt_list, _ = _listify(wrt)
    v_list, _ = _listify(eval_points)
    if len(wrt_list) != len(v_list):
        raise ValueError(f"Rop: {len(wrt_list)} wrt but {len(v_list)} eval_points")
    dummies = [fv.type() for fv in f_list]
    g = Lop(f_list, wrt_list, dummies, disconnected_inputs=disconnected_inputs)
    known = {}
    for gi, v in zip(g, v_list):
        # Several wrt may share one gradient variable (x + y gives the dummy
        # itself for both): their terms add up.
        v = as_tensor_variable(v)
        known[gi] = known[gi] + v if gi in known else v
    results = grad(None, dummies, known_grads=known, disconnected_inputs="ignore")
    # The result is linear in the dummies' coefficients and independent of
    # their values; replace any leftover reference by zeros.
    zeros = {d: zeros_like(fv) for d, fv in zip(dummies, f_list)}
    results, _ = clone_replace(results, zeros)
    results = [_evaluated_at(r, fv, wrt_list) for r, fv in zip(results, f_list)]
    return results[0] if f_single else results


def _evaluated_at(result, f, wrt):
    """``result``, still a function of every ``wrt`` that ``f`` depends on.

    Theano's ``Rop(f, wrt, v)`` is the Jacobian *at* ``wrt``: a function
    compiled from it takes ``wrt`` as an input even when ``f`` is linear in
    it (its tutorial compiles ``Rop(dot(x, W), W, V)`` with inputs ``[W, V,
    x]``), as ``grad``'s seed ``ones_like(cost)`` keeps the cost's inputs.
    A term ``0 * size(w)`` keeps that dependence: it reads only ``w``'s
    shape, never its values."""
    seen = set(ancestors([result]))
    reached = set(ancestors([f]))
    for w in wrt:
        if w not in seen and w in reached:
            result = result + cast(prod(shape(w)) * 0, result.dtype)
    return result


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """∂expression/∂wrt with shape ``expression.shape + wrt.shape``."""
    wrt_list, single = _listify(wrt)
    expression = as_tensor_variable(expression)
    if expression.ndim == 0:
        g = grad(expression, wrt_list, consider_constant=consider_constant,
                 disconnected_inputs=disconnected_inputs)
        return g[0] if single else g
    flat = expression.flatten()

    def row(i, y, *xs):
        return grad(y[i], list(xs), consider_constant=consider_constant,
                    disconnected_inputs=disconnected_inputs)

    rows, _ = scan(row, sequences=arange(flat.shape[0]),
                             non_sequences=[flat, *wrt_list])
    if not isinstance(rows, (list, tuple)):
        rows = [rows]
    out = [r.reshape(concatenate([expression.shape, w.shape]), ndim=expression.ndim + w.ndim)
           for r, w in zip(rows, wrt_list)]
    return out[0] if single else out


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """Matrix of second derivatives of the scalar ``cost`` for each of ``wrt``."""
    wrt_list, single = _listify(wrt)
    out = []
    for w in wrt_list:
        g = grad(cost, w, consider_constant=consider_constant,
                 disconnected_inputs=disconnected_inputs)
        out.append(jacobian(g, w, consider_constant=consider_constant,
                            disconnected_inputs=disconnected_inputs))
    return out[0] if single else out
