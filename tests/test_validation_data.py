"""Explicit validation data: ``fit(X, y, X_val=..., y_val=...)``, alone and in a Pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline

from sklcifar import ConvNetClassifier
from sklcifar.datasets import stratified_subset
from sklcifar.transformers import Grayscale

PARAMS = {"depth": 2, "filters": 4, "dense": (8,), "epochs": 2, "random_state": 0}


@pytest.fixture(scope="module")
def data(cifar10_train):
    """150 real RGB train images and 60 others for validation, 3 classes."""
    keep = np.isin(cifar10_train.target, [0, 1, 2])
    X, y = stratified_subset(
        cifar10_train.images[keep], cifar10_train.target[keep], 210, random_state=0
    )
    return X[:150], y[:150], X[150:], y[150:]


def test_the_given_validation_set_is_the_one_scored(data):
    X, y, X_val, y_val = data
    grey, grey_val = Grayscale().fit_transform(X), Grayscale().fit_transform(X_val)
    clf = ConvNetClassifier(**PARAMS, precision="float32")
    clf.fit(grey, y, X_val=grey_val, y_val=y_val)
    assert clf.n_train_ == len(X)  # no split held out of X
    assert len(clf.history_["val_loss"]) == 2
    # Early stopping kept the weights of the lowest loss on X_val.
    kept = log_loss(y_val, clf.predict_proba(grey_val), labels=clf.classes_)
    assert min(clf.history_["val_loss"]) == pytest.approx(kept, rel=1e-4)


def test_a_pipeline_preprocesses_the_validation_images_with_transform_input(data):
    X, y, X_val, y_val = data
    with sklearn.config_context(enable_metadata_routing=True):
        clf = ConvNetClassifier(**PARAMS).set_fit_request(X_val=True, y_val=True)
        pipeline = Pipeline(
            [("grayscale", Grayscale()), ("classifier", clf)], transform_input=["X_val"]
        )
        pipeline.fit(X, y, X_val=X_val, y_val=y_val)
    assert pipeline[-1].n_train_ == len(X)
    assert len(pipeline[-1].history_["val_accuracy"]) == 2


def test_validation_images_routed_past_the_preprocessing_are_refused(data):
    X, y, X_val, y_val = data
    pipeline = Pipeline([("grayscale", Grayscale()), ("classifier", ConvNetClassifier(**PARAMS))])
    with pytest.raises(ValueError, match=r"X_val has images of shape \(32, 32, 3\).*\(32, 32, 1\)"):
        pipeline.fit(X, y, classifier__X_val=X_val, classifier__y_val=y_val)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X_val, y_val: (X_val, None), "got X_val but no y_val"),
        (lambda X_val, y_val: (None, y_val), "got y_val but no X_val"),
        (lambda X_val, y_val: (X_val, y_val[:-1]), r"one label per X_val image, shape \(60,\)"),
        (
            lambda X_val, y_val: (X_val, np.where(y_val == 2, 7, y_val)),
            r"labels that y does not have: \[7\]",
        ),
        (lambda X_val, y_val: (X_val, y_val.astype(str)), "labels that y does not have"),
        (lambda X_val, y_val: (X_val[:0], y_val[:0]), "X_val holds no images"),
        (
            lambda X_val, y_val: (X_val[:, ::2, ::2], y_val),
            r"X_val has images of shape \(16, 16, 3\)",
        ),
    ],
)
def test_bad_validation_data_is_refused(data, change, message):
    X, y, X_val, y_val = data
    X_val, y_val = change(X_val, y_val)
    with pytest.raises(ValueError, match=message):
        ConvNetClassifier(**PARAMS).fit(X, y, X_val=X_val, y_val=y_val)
