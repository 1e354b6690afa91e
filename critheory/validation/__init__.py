"""Theory against simulation: per-depth z-scores, exponent checks and a verdict."""
from critheory.validation.compare import (Comparison, bonferroni_threshold, compare,
                                          default_window, plot_comparison, theory_exponent,
                                          z_scores)

__all__ = ["Comparison", "compare", "theory_exponent", "default_window", "z_scores",
           "bonferroni_threshold", "plot_comparison"]
