"""Sphinx configuration of critheory's documentation site.

Build (from the repository root)::

    pip install -e '.[docs]'
    sphinx-build -W --keep-going -b html docs docs/_build/html

Generator: Sphinx + MyST (myst-nb), the scientific-Python stack: the pages stay the markdown
files in docs/ that read well on GitHub; myst-nb renders the committed notebooks from their
stored outputs (``python docs/refresh_notebooks.py`` refreshes them; nothing executes here);
autodoc + napoleon read the numpy-style docstrings of the public API; MathJax draws the
equations. Theme: pydata-sphinx-theme, maintained by the scientific-Python community and used
by numpy, scipy, pandas and matplotlib, so the site looks like the references its readers know.

Generated at every build (in docs/_generated, ignored by git; they cannot drift):
the API reference (one entry per name of ``critheory.__all__`` and ``critheory.torch.__all__``),
the CLI reference (from ``critheory.cli.main.build_parser``), copies of the notebooks.
"""
from __future__ import annotations

import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import critheory  # noqa: E402

project = "critheory"
author = "the critheory authors"
copyright = "the critheory authors, MIT licence"
release = version = critheory.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "critheory_docs",
]

# MyST: $...$ and $$...$$ equations, amsmath environments, anchors for ## and ### headings
# (the pages link to "mlp.md#fixed-points").
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# myst-nb: render the stored outputs, execute nothing
nb_execution_mode = "off"
nb_merge_streams = True

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# API reference: numpy-style docstrings, signatures with their type hints in the description
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
autosummary_generate = False
# critheory.torch documented without PyTorch installed (the [docs] extra does not install it)
autodoc_mock_imports = ["torch"]

html_theme = "pydata_sphinx_theme"
html_title = f"critheory {release}"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []

# Cross-references: every reference must resolve (nitpicky; -W fails the build). References
# into critheory's code that name an object by its defining module, or an object outside the
# reference, are handled by critheory_docs.resolve_reference (a name that does not exist still
# fails). Ignored: the vocabulary of numpy-style type fields (ndarray, shape (m, L), optional,
# {"a", "b"} choices, prose) and other packages' objects (no intersphinx: the build must not
# need the network).
nitpicky = True
nitpick_ignore_regex = [
    ("py:class", r"(numpy\.)?ndarray|array(_like)?|optional|shape|callable|sequences?|mapping"
                 r"|default|or|of|and|len|iterable|scalar"),
    ("py:class", r"[A-Za-z]{1,2}\d?"),                       # dimensions: m, L, n0, S, ...
    ("py:class", r"[{\"'].*|.*[}\"']"),                      # choices {"auto", "exact"}
    ("py:class", r".*\s.*"),                                 # prose in a type field
    ("py:(class|func|meth|data|mod|attr|obj)",
     r"(torch|nn|numpy|np|sympy|scipy|mpmath|matplotlib|xarray|dask|zarr|Tensors?)(\..*)?"),
]
