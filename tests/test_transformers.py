"""Tests for sklcifar.transformers."""

import doctest
import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from sklcifar import perturbations, transformers
from sklcifar.transformers import (
    Corruption,
    GaussianNoise,
    Grayscale,
    PerturbationTransformer,
    PixelNoise,
    RandomFlip,
    RandomRotation,
    RandomShift,
    RobustMix,
    SaltAndPepper,
    ScaleToUnit,
    Standardize,
)

PERTURBATIONS = [
    PixelNoise,
    SaltAndPepper,
    GaussianNoise,
    Corruption,
    RandomFlip,
    RandomShift,
    RandomRotation,
    RobustMix,
]
ALL_TRANSFORMERS = [Grayscale, ScaleToUnit, Standardize, *PERTURBATIONS]


def _uint8_images(n=4, size=8, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def _float_images(n=4, size=8, channels=3, seed=0):
    return np.random.default_rng(seed).random((n, size, size, channels), dtype=np.float32)


class Recorder(TransformerMixin, BaseEstimator):
    """Last pipeline step: keeps a copy of the images each method received."""

    def fit(self, X, y=None):
        self.fit_X_ = np.array(X, copy=True)
        return self

    def transform(self, X):
        self.transform_X_ = np.array(X, copy=True)
        return X

    def predict(self, X):
        self.predict_X_ = np.array(X, copy=True)
        return np.zeros(len(X))


def test_docstring_examples():
    result = doctest.testmod(transformers, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# ------------------------------------------------------------------------ Grayscale
def test_grayscale_matches_tensorflow():
    import tensorflow as tf

    images = _uint8_images(n=16, size=32)
    # Include the extremes, where TensorFlow's truncation and saturation matter.
    images[0] = 0
    images[1] = 255
    images[2, ..., 0] = 255
    expected = tf.image.rgb_to_grayscale(tf.constant(images)).numpy()
    got = Grayscale().fit_transform(images)
    assert got.shape == (16, 32, 32, 1)
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1

    floats = _float_images(n=16, size=32)
    expected = tf.image.rgb_to_grayscale(tf.constant(floats)).numpy()
    got = Grayscale().fit_transform(floats.astype(np.float64))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_grayscale_converts_a_split_in_chunks_as_it_converts_each_image():
    images = _uint8_images(n=1100, size=8)  # two whole chunks of 512 and a ragged one
    whole = Grayscale().fit_transform(images)
    one_by_one = np.concatenate([Grayscale().fit_transform(image[None]) for image in images])
    np.testing.assert_array_equal(whole, one_by_one)
    assert whole.shape == (1100, 8, 8, 1)


def test_grayscale_one_channel_and_3d_input():
    images = _uint8_images(channels=1)
    out = Grayscale().fit_transform(images)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)

    out = Grayscale().fit_transform(images[..., 0])
    assert out.shape == images.shape
    np.testing.assert_array_equal(out, images)

    floats = _float_images(channels=1).astype(np.float64)
    out = Grayscale().transform(floats)  # stateless: no fit needed
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, floats, rtol=1e-7)


# ---------------------------------------------------------------------- ScaleToUnit
def test_scale_to_unit():
    images = _uint8_images()
    images[0, 0, 0] = (0, 255, 128)
    out = ScaleToUnit().fit_transform(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out, images / 255.0, rtol=1e-6)

    floats = _float_images().astype(np.float64)
    out = ScaleToUnit().transform(floats)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, floats, rtol=1e-7)

    assert ScaleToUnit().transform(images[..., :1][..., 0]).shape == (4, 8, 8, 1)

    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ScaleToUnit().fit(floats * 2.0)


# ---------------------------------------------------------------------- Standardize
def test_standardize_per_channel():
    rng = np.random.default_rng(0)
    images = rng.normal([10.0, 100.0, 200.0], [1.0, 5.0, 20.0], (32, 8, 8, 3))
    scaler = Standardize().fit(images)
    np.testing.assert_allclose(scaler.mean_, images.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(scaler.scale_, images.std(axis=(0, 1, 2)))
    out = scaler.transform(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, atol=1e-5)


def test_standardize_global_and_constant_channel():
    images = _uint8_images(n=16)
    scaler = Standardize(per_channel=False).fit(images)
    assert scaler.mean_.shape == (1,) and scaler.scale_.shape == (1,)
    out = scaler.transform(images)
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1.0) < 1e-5

    constant = np.full((4, 8, 8, 1), 0.5)
    scaler = Standardize().fit(constant)
    assert scaler.scale_[0] == 1.0
    assert np.isfinite(scaler.transform(constant)).all()


