"""A small interpreter for the CUDA C that tracegrad generates, over NumPy
arrays (used by the fake CuPy's ``ElementwiseKernel``).

It understands the statements of a generated kernel body (``const T v = e;``,
``out = e;``) and the preamble's one-line templates (``template <typename T>
__device__ __forceinline__ T f(T a, ...) { T r = e; return e; }``), with
expressions made of literals, casts (``(T)e``, ``T(e)``), calls, unary
``- ! ~``, binary arithmetic, comparison, bitwise and logical operators and
``?:``. Values carry their C type and follow C/CUDA rules rather than
NumPy's:

- integer promotion (``bool``, ``char``, ``short`` -> ``int``) and the usual
  arithmetic conversions;
- integer ``/`` truncates and ``%`` takes the dividend's sign (a zero divisor
  gives -1 and the dividend: undefined in C, never NumPy's 0);
- ``max``/``min`` on floats are ``fmax``/``fmin`` (NaN is ignored);
- float -> integer casts truncate and saturate, NaN -> 0 (``cvt.rzi.sat``);
- a float math function called with an integer argument is an ambiguous
  overload (refused, as NVRTC refuses it); template arguments must have the
  same type (no deduction across conversions);
- ``float16`` (CuPy's class) converts to ``float`` in mixed arithmetic.
"""
import re

import numpy as np
try:
    import scipy.special as sp
except ImportError:  # SciPy is optional: tracegrad's own fallbacks
    sp = None


class CompileError(Exception):
    """What NVRTC would reject."""


CTYPES = {"bool": np.bool_, "signed char": np.int8, "char": np.int8, "short": np.int16,
          "int": np.int32, "long": np.int64, "long long": np.int64,
          "unsigned char": np.uint8, "unsigned short": np.uint16,
          "unsigned int": np.uint32, "unsigned long long": np.uint64,
          "float16": np.float16, "float": np.float32, "double": np.float64,
          "complex<float>": np.complex64, "complex<double>": np.complex128}
CTYPE_OF_DTYPE = {"bool": "bool", "int8": "signed char", "int16": "short", "int32": "int",
                  "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
                  "uint32": "unsigned int", "uint64": "unsigned long long",
                  "float16": "float16", "float32": "float", "float64": "double",
                  "complex64": "complex<float>", "complex128": "complex<double>"}
_SMALL_INTS = ("bool", "signed char", "char", "short", "unsigned char", "unsigned short")
_INT_RANK = {"int": 1, "unsigned int": 1, "long": 2, "long long": 2,
             "unsigned long long": 2}
_TYPE_WORDS = {"signed", "unsigned", "char", "short", "int", "long", "float", "double",
               "bool", "float16", "complex"}


def is_int(t):
    return t in _INT_RANK or t in _SMALL_INTS


def is_float(t):
    return t in ("float16", "float", "double")


def is_complex(t):
    return t.startswith("complex")


def promote(t):
    """Integer promotion; CuPy's float16 meets other types as ``float``."""
    if t in _SMALL_INTS:
        return "int"
    return "float" if t == "float16" else t


def common(a, b):
    """The usual arithmetic conversions of C++."""
    a, b = promote(a), promote(b)
    if a == b:
        return a
    if is_complex(a) or is_complex(b):
        wide = "complex<double>" in (a, b) or "double" in (a, b)
        return "complex<double>" if wide else "complex<float>"
    if "double" in (a, b):
        return "double"
    if "float" in (a, b):
        return "float"
    ua, ub = a.startswith("unsigned"), b.startswith("unsigned")
    ra, rb = _INT_RANK[a], _INT_RANK[b]
    if ua == ub:
        return a if ra >= rb else b
    u, s = (a, b) if ua else (b, a)
    if _INT_RANK[u] >= _INT_RANK[s]:
        return u
    return s  # long long holds every unsigned int


