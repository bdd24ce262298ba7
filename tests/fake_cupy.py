"""A NumPy-backed stand-in for CuPy, strict where tracegrad could go wrong.

``installed()`` puts it in ``sys.modules`` as ``cupy`` and ``cupyx`` (and
resets tracegrad's CUDA backend), so ``device='cuda'`` runs on the CPU with
CuPy's rules. What it enforces as the real CuPy does:

- device arrays are their own type (``cupy.ndarray``, a wrapper, not a NumPy
  subclass); turning one into a NumPy array implicitly (``np.asarray``)
  raises ``TypeError``; ``.get()`` / ``cupy.asnumpy`` copy to the host;
- a NumPy array passed to a device function or mixed into device arithmetic
  raises ``TypeError: Unsupported type`` (scalars are fine);
- only functions CuPy has exist (the lists below); NumPy functions called on
  device arrays dispatch to them (``__array_ufunc__``/``__array_function__``)
  and fail when CuPy has no such function;
- reductions and integer indexing give 0-d device arrays, never scalars;
- ``ndarray.flags`` has no ``writeable``;
- ``ElementwiseKernel`` parses its typed parameter lists, checks argument
  types, dtypes and shapes like CuPy, and runs the kernel body and preamble
  with C semantics (``cinterp.py``: integer promotion, truncating integer
  division, ``max``/``min`` ignoring NaN, saturating float -> int casts,
  ambiguous math calls on integers refused as a compiler would). Every
  kernel is recorded in ``cupy.kernels`` with its source and call count;
- ``cuda.runtime.getDeviceCount`` (or the error of a machine without GPU),
  ``random.RandomState``, ``cupyx.scatter_add``, ``cupyx.scipy.special``.

Not modelled: asynchrony, streams, device memory limits, real compilation
(C++ overload resolution beyond the rules above).
"""
import contextlib
import sys
import types

import numpy as np

from cinterp import CProgram, CTYPE_OF_DTYPE

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")

# Names taken from CuPy's public namespace (functions and ufuncs it has).
UFUNCS = """absolute add arccos arccosh arcsin arcsinh arctan arctan2 arctanh bitwise_and
bitwise_not bitwise_or bitwise_xor cbrt ceil conj conjugate copysign cos cosh deg2rad
degrees divide equal exp exp2 expm1 fabs floor floor_divide fmax fmin fmod greater
greater_equal hypot invert isfinite isinf isnan ldexp left_shift less less_equal log
log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor
maximum minimum multiply negative nextafter not_equal power rad2deg radians reciprocal
remainder right_shift rint sign signbit sin sinh sqrt square subtract tan tanh
true_divide trunc""".split()
UFUNC_ALIASES = {"abs": "absolute", "mod": "remainder", "bitwise_invert": "invert"}

FUNCTIONS = """all allclose amax amin any arange argmax argmin argsort around array_equal
atleast_1d atleast_2d atleast_3d broadcast_arrays broadcast_to clip column_stack
concatenate count_nonzero cumprod cumsum diag diagflat diagonal diff dot dstack einsum
empty_like expand_dims eye flatnonzero flip fliplr flipud full_like hstack identity
imag inner isclose kron linspace matmul max mean median min moveaxis nan_to_num nanmax
nanmin nansum nonzero ones_like outer pad prod ptp ravel real repeat reshape roll
rollaxis round searchsorted sort split squeeze stack std sum swapaxes take
take_along_axis tensordot tile trace transpose tril triu unique var vstack where
zeros_like""".split()
CREATION = "empty zeros ones full".split()
HOST_FUNCTIONS = """can_cast dtype finfo iinfo isscalar ndim promote_types result_type
shape size""".split()
METHODS = """all any argmax argmin argsort astype clip conj conjugate copy cumprod cumsum
diagonal dot fill flatten max mean min nonzero prod ravel repeat reshape round sort
squeeze std sum swapaxes take trace transpose var view""".split()


