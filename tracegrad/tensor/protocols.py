"""Python's protocols on symbolic arrays that need no graph building:
``x.shape`` as a tuple (``ShapeTuple``), and the Python numbers a symbolic
value cannot give while the graph is built (``float(x)``, ``int(x)``,
``complex(x)``, an index, ``bool(x)``), and whether ``x == y`` was
written as an operator (elementwise) or made by a container (identity), with errors that say why and what to write
instead. ``tensor.variable`` uses both; this module imports no tracegrad
module but the graph's ``Constant``/``Variable``.
"""
import dis
import sys

import numpy as np

from tracegrad.trace import Constant, Variable

__all__ = ["ShapeTuple", "known_number", "truth_message", "written_as_operator",
           "comparison"]


_CONVERSIONS = {
    "float": "T.cast(x, 'float64') or x.astype('float64') (np.float64(x) under "
             "`import tracegrad.numpy as np`)",
    "int": "T.cast(x, 'int64') or x.astype('int64') (np.int64(x) under "
           "`import tracegrad.numpy as np`)",
    "complex": "T.cast(x, 'complex128') or x.astype('complex128')",
    "index": "symbolic indexing (x[i], T.arange(n)), a static length (x.shape[i] of a "
             "known length is an int), or tg.jit with static_argnums for a number "
             "used as a length or axis",
}


def known_number(var, kind):
    """The Python number behind 0-d constant ``var``; ``TypeError`` saying
    why not (and what to write instead) for any other symbolic value."""
    if isinstance(var, Constant) and var.data.ndim == 0:
        return var.data[()]
    if isinstance(var, Constant):
        raise TypeError(f"only 0-d constants convert to Python scalars; {var} has "
                        f"shape {var.data.shape}")
    what = "an index" if kind == "index" else f"{kind}()"
    raise TypeError(
        f"{what} of {var}: it is a traced (symbolic) value, whose number is not "
        f"known until the compiled function runs. Use {_CONVERSIONS[kind]}; for its "
        "value compile it with tg.function or call .eval()")


class ShapeTuple(tuple):
    """``x.shape`` of a symbolic array: a tuple (``len``, unpacking,
    ``shape[1:]``, ``shape + (1,)``, ``== (3, 4)``, ``np.zeros(shape)`` when
    every length is known) whose entries are Python ints where the length is
    static and symbolic int64 scalars elsewhere. Where a tensor is expected
    (``T.reshape(y, x.shape)``, an output of ``tg.function``) it is
    Theano's int64 shape vector ``T.shape(x)``; ``x.shape.eval()`` gives it."""

    def __new__(cls, entries, of=None):
        out = super().__new__(cls, entries)
        out.of = of  # the array whose whole shape this is (None for a slice)
        return out

    def __getitem__(self, key):
        out = tuple.__getitem__(self, key)
        return ShapeTuple(out) if isinstance(key, slice) else out

    def __reduce__(self):
        return (ShapeTuple, (tuple(self), self.of))

    # ``tensor.variable`` (which builds graphs) sets this on import.
    to_tensor = None

    def as_tensor(self):
        """The int64 vector of these lengths."""
        return self.to_tensor(self)

    def eval(self, inputs_to_values=None):
        """The lengths as an int64 array (Theano's ``x.shape.eval()``)."""
        if not any(isinstance(e, Variable) for e in self):
            return np.asarray(tuple(self), dtype="int64").reshape(len(self))
        return self.as_tensor().eval(inputs_to_values)


def truth_message(var):
    """Why ``bool(var)`` has no answer while building the graph."""
    if getattr(var, "traced_argument", False):
        return (f"the truth value of tg.jit argument {var} is not known while tracing: "
                "pass it in static_argnums/static_argnames to branch on its value, or "
                "use np.where / T.switch for an elementwise choice")
    what = "constant" if isinstance(var, Constant) else "value computed in the graph"
    return (f"the truth value of {var} (a symbolic {what}) is not known until the "
            "function runs: use np.where / T.switch to choose between values, "
            "tg.until to stop a scan, and `is` / `is not` to compare variables by "
            "identity (`x == y` is elementwise)")


_COMPARE_OP = dis.opmap["COMPARE_OP"]


def written_as_operator():
    """Whether the running ``__eq__``/``__ne__`` comes from a ``==``/``!=``
    written in Python code (a ``COMPARE_OP`` instruction in the calling frame).

    Container code compares items itself, from C: ``x in seq`` (the frame is
    at ``CONTAINS_OP``), ``seq.index(x)``, ``.remove``, ``.count`` (a call),
    dict and set lookups. Those comparisons ask for identity, as they did in
    Theano, and they first test ``is`` themselves, so answering
    ``NotImplemented`` (Python then falls back to ``is``) keeps them right.
    """
    try:
        frame = sys._getframe(2)
    except ValueError:  # called from C with no Python frame at all
        return False
    lasti = frame.f_lasti
    return lasti >= 0 and frame.f_code.co_code[lasti] == _COMPARE_OP


def comparison(fn, x, other):
    """``fn(x, other)`` (elementwise ``==``/``!=``), or identity for a non-number."""
    try:
        return fn(x, other)
    except TypeError:
        if isinstance(other, Variable):
            raise
        # Not a number or array (a string, an arbitrary object): never equal,
        # answered by identity like any Python object.
        return NotImplemented


def _index_text(key):
    """``key`` as the user would write it between brackets."""
    if isinstance(key, tuple):
        return ", ".join(_index_text(k) for k in key) if key else "()"
    if isinstance(key, slice):
        text = ":".join("" if v is None else _index_text(v)
                        for v in (key.start, key.stop, key.step))
        return text[:-1] if key.step is None else text
    if key is Ellipsis:
        return "..."
    if key is None:
        return "None"
    if isinstance(key, Variable):
        return key.name or "i"
    if isinstance(key, (int, np.integer)):
        return str(int(key))
    return "i"


def item_assignment_error(var, key):
    """The ``TypeError`` for ``x[key] = v`` on a symbolic value: graphs are
    not changed in place, so say what builds the new value instead."""
    name = var.name or "x"
    at = f"{name}[{_index_text(key)}]"
    return TypeError(
        f"{at} = v: a symbolic (traced) value cannot be assigned to in place. "
        f"Write {name} = T.set_subtensor({at}, v) (a new value equal to {name} with "
        f"{at} replaced), or {name} = T.inc_subtensor({at}, v) for {at} += v")
