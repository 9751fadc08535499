"""The one image validator every sklcifar module uses, and the input-scale check.

One set of rules for a batch of images, wherever it enters (estimators, transformers,
perturbation functions, the command line):

- a dense array-like of rank 4, ``(n_images, height, width, channels)``, or rank 3,
  ``(n_images, height, width)``, read as one channel; the result is always rank 4;
- ``channels`` among those the caller handles (1 or 3 for the transformers and
  perturbations, any number for the classifiers);
- at least one image (unless the caller handles empty batches), height and width >= 1;
- ``uint8`` pixels (0..255), or floating-point pixels that are all finite;
- other integer dtypes (``int64`` from ``np.array`` of Python ints, ``uint16``, ...) are
  accepted when every value lies in 0..255, and converted to ``uint8`` -- a lossless
  conversion to the same scale. Values outside 0..255 are refused rather than rescaled or
  clipped (a ``uint16`` 0..65535 image is another scale, and guessing it would be silent);
- booleans, complex numbers, strings, objects and sparse matrices are refused.

Callers that need pixels on the unit scale (noise that draws values in the image range)
pass ``unit_range=True``: floats must then lie in [0, 1].

An estimator records the scale of its training images (:func:`input_scale`) and refuses
images of another scale at predict (:func:`check_same_scale`): a model fitted on floats in
0..255 scored on ``uint8`` images (which it reads as 0..1) would answer silently wrong.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

__all__ = ["EXPECTED_IMAGES", "check_images", "check_same_scale", "input_scale"]

EXPECTED_IMAGES = (
    "expected images of shape (n_images, height, width, channels) or (n_images, height, "
    "width), with uint8 pixels (0..255) or finite floating-point pixels"
)


def check_images(
    X: ArrayLike,
    *,
    channels: Collection[int] | None = (1, 3),
    allow_empty: bool = False,
    unit_range: bool = False,
    name: str = "X",
) -> np.ndarray:
    """Validate a batch of images; return it as a 4-D ``uint8`` or floating-point array.

    Parameters
    ----------
    X : array-like
        Images ``(n_images, height, width[, channels])``.
    channels : collection of int or None, default=(1, 3)
        Channel counts the caller handles; ``None`` for any.
    allow_empty : bool, default=False
        Accept a batch of zero images.
    unit_range : bool, default=False
        Require floating-point pixels to lie in [0, 1].
    name : str, default="X"
        How the error messages call the images.

    Returns
    -------
    ndarray of shape (n_images, height, width, channels)
        ``uint8`` (integer input converted, values unchanged) or the input's float dtype;
        no copy when the input already is such an array.

    Raises
    ------
    TypeError
        Sparse input.
    ValueError
        Anything else outside the rules in this module's docstring, with what was wrong
        and what is expected.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.validation import check_images
    >>> check_images(np.zeros((2, 8, 8), dtype=np.uint8)).shape
    (2, 8, 8, 1)
    >>> check_images(np.array([[[0, 255]]])).dtype
    dtype('uint8')
    """
    if sparse.issparse(X):
        raise TypeError(f"{name} is a sparse matrix; {EXPECTED_IMAGES}, as a dense array.")
    try:
        X = np.asarray(X)
    except ValueError as error:  # ragged nested lists
        raise ValueError(
            f"{name} is not a rectangular array ({error}); {EXPECTED_IMAGES}."
        ) from error
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{name} has shape {X.shape} (rank {X.ndim}); {EXPECTED_IMAGES}. A single image "
            "needs a leading axis of length 1 (X[np.newaxis])."
        )
    if X.ndim == 3:
        X = X[..., np.newaxis]
    n_images, height, width, n_channels = X.shape
    if channels is not None and n_channels not in channels:
        raise ValueError(
            f"{name} has {n_channels} channels (shape {X.shape}); expected "
            f"{' or '.join(map(str, sorted(channels)))} channels (grey or RGB)."
        )
    if n_images == 0 and not allow_empty:
        raise ValueError(f"{name} holds 0 images (shape {X.shape}); at least one is required.")
    if height == 0 or width == 0 or n_channels == 0:
        raise ValueError(
            f"{name} has empty images (shape {X.shape}); height, width and channels must be "
            "at least 1."
        )
    if X.dtype == np.uint8:
        return X
    if X.dtype.kind in "iu":
        if X.size:
            low, high = X.min(), X.max()
            if low < 0 or high > 255:
                raise ValueError(
                    f"{name} has integer pixels in {low}..{high} (dtype {X.dtype}); integer "
                    "images must hold values in 0..255. Convert them to uint8 0..255 or to "
                    "floats in [0, 1] yourself: sklcifar does not guess their scale."
                )
        return X.astype(np.uint8)
    if X.dtype.kind != "f":
        raise ValueError(f"{name} has dtype {X.dtype}; {EXPECTED_IMAGES}.")
    if X.size:
        low, high = X.min(), X.max()  # NaN propagates through min and max
        if not (np.isfinite(low) and np.isfinite(high)):
            bad = np.count_nonzero(~np.isfinite(X))
            raise ValueError(f"{name} has {bad} NaN or infinite pixel values; {EXPECTED_IMAGES}.")
        if unit_range and (low < 0 or high > 1):
            raise ValueError(
                f"{name} has floating-point pixels in [{low:g}, {high:g}]; expected floats "
                "scaled to [0, 1] (or uint8 images 0..255)."
            )
    return X


def input_scale(X: np.ndarray, *, uint8_as_unit: bool = True) -> dict:
    """The scale of a validated batch: ``{"kind": "unit"}`` or a float range.

    ``uint8`` images and floats within [0, 1] share the unit scale (classifiers divide
    ``uint8`` by 255); other floats (0..255, standardised, ...) are recorded as
    ``{"kind": "float", "min": low, "max": high}``. With ``uint8_as_unit=False`` (for a
    step that works in the input's own units, as `Standardize` does) ``uint8`` images are
    a 0..255 range like floats of that range.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.validation import input_scale
    >>> input_scale(np.full((1, 2, 2, 1), 200, dtype=np.uint8))
    {'kind': 'unit'}
    >>> input_scale(np.full((1, 2, 2, 1), 200.0))
    {'kind': 'float', 'min': 200.0, 'max': 200.0}
    >>> input_scale(np.full((1, 2, 2, 1), 200, dtype=np.uint8), uint8_as_unit=False)
    {'kind': 'float', 'min': 200.0, 'max': 200.0}
    """
    if X.dtype == np.uint8 and uint8_as_unit:
        return {"kind": "unit"}
    low, high = float(X.min()), float(X.max())
    if X.dtype != np.uint8 and 0 <= low and high <= 1:
        return {"kind": "unit"}
    return {"kind": "float", "min": low, "max": high}


def _describe(scale: dict, uint8_as_unit: bool = True) -> str:
    if scale["kind"] == "unit":
        return "uint8 pixels (0..255) or floats in [0, 1]" if uint8_as_unit else "floats in [0, 1]"
    return f"values in [{scale['min']:g}, {scale['max']:g}]"


def check_same_scale(
    X: np.ndarray, fitted: dict, *, owner: str, uint8_as_unit: bool = True
) -> None:
    """Refuse images whose scale differs from the training images' (``fitted``).

    A model fitted on the unit scale refuses floats outside [0, 1]; a model fitted on
    other floats refuses ``uint8`` images (which it would read as 0..1) and, when it was
    fitted on non-negative values beyond 2 (0..255 floats), floats wholly inside [0, 1].
    ``uint8_as_unit`` as in :func:`input_scale`, with which ``fitted`` was recorded: when
    false, ``uint8`` images are 0..255 values, accepted where the fit saw such a range and
    refused where it saw floats in [0, 1] or standardised values.
    """
    # Fitted on non-negative values beyond 2 (0..255 floats, or uint8 read in its units).
    byte_range = fitted["kind"] == "float" and fitted["min"] >= 0 and fitted["max"] > 2
    if fitted["kind"] == "unit":
        mismatch = input_scale(X, uint8_as_unit=uint8_as_unit)["kind"] != "unit"
    elif X.dtype == np.uint8:
        mismatch = uint8_as_unit or not byte_range
    else:
        low, high = float(X.min()), float(X.max())
        # Floats wholly in [0, 1] are unit-scale images (a black image, all 0, is black
        # on either scale).
        mismatch = byte_range and 0 <= low and 0 < high <= 1
    if mismatch:
        if X.dtype == np.uint8:
            got = "uint8 pixels (read as 0..1)" if uint8_as_unit else "uint8 pixels (0..255)"
        else:
            got = f"floats in [{float(X.min()):g}, {float(X.max()):g}]"
        raise ValueError(
            f"X has {got}, but this {owner} was fitted on images with "
            f"{_describe(fitted, uint8_as_unit)}; predictions on another scale are meaningless. "
            "Pass images on the scale used in fit."
        )
