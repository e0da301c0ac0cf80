"""Fast LaTeX answer normalisation, parsing and comparison (no sympy): the math verifier's fast path.

An answer string (already extracted from a response) is normalised (``\\dfrac`` -> ``\\frac``,
``\\left``/``\\right``, ``\\text{..}`` units, ``^\\circ``, ``\\%``, thousands separators, ...), then parsed
into a small structure: numbers and expressions (an AST evaluated with Python complex arithmetic),
tuples, unordered lists and sets, intervals and unions, relations and equations, matrices, text.
``compare(gold, pred)`` answers True / False, or None when it cannot decide (the caller then asks
sympy through math-verify). Expressions with free symbols are compared by evaluating both sides at
fixed pseudo-random points (an identity test that never hangs).

Used by ``mmredstar.verify.math``; try it with::

    python -c "from mmredstar.verify.latex import compare; print(compare('\\\\frac{1}{2}', '0.5'))"

>>> compare("\\\\dfrac{1}{3}", "1/3")
True
>>> compare("(x+1)^2", "x^2+2x+1")
True
>>> compare("4, 10, -2", "10, 4, -2")          # bare lists are unordered by default
True
>>> compare("4, 10, -2", "10, 4, -2", tuple_order="strict")
False
>>> compare("[0,1)", "(0,1)")
False
"""

from __future__ import annotations

import cmath
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# ----------------------------------------------------------------------------------------- options
DEFAULTS: dict[str, Any] = {
    "rel_tol": 1e-4,          # decimals are equal within this relative tolerance (integers: exact)
    "rounding": False,        # a decimal with >= 2 places equals an exact value it rounds (0.33 ~ 1/3)
    "exact_ref": True,        # an exact reference (no decimal point: 100, 1/3, \sqrt2) needs an exact value:
                              # 99.99 != 100, 0.33 != 1/3, 1.41 != \sqrt2 (0.5 == 1/2 still holds)
    "tolerance": None,        # (abs, rel) stated by the source: numbers within it are equal, exact or not
    "percent": "either",      # "either": 10% == 10 == 0.1; "strict": 10% == 0.1 only
    "tuple_order": "any",     # bare lists a, b, c: "any" (a set of solutions) or "strict" (ordered)
    "strict_symbols": True,   # f(x) != f(y): free symbols must match
}


CMD_SEP = "\u2009"
"""Kept between a command and a following letter when spaces are removed (``\\pi k``, ``\\sin x``)."""


class ParseError(ValueError):
    """The fast parser does not understand this answer (the caller falls back to sympy)."""


# ----------------------------------------------------------------------------------------- normalise
KNOWN_COMMANDS = {
    "frac", "dfrac", "tfrac", "cfrac", "sqrt", "left", "right", "boxed", "text", "textbf", "mathrm",
    "mathbf", "cdot", "times", "pi", "le", "leq", "ge", "geq", "neq", "ne", "infty", "in", "cup", "pm",
    "mp", "sin", "cos", "tan", "log", "ln", "begin", "end", "quad", "qquad", "approx", "circ", "alpha",
    "beta", "theta", "lambda", "mu", "sum", "int", "lt", "gt", "mbox", "textnormal", "operatorname",
}
_UNIT_WORDS = (
    "units?|unit|cm|mm|km|m|meters?|metres?|centimeters?|millimeters?|kilometers?|inch(?:es)?|in|ft|feet|foot|"
    "yards?|miles?|mph|kg|g|grams?|kilograms?|lbs?|pounds?|ounces?|oz|s|sec|seconds?|min|minutes?|h|hrs?|hours?|"
    "days?|weeks?|months?|years?|degrees?|deg|radians?|rad|dollars?|cents?|yuan|euros?|rs|rupees?|people|"
    "persons?|students?|sq|square|cubic|liters?|litres?|l|ml|gallons?|mm\\^2|cm\\^2|m\\^2|km\\^2|cm\\^3|m\\^3"
)
_TEXT_CMDS = r"text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mbox|operatorname|hbox"
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad|~|\\hspace\{[^}]*\}|\\displaystyle|\\limits|\\nolimits")
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg|bigl|bigr|Bigl|Bigr|biggl|biggr)(?![a-zA-Z])\s*")
_FUNCS = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
          "ln", "log", "exp", "lg"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
          "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi",
          "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"}