def test_standardize_errors():
    images = _uint8_images()
    with pytest.raises(NotFittedError):
        Standardize().transform(images)
    scaler = Standardize().fit(images)
    with pytest.raises(ValueError, match="channels"):
        scaler.transform(images[..., :1])
    with pytest.raises(ValueError, match="8x8"):
        scaler.transform(_uint8_images(size=6))
    with pytest.raises(ValueError, match="per_channel"):
        Standardize(per_channel="yes").fit(images)


def test_standardize_refuses_images_of_another_scale():
    # Fitted on uint8 0..255, then given the same images as floats in [0, 1]: without the
    # check every pixel would land in a narrow band far below zero, silently.
    images = _uint8_images()
    scaler = Standardize().fit(images)
    np.testing.assert_array_equal(scaler.transform(images), scaler.transform(images * 1.0))
    with pytest.raises(ValueError, match=r"X has floats in \[.*\], but this Standardize"):
        scaler.transform(images / 255.0)
    unit = Standardize().fit(images / 255.0)
    with pytest.raises(ValueError, match=r"uint8 pixels \(0..255\).*floats in \[0, 1\]"):
        unit.transform(images)


def test_standardize_saved_before_its_scale_check_still_transforms():
    images = _uint8_images()
    scaler = Standardize().fit(images)
    expected = scaler.transform(images)
    older = pickle.loads(pickle.dumps(scaler))
    del older.input_scale_  # as a Standardize pickled before the attribute existed
    np.testing.assert_array_equal(older.transform(images), expected)


# -------------------------------------------------------------------- perturbations
@pytest.mark.parametrize("apply", ["fit", "always"])
def test_pipeline_semantics(apply):
    images = _uint8_images()
    pipe = Pipeline(
        [("noise", PixelNoise(fraction=0.5, apply=apply, random_state=0)), ("probe", Recorder())]
    )
    pipe.fit(images)
    probe = pipe.named_steps["probe"]
    assert probe.fit_X_.shape == images.shape
    assert (probe.fit_X_ != images).any()  # trained on perturbed images

    pipe.predict(images)
    pipe.transform(images)
    for seen in (probe.predict_X_, probe.transform_X_):
        assert seen.shape == images.shape
        if apply == "fit":
            np.testing.assert_array_equal(seen, images)  # clean at predict time
        else:
            assert (seen != images).any()


def test_fit_transform_equals_fit_then_transform_when_always():
    images = _uint8_images()
    noise = PixelNoise(fraction=0.5, apply="always", random_state=0)
    np.testing.assert_array_equal(noise.fit_transform(images), noise.fit(images).transform(images))


