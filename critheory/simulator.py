"""The finite-width simulator's public API (re-exported from :mod:`critheory.simulation`).

>>> from critheory.simulator import simulate
>>> simulate("relu", 2.0, 0.1, width=16, depth=3, seed=0).apjn.shape
(1, 3)
"""
from .simulation import *  # noqa: F401,F403
from .simulation import __all__  # noqa: F401