# ------------------------------------------------------------ conversions
def _unwrap(value, strict=True):
    """Device arrays -> their NumPy storage; NumPy arrays refused when strict."""
    if type(value) is ndarray:
        return value._a
    if isinstance(value, np.ndarray):
        if strict:
            raise TypeError(f"Unsupported type {type(value)}")
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, strict) for v in value)
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return ndarray._of(value)
    if isinstance(value, np.generic):
        return ndarray._of(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _call(fn, args, kwargs, strict=True):
    args = _unwrap(args, strict)
    kwargs = {k: _unwrap(v, strict) for k, v in kwargs.items()}
    with np.errstate(all="ignore"):
        return fn(*args, **kwargs)


class Flags:
    """CuPy's flags: contiguity and ownership only (no ``writeable``)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, a):
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


# ------------------------------------------------------------ the array
class ndarray:
    """A device array: NumPy storage behind CuPy's interface."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype, order=order)

    @classmethod
    def _of(cls, a):
        obj = object.__new__(cls)
        obj._a = a
        return obj

    # attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: Flags(self._a))
    T = property(lambda self: ndarray._of(self._a.T))
    real = property(lambda self: ndarray._of(self._a.real))
    imag = property(lambda self: ndarray._of(self._a.imag))
    base = property(lambda self: None)
    # (``cupy.cuda.MemoryPointer``: the storage's address, for fake_nccl.py)
    data = property(lambda self: types.SimpleNamespace(ptr=self._a.ctypes.data))

    @property
    def __cuda_array_interface__(self):
        """CuPy's device pointer: the NumPy storage's (mpi4py hands it to MPI)."""
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "data": (a.ctypes.data, False),
                "version": 3, "strides": None if a.flags.c_contiguous else a.strides}

    # host transfer
    def get(self, stream=None, order="C", out=None):
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        np.copyto(self._a, np.asarray(arr))

    def tolist(self):
        return self._a.tolist()

    def item(self, *args):
        return self._a.item(*args)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __bool__(self):
        return bool(self._a)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __complex__(self):
        return complex(self._a)

    def __index__(self):
        return self._a.__index__()

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, strict=False)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, strict=False)] = _unwrap(value, strict=False)

    def __repr__(self):
        return "fake_" + repr(self._a)

    def __str__(self):
        return str(self._a)

    def __reduce__(self):
        return (_from_host, (self._a,))

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    # NumPy protocols: dispatch to the CuPy function of the same name
    def __array_ufunc__(self, uf, method, *inputs, **kwargs):
        fn = _UFUNC_OBJECTS.get(uf.__name__)
        if fn is None:
            return NotImplemented
        if method == "__call__":
            return fn(*inputs, **kwargs)
        bound = getattr(fn, method, None)
        return NotImplemented if bound is None else bound(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        fn = _FUNCTION_OBJECTS.get(func.__name__)
        if fn is None:
            return NotImplemented
        return fn(*args, **kwargs)


def _from_host(a):
    return ndarray._of(np.array(a))


def _method(name):
    def method(self, *args, **kwargs):
        return _wrap(_call(getattr(self._a, name), args, kwargs))
    method.__name__ = name
    return method


for _name in METHODS:
    setattr(ndarray, _name, _method(_name))

_OPERATORS = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
              "floordiv": "floor_divide", "mod": "remainder", "pow": "power",
              "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
              "lshift": "left_shift", "rshift": "right_shift", "matmul": "matmul"}
_COMPARISONS = {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
                "eq": "equal", "ne": "not_equal"}
_UNARY = {"neg": "negative", "abs": "absolute", "invert": "invert"}


def _operator(ufunc_name, reflected=False, inplace=False):
    def op(self, other):
        fn = _UFUNC_OBJECTS.get(ufunc_name) or _FUNCTION_OBJECTS[ufunc_name]
        if inplace:
            return fn(self, other, out=self)
        return fn(other, self) if reflected else fn(self, other)
    return op


for _dunder, _uf in _OPERATORS.items():
    setattr(ndarray, f"__{_dunder}__", _operator(_uf))
    setattr(ndarray, f"__r{_dunder}__", _operator(_uf, reflected=True))
    setattr(ndarray, f"__i{_dunder}__", _operator(_uf, inplace=True))
for _dunder, _uf in _COMPARISONS.items():
    setattr(ndarray, f"__{_dunder}__", _operator(_uf))
for _dunder, _uf in _UNARY.items():
    setattr(ndarray, f"__{_dunder}__",
            lambda self, _uf=_uf: _UFUNC_OBJECTS[_uf](self))
ndarray.__pos__ = lambda self: ndarray._of(self._a.copy())


