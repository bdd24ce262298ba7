"""Hypothesis strategies for property-based tests of tracegrad code.

    from hypothesis import given
    from tracegrad.testing import strategies as tgst

    @given(tgst.shapes(max_dims=2), st.data())
    def test_mine(shape, data):
        x = data.draw(tgst.arrays('float64', shape))
        ...

- ``shapes``: array shapes;
- ``broadcastable_shape_pairs``: two shapes that broadcast together;
- ``arrays``: NumPy arrays with bounded, finite elements by default;
- ``special_floats``: floats that are often IEEE special values (inf,
  -inf, NaN, ±0, subnormals, huge: ``special_values``), for
  ``arrays(..., elements=...)``;
- ``assert_same_ieee``: arrays equal with NaN positions, inf positions and
  inf signs compared as values;
- ``expressions``: random well-defined expression graphs over symbolic inputs
  (elementwise, broadcasting, reductions, indexing), differentiable almost
  everywhere and bounded, for checking gradients and rewrites.

Hypothesis is an optional (test) dependency of tracegrad.
"""
import math

import numpy as np

try:
    import hypothesis
    import hypothesis.extra.numpy as hnp
    import hypothesis.strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tracegrad.testing.strategies needs Hypothesis: "
                      "pip install hypothesis (or tracegrad[test])") from exc

import tracegrad.tensor as _ops  # noqa: E402 (the op functions, as ``T`` in the tables)

__all__ = ["shapes", "broadcastable_shape_pairs", "arrays", "special_floats",
           "assert_same_ieee", "expressions", "UNARY", "BINARY"]


# --------------------------------------------------------------- shapes
def shapes(min_dims=0, max_dims=3, min_side=0, max_side=5):
    """Shapes (tuples) with ``min_dims..max_dims`` axes of ``min_side..max_side``."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


@st.composite
def broadcastable_shape_pairs(draw, min_dims=0, max_dims=3, min_side=0, max_side=5):
    """Pairs ``(a, b)`` of shapes that broadcast together under NumPy's rules.

    Both are suffixes of one drawn shape (so they may differ in length), with
    some axes replaced by 1 in either.
    """
    base = draw(shapes(min_dims, max_dims, min_side, max_side))
    pair = []
    for _ in range(2):
        ndim = draw(st.integers(min_dims, len(base)))
        suffix = base[len(base) - ndim:]
        ones = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
        pair.append(tuple(1 if one else side for one, side in zip(ones, suffix)))
    return tuple(pair)


# --------------------------------------------------------------- arrays
def _default_elements(dtype, bound):
    kind = dtype.kind
    if kind == "b":
        return st.booleans()
    if kind == "u":
        return st.integers(0, int(bound))
    if kind == "i":
        return st.integers(-int(bound), int(bound))
    if kind == "f":
        return st.floats(-bound, bound, width=8 * dtype.itemsize,
                         allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if kind == "c":
        # Hypothesis bounds the modulus before rounding to the dtype, which
        # can overshoot by an ulp; keep a margin so |z| <= bound holds exactly.
        return st.complex_numbers(max_magnitude=bound * (1 - 1e-6), allow_nan=False,
                                  allow_infinity=False, width=8 * dtype.itemsize)
    raise TypeError(f"arrays: unsupported dtype {dtype}")


def arrays(dtype, shape, elements=None):
    """NumPy arrays of ``dtype`` and ``shape`` (a tuple, an int or a strategy).

    ``elements`` is a strategy for the values, a ``(low, high)`` pair of
    bounds, or a dict of ``hypothesis.extra.numpy.from_dtype`` keywords. By
    default floats lie in [-3, 3] (no NaN, infinity or subnormals), integers
    in [-10, 10] and complex numbers have modulus at most 3: values for which
    elementary functions neither overflow nor lose all precision.
    """
    dtype = np.dtype(dtype)
    if elements is None:
        elements = _default_elements(dtype, 10 if dtype.kind in "iu" else 3.0)
    elif isinstance(elements, tuple) and len(elements) == 2:
        low, high = elements
        if dtype.kind in "iu":
            elements = st.integers(int(math.ceil(low)), int(math.floor(high)))
        elif dtype.kind == "f":
            elements = st.floats(low, high, width=8 * dtype.itemsize, allow_nan=False,
                                 allow_infinity=False, allow_subnormal=False)
        else:
            raise TypeError(f"arrays: (low, high) bounds need a real dtype, got {dtype}")
    return hnp.arrays(dtype, shape, elements=elements)


SPECIAL_KINDS = ("nonfinite", "tiny", "huge")


def special_values(dtype, kinds=SPECIAL_KINDS):
    """IEEE special values of a float ``dtype``, by kind: ``'nonfinite'``
    (inf, -inf, NaN, ±0), ``'tiny'`` (±0, the smallest subnormals, a
    subnormal near the normal range), ``'huge'`` (the largest finite values
    and a tenth of them)."""
    info = np.finfo(dtype)
    tiny, big = float(info.smallest_subnormal), float(info.max)
    table = {
        "nonfinite": [np.inf, -np.inf, np.nan, 0.0, -0.0],
        "tiny": [0.0, -0.0, tiny, -tiny, float(info.smallest_normal) / 3],
        "huge": [big, -big, big / 10],
    }
    unknown = set(kinds) - set(table)
    if unknown:
        raise ValueError(f"special_values: unknown kinds {sorted(unknown)}; "
                         f"known: {SPECIAL_KINDS}")
    return [v for kind in kinds for v in table[kind]]


def special_floats(dtype="float64", bound=3.0, kinds=SPECIAL_KINDS):
    """Floats of ``dtype`` that are a special value of ``kinds``
    (``special_values``) about half the time, else in ``[-bound, bound]``
    (0 or at least 1e-6 in magnitude unless ``kinds`` has ``'tiny'``)."""
    dtype = np.dtype(dtype)
    ordinary = st.floats(-bound, bound, width=8 * dtype.itemsize)
    if "tiny" not in kinds:
        ordinary = ordinary.filter(lambda v: v == 0 or abs(v) >= 1e-6)
    return st.one_of(st.sampled_from(special_values(dtype, kinds)), ordinary)


def assert_same_ieee(got, expected, rtol=1e-9, atol=1e-9, err_msg=""):
    """``got`` equals ``expected``: NaN at the same positions, infinities at
    the same positions with the same signs, the finite entries within
    tolerance (the sign of a zero is not compared)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"shapes {got.shape} != {expected.shape} {err_msg}"
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        mismatch = test(got) != test(expected)
        if mismatch.any():
            where = np.argwhere(mismatch)[:5].tolist()
            raise AssertionError(f"{name} positions differ at {where}: got "
                                 f"{got[mismatch][:5]}, expected {expected[mismatch][:5]} "
                                 f"{err_msg}")
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol, atol=atol,
                               err_msg=err_msg)


