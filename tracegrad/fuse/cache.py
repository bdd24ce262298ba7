"""Caches of generated code, keyed by ``FusionSpec`` (structure, dtypes and
constants; never variable names), so equal clusters share one program."""
import threading
from collections import OrderedDict

MAX_ENTRIES = 1024


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


class _Templates:
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


CPU_TEMPLATES = _Templates()


def _build_cpu(spec):
    from tracegrad.fuse.cpu import CpuProgram
    structure = spec.structure
    template = CPU_TEMPLATES.get(structure)
    if template is not None:
        return template.with_constants(spec)
    program = CpuProgram(spec)
    CPU_TEMPLATES.put(structure, program)
    return program


def _build_cuda(spec):
    from tracegrad.fuse.cuda import render
    return render(spec)


CPU_PROGRAMS = SpecCache(_build_cpu, related=(CPU_TEMPLATES,))
CUDA_SOURCES = SpecCache(_build_cuda)


def cpu_program(spec):
    """The compiled ``CpuProgram`` of ``spec``."""
    return CPU_PROGRAMS.get(spec)


def cuda_source(spec):
    """The ``KernelSource`` of ``spec``."""
    return CUDA_SOURCES.get(spec)
