"""ConvNetClassifier's ``training`` parameter: the seed's recipe or the fast one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from sklcifar import ConvNetClassifier
from sklcifar.estimators import FAST_RECIPE, ImageClassifier

TINY = {"depth": 2, "filters": 4, "dense": (8,), "epochs": 1, "random_state": 0}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(40, 16, 16), dtype=np.uint8), np.repeat([0, 1], 20)


def test_training_chooses_the_recipe_defaults_and_explicit_values_win():
    seed, fast = ConvNetClassifier(), ConvNetClassifier(training="fast")
    for name, value in ImageClassifier.recipe.items():
        assert seed._setting(name) == value
    for name, value in FAST_RECIPE.items():
        assert fast._setting(name) == value
    tuned = ConvNetClassifier(training="fast", learning_rate=0.05, augment=())
    assert tuned._setting("learning_rate") == 0.05 and tuned._setting("augment") == ()
    assert tuned._setting("optimizer") == "nesterov"
    assert clone(tuned).get_params()["training"] == "fast"


def test_fast_training_fits_with_nesterov_and_the_schedule(images):
    X, y = images
    clf = ConvNetClassifier(training="fast", batch_size=16, **TINY).fit(X, y)
    optimizer = clf.model_.optimizer
    assert optimizer.nesterov and len(clf.history_["loss"]) == 1
    assert clf.predict(X[:3]).shape == (3,)


def test_unknown_training_is_refused(images):
    X, y = images
    with pytest.raises(ValueError, match="training"):
        ConvNetClassifier(training="adam", **TINY).fit(X, y)
