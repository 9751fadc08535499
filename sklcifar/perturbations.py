"""Image perturbations: seed-study noise, CIFAR-10-C corruptions and augmentations.

Every public function here follows one contract, so they can be chained and used on
whole training or test batches:

* ``images`` is an array of shape ``(N, H, W)`` or ``(N, H, W, C)`` with ``C`` in
  ``{1, 3}``.  Its dtype is either ``uint8`` (values 0..255) or floating point with
  values in ``[0, 1]``; float images outside that range, or containing NaN/inf, are
  rejected with a :class:`ValueError`, as are other ranks and channel counts
  (:func:`sklcifar.validation.check_images`, the rules of every sklcifar module; other
  integer dtypes holding 0..255 are read, and returned, as ``uint8``).
* The result is a **new** array with the same shape and dtype as the input.  ``uint8``
  results are rounded and clipped to 0..255, float results are clipped to ``[0, 1]``.
  The input is never modified.
* Randomness comes only from the keyword ``random_state`` (``None``, an ``int`` seed or
  a :class:`numpy.random.Generator`, normalised with :func:`numpy.random.default_rng`):
  the same seed gives the same output, whatever the input dtype.
* Computation is vectorised over the whole batch and done in ``float32`` (``float64``
  inputs are processed in ``float64`` so that untouched values survive exactly).

Three groups of functions are provided:

Noise (the seed study)
    :func:`pixel_noise`, :func:`salt_and_pepper`, :func:`gaussian_noise`.
Common corruptions
    :func:`corrupt` applies one of the 15 CIFAR-10-C / CIFAR-100-C corruptions listed in
    :data:`CORRUPTIONS` at a severity from 1 to 5, with the CIFAR parameter tables of
    Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
    Corruptions and Perturbations" (ICLR 2019), ``make_cifar_c.py``.
Augmentation
    :func:`horizontal_flip`, :func:`random_shift`, :func:`random_rotation`.

Differences from the reference ``make_cifar_c.py``
---------------------------------------------------
The reference works image by image on RGB ``uint8`` PIL images with scikit-image,
OpenCV and ImageMagick; this module reimplements every corruption with NumPy, SciPy and
(for JPEG) Pillow, on whole batches:

* random draws come from a NumPy ``Generator`` instead of the global ``np.random``
  state, so outputs are statistically, not bit-for-bit, equivalent;
* ``uint8`` results are rounded (the reference truncates with ``np.uint8``);
* ``motion_blur`` (and the snow layer of ``snow``) reimplements ImageMagick's
  ``MotionBlurImage``: a one-sided line kernel of ``2 * ceil(radius) + 1`` taps with
  Gaussian weights ``exp(-i**2 / (2 sigma**2))``, tap ``i`` reading the pixel at
  ``(round(i sin a), round(i cos a))`` rows/columns away, with edge replication;
* ``frost`` blends, with the reference coefficients, a random crop of one of six
  procedurally generated frost textures (icy haze plus bright ice needles, fixed by a
  constant seed) where the reference crops one of six frost photographs;
* ``fog`` uses a batched version of the reference's diamond-square plasma fractal;
* ``glass_blur``'s pixel loop is a single gather per iteration.  This is exact: in the
  reference ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` acts on NumPy views, so it copies
  the up/left neighbour into ``x[h, w]`` rather than swapping, and every source pixel is
  read before it is written;
* ``elastic_transform``'s OpenCV ``warpAffine`` is an exact bilinear resampling with
  reflect-101 borders (OpenCV quantises coordinates to 1/32 pixel); image sizes other
  than 32 scale the reference's pixel parameters by ``min(H, W) / 32``;
* ``pixelate`` uses Pillow's exact ``BOX`` weights but no 8-bit rounding between the
  down- and up-sizing; ``jpeg_compression`` rounds float images to 8 bits (JPEG is
  8-bit) and encodes gray batches as block-aligned mosaics, which is bit-identical to
  encoding image by image and much faster.

Grayscale images
----------------
The corruptions are defined on RGB.  Single-channel images get the same operation on
their one channel: brightness adds ``c`` to the HSV *value*, which for a gray pixel is
its intensity; snow's ``cv2.cvtColor(RGB2GRAY)`` luminance is the intensity itself;
contrast uses the per-channel mean as in the reference; fog and frost add the same
(gray) layer to every channel; JPEG encodes an ``L`` image instead of a chroma-subsampled
YCbCr one.
"""

from __future__ import annotations

import functools
import io
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from .validation import check_images

__all__ = [
    "CORRUPTIONS",
    "SEED_NOISE_FRACTION",
    "corrupt",
    "gaussian_noise",
    "horizontal_flip",
    "pixel_noise",
    "random_rotation",
    "random_shift",
    "salt_and_pepper",
]

RandomLike = int | np.random.Generator | None

#: Share of each grey image's pixels the seed study's noise replaces (its perturbed test
#: set; ../shared/reference/seed-report.txt, section 6). The one home of this constant.
SEED_NOISE_FRACTION = 0.03

# ---------------------------------------------------------------------------------------
# Validation and conversion
# ---------------------------------------------------------------------------------------


