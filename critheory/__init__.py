"""critheory: criticality of wide and deep neural networks at initialization."""
from critheory.errors import *  # noqa: F401,F403

__version__ = "0.1.0"
__all__ = ["Activation", "__version__"]


def __getattr__(name: str):
    # imported on first access: ``import critheory`` (and so every command line, ``critheory
    # --help`` included) stays free of numpy, sympy and scipy
    if name == "Activation":
        from critheory.activation.symbolic import Activation

        return Activation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"Activation"})