# ---------------------------------------------------------- expressions
class _Unknown:
    """A length not known while building: equal only to itself."""

    __slots__ = ()

    def __repr__(self):
        return "?"


class _Expr:
    """A generated subexpression: variable, shape tokens, value bound, depth."""

    __slots__ = ("var", "shape", "bound", "depth")

    def __init__(self, var, shape, bound, depth):
        self.var = var
        self.shape = tuple(shape)
        self.bound = bound
        self.depth = depth


def _broadcast_tokens(a, b):
    """The broadcast shape tokens, or ``None`` when not certainly compatible."""
    out = []
    for k in range(1, max(len(a), len(b)) + 1):
        x = a[-k] if k <= len(a) else 1
        y = b[-k] if k <= len(b) else 1
        if x is y or x == y:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        else:
            return None
    return tuple(reversed(out))


def _known_positive(token):
    return isinstance(token, int) and token > 0


# Unary rows: name -> (build(T, var), bound after(b), largest input bound).
UNARY = {
    "tanh": (lambda T, v: T.tanh(v), lambda b: 1.0, None),
    "sin": (lambda T, v: T.sin(v), lambda b: 1.0, None),
    "cos": (lambda T, v: T.cos(v), lambda b: 1.0, None),
    "sigmoid": (lambda T, v: T.sigmoid(v), lambda b: 1.0, None),
    "arctan": (lambda T, v: T.arctan(v), lambda b: math.pi / 2, None),
    "exp": (lambda T, v: T.exp(v), math.exp, 3.0),
    "sqr": (lambda T, v: T.sqr(v), lambda b: b * b, 3.0),
    "cube": (lambda T, v: v ** 3, lambda b: b ** 3, 2.0),
    "log1p_sqr": (lambda T, v: T.log1p(T.sqr(v)), lambda b: math.log1p(b * b), None),
    "sqrt_1p_sqr": (lambda T, v: T.sqrt(1.0 + T.sqr(v)), lambda b: math.sqrt(1 + b * b),
                    None),
    "softplus": (lambda T, v: T.softplus(v), lambda b: b + 1.0, None),
    "abs": (lambda T, v: T.abs(v), lambda b: b, None),
    "neg": (lambda T, v: -v, lambda b: b, None),
    "scale": (lambda T, v: v * 1.5 - 0.25, lambda b: 1.5 * b + 0.25, None),
}

