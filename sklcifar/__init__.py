"""sklcifar: scikit-learn compatible Keras CNNs for small (grayscale) images such as CIFAR.

Data flows one way: ``datasets`` (uint8 arrays, labels, names) -> ``transformers``
(grayscale, scaling, perturbations) -> an estimator from ``estimators`` whose network comes
from ``architectures`` -> joblib file -> ``cli``, ``robustness`` and ``plots``.
"""

__version__ = "0.1.0"

from .estimators import (  # noqa: E402  (the version comes first: estimators read it)
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
