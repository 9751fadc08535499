"""scikit-learn transformers for batches of small images.

Every transformer takes images as a 4-D array ``(n_images, height, width, channels)``
with 1 (grey) or 3 (RGB) channels, either ``uint8`` in ``0..255`` or floating point
(normally in ``[0, 1]``). A 3-D array ``(n_images, height, width)`` is read as
one-channel images; the output is always 4-D. Input is checked by
:func:`sklcifar.validation.check_images` (other integer dtypes are accepted when their
values fit in ``0..255`` and are converted to ``uint8``).

Deterministic transformers:

- :class:`Grayscale` -- RGB to one luma channel, as ``tf.image.rgb_to_grayscale``.
- :class:`ScaleToUnit` -- ``uint8`` to ``float32`` in ``[0, 1]``.
- :class:`Standardize` -- learns per-channel (or global) mean and scale.

Random perturbations, all subclasses of :class:`PerturbationTransformer`, each a thin
wrapper around the function of the same purpose in :mod:`sklcifar.perturbations`:
:class:`PixelNoise`, :class:`SaltAndPepper`, :class:`GaussianNoise`,
:class:`Corruption`, :class:`RandomFlip`, :class:`RandomShift` and
:class:`RandomRotation`. With ``apply="fit"`` (the default) they perturb only the
images seen by ``fit_transform`` -- i.e. the training images inside a
:class:`~sklearn.pipeline.Pipeline` -- and pass images through unchanged in
``transform``, so ``predict`` and ``score`` see clean images. With
``apply="always"`` they perturb in ``transform`` too, which is how perturbed test
sets are built. In front of an sklcifar classifier, the steps of ``fit_transform`` are
redrawn for every training batch of every epoch (:mod:`sklcifar.augmentation`).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import augmix, perturbations
from .augmentation import PerturbedImages, split_pending, warn_if_pending
from .validation import check_images, check_same_scale, input_scale

__all__ = [
    "Corruption",
    "GaussianNoise",
    "Grayscale",
    "PerturbationTransformer",
    "PixelNoise",
    "RandomFlip",
    "RandomRotation",
    "RandomShift",
    "RobustMix",
    "SaltAndPepper",
    "ScaleToUnit",
    "Standardize",
]

#: ITU-R 601 luma weights, the ones ``tf.image.rgb_to_grayscale`` uses.
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


# --------------------------------------------------------------------------- helpers
def _as_generator(random_state):
    """Turn ``None``, an int, a ``Generator`` or a ``RandomState`` into a ``Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


_RANDOM_STATE = [
    None,
    Interval(Integral, 0, None, closed="left"),
    np.random.Generator,
    np.random.RandomState,
]
_UNIT = Interval(Real, 0, 1, closed="both")
_NON_NEGATIVE = Interval(Real, 0, None, closed="left")


