"""The casting rules moved to ``tracegrad.casting`` (below ``compile``, so
``SharedVariable.set_value`` uses them without importing ``compile``); this
module keeps the old import path."""
from tracegrad.casting import cast_value, check_shape, make_filter  # noqa: F401
