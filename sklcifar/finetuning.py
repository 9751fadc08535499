"""Fine-tuning: a fit that starts from a fitted model's network instead of a new one.

An sklcifar classifier with ``init`` set (a fitted sklcifar classifier, a fitted Pipeline
ending in one, or the path of one saved with `sklcifar.persistence.save_model`) trains a
copy of that model's network: its architecture, its input standardisation and its weights,
in the precision of the new fit (``precision``).
The classifier's own recipe (optimiser, learning rate, epochs, augmentation, early
stopping) drives the new fit, and the model given as ``init`` is left unchanged. This is
the seed study's noise retraining: its model m7, reloaded from its saved weights, trained
further on noisy images.

The new data must have the same classes and image shape as the model's; anything else is
refused with a message saying what differs.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

__all__ = ["initial_network"]


def _init_classifier(init):
    """The fitted sklcifar classifier that ``init`` names."""
    # persistence imports base, which imports this module: import it late.
    from .persistence import final_classifier, load_model

    if isinstance(init, str | os.PathLike):
        return final_classifier(load_model(init))
    try:
        classifier = final_classifier(init)
    except TypeError:
        raise TypeError(
            "init must be a fitted sklcifar classifier, a fitted Pipeline ending in one, or "
            f"the path of a saved one; got {type(init).__name__}."
        ) from None
    try:
        check_is_fitted(classifier, "model_")
    except NotFittedError:
        raise NotFittedError(
            f"init is an unfitted {type(classifier).__name__}. scikit-learn's clone() (used "
            "by cross_validate, GridSearchCV, ...) unfits estimators held in parameters: "
            "pass the path of the saved model (sklcifar.persistence.save_model) instead."
        ) from None
    return classifier


def initial_network(estimator) -> keras.Model:
    """A copy of the network of ``estimator.init``, checked against the data being fitted.

    Called while ``estimator`` builds its network, when its ``classes_`` and
    ``image_shape_`` describe the new data.

    Raises
    ------
    ValueError
        If the new data's classes or image shape differ from the model's.
    """
    source = _init_classifier(estimator.init)
    classes, saved = np.asarray(estimator.classes_), np.asarray(source.classes_)
    if classes.shape != saved.shape or not np.array_equal(classes, saved):
        missing = [c for c in saved.tolist() if c not in classes.tolist()]
        extra = [c for c in classes.tolist() if c not in saved.tolist()]
        raise ValueError(
            f"init's model was fitted on the classes {saved.tolist()}, but y has the classes "
            f"{classes.tolist()} (missing: {missing}, new: {extra}). Fine-tuning keeps the "
            "model's output layer, so y must hold exactly its classes."
        )
    if tuple(source.image_shape_) != tuple(estimator.image_shape_):
        raise ValueError(
            f"init's model was fitted on images of shape {tuple(source.image_shape_)} "
            f"(height, width, channels), but X has images of shape "
            f"{tuple(estimator.image_shape_)}. Give it images of the model's shape (for a "
            "Pipeline, the shape after its preprocessing steps)."
        )
    network = keras.models.clone_model(
        source.model_,
        clone_function=_rebuild_under(estimator.dtype_policy_, source.dtype_policy_),
    )
    network.set_weights(source.model_.get_weights())
    return network


def _rebuild_under(policy: str, built_under: str):
    """``clone_model``'s layer copier moving the layers built under ``built_under`` (the
    source's precision) to ``policy`` (this fit's); layers the architecture pinned to
    another policy (a float32 softmax under bf16) keep theirs."""

    def rebuild(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer) and (
            layer.dtype_policy.name == built_under
        ):
            config["dtype"] = policy
        return type(layer).from_config(config)

    return rebuild