class _StatelessMixin:
    """Tags for transformers whose ``transform`` does not need ``fit``."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


# --------------------------------------------------------------- deterministic ones
class Grayscale(_StatelessMixin, TransformerMixin, BaseEstimator):
    """Convert RGB images to one grey channel with ITU-R 601 luma weights.

    The weights are ``0.2989 R + 0.5870 G + 0.1140 B``, the ones
    ``tf.image.rgb_to_grayscale`` uses, and ``uint8`` images are converted the way
    TensorFlow converts them (scale to ``[0, 1]`` in float32, weight, multiply by
    255.5 and truncate), so the result equals TensorFlow's up to float rounding
    (at most one grey level). Floating-point images give ``float32`` output.
    One-channel images pass through with their values unchanged (floats as
    ``float32``). Stateless: ``fit`` only validates its input.

    Attributes
    ----------
    n_channels_in_ : int
        Number of channels of the images seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import Grayscale
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> grey = Grayscale().fit_transform(images)
    >>> grey.shape, grey.dtype
    ((4, 32, 32, 1), dtype('uint8'))
    """

    def fit(self, X, y=None):
        """Validate ``X`` and record its channel count; returns ``self``."""
        warn_if_pending(X, self)
        self.n_channels_in_ = check_images(X).shape[-1]
        return self

    def transform(self, X):
        """Return ``(n_images, height, width, 1)`` grey images."""
        X = check_images(X)
        if X.shape[-1] == 1:
            return X if X.dtype == np.uint8 else X.astype(np.float32, copy=False)
        weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
        if X.dtype == np.uint8:
            grey = np.empty(X.shape[:-1] + (1,), dtype=np.uint8)
            # In chunks: the float32 temporaries of a whole split (120 MB for the 10,000
            # CIFAR test images) cost more in fresh memory than in arithmetic; 512 images at
            # a time ran 2-3x as fast on a 2-core AMD EPYC.
            for start in range(0, len(X), 512):
                unit = X[start : start + 512].astype(np.float32) * np.float32(1.0 / 255.0)
                # Assigning to uint8 truncates, as astype does.
                grey[start : start + 512, ..., 0] = np.clip(
                    (unit @ weights) * np.float32(255.5), 0, 255
                )
            return grey
        return (X.astype(np.float32, copy=False) @ weights)[..., np.newaxis]


class ScaleToUnit(_StatelessMixin, TransformerMixin, BaseEstimator):
    """Scale ``uint8`` images (``0..255``) to ``float32`` in ``[0, 1]``.

    ``uint8`` input is divided by 255. Floating-point input must already lie in
    ``[0, 1]`` and is returned as ``float32``; values outside raise ``ValueError``.
    Stateless: ``fit`` only validates its input.

    Attributes
    ----------
    n_channels_in_ : int
        Number of channels of the images seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import ScaleToUnit
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> scaled = ScaleToUnit().fit_transform(images)
    >>> scaled.dtype, bool(scaled.min() >= 0.0), bool(scaled.max() <= 1.0)
    (dtype('float32'), True, True)
    """

    def fit(self, X, y=None):
        """Validate ``X`` and record its channel count; returns ``self``."""
        warn_if_pending(X, self)
        self.n_channels_in_ = self._scale(X).shape[-1]
        return self

    def transform(self, X):
        """Return ``float32`` images in ``[0, 1]``, shape ``(n, height, width, channels)``."""
        return self._scale(X)

    @staticmethod
    def _scale(X):
        X = check_images(X)
        if X.dtype == np.uint8:
            return X.astype(np.float32) / np.float32(255.0)
        lo, hi = X.min(), X.max()
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"Floating-point images must lie in [0, 1]; got values in [{lo:g}, {hi:g}]. "
                "Pass uint8 images (0..255) to have them scaled."
            )
        return X.astype(np.float32, copy=False)


class Standardize(TransformerMixin, BaseEstimator):
    """Standardize images with a mean and scale learned from the training images.

    ``fit`` computes the mean and standard deviation over all pixels of all images,
    per channel or over all channels, in the units of the input (``0..255`` for
    ``uint8``). ``transform`` returns ``float32`` images ``(X - mean_) / scale_``.

    Parameters
    ----------
    per_channel : bool, default=True
        Learn one mean and scale per channel; if False, one for all channels.

    Attributes
    ----------
    mean_ : ndarray of shape (n_channels,) or (1,)
        Mean pixel value, per channel when ``per_channel`` is true.
    scale_ : ndarray of shape (n_channels,) or (1,)
        Standard deviation of the pixel values. A (near-)constant channel, whose
        standard deviation is below float32 resolution relative to its mean, gets
        scale 1 so that nothing is divided by zero.
    n_channels_in_ : int
        Number of channels of the images seen in ``fit``.
    image_shape_ : tuple of int
        ``(height, width)`` of the images seen in ``fit``; ``transform`` requires
        the same size.
    input_scale_ : dict
        The range of the pixel values seen in ``fit``, in the input's own units
        (`sklcifar.validation.input_scale` with ``uint8_as_unit=False``): ``transform``
        refuses images of another scale, e.g. floats in [0, 1] after a fit on ``uint8``
        images, which it would map to a narrow band of meaningless values.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import Standardize
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> standardized = Standardize().fit_transform(images)
    >>> standardized.dtype, standardized.shape
    (dtype('float32'), (4, 32, 32, 3))
    >>> bool(np.allclose(standardized.mean(axis=(0, 1, 2)), 0.0, atol=1e-5))
    True
    """

    _parameter_constraints = {"per_channel": ["boolean"]}

    def __init__(self, per_channel=True):
        self.per_channel = per_channel

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn ``mean_`` and ``scale_`` from the images ``X``; returns ``self``."""
        warn_if_pending(X, self)
        X = check_images(X)
        axes = (0, 1, 2) if self.per_channel else (0, 1, 2, 3)
        mean = X.mean(axis=axes, dtype=np.float64).reshape(-1)
        std = X.std(axis=axes, dtype=np.float64).reshape(-1)
        constant = std <= np.finfo(np.float32).eps * np.maximum(np.abs(mean), 1.0)
        self.mean_ = mean
        self.scale_ = np.where(constant, 1.0, std)
        self.n_channels_in_ = X.shape[-1]
        self.image_shape_ = X.shape[1:3]
        self.input_scale_ = input_scale(X, uint8_as_unit=False)
        return self

    def transform(self, X):
        """Return ``float32`` images ``(X - mean_) / scale_``."""
        check_is_fitted(self)
        X = check_images(X)
        if X.shape[-1] != self.n_channels_in_:
            raise ValueError(
                f"X has {X.shape[-1]} channels, but {type(self).__name__} was fitted on "
                f"images with {self.n_channels_in_} channels."
            )
        if X.shape[1:3] != self.image_shape_:
            raise ValueError(
                f"X holds {X.shape[1]}x{X.shape[2]} images, but {type(self).__name__} was "
                f"fitted on {self.image_shape_[0]}x{self.image_shape_[1]} images."
            )
        # A Standardize saved before input_scale_ existed transforms as it did then.
        if hasattr(self, "input_scale_"):
            check_same_scale(X, self.input_scale_, owner=type(self).__name__, uint8_as_unit=False)
        mean = self.mean_.astype(np.float32)
        scale = self.scale_.astype(np.float32)
        return (X.astype(np.float32) - mean) / scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


