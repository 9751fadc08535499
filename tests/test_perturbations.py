"""Tests of sklcifar.perturbations: the shared contract, every perturbation, and checks
of the vectorised corruptions against direct implementations of the reference code."""

from __future__ import annotations

import colorsys
import io
import math

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sklcifar import perturbations as P

LAYOUTS = {"gray": (32, 32), "gray1": (32, 32, 1), "rgb": (32, 32, 3)}
RANDOM_CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "elastic_transform",
)
# (function, keyword arguments) of the noise and augmentation functions.
SIMPLE = {
    "pixel_noise": (P.pixel_noise, {"fraction": 0.1}),
    "salt_and_pepper": (P.salt_and_pepper, {"amount": 0.1}),
    "gaussian_noise": (P.gaussian_noise, {"sigma": 0.1}),
    "horizontal_flip": (P.horizontal_flip, {"probability": 0.5}),
    "random_shift": (P.random_shift, {"max_shift": 3}),
    "random_shift_fraction": (P.random_shift, {"max_shift": 0.1}),
    "random_rotation": (P.random_rotation, {"max_degrees": 20.0}),
}


def smooth_images(n: int = 16, shape: tuple[int, ...] = (32, 32, 3), seed: int = 0) -> np.ndarray:
    """Natural-looking float32 images in [0, 1]: Gaussian-filtered noise, stretched."""
    noise = np.random.default_rng(seed).random((n, *shape), dtype=np.float32)
    sigma = (0, 2, 2) + (0,) * (len(shape) - 2)
    x = ndimage.gaussian_filter(noise, sigma)
    axes = tuple(range(1, x.ndim))
    x -= x.min(axis=axes, keepdims=True)
    return x / x.max(axis=axes, keepdims=True)


def make_batch(layout: str, dtype: str, n: int = 4) -> np.ndarray:
    x = smooth_images(n, LAYOUTS[layout])
    return np.rint(x * 255).astype(np.uint8) if dtype == "uint8" else x


def check_contract(out: np.ndarray, images: np.ndarray, original: np.ndarray) -> None:
    assert isinstance(out, np.ndarray)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert not np.shares_memory(out, images)
    np.testing.assert_array_equal(images, original)  # input untouched
    if out.dtype != np.uint8:
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def mean_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# ----------------------------------------------------------------------------- contract
def test_corruption_names():
    assert P.CORRUPTIONS == (
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "glass_blur",
        "motion_blur",
        "zoom_blur",
        "snow",
        "frost",
        "fog",
        "brightness",
        "contrast",
        "elastic_transform",
        "pixelate",
        "jpeg_compression",
    )


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("severity", [1, 5])
@pytest.mark.parametrize("name", P.CORRUPTIONS)
def test_corruption_contract(name, severity, layout, dtype):
    images = make_batch(layout, dtype)
    original = images.copy()
    out = P.corrupt(images, name, severity, random_state=0)
    check_contract(out, images, original)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("key", SIMPLE)
def test_simple_contract(key, layout, dtype):
    func, kwargs = SIMPLE[key]
    images = make_batch(layout, dtype)
    original = images.copy()
    out = func(images, **kwargs, random_state=0)
    check_contract(out, images, original)
    assert (out != images).any()


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_dtypes_are_kept(dtype):
    images = smooth_images(3).astype(dtype)
    for out in (
        P.corrupt(images, "fog", 2, random_state=0),
        P.pixel_noise(images, random_state=0),
        P.random_rotation(images, random_state=0),
    ):
        assert out.dtype == dtype and out.shape == images.shape


def test_float64_untouched_pixels_are_exact():
    images = smooth_images(3).astype(np.float64) * 0.9 + 0.01
    out = P.pixel_noise(images, 0.1, random_state=0)
    changed = (out != images).any(axis=-1)
    assert changed.sum(axis=(1, 2)).tolist() == [102] * 3


@pytest.mark.parametrize(
    "call",
    [
        lambda x: P.corrupt(x, "snow", 3),
        lambda x: P.corrupt(x, "jpeg_compression", 3),
        lambda x: P.pixel_noise(x),
        lambda x: P.salt_and_pepper(x),
        lambda x: P.horizontal_flip(x),
        lambda x: P.random_shift(x),
        lambda x: P.random_rotation(x),
    ],
)
def test_empty_batch(call):
    images = np.zeros((0, 32, 32, 3), dtype=np.uint8)
    out = call(images)
    assert out.shape == images.shape and out.dtype == images.dtype