class ufunc:
    """A CuPy ufunc (strict about NumPy arrays), with ``reduce`` & co."""

    def __init__(self, name, np_ufunc):
        self.name = self.__name__ = name
        self._np = np_ufunc
        self.nin, self.nout = np_ufunc.nin, np_ufunc.nout

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        result = _call(self._np, args, kwargs)
        if out is not None:
            return out if not isinstance(out, tuple) or len(out) > 1 else out[0]
        return _wrap(result)

    def reduce(self, *args, **kwargs):
        return _wrap(_call(self._np.reduce, args, kwargs))

    def accumulate(self, *args, **kwargs):
        return _wrap(_call(self._np.accumulate, args, kwargs))

    def outer(self, *args, **kwargs):
        return _wrap(_call(self._np.outer, args, kwargs))

    def at(self, a, indices, b=None):
        if type(a) is not ndarray:
            raise TypeError(f"Unsupported type {type(a)}")
        args = (indices,) if b is None else (indices, b)
        _call(self._np.at, (a,) + args, {})

    def __repr__(self):
        return f"<ufunc '{self.name}'>"


def _function(name, np_fn, strict=True, wrap=True):
    def fn(*args, **kwargs):
        result = _call(np_fn, args, kwargs, strict)
        return _wrap(result) if wrap else result
    fn.__name__ = name
    return fn


_UFUNC_OBJECTS = {}
_FUNCTION_OBJECTS = {}


def _asarray(a, dtype=None, order=None, *, blocking=False):
    if type(a) is ndarray:
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    # From the host: always a new buffer (a transfer), never a view.
    return ndarray._of(np.array(_unwrap(a, strict=False), dtype=dtype, order=order or "K",
                                copy=True))


def _array(a, dtype=None, copy=True, order="K", ndmin=0):
    return ndarray._of(np.array(_unwrap(a, strict=False), dtype=dtype, copy=True,
                                order=order, ndmin=ndmin))


def _asnumpy(a, stream=None, order="C", out=None):
    if type(a) is ndarray:
        return a.get(order=order)
    return np.asarray(a, order=order)


def _copyto(dst, src, casting="same_kind", where=None):
    if type(dst) is not ndarray:
        raise TypeError(f"Unsupported type {type(dst)}")
    kwargs = {"casting": casting}
    if where is not None:
        kwargs["where"] = where
    _call(np.copyto, (dst, src), kwargs)


def _may_share_memory(a, b, max_work=None):
    return np.may_share_memory(_unwrap(a, strict=False), _unwrap(b, strict=False))


# ------------------------------------------------------------ kernels
class ElementwiseKernel:
    """Records its source; a call checks the arguments like CuPy and runs
    the body with C semantics (``cinterp.CProgram``)."""

    registry = None  # the module's ``kernels`` list

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, **kwargs):
        self.in_params = _parse_params(in_params)
        self.out_params = _parse_params(out_params)
        self.in_text, self.out_text = in_params, out_params
        self.operation = operation
        self.name = name
        self.preamble = preamble
        self.return_tuple = return_tuple
        self.no_return = no_return
        self.calls = 0
        self._program = None
        type(self).registry.append(self)

    def __call__(self, *args, size=None, block_size=128, stream=None):
        nin, nout = len(self.in_params), len(self.out_params)
        if len(args) not in (nin, nin + nout):
            raise TypeError(f"Wrong number of arguments for {self.name!r}. It must be "
                            f"either {nin} or {nin + nout} (with outputs), but given "
                            f"{len(args)}.")
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"Unsupported type {type(a)}")
        ins, outs = list(args[:nin]), list(args[nin:])
        for (dtype, pname), a in zip(self.in_params, ins):
            if type(a) is ndarray and a.dtype != dtype:
                raise TypeError(f"Type is mismatched. {pname} {a.dtype} {dtype}")
        for (dtype, pname), a in zip(self.out_params, outs):
            if type(a) is not ndarray:
                raise TypeError("Output arguments type must be cupy.ndarray")
            if a.dtype != dtype:
                raise TypeError(f"Type is mismatched. {pname} {a.dtype} {dtype}")
        arrays = [a for a in ins + outs if type(a) is ndarray]
        if not arrays:
            raise ValueError("Loop size is undecided.")
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
        for a in outs:
            if a.shape != shape:
                raise ValueError("Out shape is mismatched")
        if not outs:
            outs = [ndarray._of(np.empty(shape, dtype)) for dtype, _ in self.out_params]
        self.calls += 1
        if 0 not in shape:
            self._run(ins, outs, shape)
        if self.no_return:
            return None
        return outs[0] if nout == 1 and not self.return_tuple else tuple(outs)

    def _run(self, ins, outs, shape):
        if self._program is None:
            names = [p for _, p in self.in_params + self.out_params]
            self._program = CProgram(self.operation, self.preamble, names)
        env = {}
        for (dtype, pname), a in zip(self.in_params, ins):
            if type(a) is ndarray:
                value = np.broadcast_to(a._a, shape)
            else:  # a scalar, cast to the parameter's type like CuPy
                value = np.full(shape, a).astype(dtype)
            env[pname] = (value, CTYPE_OF_DTYPE[dtype.name])
        targets = {pname: (a._a, CTYPE_OF_DTYPE[dtype.name])
                   for (dtype, pname), a in zip(self.out_params, outs)}
        with np.errstate(all="ignore"):
            self._program.run(env, targets)

    def source(self):
        return f"{self.in_text} -> {self.out_text}\n{self.operation}"


