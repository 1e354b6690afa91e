"""Formulas in ``x``: checked as plain arithmetic, then parsed to a sympy expression.

``sympy``'s ``parse_expr`` evaluates its input as Python code. :func:`parse` first refuses what
is not an arithmetic formula (attribute access, dunder and builtin names, keywords, strings,
statements: :func:`check_formula_tokens`), calls of anything but a function
(:func:`check_function_names`), and constants too large to compute (``9**9**9``,
``factorial(10**6)``: :func:`check_constants`, read off the unevaluated formula); the zoo
activations may be called as functions (``gelu(x)``, :func:`zoo_functions`).

Examples
--------
>>> parse("tanh(a*x) + relu(x)", {"a": 2})
tanh(a*x) + Max(0, x)
>>> parse("__import__('os')")
Traceback (most recent call last):
...
critheory.errors.ActivationParseError: cannot parse activation "__import__('os')": name '__import__' is not allowed in a formula in x
"""
from __future__ import annotations

import builtins
import math
import unicodedata
import warnings
from typing import Mapping

from critheory.activation import expressions as ex
from critheory.activation.expressions import need_sympy, sp
from critheory.errors import ActivationParseError, CritheoryError, InvalidArgumentError

__all__ = ["parse", "normalize", "check_formula_tokens", "check_function_names", "check_constants",
           "zoo_functions", "RESERVED_NAMES", "MAX_CONSTANT_DIGITS"]


def normalize(text: str) -> str:
    """Compatibility forms (fullwidth letters, ligatures, superscripts) as plain ASCII (NFKC)."""
    return unicodedata.normalize("NFKC", text)


def parse(text: str, params: Mapping[str, float] | None = None):
    """The sympy expression of a formula in ``x``, parameters left as real symbols.

    Parameters
    ----------
    text : str
        The formula (unicode compatibility forms are read as ASCII: fullwidth letters,
        ligatures, superscripts).
    params : mapping, optional
        Names of the formula's parameters (their values are substituted by the caller).

    Raises
    ------
    ActivationParseError
        Not a formula in ``x`` (see the module docstring); InvalidArgumentError for a bad
        parameter name.
    """
    if not isinstance(text, str) or not text.strip():
        raise ActivationParseError("empty activation expression")
    text = normalize(text)
    params = dict(params or {})
    check_formula_tokens(text, allowed=params)
    need_sympy()
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations

    local = {"x": ex.X}
    for key in params:
        if not isinstance(key, str) or not key.isidentifier() or key == "x":
            raise InvalidArgumentError(f"invalid parameter name {key!r}")
        if key in RESERVED_NAMES:
            raise InvalidArgumentError(
                f"parameter name {key!r} is reserved (a constant or function of formulas); "
                "choose another name")
        local[key] = sp.Symbol(key, real=True)
    check_function_names(text, allowed=params)
    # zoo activations as functions (gelu(x), sigmoid(1.702*x)), and a few friendly aliases
    for key, fn in zoo_functions(tuple(sorted(params))).items():
        local.setdefault(key, fn)
    local.setdefault("relu", lambda u: sp.Max(0, u))
    local.setdefault("step", sp.Heaviside)
    local.setdefault("pi", sp.pi)
    local.setdefault("e", sp.E)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # unevaluated first: integer towers and factorials are bounded before sympy
            # computes them exactly (9**9**9 has 369 million digits)
            raw = parse_expr(text, local_dict=local,
                             transformations=standard_transformations, evaluate=False)
            check_constants(raw, text)
            expr = parse_expr(text, local_dict=local, transformations=standard_transformations,
                              evaluate=True)
    except CritheoryError:
        raise
    except Exception as exc:  # SyntaxError, TokenError, TypeError, AttributeError...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ActivationParseError(f"cannot parse activation {text!r}: {msg}") from None
    if not isinstance(expr, sp.Expr):
        raise ActivationParseError(f"activation {text!r} is not an expression in x")
    return expr


_BUILTIN_NAMES = frozenset(dir(builtins)) - {"abs", "pow", "min", "max", "True", "False"}
_FORBIDDEN_OPS = frozenset({".", ";", "=", ":", ":=", "[", "]", "{", "}", "@", "->", "\\"})


