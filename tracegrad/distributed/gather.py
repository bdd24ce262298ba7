"""One C call packing a bucket's passed-in arrays into its flat buffer.

``np.concatenate(xs, axis=None, out=flat)`` costs ~0.2 us per array
beyond the copy (NumPy looks up a transfer function for each): 64 arrays
of 16 KB took 37 us where one 1 MB ``memcpy`` takes 23 (one process, this
machine), and the bucket first needed 64 ``x.shape`` tuples and their
comparison with the layout's (~5 us). ``tg_gather`` does both in one pass:
for each array of a tuple it reads NumPy's array struct, checks the type
(``ndarray`` exactly), the dtype object (the layout's: NumPy's built-in
dtypes are singletons), C-contiguity and the lengths against the layout,
and copies it in place: 27 us for the same 64 arrays, checks included
(64 bare ``memcpy`` calls: 24.5; ``PyObject_GetBuffer`` per array instead
of the struct: 30).

Any array that does not fit (another type, dtype object, shape or layout)
makes it return -1, and the caller packs with NumPy instead (the bytes
written so far land in a buffer the caller owns and lays out again).
Without a C++ compiler (``backend/ccompiler.py``) ``gatherer()`` is
``None`` and the NumPy path runs always.

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

// NumPy's array object (``PyArrayObject_fields``: public and unchanged
// since NumPy 1.7, in 2.x too), so that no NumPy header is needed.
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
#define TG_C_CONTIGUOUS 0x0001

// Copy the arrays of the tuple `arrays` end to end into `dst` (`nbytes`
// long). Each must be of type `ndarray` exactly, C-contiguous, with the
// dtype object `descr` (items of `itemsize` bytes) and the lengths in
// `layout` (per array: ndim, then its lengths). Returns the bytes copied,
// or -1 at the first array that does not fit.
extern "C" Py_ssize_t tg_gather(PyObject* arrays, const Py_ssize_t* layout,
                                PyObject* ndarray, PyObject* descr, Py_ssize_t itemsize,
                                char* dst, Py_ssize_t nbytes) {
    if (!PyTuple_Check(arrays)) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(arrays), at = 0;
    const Py_ssize_t* s = layout;
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PyTuple_GET_ITEM(arrays, i);
        if ((PyObject*)Py_TYPE(item) != ndarray) return -1;
        tg_array* a = (tg_array*)item;
        if (a->descr != descr || !(a->flags & TG_C_CONTIGUOUS) || a->nd != s[0]) return -1;
        Py_ssize_t len = itemsize;
        for (int d = 0; d < a->nd; ++d) {
            if (a->dimensions[d] != s[1 + d]) return -1;
            len *= s[1 + d];
        }
        if (at + len > nbytes) return -1;
        memcpy(dst + at, a->data, (size_t)len);
        s += 1 + s[0];
        at += len;
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
    fn.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.py_object, ctypes.py_object,
                   ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_ssize_t]
    fn.restype = ctypes.c_ssize_t
    return fn
