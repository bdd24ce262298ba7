"""Performance tunables live in ``tracegrad.config``, each with its reason,
and the modules that use them read those values."""
import pathlib
import re
import sys

import tracegrad.config  # noqa: F401  (``tracegrad.config`` the attribute is tg.config)
from tracegrad.compile import schedule
from tracegrad.backend import numpy as cpu
from tracegrad.fuse import cache, cluster
from tracegrad.backend.numpy import codegen, interp
from tracegrad.ops import nnet, shape_static
from tracegrad.rewrite import algebra, constant_fold, engine
from tracegrad import transforms
from tracegrad.backend import c as c_tier
from tracegrad.backend import crun
from tracegrad.fuse import reduce as fuse_reduce
from tracegrad import progress as progress_module

CONFIG = sys.modules["tracegrad.config"]
SOURCE = pathlib.Path(CONFIG.__file__).read_text()
TUNABLES = SOURCE[SOURCE.index("# ---------------------------------------------------------------"
                               "--- tunables"):]

USERS = {
    cpu: ["BLOCK_BYTES", "MIN_BLOCK", "BLOCK_MIN_NS", "THREADED_BLOCK_FACTOR", "THREAD_MIN_NS",
          "SINGLE_PASS_BLOCKS", "BLOCKS_PER_THREAD", "CALIBRATION_SIZE", "CALIBRATION_ROUNDS",
          "NATIVE_MIN_SIZE", "STEP_DISPATCH_NS", "NATIVE_SMALL_STEPS"],
    codegen: ["EAGER_FAST_LINES", "MAX_CODE"],
    cache: ["MAX_ENTRIES"],
    cluster: ["DEFAULT_MAX_OPERANDS"],
    interp: ["INTERPRET_LINES", "COMPILE_AFTER"],
    schedule: ["STRAIGHT_LINE_STEPS"],
    engine: ["MAX_PASSES", "MAX_REWRITES_PER_NODE"],
    nnet: ["SHORT_AXIS"],
    constant_fold: ["FOLD_MAX_BYTES"],
    transforms: ["TRANSFORM_MEMO_SIZE"],
    c_tier: ["NATIVE_THREADS_GAIN", "NATIVE_RETRY", "NATIVE_SMALL_AFTER", "NATIVE_RETRY_COST",
             "NATIVE_PROBES", "NATIVE_OUTLIER"],
    crun: ["NATIVE_MIN_PER_THREAD", "NATIVE_CHUNKS_PER_THREAD", "NATIVE_CHUNK_MIN",
           "NATIVE_CHUNK_MAX"],
    progress_module: ["PROGRESS_AFTER_S", "PROGRESS_EVERY_NODES"],
    fuse_reduce: ["SLAB_BYTES"],
}


def _tunable_names():
    return re.findall(r"^([A-Z][A-Z_0-9]*) = ", TUNABLES, flags=re.M)


def test_every_tunable_has_a_reason_comment():
    lines = TUNABLES.splitlines()
    names = _tunable_names()
    assert len(names) >= 18
    for name in names:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name} = "))
        # the comment block just above (a group of constants shares one)
        k = at - 1
        while k >= 0 and re.match(r"^[A-Z][A-Z_0-9]* = ", lines[k]):
            k -= 1
        comment = []
        while k >= 0 and lines[k].startswith("#"):
            comment.insert(0, lines[k])
            k -= 1
        text = " ".join(comment)
        assert len(text) > 40, f"{name} has no comment giving its reason"
        # the comment says how the value was arrived at, or that it was not measured
        assert re.search(r"[Mm]easured|[Nn]ot measured|not compared|not tuned", text), name


def test_the_using_modules_read_the_config_values():
    listed = set()
    for module, names in USERS.items():
        for name in names:
            assert getattr(module, name) == getattr(CONFIG, name), (module.__name__, name)
            listed.add(name)
    # (the fold budget moves to ops/static.py with the LAYERS work, whose
    # merge imports it from config; until then equal values)
    assert shape_static._FOLD_MAX_NODES == CONFIG.FOLD_MAX_NODES
    assert shape_static._FOLD_MAX_SIZE == CONFIG.FOLD_MAX_SIZE
    assert algebra.LIMIT == CONFIG.COLLECT_LIMIT
    listed |= {"FOLD_MAX_NODES", "FOLD_MAX_SIZE", "COLLECT_LIMIT"}
    assert listed == set(_tunable_names())


def test_the_using_modules_define_no_copy_of_their_own():
    # each value is written once, in config: the users import it
    for module, names in USERS.items():
        text = pathlib.Path(module.__file__).read_text()
        for name in names:
            assert not re.search(rf"^{name} = ", text, flags=re.M), (module.__name__, name)
