"""Sphinx configuration of the sklcifar documentation.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` (tests/test_docs.py runs
the same build with warnings as errors). The examples gallery trains on real CIFAR-10
images: ``SKLCIFAR_DATA`` names the archive; without it the copy in ``shared/data`` beside
the repository is used, as in the test suite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import sklcifar

DOCS = Path(__file__).resolve().parent
REPOSITORY = DOCS.parent
SHARED_CIFAR10 = REPOSITORY.parent / "shared" / "data" / "cifar-10-python.tar.gz"
if "SKLCIFAR_DATA" not in os.environ and SHARED_CIFAR10.exists():
    # The gallery's examples call load_cifar() without a path, as a user would.
    os.environ["SKLCIFAR_DATA"] = str(SHARED_CIFAR10)
# TensorFlow's C++ start-up lines would otherwise land in every example's captured output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

project = "sklcifar"
author = "the sklcifar developers"
copyright = "2026, the sklcifar developers"  # noqa: A001  (Sphinx's setting name)
version = release = sklcifar.__version__

# The scikit-learn ecosystem's documentation stack, so that its users find what they know:
# - myst_parser: the pages are Markdown, like the README, and their ```python blocks run as
#   tests (tests/test_docs.py);
# - numpydoc: the docstrings are numpy-style, as in scikit-learn, numpy and scipy;
# - autodoc + autosummary: the API reference is generated from those docstrings, so it
#   cannot drift from the code;
# - sphinx_gallery: examples are plain Python scripts (examples/*.py) that are run at build
#   time, so every figure in the gallery comes from the code beside it.
extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py.md5"]
# Generated section anchors, so that pages can link to each other's headings.
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
# Methods that override Keras' or scikit-learn's without a docstring of their own would
# inherit one written for another documentation tool (Keras' are Markdown).
autodoc_inherit_docstrings = False
# The estimators inherit scikeras' and scikit-learn's methods; numpydoc's member tables
# would link to pages this site does not have.
numpydoc_show_class_members = False


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    # scikit-learn generates set_fit_request & co. on every estimator class; their
    # docstrings link into scikit-learn's own documentation, which this site is not.
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)


sphinx_gallery_conf = {
    "examples_dirs": str(REPOSITORY / "examples"),
    "gallery_dirs": "auto_examples",
    # Run every example, and fail the build when one fails.
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
}

html_theme = "alabaster"
html_title = f"sklcifar {release}"
