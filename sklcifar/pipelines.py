"""Ready-made pipelines: grayscale conversion in front of a named sklcifar classifier.

``make_pipeline("convnet", preset="m12")`` is what the command line and the benchmarks
train; ``default_pipeline()`` is the package's recommended starting point.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from .estimators import ConvNetClassifier, FastNetClassifier, ImageClassifier, ResNetClassifier
from .transformers import Grayscale

# Classifier families by the name the command line and the search use.
CLASSIFIERS: dict[str, type[ImageClassifier]] = {
    "convnet": ConvNetClassifier,
    "fastnet": FastNetClassifier,
    "resnet": ResNetClassifier,
}
DEFAULT_CLASSIFIER = "fastnet"


def make_pipeline(classifier: str = DEFAULT_CLASSIFIER, **params) -> Pipeline:
    """Grayscale conversion followed by the classifier family ``classifier`` with ``params``.

    Examples
    --------
    >>> from sklcifar.pipelines import make_pipeline
    >>> make_pipeline("convnet", preset="m7").named_steps["classifier"].preset
    'm7'
    """
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {sorted(CLASSIFIERS)}; got {classifier!r}.")
    return Pipeline([("grayscale", Grayscale()), ("classifier", CLASSIFIERS[classifier](**params))])


def default_pipeline(**params) -> Pipeline:
    """The package's default: grayscale images into the default classifier family."""
    return make_pipeline(DEFAULT_CLASSIFIER, **params)
