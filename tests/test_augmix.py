"""The robust training mixture (sklcifar.augmix, RobustMix, augment=[..., "robust"])."""

from __future__ import annotations

import numpy as np
import pytest

from sklcifar import FastNetClassifier
from sklcifar.augmix import (
    AUGMIX_OPERATIONS,
    OPERATIONS,
    PRIME_OPERATIONS,
    ROBUST_OPERATIONS,
    ROBUST_SEVERITY,
    robust_mix,
)
from sklcifar.estimators import ROBUST_AUGMENT
from sklcifar.transformers import RobustMix

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(64, 16, 16, 1), dtype=np.uint8)


@pytest.mark.parametrize("severity", [0.05, 0.5, 3, 10])
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operations_keep_shape_and_range(name, severity):
    x = RNG.random((8, 16, 16, 1), dtype=np.float32)
    out = OPERATIONS[name](x, severity, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_mixture_is_seeded_and_keeps_dtype():
    a = robust_mix(IMAGES, random_state=1)
    assert a.shape == IMAGES.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, robust_mix(IMAGES, random_state=1))
    assert (a != robust_mix(IMAGES, random_state=2)).any()
    floats = robust_mix(IMAGES / 255.0, random_state=1)
    assert floats.dtype == np.float64 and 0 <= floats.min() and floats.max() <= 1


def test_default_severity_bends_the_images_less_than_augmix_default():
    def change(**params):
        mixed = robust_mix(IMAGES, noise_probability=0.0, random_state=0, **params)
        return np.abs(mixed.astype(float) - IMAGES).mean()

    assert ROBUST_SEVERITY < 3
    assert change() < change(severity=3)
    assert change(severity=ROBUST_SEVERITY) == change()
    assert RobustMix().severity == ROBUST_SEVERITY


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


def test_prime_primitives_are_what_they_claim():
    x = np.random.default_rng(1).random((16, 32, 24, 1)).astype(np.float32)
    # The colour curve is a function of intensity: equal pixels stay equal.
    flat = np.full((4, 8, 8, 1), 0.3, dtype=np.float32)
    curved = OPERATIONS["color_curve"](flat, 3, np.random.default_rng(0))
    assert (curved == curved[:, :1, :1]).all() and (curved != 0.3).any()
    # A smooth displacement moves pixels by a pixel or two (non-square images included):
    # on a vertical ramp, value = row / 31, the change is the rows moved / 31.
    moved = OPERATIONS["diffeomorphism"](x, 3, np.random.default_rng(0))
    assert moved.shape == x.shape and (moved != x).any()
    ramp = np.broadcast_to(np.linspace(0, 1, 32, dtype=np.float32)[:, None, None], (32, 24, 1))
    warped = OPERATIONS["diffeomorphism"](np.stack([ramp] * 16), 3, np.random.default_rng(0))
    rows_moved = np.abs(warped - ramp).mean(axis=(1, 2, 3)) * 31
    assert 0 < rows_moved.mean() < 2 and rows_moved.max() < 4
    # The random filter keeps a constant image constant up to the filter's gain.
    filtered = OPERATIONS["random_filter"](np.full((8, 8, 8, 1), 0.5, np.float32), 3, RNG)
    assert (filtered == filtered[:, :1, :1]).all()


def test_operations_and_mix_probability():
    augmix_only = robust_mix(IMAGES, operations=AUGMIX_OPERATIONS, random_state=3)
    prime_only = robust_mix(IMAGES, operations=PRIME_OPERATIONS, random_state=3)
    assert (augmix_only != prime_only).any()
    assert ROBUST_OPERATIONS == AUGMIX_OPERATIONS + PRIME_OPERATIONS
    untouched = robust_mix(IMAGES, mix_probability=0.0, noise_probability=0.0, random_state=0)
    np.testing.assert_array_equal(untouched, IMAGES)
    half = robust_mix(IMAGES, mix_probability=0.5, noise_probability=0.0, random_state=0)
    changed = (half != IMAGES).reshape(len(IMAGES), -1).any(axis=1).mean()
    assert 0.25 < changed < 0.75


@pytest.mark.parametrize("operations", [(), ("blur",), ["rotate", "gaussian_noise"]])
def test_unknown_operations_are_refused(operations):
    with pytest.raises(ValueError, match="operations must be a non-empty sequence"):
        robust_mix(IMAGES, operations=operations)


def test_robust_mix_saved_before_prime_draws_augmix_operations():
    state = RobustMix(random_state=0).__getstate__()
    del state["operations"], state["mix_probability"]
    older = RobustMix.__new__(RobustMix)
    older.__setstate__(state)
    assert older.get_params()["operations"] == AUGMIX_OPERATIONS
    assert older.get_params()["mix_probability"] == 1.0


