"""Type information for ``tracegrad/tensor/type.py`` (read by mypy and pyright).

A stub because the constructors (``dmatrix``, ``scalar``, ``fvectors``...) are
made in a loop at import time, which a type checker cannot follow, and
because the variables they make are ``TensorVariable``s, a class in a module
that builds on this one (tensor/variable.py imports type.py, so type.py
cannot import it back). tests/test_typing.py checks that every constructor
is declared here.
"""
from typing import Any, Iterable, overload

from tracegrad.tensor.variable import TensorVariable
from tracegrad.trace import Type

_Shape = Iterable[int | bool | None]

class StaticShapeError(TypeError): ...

def canonical_dtype(dtype: Any) -> str: ...

class TensorType(Type):
    """The type of an n-dimensional array of ``dtype`` with static ``shape``."""

    array_values: bool
    dtype: str
    shape: tuple[int | None, ...]
    name: str | None
    variable_class: Any  # TensorVariable, set by tensor/variable.py
    def __init__(self, dtype: Any, shape: _Shape | None = None,
                 broadcastable: Iterable[bool] | None = None,
                 name: str | None = None) -> None: ...
    @property
    def ndim(self) -> int: ...
    @property
    def broadcastable(self) -> tuple[bool, ...]: ...
    def clone(self, dtype: Any = None, shape: _Shape | None = None) -> TensorType: ...
    def __call__(self, name: str | None = None) -> TensorVariable: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def is_super(self, other: object) -> bool: ...
    def shape_str(self) -> str: ...
    def value_matches(self, value: Any) -> bool: ...

class _FloatXTensorType(TensorType):
    def __init__(self, shape: _Shape) -> None: ...
    def __call__(self, name: str | None = None, dtype: Any = None) -> TensorVariable: ...

class _Plural:
    """``T.dscalars``-style constructors: several variables at once."""

    @overload
    def __call__(self, count: int, /) -> list[TensorVariable]: ...
    @overload
    def __call__(self, names: str, /) -> Any: ...  # one variable for 'x', a list for 'xy'
    @overload
    def __call__(self, first: str, second: str, /, *names: str) -> list[TensorVariable]: ...

# as type.py: T's star import takes the types and constructors only
__all__ = [
    'TensorType',
    'tensor',
    'scalar',
    'scalars',
    'bscalar',
    'bscalars',
    'wscalar',
    'wscalars',
    'iscalar',
    'iscalars',
    'lscalar',
    'lscalars',
    'fscalar',
    'fscalars',
    'dscalar',
    'dscalars',
    'cscalar',
    'cscalars',
    'zscalar',
    'zscalars',
    'vector',
    'vectors',
    'bvector',
    'bvectors',
    'wvector',
    'wvectors',
    'ivector',
    'ivectors',
    'lvector',
    'lvectors',
    'fvector',
    'fvectors',
    'dvector',
    'dvectors',
    'cvector',
    'cvectors',
    'zvector',
    'zvectors',
    'matrix',
    'matrices',
    'bmatrix',
    'bmatrices',
    'wmatrix',
    'wmatrices',
    'imatrix',
    'imatrices',
    'lmatrix',
    'lmatrices',
    'fmatrix',
    'fmatrices',
    'dmatrix',
    'dmatrices',
    'cmatrix',
    'cmatrices',
    'zmatrix',
    'zmatrices',
    'row',
    'rows',
    'brow',
    'brows',
    'wrow',
    'wrows',
    'irow',
    'irows',
    'lrow',
    'lrows',
    'frow',
    'frows',
    'drow',
    'drows',
    'crow',
    'crows',
    'zrow',
    'zrows',
    'col',
    'cols',
    'bcol',
    'bcols',
    'wcol',
    'wcols',
    'icol',
    'icols',
    'lcol',
    'lcols',
    'fcol',
    'fcols',
    'dcol',
    'dcols',
    'ccol',
    'ccols',
    'zcol',
    'zcols',
    'tensor3',
    'tensor3s',
    'btensor3',
    'btensor3s',
    'wtensor3',
    'wtensor3s',
    'itensor3',
    'itensor3s',
    'ltensor3',
    'ltensor3s',
    'ftensor3',
    'ftensor3s',
    'dtensor3',
    'dtensor3s',
    'ctensor3',
    'ctensor3s',
    'ztensor3',
    'ztensor3s',
    'tensor4',
    'tensor4s',
    'btensor4',
    'btensor4s',
    'wtensor4',
    'wtensor4s',
    'itensor4',
    'itensor4s',
    'ltensor4',
    'ltensor4s',
    'ftensor4',
    'ftensor4s',
    'dtensor4',
    'dtensor4s',
    'ctensor4',
    'ctensor4s',
    'ztensor4',
    'ztensor4s',
    'tensor5',
    'tensor5s',
    'btensor5',
    'btensor5s',
    'wtensor5',
    'wtensor5s',
    'itensor5',
    'itensor5s',
    'ltensor5',
    'ltensor5s',
    'ftensor5',
    'ftensor5s',
    'dtensor5',
    'dtensor5s',
    'ctensor5',
    'ctensor5s',
    'ztensor5',
    'ztensor5s',
]