def c_convert(arr, src, dst):
    """``arr`` (C type ``src``) converted to C type ``dst`` as CUDA does."""
    if src == dst:
        return arr
    dt = np.dtype(CTYPES[dst])
    if dst == "bool":
        return arr != 0
    if is_complex(src) and not is_complex(dst):
        raise CompileError(f"no conversion from {src} to {dst}")
    if is_int(dst) and (is_float(src)):
        info = np.iinfo(dt)
        x = np.trunc(arr.astype(np.float64))
        x = np.where(np.isnan(x), 0.0, x)
        hi = x >= float(info.max)
        lo = x <= float(info.min)
        safe = np.where(hi | lo, 0.0, x).astype(dt)
        return np.where(hi, info.max, np.where(lo, info.min, safe)).astype(dt)
    return arr.astype(dt)


# ------------------------------------------------------------ tokens
_TOKEN = re.compile(r"""\s*(?:
    (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?:ULL|LL|U|L|f|F)?)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op>&&|\|\||==|!=|<=|>=|<<|>>|[-+*/%<>!~&|^?:(),=;{}])
)""", re.VERBOSE)


def tokenize(text):
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise CompileError(f"cannot read {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


# ------------------------------------------------------------ parser
_BINARY = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", "<=", ">", ">="),
           ("<<", ">>"), ("+", "-"), ("*", "/", "%")]


class Parser:
    """Recursive descent over one expression (test code: shallow input)."""

    def __init__(self, tokens, type_names=()):
        self.t = tokens
        self.i = 0
        self.type_names = set(type_names)

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise CompileError(f"expected {value!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def at_type(self, k=0):
        kind, value = self.peek(k)
        return kind == "name" and (value in _TYPE_WORDS or value in self.type_names)

    def cast_ahead(self):
        """Whether ``( type )`` starts here (not ``(T(1) + x)``)."""
        k = 1
        if not self.at_type(k):
            return False
        while self.at_type(k):
            k += 4 if self.peek(k)[1] == "complex" else 1
        return self.peek(k)[1] == ")"

    def parse_type(self):
        words = []
        while self.at_type():
            word = self.take()[1]
            if word == "complex":
                self.take("<")
                inner = self.take()[1]
                self.take(">")
                word = f"complex<{inner}>"
            words.append(word)
        name = " ".join(words)
        if name == "long long int":
            name = "long long"
        if name not in CTYPES and name not in self.type_names:
            raise CompileError(f"unknown type {name!r}")
        return name

    def expression(self):
        cond = self.binary(0)
        if self.peek()[1] == "?":
            self.take()
            a = self.expression()
            self.take(":")
            b = self.expression()
            return ("?:", cond, a, b)
        return cond

    def binary(self, level):
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in _BINARY[level]:
            op = self.take()[1]
            left = ("bin", op, left, self.binary(level + 1))
        return left

    def unary(self):
        kind, value = self.peek()
        if kind == "op" and value in ("-", "+", "!", "~"):
            self.take()
            return ("un", value, self.unary())
        if kind == "op" and value == "(" and self.cast_ahead():
            self.take()
            ctype = self.parse_type()
            self.take(")")
            return ("cast", ctype, self.unary())
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind == "num":
            return ("lit", value)
        if kind == "op" and value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind == "name":
            if value in ("true", "false"):
                return ("lit", value)
            if self.peek()[1] == "(":
                if value in _TYPE_WORDS or value in self.type_names:
                    self.take("(")
                    arg = self.expression()
                    self.take(")")
                    return ("cast", value, arg)
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.expression())
                    if self.peek()[1] == ",":
                        self.take()
                self.take(")")
                return ("call", value, args)
            return ("var", value)
        raise CompileError(f"unexpected {value!r}")


def parse_expression(text, type_names=()):
    p = Parser(tokenize(text), type_names)
    tree = p.expression()
    if p.i != len(p.t):
        raise CompileError(f"trailing text in {text!r}")
    return tree


# ------------------------------------------------------------ programs
_TEMPLATE = re.compile(
    r"template\s*<\s*typename\s+(\w+)\s*>\s*__device__\s+__forceinline__\s+(\w+)\s+"
    r"(\w+)\s*\(([^)]*)\)\s*\{(.*?)\}", re.S)


