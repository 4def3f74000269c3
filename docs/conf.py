"""Sphinx configuration: MyST markdown pages plus an API reference generated from docstrings."""

project = "torchexec"
author = "torchexec developers"
copyright = "2026, torchexec developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "alabaster"
suppress_warnings = ["myst.xref_missing"]
