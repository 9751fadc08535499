"""The robust training mixture: AugMix and PRIME chains plus the seed's noise at 2-4%.

`robust_mix` is what ``augment=[..., "robust"]`` (`sklcifar.transformers.RobustMix`)
draws afresh for every training batch. It follows AugMix (Hendrycks et al., ICLR 2020,
``google-research/augmix``): a share ``mix_probability`` of the images is mixed with
``width`` chains of 1-3 random operations, ``m * x + (1 - m) * sum_i w_i chain_i(x)``
with ``w ~ Dirichlet(1)`` and ``m ~ Beta(1, 1)``; then a share ``noise_probability`` of
the images gets the seed study's pixel noise with a fraction drawn per image from
``noise_range`` (the seed proposed "a varying degree of noise across the samples, eg
from 2% to 4%").

The operations are AugMix's CIFAR list (autocontrast, equalize, posterize, solarize,
rotate, shear, translate) and PRIME's three primitives (Modas et al., ECCV 2022: a
random filter, a random smooth displacement, a random intensity curve). Like AugMix and
PRIME, it leaves out the operations that are CIFAR-C corruptions (contrast, brightness,
blur, noise of CIFAR-C's kinds, JPEG, pixelation, weather): training on the test
corruptions at their test parameters would tune the model to the benchmark instead of
measuring robustness. The seed's pixel noise is the one test perturbation trained on,
because the seed's perturbed test set is the task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

__all__ = [
    "AUGMIX_OPERATIONS",
    "OPERATIONS",
    "PRIME_OPERATIONS",
    "ROBUST_NOISE_RANGE",
    "ROBUST_OPERATIONS",
    "ROBUST_SEVERITY",
    "robust_mix",
]

#: Pixel-noise fractions the robust mixture draws from, per image (the seed's proposal).
ROBUST_NOISE_RANGE = (0.02, 0.04)
#: Strength of the mixed operations on AugMix's scale (0, 10]. Milder than AugMix's default
#: 3: at FastNet's 16 epochs severity 1 cost 1.6 points of clean accuracy against 2.7 at 3,
#: with the same accuracy under the 15 corruptions and less under the seed's noise
#: (benchmarks/RESULTS.md, "The robust mixture's severity").
ROBUST_SEVERITY = 1
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
    # AugMix draws the level from [0.1, severity / 10], numpy's legacy uniform taking the
    # bounds in either order; Generator.uniform refuses a low above high (severity < 1).
    bounds = sorted((0.1, severity / 10))
    threshold = 1 - rng.uniform(*bounds, size=(len(x), 1, 1, 1))
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


# PRIME's three primitives (Modas et al., ECCV 2022, "PRIME: A Few Primitives Can Boost
# Robustness to Common Corruptions"): a random 3x3 filter (spectral), a random smooth
# displacement field (spatial) and a random smooth intensity curve (colour). None is a
# CIFAR-C corruption; their strength is drawn per image from PRIME's CIFAR ranges,
# scaled by severity / _PRIME_SEVERITY so that the default severity uses PRIME's own.
_PRIME_SEVERITY = 3
_FILTER_SIGMA = 4.0  # largest spread of the random filter's weights
_CURVE_FREQUENCIES = 100  # most sine terms in a random intensity curve
_CURVE_TEMPERATURE = 0.01  # largest variance of a curve's sine coefficients


def _random_filter(x, severity, rng):
    """Convolve each image with ``delta + sigma * N(0, 1)``, sigma ~ U(0, 4) (3x3)."""
    n, h, w, _ = x.shape
    sigma = rng.uniform(0, _FILTER_SIGMA * severity / _PRIME_SEVERITY, size=n)
    kernels = sigma[:, None, None] * rng.standard_normal((n, 3, 3))
    kernels[:, 1, 1] += 1
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    out = np.zeros_like(x)
    for row in range(3):
        for col in range(3):
            weight = kernels[:, row, col, None, None, None].astype(x.dtype)
            out += weight * padded[:, row : row + h, col : col + w]
    return np.clip(out, 0, 1)


def _smooth_field(n, side, cuts, rng):
    """``n`` random sums of the sine modes ``k_i, k_j <= cut`` on a side x side grid."""
    modes = int(cuts.max())
    k = np.arange(1, modes + 1)
    radius = np.hypot(k[:, None], k[None, :])
    energy = (radius[None] < cuts[:, None, None] + 0.5) / radius[None]
    coefficients = rng.standard_normal((n, modes, modes)) * energy
    sines = np.sin(np.pi * np.linspace(0, 1, side)[:, None] * k[None, :])
    # field[n, y, x] = sum_ij coefficients[n, i, j] sines[x, i] sines[y, j], as two products
    return np.swapaxes(sines @ (coefficients @ sines.T), 1, 2)


def _diffeomorphism(x, severity, rng):
    """Displace pixels along a random smooth field (Petrini et al.'s diffeomorphisms)."""
    n, h, w, _ = x.shape
    side = min(h, w)
    # Frequency cut-off in [2, side] (Beta(0.5, 0.5) favours both ends, as in PRIME);
    # the temperature range keeps displacements between half a pixel and no overhang.
    cuts = np.floor(rng.beta(0.5, 0.5, size=n) * (side - 1) + 2)
    logs = np.log(cuts)
    low = 1 / (np.pi * side**2 * logs)
    high = np.maximum(low, severity / _PRIME_SEVERITY * 4 / (np.pi**3 * cuts**2 * logs))
    temperature = low + rng.beta(0.5, 0.5, size=n) * (high - low)
    scale = (np.sqrt(temperature) * side)[:, None, None]
    fields = scale * _smooth_field(2 * n, side, np.tile(cuts, 2), rng).reshape(2, n, side, side)
    if (h, w) != (side, side):  # non-square images: stretch the square field
        fields = np.stack([_resize_field(f, h, w) for f in fields])
    rows, cols = _pixel_grid(h, w)
    src_rows = np.clip(rows - fields[1], 0, h - 1).astype(np.float32)
    src_cols = np.clip(cols - fields[0], 0, w - 1).astype(np.float32)
    return _bilinear(x, src_rows, src_cols, "nearest")


def _resize_field(field, h, w):
    rows = np.linspace(0, field.shape[1] - 1, h).round().astype(int)
    cols = np.linspace(0, field.shape[2] - 1, w).round().astype(int)
    return field[:, rows][:, :, cols]


def _color_curve(x, severity, rng):
    """Map intensities through ``v + sqrt(T) * sum_k c_k sin(pi k v)``, k <= cut <= 100."""
    n, h, w, c = x.shape
    frequencies = np.arange(1, _CURVE_FREQUENCIES + 1)
    cuts = rng.integers(1, _CURVE_FREQUENCIES + 1, size=(n * c, 1))
    high = _CURVE_TEMPERATURE * severity / _PRIME_SEVERITY
    temperature = rng.uniform(0, high, size=(n * c, 1))
    coefficients = rng.standard_normal((n * c, _CURVE_FREQUENCIES)) * (frequencies <= cuts)
    levels = np.linspace(0, 1, _LEVELS)
    curves = levels + np.sqrt(temperature) * (
        coefficients @ np.sin(np.pi * frequencies[:, None] * levels[None])
    )
    # The curve is tabulated on 256 levels and read with linear interpolation.
    planes = np.moveaxis(x, 3, 1).reshape(n * c, h * w) * (_LEVELS - 1)
    below = np.minimum(planes.astype(np.intp), _LEVELS - 2)
    frac = planes - below
    out = (1 - frac) * np.take_along_axis(curves, below, 1) + frac * np.take_along_axis(
        curves, below + 1, 1
    )
    return np.clip(np.moveaxis(out.reshape(n, c, h, w), 1, 3), 0, 1).astype(x.dtype)


OPERATIONS: dict[str, Callable] = {
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "posterize": _posterize,
    "solarize": _solarize,
    "rotate": _rotate,
    "shear": _shear,
    "translate": _translate,
    "random_filter": _random_filter,
    "diffeomorphism": _diffeomorphism,
    "color_curve": _color_curve,
}
#: AugMix's CIFAR operations.
AUGMIX_OPERATIONS = (
    "autocontrast",
    "equalize",
    "posterize",
    "solarize",
    "rotate",
    "shear",
    "translate",
)
#: PRIME's three primitives.
PRIME_OPERATIONS = ("random_filter", "diffeomorphism", "color_curve")
#: What the robust recipe's chains draw from.
ROBUST_OPERATIONS = AUGMIX_OPERATIONS + PRIME_OPERATIONS


# --------------------------------------------------------------------------- mixture
def _chain(x, severity, operations, rng, max_depth=3):
    """Each image through its own chain of 1..max_depth random ``operations``."""
    n = len(x)
    depth = rng.integers(1, max_depth + 1, size=n)
    ops = rng.integers(0, len(operations), size=(max_depth, n))
    out = x.copy()
    for level in range(max_depth):
        for index, operation in enumerate(operations):
            rows = np.flatnonzero((depth > level) & (ops[level] == index))
            if len(rows):
                out[rows] = operation(out[rows], severity, rng)
    return out


def robust_mix(
    images: ArrayLike,
    *,
    severity: float = ROBUST_SEVERITY,
    width: int = 3,
    operations: Sequence[str] = ROBUST_OPERATIONS,
    mix_probability: float = 1.0,
    noise_range: tuple[float, float] = ROBUST_NOISE_RANGE,
    noise_probability: float = 0.5,
    random_state: RandomLike = None,
) -> np.ndarray:
    """Mix images with chains of random operations, then add the seed's noise to some.

    ``images``, ``random_state`` and the result follow the contract of every function of
    :mod:`sklcifar.perturbations`: a new batch of the input's shape and dtype.

    Parameters
    ----------
    images : array_like
    severity : float, default ROBUST_SEVERITY (1)
        Strength of the operations on AugMix's scale (0, 10]; 3 is AugMix's default and
        gives PRIME's primitives PRIME's own CIFAR ranges.
    width : int, default 3
        Chains mixed per image (0: no mixing, noise only).
    operations : sequence of str, default ROBUST_OPERATIONS
        Names from ``OPERATIONS`` the chains draw from (``AUGMIX_OPERATIONS``,
        ``PRIME_OPERATIONS`` or any selection).
    mix_probability : float, default 1.0
        Share of the images that are mixed; the others keep their clean pixels.
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
    mix_probability = _check_number("mix_probability", mix_probability, 0, 1)
    noise_probability = _check_number("noise_probability", noise_probability, 0, 1)
    low, high = (_check_number("noise_range", bound, 0, 1) for bound in noise_range)
    if low > high:
        raise ValueError(f"noise_range must be (low, high) with low <= high; got {noise_range}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise ValueError(f"width must be an integer >= 0 (chains per image); got {width!r}")
    chosen = _check_operations(operations)
    rng = np.random.default_rng(random_state)
    arr = _check_image_range(images, "robust_mix")
    x = _to_float(arr)
    n, h, w, _ = x.shape
    rows = np.flatnonzero(rng.random(n) < mix_probability)
    if width and len(rows):
        clean = x[rows]
        weights = rng.dirichlet(np.ones(width), size=len(rows)).astype(x.dtype)
        skip = rng.beta(1, 1, size=len(rows)).astype(x.dtype)[:, None, None, None]
        mixed = sum(
            weights[:, i, None, None, None] * _chain(clean, severity, chosen, rng)
            for i in range(width)
        )
        x[rows] = skip * clean + (1 - skip) * mixed
    mixed_images = _from_float(x, arr)
    fractions = rng.uniform(low, high, size=n) * (rng.random(n) < noise_probability)
    counts = (h * w * fractions).astype(int)
    return _replace_pixels(_nhwc(mixed_images), counts, rng).reshape(arr.shape)


def _check_operations(operations: Sequence[str]) -> list[Callable]:
    names = [operations] if isinstance(operations, str) else list(operations)
    unknown = [name for name in names if name not in OPERATIONS]
    if not names or unknown:
        raise ValueError(
            f"operations must be a non-empty sequence of names from {sorted(OPERATIONS)}; "
            f"got {operations!r}"
        )
    return [OPERATIONS[name] for name in names]