@pytest.mark.parametrize("size", [8, 12, 24])
def test_corruptions_work_on_other_sizes(size):
    images = make_batch("gray", "uint8")[:, :size, :size]
    for name in P.CORRUPTIONS:
        assert P.corrupt(images, name, 5, random_state=0).shape == images.shape


# -------------------------------------------------------------------------- severity
# elastic_transform is left out: in the reference tables severity 1 is a pure random
# affine warp with a larger jitter (0.08 * size) than severity 5 (0.03 * size), so on
# smooth images it moves pixels *more*; severities 2-5 add the elastic field instead
# (see test_elastic_transform_severity_1_is_affine).
@pytest.mark.parametrize("name", [n for n in P.CORRUPTIONS if n != "elastic_transform"])
def test_severity_5_changes_more_than_severity_1(name):
    images = smooth_images(16)
    change = [
        mean_change(P.corrupt(images, name, severity, random_state=1), images)
        for severity in (1, 5)
    ]
    assert change[1] > change[0] > 0


def test_elastic_transform_severity_1_is_affine():
    rows, cols = np.mgrid[0:32, 0:32]
    ramp = np.repeat((0.25 + 0.01 * cols + 0.008 * rows)[np.newaxis], 4, axis=0)

    def curvature(severity: int) -> float:
        out = P.corrupt(ramp, "elastic_transform", severity, random_state=0)[:, 8:24, 8:24]
        return max(np.abs(np.diff(out, 2, axis=axis)).max() for axis in (1, 2))

    assert curvature(1) < 1e-4  # an affine map of a linear ramp is linear
    assert curvature(5) > 1e-3  # the elastic displacement field is not
    assert mean_change(P.corrupt(ramp, "elastic_transform", 1, random_state=0), ramp) > 0


