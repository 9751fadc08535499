"""sklcifar: scikit-learn compatible Keras CNNs for small (grayscale) images such as CIFAR.

Data flows one way: ``datasets`` (uint8 arrays, labels, names) -> ``transformers``
(grayscale, scaling, perturbations) -> an estimator from ``estimators`` whose network comes
from ``architectures`` -> joblib file -> ``cli``, ``robustness`` and ``plots``.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature lines) is noise for users
# of a scikit-learn API; keep warnings and errors. Respect a value the user has set.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from .estimators import (  # noqa: E402
    ConvNetClassifier,
    FastNetClassifier,
    ImageClassifier,
    ResNetClassifier,
)
from .pipelines import default_pipeline, make_pipeline  # noqa: E402

__all__ = [
    "ConvNetClassifier",
    "FastNetClassifier",
    "ImageClassifier",
    "ResNetClassifier",
    "__version__",
    "default_pipeline",
    "make_pipeline",
]
