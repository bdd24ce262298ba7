"""Write docs/theano-names.md: which names of Theano's documented API
tracegrad provides, and where.

``THEANO`` below lists the public names of Theano 1.0's library reference,
module by module (the names tutorials and ported code import). Each name is
*looked up*, not assumed: ``theano.X.name`` is first sought at the same path
with ``tracegrad`` for ``theano`` (``tracegrad.X.name``); failing that, in
the namespaces of ``ELSEWHERE`` (the name may live in another module, e.g.
``theano.gradient.verify_grad`` is ``tracegrad.testing.verify_grad``).
Status:

- **same path**: ``import tracegrad.X; tracegrad.X.name`` works;
- **elsewhere**: not at that path, but in the module shown;
- **missing**: not provided; docs/porting-from-theano.md gives the
  replacement (tests/test_docs.py checks that it names every such name).

Usage: ``python tools/theano_names.py [--check]`` (``--check`` compares with
the committed table instead of writing it).
"""
import argparse
import difflib
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TABLE = ROOT / "docs" / "theano-names.md"
SAME, ELSEWHERE_, MISSING = "same path", "elsewhere", "missing"

_CONSTRUCTORS = ("scalar vector matrix row col tensor3 tensor4 tensor5 "
                 "dscalar fscalar iscalar lscalar bscalar wscalar cscalar zscalar "
                 "dvector fvector ivector lvector bvector wvector cvector zvector "
                 "dmatrix fmatrix imatrix lmatrix bmatrix wmatrix cmatrix zmatrix "
                 "drow frow irow lrow dcol fcol icol lcol dtensor3 ftensor3 itensor3 "
                 "dtensor4 ftensor4 itensor4 dtensor5 ftensor5 "
                 "scalars vectors matrices rows cols dscalars fscalars iscalars lscalars "
                 "dvectors fvectors ivectors lvectors dmatrices fmatrices imatrices lmatrices "
                 "tensor TensorType TensorVariable TensorConstant")

# Theano 1.0's documented public names, by module.
THEANO = {
    "theano": (
        "function shared In Out Param grad scan scan_checkpoints foldl foldr map reduce "
        "config dot clone pp printing tensor sparse ifelse gradient compile sandbox scalar "
        "Variable Constant Apply Op Type SharedVariable shared_constructor OrderedUpdates "
        "Mode ProfileStats Lop Rop change_flags function_dump"),
    "theano.tensor": _CONSTRUCTORS + " " + (
        "as_tensor_variable as_tensor constant cast shape reshape flatten transpose "
        "specify_shape shape_padleft shape_padright shape_padaxis patternbroadcast "
        "addbroadcast unbroadcast squeeze tile roll concatenate stack stacklists join split "
        "arange mgrid ogrid zeros ones zeros_like ones_like fill alloc eye identity_like "
        "second tensordot dot batched_dot batched_tensordot outer "
        "max min argmax argmin max_and_argmax sum prod mean var std all any "
        "abs_ exp exp2 expm1 log log2 log10 log1p sqrt sqr sgn ceil floor round iround trunc "
        "clip inv pow maximum minimum neg add sub mul true_div int_div mod "
        "sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh "
        "deg2rad rad2deg erf erfc erfcx erfinv erfcinv gamma gammaln psi tri_gamma "
        "chi2sf j0 j1 jv i0 i1 iv "
        "real imag angle conj complex complex_from_polar "
        "lt gt le ge eq neq isnan isinf isclose allclose and_ or_ xor invert "
        "bitwise_and bitwise_or bitwise_xor bitwise_not switch where largest smallest "
        "set_subtensor inc_subtensor take argsort sort cumsum cumprod diff bincount repeat "
        "fill_diagonal fill_diagonal_offset diag diagonal nonzero nonzero_values "
        "flatnonzero ravel_multi_index unravel_index choose "
        "grad jacobian hessian Lop Rop verify_grad get_scalar_constant_value "
        "NotScalarConstantError nnet signal nlinalg slinalg extra_ops shared_randomstreams "
        "fft xlogx"),
    "theano.tensor.nnet": (
        "sigmoid ultra_fast_sigmoid hard_sigmoid softplus softsign softmax logsoftmax relu "
        "elu selu binary_crossentropy sigmoid_binary_crossentropy categorical_crossentropy "
        "crossentropy_softmax_1hot crossentropy_categorical_1hot conv2d conv3d "
        "conv2d_transpose abstract_conv h_softmax bn neighbours"),
    "theano.tensor.nnet.neighbours": "images2neibs neibs2images",
    "theano.tensor.nnet.bn": "batch_normalization batch_normalization_train "
                             "batch_normalization_test",
    "theano.tensor.signal.pool": "pool_2d pool_3d max_pool_2d_same_size",
    "theano.tensor.signal.downsample": "max_pool_2d",
    "theano.tensor.signal.conv": "conv2d",
    "theano.tensor.nlinalg": (
        "matrix_inverse pinv det eig eigh svd qr trace diag extract_diag alloc_diag "
        "matrix_dot norm tensorinv tensorsolve lstsq"),
    "theano.tensor.slinalg": (
        "cholesky solve solve_lower_triangular solve_upper_triangular solve_symmetric "
        "eigvalsh expm kron"),
    "theano.tensor.extra_ops": (
        "cumsum cumprod diff bincount squeeze repeat bartlett fill_diagonal "
        "fill_diagonal_offset to_one_hot unique ravel_multi_index unravel_index "
        "searchsorted compress"),
    "theano.tensor.fft": "rfft irfft",
    "theano.tensor.shared_randomstreams": "RandomStreams",
    "theano.sandbox.rng_mrg": "MRG_RandomStreams",
    "theano.ifelse": "ifelse",
    "theano.scan_module": "scan until scan_checkpoints",
    "theano.printing": "pp pprint debugprint pydotprint Print min_informative_str",
    "theano.compile": (
        "function In Out Mode MonitorMode ProfileStats shared SharedVariable DebugMode "
        "get_mode as_op"),
    "theano.compile.nanguardmode": "NanGuardMode",
    "theano.gradient": (
        "grad jacobian hessian Lop Rop verify_grad consider_constant zero_grad "
        "disconnected_grad grad_clip grad_scale undefined_grad subgraph_grad numeric_grad"),
    "theano.sparse": (
        "csc_matrix csr_matrix SparseType as_sparse_variable dense_from_sparse "
        "csr_from_dense csc_from_dense structured_dot dot true_dot sampling_dot sp_sum "
        "add mul transpose sp_ones_like row_scale col_scale verify_grad_sparse"),
    "theano.scalar": "upcast",
}