# Binary rows: name -> (build(T, a, b), bound after(ba, bb)).
BINARY = {
    "add": (lambda T, a, b: a + b, lambda x, y: x + y),
    "sub": (lambda T, a, b: a - b, lambda x, y: x + y),
    "mul": (lambda T, a, b: a * b, lambda x, y: x * y),
    "maximum": (lambda T, a, b: T.maximum(a, b), max),
    "minimum": (lambda T, a, b: T.minimum(a, b), max),
    "safe_div": (lambda T, a, b: a / (1.0 + T.sqr(b)), lambda x, y: x),
}

_STRUCTURAL = ("reduce", "index", "transpose")


def _available():
    """Structural op families whose functions exist in ``tracegrad.tensor``."""
    T = _ops
    fams = []
    if all(hasattr(T, n) for n in ("sum", "mean", "max")):
        fams.append("reduce")
    if hasattr(T, "getitem"):
        fams.append("index")
    if hasattr(T, "transpose"):
        fams.append("transpose")
    return fams


def _squash(T, e, limit):
    """Scale ``e`` down so its bound is at most ``limit`` (keeps values finite)."""
    if e.bound <= limit:
        return e
    factor = limit / e.bound
    return _Expr(e.var * factor, e.shape, limit, e.depth)


def _draw_unary(draw, T, e, names, limit):
    name = draw(st.sampled_from(names))
    build, bound_fn, max_in = UNARY[name]
    if max_in is not None:
        e = _squash(T, e, max_in)
    return _Expr(build(T, e.var), e.shape, bound_fn(e.bound), e.depth + 1)


def _draw_binary(draw, T, a, pool, names, max_depth):
    partners = [p for p in pool if p.depth < max_depth
                and _broadcast_tokens(a.shape, p.shape) is not None]
    b = draw(st.sampled_from(partners))
    if draw(st.booleans()):
        a, b = b, a
    name = draw(st.sampled_from(names))
    build, bound_fn = BINARY[name]
    return _Expr(build(T, a.var, b.var), _broadcast_tokens(a.shape, b.shape),
                 bound_fn(a.bound, b.bound), max(a.depth, b.depth) + 1)


def _draw_reduce(draw, T, e):
    if e.shape and draw(st.booleans()):
        axis = draw(st.integers(0, len(e.shape) - 1))
        keepdims = draw(st.booleans())
        length = e.shape[axis]
        kinds = ["sum"] + (["mean", "max"] if _known_positive(length) else [])
        kind = draw(st.sampled_from(kinds))
        var = getattr(T, kind)(e.var, axis=axis, keepdims=keepdims)
        shape = list(e.shape)
        if keepdims:
            shape[axis] = 1
        else:
            del shape[axis]
        factor = length if isinstance(length, int) and kind == "sum" else 1
        if kind == "sum" and not isinstance(length, int):
            var = var * 0.125  # unknown length: assume a few elements, stay bounded
        return _Expr(var, shape, e.bound * max(factor, 1), e.depth + 1)
    kinds = ["sum"] + (["mean", "max"] if all(_known_positive(s) for s in e.shape) else [])
    kind = draw(st.sampled_from(kinds))
    size = math.prod(s if isinstance(s, int) else 8 for s in e.shape)
    var = getattr(T, kind)(e.var)
    bound = e.bound * max(size, 1) if kind == "sum" else e.bound
    return _Expr(var, (), bound, e.depth + 1)


def _draw_index(draw, T, e):
    """Basic and integer-array indexing along axis 0 (or 1)."""
    if not e.shape:
        return None
    n = e.shape[0]
    kinds = ["reverse", "tail"]
    if _known_positive(n):
        kinds += ["integer", "array"]
    if len(e.shape) > 1:
        kinds.append("stride1")
    kind = draw(st.sampled_from(kinds))
    rest = list(e.shape[1:])
    if kind == "reverse":
        return _Expr(e.var[::-1], e.shape, e.bound, e.depth + 1)
    if kind == "tail":
        length = max(n - 1, 0) if isinstance(n, int) else _Unknown()
        return _Expr(e.var[1:], [length] + rest, e.bound, e.depth + 1)
    if kind == "integer":
        i = draw(st.integers(-n, n - 1))
        return _Expr(e.var[i], rest, e.bound, e.depth + 1)
    if kind == "array":
        idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4))
        return _Expr(e.var[np.array(idx, dtype="int64")], [len(idx)] + rest,
                     e.bound, e.depth + 1)
    m = e.shape[1]
    length = (m + 1) // 2 if isinstance(m, int) else _Unknown()
    return _Expr(e.var[:, ::2], [n, length] + list(e.shape[2:]), e.bound, e.depth + 1)


def _draw_transpose(draw, T, e):
    if len(e.shape) < 2:
        return None
    return _Expr(T.transpose(e.var), tuple(reversed(e.shape)), e.bound, e.depth + 1)


