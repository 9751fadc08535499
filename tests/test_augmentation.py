"""Pipeline perturbation steps as per-epoch augmentation (sklcifar.augmentation)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklcifar import FastNetClassifier
from sklcifar.augmentation import PendingPerturbationWarning, PerturbedImages
from sklcifar.estimators import ImageClassifier
from sklcifar.transformers import Grayscale, PixelNoise, RandomFlip

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, size=(60, 8, 8, 1), dtype=np.uint8)
y = np.repeat([0, 1, 2], 20)


def tiny(**params) -> FastNetClassifier:
    defaults = dict(width=2, epochs=2, batch_size=64, augment=(), random_state=0)
    return FastNetClassifier(**{**defaults, "precision": "float32", **params})


class RecordingNoise(PixelNoise):
    """PixelNoise that keeps every batch it perturbs for the network."""

    def perturb(self, X, random_state=None):
        out = super().perturb(X, random_state)
        type(self).batches.append(out.copy())
        return out


def test_chained_steps_keep_clean_images_and_order():
    noise, flip = PixelNoise(0.2, random_state=0), RandomFlip(random_state=0)
    drawn = make_pipeline(noise, flip).fit_transform(X)
    assert isinstance(drawn, PerturbedImages)
    assert drawn.steps == (noise, flip)
    np.testing.assert_array_equal(drawn.clean, X)
    assert (np.asarray(drawn) != X).any()  # one perturbed draw for any estimator
    assert drawn[:3].clean is None and (drawn * 1).steps == ()


def test_network_sees_fresh_draws_and_clean_validation(monkeypatch):
    RecordingNoise.batches = []
    seen_validation = []
    original = ImageClassifier._fit_keras_model

    def spy(self, *args, **kwargs):
        seen_validation.append(self._validation_rows[0].copy())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ImageClassifier, "_fit_keras_model", spy)
    pipe = Pipeline([("noise", RecordingNoise(0.2)), ("clf", tiny(validation_fraction=0.2))])
    pipe.fit(X, y)
    # One batch per epoch, the same rows in the same (sorted) order; Keras may read the
    # first batch once more to learn its shapes.
    first, second = RecordingNoise.batches[0], RecordingNoise.batches[-1]
    assert first.shape == second.shape == (48, 8, 8, 1)
    assert (first != second).any()  # fresh noise every epoch
    clean_rows = {row.tobytes() for row in X.astype(np.float32) / 255}
    validation = seen_validation[0]
    assert len(validation) == 12
    assert all(image.tobytes() in clean_rows for image in validation)  # untouched


def test_pipeline_step_trains_like_augment():
    pipe = Pipeline([("noise", PixelNoise(0.03)), ("clf", tiny())]).fit(X, y)
    direct = tiny(augment=[PixelNoise(0.03)]).fit(X, y)
    for a, b in zip(pipe[-1].model_.get_weights(), direct.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(X))


def test_other_estimators_get_one_draw():
    seen = []

    def flatten(images):
        seen.append(np.array(images))
        return np.asarray(images).reshape(len(images), -1)

    noise = PixelNoise(0.2, random_state=0)
    pipe = make_pipeline(noise, FunctionTransformer(flatten), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    np.testing.assert_array_equal(seen[0], noise.perturb(X))  # the seeded draw


def test_transformer_between_step_and_classifier_warns():
    rgb = RNG.integers(0, 256, size=(60, 8, 8, 3), dtype=np.uint8)
    pipe = Pipeline([("noise", PixelNoise(0.03)), ("gray", Grayscale()), ("clf", tiny())])
    with pytest.warns(PendingPerturbationWarning, match="Grayscale follows"):
        pipe.fit(rgb, y)


def test_clone_grid_search_and_cross_val_score():
    pipe = Pipeline([("noise", PixelNoise(0.03)), ("clf", tiny(epochs=1))])
    assert clone(pipe).get_params()["noise__fraction"] == 0.03
    search = GridSearchCV(pipe, {"noise__fraction": [0.0, 0.1]}, cv=2, refit=False).fit(X, y)
    assert search.best_params_["noise__fraction"] in (0.0, 0.1)
    assert cross_val_score(pipe, X, y, cv=2).shape == (2,)