# ---------------------------------------------------------------------- reproducible
@pytest.mark.parametrize("name", P.CORRUPTIONS)
def test_corruption_seeds(name):
    images = make_batch("rgb", "uint8")
    first = P.corrupt(images, name, 3, random_state=7)
    np.testing.assert_array_equal(first, P.corrupt(images, name, 3, random_state=7))
    generator = P.corrupt(images, name, 3, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(first, generator)
    if name in RANDOM_CORRUPTIONS:
        assert (first != P.corrupt(images, name, 3, random_state=8)).any()


@pytest.mark.parametrize("key", SIMPLE)
def test_simple_seeds(key):
    func, kwargs = SIMPLE[key]
    images = make_batch("rgb", "float32", n=16)
    first = func(images, **kwargs, random_state=3)
    np.testing.assert_array_equal(first, func(images, **kwargs, random_state=3))
    assert (first != func(images, **kwargs, random_state=4)).any()


def test_same_seed_same_noise_for_uint8_and_float():
    floats = make_batch("gray", "float32")
    uint8 = np.rint(floats * 255).astype(np.uint8)
    a = P.corrupt(uint8, "fog", 3, random_state=0)
    b = P.corrupt(uint8.astype(np.float32) / 255, "fog", 3, random_state=0)
    assert np.abs(a.astype(np.float32) - b * 255).max() <= 0.5 + 1e-3


# ----------------------------------------------------------------- noise functions
@pytest.mark.parametrize("fraction", [0.0, 0.03, 0.5, 1.0])
@pytest.mark.parametrize("layout", ["gray", "rgb"])
def test_pixel_noise_changes_exact_count(fraction, layout):
    images = make_batch(layout, "float32", n=8)
    out = P.pixel_noise(images, fraction, random_state=0)
    changed = out != images
    if layout == "rgb":
        # Independent values per channel at the same positions.
        assert (changed.any(axis=-1) == changed.all(axis=-1)).all()
        changed = changed.any(axis=-1)
        if fraction:
            assert (out[changed][:, 0] != out[changed][:, 1]).all()
    assert changed.sum(axis=(1, 2)).tolist() == [int(32 * 32 * fraction)] * 8


def test_pixel_noise_uint8_at_most_count_and_uniform_levels():
    images = make_batch("gray", "uint8", n=64)
    out = P.pixel_noise(images, 0.25, random_state=0)
    changed = (out != images).sum(axis=(1, 2))
    assert (changed <= 256).all() and (changed >= 240).all()
    levels = P.pixel_noise(np.zeros((64, 32, 32), np.uint8), 1.0, random_state=0)
    counts = np.bincount(levels.ravel(), minlength=256)
    assert counts[0] > 0.5 * counts.mean() and counts[255] > 0.5 * counts.mean()


def test_salt_and_pepper_sets_whole_pixels_black_or_white():
    images = make_batch("rgb", "float32", n=8) * 0.9 + 0.05
    out = P.salt_and_pepper(images, 0.2, random_state=0)
    changed = (out != images).any(axis=-1)
    assert changed.sum(axis=(1, 2)).tolist() == [int(1024 * 0.2)] * 8
    values = out[changed]
    assert ((values == 0) | (values == 1)).all()
    assert (values == values[:, :1]).all()  # same value in every channel
    assert 0.4 < values[:, 0].mean() < 0.6


def test_gaussian_noise_matches_corruption_and_scale():
    images = np.full((64, 32, 32), 0.5, dtype=np.float32)
    out = P.gaussian_noise(images, 0.08, random_state=5)
    np.testing.assert_array_equal(out, P.corrupt(images, "gaussian_noise", 3, random_state=5))
    assert abs(float(out.std()) - 0.08) < 0.002
    np.testing.assert_array_equal(P.gaussian_noise(images, 0.0), images)


# ---------------------------------------------------------------------- augmentation
def test_horizontal_flip_probability():
    images = make_batch("rgb", "uint8", n=64)
    np.testing.assert_array_equal(P.horizontal_flip(images, probability=1.0), images[:, :, ::-1])
    np.testing.assert_array_equal(P.horizontal_flip(images, probability=0.0), images)
    out = P.horizontal_flip(images, random_state=0)
    flipped = (out == images[:, :, ::-1]).all(axis=(1, 2, 3))
    assert ((out == images).all(axis=(1, 2, 3)) | flipped).all()
    assert 16 < flipped.sum() < 48


@pytest.mark.parametrize("max_shift, limit", [(0, 0), (3, 3), (0.1, 3), (40, 40)])
def test_random_shift_is_a_reflect_padded_shift(max_shift, limit):
    images = make_batch("rgb", "uint8", n=12)
    out = P.random_shift(images, max_shift, random_state=0)
    padded = np.pad(images, ((0, 0), (64, 64), (64, 64), (0, 0)), mode="symmetric")
    for image, shifted in zip(padded, out, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-limit, limit + 1)
            for dx in range(-limit, limit + 1)
            if (image[64 - dy : 96 - dy, 64 - dx : 96 - dx] == shifted).all()
        ]
        assert matches, "output is not a reflect-padded shift within max_shift"


def test_random_rotation_matches_scipy_rotate():
    images = smooth_images(5, (32, 32)).astype(np.float64)
    out = P.random_rotation(images, 30, random_state=3)
    angles = P._uniform(np.random.default_rng(3), -30, 30, 5)
    expected = [
        ndimage.rotate(image, float(angle), reshape=False, order=1, mode="reflect")
        for image, angle in zip(images, angles, strict=True)
    ]
    np.testing.assert_allclose(out, np.stack(expected), atol=1e-5)
    np.testing.assert_array_equal(P.random_rotation(images, 0.0), images)


def test_random_rotation_turns_counter_clockwise():
    image = np.zeros((1, 33, 33), dtype=np.float32)
    image[0, 16, 28] = 1  # right of the centre
    seed = next(s for s in range(1000) if P._uniform(np.random.default_rng(s), -90, 90, 1)[0] > 85)
    out = P.random_rotation(image, 90, random_state=seed)
    row, col = np.unravel_index(out[0].argmax(), out[0].shape)
    assert row < 8 and abs(col - 16) <= 2  # now above the centre


# ---------------------------------------------------------------------------- errors
def test_unknown_corruption_lists_valid_names():
    with pytest.raises(ValueError, match="unknown corruption 'rain'.*gaussian_noise.*jpeg"):
        P.corrupt(make_batch("gray", "uint8"), "rain", 1)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, "3"])
