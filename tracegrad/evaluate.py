"""The reference evaluator: run each node's ``impl`` over a toposorted graph.

This is the semantics every other execution path (compiled functions, fused
kernels, the GPU) is tested against. ``run_node`` is shared with the compiled
function's schedule so both report failures the same way.
"""
import numpy as np

from tracegrad.config import config
from tracegrad.dtype_names import dtype_name
from tracegrad.printing import debugprint
from tracegrad.trace import (Constant, describe_op, describe_source, node_runner, toposort,
                             uses_perform)


def node_error_message(node, arrays, exc):
    """Name the op (as the user wrote it), every input's shape and dtype, and
    the user's line with its callers."""
    shapes = ", ".join(
        f"{tuple(getattr(a, 'shape', ()))} {getattr(a, 'dtype', type(a).__name__)}"
        for a in arrays)
    source = node.op.source_of(node, str(exc))
    message = (f"{exc}\n  while computing {describe_op(node, source)} with inputs of shapes "
               f"[{shapes}]{describe_source(source)}")
    if config.exception_verbosity == "high":
        # (Theano's exception_verbosity='high': the node's graph, as debugprint)
        tree = debugprint(node, file="str", depth=3)
        message += "\n  the failing node's graph:\n" + "".join(
            "    " + line + "\n" for line in tree.splitlines())
    return message


def reraise_with_context(node, arrays, exc):
    """Re-raise ``exc`` as its own type with the node's context added."""
    if getattr(exc, "tracegrad_node", None) is not None:
        # Already named the node that failed (a row inside a fused kernel):
        # the enclosing node's context would repeat the same frames.
        raise exc
    message = node_error_message(node, arrays, exc)
    try:
        new = type(exc)(message)
    except Exception:  # exception types with unusual constructors
        raise exc
    new.tracegrad_node = node
    raise new.with_traceback(exc.__traceback__) from None


def as_result(value, var, xp=np):
    """The op's result as an array of the variable's dtype (a value of a
    type other than an array type is kept as the op returned it)."""
    if not var.type.array_values:
        return value
    if not isinstance(value, xp.ndarray):
        value = xp.asarray(value)
    if dtype_name(value.dtype) != var.type.dtype:
        value = value.astype(var.type.dtype)
    return value


def run_node(node, arrays, xp=np):
    """Run one node; returns the list of its output arrays."""
    try:
        result = node_runner(node, xp)(*arrays) if uses_perform(node.op) \
            else node.op.impl(xp, *arrays)
    except Exception as exc:
        reraise_with_context(node, arrays, exc)
    if len(node.outputs) == 1:
        return [as_result(result, node.outputs[0], xp)]
    return [as_result(r, v, xp) for r, v in zip(result, node.outputs)]


def _is_shared(var):
    # Shared variables are the variables holding a ``container`` (asked for by
    # attribute: ``shared`` builds on this module, not the other way round).
    return getattr(var, "container", None) is not None


def _shared_value(var, xp):
    """A shared variable's value for ``xp``: a device buffer is copied to the
    host when evaluating with NumPy (``x.eval()`` on a CUDA shared variable)."""
    value = var.container.value
    if xp is np and not isinstance(value, np.ndarray) and var.type.array_values:
        from tracegrad.backend import CPU
        value = CPU.to_host(value)
    return value


def evaluate(outputs, values, xp=np):
    """Values of ``outputs`` given ``values`` ({variable: array}) for inputs."""
    storage = {}
    for var, value in values.items():
        storage[var] = (xp.asarray(value, dtype=var.type.dtype) if var.type.array_values
                        else var.type.filter(value))
    for node in toposort(outputs, blockers=storage):
        arrays = []
        for inp in node.inputs:
            if inp in storage:
                arrays.append(storage[inp])
            elif isinstance(inp, Constant):
                arrays.append(inp.data)
            elif _is_shared(inp):
                arrays.append(_shared_value(inp, xp))
            else:
                raise ValueError(f"evaluate: no value given for input {inp} "
                                 f"needed by {node.op.name}")
        for var, value in zip(node.outputs, run_node(node, arrays, xp)):
            storage[var] = value
    results = []
    for out in outputs:
        if out in storage:
            results.append(storage[out])
        elif isinstance(out, Constant):
            results.append(xp.asarray(out.data))
        elif _is_shared(out):
            results.append(_shared_value(out, xp).copy())
        else:
            raise ValueError(f"evaluate: no value given for input {out}")
    return results