def unwrap_braced(s: str, start: int) -> tuple[str, int]:
    """The content of the brace group opening at ``s[start] == '{'`` and the index after it.

    An unclosed group runs to the end of the string.

    >>> unwrap_braced("{a{b}c}d", 0)
    ('a{b}c', 7)
    """
    depth = 0
    for i in range(start, len(s)):
        c = s[i]
        if c == "\\":
            continue
        if c == "{" and (i == 0 or s[i - 1] != "\\"):
            depth += 1
        elif c == "}" and (i == 0 or s[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return s[start + 1:i], i + 1
    return s[start + 1:], len(s)


def _arg(s: str, i: int) -> tuple[str, int]:
    """One LaTeX macro argument at ``i`` (a brace group, a command or one character)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        return unwrap_braced(s, i)
    if s[i] == "\\":
        m = re.match(r"\\[a-zA-Z]+", s[i:])
        if m:
            return m.group(0), i + m.end()
    return s[i], i + 1


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt3`` -> ``\\sqrt{3}`` (all args braced)."""
    out, i = [], 0
    while i < len(s):
        m = re.compile(r"\\(frac|sqrt)(?![a-zA-Z])").search(s, i)
        if not m:
            out.append(s[i:])
            break
        out.append(s[i:m.start()])
        j = m.end()
        if m.group(1) == "sqrt":
            idx = ""
            k = j
            while k < len(s) and s[k] == " ":
                k += 1
            if k < len(s) and s[k] == "[":
                e = s.find("]", k)
                if e > 0:
                    idx, j = s[k:e + 1], e + 1
            a, j = _arg(s, j)
            out.append("\\sqrt" + idx + "{" + _fix_fracs(a) + "}")
        else:
            a, j = _arg(s, j)
            b, j = _arg(s, j)
            out.append("\\frac{" + _fix_fracs(a) + "}{" + _fix_fracs(b) + "}")
        i = j
    return "".join(out)


def _strip_text_cmds(s: str) -> str:
    r"""Remove trailing ``\text{units}`` after a value; unwrap the other text commands."""
    # trailing text (units or words) after something that is not text: "17\text{ any text}", "15\mbox{ cm}^2"
    m = re.search(r"^(.*?[\w\})\]])\s*\\(?:" + _TEXT_CMDS + r")\{([^{}]*)\}(\^\{?\d\}?)?\s*[.]?\s*$", s)
    if m and re.search(r"[\d})\]]\s*$", m.group(1)) and not re.fullmatch(r"\s*(and|or)\s*", m.group(2)):
        s = m.group(1)
    return re.sub(r"\\(?:" + _TEXT_CMDS + r")\s*\{([^{}]*)\}", r"\1", s)


def normalize(s: str) -> str:
    r"""Canonical text of a LaTeX answer: the form the parser and the string comparison see.

    >>> normalize("\\left( \\dfrac12 , 3 \\right)")
    '(\\frac{1}{2},3)'
    >>> normalize("14{,}916")
    '14916'
    >>> normalize("90^\\circ")
    '90'
    >>> normalize("\\$1,000.99")
    '1000.99'
    >>> normalize("15\\mbox{ cm}^2")
    '15'
    """
    s = s.replace("\\\\n", " ")
    s = s.replace("−", "-").replace("×", "*").replace("÷", "/").replace("π", "\\pi").replace("∞", "\\infty")
    s = re.sub(r"√\s*(\d+(?:\.\d+)?|[A-Za-z]|\{[^{}]*\}|\([^()]*\))", lambda m: "\\sqrt{" + m.group(1).strip("{}()") + "}", s)
    s = re.sub(r"(?<!\\)\\\\([a-zA-Z]+)", lambda m: "\\" + m.group(1) if m.group(1) in KNOWN_COMMANDS else m.group(0), s)
    s = re.sub(r"\\n(?![a-zA-Z])", " ", s)
    s = s.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    s = re.sub(r"(\d)\s*\{\s*,\s*\}\s*(?=\d)", r"\1", s)          # 14{,}916
    s = re.sub(r"(\d),\\!\s*(?=\d{3})", r"\1", s)                   # 11,\!111
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\(?:d|t|c)frac(?![a-zA-Z])", r"\\frac", s)
    s = s.replace("\\over", "/") if "\\overline" not in s else s
    s = _SIZING.sub("", s)
    s = _SPACING.sub(" ", s)
    s = re.sub(r"\\(?:mathrm|text|textrm)\{\s*e\s*\}", "e", s)
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree", "", s)
    s = re.sub(r"\\%|％", "%", s)
    s = re.sub(r"\s*(?:\\text\{\s*)?\b(?:percent(?:age)?|pct)\b(?:\s*\})?", "%", s)
    s = _strip_text_cmds(s)
    s = _fix_fracs(s)
    s = re.sub(r"\\(?:le|leq|leqslant)(?![a-zA-Z])", "<=", s)
    s = re.sub(r"\\(?:ge|geq|geqslant)(?![a-zA-Z])", ">=", s)
    s = re.sub(r"\\(?:ne|neq)(?![a-zA-Z])", "!=", s)
    s = re.sub(r"\\lt(?![a-zA-Z])", "<", s)
    s = re.sub(r"\\gt(?![a-zA-Z])", ">", s)
    s = re.sub(r"≤", "<=", s)
    s = re.sub(r"≥", ">=", s)
    s = re.sub(r"\\(?:cdot|times|ast)(?![a-zA-Z])", "*", s)
    s = re.sub(r"\\div(?![a-zA-Z])", "/", s)
    s = re.sub(r"\\(?:emptyset|varnothing)(?![a-zA-Z])", "\\{\\}", s)
    s = re.sub(r"\\(?:dots|ldots|cdots)(?![a-zA-Z])", "...", s)
    s = re.sub(r"\{(?:b|p|v|B|V|small)?matrix\}", "{matrix}", s)
    # units after a number
    s = re.sub(r"(?<=[\d}])\s*(?:" + _UNIT_WORDS + r")(?:\^\{?[23]\}?)?(?=\s*(?:$|[,;)\]]))", "", s)
    s = s.strip()
    s = re.sub(r"^(?:[\s,;:]|\.(?!\d))+|[\s.,;:\\]+$", "", s)
    s = re.sub(r"\s+", " ", s)
    # thousands separators in a plain number: 1,000,000.5 / 1 000
    s = re.sub(r"(?<![\d.,(\[{])([1-9]\d{0,2})((?:,\d{3})+)(?![\d,)\]])(\.\d+)?(?![\d])",
               lambda m: m.group(1) + m.group(2).replace(",", "") + (m.group(3) or ""), s)
    if re.fullmatch(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?", s):
        s = s.replace(" ", "")
    m = re.fullmatch(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}", s)   # mixed number 918\frac{1}{2}
    if m:
        s = f"{m.group(1)}({m.group(2)}+\\frac{{{m.group(3)}}}{{{m.group(4)}}})"
    if not _is_words(s):
        s = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z0-9])", "\\1" + CMD_SEP, s)   # \pi k stays \pi k, not \pik
        s = re.sub(r"[ \t\n\r\f\v]+", "", s)
    return s


def _is_words(s: str) -> bool:
    """Free text (several words) rather than mathematics."""
    return bool(re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", s)) and "\\" not in s


# ----------------------------------------------------------------------------------------- structures
@dataclass(frozen=True)
class Node:
    """One parsed answer part. ``kind``: num, expr, tuple, list, set, interval, union, rel, eq, assign,
    matrix, text, pct. ``items`` holds children; ``value`` the AST / text / operator."""

    kind: str
    items: tuple = ()
    value: Any = None


# AST: ("n", Fraction|float, is_decimal) ("s", name) ("c", "pi"|"E"|"I"|"oo") ("+", a, b) ("*", a, b)
# ("/", a, b) ("^", a, b) ("neg", a) ("f", fname, a) ("!", a) ("abs", a) ("%", a) ("root", a, n)

_TOKEN = re.compile(
    r"(?P<num>\d+\.\d*|\.\d+|\d+)|(?P<cmd>\\[a-zA-Z]+|\\[{}|])|(?P<sym>[A-Za-z](?:_\{[^{}]*\}|_[A-Za-z0-9])?'*)"
    r"|(?P<op><=|>=|!=|\*\*|[-+*/^!%(){}\[\]|=<>,;:_])|(?P<sp>\s+)")


def tokenize(s: str) -> list[tuple[str, str]]:
    out = []
    i = 0
    while i < len(s):
        m = _TOKEN.match(s, i)
        if not m:
            raise ParseError(f"unexpected character {s[i]!r}")
        i = m.end()
        k = m.lastgroup
        if k == "sp":
            continue
        out.append((k, m.group(0)))  # type: ignore[arg-type]
    return out


class _Parser:
    """Pratt-style parser of one LaTeX expression (no top-level commas or relations)."""

    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("end", "")

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, v):
        tok = self.next()
        if tok[1] != v:
            raise ParseError(f"expected {v!r}, got {tok[1]!r}")

    def parse(self):
        e = self.expr()
        if self.peek()[0] != "end":
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return e

    def expr(self):
        e = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.next()[1]
            r = self.term()
            e = ("+", e, r) if op == "+" else ("+", e, ("neg", r))
        return e

    def _starts_atom(self, tok):
        k, v = tok
        if k in ("num", "sym"):
            return True
        if k == "cmd":
            name = v[1:]
            return name in ("frac", "sqrt", "pi", "infty", "binom") or name in _FUNCS or name in _GREEK or v == "\\{"
        return v in ("(", "{", "[")

    def term(self):
        e = self.unary()
        while True:
            v = self.peek()[1]
            if v in ("*", "/"):
                self.next()
                r = self.unary()
                e = ("*", e, r) if v == "*" else ("/", e, r)
            elif self._starts_atom(self.peek()):
                e = ("*", e, self.power())
            else:
                return e

    def unary(self):
        v = self.peek()[1]
        if v == "-":
            self.next()
            return ("neg", self.unary())
        if v == "+":
            self.next()
            return self.unary()
        return self.power()

    def power(self):
        base = self.postfix(self.atom())
        if self.peek()[1] in ("^", "**"):
            self.next()
            if self.peek()[1] == "{":
                self.next()
                ex = self.expr()
                self.expect("}")
            else:
                ex = self.unary_atom()
            return self.postfix(("^", base, ex))
        return base

    def unary_atom(self):
        if self.peek()[1] == "-":
            self.next()
            return ("neg", self.unary_atom())
        return self.postfix(self.atom())

    def postfix(self, e):
        while self.peek()[1] in ("!", "%"):
            v = self.next()[1]
            e = ("!", e) if v == "!" else ("%", e)
        return e

    def group(self, close):
        e = self.expr()
        self.expect(close)
        return e

    def braced(self):
        if self.peek()[1] != "{":
            return self.power()
        self.next()
        return self.group("}")

    def atom(self):
        k, v = self.next()
        if k == "num":
            if "." in v:
                return ("n", Fraction(v), True)
            return ("n", Fraction(int(v)), False)
        if k == "sym":
            name = re.sub(r"_\{([^{}]*)\}", r"_\1", v)
            if name == "e":
                return ("c", "E")
            if name == "i":
                return ("c", "I")
            return ("s", name)
        if v == "(":
            return self.group(")")
        if v == "{":
            return self.group("}")
        if v == "[":
            return self.group("]")
        if v == "|":
            e = self.expr()
            self.expect("|")
            return ("abs", e)
        if k == "cmd":
            name = v[1:]
            if name == "frac":
                a = self.braced()
                b = self.braced()
                return ("/", a, b)
            if name == "binom":
                a = self.braced()
                b = self.braced()
                return ("binom", a, b)
            if name == "sqrt":
                n = None
                if self.peek()[1] == "[":
                    self.next()
                    n = self.group("]")
                a = self.braced()
                return ("root", a, n if n is not None else ("n", Fraction(2), False))
            if name == "pi":
                return ("c", "pi")
            if name == "infty":
                return ("c", "oo")
            if name in _GREEK:
                return ("s", name)
            if name in _FUNCS:
                power = None
                base = None
                if name == "log" and self.peek()[1] == "_":
                    self.next()
                    base = self.braced()
                if self.peek()[1] == "^":
                    self.next()
                    power = self.braced() if self.peek()[1] == "{" else self.unary_atom()
                if self.peek()[1] == "(":
                    self.next()
                    arg = self.group(")")
                else:
                    arg = self.power()
                e = ("f", name, arg) if base is None else ("/", ("f", "ln", arg), ("f", "ln", base))
                return ("^", e, power) if power is not None else e
        raise ParseError(f"unexpected {v!r}")


def parse_expr(s: str):
    """AST of one expression (normalised text); raises ParseError."""
    toks = tokenize(s)
    if not toks:
        raise ParseError("empty")
    return _Parser(toks).parse()


# ----------------------------------------------------------------------------------------- evaluate
_CONST = {"pi": math.pi, "E": math.e, "I": 1j}
_FN = {"sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "cot": lambda x: 1 / cmath.tan(x),
       "sec": lambda x: 1 / cmath.cos(x), "csc": lambda x: 1 / cmath.sin(x), "arcsin": cmath.asin,
       "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh, "tanh": cmath.tanh,
       "ln": cmath.log, "log": cmath.log, "lg": cmath.log10, "exp": cmath.exp}


def symbols_of(ast) -> set[str]:
    if not isinstance(ast, tuple):
        return set()
    if ast[0] == "s":
        return {ast[1]}
    out: set[str] = set()
    for a in ast[1:]:
        if isinstance(a, tuple):
            out |= symbols_of(a)
    return out


def rename(ast, mapping: dict[str, str]):
    """The AST with symbols renamed."""
    if not isinstance(ast, tuple):
        return ast
    if ast[0] == "s":
        return ("s", mapping.get(ast[1], ast[1]))
    return tuple(rename(a, mapping) if isinstance(a, tuple) else a for a in ast)


def has_decimal(ast) -> bool:
    if not isinstance(ast, tuple):
        return False
    if ast[0] == "n":
        return ast[2]
    return any(has_decimal(a) for a in ast[1:] if isinstance(a, tuple))


def has_infinity(ast) -> bool:
    if not isinstance(ast, tuple):
        return False
    if ast == ("c", "oo"):
        return True
    return any(has_infinity(a) for a in ast[1:] if isinstance(a, tuple))


def exact(ast):
    """Exact rational value (Fraction) when the AST is rational arithmetic, else None."""
    op = ast[0]
    if op == "n":
        return ast[1]
    if op in ("s", "c", "f", "root", "abs", "binom"):
        if op == "abs":
            v = exact(ast[1])
            return abs(v) if v is not None else None
        if op == "root":
            v, n = exact(ast[1]), exact(ast[2])
            if v is None or n is None or n.denominator != 1 or v < 0 or n <= 0:
                return None
            r = round(float(v) ** (1 / float(n)))
            if v.denominator == 1 and Fraction(r) ** int(n) == v:
                return Fraction(r)
            return None
        return None
    if op == "neg":
        v = exact(ast[1])
        return -v if v is not None else None
    if op == "%":
        v = exact(ast[1])
        return v / 100 if v is not None else None
    if op == "!":
        v = exact(ast[1])
        if v is None or v.denominator != 1 or not 0 <= v <= 200:
            return None
        return Fraction(math.factorial(int(v)))
    a, b = exact(ast[1]), exact(ast[2])
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else None
    if op == "^":
        if b.denominator != 1 or abs(b) > 64 or (a == 0 and b < 0) or abs(a.numerator) > 10**12:
            return None
        return a ** int(b)
    return None


def evaluate(ast, env: dict[str, complex]) -> complex:
    """Complex value of the AST with symbols bound by ``env`` (raises on domain errors)."""
    op = ast[0]
    if op == "n":
        return complex(float(ast[1]))
    if op == "s":
        return env[ast[1]]
    if op == "c":
        if ast[1] == "oo":
            raise ValueError("infinity")
        return complex(_CONST[ast[1]])
    if op == "neg":
        return -evaluate(ast[1], env)
    if op == "%":
        return evaluate(ast[1], env) / 100
    if op == "abs":
        return complex(abs(evaluate(ast[1], env)))
    if op == "!":
        v = evaluate(ast[1], env)
        if abs(v.imag) > 1e-12 or v.real < 0 or v.real > 170:
            raise ValueError("factorial domain")
        return complex(math.gamma(v.real + 1))
    if op == "f":
        return _FN[ast[1]](evaluate(ast[2], env))
    if op == "root":
        v, n = evaluate(ast[1], env), evaluate(ast[2], env)
        if abs(v.imag) < 1e-15 and v.real < 0 and abs(n.imag) < 1e-15 and round(n.real) % 2 == 1:
            return -complex((-v.real) ** (1 / n.real))          # real odd root of a negative number
        return v ** (1 / n)
    if op == "binom":
        n, k = evaluate(ast[1], env), evaluate(ast[2], env)
        if not (0 <= k.real <= n.real <= 10000):
            raise OverflowError("binomial too large for the fast path")
        return complex(math.comb(int(round(n.real)), int(round(k.real))))
    a, b = evaluate(ast[1], env), evaluate(ast[2], env)
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "^":
        if abs(b) > 1e4 or (abs(a) > 1e6 and abs(b) > 50):
            raise OverflowError("power too large")
        if abs(b.imag) < 1e-15 and b.real == int(b.real) and abs(a.imag) < 1e-15:
            return complex(a.real ** int(b.real)) if a.real != 0 or b.real >= 0 else complex("nan")
        if abs(a.imag) < 1e-15 and a.real < 0 and abs(b.imag) < 1e-15:
            # real odd roots like (-8)^(1/3) stay real
            fr = Fraction(b.real).limit_denominator(50)
            if fr.denominator % 2 == 1 and abs(float(fr) - b.real) < 1e-12:
                return complex((-1) ** fr.numerator * (-a.real) ** b.real)
        return a ** b
    raise ValueError(op)


_POINTS = [0.7373, 1.3179, 2.2441, 0.4519, 1.8611]


def sample_envs(names: set[str], n: int = 4) -> list[dict[str, complex]]:
    """Deterministic evaluation points for the symbols (distinct per symbol and per point)."""
    names_s = sorted(names)
    envs = []
    for k in range(n):
        envs.append({nm: complex(_POINTS[(k + j) % len(_POINTS)] + 0.137 * j + 0.0913 * k)
                     for j, nm in enumerate(names_s)})
    return envs


def close(a: complex, b: complex, tol: float) -> bool:
    if not (cmath.isfinite(a) and cmath.isfinite(b)):
        return False
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ----------------------------------------------------------------------------------------- structure
_CONJ = re.compile(r"(?:^|(?<=[\s\d)\]}⦄]))(?:and|or)(?=[\s(\[{⦃\\A-Za-z\-\d]|$)|(?:,?\s*\\text\{\s*(?:and|or)\s*\})|和|或")


def split_top(s: str, seps: str = ",") -> list[str]:
    """Split at separators outside brackets (intervals like ``(0,1]`` count as brackets)."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c in "([{⦃":
            depth += 1
        elif c in ")]}⦄":
            depth -= 1
        if c in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _matching(s: str, i: int) -> int:
    """Index of the bracket closing the one at ``s[i]`` (any bracket kind), or -1."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] in "([{⦃":
            depth += 1
        elif s[j] in ")]}⦄":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _simple_lhs(s: str) -> bool:
    """A left-hand side that names the answer (x, f(x), a_{37}, |AB|, A:B, (p,q), \\frac{NO}{BO})."""
    t = re.sub(r"_\{[^{}]*\}|_[A-Za-z0-9]", "", s)
    t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1:\2", t)
    if not t or re.search(r"\d|[+\-*/^=<>]", t):
        return False
    return bool(re.fullmatch(r"(?:\\[a-zA-Z]+|[A-Za-z'(),:|\s{}\[\]])+", t))


def _is_constant(s: str) -> bool:
    try:
        ast = parse_expr(s)
    except ParseError:
        return False
    return not symbols_of(ast)


def parse_answer(s: str, *, tuple_order: str = "any") -> Node:
    """Structure of a normalised answer string (see ``Node``); raises ParseError."""
    s = s.strip()
    if not s:
        raise ParseError("empty answer")
    if re.fullmatch(r"[-+]?\d+,\d{2}%?|[-+]?0,\d+%?", s):      # 1000,99 / 0,111: a decimal comma, or a list
        as_list = parse_answer(s.replace(",", ", "), tuple_order=tuple_order)
        return Node("either", (_expr_node(s.replace(",", ".")), as_list))
    # several solutions separated by ';' (each maybe a list of assignments -> a tuple)
    semi = [p for p in split_top(s, ";") if p.strip()]
    if len(semi) > 1:
        items = []
        for p in semi:
            sub = [q for q in split_top(p, ",") if q.strip()]
            if len(sub) > 1:
                vals = [_unassign(parse_item(q)) for q in sub]
                items.append(Node("tuple", tuple(vals)))
            else:
                items.append(parse_item(p))
        return Node("list", tuple(items))
    parts = _split_items(s)
    if not parts:
        raise ParseError("no answer items")
    if len(parts) > 1:
        return Node("list" if tuple_order == "any" else "tuple", tuple(parse_item(p) for p in parts))
    return parse_item(parts[0])


def _split_items(s: str) -> list[str]:
    s = _CONJ.sub(",", s)
    return [p for p in split_top(s, ",") if p.strip()]


def _unassign(n: Node) -> Node:
    return n.items[0] if n.kind == "assign" else n


_REL_SPLIT = re.compile(r"(<=|>=|!=|=|<|>|\\approx|\\in(?![a-zA-Z])|\\sim)")


def parse_item(s: str) -> Node:
    s = s.strip()
    if s.startswith("\\pm") or "\\pm" in s or "\\mp" in s:
        return _parse_pm(s)
    # relations (outside brackets)
    pieces = _split_relations(s)
    if len(pieces) > 1:
        return _parse_relation_chain(pieces)
    return parse_value(s)


def _split_relations(s: str) -> list[str]:
    out, depth, last = [], 0, 0
    i = 0
    while i < len(s):
        c = s[i]
        if c in "([{⦃":
            depth += 1
        elif c in ")]}⦄":
            depth -= 1
        elif depth == 0:
            m = _REL_SPLIT.match(s, i)
            if m:
                out.append(s[last:i])
                out.append(m.group(0))
                i = m.end()
                last = i
                continue
        i += 1
    out.append(s[last:])
    return out


def _parse_relation_chain(p: list[str]) -> Node:
    terms, ops = p[0::2], p[1::2]
    # drop "\approx v" tails (keep the exact value before it), unless that leaves a bare name
    if "\\approx" in ops:
        k = ops.index("\\approx")
        if k == 0 and _simple_lhs(terms[0]):
            ops = ["="] + ops[1:]
        else:
            terms, ops = terms[:k + 1], ops[:k]
            if not ops:
                return parse_value(terms[0])
    if ops == ["\\in"]:
        return Node("assign", (parse_value(terms[1]),), terms[0])
    if any(o == "\\in" for o in ops) or any(o == "\\sim" for o in ops):
        raise ParseError("relation chain with \\in")
    if all(o == "=" for o in ops):
        if any(not t.strip() for t in terms):
            raise ParseError("empty side of an equation")
        if len(terms) >= 3:
            if _simple_lhs(terms[0]):
                return Node("assign", (parse_value(terms[-1]),), terms[0])
            return parse_value(terms[-1])
        lhs, rhs = terms
        if _simple_lhs(lhs):
            return Node("assign", (parse_value(rhs),), lhs)
        if _is_constant(lhs) and _is_constant(rhs):
            return parse_value(rhs)
        return Node("eq", (), (parse_expr(lhs), parse_expr(rhs)))
    # double inequality a < x < b with a variable in the middle -> interval
    var = re.fullmatch(r"\s*[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z]\))?\s*", terms[1]) if len(terms) == 3 else None
    if len(ops) == 2 and all(o in ("<", "<=") for o in ops) and var:
        lo, hi = parse_expr(terms[0]), parse_expr(terms[2])
        return Node("assign", (Node("interval", (), (lo, hi, ops[0] == "<=", ops[1] == "<=")),), terms[1])
    if len(ops) == 2 and all(o in (">", ">=") for o in ops) and var:
        lo, hi = parse_expr(terms[2]), parse_expr(terms[0])
        return Node("assign", (Node("interval", (), (lo, hi, ops[1] == ">=", ops[0] == ">=")),), terms[1])
    if len(ops) == 1:
        op = ops[0]
        lhs, rhs = parse_expr(terms[0]), parse_expr(terms[1])
        if op in (">", ">="):
            lhs, rhs, op = rhs, lhs, "<" if op == ">" else "<="
        return Node("rel", (), (op, lhs, rhs))
    raise ParseError("relation chain")


def _parse_pm(s: str) -> Node:
    a = s.replace("\\mp", "\\pm")
    if a.count("\\pm") != 1:
        raise ParseError("several \\pm")
    plus, minus = a.replace("\\pm", "+"), a.replace("\\pm", "-")
    if plus.startswith("+"):
        plus = plus[1:]
    return Node("list", (parse_item(plus), parse_item(minus)))


def parse_value(s: str) -> Node:
    s = s.strip()
    if not s:
        raise ParseError("empty value")
    # unions of intervals
    if "\\cup" in s:
        parts = [p for p in re.split(r"\\cup(?![a-zA-Z])", s)]
        return Node("union", tuple(parse_value(p) for p in parts))
    # matrices
    if s.startswith("\\begin{matrix}") or s.startswith("\\begin{array}") or (
            s[:1] in "([" and s[1:].startswith("\\begin{") and s.endswith(s[:1].replace("(", ")").replace("[", "]"))):
        return _parse_matrix(s)
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        return Node("set", tuple(parse_item(p) for p in _split_items(inner)) if inner.strip() else ())
    if s[0] in "([" and s[-1] in ")]" and _matching(s, 0) == len(s) - 1:
        inner = s[1:-1]
        parts = split_top(inner, ",")
        if len(parts) == 1 and len(split_top(inner, ";")) > 1:              # (0;-2;6)
            parts = split_top(inner, ";")
        if len(parts) == 1:
            if s[0] == "[" and s[-1] == "]":
                raise ParseError("bracket group")
            return parse_value(inner) if _matching(s, 0) == len(s) - 1 else _expr_node(s)
        if len(parts) == 2 and (s[0] == "[" or s[-1] == "]"):
            return Node("interval", (), (parse_expr(parts[0]), parse_expr(parts[1]), s[0] == "[", s[-1] == "]"))
        kind = "tuple" if s[0] == "(" and s[-1] == ")" else "list"
        return Node(kind, tuple(parse_item(p) for p in parts))
    if s[0] == "{" and s[-1] == "}" and _matching(s, 0) == len(s) - 1:
        inner = s[1:-1]
        parts = _split_items(inner)
        if len(parts) > 1:
            return Node("list", tuple(parse_item(p) for p in parts))
        return parse_item(inner)
    if re.fullmatch(r"[0-9A-Za-z]+_\{?\d+\}?", s) and re.match(r"\d", s):      # 1112_3: a numeral in a base
        return Node("text", (), s.replace("{", "").replace("}", ""))
    parts = split_top(s, ":")
    if len(parts) > 1 and all(p.strip() and not _is_text(p) for p in parts):   # ratios and times: 7:32, 12:00
        return Node("tuple", tuple(_expr_node(p) for p in parts))
    if _is_text(s):
        return Node("text", (), re.sub(r"\s+", " ", s).strip().lower())
    return _expr_node(s)


def _is_text(s: str) -> bool:
    t = re.sub(r"\\[a-zA-Z]+", "", s)
    if re.search(r"\d", t) or re.search(r"[=^_+*/]", t):
        return False
    words = re.findall(r"[A-Za-z]{2,}", t)
    return bool(words) and not any(w in _FUNCS for w in words) and "\\" not in s


def _expr_node(s: str) -> Node:
    ast = parse_expr(s)
    if ast[0] == "%":
        return Node("pct", (), ast)
    return Node("expr", (), ast)


def _parse_matrix(s: str) -> Node:
    m = re.fullmatch(r"[(\[]?\\begin\{(matrix|array)\}(\{[^{}]*\})?(.*?)\\end\{\1\}[)\]]?", s)
    if not m:
        raise ParseError("matrix")
    body = m.group(3).strip()
    rows = [r for r in re.split(r"\\\\", body)]
    rows = [r for r in rows if r.strip() and not re.fullmatch(r"\s*\\hline\s*", r)]
    cells = tuple(tuple(parse_item(c) for c in r.split("&")) for r in rows)
    if len({len(r) for r in cells}) != 1:
        raise ParseError("ragged matrix")
    return Node("matrix", cells)


# ----------------------------------------------------------------------------------------- compare
def _num_equal(ga, pa, o) -> bool | None:
    """Compare two expression ASTs. True/False, or None when evaluation fails everywhere."""
    if has_infinity(ga) or has_infinity(pa):
        sg = _inf_sign(ga)
        sp = _inf_sign(pa)
        if sg is None or sp is None:
            return None
        return sg == sp
    syms_g, syms_p = symbols_of(ga), symbols_of(pa)
    if syms_g != syms_p:
        if o["strict_symbols"]:
            return False
        only_g, only_p = sorted(syms_g - syms_p), sorted(syms_p - syms_g)
        if len(only_g) != len(only_p):
            return False
        pa = rename(pa, dict(zip(only_p, only_g, strict=False)))        # f(y) ~ f(x): variables renamed in order
        syms_p = symbols_of(pa)
    names = syms_g | syms_p
    eg, ep = exact(ga), exact(pa)
    dec = has_decimal(ga) or has_decimal(pa)
    if eg is not None and ep is not None and not names and not dec:
        return eg == ep
    tolerance = o.get("tolerance")
    if not names and dec and tolerance is None and o.get("exact_ref") and not has_decimal(ga):
        if eg is not None and ep is not None:
            return eg == ep                  # exact reference, exact comparison (0.5 == 1/2; 99.99 != 100)
        if ep is not None and eg is None:
            return False                     # a decimal for an irrational reference (1.41 for \sqrt2)
    envs = sample_envs(names, 4 if names else 1)
    ok, n = True, 0
    tol = 1e-9
    for env in envs:
        try:
            a = evaluate(ga, env)
        except (ValueError, ZeroDivisionError, OverflowError, KeyError, TypeError):
            continue
        try:
            b = evaluate(pa, env)
        except OverflowError:
            if not names and cmath.isfinite(a):
                return False         # astronomically large vs a finite reference (10^{10^{10}} vs 1/2)
            continue
        except (ValueError, ZeroDivisionError, KeyError, TypeError):
            continue
        if not (cmath.isfinite(a) and cmath.isfinite(b)):
            continue
        n += 1
        if tolerance is not None and not names:
            abs_tol, rel_tol = tolerance
            d = abs(a - b)
            if d <= (abs_tol or 0.0) * (1 + 1e-9) or d <= (rel_tol or 0.0) * abs(a) * (1 + 1e-9) or close(a, b, tol):
                continue
            ok = False
        elif dec and not names:
            if eg is not None and ep is not None and eg.denominator == 1 and ep.denominator == 1:
                ok = ok and eg == ep
                continue
            if close(a, b, tol) or abs(a - b) <= o["rel_tol"] * max(abs(a), abs(b)) * (1 + 1e-9):
                continue
            if o["rounding"] and _rounds_to(pa, a) and not has_decimal(ga) and abs(b.imag) < 1e-12:
                continue
            ok = False
        elif not close(a, b, tol):
            ok = False
    if n == 0:
        return None
    return ok


def _rounds_to(pred_ast, gold_val: complex) -> bool:
    """The prediction is a decimal literal with >= 2 places that equals the gold value rounded."""
    node, sign = pred_ast, 1.0
    if node[0] == "neg":
        node, sign = node[1], -1.0
    if node[0] != "n" or not node[2]:
        return False
    places = _decimal_places(node[1])
    if places < 2:
        return False
    return abs(sign * float(node[1]) - gold_val.real) <= 0.5 * 10 ** (-places) * (1 + 1e-9)


def _decimal_places(fr: Fraction) -> int:
    """Places after the point of a terminating decimal (smallest p with fr * 10^p an integer)."""
    for p in range(31):
        if (fr * 10 ** p).denominator == 1:
            return p
    return 31


def _inf_sign(ast):
    if ast == ("c", "oo"):
        return 1
    if ast[0] == "neg" and ast[1] == ("c", "oo"):
        return -1
    return None


def _pct_variants(n: Node, o) -> list:
    """AST variants of a value for percent comparison."""
    if n.kind == "pct":
        inner = n.value[1]
        if o["percent"] == "either":
            return [inner, ("/", inner, ("n", Fraction(100), False))]
        return [("/", inner, ("n", Fraction(100), False))]
    return [n.value]


def _rel_equal(a, b, o) -> bool | None:
    """Relations (op, lhs, rhs) with op in <, <=, !=: same op and proportional differences."""
    opa, la, ra = a
    opb, lb, rb = b
    if opa != opb:
        return False
    da = ("+", ra, ("neg", la))
    db = ("+", rb, ("neg", lb))
    return _proportional(da, db, positive=opa in ("<", "<="), o=o)


def _proportional(da, db, positive: bool, o) -> bool | None:
    names = symbols_of(da) | symbols_of(db)
    if o["strict_symbols"] and symbols_of(da) != symbols_of(db):
        return False
    ratios = []
    for env in sample_envs(names, 5):
        try:
            x, y = evaluate(da, env), evaluate(db, env)
        except (ValueError, ZeroDivisionError, OverflowError, KeyError, TypeError):
            continue
        if not (cmath.isfinite(x) and cmath.isfinite(y)):
            continue
        if abs(y) < 1e-12:
            if abs(x) < 1e-12:
                continue
            return False
        ratios.append(x / y)
    if not ratios:
        return None
    r0 = ratios[0]
    if abs(r0) < 1e-12:
        return False
    if positive and not (abs(r0.imag) < 1e-9 and r0.real > 0):
        return False
    return all(close(r, r0, 1e-8) for r in ratios)


def compare(gold: str | Node, pred: str | Node, **options) -> bool | None:
    """Whether two answers are equivalent: True, False, or None (undecided: ask sympy).

    Strings are normalised and parsed first; options: see ``DEFAULTS``.
    """
    o = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
    try:
        g = gold if isinstance(gold, Node) else parse_answer(normalize(gold), tuple_order=o["tuple_order"])
        p = pred if isinstance(pred, Node) else parse_answer(normalize(pred), tuple_order=o["tuple_order"])
    except Exception:  # noqa: BLE001 - the fast path never fails a verification: it abstains
        return None
    try:
        return compare_nodes(g, p, o)
    except Exception:  # noqa: BLE001
        return None


def compare_nodes(g: Node, p: Node, o: dict) -> bool | None:
    kg, kp = g.kind, p.kind
    if kg == "either" or kp == "either":      # ambiguous spelling: equal if any reading is
        gs = g.items if kg == "either" else (g,)
        ps = p.items if kp == "either" else (p,)
        rs = [compare_nodes(a, b, o) for a in gs for b in ps]
        return True if True in rs else (None if None in rs else False)
    # unwrap assignments unless both name the same thing
    if kg == "assign" and kp == "assign":      # names on the left do not matter: W(x)=1 ~ W(n)=1
        return compare_nodes(g.items[0], p.items[0], o)
    if kg == "eq" and kp == "assign" or kg == "assign" and kp == "eq":
        a = g if kg == "assign" else p
        as_eq = _assign_as_eq(a)
        if as_eq is not None:
            return compare_nodes(as_eq, p, o) if kg == "assign" else compare_nodes(g, as_eq, o)
    if kg == "assign":
        return compare_nodes(g.items[0], p, o)
    if kp == "assign":
        return compare_nodes(g, p.items[0], o)
    # one-element collections equal their element
    if kg in ("list", "set") and len(g.items) == 1 and kp not in ("list", "set", "tuple"):
        return compare_nodes(g.items[0], p, o)
    if kp in ("list", "set") and len(p.items) == 1 and kg not in ("list", "set", "tuple"):
        return compare_nodes(g, p.items[0], o)
    if kg in ("expr", "pct") and kp in ("expr", "pct"):
        results = []
        for a in _pct_variants(g, o):
            for b in _pct_variants(p, o):
                results.append(_num_equal(a, b, o))
        if any(r is True for r in results):
            return True
        if all(r is False for r in results):
            return False
        return None
    if kg == "text" and kp == "text":
        return g.value == p.value
    if {kg, kp} <= {"text", "expr"}:
        t = g if kg == "text" else p
        e = p if kg == "text" else g
        if e.value[0] == "s":
            return t.value == e.value[1].lower()
        return None
    if kg in ("list", "set", "tuple") and kp in ("list", "set", "tuple"):
        ordered = "tuple" in (kg, kp) and not (kg == "set" or kp == "set")
        if ordered or o["tuple_order"] == "strict" and kg == kp == "list":
            if len(g.items) != len(p.items):
                return False
            return _all3(compare_nodes(a, b, o) for a, b in zip(g.items, p.items, strict=False))
        return _match_sets(list(g.items), list(p.items), o)
    if kg == "interval" and kp == "interval":
        glo, ghi, gl, gr = g.value
        plo, phi, pl, pr = p.value
        if (gl, gr) != (pl, pr):
            return False
        return _all3([_num_equal(glo, plo, o), _num_equal(ghi, phi, o)])
    if {kg, kp} == {"interval", "tuple"}:
        iv, tp = (g, p) if kg == "interval" else (p, g)
        lo, hi, lc, rc = iv.value
        if lc or rc or len(tp.items) != 2:
            return False
        return _all3([compare_nodes(Node("expr", (), lo), tp.items[0], o),
                      compare_nodes(Node("expr", (), hi), tp.items[1], o)])
    if kg == "union" and kp == "union":
        return _match_sets(list(g.items), list(p.items), o)
    if {kg, kp} == {"union", "interval"}:
        u, iv = (g, p) if kg == "union" else (p, g)
        return _match_sets(list(u.items), [iv], o) if len(u.items) == 1 else False
    if kg != kp and {kg, kp} & {"eq"} and {kg, kp} <= {"eq", "expr", "pct", "tuple", "list", "set", "interval", "text"}:
        return False                             # an equation is not a value (a + 3z = 0 vs 0)
    if kg == "rel" and kp == "rel":
        return _rel_equal(g.value, p.value, o)
    if kg == "eq" and kp == "eq":
        da = ("+", g.value[0], ("neg", g.value[1]))
        db = ("+", p.value[0], ("neg", p.value[1]))
        return _proportional(da, db, positive=False, o=o)
    if kg == "matrix" and kp == "matrix":
        if len(g.items) != len(p.items) or len(g.items[0]) != len(p.items[0]):
            return False
        return _all3(compare_nodes(a, b, o) for ra, rb in zip(g.items, p.items, strict=False) for a, b in zip(ra, rb, strict=False))
    if {kg, kp} <= {"expr", "pct", "list", "set", "tuple", "interval", "union", "text"} and \
            not ({kg, kp} & {"interval", "union"}):
        # a value against a collection of several values
        return False
    return None


def _assign_as_eq(n: Node) -> Node | None:
    """``y = -x/2 + 3/4`` as the equation it also is (to compare with ``2x + 4y - 3 = 0``)."""
    if n.items[0].kind != "expr":
        return None
    try:
        lhs = parse_expr(n.value)
    except ParseError:
        return None
    return Node("eq", (), (lhs, n.items[0].value))


def _all3(results) -> bool | None:
    """Three-valued AND."""
    out: bool | None = True
    for r in results:
        if r is False:
            return False
        if r is None:
            out = None
    return out


def _match_sets(a: list, b: list, o) -> bool | None:
    """Unordered comparison (duplicates ignored): every element of each side has a match on the other."""
    undecided = False
    for xs, ys, forward in ((a, b, True), (b, a, False)):
        for x in xs:
            found = False
            for y in ys:
                r = compare_nodes(x, y, o) if forward else compare_nodes(y, x, o)
                if r is True:
                    found = True
                    break
                if r is None:
                    undecided = True
            if not found:
                return None if undecided else False
    return True


# ----------------------------------------------------------------------------------------- keys
def canonical(s: str, **options) -> str:
    """A key that equal answers share (for majority voting): values, not spellings.

    >>> canonical("\\\\frac{1}{2}") == canonical("0.5") == canonical("1/2")
    True
    >>> canonical("x^2+2x+1") == canonical("(x+1)^2")
    True
    """
    o = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
    norm = normalize(s)
    try:
        node = parse_answer(norm, tuple_order=o["tuple_order"])
    except (ParseError, RecursionError, ValueError, ZeroDivisionError, OverflowError):
        return "s:" + norm
    try:
        return _node_key(node, o)
    except (ValueError, ZeroDivisionError, OverflowError, KeyError, TypeError, RecursionError):
        return "s:" + norm


def _node_key(n: Node, o) -> str:
    k = n.kind
    if k == "either":
        return _node_key(n.items[0], o)
    if k == "assign":
        return _node_key(n.items[0], o)
    if k in ("expr", "pct"):
        ast = n.value[1] if (k == "pct" and o["percent"] == "either") else n.value
        ex = exact(ast)
        if ex is not None:
            return "q:" + str(ex)
        names = symbols_of(ast)
        vals = []
        for env in sample_envs(names, 3 if names else 1):
            v = evaluate(ast, env)
            vals.append(f"{v.real:.6g},{v.imag:.6g}" if abs(v.imag) > 1e-9 else f"{v.real:.6g}")
        return "v:" + ",".join(sorted(names)) + ":" + ";".join(vals)
    if k == "text":
        return "t:" + n.value
    if k in ("list", "set", "union"):
        keys = sorted({_node_key(x, o) for x in n.items})
        return "{" + "|".join(keys) + "}" if not (k == "list" and o["tuple_order"] == "strict") else \
            "(" + "|".join(_node_key(x, o) for x in n.items) + ")"
    if k in ("tuple",):
        return "(" + "|".join(_node_key(x, o) for x in n.items) + ")"
    if k == "matrix":
        return "[" + ";".join("|".join(_node_key(c, o) for c in r) for r in n.items) + "]"
    if k == "interval":
        lo, hi, lc, rc = n.value
        return ("[" if lc else "(") + _node_key(Node("expr", (), lo), o) + "," + \
            _node_key(Node("expr", (), hi), o) + ("]" if rc else ")")
    raise ValueError(k)
