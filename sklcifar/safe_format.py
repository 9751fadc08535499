"""The safe model format (``.sklcifar``): a fitted model stored without pickles.

A ``.sklcifar`` file is a zip archive holding

``model.json``
    The model as plain data: each estimator of the pipeline (sklcifar's and scikit-learn's
    own classes only) by its class name, constructor parameters and fitted attributes
    (``classes_``, image shape, input scale, ...), and the library versions it was saved
    with.
``network.keras``
    The classifier's Keras network in Keras' own format, loaded with ``safe_mode=True``
    (which refuses the code a ``Lambda`` layer could carry).

Loading it runs no code from the file: JSON holds only data, the classes it names are
looked up in the ``sklcifar`` and ``sklearn`` packages and must be scikit-learn
estimators, and they are built through their constructors as ``sklearn.base.clone``
builds them. A joblib file, in contrast, is a pickle: loading one runs whatever code it
names (see ``docs/user_guide/saving_and_loading.md``).

A model whose parameters hold something other than plain data, numpy arrays and
estimators (a Keras callback object, a numpy ``Generator`` as ``random_state``, a
function in a ``FunctionTransformer``) cannot be stored this way; saving it raises a
``TypeError`` naming the parameter. Save such a model as ``.joblib``.
"""

from __future__ import annotations

import importlib
import json
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from .base import ImageClassifier
from .files import atomic_path
from .versions import VersionMismatchWarning, library_versions, version_differences

__all__ = ["FORMAT", "SUFFIX", "load_safe", "save_safe"]

#: File suffix of the safe format; ``save_model``/``load_model`` pick the format by it.
SUFFIX = ".sklcifar"
#: Name and version written into ``model.json``.
FORMAT = {"name": "sklcifar-model", "version": 1}

_MODEL_JSON = "model.json"
_NETWORK = "network.keras"
# Packages whose classes a model file may name, and the shape of a fitted attribute name.
_TRUSTED_PACKAGES = ("sklcifar", "sklearn")
_FITTED_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*_")
# Fitted attributes rebuilt on load rather than stored: the network (network.keras) and
# scikeras' encoders (refitted on classes_ and the image shape).
_REBUILT = {"model_", "target_encoder_", "feature_encoder_"}


class SafeFormatError(ValueError):
    """A ``.sklcifar`` file that is damaged, or names something it may not."""


# ----------------------------------------------------------------------------- encoding
def _encode(value: Any, where: str) -> Any:
    """``value`` as JSON data, with tagged dicts for tuples, arrays, dtypes and estimators."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} is a dict with non-string keys; {_CANNOT}")
        return {"dict": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, np.dtype):
        return {"dtype": value.str}
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in "biufU":
            raise TypeError(f"{where} is an array of dtype {array.dtype}; {_CANNOT}")
        return {"ndarray": array.tolist(), "dtype": array.dtype.str, "shape": array.shape}
    if isinstance(value, BaseEstimator):
        return {"estimator": _encode_estimator(value, where)}
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}; {_CANNOT}")


_CANNOT = (
    "the safe format stores plain data, numpy arrays and scikit-learn/sklcifar estimators "
    "only. Save this model as .joblib instead (a pickle: only load it where you trust it)."
)


def _encode_estimator(estimator: BaseEstimator, where: str) -> dict:
    cls = type(estimator)
    if cls.__module__.split(".")[0] not in _TRUSTED_PACKAGES:
        raise TypeError(
            f"{where} is a {cls.__module__}.{cls.__qualname__}; the safe format stores "
            "sklcifar's and scikit-learn's own classes only. Save this model as .joblib."
        )
    params = estimator.get_params(deep=False)
    for name, value in params.items():
        # A classifier as a parameter (``init``, fine-tuning's start) holds a network this
        # format would drop; only a Pipeline's steps may be classifiers.
        if isinstance(value, ImageClassifier) and not isinstance(estimator, Pipeline):
            raise TypeError(
                f"{where}.{name} is a {type(value).__name__}, whose network the safe format "
                "stores only as a pipeline step. Pass it as a saved model's path, or save "
                "this model as .joblib."
            )
    fitted = {
        name: value
        for name, value in vars(estimator).items()
        if _FITTED_NAME.fullmatch(name) and name not in params and name not in _REBUILT
    }
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "params": {k: _encode(v, f"{where}.{k}") for k, v in params.items()},
        "fitted": {k: _encode(v, f"{where}.{k}") for k, v in fitted.items()},
    }


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "tuple" in value:
        return tuple(_decode(v, where) for v in value["tuple"])
    if len(value) == 1 and "dict" in value:
        return {k: _decode(v, where) for k, v in value["dict"].items()}
    if len(value) == 1 and "dtype" in value:
        return np.dtype(_plain_dtype(value["dtype"], where))
    if set(value) == {"ndarray", "dtype", "shape"}:
        array = np.array(value["ndarray"], dtype=_plain_dtype(value["dtype"], where))
        return array.reshape(value["shape"])[()] if value["shape"] == [] else array
    if len(value) == 1 and "estimator" in value:
        return _decode_estimator(value["estimator"], where)
    raise SafeFormatError(f"{where}: unknown entry {sorted(value)} in model.json")


def _plain_dtype(text: str, where: str) -> str:
    if not isinstance(text, str) or np.dtype(text).kind not in "biufU":
        raise SafeFormatError(f"{where}: dtype {text!r} is not a plain numeric or text dtype")
    return text


def _trusted_class(name: str, where: str) -> type:
    """The estimator class ``name`` ("package.module.Class") from sklcifar or sklearn."""
    module, _, class_name = name.rpartition(".")
    if module.split(".")[0] not in _TRUSTED_PACKAGES or not class_name.isidentifier():
        raise SafeFormatError(
            f"{where} names {name!r}; a .sklcifar file may only name sklcifar's and "
            "scikit-learn's own estimator classes. Refusing to load it."
        )
    try:
        cls = getattr(importlib.import_module(module), class_name)
    except (ImportError, AttributeError) as error:
        raise SafeFormatError(f"{where} names {name!r}, which does not exist here") from error
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise SafeFormatError(
            f"{where} names {name!r}, which is not a scikit-learn estimator class. "
            "Refusing to load it."
        )
    return cls


def _decode_estimator(entry: dict, where: str) -> BaseEstimator:
    cls = _trusted_class(entry["class"], where)
    params = {k: _decode(v, f"{where}.{k}") for k, v in entry["params"].items()}
    # A file from before a parameter existed: the value that builds its network.
    older = {k: v for k, v in getattr(cls, "values_before_added", {}).items() if k not in params}
    estimator = cls(**params, **older)
    for name, value in entry["fitted"].items():
        if not _FITTED_NAME.fullmatch(name) or name in _REBUILT:
            raise SafeFormatError(f"{where}: {name!r} is not a fitted attribute name")
        setattr(estimator, name, _decode(value, f"{where}.{name}"))
    return estimator


# ------------------------------------------------------------------------ save and load
def _classifiers(model: BaseEstimator) -> list[ImageClassifier]:
    steps = [step for _, step in getattr(model, "steps", [])] or [model]
    return [step for step in steps if isinstance(step, ImageClassifier)]


def save_safe(model: BaseEstimator, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` (a fitted classifier or Pipeline ending in one) as a ``.sklcifar`` file.

    Written atomically: an existing file is replaced only with ``overwrite=True``, and
    only once the new one is complete.

    Raises
    ------
    TypeError
        A parameter holds something the safe format does not store (nothing is written).
    """
    path = Path(path)
    document = {
        "format": FORMAT,
        "versions": {**library_versions(), "scikit-learn": sklearn.__version__},
        "model": _encode(model, "model"),
    }
    (classifier,) = _classifiers(model)
    with tempfile.TemporaryDirectory() as scratch:
        network = Path(scratch) / _NETWORK
        classifier.model_.save(network)
        with atomic_path(path, overwrite=overwrite) as temporary:
            with zipfile.ZipFile(temporary, "w") as archive:
                archive.writestr(_MODEL_JSON, json.dumps(document, indent=1), zipfile.ZIP_DEFLATED)
                archive.write(network, _NETWORK, zipfile.ZIP_STORED)
    return path


