"""One C call packing a bucket's passed-in arrays into its flat buffer.

``np.concatenate(xs, axis=None, out=flat)`` costs ~0.2 us per array
beyond the copy (NumPy looks up a transfer function for each): 64 arrays
of 16 KB took 37 us where one 1 MB ``memcpy`` takes 23 (one process, this
machine), and the bucket first needed 64 ``x.shape`` tuples and their
comparison with the layout's (~5 us). ``tg_gather`` does both in one pass:
for each array of a tuple it takes the buffer (``PyObject_GetBuffer``,
C-contiguous), checks its item format and shape against the layout's, and
copies it in place (29-32 us for the same 64 arrays, checks included).

Any array that does not fit (another shape or format, not C-contiguous,
no buffer) makes it return -1, and the caller packs with NumPy instead
(the bytes written so far land in a buffer the caller owns and lays out
again). Without a C++ compiler (``backend/ccompiler.py``) ``gatherer()``
is ``None`` and the NumPy path runs always.

The library calls the Python C API, so it is loaded with ``ctypes.PyDLL``
(the GIL is held during the call, unlike ``ctypes.CDLL``).
"""
import ctypes
import sysconfig
import threading

__all__ = ["gatherer", "SOURCE"]

SOURCE = r"""
#include <Python.h>
#include <string.h>

// Copy the buffers of the tuple `arrays` end to end into `dst` (`nbytes`
// long). `layout` holds, per array, its ndim then its lengths; `format` is
// the item format every buffer must have. Returns the bytes copied, or -1
// at the first array that does not fit (nothing is raised).
extern "C" Py_ssize_t tg_gather(PyObject* arrays, const Py_ssize_t* layout,
                                const char* format, char* dst, Py_ssize_t nbytes) {
    if (!PyTuple_Check(arrays)) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(arrays), at = 0;
    const Py_ssize_t* s = layout;
    for (Py_ssize_t i = 0; i < n; ++i) {
        Py_buffer v;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(arrays, i), &v,
                               PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();
            return -1;
        }
        int ok = v.ndim == s[0] && at + v.len <= nbytes && v.format != NULL
                 && strcmp(v.format, format) == 0;
        for (int d = 0; ok && d < v.ndim; ++d) ok = v.shape[d] == s[1 + d];
        if (ok) memcpy(dst + at, v.buf, (size_t)v.len);
        s += 1 + s[0];
        at += v.len;
        PyBuffer_Release(&v);
        if (!ok) return -1;
    }
    return at == nbytes ? at : -1;
}
"""

_lock = threading.Lock()
_BUILT = []


def gatherer():
    """``tg_gather`` (module doc) as a ctypes function, built once (cached
    on disk by ``ccompiler``), or ``None`` when it cannot be built."""
    if _BUILT:
        return _BUILT[0]
    with _lock:
        if not _BUILT:
            _BUILT.append(_build())
    return _BUILT[0]


def _build():
    from tracegrad.backend import ccompiler
    include = "-I" + sysconfig.get_paths()["include"]
    try:
        # (the include flag rides in ``extra_libs``: ``build`` appends those
        # to the command line, and they are part of the cache key)
        lib = ccompiler.build(SOURCE, extra_libs=(include,))
        fn = ctypes.PyDLL(lib._name).tg_gather
    except Exception:   # (no compiler, no Python headers: NumPy packs)
        return None
    fn.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                   ctypes.c_ssize_t]
    fn.restype = ctypes.c_ssize_t
    return fn