class Template:
    """A preamble helper ``template <typename T> T f(T a, ...) {...}``."""

    def __init__(self, tparam, ret, name, params, body):
        self.tparam = tparam
        self.ret = ret
        self.name = name
        self.params = []
        if ret != tparam:
            raise CompileError(f"{name}: only templates returning {tparam} supported")
        for p in filter(None, (s.strip() for s in params.split(","))):
            ptype, pname = p.split()
            if ptype != tparam:
                raise CompileError(f"{name}: only parameters of type {tparam} supported")
            self.params.append(pname)
        self.statements = []
        for stmt in filter(None, (s.strip() for s in body.split(";"))):
            if stmt.startswith("return "):
                self.statements.append(("return", None,
                                        parse_expression(stmt[7:], [tparam])))
            else:
                m = re.fullmatch(r"(\w+)\s+(\w+)\s*=\s*(.+)", stmt, re.S)
                if m is None or m.group(1) != tparam:
                    raise CompileError(f"{name}: cannot read {stmt!r}")
                self.statements.append(("let", m.group(2),
                                        parse_expression(m.group(3), [tparam])))


def parse_preamble(text):
    functions = {}
    for m in _TEMPLATE.finditer(text or ""):
        tparam, ret, name, params, body = m.groups()
        functions[name] = Template(tparam, ret, name, params, body)
    rest = _TEMPLATE.sub("", text or "").strip()
    if rest:
        raise CompileError(f"fake cupy: cannot read preamble text {rest[:60]!r}")
    return functions


_BODY = re.compile(r"(?:const\s+)?(?:(?P<type>[\w<> ]+?)\s+)?(?P<name>\w+)\s*=\s*(?P<expr>.+)",
                   re.S)


class CProgram:
    """A kernel body (+ preamble), run over whole arrays at once."""

    def __init__(self, body, preamble, params):
        self.functions = parse_preamble(preamble)
        self.params = set(params)
        self.statements = []
        for stmt in filter(None, (s.strip() for s in body.split(";"))):
            m = _BODY.fullmatch(stmt)
            if m is None:
                raise CompileError(f"cannot read statement {stmt!r}")
            ctype = m.group("type")
            if ctype is not None:
                ctype = " ".join(ctype.split())
                if ctype == "long long int":
                    ctype = "long long"
                if ctype not in CTYPES:
                    raise CompileError(f"unknown type {ctype!r}")
            elif m.group("name") not in self.params:
                raise CompileError(f"assignment to undeclared {m.group('name')!r}")
            self.statements.append((ctype, m.group("name"), parse_expression(m.group("expr"))))

    def run(self, env, targets):
        """``env``: ``{name: (array, ctype)}`` of inputs; ``targets``: ``{name:
        (array, ctype)}`` of outputs, written in place."""
        env = dict(env)
        for ctype, name, tree in self.statements:
            arr, src = Evaluator(self.functions).eval(tree, env)
            if ctype is not None:
                if name in env:
                    raise CompileError(f"redefinition of {name!r}")
                env[name] = (c_convert(arr, src, ctype), ctype)
            else:
                out, otype = targets[name]
                out[...] = c_convert(arr, src, otype)
                env[name] = (out, otype)


_FLOAT_MATH = {
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2,
    "log10": np.log10, "log1p": np.log1p, "sqrt": np.sqrt, "cbrt": np.cbrt,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "floor": np.floor,
    "ceil": np.ceil, "rint": np.rint, "trunc": np.trunc, "fabs": np.abs,
}
if sp is not None:
    _FLOAT_MATH.update({"erf": sp.erf, "erfc": sp.erfc, "erfinv": sp.erfinv,
                        "tgamma": sp.gamma, "lgamma": sp.gammaln})
else:
    from functools import partial

    from tracegrad.ops import special_math as _sm
    _FLOAT_MATH.update({"erf": partial(_sm.erf, np), "erfc": partial(_sm.erfc, np),
                        "erfinv": partial(_sm.erfinv, np), "tgamma": partial(_sm.gamma, np),
                        "lgamma": partial(_sm.gammaln, np)})
