"""The infinite-width (mean-field) theory: kernel recursions, fixed points, criticality."""
