"""Theano's "Extending Theano" tutorial: an op written to Theano's protocol
(``perform(node, inputs, output_storage)``, ``grad(inputs, output_grads)``)
and ``theano.compile.ops.as_op`` run as copied."""
import pickle

import numpy
import numpy as np
import pytest

import tracegrad as theano
import tracegrad.tensor as T
from tracegrad.compile.ops import as_op


class DoubleOp(theano.Op):
    __props__ = ()

    def make_node(self, x):
        x = theano.tensor.as_tensor_variable(x)
        return theano.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        x = inputs[0]
        z = output_storage[0]
        z[0] = x * 2

    def infer_shape(self, node, i0_shapes):
        return i0_shapes

    def grad(self, inputs, output_grads):
        return [output_grads[0] * 2]

    def R_op(self, inputs, eval_points):
        # R_op can receive None as eval_points: that means there is no
        # differentiable path through that input
        if eval_points[0] is None:
            return eval_points
        return self.grad(inputs, eval_points)


@as_op(itypes=[T.dmatrix, T.dmatrix], otypes=[T.dmatrix])
def numpy_dot(a, b):
    return numpy.dot(a, b)


def test_double_op_python_implementation():
    x = theano.tensor.matrix()
    f = theano.function([x], DoubleOp()(x))
    inp = numpy.random.RandomState(0).rand(5, 4)
    out = f(inp)
    assert numpy.allclose(inp * 2, out)
    np.testing.assert_allclose(DoubleOp()(x).eval({x: inp}), inp * 2)


def test_double_op_gradient_rop_and_verify_grad():
    x = T.dmatrix("x")
    inp = np.random.RandomState(1).rand(3, 4)
    g = theano.function([x], theano.grad((DoubleOp()(x) ** 2).sum(), x))
    np.testing.assert_allclose(g(inp), 8 * inp)
    v = T.dmatrix("v")
    r = theano.function([x, v], theano.Rop(DoubleOp()(x), x, v))
    np.testing.assert_allclose(r(inp, np.ones((3, 4))), np.full((3, 4), 2.0))
    theano.testing.verify_grad(DoubleOp(), [inp], rng=np.random.RandomState(2))


def test_double_op_in_debug_mode_and_inside_scan():
    x = T.dvector("x")
    f = theano.function([x], T.exp(DoubleOp()(x)) + 1, mode="DebugMode")
    np.testing.assert_allclose(f([0.0, 1.0]), np.exp([0.0, 2.0]) + 1)
    out, _ = theano.scan(lambda v: DoubleOp()(v), sequences=x)
    np.testing.assert_allclose(theano.function([x], out)([1.0, 2.0]), [2.0, 4.0])


def test_as_op_numpy_dot():
    x, y = T.dmatrices("x", "y")
    f = theano.function([x, y], numpy_dot(x, y) + 1)
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(f(a, b), a @ b + 1)
    # it pickles by its module-level name, as in Theano
    np.testing.assert_allclose(pickle.loads(pickle.dumps(f))(a, b), a @ b + 1)
    with pytest.raises(TypeError, match="input 1 has type"):
        numpy_dot(x, T.fmatrix())
    with pytest.raises(NotImplementedError, match="numpy_dot"):
        theano.grad(numpy_dot(x, y).sum(), x)
    assert theano.as_op is as_op


def test_as_op_of_a_local_function_refuses_to_pickle():
    @as_op(itypes=[T.dvector], otypes=[T.dvector])
    def local(a):
        return a + 1
    x = T.dvector("x")
    f = theano.function([x], local(x))
    np.testing.assert_array_equal(f([1.0]), [2.0])
    with pytest.raises(pickle.PicklingError, match="module-level"):
        pickle.dumps(f)