def load_safe(path: str | Path) -> BaseEstimator:
    """Load a ``.sklcifar`` file written by :func:`save_safe`; nothing in it is run.

    Raises
    ------
    SafeFormatError
        The file is not a ``.sklcifar`` archive, is damaged, or names a class outside
        sklcifar and scikit-learn.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read(_MODEL_JSON))
            network_bytes = archive.read(_NETWORK)
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise SafeFormatError(
            f"{path} is not a .sklcifar model file (a zip of model.json and network.keras): "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SafeFormatError(
            f"{path} is not a .sklcifar model file of format {FORMAT}; its model.json says "
            f"format {document.get('format') if isinstance(document, dict) else None!r}."
        )
    try:
        model = _decode(document["model"], "model")
    except (KeyError, TypeError) as error:
        raise SafeFormatError(f"{path}: damaged model.json ({error!r})") from error
    classifiers = _classifiers(model)
    if len(classifiers) != 1:
        raise SafeFormatError(f"{path}: model.json holds no sklcifar classifier")
    with tempfile.TemporaryDirectory() as scratch:
        network = Path(scratch) / _NETWORK
        network.write_bytes(network_bytes)
        try:
            loaded = keras.saving.load_model(network, safe_mode=True)
        # safe_mode refuses code (Lambda layers) with a ValueError; a damaged network can
        # fail in many other ways: all mean the file cannot be loaded safely.
        except Exception as error:
            raise SafeFormatError(
                f"{path}: its network.keras could not be loaded in Keras' safe mode: "
                f"{type(error).__name__}: {error}"
            ) from error
        _restore_classifier(classifiers[0], loaded)
    _warn_on_other_versions(document.get("versions", {}), classifiers[0])
    return model


def _restore_classifier(classifier: ImageClassifier, network: keras.Model) -> None:
    """Rebuild what ``fit`` made besides the stored attributes: network and encoders."""
    classifier.model_ = network
    classifier.target_encoder_ = classifier.target_encoder.fit(classifier.classes_)
    shape = (1, *classifier.image_shape_)
    classifier.feature_encoder_ = classifier.feature_encoder.fit(np.zeros(shape, np.float32))
    classifier._initialize_callbacks()


def _warn_on_other_versions(saved: dict, classifier: ImageClassifier) -> None:
    listing = version_differences(saved)
    if listing:
        warnings.warn(
            f"This model was saved with {listing}; predictions may differ. Refit it, or "
            "install the versions it was saved with.",
            VersionMismatchWarning,
            stacklevel=3,
        )
    classifier._saved_versions = {k: saved.get(k) for k in library_versions()}
