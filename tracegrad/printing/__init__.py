"""Printing graphs: ``pp`` (infix text, numbered lines for large graphs),
``debugprint`` (indented tree), ``to_dot`` (Graphviz DOT text) and
``pydotprint`` (a picture rendered by Graphviz when installed).

Modules: ``labels`` (how ops, constants and leaves read), ``text`` (``pp``),
``debug`` (``debugprint``, the update labels of compiled functions), ``dot``
(``to_dot``, ``pydotprint``). Every function walks the graph iteratively, so
graphs of any depth print without touching Python's recursion limit.
"""
import shutil  # noqa: F401  (tests stand in for Graphviz through printing.shutil)

from tracegrad.printing.debug import debugprint, update_kinds
from tracegrad.printing.dot import pydotprint, to_dot
from tracegrad.printing.labels import register_formatter
from tracegrad.printing.text import pp
from tracegrad.printing.informative import min_informative_str
from tracegrad.trace import Apply, Op, Variable

__all__ = ["pp", "debugprint", "to_dot", "pydotprint", "register_formatter", "update_kinds",
           "pprint", "Print", "min_informative_str"]

# --------------------------------------------------------------- Print (Theano)
pprint = pp   # Theano's spelling: ``theano.printing.pprint(var)``


def _print_fn(op, value):
    """Theano's default ``global_fn``: print each of ``op.attrs`` of the value."""
    for attr in op.attrs:
        found = getattr(value, attr)
        print(op.message, attr, "=", found() if callable(found) else found)


class Print(Op):
    """Theano's ``Print``: an identity op that prints its input's value each
    time a compiled function computes it.

    ``Print('x is')(x)`` returns a variable equal to ``x``; when it is
    computed, ``print('x is', '__str__', '=', str(value))`` runs. ``attrs``
    names the value's attributes (or methods, called) to print, e.g.
    ``('shape', 'sum')``; ``global_fn(op, value)`` replaces the printing.
    The gradient passes through unchanged; the op is never constant-folded,
    so a Print of a constant still prints at run time.
    """
    __props__ = ("message", "attrs", "global_fn")
    view_map = {0: [0]}
    constant_foldable = False

    def __init__(self, message="", attrs=("__str__",), global_fn=_print_fn):
        self.message = message
        self.attrs = tuple(attrs)
        self.global_fn = global_fn

    def make_node(self, x):
        if not isinstance(x, Variable):
            raise TypeError(f"Print: expected a symbolic variable, got {type(x).__name__} "
                            "(wrap it with tracegrad.tensor.as_tensor_variable)")
        return Apply(self, [x], [x.type()])

    def impl(self, xp, x):
        self.global_fn(self, x)
        return x

    def vjp(self, node, output_grads):
        return [output_grads[0]]
