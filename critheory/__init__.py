"""critheory: criticality of wide and deep neural networks at initialization."""
from critheory.errors import *  # noqa: F401,F403
from critheory.activation.symbolic import Activation

__version__ = "0.1.0"
__all__ = ["Activation", "__version__"]
