"""Theano's ``theano.gradient.numeric_grad``: the gradient of a NumPy
function by one-sided finite differences, and its error measures."""
import numpy as np

# Theano's step per dtype (``numeric_grad.type_eps``)
TYPE_EPS = {"float64": 1e-7, "float32": 3e-4, "float16": 1e-1}


class numeric_grad:
    """``numeric_grad(f, pt, eps=None)``: ``gf``, the gradient of the
    scalar function ``f(*pt)`` at the arrays ``pt`` (a list, or one array),
    each entry ``(f(x + eps e_i) - f(x)) / eps`` (``eps`` from
    ``type_eps`` by the widest float dtype of ``pt`` unless given)."""

    type_eps = TYPE_EPS

    def __init__(self, f, pt, eps=None, out_type=None):
        single = not isinstance(pt, (list, tuple))
        points = [np.array(p, dtype=float) if np.asarray(p).dtype.kind not in "fc"
                  else np.array(p) for p in ([pt] if single else pt)]
        if eps is None:
            eps = max(TYPE_EPS.get(p.dtype.name, 1e-7) for p in points)
        f_x = np.asarray(f(*points))
        grads = []
        for p in points:
            g = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                g[idx] = (np.asarray(f(*points)) - f_x) / eps
                p[idx] = old
            grads.append(g)
        self.gf = grads[0] if single else grads
        self.eps = eps

    @staticmethod
    def abs_rel_err(a, b):
        """``(|a - b|, |a - b| / (|a| + |b|))`` elementwise (the second 0
        where both are 0)."""
        a, b = np.asarray(a), np.asarray(b)
        abs_err = np.abs(a - b)
        denom = np.abs(a) + np.abs(b)
        rel_err = np.divide(abs_err, denom, out=np.zeros_like(abs_err, dtype=float),
                            where=denom > 0)
        return abs_err, rel_err

    def abs_rel_errors(self, g_pt):
        """The ``abs_rel_err`` of each array of ``g_pt`` against ``gf``."""
        gf = self.gf if isinstance(self.gf, list) else [self.gf]
        g_pt = g_pt if isinstance(g_pt, (list, tuple)) else [g_pt]
        if len(g_pt) != len(gf):
            raise ValueError(f"numeric_grad: {len(g_pt)} gradients for {len(gf)} points")
        return [self.abs_rel_err(a, b) for a, b in zip(g_pt, gf)]

    def max_err(self, g_pt, abs_tol, rel_tol):
        """``(index, position, abs_err, rel_err)`` of the worst entry: the
        one whose smaller of ``abs_err / abs_tol`` and ``rel_err /
        rel_tol`` is largest."""
        worst = (-1.0, None)
        for i, (a, r) in enumerate(self.abs_rel_errors(g_pt)):
            score = np.minimum(a / abs_tol, r / rel_tol)
            if score.size and score.max() > worst[0]:
                pos = int(np.argmax(score))
                worst = (float(score.max()), (i, pos, float(a.flat[pos]), float(r.flat[pos])))
        if worst[1] is None:
            return 0, 0, 0.0, 0.0
        return worst[1]