def test_random_state_and_perturb():
    images = _uint8_images()
    original = images.copy()
    first = PixelNoise(fraction=0.5, random_state=3).fit_transform(images)
    second = PixelNoise(fraction=0.5, random_state=3).fit_transform(images)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(images, original)  # input not modified

    noise = PixelNoise(fraction=0.5)  # perturb needs no fit
    a = noise.perturb(images, random_state=np.random.default_rng(7))
    b = noise.perturb(images, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(7)
    c, d = noise.perturb(images, random_state=rng), noise.perturb(images, random_state=rng)
    assert (c != d).any()  # the Generator is advanced
    assert a.shape == images.shape and a.dtype == np.uint8
    assert noise.perturb(images[..., :1][..., 0], random_state=0).shape == (4, 8, 8, 1)
    # perturb ignores apply, and falls back to the estimator's random_state.
    np.testing.assert_array_equal(PixelNoise(fraction=0.5, random_state=3).perturb(images), first)


@pytest.mark.parametrize("cls", PERTURBATIONS)
@pytest.mark.parametrize("make_images", [_uint8_images, _float_images])
def test_every_perturbation(cls, make_images):
    images = make_images(size=16)
    est = cls(random_state=0)
    out = est.fit_transform(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert est.n_channels_in_ == 3
    np.testing.assert_array_equal(est.transform(images), images)
    assert cls(apply="always", random_state=0).transform(images).shape == images.shape


def test_parameters_are_forwarded():
    images = _float_images()
    np.testing.assert_array_equal(
        RandomFlip(probability=1.0).fit_transform(images), images[:, :, ::-1]
    )
    np.testing.assert_array_equal(RandomFlip(probability=0.0).fit_transform(images), images)
    images = _uint8_images()
    np.testing.assert_array_equal(
        Corruption("contrast", severity=4, random_state=1).fit_transform(images),
        perturbations.corrupt(images, "contrast", 4, random_state=np.random.default_rng(1)),
    )


def test_base_class_without_perturbation():
    with pytest.raises(NotImplementedError):
        PerturbationTransformer().fit_transform(_uint8_images())


# ---------------------------------------------------------------- sklearn protocol
NON_DEFAULT = {
    Grayscale: {},
    ScaleToUnit: {},
    Standardize: {"per_channel": False},
    PixelNoise: {"fraction": 0.2, "apply": "always", "random_state": 1},
    SaltAndPepper: {"amount": 0.1, "apply": "always", "random_state": 2},
    GaussianNoise: {"sigma": 0.2, "apply": "always", "random_state": 3},
    Corruption: {"name": "fog", "severity": 3, "apply": "always", "random_state": 4},
    RandomFlip: {"probability": 0.9, "apply": "always", "random_state": 5},
    RandomShift: {"max_shift": 4, "apply": "always", "random_state": 6},
    RandomRotation: {"max_degrees": 20.0, "apply": "always", "random_state": 7},
    RobustMix: {"severity": 5, "noise_probability": 1.0, "apply": "always", "random_state": 8},
}


@pytest.mark.parametrize("cls", ALL_TRANSFORMERS)
def test_clone_round_trip(cls):
    params = NON_DEFAULT[cls]
    est = cls(**params)
    assert est.get_params() == {**cls().get_params(), **params}
    cloned = clone(est)
    assert cloned is not est and cloned.get_params() == est.get_params()
    fitted = est.fit(_uint8_images())
    assert fitted is est
    assert not hasattr(clone(est), "n_channels_in_")
    assert repr(est).startswith(cls.__name__)


GENERIC_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_estimator_cloneable",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_sparse_tag",
    "check_valid_tag_types",
    "check_mixin_order",
]


@pytest.mark.parametrize("cls", ALL_TRANSFORMERS)
def test_sklearn_generic_checks(cls):
    # The checks of check_estimator that do not feed 2-D tabular data.
    for name in GENERIC_CHECKS:
        getattr(estimator_checks, name)(cls.__name__, cls(**NON_DEFAULT[cls]))


# ----------------------------------------------------------------------- bad input
BAD_IMAGES = {
    "rank 2": (np.zeros((4, 64)), "rank"),
    "rank 5": (np.zeros((2, 4, 8, 8, 3)), "rank"),
    "NaN pixel": (np.where(np.eye(8)[None, :, :, None] > 0, np.nan, 0.5), "NaN"),
    "inf pixel": (np.full((2, 8, 8, 3), np.inf), "infinite"),
    "4 channels": (np.zeros((2, 8, 8, 4)), "channel"),
    "int out of range": (np.full((2, 8, 8, 3), 300), "0..255"),
    "no images": (np.zeros((0, 8, 8, 3)), "0 images"),
    "strings": (np.full((2, 8, 8, 3), "a"), "dtype"),
}


@pytest.mark.parametrize("cls", ALL_TRANSFORMERS)
@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_images(cls, case):
    X, message = BAD_IMAGES[case]
    with pytest.raises(ValueError, match=message):
        cls().fit(X)
    with pytest.raises(ValueError, match=message):
        cls().fit_transform(X)


def test_integer_images_are_accepted():
    images = _uint8_images().astype(np.int64)
    out = Grayscale().fit_transform(images)
    assert out.dtype == np.uint8


@pytest.mark.parametrize(
    ("est", "param"),
    [
        (PixelNoise(apply="sometimes"), "apply"),
        (PixelNoise(fraction=1.5), "fraction"),
        (SaltAndPepper(amount=-0.1), "amount"),
        (GaussianNoise(sigma=-1.0), "sigma"),
        (Corruption(name="rain"), "name"),
        (Corruption(severity=6), "severity"),
        (Corruption(severity=0), "severity"),
        (RandomFlip(probability=2.0), "probability"),
        (RandomShift(max_shift=-1), "max_shift"),
        (RandomShift(max_shift=1.5), "max_shift"),
        (RandomRotation(max_degrees=270), "max_degrees"),
        (RandomShift(random_state="seed"), "random_state"),
    ],
)
def test_bad_parameters(est, param):
    images = _uint8_images()
    for call in (est.fit, est.fit_transform, est.perturb):
        with pytest.raises(ValueError, match=param):
            call(images)