def test_bad_severity(severity):
    with pytest.raises(
        ValueError, match=f"severity must be an integer from 1 to 5, got {severity!r}"
    ):
        P.corrupt(make_batch("gray", "uint8"), "fog", severity)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: P.pixel_noise(x, -0.1), "fraction must be a number in \\[0, 1\\], got -0.1"),
        (lambda x: P.pixel_noise(x, 1.5), "fraction .* got 1.5"),
        (lambda x: P.pixel_noise(x, float("nan")), "fraction .* got nan"),
        (lambda x: P.salt_and_pepper(x, 2), "amount .* got 2"),
        (lambda x: P.gaussian_noise(x, -0.5), "sigma must be a finite number >= 0, got -0.5"),
        (lambda x: P.horizontal_flip(x, probability=1.5), "probability .* got 1.5"),
        (lambda x: P.random_shift(x, -1), "max_shift .* got -1"),
        (lambda x: P.random_shift(x, 1.5), "max_shift .* got 1.5"),
        (lambda x: P.random_shift(x, True), "max_shift .* got True"),
        (lambda x: P.random_rotation(x, -5), "max_degrees .* got -5"),
        (lambda x: P.random_rotation(x, 200), "max_degrees .* got 200"),
    ],
)
def test_bad_parameters(call, message):
    with pytest.raises(ValueError, match=message):
        call(make_batch("gray", "uint8"))


@pytest.mark.parametrize(
    "images, message",
    [
        (np.full((2, 8, 8), 1.5, np.float32), r"in \[1.5, 1.5\]"),
        (np.full((2, 8, 8), -0.1), r"in \[-0.1, -0.1\]"),
        (np.full((2, 8, 8), 255.0), r"in \[255, 255\]"),
        (np.full((2, 8, 8), np.nan, np.float32), "NaN or infinite"),
        (np.full((2, 8, 8), np.inf), "NaN or infinite"),
        (np.zeros((2, 8), np.uint8), r"has shape \(2, 8\)"),
        (np.zeros((8, 8, 8, 2), np.uint8), r"2 channels \(shape \(8, 8, 8, 2\)\)"),
        (np.zeros((1, 8, 8, 3, 1), np.uint8), r"has shape \(1, 8, 8, 3, 1\)"),
        (np.full((2, 8, 8), 256, np.int64), "integer images must hold values in 0..255"),
        (np.zeros((2, 8, 8), bool), "has dtype bool"),
    ],
)
def test_bad_images(images, message):
    calls = [
        lambda x: P.corrupt(x, "contrast", 1),
        lambda x: P.pixel_noise(x),
        lambda x: P.random_rotation(x),
    ]
    out_of_range = images.dtype.kind == "f" and np.isfinite(images).all()
    if not out_of_range:  # flip and shift only move pixels: any finite range
        calls += [lambda x: P.horizontal_flip(x), lambda x: P.random_shift(x)]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call(images)


def test_flip_and_shift_accept_standardised_images():
    images = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32) * 3
    flipped = P.horizontal_flip(images, probability=1.0)
    np.testing.assert_array_equal(flipped, images[:, :, ::-1])
    shifted = P.random_shift(images, 2, random_state=0)
    assert shifted.dtype == images.dtype and shifted.min() >= images.min()


# ------------------------------------------------- checks against the reference code
def test_zoom_matrix_matches_reference_clipped_zoom():
    image = np.random.default_rng(0).random((32, 32))
    for factor in (1.0, 1.06, 1.15, 1.25, 1.75, 2.25):
        matrix = P._zoom_matrix(32, factor)
        expected = reference_clipped_zoom(image, factor)
        np.testing.assert_allclose(matrix @ image @ matrix.T, expected, atol=1e-12)


def reference_clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """``clipped_zoom`` of make_cifar_c.py (square 2-D image)."""
    size = image.shape[0]
    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    zoomed = ndimage.zoom(image[top : top + crop, top : top + crop], factor, order=1)
    trim = (zoomed.shape[0] - size) // 2
    return zoomed[trim : trim + size, trim : trim + size]


def test_zoom_blur_matches_reference():
    images = smooth_images(2, (32, 32)).astype(np.float64)
    factors = np.arange(1, 1.11, 0.01)  # severity 2
    expected = [
        (image + sum(reference_clipped_zoom(image, z) for z in factors)) / (len(factors) + 1)
        for image in images
    ]
    out = P.corrupt(images, "zoom_blur", 2)
    np.testing.assert_allclose(out, np.clip(np.stack(expected), 0, 1), atol=1e-6)