@st.composite
def expressions(draw, inputs, max_depth=3, shapes=None, input_bound=3.0, ops=None,
                limit=10.0):
    """Random expression graphs over the symbolic ``inputs``.

    Each drawn value is a variable computed from some of ``inputs`` by up to
    ``2 * max_depth`` operations, at most ``max_depth`` deep: unary functions
    (``UNARY``: tanh, sin, exp of bounded arguments, sqr, log1p(sqr(.)),
    sigmoid, abs...), binary ones with broadcasting (``BINARY``: add, sub,
    mul, maximum, minimum, a division by ``1 + b**2``), reductions along an
    axis or all axes (sum, mean, max), indexing (slices, integers, integer
    arrays) and transposes. Subexpressions may be shared.

    The graph is well defined for every input value in
    ``[-input_bound, input_bound]``: no division by zero, no log of zero, and
    every intermediate value stays within ``limit`` in magnitude (larger ones
    are scaled down), so nothing overflows. It is differentiable except on a
    set of measure zero (ties in maximum/minimum/max, zeros of abs).

    Shapes: ``shapes`` gives the runtime shape of each input; by default the
    inputs' static shapes are used, and axes of unknown length are combined
    only with themselves or with length 1 (so any values fit). For the value
    bounds, an axis of unknown length is assumed to have at most 8 elements. ``ops`` limits
    the operations to a subset of names from ``UNARY``, ``BINARY`` and
    ``('reduce', 'index', 'transpose')``.
    """
    T = _ops
    unary, binary, structural = _op_families(inputs, shapes, ops)
    pool = _input_pool(T, inputs, shapes, input_bound)

    families = (["unary"] if unary else []) + (["binary"] if binary else []) + structural
    if not families:
        raise ValueError("expressions: no operations to draw from")
    steps = draw(st.integers(1, 2 * max_depth))
    result = None
    for _ in range(steps):
        candidates = [p for p in pool if p.depth < max_depth]
        if not candidates:
            break
        # Counted from the newest: Hypothesis shrinks towards chains, not leaves.
        a = candidates[-1 - draw(st.integers(0, len(candidates) - 1))]
        family = draw(st.sampled_from(families))
        new = _draw_family(draw, T, family, a, pool, unary, binary, max_depth, limit)
        if new is None:
            continue
        new = _squash(T, new, limit)
        pool.append(new)
        result = new
    if result is None:  # every step was skipped: apply one unary function
        result = _draw_unary(draw, T, pool[0], unary or ["tanh"], limit)
    from tracegrad.printing import pp
    hypothesis.note(f"expression: {pp(result.var)}")
    return result.var


def _op_families(inputs, shapes, ops):
    """The unary and binary op names and structural families ``expressions``
    may draw, after checking its arguments."""
    if not inputs:
        raise ValueError("expressions needs at least one input")
    if shapes is not None and len(shapes) != len(inputs):
        raise ValueError(f"expressions: {len(inputs)} inputs but {len(shapes)} shapes")
    names = set(ops) if ops is not None else set(UNARY) | set(BINARY) | set(_STRUCTURAL)
    unknown = set(names) - set(UNARY) - set(BINARY) - set(_STRUCTURAL)
    if unknown:
        raise ValueError(f"expressions: unknown ops {sorted(unknown)}")
    unary = sorted(n for n in names if n in UNARY)
    binary = sorted(n for n in names if n in BINARY)
    structural = [n for n in _available() if n in names]
    return unary, binary, structural


def _input_pool(T, inputs, shapes, input_bound):
    """The inputs as float ``_Expr`` leaves with their shape tokens."""
    pool = []
    for k, var in enumerate(inputs):
        var = T.as_tensor_variable(var)
        if var.dtype[0] not in "f":
            var = T.cast(var, "float64")
        if shapes is not None:
            tokens = tuple(int(s) for s in shapes[k])
            if len(tokens) != var.ndim:
                raise ValueError(f"expressions: shape {tokens} given for input {var} "
                                 f"of ndim {var.ndim}")
        else:
            tokens = tuple(_Unknown() if s is None else s for s in var.type.shape)
        pool.append(_Expr(var, tokens, float(input_bound), 0))
    return pool


def _draw_family(draw, T, family, a, pool, unary, binary, max_depth, limit):
    """A new expression of ``family`` on ``a`` (``None`` where it does not apply)."""
    if family == "unary":
        return _draw_unary(draw, T, a, unary, limit)
    if family == "binary":
        return _draw_binary(draw, T, a, pool, binary, max_depth)
    if family == "reduce":
        return _draw_reduce(draw, T, a)
    if family == "index":
        return _draw_index(draw, T, a)
    return _draw_transpose(draw, T, a)