CONSTRUCTORS: dict[str, Any]

def tensor(dtype: Any = None, shape: _Shape | None = None, name: str | None = None,
           broadcastable: Iterable[bool] | None = None) -> TensorVariable: ...

scalar: _FloatXTensorType
scalars: _Plural
bscalar: TensorType
bscalars: _Plural
wscalar: TensorType
wscalars: _Plural
iscalar: TensorType
iscalars: _Plural
lscalar: TensorType
lscalars: _Plural
fscalar: TensorType
fscalars: _Plural
dscalar: TensorType
dscalars: _Plural
cscalar: TensorType
cscalars: _Plural
zscalar: TensorType
zscalars: _Plural
vector: _FloatXTensorType
vectors: _Plural
bvector: TensorType
bvectors: _Plural
wvector: TensorType
wvectors: _Plural
ivector: TensorType
ivectors: _Plural
lvector: TensorType
lvectors: _Plural
fvector: TensorType
fvectors: _Plural
dvector: TensorType
dvectors: _Plural
cvector: TensorType
cvectors: _Plural
zvector: TensorType
zvectors: _Plural
matrix: _FloatXTensorType
matrices: _Plural
bmatrix: TensorType
bmatrices: _Plural
wmatrix: TensorType
wmatrices: _Plural
imatrix: TensorType
imatrices: _Plural
lmatrix: TensorType
lmatrices: _Plural
fmatrix: TensorType
fmatrices: _Plural
dmatrix: TensorType
dmatrices: _Plural
cmatrix: TensorType
cmatrices: _Plural
zmatrix: TensorType
zmatrices: _Plural
row: _FloatXTensorType
rows: _Plural
brow: TensorType
brows: _Plural
wrow: TensorType
wrows: _Plural
irow: TensorType
irows: _Plural
lrow: TensorType
lrows: _Plural
frow: TensorType
frows: _Plural
drow: TensorType
drows: _Plural
crow: TensorType
crows: _Plural
zrow: TensorType
zrows: _Plural
col: _FloatXTensorType
cols: _Plural
bcol: TensorType
bcols: _Plural
wcol: TensorType
wcols: _Plural
icol: TensorType
icols: _Plural
lcol: TensorType
lcols: _Plural
fcol: TensorType
fcols: _Plural
dcol: TensorType
dcols: _Plural
ccol: TensorType
ccols: _Plural
zcol: TensorType
zcols: _Plural
tensor3: _FloatXTensorType
tensor3s: _Plural
btensor3: TensorType
btensor3s: _Plural
wtensor3: TensorType
wtensor3s: _Plural
itensor3: TensorType
itensor3s: _Plural
ltensor3: TensorType
ltensor3s: _Plural
ftensor3: TensorType
ftensor3s: _Plural
dtensor3: TensorType
dtensor3s: _Plural
ctensor3: TensorType
ctensor3s: _Plural
ztensor3: TensorType
ztensor3s: _Plural
tensor4: _FloatXTensorType
tensor4s: _Plural
btensor4: TensorType
btensor4s: _Plural
wtensor4: TensorType
wtensor4s: _Plural
itensor4: TensorType
itensor4s: _Plural
ltensor4: TensorType
ltensor4s: _Plural
ftensor4: TensorType
ftensor4s: _Plural
dtensor4: TensorType
dtensor4s: _Plural
ctensor4: TensorType
ctensor4s: _Plural
ztensor4: TensorType
ztensor4s: _Plural
tensor5: _FloatXTensorType
tensor5s: _Plural
btensor5: TensorType
btensor5s: _Plural
wtensor5: TensorType
wtensor5s: _Plural
itensor5: TensorType
itensor5s: _Plural
ltensor5: TensorType
ltensor5s: _Plural
ftensor5: TensorType
ftensor5s: _Plural
dtensor5: TensorType
dtensor5s: _Plural
ctensor5: TensorType
ctensor5s: _Plural
ztensor5: TensorType
ztensor5s: _Plural
