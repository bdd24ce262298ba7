"""Global settings: ``tg.config.floatX``, ``device``, ``optimizer``, ``num_threads``.

Read once from the environment variable ``TRACEGRAD_FLAGS`` (for example
``TRACEGRAD_FLAGS="floatX=float32,device=cuda"``) and changeable at run time
by attribute assignment (``tg.config.floatX = 'float32'``).
"""
import os

_CHOICES = {
    "floatX": ("float64", "float32", "float16"),
    "device": ("cpu", "cuda"),
    "optimizer": ("fast_run", "fast_compile", "None", "fast_math"),
}


def _choice(name):
    def validate(value):
        value = str(value)
        if name == "device" and (value == "gpu" or value.startswith("cuda")):
            value = "cuda"
        if value not in _CHOICES[name]:
            raise ValueError(
                f"tracegrad.config.{name} must be one of {_CHOICES[name]}, got {value!r}")
        return value
    return validate


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

    floatX = _setting("floatX", _choice("floatX"),
                      "dtype of T.scalar, T.matrix... ('float64' by default)")
    device = _setting("device", _choice("device"), "'cpu' (NumPy) or 'cuda' (CuPy)")
    optimizer = _setting("optimizer", _choice("optimizer"),
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
