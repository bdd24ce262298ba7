"""Labels shared by the printers: how an op, a constant or a leaf reads
(``pp``'s infix/function-call tokens, ``debugprint``'s ``Elemwise{add}``)."""
import re

import numpy as np

from tracegrad.trace import Constant

# ------------------------------------------------------------------ op labels
# (Operators: each elementwise row declares its own ``symbol``.)
_FUNCTION_NAMES = {"clip_": "clip"}

_FORMATTERS = {}  # Op subclass -> fn(node, inputs) -> list of str / Variable tokens


def register_formatter(op_class, formatter):
    """Make ``pp`` print nodes of ``op_class`` with ``formatter``.

    ``formatter(node, inputs)`` returns a list of tokens: strings are printed
    as they are, variables (items of ``inputs``) are replaced by their own
    text. Example for an infix op: ``lambda node, i: ['(', i[0], ' @ ', i[1], ')']``.
    """
    _FORMATTERS[op_class] = formatter


# Fallback formatters of ops whose modules register none, found by class
# name so that printing imports no op module.
def _tensordot(node, i):
    op = node.op
    label = op._label(i[0].ndim, i[1].ndim) if hasattr(op, "_label") else op.name
    if label == "dot":
        return ["dot(", i[0], ", ", i[1], ")"]
    return [f"{label}(", i[0], ", ", i[1], f", axes=({op.axes_a}, {op.axes_b}))"]


_FORMATTERS_BY_NAME = {
    "MatMul": lambda node, i: ["(", i[0], " @ ", i[1], ")"],
    "TensorDot": _tensordot,
}


def _scalar_row(op):
    return getattr(op, "scalar_op", None)


def _op_function_name(op):
    """The name an op has in ``pp``: the function that builds it."""
    row = _scalar_row(op)
    if row is not None:
        if getattr(row, "params", ()) and row.name.startswith("cast_"):
            return "cast"
        return _FUNCTION_NAMES.get(row.name, row.name)
    name = op.name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()  # SumTo -> sum_to


def _format_value(value):
    if isinstance(value, np.ndarray):
        return _format_array(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, str):
        return value
    return repr(value)


def _op_params(op):
    """``key=value`` strings for the op's properties that say something."""
    out = []
    for prop in getattr(op, "__props__", ()):
        value = getattr(op, prop, None)
        if value is None or value is False or prop == "scalar_op" or (
                isinstance(value, tuple) and not value):
            continue
        if isinstance(value, str) and value == op.name:
            continue  # e.g. Reduce(kind='sum') is already called sum
        if prop in ("axis", "axes"):
            prop = "axis"  # NumPy's keyword
            if isinstance(value, tuple) and len(value) == 1:
                value = value[0]
        out.append(f"{prop}={_format_value(value)}")
    return out


def _format_array(data, max_size=16):
    if data.ndim == 0:
        return repr(data.item())
    if data.size <= max_size:
        return repr(data.tolist())
    return f"constant{{shape={tuple(data.shape)}, dtype={data.dtype}}}"


def _leaf_text(var):
    if var.name is not None:
        return var.name
    if isinstance(var, Constant):
        return _format_array(np.asarray(var.data))
    return str(var)


def _tokens(var, max_args=None):
    """The text of ``var`` one level deep: strings and input variables.
    A function-call style op with more than ``max_args`` inputs shows the
    first ``max_args`` and ``… N more``."""
    node = var.owner
    op = node.op
    inputs = node.inputs
    formatter = _FORMATTERS.get(type(op)) or _FORMATTERS_BY_NAME.get(type(op).__name__)
    if formatter is not None:
        tokens = list(formatter(node, inputs))
    else:
        row = _scalar_row(op)
        symbol = row.symbol if row is not None else None
        if symbol is not None and len(inputs) == 2:
            tokens = ["(", inputs[0], f" {symbol} ", inputs[1], ")"]
        elif symbol is not None and len(inputs) == 1:
            tokens = [f"({symbol}", inputs[0], ")"]
        elif row is not None and row.name.startswith("cast_"):
            tokens = ["cast(", inputs[0], f", {row.params[0]})"]
        else:
            tokens = [_op_function_name(op), "("]
            shown = inputs if max_args is None else inputs[:max_args]
            for k, inp in enumerate(shown):
                if k:
                    tokens.append(", ")
                tokens.append(inp)
            if len(shown) < len(inputs):
                tokens.append(f", … {len(inputs) - len(shown)} more")
            params = [] if "{" in op.name else _op_params(op)  # Fused{...} names its own
            if params:
                tokens.append(", " if inputs else "")
                tokens.append(", ".join(params))
            tokens.append(")")
    if len(node.outputs) > 1:
        tokens.append(f"[{var.index}]")
    return tokens


def _debug_label(op):
    row = _scalar_row(op)
    if row is not None:  # Theano's names: Elemwise{add,no_inplace}, Elemwise{add,inplace}
        return f"Elemwise{{{row.name},{'inplace' if getattr(op, 'destroy_map', None) else 'no_inplace'}}}"
    if "{" in op.name:  # the op already names its parameters (Subtensor{1:})
        return op.name
    params = _op_params(op)
    return f"{op.name}{{{','.join(params)}}}" if params else op.name
