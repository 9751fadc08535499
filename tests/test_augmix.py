"""The robust training mixture (sklcifar.augmix, RobustMix, augment=[..., "robust"])."""

from __future__ import annotations

import numpy as np
import pytest

from sklcifar import FastNetClassifier
from sklcifar.augmix import OPERATIONS, robust_mix
from sklcifar.estimators import ROBUST_AUGMENT
from sklcifar.transformers import RobustMix

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(64, 16, 16, 1), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operations_keep_shape_and_range(name):
    x = RNG.random((8, 16, 16, 1), dtype=np.float32)
    out = OPERATIONS[name](x, 3, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_mixture_is_seeded_and_keeps_dtype():
    a = robust_mix(IMAGES, random_state=1)
    assert a.shape == IMAGES.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, robust_mix(IMAGES, random_state=1))
    assert (a != robust_mix(IMAGES, random_state=2)).any()
    floats = robust_mix(IMAGES / 255.0, random_state=1)
    assert floats.dtype == np.float64 and 0 <= floats.min() and floats.max() <= 1


def test_noise_fraction_varies_within_the_range():
    noisy = robust_mix(IMAGES, width=0, noise_probability=1.0, random_state=0)
    changed = (noisy != IMAGES).reshape(len(IMAGES), -1).sum(axis=1)
    assert changed.max() <= int(256 * 0.04)  # 16x16 images, at most 4% replaced
    assert changed.min() >= int(256 * 0.02) - 2  # a few redraws may hit the same value
    assert len(set(changed)) > 1  # the fraction differs between images
    untouched = robust_mix(IMAGES, width=0, noise_probability=0.0, random_state=0)
    np.testing.assert_array_equal(untouched, IMAGES)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"noise_range": (0.04, 0.02)}, "low <= high"),
        ({"width": -1}, "width must be"),
        ({"severity": 11}, "severity must be"),
        ({"noise_probability": 2}, "noise_probability must be"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        robust_mix(IMAGES, **params)


def test_standardised_images_are_refused():
    with pytest.raises(ValueError, match="cannot tell"):
        robust_mix((IMAGES - 128.0) / 60)


def test_robust_recipe_by_name():
    assert ROBUST_AUGMENT == ("flip", "shift", "robust")
    clf = FastNetClassifier(
        width=2, epochs=1, augment=ROBUST_AUGMENT, random_state=0, precision="float32"
    )
    assert isinstance(clf._augmentations()[-1], RobustMix)
    y = np.arange(64) % 2
    assert clf.fit(IMAGES, y).predict(IMAGES[:3]).shape == (3,)
