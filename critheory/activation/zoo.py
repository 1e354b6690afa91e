"""The built-in activation zoo.

Each entry is a sympy formula in ``x`` with default parameter values; parameters can be
overridden by name (``make("leaky_relu", {"slope": 0.2})``).

=============  ===============================================  =====================
name           φ(x)                                             parameters
=============  ===============================================  =====================
linear         x
relu           max(0, x)
leaky_relu     max(0, x) + slope·min(0, x)                      slope = 0.01
abs            |x|
hardtanh       max(-1, min(1, x))
relu6          min(max(0, x), 6)
tanh           tanh(x)
erf            erf(x)
sigmoid        1/(1 + e^{-x})
softplus       log(1 + e^x)
gelu           x Φ(x) = x (1 + erf(x/√2))/2  (exact)
gelu_tanh      x/2 (1 + tanh(√(2/π)(x + 0.044715 x³)))
swish, silu    x/(1 + e^{-beta x})                              beta = 1
mish           x tanh(log(1 + e^x))
elu            x (x > 0), alpha (e^x - 1) (x <= 0)              alpha = 1
selu           scale·elu(x; alpha)                              alpha, scale: Klambauer et al. 2017
celu           max(0, x) + min(0, alpha (e^{x/alpha} - 1))      alpha = 1
softsign       x/(1 + |x|)
sin, cos       sin(x), cos(x)
=============  ===============================================  =====================
"""
from __future__ import annotations

from typing import Mapping

from critheory.errors import InvalidArgumentError

__all__ = ["ZOO", "names", "make", "default_values", "build"]

# name -> (formula, default parameters)
ZOO: dict[str, tuple[str, dict[str, str]]] = {
    "linear": ("x", {}),
    "relu": ("Max(0, x)", {}),
    "leaky_relu": ("Max(0, x) + slope*Min(0, x)", {"slope": "1/100"}),
    "abs": ("Abs(x)", {}),
    "hardtanh": ("Max(-1, Min(1, x))", {}),
    "relu6": ("Min(Max(0, x), 6)", {}),
    "tanh": ("tanh(x)", {}),
    "erf": ("erf(x)", {}),
    "sigmoid": ("1/(1 + exp(-x))", {}),
    "softplus": ("log(1 + exp(x))", {}),
    "gelu": ("x*(1 + erf(x/sqrt(2)))/2", {}),
    "gelu_tanh": ("x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2", {}),
    "swish": ("x/(1 + exp(-beta*x))", {"beta": "1"}),
    "silu": ("x/(1 + exp(-x))", {}),
    "mish": ("x*tanh(log(1 + exp(x)))", {}),
    "elu": ("Piecewise((x, x > 0), (alpha*(exp(x) - 1), True))", {"alpha": "1"}),
    "selu": ("scale*Piecewise((x, x > 0), (alpha*(exp(x) - 1), True))",
             {"alpha": "1.6732632423543772848170429916717",
              "scale": "1.0507009873554804934193349852946"}),
    "celu": ("Max(0, x) + Min(0, alpha*(exp(x/alpha) - 1))", {"alpha": "1"}),
    "softsign": ("x/(1 + Abs(x))", {}),
    "sin": ("sin(x)", {}),
    "cos": ("cos(x)", {}),
}


def names() -> list[str]:
    """Names of the built-in activations."""
    return list(ZOO)


def make(name: str, params: Mapping[str, float] | None = None):
    """Build a zoo activation, overriding default parameters by name.

    Examples
    --------
    >>> make("elu", {"alpha": 0.5}).name
    'elu(alpha=0.5)'
    """
    key = name.strip().lower()
    if key not in ZOO:
        raise InvalidArgumentError(f"unknown activation {name!r}; built-in: {', '.join(ZOO)}")
    formula, defaults = ZOO[key]
    params = dict(params or {})
    unknown = set(params) - set(defaults)
    if unknown:
        raise InvalidArgumentError(
            f"activation {key} has no parameter(s) {', '.join(sorted(unknown))}"
            f" (it has: {', '.join(defaults) or 'none'})")
    if not params:
        act = _from_zoo_cache(key)
        if act is not None:
            return act
    values = dict(default_values(key))
    values.update(params)
    label = key
    if params:
        label += "(" + ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                 for k, v in params.items()) + ")"
    return build(key, label, formula, tuple(sorted((k, str(v)) for k, v in values.items())))


_CACHE: dict = {}
_DEFAULTS: dict = {}
_ZOO_CACHED: dict = {}


def _forget_cached() -> None:
    _ZOO_CACHED.clear()


def _from_zoo_cache(key: str):
    """The zoo activation ``key`` (default parameters) built from the zoo cache without sympy
    (see :mod:`critheory.activation.cache`), or None where the cache does not apply."""
    if key not in _ZOO_CACHED:
        from critheory.activation import cache

        cache.on_reset(_forget_cached)
        entry = cache.entry(key)
        act = None
        if entry is not None:
            from critheory.activation.symbolic import Activation

            act = Activation.from_cache_entry(entry, key)
        _ZOO_CACHED[key] = act
    return _ZOO_CACHED[key]


def default_values(key: str) -> dict:
    """The zoo entry's default parameter values, exact (strings through nsimplify), cached:
    nsimplify parses a string with sympy's parser, ~1 ms per call."""
    if key not in _DEFAULTS:
        import sympy as sp

        _DEFAULTS[key] = {k: sp.nsimplify(v) if isinstance(v, str) else v
                          for k, v in ZOO[key][1].items()}
    return _DEFAULTS[key]


def build(key: str, label: str, formula: str, items: tuple):
    """The activation of the zoo formula ``formula`` with parameter values ``items`` ((name,
    value text) pairs, sorted), named ``label``, derived live with sympy (memoized by formula
    and values; the zoo cache is not consulted)."""
    from critheory.activation.symbolic import Activation
    import sympy as sp

    ck = (formula, items)
    if ck not in _CACHE:
        act = Activation.from_string(formula, {k: sp.sympify(v) for k, v in items}, name=label)
        _CACHE[ck] = act
    act = _CACHE[ck]
    if act.name != label:
        act = Activation(act.expr, label, _validate=False)
    return act