def _parse_params(text):
    params = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        words = item.split()
        if len(words) != 2:
            raise ValueError(f"fake cupy: unsupported parameter {item!r}")
        params.append((np.dtype(words[0]), words[1]))
    return params


# ------------------------------------------------------------ random
class RandomState:
    """``cupy.random.RandomState`` over NumPy's legacy generator."""

    def __init__(self, seed=None):
        self._rs = np.random.RandomState(None if seed is None else int(seed) % 2 ** 32)

    def random_sample(self, size=None, dtype=float):
        return _wrap(np.asarray(self._rs.random_sample(size)).astype(dtype))

    def standard_normal(self, size=None, dtype=float):
        return _wrap(np.asarray(self._rs.standard_normal(size)).astype(dtype))

    def binomial(self, n, p, size=None, dtype=int):
        return _wrap(np.asarray(_call(self._rs.binomial, (n, p, size), {})).astype(dtype))

    def randint(self, low, high=None, size=None, dtype="l"):
        return _wrap(np.asarray(_call(self._rs.randint, (low, high, size),
                                      {"dtype": dtype})))

    def choice(self, a, size=None, replace=True, p=None):
        return _wrap(_call(self._rs.choice, (a, size, replace, p), {}))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return _wrap(np.asarray(_call(self._rs.uniform, (low, high, size), {})).astype(dtype))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return _wrap(np.asarray(_call(self._rs.normal, (loc, scale, size), {})).astype(dtype))


# ------------------------------------------------------------ assembly
class CUDARuntimeError(RuntimeError):
    """What ``cupy.cuda.runtime`` raises."""


