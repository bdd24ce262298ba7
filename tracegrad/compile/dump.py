"""``function_dump``: Theano's way to hand a failing function to someone
else (its debugging FAQ).

    tg.function_dump('f.pkl', [x], y, updates=...)
    # elsewhere:
    with open('f.pkl', 'rb') as fh:
        d = pickle.load(fh)
    f = tg.function(**d)

The file holds the arguments of the ``tg.function`` call (graphs and shared
variables pickle with their values), so the loaded dict rebuilds the same
function.
"""
import pickle

__all__ = ["function_dump"]


def function_dump(filename, inputs, outputs=None, mode=None, updates=None, givens=None,
                  no_default_updates=False, accept_inplace=False, name=None,
                  rebuild_strict=True, allow_input_downcast=None, profile=None,
                  on_unused_input=None):
    """Pickle ``tg.function``'s arguments to ``filename`` (see the module
    doc). Theano's ``accept_inplace`` and ``rebuild_strict`` are accepted at
    their defaults only (tracegrad's graphs hold no in-place nodes before
    compiling, and givens always check types)."""
    if accept_inplace or not rebuild_strict:
        raise ValueError("function_dump: accept_inplace=True and rebuild_strict=False are "
                         "Theano options tracegrad's function does not take")
    args = dict(inputs=inputs, outputs=outputs, mode=mode, updates=updates, givens=givens,
                no_default_updates=no_default_updates, name=name,
                allow_input_downcast=allow_input_downcast, profile=bool(profile))
    if on_unused_input is not None:
        args["on_unused_input"] = on_unused_input
    with open(filename, "wb") as fh:
        pickle.dump(args, fh, protocol=pickle.HIGHEST_PROTOCOL)
