"""The base of every sklcifar classifier: ``ImageClassifier``, on scikeras' ``KerasClassifier``.

What all classifiers share lives here; the classifiers themselves, each with its network
and recipe defaults, are in ``sklcifar.estimators``. ``ImageClassifier``

- reports correct scikit-learn tags (scikeras 0.13 predates the tag API of scikit-learn 1.6+,
  so ``is_classifier`` was False and ``cv=5`` silently used unstratified folds);
- validates its parameters in ``fit`` (scikit-learn's constraints, then the subclass's
  architecture checks);
- takes images (N, H, W) or (N, H, W, C), uint8 or float, with any label type;
- holds out a stratified validation split inside ``fit`` for early stopping that restores
  the best weights, and keeps per-epoch ``history_``;
- runs the training recipe of ``sklcifar.training``: optimiser and schedule, label
  smoothing, per-epoch augmentation, bf16 mixed precision where the CPU has it, your own
  validation data, checkpoints (``sklcifar.checkpoints``), a time budget
  (``sklcifar.time_budget``), and prediction with flip test-time augmentation by a copy
  of the network with its BatchNorm folded into its convolutions (``sklcifar.inference``);
- records the package versions when pickled and warns when loaded under others
  (``sklcifar.versions``).

Subclasses choose the network (``_build_network``) and their recipe defaults (``recipe``).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import keras
import numpy as np
from scikeras.wrappers import KerasClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils._tags import ClassifierTags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _check_sample_weight
from tensorflow.python.framework import config as tensorflow_config  # as scikeras reaches it

from . import (
    allocator,
    checkpoints,
    finetuning,
    graph_augmentation,
    inference,
    time_budget,
    training,
    versions,
)
from .augmentation import split_pending
from .transformers import (
    PerturbationTransformer,
    RandomFlip,
    RandomRotation,
    RandomShift,
    RobustMix,
)
from .validation import check_images, check_same_scale, input_scale

__all__ = ["AUGMENTATIONS", "SMALLEST_PREDICTION_BATCH", "ImageClassifier"]

# scikeras fits a seeded estimator under TensorFlow's op determinism: it sets
# TF_DETERMINISTIC_OPS=1, asks whether determinism was on, switches it on, and switches it
# off afterwards only if it was off. TensorFlow reads that variable once, at the first
# question: asked first inside that context, it answers "on", and determinism stays on for
# the rest of the process (Keras then silently refuses jit_compile=True). Asking once now,
# with the user's own environment, settles the answer before scikeras sets the variable.
tensorflow_config.is_op_determinism_enabled()

#: The smallest batch the classifiers predict in: ``max(batch_size, SMALLEST_PREDICTION_BATCH)``
#: (prediction keeps no activations for gradients, so it affords larger batches than training).
SMALLEST_PREDICTION_BATCH = 512

#: Shorthand names accepted in ``augment``; each maps to a transformer with its defaults.
AUGMENTATIONS = {
    "flip": RandomFlip,
    "shift": RandomShift,
    "rotation": RandomRotation,
    "robust": RobustMix,  # AugMix-style chains + 2-4% pixel noise (sklcifar.augmix)
}

# Keyword arguments scikeras' KerasClassifier takes by name (the rest of **kwargs must be
# routed parameters such as optimizer__momentum).
_SCIKERAS_PARAMS = frozenset(inspect.signature(KerasClassifier.__init__).parameters) - {
    "self",
    "kwargs",
}


class ImageClassifier(KerasClassifier):
    """Base class of sklcifar's Keras image classifiers.

    Recipe parameters left at ``None`` take the class's ``recipe`` default, so each
    architecture keeps the training recipe that suits it while ``get_params`` still returns
    exactly what the user passed.

    Parameters
    ----------
    epochs, batch_size : int or None
        Training length and mini-batch size.
    optimizer : {"adam", "adamw", "sgd", "nesterov"} or None
        "nesterov" is SGD with Nesterov momentum.
    learning_rate, momentum, weight_decay : float or None
        Peak learning rate; momentum for the SGD optimisers; decoupled weight decay.
    lr_schedule : {"constant", "warmup_linear"} or None
        "warmup_linear" warms up over ``warmup_epochs`` then decays linearly to zero.
    warmup_epochs : float or None
    label_smoothing : float or None
        In [0, 1).
    augment : sequence or None
        Per-epoch training augmentation: ``PerturbationTransformer`` instances (e.g.
        ``RandomFlip()``, ``PixelNoise(0.03)``) or the names "flip", "shift", "rotation";
        fresh random draws every epoch. ``()`` for none.
    consistency : float or None
        Weight of AugMix's Jensen-Shannon consistency loss (AugMix uses 12; None for
        none). Each training batch then shows the network every image three times: after
        the augment steps before the first ``RobustMix`` (the clean view), and after two
        independent draws of that ``RobustMix`` and the steps after it; the cross-entropy
        counts the clean view, the consistency term pulls the three predictions together
        (``training.ConsistencyCrossentropy``). Needs a ``RobustMix`` step in ``augment``
        (e.g. ``ROBUST_AUGMENT``); a step costs three times the compute. A sample weight
        weights its image's whole loss, both terms; ``history_["accuracy"]`` counts all
        three views.
    tta : bool, "multicrop" or None
        Test-time augmentation: True averages the predictions for the images and their
        mirror images; "multicrop" adds those of two copies shifted by one pixel
        diagonally (reflected at the border) and their mirror images, weighted half as
        much (airbench's six views, three times the work of True). None: the recipe's.
    tta_margin : float in [0, 1] or None
        Images whose one-view prediction leads its runner-up by more than this
        probability keep that prediction; only the others get the extra views of ``tta``
        (whose average rarely overturns so clear a lead). 1 gives every image every view
        (the seed's recipe); the fast recipe's 0.5 skips the mirror image for most images.
        None: the recipe's.
    validation_fraction : float, default=0.1
        Stratified share of the training images held out for early stopping; 0 trains on
        all images (then no early stopping).
    patience : int or None
        Epochs without a lower validation loss before stopping; the best weights are
        restored. ``None`` takes the recipe's value: 10 in the seed's recipe, none in the
        fast recipe, whose schedule decides when to stop (validation is still recorded).
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        "auto" uses bf16 mixed precision where it trained faster than float32: CPUs with
        AMX, and AMD CPUs with AVX-512 BF16 (not Intel's without AMX;
        ``sklcifar.training.cpu_prefers_bf16``); the environment variable
        ``SKLCIFAR_PRECISION=float32`` turns that off.
    time_budget : float or None
        Seconds the whole ``fit`` may take. The estimator times its first training steps and
        plans the number of steps (re-planned every epoch; the last epoch may be partial)
        so that the whole learning-rate schedule, warm-up to decay, ends within the
        budget, validation included (``sklcifar.time_budget``); ``epochs``, if given, caps
        the plan. ``None``: train ``epochs`` epochs.
    jit_compile : bool or "auto", default="auto"
        Compile training steps with XLA; "auto" is Keras' choice (XLA on a GPU, not on a
        CPU). With a ``random_state``, scikeras fits under TensorFlow's op determinism,
        where Keras does not compile with XLA (it warns "Model doesn't support
        jit_compile=True").
    ema_momentum : float or None
        Keep an exponential moving average of the weights with this momentum (e.g. 0.99)
        and end ``fit`` with the averaged weights; ``None`` for none.
    augment_in_graph : bool, default=False
        Run the "flip" and "shift" augmentation as Keras layers inside the training graph
        instead of in numpy worker threads (``sklcifar.graph_augmentation``).
    random_state : int, RandomState or None
        Seeds the split, weights, shuffling, dropout and augmentation.
    verbose : int, default=0
        1 shows Keras' progress bar.
    callbacks : list of keras.callbacks.Callback or None
        Appended to the default callbacks (early stopping).
    checkpoint_dir : str, path-like or None
        Folder for ``checkpoint.npz``, written during ``fit`` (``sklcifar.checkpoints``); a
        ``fit`` whose folder holds a checkpoint resumes from it and ends with the weights of
        an uninterrupted fit. Needs an integer ``random_state``.
    checkpoint_every : int or str, default=1
        Epochs between checkpoints, or a duration (``"90s"``, ``"10min"``, ``"1.5h"``) after
        which the next epoch's end writes one; the last epoch always writes one.
    init : ImageClassifier, Pipeline, str, path-like or None
        Fine-tuning: start from a copy of this fitted model's network (or of the model saved
        at this path) instead of a new one (``sklcifar.finetuning``). y must have its classes
        and X its image shape.
    **kwargs
        Passed to ``scikeras.wrappers.KerasClassifier``.

    Attributes
    ----------
    classes_ : ndarray
    model_ : keras.Model
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``accuracy`` and, with validation, ``val_loss``, ``val_accuracy``.
    image_shape_ : tuple
        (height, width, channels) seen in ``fit``.
    input_scale_ : dict
        Scale of the training images (``sklcifar.validation.input_scale``): ``{"kind":
        "unit"}`` for uint8 or floats in [0, 1], else the float range. Images of another
        scale are refused at predict.
    dtype_policy_ : str
        Keras dtype policy the network was built with.
    epochs_ : int
        Epochs the last ``fit`` ran (early stopping or ``time_budget`` decide, else
        ``epochs``); with ``time_budget`` the last one may be partial.
    """

    recipe: ClassVar[dict[str, Any]] = {
        "epochs": 30,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "lr_schedule": "constant",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.0,
        "augment": (),
        "tta": False,
        "tta_margin": 1.0,
        "patience": 10,
    }
    #: Parameters whose default would change what a model saved before the parameter
    #: existed is or predicts: the value such a model had, for loading it.
    values_before_added: ClassVar[dict[str, Any]] = {
        "tta_margin": 1.0,  # every image got every view of ``tta``
    }

    _parameter_constraints: ClassVar[dict] = {
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "optimizer": [StrOptions(set(training.OPTIMIZERS)), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "momentum": [Interval(Real, 0, 1, closed="left"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left"), None],
        "lr_schedule": [StrOptions(set(training.LR_SCHEDULES)), None],
        "warmup_epochs": [Interval(Real, 0, None, closed="left"), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left"), None],
        "augment": [list, tuple, None],
        "consistency": [Interval(Real, 0, None, closed="neither"), None],
        "tta": ["boolean", StrOptions({"multicrop"}), None],
        "tta_margin": [Interval(Real, 0, 1, closed="both"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 0, None, closed="left"), None],
        "precision": [StrOptions(set(training.PRECISIONS))],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "jit_compile": ["boolean", StrOptions({"auto"})],
        "ema_momentum": [Interval(Real, 0, 1, closed="neither"), None],
        "augment_in_graph": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left"), str],
        "init": "no_validation",  # checked when the network is built (sklcifar.finetuning)
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        optimizer: str | None = None,
        learning_rate: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        lr_schedule: str | None = None,
        warmup_epochs: float | None = None,
        label_smoothing: float | None = None,
        augment: Sequence | None = None,
        consistency: float | None = None,
        tta: bool | None = None,
        tta_margin: float | None = None,
        validation_fraction: float = 0.1,
        patience: int | None = None,
        precision: str = "auto",
        time_budget: float | None = None,
        jit_compile: bool | str = "auto",
        ema_momentum: float | None = None,
        augment_in_graph: bool = False,
        random_state=None,
        verbose: int = 0,
        callbacks=None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | str = 1,
        init=None,
        **kwargs,
    ):
        # As for any Python function, a misspelt keyword fails here, not later in fit.
        unknown = sorted(k for k in kwargs if "__" not in k and k not in _SCIKERAS_PARAMS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}; see "
                "get_params() for its parameters (routed Keras arguments contain '__', "
                "e.g. optimizer__nesterov)."
            )
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            **kwargs,
        )
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.consistency = consistency
        self.tta = tta
        self.tta_margin = tta_margin
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.precision = precision
        self.time_budget = time_budget
        self.jit_compile = jit_compile
        self.ema_momentum = ema_momentum
        self.augment_in_graph = augment_in_graph
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.init = init

    # ----------------------------------------------------------------- scikit-learn tags
    def __sklearn_tags__(self):
        # scikeras 0.13 lists ClassifierMixin after BaseWrapper, so BaseEstimator's tags win
        # the MRO and estimator_type stays None on scikit-learn >= 1.7: set them here.
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags(multi_class=True, poor_score=True)
        tags.target_tags.required = True
        tags.non_deterministic = True  # multi-threaded float sums differ in the last bits
        # Images (n, height, width[, channels]), dense and finite: not 2-D tabular data.
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    # ------------------------------------------------------------------ parameter access
    def _setting(self, name: str):
        """A recipe parameter: the user's value, else this class's recipe default."""
        value = getattr(self, name)
        return type(self).recipe[name] if value is None else value

    # scikeras parameters that sklcifar decides itself: a value here would be ignored.
    _FIXED_SCIKERAS_PARAMS: ClassVar[dict[str, Any]] = {
        "loss": None,  # the recipe's label-smoothed cross-entropy
        "metrics": None,  # accuracy
        "validation_split": 0.0,  # see validation_fraction (stratified)
    }

    def _validate_params(self) -> None:
        for name, default in self._FIXED_SCIKERAS_PARAMS.items():
            if getattr(self, name, default) != default:
                raise ValueError(
                    f"{type(self).__name__} sets {name} itself; got {name}="
                    f"{getattr(self, name)!r}. Leave it at {default!r} (see the class docs "
                    "for the recipe parameters)."
                )
        constraints: dict = {}
        for klass in reversed(type(self).__mro__):
            constraints.update(vars(klass).get("_parameter_constraints", {}))
        validate_parameter_constraints(
            constraints, self.get_params(deep=False), caller_name=type(self).__name__
        )
        self._prediction_settings()
        self._check_architecture()

    def _check_architecture(self) -> None:
        """Subclasses check their architecture choices here (before any layer is built)."""

    def _augmentations(self) -> list[PerturbationTransformer]:
        # Perturbation steps of a Pipeline in front of this classifier come first.
        steps = list(getattr(self, "_pipeline_perturbations", ()))
        for step in self._setting("augment"):
            if isinstance(step, str):
                if step not in AUGMENTATIONS:
                    raise ValueError(
                        f"augment names must be among {sorted(AUGMENTATIONS)} (or be "
                        f"PerturbationTransformer instances); got {step!r}."
                    )
                step = AUGMENTATIONS[step]()
            elif not isinstance(step, PerturbationTransformer):
                raise ValueError(
                    "augment takes PerturbationTransformer instances (RandomFlip(), "
                    f"PixelNoise(), ...) or names; got {step!r}."
                )
            steps.append(step)
        return steps

    def _consistency_from(self, steps: Sequence[PerturbationTransformer]) -> int | None:
        """Index of the first step the consistency views redraw (the first RobustMix)."""
        if self.consistency is None:
            return None
        for i, step in enumerate(steps):
            if isinstance(step, RobustMix):
                return i
        raise ValueError(
            f"consistency={self.consistency} compares two draws of a RobustMix step, but "
            f"the augmentation steps {steps!r} have none. Add one (e.g. augment="
            "ROBUST_AUGMENT, or 'robust' in augment), or set consistency=None."
        )

    # ---------------------------------------------------------------------- input checks
    def _validate_data(self, X=None, y=None, reset: bool = False, y_numeric: bool = False):
        # Called by scikeras in fit (reset=True) and predict: turn images into float32 4-D
        # arrays before scikeras' tabular checks see them.
        if X is not None:
            X = self._check_images(X, reset=reset)
        return super()._validate_data(X, y, reset=reset, y_numeric=y_numeric)

    def _check_images(self, X, *, reset: bool) -> np.ndarray:
        X = check_images(X, channels=None)
        if reset:
            self.input_scale_ = input_scale(X)
        elif hasattr(self, "input_scale_"):
            check_same_scale(X, self.input_scale_, owner=type(self).__name__)
        if X.dtype == np.uint8:
            X = X.astype(np.float32) / np.float32(255)
        else:
            X = X.astype(np.float32, copy=False)
        if reset:
            self.image_shape_ = X.shape[1:]
        elif hasattr(self, "image_shape_") and X.shape[1:] != tuple(self.image_shape_):
            raise ValueError(
                f"X has images of shape {X.shape[1:]} (height, width, channels), but this "
                f"{type(self).__name__} was fitted on images of shape {self.image_shape_}."
            )
        return X

    @staticmethod
    def _check_labels(X, y) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D array of class labels; got shape {y.shape}.")
        if len(X) != len(y):
            raise ValueError(
                f"X has {len(X)} images but y has {len(y)} labels; they must be equally long."
            )
        target_type = type_of_target(y)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(
                f"y must hold class labels (ints or strings); got target type {target_type!r}."
            )
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"y has a single class ({classes[0].item()!r}); a classifier needs at least two."
            )
        return y

    # -------------------------------------------------------------------------- training
    def _validation_split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Stratified train/validation indices, or all indices and none."""
        fraction = self.validation_fraction
        if fraction == 0:
            return np.arange(len(y)), np.array([], dtype=int)
        classes, counts = np.unique(y, return_counts=True)
        n_val = math.ceil(fraction * len(y))
        smallest = counts.argmin()
        if counts[smallest] < 2 or n_val < len(classes) or len(y) - n_val < len(classes):
            label = classes[smallest].item()  # 0, not np.int64(0)
            raise ValueError(
                f"validation_fraction={fraction} is too large or too small for the smallest "
                f"class ({label!r} has {counts[smallest]} images in {len(y)}): the "
                "stratified split needs every class in both parts (at least 2 images per "
                f"class and {len(classes)} images on each side). Use more images, another "
                "validation_fraction, or validation_fraction=0."
            )
        split = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        return next(split.split(np.zeros(len(y)), y))

    def _check_validation_data(self, X_val, y_val, y) -> tuple[np.ndarray, np.ndarray]:
        """``fit``'s X_val, y_val checked against the training images and labels."""
        if X_val is None or y_val is None:
            given, missing = ("X_val", "y_val") if y_val is None else ("y_val", "X_val")
            raise ValueError(f"fit got {given} but no {missing}; give both or neither.")
        shape = np.shape(X_val)[1:] + ((1,) if np.ndim(X_val) == 3 else ())
        if np.ndim(X_val) in (3, 4) and shape != tuple(self.image_shape_):
            raise ValueError(
                f"X_val has images of shape {shape} (height, width, channels), but X has "
                f"images of shape {tuple(self.image_shape_)}; they must be alike."
            )
        if np.shape(X_val)[:1] == (0,):
            raise ValueError("X_val holds no images; give at least one, or no X_val.")
        X_val = self._check_images(X_val, reset=False)
        y_val = np.asarray(y_val)
        if y_val.shape != (len(X_val),):
            raise ValueError(
                f"y_val must hold one label per X_val image, shape ({len(X_val)},); got shape "
                f"{y_val.shape}."
            )
        unknown = sorted(set(y_val.tolist()) - set(np.unique(y).tolist()), key=str)
        if unknown:
            raise ValueError(
                f"y_val has labels that y does not have: {unknown[:10]}; the classes are "
                f"{np.unique(y).tolist()[:20]}."
            )
        return X_val, y_val

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, **kwargs) -> ImageClassifier:
        """Fit on images X and labels y, holding out a stratified validation split.

        Parameters
        ----------
        X : array of shape (n_images, height, width[, channels]), uint8 or float
        y : array of shape (n_images,), class labels of any type
        sample_weight : array of shape (n_images,), optional
        X_val, y_val : arrays of shape (n_val, height, width[, channels]) and (n_val,), optional
            Your own validation set for early stopping and ``history_``, instead of the split
            held out of X (``validation_fraction`` is then not used and all of X trains).
            Images as the classifier sees them: in a Pipeline, let it preprocess them with
            ``Pipeline(..., transform_input=["X_val"])`` and metadata routing (see
            docs/user_guide/long_fits.md), or pass ``classifier__X_val`` already
            preprocessed. Labels must be among y's classes.

        Returns
        -------
        self
        """
        if kwargs:
            raise TypeError(
                f"fit takes no extra arguments; got {sorted(kwargs)}. Set training options "
                "as estimator parameters (set_params)."
            )
        self._fit_started = time.perf_counter()  # time_budget counts from here
        self._validate_params()
        # Train on the clean images a Pipeline's perturbation steps drew from, with those
        # steps redrawn every epoch (sklcifar.augmentation).
        X, self._pipeline_perturbations = split_pending(X)
        X = self._check_images(X, reset=True)
        y = self._check_labels(X, y)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        if X_val is None and y_val is None:
            train, val = self._validation_split(y, seed)
            self._validation_rows = (X[val], y[val]) if len(val) else None
        else:
            train = np.arange(len(y))
            self._validation_rows = self._check_validation_data(X_val, y_val, y)
        self._training_seed = seed
        if sample_weight is not None:
            # One finite weight >= 0 per image, not all zero (scikit-learn's rules).
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
            sample_weight = sample_weight[train]
        self.dtype_policy_ = training.dtype_policy_name(self.precision)
        self.n_train_ = len(train)
        # Before the seed is set: timing candidate networks leaves the fit's draws alone.
        probe = train[: time_budget.probe_images(self._setting("batch_size"))]
        self._choose_architecture(X[probe], y[probe])
        # Keras seeds Python's, numpy's and TensorFlow's global generators together.
        keras.utils.set_random_seed(seed)
        try:
            self._consistency_from(self._augmentations())  # a clear error before any work
            super().fit(
                X[train],
                y[train],
                sample_weight=sample_weight,
                epochs=time_budget.fit_epochs(self),
            )
        finally:
            del self._validation_rows, self._pipeline_perturbations
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None, **kwargs):
        """Not supported: the recipe (schedule, stratified validation) spans a whole fit."""
        raise NotImplementedError(
            f"{type(self).__name__} does not support partial_fit; use fit, or warm_start=True "
            "with fit to continue training."
        )

    def _keras_build_fn(self, meta: dict) -> keras.Model:
        """scikeras hook: build and compile the network for the data seen in ``fit``."""
        if self.init is not None:  # fine-tuning: a copy of the fitted model's network
            model = finetuning.initial_network(self)
        else:
            model = self._new_network(tuple(meta["X_shape_"][1:]), meta["n_classes_"])
        return self._compiled(model, meta["X_shape_"][0], self._loss())

    def _new_network(self, input_shape: tuple, n_classes: int) -> keras.Model:
        """A new network for images like ``self._stats_images``, augmentation layers included."""
        X_train = self._stats_images
        with training.dtype_policy(self.dtype_policy_):
            model = self._build_network(
                input_shape,
                n_classes,
                input_mean=X_train.mean(axis=(0, 1, 2)),
                input_std=X_train.std(axis=(0, 1, 2)) + 1e-3,
            )
        return graph_augmentation.with_graph_augmentation(self, model)

    def _compiled(self, model: keras.Model, n_train: int, loss: keras.losses.Loss) -> keras.Model:
        """``model`` compiled with the recipe's optimiser for ``n_train`` images per epoch."""
        model.compile(
            optimizer=training.make_optimizer(
                self._setting("optimizer"),
                self._setting("learning_rate"),
                momentum=self._setting("momentum"),
                weight_decay=self._setting("weight_decay"),
                schedule=time_budget.compiled_schedule(self),
                warmup_epochs=self._setting("warmup_epochs"),
                steps_per_epoch=math.ceil(n_train / self._setting("batch_size")),
                epochs=self._setting("epochs"),
                ema_momentum=self.ema_momentum,
            ),
            loss=loss,
            # A metric object, not the string "accuracy" (which Keras resolves to this
            # class): its variables exist before the training function is traced.
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=self.jit_compile,
        )
        # Keras creates the optimizer's slots during the first trace, and a tf.function
        # that creates variables is traced twice: 1.4-1.9 s of every fit's first step on
        # a 2-core CPU. Created here, the step is traced once.
        model.optimizer.build(model.trainable_variables)
        return model

    def _choose_architecture(self, X: np.ndarray, y: np.ndarray) -> None:
        """Settle the architecture choices left to ``fit`` (FastNet's ``width="auto"``).

        X, y: a few training images, as the network sees them, and their labels, on which
        candidate networks may be timed (``_time_new_network``).
        """

    def _time_new_network(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Build the network ``fit`` would build now and time a few training steps on X, y.

        Returns
        -------
        startup : float
            Seconds to build and compile it and run its first step (graph tracing).
        epoch : float
            Estimated seconds of one epoch of ``n_train_`` images with its validation pass
            (``time_budget.training_step_seconds``).
        """
        began = time.perf_counter()
        classes, codes = np.unique(y, return_inverse=True)
        with self._statistics_from(X):
            model = self._new_network(X.shape[1:], len(classes))
        # Timing only: the consistency loss's views are counted below, not built.
        loss = training.SparseCrossentropy(self._setting("label_smoothing"))
        model = self._compiled(model, self.n_train_, loss)
        built = time.perf_counter() - began
        batch_size = self._setting("batch_size")
        first, step = time_budget.training_step_seconds(model, X, codes, batch_size=batch_size)
        # A consistency fit's batch holds each image three times (clean, two RobustMix draws).
        views = 1 if self.consistency is None else 3
        n_validation = 0 if self._validation_rows is None else len(self._validation_rows[0])
        steps_per_epoch = math.ceil(self.n_train_ / batch_size)
        validation = time_budget.VALIDATION_COST * n_validation / self.n_train_
        return built + first, steps_per_epoch * step * (views + validation)

    def _loss(self) -> keras.losses.Loss:
        if self.consistency is None:
            return training.SparseCrossentropy(self._setting("label_smoothing"))
        return training.ConsistencyCrossentropy(
            self.consistency, label_smoothing=self._setting("label_smoothing")
        )

    def _initialize(self, X, y=None):
        # The standardisation layer needs the training images' statistics at build time.
        X = self._check_images(X, reset=True)
        with self._statistics_from(X):
            return super()._initialize(X, y)

    @contextlib.contextmanager
    def _statistics_from(self, X: np.ndarray) -> Iterator[None]:
        """While building a network: the images ``_new_network`` takes its input statistics
        from (and FastNet its whitening filters), as ``self._stats_images``."""
        self._stats_images = X
        try:
            yield
        finally:
            del self._stats_images

    def _build_network(self, input_shape, n_classes, *, input_mean, input_std) -> keras.Model:
        raise NotImplementedError

    def _default_callbacks(self, has_validation: bool) -> list:
        patience = self._setting("patience")
        # A diverged fit (NaN or infinite loss) stops with an error, not a useless model.
        diverged = [training.StopOnNonFiniteLoss()]
        if not has_validation or patience is None:
            return diverged
        return diverged + [
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        ]

    def _fit_keras_model(
        self, X, y, sample_weight, warm_start, epochs, initial_epoch, **kwargs
    ) -> None:
        # Replaces scikeras' loop: validation split, per-epoch augmentation, default
        # callbacks first and the user's appended (skorch's convention).
        validation = None
        if self._validation_rows is not None:
            X_val, y_val = self._validation_rows
            validation = (
                self.feature_encoder_.transform(self._check_images(X_val, reset=False)),
                # A column of labels would read as consistency views (ConsistencyCrossentropy).
                self.target_encoder_.transform(y_val).reshape(-1),
            )
        batch_size = self._setting("batch_size")
        augment = graph_augmentation.numpy_augmentation(self)
        budget = time_budget.callbacks_for(self, len(X), validation)
        steps_per_epoch = math.ceil(len(X) / batch_size)

        def planned_steps() -> int | None:
            # A time budget's plan changes while training runs; else the epochs asked for.
            return budget[0].planned_steps if budget else epochs * steps_per_epoch

        # With checkpoints, batches come from (seed, epoch, batch): a resumed fit gets the same.
        if augment or self.checkpoint_dir is not None:
            data = {
                "x": training.AugmentedBatches(
                    X,
                    y,
                    batch_size=batch_size,
                    augment=augment,
                    seed=self._training_seed,
                    sample_weight=sample_weight,
                    consistency_from=self._consistency_from(augment),
                    planned_steps=planned_steps,
                ),
                # The batches shuffle themselves from (seed, epoch); Keras' own shuffle of
                # their order would draw from Python's global generator, which no
                # checkpoint can restore.
                "shuffle": False,
            }
        else:
            data = {"x": X, "y": y, "batch_size": batch_size, "sample_weight": sample_weight}
        callbacks = (
            self._default_callbacks(validation is not None)
            + budget
            + [allocator.HeldMemory()]  # no page faults of fresh memory at every step
        )
        # Resume from checkpoint_dir's checkpoint, if any; its callback goes after the
        # callbacks that may stop training, so that it sees their decision.
        first_epoch, checkpointing = checkpoints.resume_or_start(
            self, data["x"], callbacks, (X, y, sample_weight), validation, initial_epoch, epochs
        )
        with training.augmentation_blas_threads():
            history = self.model_.fit(
                **data,
                epochs=initial_epoch + epochs,
                initial_epoch=first_epoch,
                validation_data=validation,
                validation_batch_size=max(batch_size, 256),
                callbacks=callbacks + checkpointing + self._fit_callbacks,
                verbose=self.verbose,
            )
        # A resumed fit's history holds the checkpoint's epochs too.
        epoch_history = checkpointing[0].history if checkpointing else history.history
        self.epochs_ = len(epoch_history.get("loss", []))
        previous = self.history_ if warm_start and hasattr(self, "history_") else {}
        self.history_ = {
            key: list(previous.get(key, [])) + [float(v) for v in values]
            for key, values in epoch_history.items()
            if key != "learning_rate"
        }

    # ------------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not self.initialized_:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X, y) before "
                "predict, predict_proba or score."
            )

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy of ``predict(X)`` against ``y``, weighted by ``sample_weight``."""
        self._check_fitted()
        return super().score(X, y, sample_weight=sample_weight)

    def _prediction_settings(self) -> tuple[bool | str, float]:
        """``tta`` and ``tta_margin``, checked: set_params after fit bypasses fit's checks."""
        tta, margin = self._setting("tta"), self._setting("tta_margin")
        if tta not in (True, False, "multicrop"):
            raise ValueError(f"tta must be True, False, 'multicrop' or None; got {tta!r}.")
        # Not a bool: tta_margin=True reads as "margin on", not as the margin 1.
        if isinstance(margin, bool) or not (isinstance(margin, Real) and 0 <= margin <= 1):
            raise ValueError(f"tta_margin must be a number in [0, 1] or None; got {margin!r}.")
        return tta, margin

    def _predict_raw(self, X, **kwargs):
        self._check_fitted()
        X, _ = self._validate_data(X=X)
        X = self.feature_encoder_.transform(X)
        batch_size = max(self._setting("batch_size"), SMALLEST_PREDICTION_BATCH)
        tta, margin = self._prediction_settings()
        predict = inference.predictor(self.model_)  # BatchNorm folded: faster
        outputs = predict(X, batch_size)
        if not tta:
            return outputs
        top_two = np.sort(outputs, axis=1)[:, -2:]
        unsure = np.flatnonzero(top_two[:, 1] - top_two[:, 0] <= margin)
        if unsure.size == 0:
            return outputs
        # One pass over the other views of the unsure images: their mirror images, and for
        # "multicrop" two diagonal one-pixel shifts of both, which count half as much.
        X = X[unsure]
        views, weights = [X[:, :, ::-1]], [1.0]
        if tta == "multicrop":
            padded = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
            for shifted in (padded[:, :-2, :-2], padded[:, 2:, 2:]):
                views += [shifted, shifted[:, :, ::-1]]
            weights += [0.5] * 4
        others = predict(np.concatenate(views), batch_size)
        others = others.reshape(len(views), len(X), -1)
        outputs[unsure] = (outputs[unsure] + np.tensordot(weights, others, axes=1)) / (
            1 + sum(weights)
        )
        return outputs

    def predict_proba(self, X, **kwargs) -> np.ndarray:
        """Class probabilities, shape (n_images, n_classes), columns in ``classes_`` order."""
        proba = super().predict_proba(X, **kwargs)
        # scikeras squeezes the output, which drops the row axis for a single image.
        proba = np.asarray(proba, dtype=np.float64).reshape(-1, len(self.classes_))
        # float32 softmax rows sum to 1 only within ~1e-7; scikit-learn's metrics check 1e-8.
        return proba / proba.sum(axis=1, keepdims=True)

    # -------------------------------------------------------------------------- pickling
    def __getstate__(self):
        state = super().__getstate__()
        state["_library_versions"] = versions.library_versions()
        return state

    def __setstate__(self, state):
        saved = state.pop("_library_versions", None)
        if saved is not None:
            listing = versions.version_differences(saved)
            if listing:
                warnings.warn(
                    f"This {type(self).__name__} was saved with {listing}; predictions may "
                    "differ or loading may fail. Refit it, or install the versions it was "
                    "saved with.",
                    versions.VersionMismatchWarning,
                    stacklevel=2,
                )
        super().__setstate__(state)
        self._saved_versions = saved
        # A parameter added after this model was saved takes the value that builds the
        # network the model was saved with (its default, or values_before_added); without
        # it get_params and clone would fail.
        for cls in type(self).__mro__:
            if not issubclass(cls, ImageClassifier):
                continue
            for name, parameter in inspect.signature(cls.__init__).parameters.items():
                if parameter.default is not parameter.empty and name not in self.__dict__:
                    setattr(self, name, self.values_before_added.get(name, parameter.default))

    @property
    def saved_versions_(self) -> dict[str, str] | None:
        """sklcifar, Keras and TensorFlow versions this estimator was saved with."""
        # A property, not an attribute: check_is_fitted would count an attribute ending in
        # "_" as proof of fitting, and an unfitted estimator can be saved too.
        return getattr(self, "_saved_versions", None)
