"""Benchmark of the Jacobian spectral density (issue 17: a density on 400 points in < 1 s).

For each case the script times, in the same run:

* **density** — ``JacobianSpectrum.density(x)`` on 400 points of the support (the continuation
  of the resolvent equation from the edges), best of ``--repeat``;
* **spectrum** — the whole ``jacobian_spectrum(...)`` call (fixed point, law of φ'², edges,
  moments, 400-point density, verdict) after a first untimed call (symbolic set-up);
* **baseline** — what a user would do without the theory: one simulated Jacobian of width
  ``--width`` built from ``depth`` explicit ``N × N`` products (Haar matrices by QR for
  orthogonal weights) and its singular values by ``numpy.linalg.svd`` (one network: a noisy
  histogram of ``N`` values, not a density).

It prints the times and the ratio baseline/density; ``--json`` prints one machine-readable
line. ``--quick``: width 256 baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path


try:
    from critheory.theory.spectra import jacobian_spectrum
except ImportError:  # running from a checkout without installation
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from critheory.theory.spectra import jacobian_spectrum

CASES = [("tanh", 1.05, 0.05, "gaussian", "mlp", 10),
         ("tanh", 1.05, 0.05, "orthogonal", "mlp", 10),
         ("relu", 2.0, 0.0, "gaussian", "mlp", 10),
         ("relu", 2.0, 0.0, "orthogonal", "mlp", 10),
         ("tanh", 1.0, 0.1, "gaussian", "resnet", 10)]


def _baseline(act, sw, sb, weights, arch, depth, width, q):
    from critheory.simulation.spectra import simulate_spectrum

    def run():
        r = simulate_spectrum(act, sw, sb, depth=depth, width=width, seeds=1, arch=arch,
                              weights=weights, seed=0, input_var=q)
        return r
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    width = a.width or (256 if a.quick else 512)
    rows = []
    for act, sw, sb, weights, arch, L in CASES:
        s = jacobian_spectrum(act, sw, sb, L, arch=arch, weights=weights)   # set-up, untimed
        t_spec = best_of(lambda: jacobian_spectrum(act, sw, sb, L, arch=arch, weights=weights),
                       a.repeat)
        t_dens = best_of(lambda: s.density(s.x), a.repeat)
        q = s.fixed_point if arch == "mlp" else 1.0
        t_base = best_of(_baseline(act, sw, sb, weights, arch, L, width, q), 1)
        rows.append({"case": f"{act} {arch} {weights} L={L}", "density_s": t_dens,
                     "spectrum_s": t_spec, "baseline_s": t_base,
                     "ratio": t_base / t_dens, "points": int(s.x.size),
                     "under_1s": t_dens < 1.0})
    if a.json:
        print(json.dumps({"width": width, "rows": rows}))
        return 0
    print(f"density on 400 points vs one simulated Jacobian (width {width}) + its SVD")
    print(f"{'case':<34} {'density':>9} {'spectrum':>9} {'baseline':>9} {'ratio':>7}")
    for r in rows:
        print(f"{r['case']:<34} {r['density_s']:>8.3f}s {r['spectrum_s']:>8.3f}s "
              f"{r['baseline_s']:>8.3f}s {r['ratio']:>6.1f}x")
    ok = all(r["under_1s"] for r in rows)
    print("every density < 1 s:", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
