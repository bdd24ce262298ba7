"""Theano's ``theano.printing.min_informative_str``: as much of a graph as
needed to specify a variable in terms of constants and named variables,
each entry tagged (``A.``, ``B.``, …) and a repeated one printed as its
tag (``<B>``). Walked iteratively, in the order Theano's recursion prints."""
import numpy as np


def _tag(k):
    """``A``…``Z``, then ``AA``, ``AB``… (Theano's ``_TagGenerator``)."""
    letters = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        letters = chr(ord("A") + r) + letters
    return letters


def min_informative_str(obj, indent_level=0, _prev_obs=None, _tag_generator=None):
    """A string describing ``obj``: its name when it has one, else its op
    followed by its inputs (one level of indentation deeper), down to named
    variables and constants. ``indent_level`` indents the whole text."""
    seen = {} if _prev_obs is None else _prev_obs
    lines = []
    stack = [(obj, indent_level)]
    while stack:
        var, level = stack.pop()
        indent = " " * level
        if id(var) in seen:
            lines.append(f"{indent}<{seen[id(var)]}>")
            continue
        tag = seen[id(var)] = _tag(len(seen))
        owner = getattr(var, "owner", None)
        if isinstance(var, np.ndarray):
            name = "<ndarray>"
        elif getattr(var, "name", None) is not None:
            name = var.name
        elif owner is not None:
            name = str(owner.op)
            stack.extend((i, level + 1) for i in reversed(owner.inputs))
        else:
            name = str(var)
        lines.append(f"{indent}{tag}. {name}")
    return "\n".join(lines)
