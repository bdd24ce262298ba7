"""Table-driven tests of ``einsum`` (forward vs NumPy per dtype, broadcasting,
0-d and 0-length operands; gradients and jvps vs finite differences, complex
included), plus parsing errors, NumPy dispatch and the matmul fast path."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.tensor as T
from optable import OpCase, table_tests

DTYPES = ("float64", "float32", "complex128", "int32")
GRADS = ("float64", "complex128")

# (subscripts, shape sets)
SPECS = [
    ("ij,jk->ik", [[(3, 4), (4, 5)], [(0, 4), (4, 2)], [(3, 0), (0, 2)]]),
    ("ij,jk", [[(3, 4), (4, 2)]]),
    ("ii", [[(3, 3)], [(0, 0)]]),
    ("ii->i", [[(4, 4)]]),
    ("iij->j", [[(3, 3, 2)]]),
    ("ij->ji", [[(2, 3)]]),
    ("ij->", [[(2, 3)], [(0, 3)]]),
    ("i,i", [[(4,), (4,)], [(0,), (0,)]]),
    ("i,j->ij", [[(4,), (3,)]]),
    (",i->i", [[(), (3,)]]),
    ("ij,j->i", [[(3, 4), (4,)], [(3, 4), (1,)]]),
    ("ij,ij->ij", [[(3, 4), (3, 4)], [(1, 4), (3, 4)]]),
    ("bij,bjk->bik", [[(2, 3, 4), (2, 4, 5)]]),
    ("...ij,...jk->...ik", [[(2, 3, 4), (4, 5)], [(3, 4), (1, 4, 2)]]),
    ("...a,b...", [[(2, 3, 4), (5, 3)]]),
    ("ij,jk,kl->il", [[(3, 4), (4, 5), (5, 2)]]),
    ("abc,cd,bd->a", [[(2, 3, 4), (4, 5), (3, 5)]]),
    ("ijk,jil->kl", [[(2, 3, 4), (3, 2, 5)]]),
    ("ii,ij->j", [[(3, 3), (3, 2)]]),
    ("Ab,bA->", [[(2, 3), (3, 2)]]),
]

CASES = [
    OpCase(f"einsum[{spec}]", lambda *xs, spec=spec: T.einsum(spec, *xs),
           lambda *xs, spec=spec: np.einsum(spec, *xs), shapes, DTYPES,
           grad_dtypes=GRADS)
    for spec, shapes in SPECS
] + [
    OpCase("einsum[sublists]", lambda a, b: T.einsum(a, [0, 1], b, [1, Ellipsis], [0, Ellipsis]),
           lambda a, b: np.einsum(a, [0, 1], b, [1, Ellipsis], [0, Ellipsis]),
           [[(3, 4), (4, 2, 2)]], ("float64",)),
    OpCase("einsum[dtype=float64]", lambda a, b: T.einsum("ij,jk", a, b, dtype="float64"),
           lambda a, b: np.einsum("ij,jk", a, b, dtype="float64"), [[(3, 4), (4, 2)]],
           ("float32", "int32")),
    OpCase("einsum[optimize]", lambda a, b, c: T.einsum("ij,jk,kl", a, b, c, optimize="greedy"),
           lambda a, b, c: np.einsum("ij,jk,kl", a, b, c, optimize="greedy"),
           [[(3, 4), (4, 5), (5, 2)]], ("float64",)),
    OpCase("einsum[bool]", lambda a, b: T.einsum("ij,jk", a, b),
           lambda a, b: np.einsum("ij,jk", a, b), [[(3, 4), (4, 2)]], ("bool",), grad=False),
]

test_forward, test_grad = table_tests(CASES)


def test_every_public_function_has_a_case():
    from optable import uncovered_functions
    from tracegrad.ops import einsum
    assert uncovered_functions(einsum.__all__, CASES) == []


def test_numpy_dispatch():
    x, y = T.dmatrix("x"), T.dmatrix("y")
    a, b = np.ones((2, 3)), np.arange(6.0).reshape(3, 2)
    out = np.einsum("ij,jk->ik", x, y)
    np.testing.assert_allclose(out.eval({x: a, y: b}), a @ b)
    f = tg.jit(lambda u, v: np.einsum("ij,jk->", u, v))
    np.testing.assert_allclose(f(a, b), np.einsum("ij,jk->", a, b))


def test_special_values_propagate():
    x = T.dvector("x")
    a = np.array([np.nan, np.inf, -0.0, 1.0])
    np.testing.assert_array_equal(T.einsum("i,i->i", x, x).eval({x: a}),
                                  np.einsum("i,i->i", a, a))
    np.testing.assert_array_equal(T.einsum("i->", x).eval({x: a}), np.nan)


def test_second_order_gradient():
    # d/dA of tr(A A) is 2 A^T, so the Hessian-vector product with V is 2 V^T.
    a = T.dmatrix("a")
    g = tg.grad(T.einsum("ij,ji", a, a), a)
    v = np.random.default_rng(0).standard_normal((3, 3))
    hv = tg.grad(T.sum(g * v), a)
    np.testing.assert_allclose(hv.eval({a: np.eye(3)}), 2 * v.T)


@pytest.mark.parametrize("spec,shapes,message", [
    ("ij,jk", [(2, 3)], "2 terms"),
    ("ij->k", [(2, 3)], "not in the inputs"),
    ("ij->ii", [(2, 3)], "repeated"),
    ("i1", [(2, 3)], "invalid subscript"),
    ("ij", [(2, 3, 4)], "ndim 3"),
    ("....i", [(2, 3)], "ellipsis"),
    ("...i->i", [(2, 3)], "no '...'"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "lengths 3 and 4"),
])
def test_errors_name_the_problem(spec, shapes, message):
    xs = [T.TensorType("float64", s)() for s in shapes]
    with pytest.raises(ValueError, match=message):
        T.einsum(spec, *xs)


def test_out_and_casting_refused():
    x = T.dmatrix("x")
    with pytest.raises(TypeError, match="out="):
        T.einsum("ij", x, out=np.empty((2, 2)))
    with pytest.raises(TypeError, match="cannot cast"):
        T.einsum("ij", x, dtype="float32")


def test_matrix_product_is_one_contraction():
    # Structural, not timed (timings live in bench/): the contraction is one
    # node over the two matrices, with no (i, j, k) broadcast product.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((200, 200)), rng.standard_normal((200, 200))
    x, y = T.dmatrix("x"), T.dmatrix("y")
    f = tg.function([x, y], T.einsum("ij,jk->ik", x, y))
    nodes = f.maker.fgraph.toposort()
    assert all(v.ndim <= 2 for n in nodes for v in n.outputs), \
        [(n.op, [v.ndim for v in n.outputs]) for n in nodes]
    assert len(nodes) <= 2, nodes
    np.testing.assert_allclose(f(a, b), a @ b, rtol=1e-12, atol=1e-10)
