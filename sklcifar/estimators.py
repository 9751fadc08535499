"""The package's classifiers: the seed study's CNN family and fast residual networks.

- ``ConvNetClassifier``: the seed study's models (presets ``m1`` ... ``m12``, ``m7_nbn``)
  and their family, trained with the seed's recipe or the fast one;
- ``FastNetClassifier``: a ResNet-9 with the fast recipe (``FAST_RECIPE``), the default;
- ``ResNetClassifier``: a pre-activation ResNet with the fast recipe.

Each builds its network with a function of ``sklcifar.architectures`` and states its
recipe defaults. What they share (scikit-learn tags, parameter validation, stratified
early stopping, the training loop, prediction, pickling) is their base class
``ImageClassifier`` in ``sklcifar.base``; this module re-exports it, with
``VersionMismatchWarning`` and ``library_versions`` (``sklcifar.versions``), for the code
that imports them from here.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import keras
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from . import architectures, time_budget
from .base import AUGMENTATIONS as AUGMENTATIONS
from .base import ImageClassifier
from .versions import VersionMismatchWarning, library_versions

#: The robust recipe's augmentation, ``FastNetClassifier(augment=ROBUST_AUGMENT)``;
#: benchmarks/robust_training.py compares it with FAST_RECIPE's ("flip", "shift").
ROBUST_AUGMENT = ("flip", "shift", "robust")


def _check_rate(name: str, value) -> None:
    rates = np.atleast_1d(np.asarray(value, dtype=float))
    if rates.size == 0 or np.any((rates < 0) | (rates >= 1)) or not np.all(np.isfinite(rates)):
        raise ValueError(
            f"{name} must be in [0, 1) (a rate, or one rate per layer); got {value!r}."
        )


#: Values of ``ConvNetClassifier(training=...)``: the recipe its training defaults come from.
TRAINING_RECIPES = ("seed", "fast")
#: Training images that estimate the patch covariance of FastNet's whitening stem.
WHITENING_IMAGES = 5000


class ConvNetClassifier(ImageClassifier):
    """The seed study's CNN family as a scikit-learn classifier.

    ``depth`` conv blocks (conv -> ReLU -> BatchNorm -> max-pool -> dropout) with filters
    doubling from ``filters``, then dense layers and a softmax; trained with Adam at batch
    size 32 like the seed, or with the fast recipe (``training="fast"``). Architecture
    parameters left at ``None`` come from ``preset``
    (one of the seed's models ``m1`` ... ``m12``, ``m7_nbn``) or, without a preset, from
    ``default_architecture``; explicit values override the preset's.

    Parameters
    ----------
    preset : str or None
        Name in ``sklcifar.architectures.CONVNET_PRESETS``.
    depth : int or None
        Number of conv blocks.
    filters : int or None
        Filters in the first block (doubling per block).
    kernel_order : {"constant", "increasing", "decreasing"}, sequence of int, or None
    padding : {"same", "valid"} or None
    batch_norm : bool or None
    dense : sequence of int or None
        Hidden dense widths.
    dropout_placement : {"none", "conv", "dense", "all"} or None
    conv_dropout, dense_dropout : float, sequence of float, or None
        Rates in [0, 1): one per pooled conv block (depth - 1) / dense layer, or one for all.
    flatten_dropout : float or None
    l2_placement : {"none", "dense", "all"} or None
    l2 : float or None
        L2 kernel-regularisation strength (>= 0).
    training : {"seed", "fast"}, default="seed"
        Which recipe supplies the training parameters left at ``None``: the seed study's
        (Adam at batch 32, early stopping) or ``FAST_RECIPE`` (Nesterov SGD with warm-up
        and linear decay, label smoothing, per-epoch flip and shift, flip TTA).
    **kwargs
        Training parameters of ``ImageClassifier`` (epochs, batch_size, optimizer, ...).

    Attributes
    ----------
    architecture_ : dict
        The resolved architecture the network was built from.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar import ConvNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(40, 16, 16), dtype=np.uint8)
    >>> y = np.repeat(["cat", "dog"], 20)
    >>> clf = ConvNetClassifier(depth=2, dense=(16,), epochs=1, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> ConvNetClassifier(preset="m12").get_params()["preset"]
    'm12'
    """

    # build_convnet's keyword defaults, read from its signature so they live in one place.
    default_architecture: ClassVar[dict[str, Any]] = {
        name: parameter.default
        for name, parameter in inspect.signature(architectures.build_convnet).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and name not in ("input_mean", "input_std")
    }

    _parameter_constraints: ClassVar[dict] = {
        "preset": [StrOptions(set(architectures.CONVNET_PRESETS)), None],
        "depth": [Interval(Integral, 1, None, closed="left"), None],
        "filters": [Interval(Integral, 1, None, closed="left"), None],
        "kernel_order": [StrOptions(set(architectures.KERNEL_ORDERS)), list, tuple, None],
        "padding": [StrOptions({"same", "valid"}), None],
        "batch_norm": ["boolean", None],
        "dense": [list, tuple, None],
        "dropout_placement": [StrOptions(set(architectures.DROPOUT_PLACEMENTS)), None],
        "conv_dropout": [Real, list, tuple, None],
        "flatten_dropout": [Real, None],
        "dense_dropout": [Real, list, tuple, None],
        "l2_placement": [StrOptions(set(architectures.L2_PLACEMENTS)), None],
        "l2": [Real, None],
        "training": [StrOptions(set(TRAINING_RECIPES))],
    }

    def __init__(
        self,
        preset: str | None = None,
        *,
        depth: int | None = None,
        filters: int | None = None,
        kernel_order: str | Sequence[int] | None = None,
        padding: str | None = None,
        batch_norm: bool | None = None,
        dense: Sequence[int] | None = None,
        dropout_placement: str | None = None,
        conv_dropout: float | Sequence[float] | None = None,
        flatten_dropout: float | None = None,
        dense_dropout: float | Sequence[float] | None = None,
        l2_placement: str | None = None,
        l2: float | None = None,
        training: str = "seed",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.preset = preset
        self.depth = depth
        self.filters = filters
        self.kernel_order = kernel_order
        self.padding = padding
        self.batch_norm = batch_norm
        self.dense = dense
        self.dropout_placement = dropout_placement
        self.conv_dropout = conv_dropout
        self.flatten_dropout = flatten_dropout
        self.dense_dropout = dense_dropout
        self.l2_placement = l2_placement
        self.l2 = l2
        self.training = training

    def _setting(self, name: str):
        # training="fast" swaps the class's recipe for FAST_RECIPE; explicit values still win.
        if self.training == "fast" and getattr(self, name) is None:
            return FAST_RECIPE[name]
        return super()._setting(name)

    def resolved_architecture(self) -> dict[str, Any]:
        """Defaults, overridden by the preset, overridden by explicit parameters."""
        if self.preset is not None and self.preset not in architectures.CONVNET_PRESETS:
            raise ValueError(
                f"preset must be one of {sorted(architectures.CONVNET_PRESETS)} or None; "
                f"got {self.preset!r}."
            )
        arch = dict(self.default_architecture)
        arch.update(architectures.CONVNET_PRESETS.get(self.preset, {}))
        arch.update({k: getattr(self, k) for k in arch if getattr(self, k) is not None})
        return arch

    def _check_architecture(self) -> None:
        arch = self.resolved_architecture()
        architectures.kernel_sizes(arch["kernel_order"], arch["depth"])
        for name in ("conv_dropout", "flatten_dropout", "dense_dropout"):
            _check_rate(name, arch[name])
        if arch["l2"] < 0:
            raise ValueError(f"l2 must be >= 0 (an L2 strength); got {arch['l2']!r}.")
        self.architecture_ = arch

    def _build_network(self, input_shape, n_classes, *, input_mean, input_std) -> keras.Model:
        return architectures.build_convnet(
            input_shape,
            n_classes,
            **self.architecture_,
            input_mean=input_mean,
            input_std=input_std,
        )


# The fast recipe, after David Page's ResNet-9 and Keller Jordan's airbench (see
# ../shared/reference/NOTES.md): Nesterov SGD with a short warm-up and linear decay to
# zero, label smoothing, flip + 2-pixel shifts drawn fresh every epoch, flip test-time
# augmentation, no early stopping (the schedule decides when to stop).
# Measured figures: benchmarks/RESULTS.md.
FAST_RECIPE: dict[str, Any] = {
    "epochs": 16,
    # Small steps pay on a 2-core CPU, whose budgets buy few epochs: batch 256 at 0.3 beat
    # batch 512 at 0.2 from 44 s to 15 minutes (Intel, no AMX), and batch 128 at 0.2 beat
    # batch 256 at 0.3 by 20 points in 36 s and 1-2 points in 2-5 minutes, level at 15
    # (AMD, AVX2), though each halving trains about 10% fewer images per second
    # (benchmarks/RESULTS.md).
    "batch_size": 128,  # images per step
    "optimizer": "nesterov",
    "learning_rate": 0.2,  # peak, per step of 128 images
    "momentum": 0.9,
    "weight_decay": 5e-4,  # decoupled, multiplied by the learning rate
    "lr_schedule": "warmup_linear",
    "warmup_epochs": 2.0,
    "label_smoothing": 0.2,
    # ROBUST_AUGMENT instead once benchmarks/robust_training.py shows it costs <= 1 point.
    "augment": ("flip", "shift"),
    "tta": True,
    # Skips the mirror for about two thirds of the images at unchanged accuracy
    # (benchmarks/RESULTS.md, "Flip TTA for the unsure images only").
    "tta_margin": 0.5,
    "patience": None,
}


#: The widths FastNet's ``width="auto"`` chooses from; the first without a time budget.
AUTO_WIDTHS = (16, 32)


class FastNetClassifier(ImageClassifier):
    """A ResNet-9 (``architectures.build_fastnet``) with the fast training recipe.

    The package's default classifier: the quickest way here to a good model on a CPU.

    Parameters
    ----------
    width : int or "auto", default="auto"
        Filters of the first layer; later stages use 2x, 4x and 8x. "auto": 16, or with a
        ``time_budget`` the widest of ``AUTO_WIDTHS`` that the budget gives
        ``time_budget.WIDER_NETWORK_MIN_EPOCHS`` epochs on this machine, as timed in the
        first seconds of ``fit`` (``time_budget.choose_width``): a wider network learns more
        per epoch, a narrower one runs more epochs in the same minutes.
    kernel_order : {"constant", "increasing", "decreasing"} or sequence of int
        Kernel sizes of the three stages, as ``ConvNetClassifier``'s per block
        (``architectures.kernel_sizes``); the default, "constant", is 3x3 everywhere.
    dropout : float, default=0.0
        Dropout rate in [0, 1) before the dense head. (Its L2 is the recipe's decoupled
        ``weight_decay``.)
    stem : {"patch_whitening", "conv"}, default="patch_whitening"
        The first layer: airbench's fixed 2x2 patch-whitening layer, computed in ``fit``
        from the first ``WHITENING_IMAGES`` training images
        (``architectures.patch_whitening_kernel``), or a learned 3x3 conv with BatchNorm
        (Page's design; models saved before this parameter existed have it). Measured in
        benchmarks/RESULTS.md: whitening trains to higher accuracy in the same minutes.
    **kwargs
        Training parameters of ``ImageClassifier``; defaults in ``FAST_RECIPE``.

    Attributes
    ----------
    width_ : int or None
        The width of the network ``fit`` built (None when ``init`` supplied the network).
    width_epochs_ : dict of int to float
        With ``width="auto"`` and a ``time_budget``: the epochs the budget was estimated to
        give each width timed; else empty.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar import FastNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(40, 16, 16), dtype=np.uint8)
    >>> y = np.repeat([0, 1], 20)
    >>> clf = FastNetClassifier(width=4, epochs=1, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> FastNetClassifier(epochs=1, random_state=0).fit(X, y).width_  # no budget: 16
    16
    >>> FastNetClassifier(kernel_order="increasing", dropout=0.2).get_params()["dropout"]
    0.2
    """

    recipe = FAST_RECIPE
    # Models saved before the stem was a parameter have the conv stem.
    values_before_added: ClassVar[dict[str, Any]] = {
        **ImageClassifier.values_before_added,
        "stem": "conv",
    }
    _parameter_constraints: ClassVar[dict] = {
        "width": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "kernel_order": [StrOptions(set(architectures.KERNEL_ORDERS)), list, tuple],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "stem": [StrOptions(set(architectures.FASTNET_STEMS))],
    }

    def __init__(
        self,
        width: int | str = "auto",
        *,
        kernel_order: str | Sequence[int] = "constant",
        dropout: float = 0.0,
        stem: str = "patch_whitening",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.width = width
        self.kernel_order = kernel_order
        self.dropout = dropout
        self.stem = stem

    def _check_architecture(self) -> None:
        architectures.kernel_sizes(self.kernel_order, architectures.RESIDUAL_STAGES, unit="stage")

    def _choose_architecture(self, X, y) -> None:
        self.width_epochs_ = {}
        if self.width != "auto":
            self.width_ = self.width
        elif self.init is not None:
            self.width_ = None  # the network is a copy of init's
        elif self.warm_start and self.initialized_ and hasattr(self, "width_"):
            pass  # the network fit continues keeps its width
        elif self.time_budget is None:
            self.width_ = AUTO_WIDTHS[0]  # the width the recipe's epochs were tuned for
        else:

            def time_width(width: int) -> tuple[float, float]:
                self.width_ = width  # the width _build_network builds
                return self._time_new_network(X, y)

            self.width_, self.width_epochs_ = time_budget.choose_width(
                AUTO_WIDTHS,
                time_width,
                self._fit_started + self.time_budget * (1 - time_budget.MARGIN),
                min_epochs=time_budget.WIDER_NETWORK_MIN_EPOCHS,
                max_epochs=self.epochs,
            )

    def _build_network(self, input_shape, n_classes, *, input_mean, input_std) -> keras.Model:
        whitening = None
        if self.stem == "patch_whitening":
            # As airbench: 5,000 images estimate the 2x2 patch covariance well.
            whitening = architectures.patch_whitening_kernel(
                self._stats_images[:WHITENING_IMAGES], input_mean, input_std
            )
        return architectures.build_fastnet(
            input_shape,
            n_classes,
            width=self.width_,
            kernel_order=self.kernel_order,
            dropout=self.dropout,
            whitening_kernel=whitening,
            input_mean=input_mean,
            input_std=input_std,
        )


class ResNetClassifier(ImageClassifier):
    """A pre-activation ResNet (``architectures.build_resnet``) with the fast recipe.

    Parameters
    ----------
    depth : int, default=20
        6 n + 2 layers (20 is ResNet-20, 56 is ResNet-56).
    width : int, default=16
        Filters of the first stage (16 k for a wide ResNet of factor k).
    kernel_order : {"constant", "increasing", "decreasing"} or sequence of int
        Kernel sizes of the three stages, as ``ConvNetClassifier``'s per block
        (``architectures.kernel_sizes``); the default, "constant", is 3x3 everywhere.
    dropout : float, default=0.0
        Dropout rate in [0, 1) before the softmax. (Its L2 is the recipe's decoupled
        ``weight_decay``.)
    **kwargs
        Training parameters of ``ImageClassifier``; defaults in ``FAST_RECIPE``.

    Examples
    --------
    >>> from sklcifar import ResNetClassifier
    >>> ResNetClassifier(depth=32).get_params()["depth"]
    32
    >>> ResNetClassifier(kernel_order=(3, 3, 5)).get_params()["kernel_order"]
    (3, 3, 5)
    """

    recipe = FAST_RECIPE
    _parameter_constraints: ClassVar[dict] = {
        "depth": [Interval(Integral, 8, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "kernel_order": [StrOptions(set(architectures.KERNEL_ORDERS)), list, tuple],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        depth: int = 20,
        width: int = 16,
        *,
        kernel_order: str | Sequence[int] = "constant",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.depth = depth
        self.width = width
        self.kernel_order = kernel_order
        self.dropout = dropout

    def _check_architecture(self) -> None:
        if (self.depth - 2) % 6:
            raise ValueError(f"depth must be 6 n + 2 (8, 14, 20, 26, ...); got {self.depth!r}.")
        architectures.kernel_sizes(self.kernel_order, architectures.RESIDUAL_STAGES, unit="stage")

    def _build_network(self, input_shape, n_classes, *, input_mean, input_std) -> keras.Model:
        return architectures.build_resnet(
            input_shape,
            n_classes,
            depth=self.depth,
            width=self.width,
            kernel_order=self.kernel_order,
            dropout=self.dropout,
            input_mean=input_mean,
            input_std=input_std,
        )


__all__ = [
    "AUTO_WIDTHS",
    "ConvNetClassifier",
    "FastNetClassifier",
    "ResNetClassifier",
    "ROBUST_AUGMENT",
    "ImageClassifier",
    "VersionMismatchWarning",
    "library_versions",
]
