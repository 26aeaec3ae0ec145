"""Builds the reference docs in ``pyterrier_gradrel/pt_docs`` on their own (PyTerrier's site includes the same pages):

    sphinx-build -W -c docs pyterrier_gradrel/pt_docs docs/_build
"""
project = "pyterrier-gradrel"
author = "The pyterrier-gradrel authors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "pyterrier_gradrel._sphinx"]
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
# the API pages document what each subpackage exports (its __all__), in source order
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections render as fields of their class (dataclass fields are documented once, as members)
napoleon_use_ivar = True
# option names and quotes in help texts stay as typed (no "--x" → "–x")
smartquotes = False
