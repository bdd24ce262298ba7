"""Global settings: ``tg.config.floatX``, ``device``, ``optimizer``, ``num_threads``.

Read once from the environment variable ``TRACEGRAD_FLAGS`` (for example
``TRACEGRAD_FLAGS="floatX=float32,device=cuda"``) and changeable at run time
by attribute assignment (``tg.config.floatX = 'float32'``).
"""
import os

_CHOICES = {
    "floatX": ("float64", "float32", "float16"),
    "device": ("cpu", "cuda"),
    "optimizer": ("fast_run", "fast_compile", "None"),
}


class Config:
    """Settings object; assignment validates the value."""

    def __init__(self):
        object.__setattr__(self, "_values", {
            "floatX": "float64",
            "device": "cpu",
            "optimizer": "fast_run",
            "num_threads": min(4, os.cpu_count() or 1),
        })

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"tracegrad.config has no setting {name!r}") from None

    def __setattr__(self, name, value):
        if name not in self._values:
            raise AttributeError(
                f"tracegrad.config has no setting {name!r}; known: {sorted(self._values)}")
        if name == "num_threads":
            value = int(value)
            if value < 1:
                raise ValueError("tracegrad.config.num_threads must be >= 1")
        else:
            value = str(value)
            if name == "device" and value.startswith("cuda"):
                value = "cuda"
            if name == "device" and value == "gpu":
                value = "cuda"
            if value not in _CHOICES[name]:
                raise ValueError(
                    f"tracegrad.config.{name} must be one of {_CHOICES[name]}, got {value!r}")
        self._values[name] = value

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
