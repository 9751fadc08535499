"""The training recipe's parts: loss, learning-rate schedule, optimiser, precision, batches.

Estimators assemble these in ``fit``; nothing here knows about scikit-learn. Custom Keras
objects are registered as serializable so that joblib-saved models load in a new process
once ``sklcifar`` is imported (unpickling an estimator imports this module first).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import threadpoolctl
from keras import ops

from .machine import cpu_flags, cpu_vendor

OPTIMIZERS = ("adam", "adamw", "sgd", "nesterov")
# Threads preparing augmented batches while TensorFlow trains (benchmarks/augment_overhead.py
# measures 1 against 2 on a 2-core machine).
AUGMENT_WORKERS = 2
# numpy's BLAS threads while augmentation threads prepare batches (None: as they are).
# The robust mixture's matrix products (PRIME's curves and displacement fields) would
# otherwise start BLAS threads that spin on the cores TensorFlow trains on.
AUGMENT_BLAS_THREADS: int | None = 1
LR_SCHEDULES = ("constant", "warmup_linear")
PRECISIONS = ("auto", "float32", "bfloat16")


@keras.saving.register_keras_serializable(package="sklcifar")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing.

    Keras 3's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this one-hot
    encodes the labels in the graph and uses the dense loss, which has it.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_crossentropy", **kw):
        super().__init__(name=name, **kw)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        n_classes = ops.shape(y_pred)[-1]
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), n_classes)
        return keras.losses.categorical_crossentropy(
            ops.cast(labels, y_pred.dtype), y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="sklcifar")
class ConsistencyCrossentropy(SparseCrossentropy):
    """Cross-entropy on the clean view plus AugMix's Jensen-Shannon consistency.

    Training batches from ``AugmentedBatches(consistency_from=...)`` hold three views of
    the same images, stacked ``[clean; augmented; augmented]``, with labels of shape
    ``(3 * batch, 1)``. The loss is the label-smoothed cross-entropy of the clean view
    plus ``weight`` times the Jensen-Shannon divergence between the three views'
    predictions (Hendrycks et al., AugMix, 2020: weight 12), as a per-image value on the
    clean rows (scaled by 3, so that Keras' mean over all rows is the mean over images)
    and 0 on the others. Labels of shape ``(batch,)`` get the plain cross-entropy: the
    classifiers pass their validation labels so (``ImageClassifier(consistency=...)``).
    """

    def __init__(
        self,
        weight: float = 12.0,
        label_smoothing: float = 0.0,
        name: str = "consistency_crossentropy",
        **kw,
    ):
        super().__init__(label_smoothing=label_smoothing, name=name, **kw)
        self.weight = weight

    def call(self, y_true, y_pred):
        if len(y_true.shape) < 2:  # validation batches: one view
            return super().call(y_true, y_pred)
        clean, first, second = ops.split(y_pred, 3, axis=0)
        labels = ops.split(y_true, 3, axis=0)[0]
        views = [ops.clip(view, 1e-7, 1.0) for view in (clean, first, second)]
        log_mixture = ops.log(ops.clip((clean + first + second) / 3, 1e-7, 1.0))
        divergence = (
            sum(ops.sum(view * (ops.log(view) - log_mixture), axis=-1) for view in views) / 3
        )
        per_image = super().call(labels, clean) + self.weight * divergence
        return ops.concatenate(
            [3 * per_image, ops.zeros_like(per_image), ops.zeros_like(per_image)]
        )

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="sklcifar")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``peak / 10`` to ``peak`` over ``warmup_steps``, then linear decay
    to zero at ``total_steps`` (the airbench / ResNet-9 "triangle")."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(self.warmup_steps, 1)
        rising = self.peak * (0.1 + 0.9 * step / warmup)
        falling = self.peak * (self.total_steps - step) / max(self.total_steps - warmup, 1)
        return ops.maximum(ops.where(step < warmup, rising, falling), 0.0)

    def get_config(self):
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def make_optimizer(
    name: str,
    learning_rate: float,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    warmup_epochs: float = 0.0,
    steps_per_epoch: int = 1,
    epochs: int = 1,
    ema_momentum: float | None = None,
) -> keras.optimizers.Optimizer:
    """A Keras optimiser by name, with decoupled weight decay and an optional schedule.

    With ``ema_momentum`` the optimiser keeps an exponential moving average of the weights
    and writes it into the model when ``fit`` ends.
    """
    if schedule == "warmup_linear":
        lr = WarmupLinearDecay(
            learning_rate,
            warmup_steps=round(warmup_epochs * steps_per_epoch),
            total_steps=epochs * steps_per_epoch,
        )
    else:
        lr = learning_rate
    decay = weight_decay or None
    ema = {"use_ema": ema_momentum is not None, "ema_momentum": ema_momentum or 0.99}
    if name == "adam":
        return keras.optimizers.Adam(lr, weight_decay=decay, **ema)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=weight_decay, **ema)
    if name in ("sgd", "nesterov"):
        return keras.optimizers.SGD(
            lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=decay, **ema
        )
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {name!r}.")


class TrainingDivergedError(ValueError):
    """The training loss became NaN or infinite: the network's weights are useless."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise `TrainingDivergedError` at the end of an epoch whose loss is not finite.

    Keras' own ``TerminateOnNaN`` only stops training, leaving a model that predicts one
    class for everything; an error says what happened and what to change.
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDivergedError(
                f"training diverged: the loss was {float(loss)} in epoch {epoch + 1}. Lower "
                "learning_rate (or l2), check the images for extreme values, or use another "
                "optimizer or precision."
            )


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 instructions (AVX-512 BF16 or AMX).

    Without them TensorFlow emulates bf16, which is much slower than float32.
    """
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def cpu_prefers_bf16() -> bool:
    """True where bf16 mixed precision trains faster than float32: CPUs with AMX tile units,
    and AMD CPUs with AVX-512 BF16 (Zen 4 and later).

    Measured (benchmarks/RESULTS.md, the default FastNet in both precisions, one run each):
    bf16 trained 1.4x faster than float32 on an Intel Xeon with AMX; 1.34x faster on an AMD
    EPYC with AVX-512 BF16, whose bf16 matrix product ran at twice the float32 rate; 1.4x
    slower on an Intel Xeon with AVX-512 BF16 but no AMX, whose bf16 matrix product ran at
    60% of the float32 rate. The flags alone do not tell the last two apart; the maker does.
    """
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and cpu_vendor() == "AuthenticAMD"


#: Environment variable that decides what ``precision="auto"`` means: "float32" makes any
#: machine train as one without fast bf16 does (how the test suite proves it holds on
#: AVX2-only CPUs), "bfloat16" the reverse. Unset or empty: the CPU decides.
PRECISION_ENV = "SKLCIFAR_PRECISION"


def auto_precision() -> str:
    """What ``precision="auto"`` means here: ``$SKLCIFAR_PRECISION``, else the CPU's choice."""
    forced = os.environ.get(PRECISION_ENV, "")
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise ValueError(
                f"{PRECISION_ENV} must be 'float32' or 'bfloat16' (or unset, to let the CPU "
                f"decide); got {forced!r}."
            )
        return forced
    return "bfloat16" if cpu_prefers_bf16() else "float32"


def dtype_policy_name(precision: str) -> str:
    """Keras dtype policy for ``precision`` ("auto": see :func:`auto_precision`)."""
    if precision == "auto":
        precision = auto_precision()
    if precision == "bfloat16":
        return "mixed_bfloat16"
    if precision == "float32":
        return "float32"
    raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under a dtype policy without leaving it set globally.

    Layers capture the policy when constructed and save it in their config, so the model
    keeps its precision after the context ends and after saving and loading.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def augmentation_blas_threads() -> Iterator[None]:
    """Limit numpy's BLAS to ``AUGMENT_BLAS_THREADS`` threads for the duration."""
    if AUGMENT_BLAS_THREADS is None:
        yield
        return
    with threadpoolctl.threadpool_limits(limits=AUGMENT_BLAS_THREADS, user_api="blas"):
        yield


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches with fresh random augmentation every epoch.

    Each batch's random draws come from ``(seed, epoch, batch index)``, so results do not
    depend on which worker thread prepares it. Worker threads overlap the numpy
    augmentation with training (numpy releases the GIL in its array kernels).

    With ``consistency_from=k`` each batch holds three views of its images for
    ``ConsistencyCrossentropy``: the images after ``augment[:k]`` (the clean view), then
    two independent draws of ``augment[k:]`` on them; labels come as a column, shape
    ``(3 * batch, 1)``, and sample weights repeat.

    ``planned_steps`` returns the training steps the schedule runs (None while unknown,
    e.g. before a time budget's first plan); steps whose strength follows the schedule
    (``follows_training_schedule``) then get the share of them done before their batch as
    ``progress`` (0 while unknown). Batches are prepared a few steps ahead, so a plan
    changed meanwhile reaches them a few steps late.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        augment: Sequence,
        seed: int,
        sample_weight: np.ndarray | None = None,
        consistency_from: int | None = None,
        planned_steps: Callable[[], int | None] | None = None,
        workers: int | None = None,
    ):
        super().__init__(
            workers=workers or AUGMENT_WORKERS, use_multiprocessing=False, max_queue_size=8
        )
        self.images, self.labels, self.sample_weight = images, labels, sample_weight
        self.batch_size, self.augment, self.seed = batch_size, list(augment), seed
        self.consistency_from = consistency_from
        self.planned_steps = planned_steps
        self.epoch = 0
        self._order = self._shuffled_order()

    def _shuffled_order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        rows = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        batch = self.images[rows]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        labels = self.labels[rows]
        weights = None if self.sample_weight is None else self.sample_weight[rows]
        progress = self._progress(index)
        if self.consistency_from is None:
            batch = self._perturbed(batch, self.augment, rng, progress)
        else:
            clean = self._perturbed(batch, self.augment[: self.consistency_from], rng, progress)
            redrawn = self.augment[self.consistency_from :]
            views = [self._perturbed(clean, redrawn, rng, progress) for _ in range(2)]
            batch = np.concatenate([clean, *views])
            labels = np.concatenate([labels] * 3).reshape(-1, 1)
            weights = None if weights is None else np.concatenate([weights] * 3)
        return (batch, labels) if weights is None else (batch, labels, weights)

    def _progress(self, index: int) -> float | None:
        """Share of the planned steps done before batch ``index`` of this epoch."""
        if self.planned_steps is None:
            return None
        planned = self.planned_steps()
        if not planned:
            return 0.0
        return min((self.epoch * len(self) + index) / planned, 1.0)

    @staticmethod
    def _perturbed(
        batch: np.ndarray, steps: Sequence, rng: np.random.Generator, progress: float | None
    ) -> np.ndarray:
        for step in steps:
            if progress is not None and getattr(step, "follows_training_schedule", False):
                batch = step.perturb(batch, random_state=rng, progress=progress)
            else:
                batch = step.perturb(batch, random_state=rng)
        return batch

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._shuffled_order()

    def start_at_epoch(self, epoch: int) -> None:
        """Serve the batches of ``epoch`` next (a fit resumed from a checkpoint)."""
        self.epoch = epoch
        self._order = self._shuffled_order()