def test_zoom_factors_keep_reference_arange():
    lengths = [len(f) for f in P._REGISTRY["zoom_blur"].severities]
    assert lengths == [len(np.arange(1, s, 0.01)) for s in (1.06, 1.11, 1.16, 1.21, 1.26)]


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_pixelate_matches_pillow_box_resize(severity):
    images = (np.random.default_rng(0).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    factor = P._REGISTRY["pixelate"].severities[severity - 1]
    small = int(32 * factor)
    expected = np.stack(
        [
            np.asarray(
                Image.fromarray(im).resize((small, small), Image.BOX).resize((32, 32), Image.BOX)
            )
            for im in images
        ]
    )
    out = P.corrupt(images, "pixelate", severity)
    assert np.abs(out.astype(int) - expected).max() <= 1  # Pillow rounds between passes


@pytest.mark.parametrize("layout", ["gray", "rgb"])
def test_jpeg_matches_pillow_image_by_image(layout):
    images = make_batch(layout, "uint8", n=70)
    expected = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=40)
        expected.append(np.asarray(Image.open(buffer)))
    np.testing.assert_array_equal(P.corrupt(images, "jpeg_compression", 5), np.stack(expected))


def test_glass_blur_matches_reference_loop():
    x = smooth_images(3).astype(np.float64)
    sigma, delta, iterations = params = (0.4, 1, 2)
    out = P._glass_blur(x, params, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    codes = [rng.integers(0, 4, size=(3, 30, 30), dtype=np.int32) for _ in range(iterations)]
    blurred = np.floor(ndimage.gaussian_filter(x, (0, sigma, sigma, 0), mode="nearest") * 255)
    for i, image in enumerate(blurred):  # (32, 32, 3): pixels are views, as in the reference
        for code in codes:
            for h in range(32 - delta, delta, -1):
                for w in range(32 - delta, delta, -1):
                    dy, dx = divmod(int(code[i, h - 2, w - 2]), 2)
                    hp, wp = h + dy - 1, w + dx - 1
                    image[h, w], image[hp, wp] = image[hp, wp], image[h, w]
    expected = ndimage.gaussian_filter(blurred / 255, (0, sigma, sigma, 0), mode="nearest")
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_line_blur_matches_imagemagick_formula():
    x = smooth_images(7).astype(np.float64)
    angles = np.random.default_rng(0).uniform(-180, 180, 7)
    radius, sigma = 9, 2.5
    out = P._line_blur(x, radius, sigma, angles, chunk=3)
    width = 2 * math.ceil(radius) + 1
    weights = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    for image, angle, result in zip(x, angles, out, strict=True):
        expected = np.zeros_like(image)
        a = math.radians(angle)
        for i in range(width):
            dx, dy = math.ceil(i * math.cos(a) - 0.5), math.ceil(i * math.sin(a) - 0.5)
            rows = np.clip(np.arange(32) + dy, 0, 31)
            cols = np.clip(np.arange(32) + dx, 0, 31)
            expected += weights[i] * image[rows][:, cols]
        np.testing.assert_allclose(result, expected, atol=1e-12)


def test_brightness_matches_hsv_value_shift():
    images = smooth_images(2, (8, 8, 3)).astype(np.float64)
    images[0, 0, 0] = 0  # a black pixel
    out = P.corrupt(images, "brightness", 5)
    expected = np.empty_like(images)
    for index in np.ndindex(images.shape[:3]):
        h, s, v = colorsys.rgb_to_hsv(*images[index])
        expected[index] = colorsys.hsv_to_rgb(h, s, min(v + 0.3, 1.0))
    np.testing.assert_allclose(out, expected, atol=1e-12)
    gray = images[..., :1]
    np.testing.assert_allclose(P.corrupt(gray, "brightness", 5), np.minimum(gray + 0.3, 1))


def test_box_resize_matrix_matches_pillow():
    signal = np.random.default_rng(0).random((3, 32)).astype(np.float32)
    for size in (20, 24, 27, 30):
        expected = np.asarray(Image.fromarray(signal).resize((size, 3), Image.BOX))
        np.testing.assert_allclose(signal @ P._box_resize_matrix(32, size).T, expected, atol=1e-6)
