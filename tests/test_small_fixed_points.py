"""Fixed points below the scan's first K (1e-10): a small bias variance puts the stable fixed
point of an odd activation there (issue 31: tanh at σ_w² = 0.5, σ_b² = 1e-20 was reported as
"no fixed point, K grows without bound")."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from critheory.errors import CritheoryError
from critheory.theory.meanfield.fixed_points import analyze_point, fixed_points
from critheory.theory.meanfield.maps import architecture


@pytest.mark.parametrize("sb", [1e-12, 1e-20, 1e-100, 1e-300, 1e-307])
@pytest.mark.parametrize("act, slope2", [("tanh", 1.0), ("erf", 4 / np.pi)])
def test_tiny_fixed_point_against_linearization(act, slope2, sb):
    """Independent route: for tanh and erf, φ(x)² = c (x² − 2x⁴/3) + O(x⁶) with c = φ'(0)², so
    E_K[φ²] = c (K − 2K²) + O(K³) and the fixed point of K' = σ_b² + σ_w² E_K[φ²] solves
    2 σ_w c K² + (1 − σ_w c) K = σ_b² to relative O(K*²) <= 1e-23 here."""
    sw = 0.5
    a = 1 - sw * slope2
    exact = 2 * sb / (a + np.sqrt(a * a + 8 * sw * slope2 * sb))
    fps = fixed_points(architecture("mlp", act), sw, sb)
    assert len(fps) == 1
    assert fps[0].K == pytest.approx(exact, rel=4e-16)
    assert fps[0].stable
    p = analyze_point(architecture("mlp", act), sw, sb)
    assert p.runaway is None and p.attractor.K == fps[0].K
    assert p.chi_parallel == pytest.approx(sw * slope2 * (1 - 4 * exact), rel=1e-12)


def test_subnormal_fixed_point_refused():
    with pytest.raises(CritheoryError, match="smallest normal number"):
        fixed_points(architecture("mlp", "tanh"), 0.5, 1e-320)


def test_cli_subnormal_variances_refused_fast():
    """The issue 31 reproducer: one line, exit 2, within seconds (it ran 3 min 45 s)."""
    cmd = [sys.executable, "-m", "critheory", "point", "swish(1*x + 100*0.561*(x - -1))",
           "--weight-var", "1e-320", "--bias-var", "1e-320", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "smallest normal" in r.stderr