def _validate(images: ArrayLike, *, unit_range: bool = True) -> np.ndarray:
    """Return ``images`` checked by :func:`~sklcifar.validation.check_images`, rank kept.

    ``unit_range=False`` is for operations that only move pixels (flip, shift): they work
    on any finite float values, standardised images included.
    """
    arr = np.asarray(images)
    checked = check_images(
        arr, channels=(1, 3), allow_empty=True, unit_range=unit_range, name="images"
    )
    return checked[..., 0] if arr.ndim == 3 else checked


def _nhwc(arr: np.ndarray) -> np.ndarray:
    """View a validated batch as ``(N, H, W, C)``."""
    return arr[..., np.newaxis] if arr.ndim == 3 else arr


def _to_float(arr: np.ndarray) -> np.ndarray:
    """Copy a validated batch to a ``(N, H, W, C)`` working float array in [0, 1]."""
    work = np.float64 if arr.dtype == np.float64 else np.float32
    x = _nhwc(arr).astype(work)
    if arr.dtype == np.uint8:
        x /= 255
    return x


def _from_float(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Clip a working array to [0, 1] and convert it back to the dtype/shape of ``like``."""
    x = np.clip(x, 0, 1)
    if like.dtype == np.uint8:
        x = np.rint(x * 255).astype(np.uint8)
    else:
        x = x.astype(like.dtype, copy=False)
    return x.reshape(like.shape)


def _run_float(images: ArrayLike, op: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Validate ``images``, apply ``op`` to the float working copy, convert back."""
    arr = _validate(images)
    if arr.shape[0] == 0:
        return arr.copy()
    return _from_float(op(_to_float(arr)), arr)


def _check_number(
    name: str, value: Any, low: float | None = None, high: float | None = None
) -> float:
    """Return ``value`` as a float if it is a finite real in ``[low, high]``."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and (low is None or value >= low)
        and (high is None or value <= high)
    )
    if not ok:
        if high is None:
            bounds = f"a finite number >= {low:g}"
        else:
            bounds = f"a number in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------
# Shared numerical helpers
# ---------------------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, low: float, high: float, size: Any) -> np.ndarray:
    return low + (high - low) * rng.random(size, dtype=np.float32)


def _random_positions(rng: np.random.Generator, n: int, npix: int, k: int) -> np.ndarray:
    """``(n, k)`` flat pixel indices, ``k`` distinct uniformly chosen ones per row."""
    if k == 0:
        return np.empty((n, 0), dtype=np.intp)
    if k == npix:
        return np.broadcast_to(np.arange(npix), (n, npix))
    keys = rng.random((n, npix), dtype=np.float32)
    return np.argpartition(keys, k - 1, axis=1)[:, :k]


def _reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map integer indices onto ``0..n-1`` by half-sample symmetric reflection
    (``d c b a | a b c d | d c b a``, SciPy's ``mode="reflect"``)."""
    folded = np.mod(idx, 2 * n)
    return np.where(folded >= n, 2 * n - 1 - folded, folded)


def _bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str) -> np.ndarray:
    """Sample every image ``x[i]`` at ``(rows[i], cols[i])`` with bilinear interpolation.

    One ``scipy.ndimage.map_coordinates(order=1)`` call per channel over the stacked
    batch (the batch coordinate is the exact image index, so images never mix).  With
    ``mode="mirror"`` this is OpenCV's bilinear remap with reflect-101 borders.
    """
    n = x.shape[0]
    batch = np.broadcast_to(np.arange(n, dtype=rows.dtype).reshape((n, 1, 1)), rows.shape)
    coords = np.stack([batch, rows, cols])
    out = np.empty(rows.shape + x.shape[-1:], dtype=x.dtype)
    for channel in range(x.shape[-1]):
        out[..., channel] = ndimage.map_coordinates(
            x[..., channel], coords, order=1, mode=mode, prefilter=False
        )
    return out


