"""Global settings: ``tg.config.floatX``, ``device``, ``optimizer``, ``num_threads``.

Read once from the environment variable ``TRACEGRAD_FLAGS`` (for example
``TRACEGRAD_FLAGS="floatX=float32,device=cuda"``) and changeable at run time
by attribute assignment (``tg.config.floatX = 'float32'``).

This module is also the one place that turns the spellings users give for a
mode (``'FAST_RUN'``, ``'fast_run'``...) or a device (``'gpu'``, ``'cuda:0'``,
``'CPU'``...) into tracegrad's own names (``normalize_mode``,
``normalize_device``), and it holds the performance tunables (the constants
below ``config``). It imports nothing from tracegrad: every layer may import it.
"""
import os

# The optimizer modes (``tg.config.optimizer``, ``function(mode=)``); what
# each runs is ``tracegrad.rewrite.engine.MODES``.
MODES = ("fast_run", "fast_compile", "None", "fast_math")
DEVICES = ("cpu", "cuda")
_FLOAT_DTYPES = ("float64", "float32", "float16")


def normalize_mode(mode):
    """The optimizer mode name of ``mode``: ``None`` is ``tg.config.optimizer``;
    names are case-insensitive (Theano's ``'FAST_RUN'``, ``'FAST_COMPILE'``,
    ``'FAST_MATH'``; ``'none'`` is ``'None'``). ``ValueError`` naming the bad
    value and the accepted ones otherwise."""
    if mode is None:
        return config.optimizer
    name = str(mode)
    lowered = name.lower()
    canonical = "None" if lowered == "none" else lowered
    if canonical not in MODES:
        raise ValueError(f"unknown optimizer mode {name!r}; accepted: {', '.join(MODES)} "
                         "(any case), a tracegrad.compile.Mode or a list of phases")
    return canonical


def normalize_device(device):
    """The device name of ``device``: ``None`` is ``tg.config.device``;
    ``'cpu'`` in any case is ``'cpu'``; ``'cuda'``, ``'cuda0'``, ``'cuda:1'``,
    ``'gpu'`` (any case) are ``'cuda'``. ``ValueError`` naming the bad value
    and the accepted ones otherwise."""
    if device is None:
        return config.device
    name = str(device)
    lowered = name.lower()
    if lowered == "gpu" or lowered.startswith("cuda"):
        return "cuda"
    if lowered != "cpu":
        raise ValueError(f"unknown device {name!r}; accepted: 'cpu', 'cuda' "
                         "('gpu', 'cuda0', 'cuda:1' mean 'cuda'; any case)")
    return "cpu"


def _float_dtype(value):
    value = str(value)
    if value not in _FLOAT_DTYPES:
        raise ValueError(
            f"tracegrad.config.floatX must be one of {_FLOAT_DTYPES}, got {value!r}")
    return value


def _positive_int(value):
    value = int(value)
    if value < 1:
        raise ValueError("tracegrad.config.num_threads must be >= 1")
    return value


def _setting(name, validate, doc):
    def get(self):
        return self._values[name]

    def set(self, value):
        self._values[name] = validate(value)
    return property(get, set, doc=doc)


class Config:
    """Settings object; assignment validates the value."""

    floatX = _setting("floatX", _float_dtype,
                      "dtype of T.scalar, T.matrix... ('float64' by default)")
    # (a setting is never None: assigning None to optimizer means 'None', no
    # rewrites, as in Theano; to device it is refused)
    device = _setting("device", lambda v: normalize_device(str(v)),
                      "'cpu' (NumPy) or 'cuda' (CuPy)")
    optimizer = _setting("optimizer", lambda v: normalize_mode(str(v)),
                         "rewrite phases: 'fast_run', 'fast_compile', 'None' or "
                         "'fast_math' (fast_run plus value-changing algebra)")
    num_threads = _setting("num_threads", _positive_int,
                           "threads for blocked elementwise loops on the CPU")

    def __init__(self):
        object.__setattr__(self, "_values", {
            "floatX": "float64",
            "device": "cpu",
            "optimizer": "fast_run",
            "num_threads": min(4, os.cpu_count() or 1),
        })

    def __setattr__(self, name, value):
        if not isinstance(getattr(type(self), name, None), property):
            raise AttributeError(
                f"tracegrad.config has no setting {name!r}; known: {sorted(self._values)}")
        object.__setattr__(self, name, value)

    def __repr__(self):
        return "tracegrad.config(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


def parse_flags(text):
    """Parse ``"floatX=float32,device=cuda"`` into a dict."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in item:
            raise ValueError(f"TRACEGRAD_FLAGS entry {item!r} is not of the form name=value")
        key, value = (s.strip() for s in item.split("=", 1))
        out[key] = value
    return out


config = Config()
for _key, _value in parse_flags(os.environ.get("TRACEGRAD_FLAGS", "")).items():
    setattr(config, _key, _value)
