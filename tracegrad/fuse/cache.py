"""Caches of generated code, keyed by ``FusionSpec`` (structure, dtypes and
constants; never variable names), so equal clusters share one program.
The caches themselves live beside their builders: ``cpu.CPU_PROGRAMS`` (with
``cpu.CPU_TEMPLATES``, a ``Templates``), ``cuda.CUDA_SOURCES``."""
import threading
from collections import OrderedDict

from tracegrad.config import MAX_ENTRIES  # (a tunable: see tracegrad/config.py)


class SpecCache:
    """A thread-safe bounded map from spec to the code built for it (the
    oldest entry goes first when full)."""

    def __init__(self, build, max_entries=MAX_ENTRIES, related=()):
        self._build = build
        # caches the built entries derive from, cleared with this one
        self._related = tuple(related)
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, spec):
        entry = self._entries.get(spec)
        if entry is not None:
            self.hits += 1
            return entry
        built = self._build(spec)  # outside the lock: building may be slow
        with self._lock:
            entry = self._entries.get(spec)
            if entry is None:
                self.misses += 1
                entry = self._entries[spec] = built
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return entry

    def clear(self):
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0
        for cache in self._related:
            cache.clear()

    def __len__(self):
        return len(self._entries)


class Templates:
    """The last program built per ``FusionSpec.structure`` (bounded, oldest
    first out): a spec equal in structure to one already built is made from
    it by rebinding its constants (``CpuProgram.with_constants``)."""

    def __init__(self, max_entries=MAX_ENTRIES):
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, structure):
        with self._lock:
            return self._entries.get(structure)

    def put(self, structure, program):
        with self._lock:
            self._entries[structure] = program
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()