def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of an ``(h, w)`` image, shaped ``(1, h, w)``."""
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    return rows[np.newaxis], cols[np.newaxis]


class _SeparableSum:
    """The linear map ``image -> sum(ry @ image @ rx.T for ry, rx in pairs)``.

    Applied to every image and channel of a batch through BLAS: with one dense
    ``(H'W', HW)`` matrix when that is cheaper than the separable products (e.g. the
    many zoom levels of ``zoom_blur`` on 32x32 images), else two products per pair.
    """

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.pairs = [(np.asarray(ry), np.asarray(rx)) for ry, rx in pairs]
        (h2, h), (w2, w) = self.pairs[0][0].shape, self.pairs[0][1].shape
        self.shape = (h2, w2)
        self.dense = None  # transposed, float32: (HW, H'W')
        if 2 * len(self.pairs) * (h + w) >= h * w:
            self.dense = sum(np.kron(ry, rx) for ry, rx in self.pairs).T.astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, h, w, c = x.shape
        h2, w2 = self.shape
        if self.dense is not None:
            flat = np.moveaxis(x.reshape(n, h * w, c), 2, 1).reshape(n * c, h * w)
            out = (flat @ self.dense.astype(x.dtype, copy=False)).reshape(n, c, h2 * w2)
            return np.moveaxis(out, 1, 2).reshape(n, h2, w2, c)
        rows_first = np.moveaxis(x, 1, 0).reshape(h, n * w * c)
        acc = np.zeros((h2, n, c, w2), dtype=x.dtype)
        for ry, rx in self.pairs:
            t = (ry.astype(x.dtype) @ rows_first).reshape(h2, n, w, c)
            acc += np.tensordot(t, rx.astype(x.dtype), axes=([2], [1]))
        return acc.transpose(1, 0, 3, 2)


def _interp_matrix(coords: np.ndarray, n: int) -> np.ndarray:
    """Matrix of 1-D linear interpolation at ``coords`` (clipped to ``[0, n - 1]``)."""
    coords = np.clip(np.asarray(coords, dtype=np.float64), 0, n - 1)
    lo = np.minimum(np.floor(coords).astype(np.intp), max(n - 2, 0))
    frac = coords - lo
    m = np.zeros((coords.size, n))
    rows = np.arange(coords.size)
    m[rows, lo] += 1 - frac
    if n > 1:
        m[rows, lo + 1] += frac
    return m


def _zoom_matrix(n: int, factor: float) -> np.ndarray:
    """One axis of the reference ``clipped_zoom``: central crop, ``scipy.ndimage.zoom``
    (order 1) by ``factor`` and central trim back to ``n`` pixels, as a matrix."""
    crop = int(np.ceil(n / factor))
    top = (n - crop) // 2
    zoomed = int(round(crop * factor))
    trim = (zoomed - n) // 2
    step = (crop - 1) / (zoomed - 1) if zoomed > 1 else 1.0
    coords = top + (trim + np.arange(n)) * step
    return _interp_matrix(coords, n)


def _box_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Pillow's ``Image.BOX`` resampling from ``n_in`` to ``n_out`` pixels, as a matrix."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    center = (np.arange(n_out) + 0.5) * scale
    xmin = np.maximum((center - support + 0.5).astype(np.intp), 0)
    xmax = np.minimum((center + support + 0.5).astype(np.intp), n_in)
    pos = np.arange(n_in)
    arg = (pos[np.newaxis, :] - center[:, np.newaxis] + 0.5) / filterscale
    inside = (pos >= xmin[:, np.newaxis]) & (pos < xmax[:, np.newaxis])
    weights = ((arg > -0.5) & (arg <= 0.5) & inside).astype(np.float64)
    return weights / weights.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=16)
def _zoom_operator(h: int, w: int, factors: tuple[float, ...]) -> _SeparableSum:
    """Mean of the reference ``clipped_zoom`` over ``factors`` (cached)."""
    return _SeparableSum([(_zoom_matrix(h, z) / len(factors), _zoom_matrix(w, z)) for z in factors])


@functools.lru_cache(maxsize=16)
def _pixelate_operator(h: int, w: int, factor: float) -> _SeparableSum:
    """Pillow ``BOX`` resize to ``int(size * factor)`` and back (cached)."""
    small_h, small_w = max(1, int(h * factor)), max(1, int(w * factor))
    ry = _box_resize_matrix(small_h, h) @ _box_resize_matrix(h, small_h)
    rx = _box_resize_matrix(small_w, w) @ _box_resize_matrix(w, small_w)
    return _SeparableSum([(ry, rx)])


def _gaussian_blur(x: np.ndarray, sigma: float, mode: str = "nearest") -> np.ndarray:
    """``skimage.filters.gaussian`` on the spatial axes of an ``(N, H, W, C)`` batch."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode=mode, truncate=4.0)


def _line_blur(
    x: np.ndarray, radius: float, sigma: float, angles: np.ndarray, chunk: int = 2048
) -> np.ndarray:
    """ImageMagick ``MotionBlurImage(radius, sigma, angle)`` with one angle per image.

    Output pixel ``(y, x)`` is ``sum_i k_i * img[y + round(i sin a), x + round(i cos a)]``
    for ``i = 0 .. 2 ceil(radius)``, ``k_i`` proportional to ``exp(-i**2 / (2 sigma**2))``
    and the image extended by edge replication.  The batch is sorted by angle so that
    every tap's integer offset is constant over contiguous runs of images, which turns
    per-image gathers into a few slice operations; chunks bound the padded copies.
    """
    n, h, w, c = x.shape
    width = 2 * int(np.ceil(radius)) + 1
    taps = np.arange(width)
    weights = np.exp(-(taps**2) / (2.0 * max(sigma, 1e-12) ** 2))
    weights = (weights / weights.sum()).astype(x.dtype)
    order = np.argsort(angles, kind="stable")
    theta = np.deg2rad(np.asarray(angles, dtype=np.float64)[order])[:, np.newaxis]
    all_dx = np.ceil(taps * np.cos(theta) - 0.5).astype(np.intp)
    all_dy = np.ceil(taps * np.sin(theta) - 0.5).astype(np.intp)
    out = np.empty_like(x)
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        dx, dy = all_dx[start : start + chunk], all_dy[start : start + chunk]
        top, left = max(0, -dy.min()), max(0, -dx.min())
        pad = ((0, 0), (top, max(0, dy.max())), (left, max(0, dx.max())), (0, 0))
        padded = np.pad(x[part], pad, mode="edge")
        acc = np.zeros((len(part), h, w, c), dtype=x.dtype)
        shifted = np.empty_like(acc)
        for t in range(width):
            changes = np.flatnonzero((np.diff(dx[:, t]) != 0) | (np.diff(dy[:, t]) != 0)) + 1
            for lo, hi in zip(np.r_[0, changes], np.r_[changes, len(part)], strict=True):
                r0, c0 = top + dy[lo, t], left + dx[lo, t]
                shifted[lo:hi] = padded[lo:hi, r0 : r0 + h, c0 : c0 + w]
            acc += weights[t] * shifted
        out[part] = acc
    return out