# Where a name missing at its own path is sought, in this order.
ELSEWHERE = ["tracegrad", "tracegrad.tensor", "tracegrad.tensor.nnet",
             "tracegrad.tensor.nlinalg", "tracegrad.grad", "tracegrad.testing",
             "tracegrad.printing", "tracegrad.compile", "tracegrad.compile.mode",
             "tracegrad.scan"]


# Theano names that are modules: found only as the module at the same path
# (``theano.scalar`` is not ``T.scalar``, ``theano.gradient`` not ``np.gradient``).
MODULES = set(THEANO) | {"theano.sandbox", "theano.tensor.signal",
                         "theano.tensor.nnet.abstract_conv"}


def _module(path):
    try:
        module = importlib.import_module(path)
    except ImportError:
        return None
    # Only this checkout's modules: an editable install of another checkout
    # can answer for a submodule this one does not have.
    where = getattr(module, "__file__", None)
    if where is not None and ROOT not in Path(where).resolve().parents:
        return None
    return module


def locate(theano_module, name):
    """``(status, tracegrad module path or None)`` for ``theano_module.name``."""
    own = "tracegrad" + theano_module[len("theano"):]
    if f"{theano_module}.{name}" in MODULES:
        return (SAME, own) if _module(f"{own}.{name}") is not None else (MISSING, None)
    module = _module(own)
    if module is not None and hasattr(module, name):
        return SAME, own
    for other in ELSEWHERE:
        module = _module(other)
        found = getattr(module, name, None) if module is not None else None
        if found is not None and not inspect.ismodule(found):
            return ELSEWHERE_, other
    return MISSING, None


def table():
    """All rows: ``{theano module: [(name, status, where)]}``."""
    out = {}
    for theano_module, names in THEANO.items():
        rows = []
        for name in sorted(set(names.split()), key=str.lower):
            status, where = locate(theano_module, name)
            rows.append((name, status, where))
        out[theano_module] = rows
    return out


def render(rows):
    lines = [
        "# Theano names in tracegrad", "",
        "Generated by `python tools/theano_names.py` (do not edit by hand; rerun it "
        "after adding a name). Each name of Theano 1.0's documented API is looked up: "
        "*same path* when `theano.X.name` is `tracegrad.X.name`; *elsewhere* when it "
        "is found in the module shown instead; *missing* when tracegrad does not "
        "provide it — [Porting from Theano](porting-from-theano.md) gives the "
        "replacement of every name that is elsewhere or missing.", "",
        "| Theano module | same path | elsewhere | missing | total |",
        "| --- | --- | --- | --- | --- |",
    ]
    for module, entries in rows.items():
        count = {s: sum(1 for e in entries if e[1] == s) for s in (SAME, ELSEWHERE_, MISSING)}
        lines.append(f"| `{module}` | {count[SAME]} | {count[ELSEWHERE_]} | "
                     f"{count[MISSING]} | {len(entries)} |")
    for module, entries in rows.items():
        lines += ["", f"## {module}", "", "| name | tracegrad |", "| --- | --- |"]
        for name, status, where in entries:
            if status == SAME:
                cell = f"`{where}.{name}`"
            elif status == ELSEWHERE_:
                cell = f"elsewhere: `{where}.{name}`"
            else:
                cell = "missing (see the porting guide)"
            lines.append(f"| `{name}` | {cell} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed table instead of writing it")
    args = parser.parse_args(argv)
    text = render(table())
    if args.check:
        old = TABLE.read_text()
        if old != text:
            print(f"{TABLE.relative_to(ROOT)} is out of date: run python tools/theano_names.py")
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), "committed", "now"))
            return 1
        return 0
    TABLE.write_text(text)
    print(f"wrote {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