_COMPLEX_OK = {"exp", "log", "log10", "sqrt", "sin", "cos", "tan", "asin", "acos", "atan",
               "sinh", "cosh", "tanh", "asinh", "acosh", "atanh"}
_FLOAT_MATH2 = {"atan2": np.arctan2, "fmod": np.fmod, "pow": np.power, "hypot": np.hypot,
                "fmax": np.fmax, "fmin": np.fmin, "copysign": np.copysign}


class Evaluator:
    def __init__(self, functions):
        self.functions = functions

    def eval(self, tree, env):
        kind = tree[0]
        return getattr(self, "_" + {"?:": "ternary"}.get(kind, kind))(tree, env)

    def _lit(self, tree, env):
        text = tree[1]
        if text in ("true", "false"):
            return np.asarray(text == "true"), "bool"
        m = re.fullmatch(r"([\d.eE+-]+?)(ULL|LL|U|L|f|F)?", text)
        digits, suffix = m.group(1), m.group(2)
        if any(c in digits for c in ".eE"):
            ctype = "float" if suffix in ("f", "F") else "double"
            return np.asarray(float(digits), CTYPES[ctype]), ctype
        value = int(digits)
        ctype = {"ULL": "unsigned long long", "LL": "long long", "L": "long long",
                 "U": "unsigned int"}.get(suffix, "int")
        if ctype == "int" and value > 2 ** 31 - 1:
            ctype = "long long"
        return np.asarray(value, CTYPES[ctype]), ctype

    def _var(self, tree, env):
        try:
            return env[tree[1]]
        except KeyError:
            raise CompileError(f"identifier {tree[1]!r} is undefined") from None

    def _cast(self, tree, env):
        arr, src = self.eval(tree[2], env)
        ctype = tree[1]
        if ctype == env.get("__Tname__"):
            ctype = env["__T__"][1]
        return c_convert(arr, src, ctype), ctype

    def _un(self, tree, env):
        op = tree[1]
        arr, t = self.eval(tree[2], env)
        if op == "!":
            return ~c_convert(arr, t, "bool"), "bool"
        pt = promote(t)
        a = c_convert(arr, t, pt)
        if op == "-":
            return np.negative(a), pt
        if op == "+":
            return a, pt
        if not is_int(pt):
            raise CompileError(f"~ on {t}")
        return np.invert(a), pt

    def _ternary(self, tree, env):
        cond, ct = self.eval(tree[1], env)
        a, ta = self.eval(tree[2], env)
        b, tb = self.eval(tree[3], env)
        t = ta if ta == tb else common(ta, tb)
        return np.where(c_convert(cond, ct, "bool"), c_convert(a, ta, t),
                        c_convert(b, tb, t)).astype(CTYPES[t]), t

    def _bin(self, tree, env):
        op = tree[1]
        a, ta = self.eval(tree[2], env)
        b, tb = self.eval(tree[3], env)
        if op in ("&&", "||"):
            a, b = c_convert(a, ta, "bool"), c_convert(b, tb, "bool")
            return (a & b if op == "&&" else a | b), "bool"
        if ta == tb == "float16" and op in "+-*/":
            r, _ = self._arith(op, a.astype(np.float32), b.astype(np.float32), "float")
            return r.astype(np.float16), "float16"
        t = common(ta, tb)
        a, b = c_convert(a, ta, t), c_convert(b, tb, t)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if is_complex(t) and op not in ("==", "!="):
                raise CompileError(f"no operator {op} for {t}")
            fn = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                  ">": np.greater, ">=": np.greater_equal}[op]
            return fn(a, b), "bool"
        if op in ("&", "|", "^", "<<", ">>"):
            if not is_int(t):
                raise CompileError(f"operator {op} on {t}")
            fn = {"&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor,
                  "<<": np.left_shift, ">>": np.right_shift}[op]
            return fn(a, b).astype(CTYPES[t]), t
        return self._arith(op, a, b, t)

    def _arith(self, op, a, b, t):
        dt = CTYPES[t]
        if op == "+":
            return np.add(a, b).astype(dt), t
        if op == "-":
            return np.subtract(a, b).astype(dt), t
        if op == "*":
            return np.multiply(a, b).astype(dt), t
        if is_int(t):
            zero = b == 0
            safe = np.where(zero, 1, b).astype(dt)
            a_b = np.broadcast_to(a, np.broadcast_shapes(np.shape(a), np.shape(b)))
            rem = np.fmod(a_b, safe)
            if op == "%":
                return np.where(zero, a_b, rem).astype(dt), t
            if op == "/":
                quot = ((a_b - rem) // safe).astype(dt)
                return np.where(zero, np.asarray(-1).astype(dt), quot).astype(dt), t
        if op == "/":
            return np.true_divide(a, b).astype(dt), t
        raise CompileError(f"operator {op} on {t}")

    def _call(self, tree, env):
        name = tree[1]
        args = [self.eval(a, env) for a in tree[2]]
        if name in self.functions:
            return self._template(self.functions[name], args)
        types = [t for _, t in args]
        if name in _FLOAT_MATH and len(args) == 1:
            (a, t), = args
            if not (is_float(t) or (is_complex(t) and name in _COMPLEX_OK)):
                raise CompileError(f"more than one instance of overloaded function "
                                   f"{name!r} matches the argument list ({t})")
            t = promote(t)
            a = c_convert(a, args[0][1], t)
            return np.asarray(_FLOAT_MATH[name](a)).astype(CTYPES[t]), t
        if name in ("isnan", "isinf", "isfinite") and len(args) == 1:
            (a, t), = args
            if not is_float(t):
                raise CompileError(f"{name}({t}) is ambiguous")
            return getattr(np, name)(a), "bool"
        if name == "abs" and len(args) == 1:
            (a, t), = args
            if is_complex(t):
                rt = "double" if t == "complex<double>" else "float"
                return np.abs(a).astype(CTYPES[rt]), rt
            pt = promote(t)
            return np.abs(c_convert(a, t, pt)).astype(CTYPES[pt]), pt
        if name in ("real", "imag", "conj") and len(args) == 1:
            (a, t), = args
            if not is_complex(t):
                raise CompileError(f"{name}({t}): no matching thrust function")
            if name == "conj":
                return np.conj(a), t
            rt = "double" if t == "complex<double>" else "float"
            return getattr(np, name)(a).astype(CTYPES[rt]), rt
        if name in ("max", "min") and len(args) == 2:
            t = common(*types)
            a, b = (c_convert(x, s, t) for x, s in args)
            if is_complex(t):
                raise CompileError(f"{name} on {t}")
            if is_float(t):
                fn = np.fmax if name == "max" else np.fmin
            else:
                fn = np.maximum if name == "max" else np.minimum
            return fn(a, b).astype(CTYPES[t]), t
        if name in _FLOAT_MATH2 and len(args) == 2:
            t = common(*types)
            if not is_float(t) and not (is_complex(t) and name == "pow"):
                raise CompileError(f"more than one instance of overloaded function "
                                   f"{name!r} matches the argument list {tuple(types)}")
            a, b = (c_convert(x, s, t) for x, s in args)
            return np.asarray(_FLOAT_MATH2[name](a, b)).astype(CTYPES[t]), t
        raise CompileError(f"no function {name}{tuple(types)}")

    def _template(self, fn, args):
        if len(args) != len(fn.params):
            raise CompileError(f"{fn.name}: wrong number of arguments")
        types = {t for _, t in args}
        if len(types) != 1:
            raise CompileError(f"{fn.name}: no instance of the template matches "
                               f"the argument types {sorted(types)}")
        t = types.pop()
        local = {"__T__": (None, t), "__Tname__": fn.tparam}
        for pname, (arr, _) in zip(fn.params, args):
            local[pname] = (arr, t)
        for kind, name, tree in fn.statements:
            arr, src = self.eval(tree, local)
            value = c_convert(arr, src, t)
            if kind == "return":
                return value, t
            local[name] = (value, t)
        raise CompileError(f"{fn.name}: no return")
