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

``tg_gather_allreduce`` (``reducer()``) is the blocking bucket's whole
host step in one call: the arena's "free" test (reference counts of the
flat buffer and its views, as ``buffers.Arena.free``), the gather, and
``MPI_Allreduce(MPI_IN_PLACE, ...)`` called straight from C (the function
found in the MPI library mpi4py loaded, the handles from
``MPI._handleof``; the GIL is released around it, as mpi4py does).
Measured on the 1 MB bench in 64 passed-in arrays: the Python around the
copy and the collective (``Arena.free``, ``Arena.gather``'s argument
handling, mpi4py's buffer parsing, ``fill_arena``'s branches) cost ~10 us
per call in one process; the one call leaves ~2 (docs/distributed.md,
"Measured").
"""
import ctypes
import threading

__all__ = ["gatherer", "reducer", "Reduction", "SOURCE"]

SOURCE = r"""
#include <Python.h>
#include <string.h>

// tg_array: NumPy's array object (ccompiler.NDARRAY_STRUCT, put before).
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

// What ``tg_gather_allreduce`` needs of a bucket, made once per layout
// and communicator (``Reduction`` in Python: every field 8 bytes).
typedef struct {
    const Py_ssize_t* layout;
    PyObject* ndarray;
    PyObject* descr;
    Py_ssize_t itemsize;
    char* dst;
    Py_ssize_t nbytes;
    PyObject* flat;             // the arena's flat buffer (the views' base)
    Py_ssize_t flat_refs;       // its references when nothing but the arena holds it
    Py_ssize_t view_refs;       // a view's, likewise
    void* allreduce;            // MPI_Allreduce
    void* in_place;             // MPI_IN_PLACE
    Py_ssize_t count;
    size_t dtype, op, comm;     // MPI handles, as mpi4py's ``_handleof`` gives them
} tg_reduction;

// TG_HANDLE: the MPI library's handle type (int for MPICH, a pointer for
// Open MPI), substituted in the source before compiling.
typedef int (*tg_allreduce_fn)(void*, void*, int, TG_HANDLE, TG_HANDLE, TG_HANDLE);

// When nothing but the arena holds its buffer and views (``views``: the
// arena's tuple of them), gather ``arrays`` into the buffer (as
// ``tg_gather``) and all-reduce it in place. Returns -1, with nothing
// sent, when the buffer is held or an array does not fit; else the
// MPI error code (0: done).
extern "C" Py_ssize_t tg_gather_allreduce(PyObject* arrays, PyObject* views,
                                          const tg_reduction* r) {
    if (!PyTuple_Check(views) || Py_REFCNT(r->flat) > r->flat_refs) return -1;
    for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(views); i < n; ++i)
        if (Py_REFCNT(PyTuple_GET_ITEM(views, i)) > r->view_refs) return -1;
    if (tg_gather(arrays, r->layout, r->ndarray, r->descr, r->itemsize, r->dst,
                  r->nbytes) < 0) return -1;
    PyThreadState* state = PyEval_SaveThread();
    int err = ((tg_allreduce_fn)r->allreduce)(r->in_place, r->dst, (int)r->count,
                                              (TG_HANDLE)r->dtype, (TG_HANDLE)r->op,
                                              (TG_HANDLE)r->comm);
    PyEval_RestoreThread(state);
    return err;
}
"""

_lock = threading.Lock()
_BUILT = []
_REDUCERS = {}


class Reduction(ctypes.Structure):
    """``tg_reduction`` (the C source above)."""
    _fields_ = [(name, ctypes.c_void_p) for name in (
        "layout", "ndarray", "descr", "itemsize", "dst", "nbytes", "flat", "flat_refs",
        "view_refs", "allreduce", "in_place", "count", "dtype", "op", "comm")]


def gatherer():
    """``tg_gather`` (module doc) as a ctypes function, built once (cached
    on disk by ``ccompiler``), or ``None`` when it cannot be built."""
    if _BUILT:
        return _BUILT[0]
    with _lock:
        if not _BUILT:
            _BUILT.append(_build())
    return _BUILT[0]


def reducer():
    """``(tg_gather_allreduce, MPI_Allreduce's address, MPI_IN_PLACE)`` for
    the MPI library mpi4py runs on, built once, or ``None`` (no compiler,
    or handles neither ``int`` nor pointer-sized: mpi4py reduces then)."""
    if "fn" not in _REDUCERS:
        with _lock:
            if "fn" not in _REDUCERS:
                _REDUCERS["fn"] = _build_reducer()
    return _REDUCERS["fn"]


def _build_reducer():
    from mpi4py import MPI
    if not all(hasattr(MPI, name) for name in ("_sizeof", "_handleof", "_typedict")):
        return None     # (mpi4py's private helpers gone: its own calls serve)
    sizes = {MPI._sizeof(kind) for kind in (MPI.Comm, MPI.Datatype, MPI.Op)}
    if sizes not in ({4}, {ctypes.sizeof(ctypes.c_void_p)}):
        return None
    try:
        address = ctypes.cast(ctypes.CDLL(MPI.__file__).MPI_Allreduce, ctypes.c_void_p).value
    except (OSError, AttributeError):   # (no such symbol where mpi4py's module looks)
        return None
    handle = "int" if sizes == {4} else "void*"
    fn = _build(SOURCE.replace("TG_HANDLE", handle), "tg_gather_allreduce")
    if fn is None:
        return None
    fn.argtypes = [ctypes.py_object, ctypes.py_object, ctypes.c_void_p]
    fn.restype = ctypes.c_ssize_t
    return fn, address, int(MPI.IN_PLACE)


def _build(source=SOURCE.replace("TG_HANDLE", "int"), name="tg_gather"):
    from tracegrad.backend import ccompiler
    source = source.replace("#include <Python.h>\n",
                            "#include <Python.h>\n" + ccompiler.NDARRAY_STRUCT, 1)
    fn = ccompiler.python_function(source, name)
    if fn is None:      # (no compiler, no Python headers: NumPy packs)
        return None
    if name != "tg_gather":
        return fn
    fn.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.py_object, ctypes.py_object,
                   ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_ssize_t]
    fn.restype = ctypes.c_ssize_t
    return fn