def make_modules(device_count=1, device_error=None):
    """``{module name: module}`` for ``sys.modules``: ``cupy`` and friends.

    ``device_count=0`` with ``device_error=None`` makes ``getDeviceCount``
    raise like CuPy on a machine without a GPU; ``device_error`` is then the
    message (default: cudaErrorNoDevice).
    """
    cupy = types.ModuleType("cupy")
    cupy.__file__ = __file__
    cupy.__version__ = "13.0.0+fake"
    cupy.is_fake = True
    cupy.ndarray = ndarray
    cupy.ufunc = ufunc
    for name in UFUNCS:
        obj = _UFUNC_OBJECTS[name] = ufunc(name, getattr(np, name))
        setattr(cupy, name, obj)
    for alias, name in UFUNC_ALIASES.items():
        setattr(cupy, alias, _UFUNC_OBJECTS[name])
    for name in FUNCTIONS:
        obj = _FUNCTION_OBJECTS[name] = _function(name, getattr(np, name))
        setattr(cupy, name, obj)
    for name in CREATION:
        setattr(cupy, name, _function(name, getattr(np, name)))
    for name in HOST_FUNCTIONS:
        setattr(cupy, name, _function(name, getattr(np, name), strict=False, wrap=False))
    for name in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64", "complex64", "complex128",
                 "pi", "e", "inf", "nan", "newaxis", "generic", "integer", "floating",
                 "number"):
        setattr(cupy, name, getattr(np, name))
    cupy.asarray = cupy.asanyarray = _asarray
    cupy.array = _array
    cupy.ascontiguousarray = lambda a, dtype=None: _asarray(
        np.ascontiguousarray(_unwrap(a)), dtype)
    cupy.asnumpy = _asnumpy
    cupy.copyto = _copyto
    cupy.may_share_memory = cupy.shares_memory = _may_share_memory
    cupy.get_array_module = lambda *args: cupy if any(
        type(a) is ndarray for a in args) else np
    cupy.kernels = []
    kernel_cls = type("ElementwiseKernel", (ElementwiseKernel,), {"registry": cupy.kernels})
    cupy.ElementwiseKernel = kernel_cls

    cuda = types.ModuleType("cupy.cuda")
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.CUDARuntimeError = CUDARuntimeError

    def get_device_count():
        if device_count < 1:
            raise CUDARuntimeError(device_error or
                                   "cudaErrorNoDevice: no CUDA-capable device is detected")
        return device_count
    runtime.getDeviceCount = get_device_count
    runtime.getDevice = lambda: 0
    runtime.getDeviceProperties = lambda i: {"name": b"Fake GPU (NumPy)",
                                             "totalGlobalMem": 1 << 30,
                                             "memoryClockRate": 1, "memoryBusWidth": 8}

    class Stream:
        ptr = 0     # (the null stream's handle)

        def synchronize(self):
            pass

    class Device:
        def __init__(self, i=0):
            self.id = i

        def synchronize(self):
            pass

    cuda.runtime = runtime
    cuda.Device = Device
    cuda.Stream = Stream
    cuda.get_current_stream = lambda: Stream()
    cuda.is_available = lambda: device_count > 0
    cupy.cuda = cuda
    cupy.is_available = cuda.is_available

    random = types.ModuleType("cupy.random")
    random.RandomState = RandomState
    cupy.random = random

    cupyx = types.ModuleType("cupyx")
    cupyx.is_fake = True

    def scatter_add(a, slices, value):
        if type(a) is not ndarray:
            raise TypeError(f"Unsupported type {type(a)}")
        _call(np.add.at, (a, slices, value), {})
    cupyx.scatter_add = scatter_add
    scipy_mod = types.ModuleType("cupyx.scipy")
    special = types.ModuleType("cupyx.scipy.special")
    try:
        import scipy.special as sp
    except ImportError:  # (SciPy is optional: the fake then has no cupyx.scipy.special functions)
        sp = None
    for name in ("erf", "erfc", "erfinv", "gamma", "gammaln", "psi", "digamma",
                 "polygamma", "expit", "log_expit", "logit", "xlogy", "log1p"):
        if sp is not None:
            setattr(special, name, _function(name, getattr(sp, name)))
    scipy_mod.special = special
    cupyx.scipy = scipy_mod
    return {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime,
            "cupy.random": random, "cupyx": cupyx, "cupyx.scipy": scipy_mod,
            "cupyx.scipy.special": special}


_NAMES = ("cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.random", "cupyx", "cupyx.scipy",
          "cupyx.scipy.special", "cupy.cuda.nccl")


@contextlib.contextmanager
def installed(device_count=1, device_error=None, modules=None):
    """Make ``import cupy`` give the fake (or, with ``modules={'cupy': None}``,
    fail) and reset tracegrad's CUDA backend; everything is restored after.
    Yields the fake ``cupy`` module (``None`` when blocked)."""
    import tracegrad.backend as backend
    import tracegrad.backend.cupy.kernel as fuse_cuda
    if modules is None:
        modules = make_modules(device_count, device_error)
    saved = {name: sys.modules.get(name, _MISSING) for name in _NAMES}
    saved_backend = backend._CUDA
    saved_kernels = dict(fuse_cuda._KERNELS)
    try:
        for name in _NAMES:
            sys.modules.pop(name, None)
        sys.modules.update(modules)
        backend._CUDA = None
        fuse_cuda._KERNELS.clear()
        yield modules.get("cupy")
    finally:
        for name, module in saved.items():
            if module is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        backend._CUDA = saved_backend
        fuse_cuda._KERNELS.clear()
        fuse_cuda._KERNELS.update(saved_kernels)


_MISSING = object()


def to_host(value):
    """A NumPy array from a fake device array (or anything else)."""
    return value.get() if type(value) is ndarray else np.asarray(value)


__all__ = ["installed", "make_modules", "ndarray", "to_host"]