def _per_image_minmax(a: np.ndarray) -> np.ndarray:
    """Rescale every image of a batch to span [0, 1]."""
    axes = tuple(range(1, a.ndim))
    a = a - a.min(axis=axes, keepdims=True)
    return a / np.maximum(a.max(axis=axes, keepdims=True), 1e-12)


def _plasma_fractal(n: int, mapsize: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Batched diamond-square height maps in [0, 1], shape ``(n, mapsize, mapsize)``.

    A vectorised port of the reference ``plasma_fractal`` (including its
    ``wibble * uniform(-wibble, wibble)`` perturbation); ``mapsize`` is a power of two.
    """
    maps = np.zeros((n, mapsize, mapsize), dtype=np.float32)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * _uniform(rng, -wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares += np.roll(squares, -1, axis=2)
        maps[:, half:mapsize:step, half:mapsize:step] = wibbled_mean(squares)
        centres = maps[:, half:mapsize:step, half:mapsize:step]
        corners = maps[:, 0:mapsize:step, 0:mapsize:step]
        across = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0:mapsize:step, half:mapsize:step] = wibbled_mean(across)
        down = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half:mapsize:step, 0:mapsize:step] = wibbled_mean(down)
        step //= 2
        wibble /= decay
    return _per_image_minmax(maps)


@functools.lru_cache(maxsize=2)
def _frost_bank(size: int, count: int = 6) -> np.ndarray:
    """``count`` procedural frost textures of ``size x size`` pixels in [0, 1].

    They stand in for the six frost photographs of the reference (which crops them at
    random): a fixed seed makes them the same in every session.  Each is a smooth icy
    haze, a fine grain and a few hundred bright ice needles of random direction and
    length that fade along their length; mean about 0.62, standard deviation about 0.21.
    """
    rng = np.random.default_rng(20190101)
    steps = np.linspace(0, 1, 48)
    bank = np.empty((count, size, size), dtype=np.float32)
    for k in range(count):
        haze = _per_image_minmax(ndimage.gaussian_filter(rng.random((size, size)), size / 12))
        grain = _per_image_minmax(ndimage.gaussian_filter(rng.random((size, size)), 1.0))
        m = size * size // 40
        angle = rng.uniform(0, 2 * np.pi, m)
        direction = np.stack([np.sin(angle), np.cos(angle)], axis=-1)
        length = rng.uniform(3, size / 6, m)[:, np.newaxis, np.newaxis]
        start = rng.uniform(0, size, (m, 1, 2))
        points = np.floor(start + length * steps[:, np.newaxis] * direction[:, np.newaxis])
        points = points.astype(np.intp) % size
        values = rng.uniform(0.3, 1.0, (m, 1)) * (1 - 0.6 * steps)
        needles = np.zeros((size, size))
        np.maximum.at(needles, (points[..., 0], points[..., 1]), values)
        needles = _per_image_minmax(ndimage.gaussian_filter(needles, 0.7, mode="wrap"))
        bank[k] = np.clip(0.15 + 0.35 * haze + 0.75 * needles + 0.15 * grain, 0, 1)
    bank.setflags(write=False)
    return bank


# ---------------------------------------------------------------------------------------
# Corruption kernels: f(x, parameter, rng) on an (N, H, W, C) float batch in [0, 1];
# the result is clipped and converted by the caller.
# ---------------------------------------------------------------------------------------


def _gaussian_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return x + sigma * rng.standard_normal(x.shape, dtype=np.float32)


def _shot_noise(x: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    return rng.poisson(x * photons).astype(x.dtype) / photons


def _impulse_noise(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    # skimage.util.random_noise(mode="s&p"): every value (each channel independently)
    # flips with probability `amount`, to 0 or 1 with equal odds.
    u = rng.random(x.shape, dtype=np.float32)
    return np.where(u < amount / 2, 0, np.where(u < amount, 1, x)).astype(x.dtype)


def _defocus_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    radius, alias_blur = params
    half = 8 if radius <= 8 else int(np.ceil(radius))
    grid = np.arange(-half, half + 1)
    disk = (grid[:, np.newaxis] ** 2 + grid[np.newaxis, :] ** 2 <= radius**2).astype(float)
    disk /= disk.sum()
    # cv2.GaussianBlur(ksize=3 or 5, sigmaX=alias_blur) of the aliased disk.
    ksize = 3 if radius <= 8 else 5
    g = np.exp(-((np.arange(ksize) - (ksize - 1) / 2) ** 2) / (2 * alias_blur**2))
    for axis in (0, 1):
        disk = ndimage.correlate1d(disk, g / g.sum(), axis=axis, mode="mirror")
    used = np.flatnonzero(disk.any(axis=0))
    disk = disk[used[0] : used[-1] + 1, used[0] : used[-1] + 1]
    kernel = disk.astype(x.dtype)[np.newaxis, :, :, np.newaxis]
    return ndimage.correlate(x, kernel, mode="mirror")  # cv2.filter2D default border


def _glass_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    sigma, delta, iterations = params
    n, h, w, c = x.shape
    x = np.floor(_gaussian_blur(x, sigma) * 255) / 255  # np.uint8(... * 255)
    # The reference loop visits rows and columns delta + 1 .. size - delta; each pixel
    # takes the value of its neighbour at (dy, dx), both uniform in -delta .. delta - 1
    # (np.random.randint(-delta, delta)), drawn here as one code per pixel.
    side = 2 * delta
    dy, dx = np.divmod(np.arange(side * side), side)
    offsets = ((dy - delta) * w + dx - delta).astype(np.int32)
    itype = np.int32 if n * h * w < 2**31 else np.int64
    rows, cols = np.mgrid[delta + 1 : h - delta + 1, delta + 1 : w - delta + 1].astype(itype)
    targets = (np.arange(n, dtype=itype)[:, None, None] * h + rows) * w + cols
    flat = x.reshape(n * h * w) if c == 1 else x.reshape(n * h * w, c)
    for _ in range(iterations):
        code = rng.integers(0, side * side, size=targets.shape, dtype=np.int32)
        flat[targets] = flat[targets + offsets[code]]
    return _gaussian_blur(x, sigma)


def _motion_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    radius, sigma = params
    return _line_blur(x, radius, sigma, _uniform(rng, -45, 45, x.shape[0]))


def _zoom_blur(x: np.ndarray, factors: tuple, rng: np.random.Generator) -> np.ndarray:
    # (x + sum of clipped zooms) / (len + 1); clipped_zoom(x, 1.0) is x itself.
    return _zoom_operator(x.shape[1], x.shape[2], (1.0, *factors))(x)


def _luminance(x: np.ndarray) -> np.ndarray:
    """cv2 RGB2GRAY luminance, or the intensity itself for one channel."""
    if x.shape[-1] == 1:
        return x
    return (x @ np.array([0.299, 0.587, 0.114], dtype=x.dtype))[..., np.newaxis]


def _snow(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, keep = params
    n, h, w, _ = x.shape
    layer = loc + scale * rng.standard_normal((n, h, w, 1), dtype=np.float32)
    layer = _zoom_operator(h, w, (zoom,))(layer)
    layer = np.where(layer < threshold, 0, layer)
    layer = np.floor(np.clip(layer, 0, 1) * 255) / 255  # saved as an 8-bit PNG
    layer = _line_blur(layer, radius, sigma, _uniform(rng, -135, -45, n))
    layer = np.rint(layer * 255) / 255  # ImageMagick returns 8-bit pixels
    x = keep * x + (1 - keep) * np.maximum(x, _luminance(x) * 1.5 + 0.5)
    return x + layer + np.rot90(layer, 2, axes=(1, 2))


def _frost(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    keep, amount = params
    n, h, w, _ = x.shape
    bank = _frost_bank(max(192, 2 * max(h, w)))
    which = rng.integers(len(bank), size=(n, 1, 1))
    top = rng.integers(0, bank.shape[1] - h + 1, size=(n, 1, 1))
    left = rng.integers(0, bank.shape[2] - w + 1, size=(n, 1, 1))
    crops = bank[which, top + np.arange(h)[:, np.newaxis], left + np.arange(w)]
    return keep * x + amount * crops[..., np.newaxis].astype(x.dtype)


def _fog(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    amount, decay = params
    n, h, w, _ = x.shape
    mapsize = 1 << max(1, int(np.ceil(np.log2(max(h, w)))))
    plasma = _plasma_fractal(n, mapsize, decay, rng)[:, :h, :w, np.newaxis]
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    return (x + amount * plasma) * max_val / (max_val + amount)


def _brightness(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    # Adding to the HSV value with hue and saturation fixed scales RGB by v_new / v;
    # black pixels (v = 0, saturation 0) become gray v_new.  For gray: clip(x + c).
    value = x.max(axis=-1, keepdims=True)
    new_value = np.minimum(value + amount, 1)
    return np.where(value > 0, x * (new_value / np.maximum(value, 1e-12)), new_value)


def _contrast(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * factor + means


def _elastic_transform(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    n, h, w, _ = x.shape
    size = min(h, w)  # the reference's IMSIZE
    alpha, sigma, jitter = (p * size for p in params)
    # Random affine: three points around the centre, (x, y) = (column, row), jittered;
    # warpAffine samples the source at the inverse map, solved here per image.
    centre = np.array([w // 2, h // 2], dtype=np.float64)
    half = size // 3
    src = np.array([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    dst = src + rng.uniform(-jitter, jitter, size=(n, 3, 2))
    inverse = np.linalg.solve(np.concatenate([dst, np.ones((n, 3, 1))], axis=2), src)
    coef = inverse.astype(np.float32)[..., np.newaxis, np.newaxis]  # [x, y, 1] -> src
    rows, cols = _pixel_grid(h, w)
    src_rows = coef[:, 0, 1] * cols + coef[:, 1, 1] * rows + coef[:, 2, 1]
    src_cols = coef[:, 0, 0] * cols + coef[:, 1, 0] * rows + coef[:, 2, 0]
    x = _bilinear(x, src_rows, src_cols, "mirror")
    if alpha == 0:
        return x
    noise = _uniform(rng, -1, 1, (2, n, h, w))
    dx, dy = ndimage.gaussian_filter(noise, (0, 0, sigma, sigma), mode="reflect", truncate=3)
    return _bilinear(x, rows + alpha * dy, cols + alpha * dx, "reflect")


def _pixelate(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return _pixelate_operator(x.shape[1], x.shape[2], factor)(x)


def _jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Encode one 2-D (gray) or RGB ``uint8`` array as JPEG with Pillow and decode it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer))


def _jpeg_compression(x: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    pixels = np.rint(x * 255).astype(np.uint8)
    n, h, w, c = pixels.shape
    if c == 3 or h % 8 or w % 8:
        out = np.stack([_jpeg_roundtrip(p.squeeze(-1) if c == 1 else p, quality) for p in pixels])
        return out.reshape(pixels.shape).astype(x.dtype) / 255
    # Gray JPEG codes 8x8 blocks independently, so a mosaic of block-aligned images
    # round-trips exactly as the images would one by one, at a fraction of the cost.
    # (Not for RGB: the decoder's chroma upsampling reads across image borders.)
    per_row = max(1, 2048 // w)
    per_mosaic = per_row * max(1, 8192 // h)
    out = np.empty_like(pixels)
    for start in range(0, n, per_mosaic):
        part = pixels[start : start + per_mosaic, ..., 0]
        rows = -(-len(part) // per_row)
        tiles = np.zeros((rows * per_row, h, w), dtype=np.uint8)
        tiles[: len(part)] = part
        mosaic = tiles.reshape(rows, per_row, h, w).swapaxes(1, 2).reshape(rows * h, -1)
        decoded = _jpeg_roundtrip(mosaic, quality).reshape(rows, h, per_row, w)
        tiles = decoded.swapaxes(1, 2).reshape(-1, h, w)
        out[start : start + len(part), ..., 0] = tiles[: len(part)]
    return out.astype(x.dtype) / 255


class _Corruption(NamedTuple):
    apply: Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]
    severities: tuple  # the parameter for severity 1 .. 5, as in make_cifar_c.py


# The CIFAR tables of make_cifar_c.py.  zoom_blur keeps the reference's np.arange
# quirk (1.06 is included, 1.16 is not, ...); elastic_transform's entries are fractions
# of the image size (IMSIZE * fraction in the reference, IMSIZE = 32).
_REGISTRY: dict[str, _Corruption] = {
    "gaussian_noise": _Corruption(_gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10)),
    "shot_noise": _Corruption(_shot_noise, (500, 250, 100, 75, 50)),
    "impulse_noise": _Corruption(_impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07)),
    "defocus_blur": _Corruption(
        _defocus_blur, ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))
    ),
    "glass_blur": _Corruption(
        _glass_blur, ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
    ),
    "motion_blur": _Corruption(_motion_blur, ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))),
    "zoom_blur": _Corruption(
        _zoom_blur,
        tuple(tuple(np.arange(1, stop, 0.01)) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    ),
    "snow": _Corruption(
        _snow,
        (
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ),
    ),
    "frost": _Corruption(_frost, ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))),
    "fog": _Corruption(_fog, ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))),
    "brightness": _Corruption(_brightness, (0.05, 0.1, 0.15, 0.2, 0.3)),
    "contrast": _Corruption(_contrast, (0.75, 0.5, 0.4, 0.3, 0.15)),
    "elastic_transform": _Corruption(
        _elastic_transform,
        ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    ),
    "pixelate": _Corruption(_pixelate, (0.95, 0.9, 0.85, 0.75, 0.65)),
    "jpeg_compression": _Corruption(_jpeg_compression, (80, 65, 58, 50, 40)),
}

#: Names accepted by :func:`corrupt`, in the order of the CIFAR-10-C release.
CORRUPTIONS: tuple[str, ...] = tuple(_REGISTRY)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def _check_image_range(images: ArrayLike, what: str) -> np.ndarray:
    """``images`` validated, with an error naming ``what`` for float images outside [0, 1]."""
    arr = np.asarray(images)
    if np.issubdtype(arr.dtype, np.floating) and arr.size and np.isfinite(arr).all():
        low, high = arr.min(), arr.max()
        if low < 0 or high > 1:
            raise ValueError(
                f"{what} draws values uniformly over the image range, 0..255 for uint8 "
                f"and [0, 1] for floats, but these float images hold values in "
                f"[{low:g}, {high:g}] (standardised images?), whose range it cannot tell: "
                "apply it before Standardize, or to uint8 or [0, 1] images."
            )
    return _validate(arr)


def _replace_pixels(arr: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace ``counts[i]`` distinct random pixels of image ``i`` with uniform values."""
    x = _to_float(arr)
    n, h, w, c = x.shape
    positions = _random_positions(rng, n, h * w, int(counts.max(initial=0)))
    values = rng.random(positions.shape + (c,), dtype=np.float32)
    if arr.dtype == np.uint8:
        values = np.floor(values * 256) / 255  # uniform over the 256 levels
    flat = x.reshape(n, h * w, c)
    keep = np.arange(positions.shape[1]) < counts[:, np.newaxis]  # per-image counts
    rows = np.broadcast_to(np.arange(n)[:, np.newaxis], positions.shape)
    flat[rows[keep], positions[keep]] = values[keep]
    return _from_float(x, arr)


def pixel_noise(
    images: ArrayLike, fraction: float = SEED_NOISE_FRACTION, *, random_state: RandomLike = None
) -> np.ndarray:
    """Replace a fixed fraction of each image's pixels with uniform random values.

    The seed study's noise, vectorised: in every image exactly ``int(H * W * fraction)``
    distinct pixel positions, chosen uniformly, get a new value drawn uniformly over the
    image range: ``[0, 1)`` for floats, ``0..255`` for ``uint8``.  The positions are
    shared by the channels of an RGB image but each channel gets its own independent
    random value.  The seed replaced pixels of the grey images its classifier saw: apply
    it after the conversion to grey (``sklcifar.robustness`` does so for a Pipeline).
    Float images outside [0, 1] (standardised ones) raise a :class:`ValueError`: their
    range cannot be told.

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    fraction : float, default SEED_NOISE_FRACTION (0.03)
        Fraction of pixel positions to replace, in [0, 1].
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Examples
    --------
    >>> pixel_noise(np.random.default_rng(0).random((4, 32, 32)), 0.1, random_state=0).shape
    (4, 32, 32)
    """
    fraction = _check_number("fraction", fraction, 0, 1)
    rng = np.random.default_rng(random_state)
    arr = _check_image_range(images, "pixel_noise")
    n, h, w = _nhwc(arr).shape[:3]
    return _replace_pixels(arr, np.full(n, int(h * w * fraction)), rng)


def salt_and_pepper(
    images: ArrayLike, amount: float = 0.05, *, random_state: RandomLike = None
) -> np.ndarray:
    """Set a fraction of each image's pixels to black or white with equal odds.

    Exactly ``int(H * W * amount)`` distinct pixels per image are chosen as in
    :func:`pixel_noise`; each becomes 0 ("pepper") or the maximum, 1.0 or 255 ("salt"),
    in all of its channels.  (The ``impulse_noise`` corruption instead flips channel
    values independently, as scikit-image does.)

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    amount : float, default 0.05
        Fraction of pixels to replace, in [0, 1].
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Examples
    --------
    >>> salt_and_pepper(np.random.default_rng(0).random((4, 32, 32)), random_state=0).shape
    (4, 32, 32)
    """
    amount = _check_number("amount", amount, 0, 1)
    rng = np.random.default_rng(random_state)

    def op(x: np.ndarray) -> np.ndarray:
        n, h, w, _ = x.shape
        positions = _random_positions(rng, n, h * w, int(h * w * amount))
        values = rng.integers(0, 2, size=positions.shape + (1,)).astype(x.dtype)
        x.reshape(n, h * w, -1)[np.arange(n)[:, np.newaxis], positions] = values
        return x

    return _run_float(images, op)


def gaussian_noise(
    images: ArrayLike, sigma: float = 0.08, *, random_state: RandomLike = None
) -> np.ndarray:
    """Add independent Gaussian noise ``N(0, sigma**2)`` on the [0, 1] scale and clip.

    ``corrupt(images, "gaussian_noise", s)`` is this function with the CIFAR-10-C
    ``sigma`` of severity ``s`` (0.04, 0.06, 0.08, 0.09, 0.10).

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    sigma : float, default 0.08
        Standard deviation of the noise on the [0, 1] scale, >= 0.
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Examples
    --------
    >>> gaussian_noise(np.random.default_rng(0).random((4, 32, 32, 3)), 0.1).shape
    (4, 32, 32, 3)
    """
    sigma = _check_number("sigma", sigma, 0)
    rng = np.random.default_rng(random_state)
    return _run_float(images, lambda x: _gaussian_noise(x, sigma, rng))


def corrupt(
    images: ArrayLike, name: str, severity: int, *, random_state: RandomLike = None
) -> np.ndarray:
    """Apply one of the 15 CIFAR-10-C / CIFAR-100-C common corruptions.

    ``name`` is one of :data:`CORRUPTIONS`: ``gaussian_noise``, ``shot_noise``,
    ``impulse_noise``, ``defocus_blur``, ``glass_blur``, ``motion_blur``, ``zoom_blur``,
    ``snow``, ``frost``, ``fog``, ``brightness``, ``contrast``, ``elastic_transform``,
    ``pixelate``, ``jpeg_compression``.  The parameters per severity are the CIFAR ones
    of ``make_cifar_c.py`` (milder than ImageNet-C).  See the module docstring for how
    each is implemented without OpenCV, scikit-image and ImageMagick, and how the colour
    corruptions map to grayscale.  Notably, ``motion_blur`` uses an ImageMagick-style
    one-sided Gaussian line kernel at a random angle per image, and ``frost`` blends,
    with the reference coefficients, a random crop of one of six procedurally generated
    frost textures (fixed, generated once per session) instead of the reference
    photographs.

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    name : str
        Corruption name, one of :data:`CORRUPTIONS`.
    severity : int
        Severity level from 1 (mildest) to 5.
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Raises
    ------
    ValueError
        For an unknown ``name``, a ``severity`` outside 1..5 or invalid ``images``.

    Examples
    --------
    >>> corrupt(np.random.default_rng(0).random((4, 32, 32)), "fog", 3, random_state=0).shape
    (4, 32, 32)
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown corruption {name!r}; valid names are: {', '.join(CORRUPTIONS)}")
    if (
        isinstance(severity, bool)
        or not isinstance(severity, numbers.Integral)
        or not 1 <= severity <= 5
    ):
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")
    corruption = _REGISTRY[name]
    parameter = corruption.severities[int(severity) - 1]
    rng = np.random.default_rng(random_state)
    return _run_float(images, lambda x: corruption.apply(x, parameter, rng))


def horizontal_flip(
    images: ArrayLike, *, probability: float = 0.5, random_state: RandomLike = None
) -> np.ndarray:
    """Mirror each image left-right with the given probability.

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    probability : float, default 0.5
        Probability, in [0, 1], that an image is flipped (independently per image).
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Examples
    --------
    >>> horizontal_flip(np.random.default_rng(0).random((4, 32, 32)), random_state=0).shape
    (4, 32, 32)
    """
    probability = _check_number("probability", probability, 0, 1)
    rng = np.random.default_rng(random_state)
    arr = _validate(images, unit_range=False)
    flip = rng.random(arr.shape[0]) < probability
    out = arr.copy()
    out[flip] = arr[flip, :, ::-1]
    return out


def _shift_limits(max_shift: Any, h: int, w: int) -> tuple[int, int]:
    """Maximum shift in rows and columns for :func:`random_shift`."""
    if isinstance(max_shift, numbers.Integral) and not isinstance(max_shift, bool):
        if max_shift >= 0:
            return int(max_shift), int(max_shift)
    elif isinstance(max_shift, numbers.Real) and not isinstance(max_shift, bool):
        if 0 < max_shift < 1:
            return int(round(max_shift * h)), int(round(max_shift * w))
    raise ValueError(
        "max_shift must be an integer number of pixels >= 0 or a float in (0, 1) giving "
        f"a fraction of the image size, got {max_shift!r}"
    )


def random_shift(
    images: ArrayLike, max_shift: float = 2, *, random_state: RandomLike = None
) -> np.ndarray:
    """Translate each image by a random integer offset, filling by reflection.

    Each image is shifted by ``dy`` rows and ``dx`` columns drawn independently and
    uniformly from the integers in ``[-max_shift, max_shift]``; the uncovered border is
    filled by half-sample symmetric reflection (``d c b a | a b c d``, SciPy's and
    Keras' ``"reflect"``).  Pixel values are copied, never interpolated.

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    max_shift : int or float, default 2
        An ``int >= 0`` is a number of pixels; a float in ``(0, 1)`` is a fraction of
        the image size, rounded to whole pixels separately for height and width.
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Examples
    --------
    >>> random_shift(np.random.default_rng(0).random((4, 32, 32)), 3, random_state=0).shape
    (4, 32, 32)
    """
    rng = np.random.default_rng(random_state)
    arr = _validate(images, unit_range=False)
    x = _nhwc(arr)
    n, h, w, _ = x.shape
    max_h, max_w = _shift_limits(max_shift, h, w)
    dy = rng.integers(-max_h, max_h + 1, size=n)
    dx = rng.integers(-max_w, max_w + 1, size=n)
    rows = _reflect_index(np.arange(h) - dy[:, np.newaxis], h)
    cols = _reflect_index(np.arange(w) - dx[:, np.newaxis], w)
    batch = np.arange(n)[:, np.newaxis, np.newaxis]
    return x[batch, rows[:, :, np.newaxis], cols[:, np.newaxis, :]].reshape(arr.shape)


def random_rotation(
    images: ArrayLike, max_degrees: float = 10.0, *, random_state: RandomLike = None
) -> np.ndarray:
    """Rotate each image about its centre by a random angle, filling by reflection.

    Angles are uniform in ``[-max_degrees, max_degrees]``, independently per image;
    positive angles turn the content counter-clockwise.  Resampling is bilinear with
    half-sample symmetric reflection at the borders (``d c b a | a b c d``), with
    ``scipy.ndimage.map_coordinates(order=1, mode="reflect")`` over the whole stacked
    batch at once.

    Parameters
    ----------
    images : array_like
        Batch of shape ``(N, H, W)`` or ``(N, H, W, C)``, ``uint8`` or float in [0, 1].
    max_degrees : float, default 10.0
        Largest rotation in degrees, in [0, 180].
    random_state : None, int or numpy.random.Generator
        Seed or generator for reproducible output.

    Returns
    -------
    numpy.ndarray
        New array with the shape and dtype of ``images``.

    Examples
    --------
    >>> random_rotation(np.random.default_rng(0).random((4, 32, 32)), 15, random_state=0).shape
    (4, 32, 32)
    """
    max_degrees = _check_number("max_degrees", max_degrees, 0, 180)
    rng = np.random.default_rng(random_state)

    def op(x: np.ndarray) -> np.ndarray:
        n, h, w, _ = x.shape
        theta = np.deg2rad(_uniform(rng, -max_degrees, max_degrees, n))[:, None, None]
        cos, sin = np.cos(theta), np.sin(theta)
        rows, cols = _pixel_grid(h, w)
        dr, dc = rows - (h - 1) / 2, cols - (w - 1) / 2
        src_rows = (h - 1) / 2 + cos * dr + sin * dc
        src_cols = (w - 1) / 2 - sin * dr + cos * dc
        return _bilinear(x, src_rows, src_cols, "reflect")

    return _run_float(images, op)
