"""sklcifar: scikit-learn compatible Keras CNNs for small (grayscale) images such as CIFAR.

Data flows one way: ``datasets`` (uint8 arrays, labels, names) -> ``transformers``
(grayscale, scaling, perturbations) -> an estimator from ``estimators`` whose network comes
from ``architectures`` -> joblib file -> ``cli``, ``robustness`` and ``plots``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The top-level names load their modules on first use (PEP 562), because those import
# TensorFlow, which takes seconds and prints start-up lines: `sklcifar --help` and the
# modules that need no network (datasets, perturbations) stay fast and quiet.
_LAZY_NAMES = {
    "ConvNetClassifier": "estimators",
    "FastNetClassifier": "estimators",
    "ImageClassifier": "base",
    "ResNetClassifier": "estimators",
    "default_pipeline": "pipelines",
    "make_pipeline": "pipelines",
}

if TYPE_CHECKING:
    from .base import ImageClassifier
    from .estimators import ConvNetClassifier, FastNetClassifier, ResNetClassifier
    from .pipelines import default_pipeline, make_pipeline


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_NAMES])


__all__ = [
    "ConvNetClassifier",
    "FastNetClassifier",
    "ImageClassifier",
    "ResNetClassifier",
    "__version__",
    "default_pipeline",
    "make_pipeline",
]
