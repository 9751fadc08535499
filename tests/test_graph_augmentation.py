"""In-graph flip and shift augmentation (sklcifar.graph_augmentation)."""

import numpy as np
import pytest

from sklcifar import FastNetClassifier
from sklcifar.graph_augmentation import augmentation_layers
from sklcifar.transformers import PixelNoise, RandomFlip, RandomShift


def test_layers_flip_and_shift_training_images_only():
    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8, 1)).astype("float32")
    flip, shift = augmentation_layers([RandomFlip(), RandomShift(2)], (8, 8, 1), seed=0)
    flipped = np.asarray(flip(images, training=True))
    mirrored = np.all(flipped == images[:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(flipped == images, axis=(1, 2, 3))
    assert np.all(mirrored | unchanged) and 10 < mirrored.sum() < 54
    shifted = np.asarray(shift(images, training=True))
    # Whole-pixel shifts: every output pixel is one of the image's own values.
    assert all(np.isin(s, i).all() for s, i in zip(shifted, images, strict=True))
    assert not np.array_equal(shifted, images)
    np.testing.assert_array_equal(np.asarray(shift(images, training=False)), images)


@pytest.mark.parametrize("step", [PixelNoise(0.03), RandomFlip(probability=0.3)])
def test_steps_without_an_in_graph_form_are_refused(step):
    with pytest.raises(ValueError, match="augment_in_graph=True runs only"):
        augmentation_layers([step], (8, 8, 1), seed=0)


def test_classifier_trains_with_in_graph_augmentation():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(64, 8, 8), dtype=np.uint8)
    y = np.repeat([0, 1], 32)
    clf = FastNetClassifier(width=4, epochs=1, augment_in_graph=True, random_state=0).fit(X, y)
    assert clf.model_.name == "augmented_fastnet"
    assert [layer.name for layer in clf.model_.layers[1:3]] == ["augment_flip", "augment_shift"]
    # Prediction passes images through the augmentation layers unchanged: deterministic.
    np.testing.assert_array_equal(clf.predict_proba(X[:8]), clf.predict_proba(X[:8]))