# -------------------------------------------------------------------- perturbations
class PerturbationTransformer(TransformerMixin, BaseEstimator):
    """Base class of the random image perturbations.

    A subclass names the function of :mod:`sklcifar.perturbations` it applies
    (``_perturbation``) and which of its own parameters are passed on to it
    (``_perturbation_params``). It is stateless: ``fit`` only validates the
    parameters and the input, and ``transform`` works without ``fit``.

    Parameters
    ----------
    apply : {"fit", "always"}, default="fit"
        ``"fit"``: ``fit_transform`` returns perturbed images and ``transform``
        returns the images unchanged, so in a :class:`~sklearn.pipeline.Pipeline`
        the estimator is trained on perturbed images while ``predict`` and
        ``score`` see clean ones. ``"always"``: ``transform`` perturbs too, to
        build perturbed test sets.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, \
default=None
        Source of randomness. With an int, every call of ``fit_transform``,
        ``transform`` and ``perturb`` draws the same perturbation for the same
        input; a ``Generator`` is advanced by each call; ``None`` draws fresh
        randomness each call.

    Attributes
    ----------
    n_channels_in_ : int
        Number of channels of the images seen in ``fit`` or ``fit_transform``.

    Notes
    -----
    :meth:`perturb` always applies the perturbation, whatever ``apply`` says, and
    does only cheap checks, so that it can be called on every training batch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import PixelNoise
    >>> images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    >>> noise = PixelNoise(fraction=0.1, random_state=0)
    >>> bool((noise.fit_transform(images) != images).any())
    True
    >>> bool((noise.transform(images) == images).all())
    True
    """

    #: Function of :mod:`sklcifar.perturbations` applied by the subclass.
    _perturbation = None
    #: Whether the step's strength follows the training schedule: the classifiers then
    #: pass the share of training done to ``perturb`` as ``progress``.
    follows_training_schedule = False
    #: Parameters of the subclass passed, by name, to ``_perturbation``.
    _perturbation_params = ()

    _parameter_constraints = {
        "apply": [StrOptions({"fit", "always"})],
        "random_state": _RANDOM_STATE,
    }

    def __init__(self, *, apply="fit", random_state=None):
        self.apply = apply
        self.random_state = random_state

    def perturb(self, X, random_state=None, *, progress=None):
        """Apply the perturbation to the images ``X`` and return the new images.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or \
(n_images, height, width)
            ``uint8`` images in ``0..255`` or float images in ``[0, 1]``; not modified.
        random_state : None, int, numpy.random.Generator or numpy.random.RandomState, \
default=None
            Source of randomness for this call; ``None`` uses the estimator's
            ``random_state`` (itself fresh randomness when ``None``). A
            ``Generator`` is used as is and advanced.
        progress : float in [0, 1] or None, default=None
            Share of the training schedule done, for a step whose strength follows it
            (``follows_training_schedule``, e.g. `RobustMix` with a
            ``final_mix_probability``): the classifiers pass it to such steps when they
            run as per-epoch augmentation. None is the start of the schedule; other
            steps ignore it.

        Returns
        -------
        ndarray of shape (n_images, height, width, channels)
            Perturbed images with the dtype of ``X``.
        """
        self._validate_params()
        if progress is not None:
            progress = perturbations._check_number("progress", progress, 0, 1)
        if random_state is None:
            random_state = self.random_state
        return self._perturb(check_images(X), random_state, progress)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and ``X``; returns ``self``."""
        self.n_channels_in_ = check_images(X).shape[-1]
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, **fit_params):
        """Validate, then return the perturbed images ``X`` (for either ``apply``).

        The result is a `~sklcifar.augmentation.PerturbedImages`: one perturbed draw
        that also carries the clean images and this step (after the steps that drew
        ``X``, if ``X`` is one too), so that an sklcifar classifier right after it
        draws afresh every epoch (see :mod:`sklcifar.augmentation`).
        """
        clean, steps = split_pending(X)
        X = check_images(X)
        self.n_channels_in_ = X.shape[-1]
        clean = X if not steps else clean
        return PerturbedImages(
            self._perturb(X, self.random_state), clean=clean, steps=(*steps, self)
        )

    def transform(self, X):
        """Return ``X`` perturbed if ``apply="always"``, else unchanged (as 4-D)."""
        self._validate_params()
        X = check_images(X)
        if self.apply == "always":
            return self._perturb(X, self.random_state)
        return X

    def _perturb(self, X, random_state, progress=None):
        if self._perturbation is None:
            raise NotImplementedError(
                f"{type(self).__name__} does not define the perturbation it applies."
            )
        kwargs = self._perturbation_kwargs(progress)
        return self._perturbation(X, **kwargs, random_state=_as_generator(random_state))

    def _perturbation_kwargs(self, progress: float | None) -> dict[str, Any]:
        """Arguments of ``_perturbation`` at this share of training (the same throughout
        unless a subclass schedules them)."""
        return {name: getattr(self, name) for name in self._perturbation_params}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.non_deterministic = self.random_state is None
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def _constraints(**params):
    return {**PerturbationTransformer._parameter_constraints, **params}


class PixelNoise(PerturbationTransformer):
    """Replace a fraction of the pixels with random values.

    Wraps :func:`sklcifar.perturbations.pixel_noise`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state``, the
    attributes and an example.

    Parameters
    ----------
    fraction : float in [0, 1], default=0.03
        Fraction of the pixels replaced.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import PixelNoise
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> PixelNoise(fraction=0.1, random_state=0).fit_transform(images).shape
    (4, 32, 32, 3)
    """

    _perturbation = staticmethod(perturbations.pixel_noise)
    _perturbation_params = ("fraction",)
    _parameter_constraints = _constraints(fraction=[_UNIT])

    def __init__(
        self, fraction=perturbations.SEED_NOISE_FRACTION, *, apply="fit", random_state=None
    ):
        self.fraction = fraction
        super().__init__(apply=apply, random_state=random_state)


class SaltAndPepper(PerturbationTransformer):
    """Set a fraction of the pixels to black or white.

    Wraps :func:`sklcifar.perturbations.salt_and_pepper`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state`` and the
    attributes.

    Parameters
    ----------
    amount : float in [0, 1], default=0.05
        Fraction of the pixels set to black or white.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import SaltAndPepper
    >>> images = np.random.default_rng(0).random((4, 32, 32, 1))
    >>> SaltAndPepper(amount=0.1, random_state=0).fit_transform(images).shape
    (4, 32, 32, 1)
    """

    _perturbation = staticmethod(perturbations.salt_and_pepper)
    _perturbation_params = ("amount",)
    _parameter_constraints = _constraints(amount=[_UNIT])

    def __init__(self, amount=0.05, *, apply="fit", random_state=None):
        self.amount = amount
        super().__init__(apply=apply, random_state=random_state)


class GaussianNoise(PerturbationTransformer):
    """Add Gaussian noise to every pixel.

    Wraps :func:`sklcifar.perturbations.gaussian_noise`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state`` and the
    attributes.

    Parameters
    ----------
    sigma : float >= 0, default=0.08
        Standard deviation of the noise, as a fraction of the full pixel range.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import GaussianNoise
    >>> images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    >>> GaussianNoise(sigma=0.1, random_state=0).fit_transform(images).dtype
    dtype('float32')
    """

    _perturbation = staticmethod(perturbations.gaussian_noise)
    _perturbation_params = ("sigma",)
    _parameter_constraints = _constraints(sigma=[_NON_NEGATIVE])

    def __init__(self, sigma=0.08, *, apply="fit", random_state=None):
        self.sigma = sigma
        super().__init__(apply=apply, random_state=random_state)


class Corruption(PerturbationTransformer):
    """Apply one of the 15 CIFAR-10-C corruptions at a given severity.

    Wraps :func:`sklcifar.perturbations.corrupt`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state`` and the
    attributes.

    Parameters
    ----------
    name : str, default="gaussian_noise"
        One of :data:`sklcifar.perturbations.CORRUPTIONS`.
    severity : int in 1..5, default=1
        Severity level, as in CIFAR-10-C.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import Corruption
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> corrupted = Corruption("gaussian_noise", severity=3, apply="always").transform(images)
    >>> corrupted.shape, corrupted.dtype
    ((4, 32, 32, 3), dtype('uint8'))
    """

    _perturbation = staticmethod(perturbations.corrupt)
    _perturbation_params = ("name", "severity")
    _parameter_constraints = _constraints(
        name=[StrOptions(set(perturbations.CORRUPTIONS))],
        severity=[Interval(Integral, 1, 5, closed="both")],
    )

    def __init__(self, name="gaussian_noise", severity=1, *, apply="fit", random_state=None):
        self.name = name
        self.severity = severity
        super().__init__(apply=apply, random_state=random_state)


class RandomFlip(PerturbationTransformer):
    """Flip each image left-right with a given probability.

    Wraps :func:`sklcifar.perturbations.horizontal_flip`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state`` and the
    attributes.

    Parameters
    ----------
    probability : float in [0, 1], default=0.5
        Probability that an image is flipped.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import RandomFlip
    >>> images = np.random.default_rng(0).random((4, 32, 32, 3))
    >>> flipped = RandomFlip(probability=1.0).fit_transform(images)
    >>> bool(np.array_equal(flipped, images[:, :, ::-1]))
    True
    """

    _perturbation = staticmethod(perturbations.horizontal_flip)
    _perturbation_params = ("probability",)
    _parameter_constraints = _constraints(probability=[_UNIT])

    def __init__(self, probability=0.5, *, apply="fit", random_state=None):
        self.probability = probability
        super().__init__(apply=apply, random_state=random_state)


class RandomShift(PerturbationTransformer):
    """Shift each image by a random number of pixels along both axes.

    Wraps :func:`sklcifar.perturbations.random_shift`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state`` and the
    attributes.

    Parameters
    ----------
    max_shift : int >= 0 or float in (0, 1), default=2
        Largest shift along each axis: an int is a number of pixels, a float a
        fraction of the image size.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import RandomShift
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32), dtype=np.uint8)
    >>> RandomShift(max_shift=3, random_state=0).fit_transform(images).shape
    (4, 32, 32, 1)
    """

    _perturbation = staticmethod(perturbations.random_shift)
    _perturbation_params = ("max_shift",)
    _parameter_constraints = _constraints(
        max_shift=[
            Interval(Integral, 0, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ]
    )

    def __init__(self, max_shift=2, *, apply="fit", random_state=None):
        self.max_shift = max_shift
        super().__init__(apply=apply, random_state=random_state)


class RandomRotation(PerturbationTransformer):
    """Rotate each image by a random angle.

    Wraps :func:`sklcifar.perturbations.random_rotation`; see
    :class:`PerturbationTransformer` for ``apply``, ``random_state`` and the
    attributes.

    Parameters
    ----------
    max_degrees : float in [0, 180], default=10.0
        Largest rotation, in degrees, either way.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import RandomRotation
    >>> images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    >>> RandomRotation(max_degrees=15, random_state=0).fit_transform(images).shape
    (4, 32, 32, 3)
    """

    _perturbation = staticmethod(perturbations.random_rotation)
    _perturbation_params = ("max_degrees",)
    _parameter_constraints = _constraints(max_degrees=[Interval(Real, 0, 180, closed="both")])

    def __init__(self, max_degrees=10.0, *, apply="fit", random_state=None):
        self.max_degrees = max_degrees
        super().__init__(apply=apply, random_state=random_state)


class RobustMix(PerturbationTransformer):
    """The robust training mixture: AugMix and PRIME chains plus 2-4% pixel noise.

    Wraps :func:`sklcifar.augmix.robust_mix` (see :mod:`sklcifar.augmix` for what it
    draws and why it leaves the CIFAR-C corruptions out); ``augment=[..., "robust"]``
    is this transformer with its defaults. See :class:`PerturbationTransformer` for
    ``apply``, ``random_state`` and the attributes.

    Parameters
    ----------
    severity : float in (0, 10], default=ROBUST_SEVERITY (1)
        Strength of the operations on AugMix's scale (AugMix's default and PRIME's
        ranges at 3; milder by default, which costs less clean accuracy, see
        :data:`sklcifar.augmix.ROBUST_SEVERITY`).
    width : int >= 0, default=3
        Chains mixed per image; 0 for noise only.
    operations : tuple of str, default=ROBUST_OPERATIONS
        What the chains draw from: names of :data:`sklcifar.augmix.OPERATIONS`, e.g.
        ``AUGMIX_OPERATIONS`` or ``PRIME_OPERATIONS``; the default is both.
    mix_probability : float in [0, 1], default=1.0
        Share of the images that are mixed (at the start of training, with
        ``final_mix_probability``).
    noise_range : tuple of two floats in [0, 1], default=(0.02, 0.04)
        Per-image pixel-noise fraction range.
    noise_probability : float in [0, 1], default=0.5
        Share of the images that get pixel noise.
    final_mix_probability : float in [0, 1] or None, default=None
        Share mixed at the end of training: as per-epoch augmentation of a classifier
        the share moves linearly from ``mix_probability`` to this over the training
        schedule (the ``progress`` of :meth:`perturb`), so that the last, low-learning-rate
        steps fit images nearer the clean ones. None: ``mix_probability`` throughout.
        Outside training (``transform``, ``perturb`` without ``progress``) the share is
        ``mix_probability``.
    apply : {"fit", "always"}, default="fit"
    random_state : None, int, Generator or RandomState, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.transformers import RobustMix
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    >>> RobustMix(random_state=0).fit_transform(images).shape
    (4, 32, 32, 1)
    >>> falling = RobustMix(final_mix_probability=0.0, noise_probability=0.0)
    >>> bool((falling.perturb(images, random_state=0, progress=1.0) == images).all())
    True
    """

    _perturbation = staticmethod(augmix.robust_mix)
    #: What a RobustMix saved before these parameters existed drew.
    values_before_added: ClassVar[dict[str, Any]] = {
        "operations": augmix.AUGMIX_OPERATIONS,
        "mix_probability": 1.0,
        "final_mix_probability": None,
    }
    _perturbation_params = (
        "severity",
        "width",
        "operations",
        "mix_probability",
        "noise_range",
        "noise_probability",
    )
    _parameter_constraints = _constraints(
        severity=[Interval(Real, 0, 10, closed="right")],
        width=[Interval(Integral, 0, None, closed="left")],
        operations=[tuple, list],
        mix_probability=[_UNIT],
        noise_range=[tuple, list],
        noise_probability=[_UNIT],
        final_mix_probability=[None, _UNIT],
    )

    def __init__(
        self,
        severity=augmix.ROBUST_SEVERITY,
        width=3,
        operations=augmix.ROBUST_OPERATIONS,
        mix_probability=1.0,
        noise_range=augmix.ROBUST_NOISE_RANGE,
        noise_probability=0.5,
        final_mix_probability=None,
        *,
        apply="fit",
        random_state=None,
    ):
        self.severity = severity
        self.width = width
        self.operations = operations
        self.mix_probability = mix_probability
        self.noise_range = noise_range
        self.noise_probability = noise_probability
        self.final_mix_probability = final_mix_probability
        super().__init__(apply=apply, random_state=random_state)

    def __setstate__(self, state):
        super().__setstate__({**self.values_before_added, **state})

    @property
    def follows_training_schedule(self) -> bool:
        return self.final_mix_probability is not None

    def _perturbation_kwargs(self, progress):
        kwargs = super()._perturbation_kwargs(progress)
        if self.final_mix_probability is not None and progress is not None:
            start, end = self.mix_probability, self.final_mix_probability
            kwargs["mix_probability"] = start + (end - start) * progress
        return kwargs
