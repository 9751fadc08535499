"""Save fitted sklcifar models and load them back with clear errors.

A model is a fitted sklcifar classifier (an ``ImageClassifier``) or a fitted
scikit-learn ``Pipeline`` whose last step is one, such as ``make_pipeline(...)``.
``load_model`` refuses anything else, so the command line and ``evaluate_robustness``
can rely on ``predict``, ``predict_proba``, ``classes_`` and ``history_``.

The file suffix picks the format:

``.sklcifar``
    The safe format (:mod:`sklcifar.safe_format`): JSON and a Keras ``.keras`` network,
    loaded without unpickling; loading one runs no code from the file.
``.joblib`` (also ``.pkl``, ``.pickle``)
    A joblib pickle. **Loading a pickle can run any code it names**: only load joblib
    files you trust (as scikit-learn's documentation on model persistence warns).

Files are written atomically (the previous file survives a failed or killed save) and an
existing file is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .base import ImageClassifier
from .files import atomic_path

__all__ = [
    "MODEL_SUFFIXES",
    "ModelFileError",
    "final_classifier",
    "load_model",
    "model_format",
    "save_model",
]

#: Model file suffixes and their format; see the module docstring.
MODEL_SUFFIXES = {".sklcifar": "safe", ".joblib": "joblib", ".pkl": "joblib", ".pickle": "joblib"}

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


def model_format(path: str | os.PathLike[str]) -> str:
    """``"safe"`` or ``"joblib"``: the format the suffix of ``path`` names.

    Raises
    ------
    ModelFileError
        The suffix is not one of `MODEL_SUFFIXES`.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{path}: a model file must end in .sklcifar (the safe format: JSON and a Keras "
            "network, loaded without running code) or .joblib (a pickle: loading it runs "
            f"code it names, so only load files you trust); got suffix {suffix or '(none)'!r}"
        )
    return MODEL_SUFFIXES[suffix]


def save_model(estimator, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a fitted sklcifar model to ``path``, in the format its suffix names.

    ``.sklcifar`` writes the safe format (:func:`sklcifar.safe_format.save_safe`),
    ``.joblib`` a ``joblib.dump(..., compress=3)`` pickle. The file is written atomically.

    Parameters
    ----------
    estimator : ImageClassifier or Pipeline
        A fitted sklcifar classifier, or a fitted Pipeline ending in one.
    path : str or os.PathLike
        The file to write, ending in ``.sklcifar`` or ``.joblib``; its folder must exist.
    overwrite : bool, default=False
        Replace an existing file (otherwise ``FileExistsError``).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ModelFileError
        If ``estimator`` is not a fitted sklcifar model, or the suffix names no format
        (nothing is written).
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    TypeError
        ``.sklcifar`` only: a parameter holds something the safe format cannot store.

    Examples
    --------
    >>> from sklcifar.persistence import load_model, save_model
    >>> save_model(pipeline, "model.sklcifar")  # doctest: +SKIP
    PosixPath('model.sklcifar')
    >>> load_model("model.sklcifar").predict(images)  # doctest: +SKIP
    """
    path = Path(path)
    kind = model_format(path)
    _check_model(estimator, "the estimator to save")
    if kind == "safe":
        from .safe_format import save_safe

        return save_safe(estimator, path, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as temporary:
        joblib.dump(estimator, temporary, compress=3)
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
        A ``ValueError``: ``path`` is a folder, has no model suffix, is damaged, or holds
        something other than a fitted sklcifar model; the message says what it holds.

    Notes
    -----
    A ``.sklcifar`` file loads without running code from it. A ``.joblib`` file is a
    pickle: loading it runs any code it names, so only load joblib files you trust.

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
        raise ModelFileError(f"{path} is a folder, not a model file saved by sklcifar")
    if model_format(path) == "safe":
        from .safe_format import SafeFormatError, load_safe

        try:
            model = load_safe(path)
        except SafeFormatError as error:
            raise ModelFileError(str(error)) from error
        _check_model(model, str(path))
        return model
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