def test_consistency_loss_trains_on_three_views_and_saves():
    import io

    import joblib

    from sklcifar import training

    y = np.arange(64) % 2
    params = dict(width=2, epochs=2, batch_size=16, random_state=0, precision="float32")
    clf = FastNetClassifier(augment=ROBUST_AUGMENT, consistency=12.0, **params)
    clf.fit(IMAGES, y)
    assert isinstance(clf.model_.loss, training.ConsistencyCrossentropy)
    assert clf.model_.loss.weight == 12.0
    assert np.isfinite(clf.history_["loss"]).all() and len(clf.history_["val_loss"]) == 2
    # The consistency term changes what is learnt (same seed and data).
    plain = FastNetClassifier(augment=ROBUST_AUGMENT, **params).fit(IMAGES, y)
    assert clf.history_["loss"] != plain.history_["loss"]
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    loaded = joblib.load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_allclose(loaded.predict_proba(IMAGES[:8]), clf.predict_proba(IMAGES[:8]))
    assert loaded.get_params()["consistency"] == 12.0


def test_consistency_needs_a_robust_mix_step():
    y = np.arange(64) % 2
    clf = FastNetClassifier(width=2, epochs=1, augment=("flip", "shift"), consistency=12.0)
    with pytest.raises(ValueError, match="consistency=12.0 compares two draws of a RobustMix"):
        clf.fit(IMAGES, y)
    assert not hasattr(clf, "model_")
    with pytest.raises(ValueError, match="consistency"):
        FastNetClassifier(width=2, augment=ROBUST_AUGMENT, consistency=-1.0).fit(IMAGES, y)


def _changed_share(images, original):
    return (images != original).reshape(len(images), -1).any(axis=1).mean()


def test_final_mix_probability_follows_training_progress():
    falling = RobustMix(final_mix_probability=0.0, noise_probability=0.0, random_state=0)
    assert falling.follows_training_schedule and not RobustMix().follows_training_schedule
    assert _changed_share(falling.perturb(IMAGES, progress=0.0), IMAGES) > 0.9
    assert 0.3 < _changed_share(falling.perturb(IMAGES, progress=0.5), IMAGES) < 0.7
    np.testing.assert_array_equal(falling.perturb(IMAGES, progress=1.0), IMAGES)
    # Outside training (no progress, or transform) the share is mix_probability's.
    assert _changed_share(falling.perturb(IMAGES), IMAGES) > 0.9
    always = RobustMix(final_mix_probability=0.0, noise_probability=0.0, apply="always")
    assert _changed_share(always.fit(IMAGES).transform(IMAGES), IMAGES) > 0.9
    # Without final_mix_probability progress changes nothing.
    constant = RobustMix(random_state=0)
    np.testing.assert_array_equal(constant.perturb(IMAGES, progress=1.0), constant.perturb(IMAGES))


@pytest.mark.parametrize("progress", [-0.1, 1.5, float("nan"), "half", True])
def test_bad_progress_is_refused(progress):
    with pytest.raises(ValueError, match=r"progress must be a number in \[0, 1\]"):
        RobustMix(final_mix_probability=0.0).perturb(IMAGES, progress=progress)


def test_bad_final_mix_probability_is_refused():
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="final_mix_probability"):
        RobustMix(final_mix_probability=1.5).perturb(IMAGES, progress=0.5)


class ProgressRecorder(RobustMix):
    """RobustMix that records the progress the classifier passes with each batch."""

    seen: list = []

    def perturb(self, X, random_state=None, *, progress=None):
        type(self).seen.append(progress)
        return super().perturb(X, random_state, progress=progress)


def test_classifier_passes_training_progress():
    ProgressRecorder.seen = []
    step = ProgressRecorder(final_mix_probability=0.0)
    y = np.arange(64) % 2
    params = dict(width=2, epochs=3, batch_size=32, validation_fraction=0, random_state=0)
    FastNetClassifier(augment=("flip", step), precision="float32", **params).fit(IMAGES, y)
    # 3 epochs of 2 batches: the share of the 6 steps done before each batch (and 1.0
    # for the batches Keras prepares after the last epoch and never trains on).
    expected = [0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]
    assert sorted(set(ProgressRecorder.seen) - {1.0}) == pytest.approx(expected)


@pytest.mark.parametrize("budget, planned", [({}, 6), ({"time_budget": 600}, 4)])
def test_progress_counts_the_steps_planned(monkeypatch, budget, planned):
    # With a time budget the steps planned are its plan's (capped here by epochs=2, the
    # first plan set after the first epoch), else the epochs asked for.
    from sklcifar import training

    made = []
    original = training.AugmentedBatches.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(training.AugmentedBatches, "__init__", spy)
    y = np.arange(64) % 2
    epochs = 3 if not budget else 2
    params = dict(width=2, batch_size=32, validation_fraction=0, random_state=0)
    augment = ("flip", RobustMix(final_mix_probability=0.0))
    clf = FastNetClassifier(augment=augment, epochs=epochs, precision="float32", **params)
    clf.set_params(**budget).fit(IMAGES, y)
    assert made[0].planned_steps() == planned
