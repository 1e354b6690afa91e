"""Small helper of the simulator modules (argument checks and JSON conversion live in
:mod:`critheory.common`)."""
from __future__ import annotations

import numpy as np

__all__ = ["readonly"]


def readonly(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` as a read-only float/int array (None passes through)."""
    if a is None:
        return None
    a = np.array(a)
    a.flags.writeable = False
    return a
