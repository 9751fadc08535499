"""Save fitted sklcifar models to joblib files and load them back with clear errors.

A model is a fitted sklcifar classifier (an ``ImageClassifier``) or a fitted
scikit-learn ``Pipeline`` whose last step is one, such as ``make_pipeline(...)``.
``load_model`` refuses anything else, so the command line and ``evaluate_robustness``
can rely on ``predict``, ``predict_proba``, ``classes_`` and ``history_``.

joblib files are pickles: loading one runs code it names. Only load files you trust.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .estimators import ImageClassifier

__all__ = ["ModelFileError", "final_classifier", "load_model", "save_model"]

_EXPECTED = "a fitted sklcifar classifier or a fitted Pipeline ending in one"


class ModelFileError(ValueError):
    """A file that does not hold a fitted sklcifar model."""


def final_classifier(model) -> ImageClassifier:
    """The sklcifar classifier of ``model``: itself, or the last step of a Pipeline.

    Raises
    ------
    TypeError
        If ``model`` is neither an ``ImageClassifier`` nor a Pipeline ending in one.
    """
    last = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if not isinstance(last, ImageClassifier):
        raise TypeError(f"expected {_EXPECTED}; got a {_describe(model)}")
    return last


def _describe(obj) -> str:
    """``"Pipeline ending in Grayscale"``, ``"dict"``, ``"numpy.ndarray"``: what a file holds."""
    if isinstance(obj, Pipeline):
        return f"Pipeline ending in {type(obj.steps[-1][1]).__name__}"
    kind = type(obj)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _check_model(model, where: str) -> None:
    """Raise `ModelFileError` unless ``model`` is a fitted sklcifar model."""
    try:
        classifier = final_classifier(model)
    except TypeError:
        raise ModelFileError(
            f"{where} holds a {_describe(model)}; expected {_EXPECTED} "
            "(e.g. from `sklcifar train` or sklcifar.pipelines.make_pipeline(...).fit)"
        ) from None
    try:
        check_is_fitted(classifier, "model_")
    except NotFittedError:
        raise ModelFileError(
            f"{where} holds an unfitted {_describe(model)}; fit it before saving"
        ) from None


def save_model(estimator, path: str | os.PathLike[str]) -> Path:
    """Write a fitted sklcifar model to ``path`` with ``joblib.dump(..., compress=3)``.

    Parameters
    ----------
    estimator : ImageClassifier or Pipeline
        A fitted sklcifar classifier, or a fitted Pipeline ending in one.
    path : str or os.PathLike
        The file to write (conventionally ``*.joblib``); its folder must exist.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ModelFileError
        If ``estimator`` is not a fitted sklcifar model (nothing is written).

    Examples
    --------
    >>> from sklcifar.persistence import load_model, save_model
    >>> save_model(pipeline, "model.joblib")  # doctest: +SKIP
    PosixPath('model.joblib')
    >>> load_model("model.joblib").predict(images)  # doctest: +SKIP
    """
    path = Path(path)
    _check_model(estimator, "the estimator to save")
    joblib.dump(estimator, path, compress=3)
    return path


def load_model(path: str | os.PathLike[str]):
    """Load a model written by `save_model` (or ``sklcifar train``) and check it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model : ImageClassifier or Pipeline
        A fitted sklcifar classifier or a fitted Pipeline ending in one. A model saved
        under other library versions loads with a ``VersionMismatchWarning``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        A ``ValueError``: ``path`` is a folder, is not a joblib file, or holds something
        other than a fitted sklcifar model; the message says what it holds.

    Examples
    --------
    >>> from sklcifar.persistence import load_model
    >>> load_model("model.joblib")  # doctest: +SKIP
    Pipeline(steps=[('grayscale', Grayscale()), ('classifier', ConvNetClassifier(...))])
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a joblib file saved by sklcifar")
    try:
        model = joblib.load(path)
    # Unpickling arbitrary bytes can fail with almost any exception type (EOFError,
    # UnpicklingError, KeyError, zlib.error, ImportError, ...): all mean the same here.
    except Exception as exc:
        raise ModelFileError(
            f"{path} is not a joblib file saved by sklcifar: {type(exc).__name__}: {exc}"
        ) from exc
    _check_model(model, str(path))
    return model