#: names a parameter may not take: constants and the variable of formulas
RESERVED_NAMES = frozenset({"x", "pi", "e", "E", "I", "oo", "zoo", "nan", "S", "N", "relu",
                             "step"})
#: sympy functions that may be called in a formula besides the zoo names: the elementary and
#: special functions (sympy Function classes); operations (expand, integrate, Sum, ...) and
#: the combinatorial functions of huge integers are not among them
_BLOCKED_FUNCTIONS = frozenset({"factorial2", "subfactorial", "binomial", "RisingFactorial",
                                "FallingFactorial", "rf", "ff", "fibonacci", "lucas", "bell",
                                "bernoulli", "catalan", "euler", "harmonic", "partition",
                                "primepi", "prime", "totient", "mobius", "divisor_sigma",
                                "Function", "Lambda", "Derivative", "Integral", "Subs",
                                "DiracDelta", "Sum", "Product", "Limit", "Order"})
#: callables of formulas that are not sympy Function classes: pieces, conditions, numbers
_ALSO_CALLABLE = frozenset({"Piecewise", "Max", "Min", "sqrt", "root", "cbrt", "Abs", "And",
                            "Or", "Not", "Xor", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Rational",
                            "Integer", "Float", "S"})
#: magnitude (decimal digits) of a constant in a formula beyond which it is refused: float64
#: holds 308 digits, so anything larger ends as inf or 0 anyway
MAX_CONSTANT_DIGITS = 400


def _callable_names() -> frozenset:
    import sympy

    out = set()
    for k in dir(sympy):
        v = getattr(sympy, k)
        if k.startswith("_") or k in _BLOCKED_FUNCTIONS:
            continue
        if isinstance(v, type) and issubclass(v, sympy.Function) or k in _ALSO_CALLABLE:
            out.add(k)
    return frozenset(out)


_CALLABLE: list = []


def check_function_names(text: str, allowed=()) -> None:
    """Every name called in a formula must be a function: a sympy elementary/special function,
    a zoo activation, ``relu``/``step``; anything else (``foo(x)``, ``expand(...)``) is a
    one-line error naming it rather than an undefined function or a symbolic operation."""
    import io
    import tokenize

    from critheory.activation import zoo

    if not _CALLABLE:
        _CALLABLE.append(_callable_names() | set(zoo.ZOO) | {"relu", "step"})
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
              if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    for a, b in zip(tokens[:-1], tokens[1:]):
        if a.type == tokenize.NAME and b.type == tokenize.OP and b.string == "(":
            if a.string in allowed:
                raise ActivationParseError(
                    f"cannot parse activation {text!r}: parameter {a.string!r} is called as a "
                    "function")
            if a.string not in _CALLABLE[0]:
                raise ActivationParseError(
                    f"cannot parse activation {text!r}: unknown function {a.string!r} (zoo "
                    "names, relu, step and sympy's elementary and special functions are known)")


def zoo_functions(user_params: tuple) -> dict:
    """Each zoo activation (other than names sympy already defines identically: tanh, erf,
    sin, cos, abs) as a function of its argument, ``gelu(u) = u(1 + erf(u/√2))/2``, with the
    zoo's default parameters except those the user gives as parameters (``--param beta=2``
    with ``swish(x)``)."""
    key = user_params
    if key not in _ZOO_FUNCS:
        from sympy.parsing.sympy_parser import parse_expr, standard_transformations

        from critheory.activation import zoo

        u = sp.Dummy("u", real=True)
        out = {}
        for name, (formula, defaults) in zoo.ZOO.items():
            if name in ("tanh", "erf", "sin", "cos", "abs"):
                continue
            loc = {"x": ex.X}
            loc.update({k: sp.Symbol(k, real=True) for k in defaults})
            e = parse_expr(formula, local_dict=loc, transformations=standard_transformations)
            vals = {sp.Symbol(k, real=True): v for k, v in zoo.default_values(name).items()
                    if k not in user_params}
            e = e.subs(vals).subs(ex.X, u)
            out[name] = sp.Lambda(u, e)
        if len(_ZOO_FUNCS) > 32:
            _ZOO_FUNCS.clear()
        _ZOO_FUNCS[key] = out
    return _ZOO_FUNCS[key]


