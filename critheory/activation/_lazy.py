"""Heavy dependencies imported on first use.

``sp = LazyModule("sympy")`` stands for the module: the first attribute access imports it (sympy
takes ~0.8 s, ``scipy.special`` ~0.5 s, mpmath ~0.06 s) and every later one is a plain
``getattr`` on the real module. Callbacks registered with :func:`on_import` run once, when the
module is first imported through any stand-in (they set module globals derived from it, such as
the symbol ``x``).

A command that never touches sympy (``critheory moments tanh`` with the zoo cache, ``critheory
--help``) then never pays for it.
"""
from __future__ import annotations

import importlib
import sys

__all__ = ["LazyModule", "on_import", "is_loaded"]

_HOOKS: dict[str, list] = {}


def on_import(name: str, hook) -> None:
    """Run ``hook(module)`` once, when ``name`` is first imported through a :class:`LazyModule`
    (at once if one already did)."""
    mod = _LOADED.get(name)
    if mod is not None:
        hook(mod)
    else:
        _HOOKS.setdefault(name, []).append(hook)


_LOADED: dict = {}


def load(name: str):
    """Import ``name`` and run its :func:`on_import` hooks (once)."""
    mod = _LOADED.get(name)
    if mod is None:
        mod = importlib.import_module(name)
        _LOADED[name] = mod
        for hook in _HOOKS.pop(name, ()):
            hook(mod)
    return mod


def is_loaded(name: str) -> bool:
    """Whether ``name`` is imported (by anyone)."""
    return name in sys.modules


class LazyModule:
    """A stand-in for the module ``name``, imported on first attribute access."""

    __slots__ = ("_name", "_mod")

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_mod", None)

    def __getattr__(self, attr: str):
        mod = object.__getattribute__(self, "_mod")
        if mod is None:
            mod = load(object.__getattribute__(self, "_name"))
            object.__setattr__(self, "_mod", mod)
        return getattr(mod, attr)

    def __repr__(self) -> str:
        return f"<lazy module {object.__getattribute__(self, '_name')!r}>"
