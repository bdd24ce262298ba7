"""Finding the system compiler and building a kernel's shared library.

The kernels are C++ (they share the row templates of the CUDA emitter, which
use overloading and templates). The compiler is ``$CXX``; else the C++
sibling of ``$CC`` (or ``$CC`` itself); else the sibling of the compiler
Python was built with (``sysconfig``'s ``CC``), else ``c++``, ``g++`` or
``clang++`` on ``PATH``. ``None`` when there is none: the NumPy tier runs
instead.

Flags: ``-O3 -march=native`` for this machine's vector units;
``-fopenmp-simd`` so the ``#pragma omp declare simd`` declarations of the
math functions make the vectoriser call glibc's libmvec (``_ZGV*``
routines); ``-fno-math-errno`` (errno is never read; with it set, math calls
would count as side effects and not vectorise); ``-ffp-contract=off`` (no
fused multiply-add: each ``a * b + c`` rounds twice, as NumPy's ufuncs do).
Never ``-ffast-math``: NaN, inf and signed zeros keep their IEEE behaviour.

``build(source)`` returns a loaded ``ctypes.CDLL``, from the disk cache
(``diskcache``) when an entry of the same key exists; the key hashes the
source, the compiler's identity (path and ``--version``), the flags, the
machine's CPU flags (``-march=native``) and tracegrad's version.
"""
import ctypes
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading

from tracegrad.backend import diskcache

FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-ffp-contract=off",
         "-fPIC", "-shared", "-std=c++11")

# libmvec's name (glibc): linked when present, and its vector math
# declarations emitted only then.
LIBMVEC = "libmvec.so.1"

_lock = threading.Lock()
_found = {}


def _cxx_of(cc):
    """The C++ driver beside C compiler command ``cc`` (a list)."""
    name = os.path.basename(cc[0])
    for c, cxx in (("clang", "clang++"), ("gcc", "g++"), ("cc", "c++")):
        if name == c or name.endswith("-" + c) or name.startswith(c + "-"):
            return [os.path.join(os.path.dirname(cc[0]), name.replace(c, cxx, 1))] + cc[1:]
    return None


def _candidates():
    """Compiler commands to try, in order. A compiler the user names
    (``CXX``, else ``CC``) is the only one tried: pointing it nowhere turns
    the tier off."""
    if os.environ.get("CXX"):
        yield shlex.split(os.environ["CXX"])
        return
    if os.environ.get("CC"):
        cc = shlex.split(os.environ["CC"])
        cxx = _cxx_of(cc)
        if cxx:
            yield cxx
        yield cc  # (a C driver compiles a .cpp file as C++ too)
        return
    cc = sysconfig.get_config_var("CC")
    if cc:
        cxx = _cxx_of(shlex.split(cc))
        if cxx:
            yield cxx
    for name in ("c++", "g++", "clang++"):
        yield [name]


def compiler():
    """``(command list, identity string)`` of the C++ compiler, or ``None``."""
    key = (os.environ.get("CXX"), os.environ.get("CC"))
    with _lock:
        if key in _found:
            return _found[key]
    found = None
    for cmd in _candidates():
        path = shutil.which(cmd[0]) if not os.path.isabs(cmd[0]) else cmd[0]
        if not path or not os.access(path, os.X_OK):
            continue
        try:
            version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                     timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if version:
            found = ([path] + cmd[1:], path + "\n" + version.strip())
            break
    with _lock:
        _found[key] = found
    return found


@functools.lru_cache(maxsize=None)   # (asked at every build; the answer never changes)
def has_libmvec():
    """Whether glibc's vector math library can be loaded."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL(LIBMVEC)
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    import platform
    return platform.machine() + platform.processor()


def cache_key(source, identity, flags):
    from tracegrad import __version__
    text = "\0".join([source, identity, " ".join(flags), _cpu_flags(), __version__])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


class CompileFailed(RuntimeError):
    """The compiler is missing or rejected the source (the NumPy tier runs)."""


# NumPy's array object (``PyArrayObject_fields``: public and unchanged since
# NumPy 1.7, in 2.x too), for sources that read arrays through the Python C
# API (``python_function``) without NumPy's headers.
NDARRAY_STRUCT = r"""
typedef struct {
    PyObject_HEAD
    char* data;
    int nd;
    Py_ssize_t* dimensions;
    Py_ssize_t* strides;
    PyObject* base;
    PyObject* descr;
    int flags;
} tg_array;
"""


def python_function(source, name):
    """Function ``name`` of C++ ``source`` that calls the Python C API:
    built against Python's headers (cached on disk as ``build``) and loaded
    with ``ctypes.PyDLL``, which keeps the GIL held during calls. ``None``
    without a compiler or Python's headers (the caller's Python path runs)."""
    include = "-I" + sysconfig.get_paths()["include"]
    try:
        # (the include flag rides in ``extra_libs``: ``build`` appends those
        # to the command line, and they are part of the cache key)
        lib = build(source, extra_libs=(include,))
        return getattr(ctypes.PyDLL(lib._name), name)
    except Exception:
        return None


def build(source, extra_libs=()):
    """The loaded library of C++ ``source`` (cached on disk); ``extra_libs``:
    more linker arguments (``-lpthread``)."""
    found = compiler()
    if found is None:
        raise CompileFailed("no C++ compiler found (set CXX or CC)")
    cmd, identity = found
    libs = (["-lmvec", "-lm"] if has_libmvec() else ["-lm"]) + list(extra_libs)
    flags = list(FLAGS) + libs
    key = cache_key(source, identity, flags)
    lib = diskcache.lookup(key, ctypes.CDLL)
    if lib is not None:
        return lib
    with tempfile.TemporaryDirectory(prefix="tracegrad-cc-") as tmp:
        src = os.path.join(tmp, "kernel.cpp")
        out = os.path.join(tmp, "kernel.so")
        with open(src, "w") as f:
            f.write(source)
        try:
            proc = subprocess.run(cmd + list(FLAGS) + [src, "-o", out] + libs,
                                  capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise CompileFailed(f"{cmd[0]} did not run: {exc}") from None
        if proc.returncode != 0:
            raise CompileFailed(f"{cmd[0]} failed:\n{proc.stderr[-2000:]}")
        with open(out, "rb") as f:
            data = f.read()
    diskcache.store(key, data)
    return ctypes.CDLL(diskcache.private_copy(data))