_ZOO_FUNCS: dict = {}


def check_constants(raw, text: str) -> None:
    """Refuse integer towers and factorials whose value has more than
    :data:`MAX_CONSTANT_DIGITS` digits, read off the *unevaluated* formula (evaluating
    ``2**2**2**2**2`` or ``factorial(10**6)`` exactly takes minutes and ends in Python's
    integer-string limit): every constant power and factorial is estimated in log10 by
    mpmath first."""
    import mpmath

    def log10_abs(e):
        """log10 |e| of a constant subtree (None: depends on x or not a plain number)."""
        if e.free_symbols:
            return None
        if e.is_Integer or e.is_Float or e.is_Rational:
            v = abs(e)
            return -math.inf if v == 0 else float(mpmath.log10(mpmath.mpf(sp.Rational(v).p))
                                                  - mpmath.log10(sp.Rational(v).q))
        if isinstance(e, sp.Pow):
            lb = log10_abs(e.base)
            if lb is None:
                return None
            ex = _const_value(e.exp)
            if ex is None:
                return None
            return lb * ex
        if isinstance(e, sp.factorial):
            n = _const_value(e.args[0])
            if n is None:
                return None
            n = max(float(n), 1.0)
            return float(mpmath.loggamma(n + 1) / mpmath.log(10))
        if isinstance(e, sp.Mul):
            parts = [log10_abs(a) for a in e.args]
            return None if any(p is None for p in parts) else sum(parts)
        if isinstance(e, sp.Add):
            parts = [log10_abs(a) for a in e.args]
            return None if any(p is None for p in parts) else max(parts) + 1
        return None

    def _const_value(e):
        lg = log10_abs(e)
        if lg is None:
            return None
        if lg > MAX_CONSTANT_DIGITS:
            raise ActivationParseError(
                f"cannot parse activation {text!r}: the constant {_short(e)} has about 10^"
                f"{math.log10(lg):.0f} digits (at most {MAX_CONSTANT_DIGITS} digits in a formula)")
        try:
            return float(sp.N(e, 20)) if e.free_symbols == set() else None
        except (TypeError, ValueError, OverflowError):
            return None

    for node in sp.preorder_traversal(raw):
        if isinstance(node, (sp.Pow, sp.factorial)) and not node.free_symbols:
            lg = log10_abs(node)
            if lg is not None and lg > MAX_CONSTANT_DIGITS:
                raise ActivationParseError(
                    f"cannot parse activation {text!r}: the constant {_short(node)} has about "
                    f"{lg:.3g} digits (at most {MAX_CONSTANT_DIGITS} in a formula)")


def _short(e) -> str:
    t = str(e)
    return t if len(t) <= 40 else t[:37] + "..."


def check_formula_tokens(text: str, allowed=()) -> None:
    """Reject formulas that are not plain arithmetic expressions before ``parse_expr`` ``eval``s
    them: attribute access, dunder and Python builtin names, keywords, strings, statements.

    ``parse_expr`` evaluates its input as Python code; without this check
    ``"__import__('os').system(...)"`` given as an activation (on the command line, say) runs.
    """
    import io
    import keyword
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise ActivationParseError(f"cannot parse activation {text!r}: {msg}") from None
    for tok in tokens:
        bad = None
        if tok.type == tokenize.NAME:
            if tok.string in allowed:
                continue
            if tok.string.startswith("_") or tok.string in _BUILTIN_NAMES:
                bad = f"name {tok.string!r}"
            elif keyword.iskeyword(tok.string) and tok.string not in ("True", "False"):
                bad = f"keyword {tok.string!r}"
        elif tok.type == tokenize.STRING:
            bad = "a string literal"
        elif tok.type == tokenize.OP and tok.string in _FORBIDDEN_OPS:
            bad = f"{tok.string!r}"
        elif tok.type == tokenize.ERRORTOKEN and tok.string.strip():
            bad = f"{tok.string!r}"
        if bad:
            raise ActivationParseError(
                f"cannot parse activation {text!r}: {bad} is not allowed in a formula in x")

