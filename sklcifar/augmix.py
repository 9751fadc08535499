"""The robust training mixture: AugMix-style chains plus the seed's noise at 2-4%.

`robust_mix` is what ``augment=[..., "robust"]`` (`sklcifar.transformers.RobustMix`)
draws afresh for every training batch. It follows AugMix (Hendrycks et al., ICLR 2020,
``google-research/augmix``): each image is mixed with ``width`` chains of 1-3 random
operations, ``m * x + (1 - m) * sum_i w_i chain_i(x)`` with ``w ~ Dirichlet(1)`` and
``m ~ Beta(1, 1)``; then a share ``noise_probability`` of the images gets the seed
study's pixel noise with a fraction drawn per image from ``noise_range`` (the seed
proposed "a varying degree of noise across the samples, eg from 2% to 4%").

The operations are AugMix's CIFAR list: autocontrast, equalize, posterize, solarize,
rotate, shear and translate. Like AugMix, it leaves out the operations that are CIFAR-C
corruptions (contrast, brightness, blur, noise of CIFAR-C's kinds, JPEG, pixelation,
weather): training on the test corruptions at their test parameters would tune the
model to the benchmark instead of measuring robustness. The seed's pixel noise is the
one test perturbation trained on, because the seed's perturbed test set is the task.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .perturbations import (
    RandomLike,
    _bilinear,
    _check_image_range,
    _check_number,
    _from_float,
    _nhwc,
    _pixel_grid,
    _replace_pixels,
    _to_float,
    random_shift,
)

__all__ = ["OPERATIONS", "ROBUST_NOISE_RANGE", "robust_mix"]

#: Pixel-noise fractions the robust mixture draws from, per image (the seed's proposal).
ROBUST_NOISE_RANGE = (0.02, 0.04)
_LEVELS = 256


# ------------------------------------------------------------------------ operations
# Each takes a float (n, H, W, C) batch in [0, 1], a severity in (0, 10] (AugMix's
# scale: its CIFAR default is 3) and a Generator, and returns a new batch.
def _autocontrast(x, severity, rng):
    low = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (x - low) / np.where(span > 0, span, 1), x)


def _equalize(x, severity, rng):
    n, h, w, c = x.shape
    levels = np.rint(x * (_LEVELS - 1)).astype(np.intp)
    planes = np.moveaxis(levels, 3, 1).reshape(n * c, h * w)
    offsets = np.arange(n * c)[:, np.newaxis] * _LEVELS
    counts = np.bincount((planes + offsets).ravel(), minlength=n * c * _LEVELS)
    cdf = np.cumsum(counts.reshape(n * c, _LEVELS), axis=1) / (h * w)
    out = np.take_along_axis(cdf, planes, axis=1).astype(x.dtype)
    return np.moveaxis(out.reshape(n, c, h, w), 1, 3)


def _posterize(x, severity, rng):
    bits = 8 - rng.integers(0, max(1, int(severity * 4 / 10)) + 1, size=len(x))
    step = (2.0 ** (8 - bits)).reshape(-1, 1, 1, 1)
    return (np.floor(x * 255 / step) * step / 255).astype(x.dtype)


def _solarize(x, severity, rng):
    threshold = 1 - rng.uniform(0.1, severity / 10, size=(len(x), 1, 1, 1))
    return np.where(x >= threshold, 1 - x, x)


def _affine(x, matrices):
    """Resample each image at ``matrix @ (row, col)`` about its centre, reflecting."""
    n, h, w, _ = x.shape
    rows, cols = _pixel_grid(h, w)
    dr, dc = rows - (h - 1) / 2, cols - (w - 1) / 2
    a = matrices[:, :, :, np.newaxis, np.newaxis]
    src_rows = (h - 1) / 2 + a[:, 0, 0] * dr + a[:, 0, 1] * dc
    src_cols = (w - 1) / 2 + a[:, 1, 0] * dr + a[:, 1, 1] * dc
    return _bilinear(x, src_rows.astype(np.float32), src_cols.astype(np.float32), "reflect")


def _signed(rng, high, n):
    return rng.uniform(0.1 * high, high, size=n) * rng.choice([-1, 1], size=n)


def _rotate(x, severity, rng):
    theta = np.deg2rad(_signed(rng, 30 * severity / 10, len(x)))
    cos, sin = np.cos(theta), np.sin(theta)
    return _affine(x, np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1))


def _shear(x, severity, rng):
    n = len(x)
    shear = _signed(rng, 0.3 * severity / 10, n)
    along_rows = rng.random(n) < 0.5
    matrices = np.tile(np.eye(2), (n, 1, 1))
    matrices[along_rows, 0, 1] = shear[along_rows]
    matrices[~along_rows, 1, 0] = shear[~along_rows]
    return _affine(x, matrices)


def _translate(x, severity, rng):
    return random_shift(x, max(1, round(x.shape[1] / 3 * severity / 10)), random_state=rng)


OPERATIONS: dict[str, Callable] = {
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "posterize": _posterize,
    "solarize": _solarize,
    "rotate": _rotate,
    "shear": _shear,
    "translate": _translate,
}


# --------------------------------------------------------------------------- mixture
def _chain(x, severity, rng, max_depth=3):
    """Each image through its own chain of 1..max_depth random operations."""
    n = len(x)
    depth = rng.integers(1, max_depth + 1, size=n)
    ops = rng.integers(0, len(OPERATIONS), size=(max_depth, n))
    out = x.copy()
    for level in range(max_depth):
        for index, operation in enumerate(OPERATIONS.values()):
            rows = np.flatnonzero((depth > level) & (ops[level] == index))
            if len(rows):
                out[rows] = operation(out[rows], severity, rng)
    return out


def robust_mix(
    images: ArrayLike,
    *,
    severity: float = 3,
    width: int = 3,
    noise_range: tuple[float, float] = ROBUST_NOISE_RANGE,
    noise_probability: float = 0.5,
    random_state: RandomLike = None,
) -> np.ndarray:
    """Mix each image with AugMix chains, then add the seed's noise to some of them.

    ``images``, ``random_state`` and the result follow the contract of every function of
    :mod:`sklcifar.perturbations`: a new batch of the input's shape and dtype.

    Parameters
    ----------
    images : array_like
    severity : float, default 3
        Strength of the operations on AugMix's scale (0, 10]; 3 is AugMix's default.
    width : int, default 3
        Chains mixed per image (0: no mixing, noise only).
    noise_range : (float, float), default ROBUST_NOISE_RANGE (0.02, 0.04)
        Per-image pixel-noise fraction, drawn uniformly from this range.
    noise_probability : float, default 0.5
        Share of the images that get pixel noise.
    random_state : None, int or numpy.random.Generator

    Examples
    --------
    >>> from sklcifar.augmix import robust_mix
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    >>> robust_mix(images, random_state=0).shape
    (4, 32, 32, 1)
    """
    severity = _check_number("severity", severity, 0, 10)
    noise_probability = _check_number("noise_probability", noise_probability, 0, 1)
    low, high = (_check_number("noise_range", bound, 0, 1) for bound in noise_range)
    if low > high:
        raise ValueError(f"noise_range must be (low, high) with low <= high; got {noise_range}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise ValueError(f"width must be an integer >= 0 (chains per image); got {width!r}")
    rng = np.random.default_rng(random_state)
    arr = _check_image_range(images, "robust_mix")
    x = _to_float(arr)
    n, h, w, _ = x.shape
    if width and n:
        weights = rng.dirichlet(np.ones(width), size=n).astype(x.dtype)
        skip = rng.beta(1, 1, size=n).astype(x.dtype)
        mixed = sum(
            weights[:, i, None, None, None] * _chain(x, severity, rng) for i in range(width)
        )
        x = skip[:, None, None, None] * x + (1 - skip[:, None, None, None]) * mixed
    mixed_images = _from_float(x, arr)
    fractions = rng.uniform(low, high, size=n) * (rng.random(n) < noise_probability)
    counts = (h * w * fractions).astype(int)
    return _replace_pixels(_nhwc(mixed_images), counts, rng).reshape(arr.shape)
