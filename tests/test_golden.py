"""Golden test: the command lines of ``tests/golden/commands.py`` give the frozen outputs.

The outputs were frozen before the block redesign (``tests/golden/generate.py``). Numbers must
agree to 1e-12 relative (an absolute floor of 1e-300 only), strings exactly apart from the
numbers inside them, which get the same tolerance; list lengths, ``null``s and exit statuses
exactly; every frozen key must be present (keys added since, such as the self-description of
issue 26 or the degrees of freedom of the verdicts, are allowed). ``elapsed`` (wall time) is
not compared.
"""
from __future__ import annotations

import json
import math
import pathlib
import re
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "golden"))

from generate import run  # noqa: E402

RTOL = 1e-12
#: Ill-conditioned outputs get a looser tolerance, from their conditioning: the exponent fits of
#: the half-stable class fit log|K^l − K*| with |K^l − K*|/K* ~ 1e-4 at the verification depth,
#: which amplifies an ulp-level change of K* (a different but equally exact order of the same
#: floating-point operations) by ~1e4; its APJN exponent 2χ_⊥'/χ_∥' divides by χ_∥'(K*), ~6e-6
#: for SWISH (a nearly degenerate tangent), which amplifies by ~1e4 again.
RTOL_CONDITIONED = 1e-9
_CONDITIONED = re.compile(r"^\.exponents\.(fit\.[a-z_]+|laws\.dchi_[A-Za-z_]+|apjn)$")
_IGNORED = {"elapsed"}
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_DATA = json.loads((HERE / "data" / "golden.json").read_text())["entries"]


def _close(a: float, b: float, rtol: float = RTOL) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b)) or a == b


def _str_diff(a: str, b: str, path: str, bad: list) -> None:
    if a == b:
        return
    if _NUM.sub("#", a) != _NUM.sub("#", b):
        bad.append(f"{path}: {a!r} != {b!r}")
        return
    for x, y in zip(_NUM.findall(a), _NUM.findall(b)):
        # a number printed with >= 11 significant digits may round differently in its last
        # digit after a change of 1e-12; shorter ones must print the same
        digits = len(re.sub(r"[eE].*|[-+.]", "", x).lstrip("0")) or 1
        tol = max(RTOL, 10.0 ** (1 - digits)) if digits >= 11 else RTOL
        if not (float(x) == float(y) or abs(float(x) - float(y)) <= tol * abs(float(y))):
            bad.append(f"{path}: {a!r} != {b!r}")
            return


def diff(new, old, path: str = "") -> list[str]:
    """Every difference between two JSON values beyond the tolerance, as readable lines."""
    bad: list[str] = []
    if isinstance(old, dict):
        if not isinstance(new, dict) or not set(old) - _IGNORED <= set(new):
            got = sorted(new) if isinstance(new, dict) else type(new).__name__
            return [f"{path}: keys {got} lack some of {sorted(old)}"]
        for k in old:
            if k not in _IGNORED:
                bad += diff(new[k], old[k], f"{path}.{k}")
    elif isinstance(old, list):
        if not isinstance(new, list) or len(new) != len(old):
            return [f"{path}: list of {len(new) if isinstance(new, list) else new!r} != "
                    f"{len(old)} items"]
        for i, (x, y) in enumerate(zip(new, old)):
            bad += diff(x, y, f"{path}[{i}]")
    elif isinstance(old, bool) or old is None:
        if new is not old:
            bad.append(f"{path}: {new!r} != {old!r}")
    elif isinstance(old, (int, float)):
        if isinstance(new, bool) or not isinstance(new, (int, float)) \
                or not _close(float(new), float(old),
                              RTOL_CONDITIONED if _CONDITIONED.match(path) else RTOL):
            bad.append(f"{path}: {new!r} != {old!r}")
    elif isinstance(old, str):
        if not isinstance(new, str):
            bad.append(f"{path}: {new!r} != {old!r}")
        else:
            for i, (x, y) in enumerate(zip(new.splitlines(), old.splitlines())):
                _str_diff(x, y, f"{path} line {i + 1}", bad)
            if len(new.splitlines()) != len(old.splitlines()):
                bad.append(f"{path}: {len(new.splitlines())} lines != {len(old.splitlines())}")
    return bad


def test_diff_sees_changes():
    assert diff({"a": [1.0, "x = 0.25"]}, {"a": [1.0, "x = 0.25"]}) == []
    assert diff({"a": [1.0 + 1e-10]}, {"a": [1.0]})
    assert diff({"a": "x = 0.26"}, {"a": "x = 0.25"})
    assert diff({"a": None}, {"a": 0.0}) and diff({"b": 1}, {"a": 1})
    assert diff({"a": [1, 2]}, {"a": [1]})
    assert diff({"exponents": {"apjn": 1.0 + 1e-11}}, {"exponents": {"apjn": 1.0}}) == []
    assert diff({"exponents": {"apjn": 1.0 + 1e-8}}, {"exponents": {"apjn": 1.0}})
    assert diff({"exponents": {"kernel": 1.0 + 1e-11}}, {"exponents": {"kernel": 1.0}})


@pytest.mark.parametrize("entry", _DATA, ids=[" ".join(e["argv"])[:80] for e in _DATA])
def test_golden(entry, tmp_path):
    got = run(entry["argv"], str(tmp_path))
    assert got["rc"] == entry["rc"], got["stderr"]
    bad = diff(got["out"], entry["out"])
    assert not bad, f"{len(bad)} differences, first ones:\n" + "\n".join(bad[:20])
