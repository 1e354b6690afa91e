"""Output: JSON-ready reports and figures (no solver inside the plotting code)."""
