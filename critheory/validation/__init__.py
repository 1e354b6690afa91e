"""Theory against simulation: per-depth z-scores, exponent checks and a verdict."""
from critheory.validation.compare import (Comparison, bonferroni_threshold, compare,
                                          default_window, plot_comparison, theory_exponent,
                                          z_scores)
from critheory.validation.bayes import (compare_metric_shift, compare_posterior, compare_prior,
                                        compare_theories)

__all__ = ["Comparison", "compare", "theory_exponent", "default_window", "z_scores",
           "bonferroni_threshold", "plot_comparison", "compare_posterior", "compare_theories",
           "compare_prior", "compare_metric_shift"]
