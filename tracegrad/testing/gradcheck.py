"""``verify_grad`` and ``verify_rop``: symbolic gradients (vjp) and
Jacobian-vector products (jvp, ``Rop``) against central finite differences."""
import numpy as np

# (the op layer's names, not tracegrad.tensor's: T.verify_grad is this function)
from tracegrad.ops import api as T
from tracegrad.tensor.type import TensorType

_DEFAULT_EPS = {"float64": 1e-6, "float32": 1e-3, "float16": 1e-1}
_DEFAULT_TOL = {"float64": 1e-5, "float32": 1e-2, "float16": 1e-1}


def _compile(inputs, outputs):
    """A callable computing ``outputs``; uses tg.function when it exists."""
    from tracegrad.evaluate import evaluate
    try:
        from tracegrad.compile import function
        return function(inputs, outputs, on_unused_input="ignore")
    except NotImplementedError:
        def run(*values):
            return evaluate(outputs, dict(zip(inputs, values)))
        return run


def verify_grad(fn, points, rng=None, eps=None, rtol=None, atol=None, n_projections=1):
    """Check the symbolic gradient of ``fn`` at ``points``.

    ``fn`` maps symbolic inputs (one per array in ``points``) to a variable.
    Its output is reduced to a real scalar by a random projection
    ``real(sum(out * r))`` (``r`` complex when the output is); the gradient
    of that scalar with respect to every input is compared with central
    finite differences along a random direction per input and also
    coordinate-wise for small inputs. Complex inputs are checked along real
    and imaginary directions ``d``, against ``real(sum(grad * d))`` (the
    convention of docs/user-guide.md, "Complex gradients"). Raises
    ``AssertionError`` naming the worst input, its index, and both values.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    points = [np.asarray(p) for p in points]
    points = [np.array(p, dtype=p.dtype if p.dtype.kind in "fc" else "float64")
              for p in points]
    inputs = [TensorType(p.dtype, (None,) * p.ndim)(f"input{i}") for i, p in enumerate(points)]
    out = T.as_tensor_variable(fn(*inputs))
    if out.dtype[0] not in "fc":
        raise TypeError(f"verify_grad: fn returned dtype {out.dtype}, which has no gradient")
    # Tolerances follow the least precise dtype on the way: a float32 result
    # of float64 inputs cannot resolve a 1e-6 finite-difference step.
    dtype = max([p.dtype.name for p in points] + [out.dtype],
                key=lambda d: np.finfo(d).eps if np.dtype(d).kind in "fc" else 0.0)
    eps = _DEFAULT_EPS.get(_real_name(dtype), 1e-6) if eps is None else eps
    rtol = _DEFAULT_TOL.get(_real_name(dtype), 1e-5) if rtol is None else rtol
    atol = _DEFAULT_TOL.get(_real_name(dtype), 1e-5) if atol is None else atol
    out_value = np.asarray(_first(_compile(inputs, [out])(*points)))
    for _ in range(n_projections):
        worst = _worst_mismatch(inputs, out, out_value, points, rng, eps, rtol, atol)
        if worst is not None and worst[0] > 1:
            _, i, where, analytic, numeric = worst
            raise AssertionError(
                f"verify_grad: gradient mismatch for input {i} at {where}: "
                f"symbolic {analytic!r} vs finite difference {numeric!r} "
                f"(rtol={rtol}, atol={atol}, eps={eps})")


def _random_like(rng, value):
    r = rng.standard_normal(value.shape)
    if value.dtype.kind == "c":
        r = r + 1j * rng.standard_normal(value.shape)
    return r.astype(value.dtype)


def _directions(rng, p):
    """``(label, direction)`` pairs: every coordinate (and ``1j`` times it
    for complex ``p``) when ``p`` is small, and one random direction."""
    checks = []
    if p.size <= 24:
        units = (1, 1j) if p.dtype.kind == "c" else (1,)
        for idx in np.ndindex(*p.shape):
            for unit in units:
                direction = np.zeros_like(p)
                direction[idx] = unit
                checks.append((idx if unit == 1 else (idx, "imag"), direction))
    checks.append(("random direction", _random_like(rng, p)))
    return checks


def _worst_mismatch(inputs, out, out_value, points, rng, eps, rtol, atol):
    """``(ratio, input index, where, analytic, numeric)`` of the worst
    disagreement for one random projection of the output."""
    from tracegrad.grad import grad

    proj = T.constant(_random_like(rng, out_value))
    cost = (out * proj).sum() if out.ndim else out * proj
    if cost.dtype[0] == "c":
        cost = T.real(cost)
    grads = grad(cost, inputs, disconnected_inputs="ignore")
    f_cost = _compile(inputs, [cost])
    symbolic = [np.asarray(g) for g in _listify(_compile(inputs, grads)(*points))]

    def cost_at(values):
        return float(np.asarray(_first(f_cost(*values))))

    worst = None
    for i, p in enumerate(points):
        for where, direction in _directions(rng, p):
            plus = list(points)
            minus = list(points)
            plus[i] = p + eps * direction
            minus[i] = p - eps * direction
            numeric = (cost_at(plus) - cost_at(minus)) / (2 * eps)
            analytic = float(np.real(np.sum(symbolic[i] * direction)))
            err = abs(numeric - analytic)
            tol = atol + rtol * max(abs(numeric), abs(analytic))
            ratio = err / tol if tol else np.inf
            if worst is None or ratio > worst[0]:
                worst = (ratio, i, where, analytic, numeric)
    return worst


def verify_rop(fn, points, rng=None, eps=None, rtol=None, atol=None):
    """Check ``Rop`` (the Jacobian-vector product) of ``fn`` at ``points``.

    ``fn`` maps symbolic inputs to a variable, as for ``verify_grad``. Every
    floating or complex input gets a random tangent ``v`` (complex for complex
    inputs); ``Rop(out, inputs, vs)`` is compared with the central difference
    ``(f(x + eps·v) − f(x − eps·v)) / (2·eps)`` elementwise. Raises
    ``AssertionError`` naming the worst element and both values.
    """
    from tracegrad.grad import Rop

    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    points = [np.array(p, dtype=p.dtype if p.dtype.kind in "fc" else "float64")
              for p in map(np.asarray, points)]
    inputs = [TensorType(p.dtype, (None,) * p.ndim)(f"input{i}") for i, p in enumerate(points)]
    tangents = [TensorType(p.dtype, (None,) * p.ndim)(f"tangent{i}") for i, p in enumerate(points)]
    out = T.as_tensor_variable(fn(*inputs))
    dtype = max([p.dtype.name for p in points] + [out.dtype],
                key=lambda d: np.finfo(d).eps if np.dtype(d).kind in "fc" else 0.0)
    eps = _DEFAULT_EPS.get(_real_name(dtype), 1e-6) if eps is None else eps
    rtol = _DEFAULT_TOL.get(_real_name(dtype), 1e-5) if rtol is None else rtol
    atol = _DEFAULT_TOL.get(_real_name(dtype), 1e-5) if atol is None else atol
    jvp = Rop(out, inputs, tangents, disconnected_inputs="ignore")
    vs = [_random_like(rng, p) for p in points]
    analytic = np.asarray(_first(_compile(inputs + tangents, [jvp])(*points, *vs)))
    f = _compile(inputs, [out])
    plus = np.asarray(_first(f(*[p + eps * v for p, v in zip(points, vs)])))
    minus = np.asarray(_first(f(*[p - eps * v for p, v in zip(points, vs)])))
    numeric = (plus.astype(analytic.dtype) - minus.astype(analytic.dtype)) / (2 * eps)
    if analytic.shape != numeric.shape:
        raise AssertionError(f"verify_rop: Rop has shape {analytic.shape}, "
                             f"the output {numeric.shape}")
    err = np.abs(analytic - numeric)
    tol = atol + rtol * np.maximum(np.abs(analytic), np.abs(numeric))
    bad = ~(err <= tol)
    if bad.any():
        where = np.unravel_index(np.argmax(np.where(bad, err / tol, 0)), bad.shape)
        raise AssertionError(
            f"verify_rop: Jacobian-vector product mismatch at {where}: symbolic "
            f"{analytic[where]!r} vs finite difference {numeric[where]!r} "
            f"(rtol={rtol}, atol={atol}, eps={eps})")


def _real_name(dtype):
    return np.finfo(dtype).dtype.name


def _first(result):
    return result[0] if isinstance(result, (list, tuple)) else result


def _listify(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]
