"""Training to a wall-clock budget: the whole learning-rate schedule fits the user's minutes.

A fixed epoch count tuned on one CPU is wrong on every other: the fast recipe's 16 epochs
take 8 minutes on an Intel CPU with AMX, 6 on a 2-core AMD EPYC with AVX-512 BF16 and
about 25 on a 2-core AVX2 AMD EPYC, where a 5-minute budget then stops training
mid-schedule at a high learning rate. With
``time_budget=seconds`` an estimator instead

1. measures its own seconds per training step over the first steps (the first step, which
   traces the graph, left out) and plans how many steps fit, in whole epochs and a last,
   partial one, validation passes and per-epoch overheads included;
2. drives the learning rate step by step along a plan whose warm-up keeps its share of the
   recipe's schedule and whose linear decay reaches zero at the last planned step;
3. re-plans at the end of every epoch from the measured epoch times (a machine slowed by
   other work gets fewer epochs, a faster one more), and within an epoch whenever the steps
   that fit differ from the plan by more than one: shorter when it sees an overrun ahead,
   longer when the steps run faster than planned (a plan that could only shrink within an
   epoch ratcheted down with timing noise, and a budget shorter than an epoch has no
   epoch end to take the time back at), keeping the learning rate continuous.

``TimeBudget`` is the Keras callback doing this; ``LearningRatePlan`` is its piecewise-linear
schedule, with the plan changeable while training runs.

The budget also decides how wide a network pays (``choose_width``, FastNet's
``width="auto"``): a wider network learns more per epoch but runs fewer epochs, and which
wins depends on the epochs the CPU gives it in the user's minutes. Before building its
network the estimator times a few steps of each candidate width and takes the widest that
the budget gives ``WIDER_NETWORK_MIN_EPOCHS`` epochs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence

import keras
import numpy as np

from . import allocator

__all__ = [
    "LearningRatePlan",
    "TimeBudget",
    "TimeBudgetWarning",
    "callbacks_for",
    "choose_width",
    "compiled_schedule",
    "fit_epochs",
    "probe_images",
    "training_step_seconds",
]

# Steps timed before the first plan; the first step (graph tracing) is not counted.
PROBE_STEPS = 6
# Share of the budget kept free for what follows the last epoch (restoring weights,
# scikeras' bookkeeping) and for timing noise.
MARGIN = 0.03
# Until validation passes are measured, a validation image is planned at a training image's
# forward pass, a third of its arithmetic (the backward pass costs two): measured at
# 0.20-0.24 with the evaluation loop's overheads on a 2-core AMD EPYC (AVX2), where the
# half planned before left a fifth of the shortest budgets unused.
VALIDATION_COST = 1 / 3
# The first validation pass also traces the evaluation graph, planned at this share of the
# training graph's tracing (the first step's excess): measured 0.23-0.32 on the same CPU
# (0.13-0.22 while the training graph was traced twice, see ImageClassifier._keras_build_fn).
EVALUATION_TRACING_SHARE = 0.3
# A last, partial epoch runs only with at least this many steps (each costs a validation
# pass), and a plan changed within an epoch keeps at least this many ahead: the learning
# rate still falls linearly over the last steps.
MIN_PARTIAL_STEPS = 4
# Within an epoch the plan changes when the steps that fit differ from it by more than this:
# one step either way is the rounding of a time estimate. (A tolerance of MIN_PARTIAL_STEPS
# left a 36-s budget on a 2-core AMD EPYC about 2 s short: the plan, set from the first,
# slower steps, stayed a few steps below what fit.)
REPLAN_TOLERANCE = 1
# Epochs Keras is asked for when a budget decides (the callback stops training earlier).
UNBOUNDED_EPOCHS = 100_000
# The warm-up starts at this share of the peak learning rate (as training.WarmupLinearDecay).
WARMUP_START = 0.1
# choose_width takes the widest width that the budget gives at least this many epochs.
# Measured (benchmarks/RESULTS.md, the fast recipe on gray CIFAR-10): width 32 beat width
# 16 with 14 epochs (Zen 4 EPYC, 15 minutes: 90.4% against 89.2% for width 16's 38
# epochs), with 15 (Intel Xeon without AMX, 40 minutes) and, by one standard error only,
# with 10 (Zen 4, 11 minutes: 89.5% against 89.1%); a width-32 search trial with 10 epochs
# lost (AVX2 EPYC, 40 minutes: 88.2% against 89.2%).
WIDER_NETWORK_MIN_EPOCHS = 12


class TimeBudgetWarning(UserWarning):
    """The time budget is too short for the training it asks for (e.g. one epoch)."""


class LearningRatePlan:
    """Piecewise-linear learning rate over steps: warm-up to ``peak``, linear decay to zero.

    ``replan(step, total_steps, warmup_steps)`` moves the end of the schedule while training
    runs: the rate continues from its value at ``step``, reaches ``peak`` at the new end of
    the warm-up (if not yet past) and zero at the new ``total_steps``.

    Parameters
    ----------
    peak : float
        Highest learning rate.
    warmup_steps : int
        Steps of the linear warm-up from ``peak / 10`` to ``peak``.
    total_steps : int or None
        Step at which the rate reaches zero; None holds the peak after the warm-up until
        a ``replan`` (the plan before any measurement).

    Examples
    --------
    >>> from sklcifar.time_budget import LearningRatePlan
    >>> plan = LearningRatePlan(1.0, warmup_steps=10, total_steps=110)
    >>> [round(plan(step), 2) for step in (0, 10, 60, 110)]
    [0.1, 1.0, 0.5, 0.0]
    >>> plan.replan(60, total_steps=160, warmup_steps=20)  # more time: the decay slows
    >>> [round(plan(step), 2) for step in (60, 110, 160)]
    [0.5, 0.25, 0.0]
    >>> LearningRatePlan(1.0, warmup_steps=10, total_steps=None)(500)  # no end yet
    1.0
    """

    def __init__(self, peak: float, warmup_steps: int, total_steps: int | None):
        self.peak = float(peak)
        self.total_steps = total_steps
        if total_steps is not None:
            warmup_steps = min(warmup_steps, total_steps)
        start = WARMUP_START * self.peak if warmup_steps else self.peak
        self._steps, self._rates = [0.0, float(warmup_steps)], [start, self.peak]
        if total_steps is not None:
            self._steps.append(float(total_steps))
            self._rates.append(0.0)

    def __call__(self, step: int) -> float:
        # After the last point: zero once an end is planned, else the peak held.
        return float(np.interp(step, self._steps, self._rates))

    def replan(self, step: int, total_steps: int, warmup_steps: int) -> None:
        """Reach zero at ``total_steps`` instead, continuing from the rate at ``step``."""
        current = self(step)
        self.total_steps = int(total_steps)
        if step < warmup_steps < total_steps:
            self._steps = [float(step), float(warmup_steps), float(total_steps)]
            self._rates = [current, self.peak, 0.0]
        else:
            self._steps = [float(step), float(max(total_steps, step))]
            self._rates = [current, 0.0]


class TimeBudget(keras.callbacks.Callback):
    """Plan the number of training steps, and the learning rate, to end training within a
    budget.

    The clock starts at ``started`` (``time.perf_counter()`` when ``fit`` began, so data
    preparation and model building count). After ``PROBE_STEPS`` timed steps the callback
    plans as many steps as fit: whole epochs, then a last, partial epoch with what time is
    left, validation passes and per-epoch overheads included (on a slow CPU a budget of
    1.8 epochs trains 1.8, not 1). Each epoch's end re-plans from the measured times (more
    steps or fewer); within an epoch, so does a projected overrun or a surplus of more
    than ``REPLAN_TOLERANCE`` steps. Training stops at the planned step, mid-epoch if need
    be (the partial epoch is validated as a whole one), and the learning rate, following
    the plan, reaches zero there. At least
    ``PROBE_STEPS`` + 1 steps run, with a ``TimeBudgetWarning`` when the first epoch's
    end (whole or partial) overruns the budget.

    Parameters
    ----------
    seconds : float
        The budget for the whole ``fit``.
    started : float
        ``time.perf_counter()`` value at which the budget began.
    steps_per_epoch : int
    validation_share : float
        Validation images per training image (0 without validation).
    max_epochs : int
        Upper bound on the plan (the user's explicit ``epochs``, if any).
    initial_epochs : int
        Epochs the learning rate is planned for until the first measurement (the recipe's).
    schedule : {"constant", "warmup_linear"}
        With "warmup_linear" the callback sets the optimiser's learning rate at every step
        from a ``LearningRatePlan``; with "constant" it leaves it alone.
    peak_learning_rate : float
    warmup_share : float
        Warm-up as a share of the whole schedule (the recipe's warm-up epochs over its
        epochs).

    Attributes
    ----------
    planned_steps : int or None
        The current plan (None before the first).
    planned_epochs : int or None
        Epochs the plan runs, the last one possibly partial.
    plans : list of (int, int)
        (steps done, planned steps) each time the plan was set or changed.
    epoch_seconds : list of float
        Wall time of each epoch, validation and callbacks included.
    """

    def __init__(
        self,
        seconds: float,
        *,
        started: float,
        steps_per_epoch: int,
        validation_share: float = 0.0,
        max_epochs: int = UNBOUNDED_EPOCHS,
        initial_epochs: int = 1,
        schedule: str = "constant",
        peak_learning_rate: float = 0.0,
        warmup_share: float = 0.0,
    ):
        super().__init__()
        self.seconds, self.started = float(seconds), started
        self.steps_per_epoch, self.validation_share = steps_per_epoch, validation_share
        self.max_epochs = max_epochs
        self.warmup_share = min(max(warmup_share, 0.0), 1.0)
        self.plan = None
        if schedule == "warmup_linear":
            # Until the first plan: the recipe's warm-up, then the peak held (no decay yet).
            total = min(initial_epochs, max_epochs) * steps_per_epoch
            self.plan = LearningRatePlan(
                peak_learning_rate, round(self.warmup_share * total), total_steps=None
            )
        self.planned_steps: int | None = None
        self.planned_epochs: int | None = None
        self.plans: list[tuple[int, int]] = []
        self.epoch_seconds: list[float] = []
        self._step_seconds: list[float] = []
        self._validation_seconds: list[float] = []
        self._step = 0  # steps run in this fit
        self._epochs_done = 0

    # ------------------------------------------------------------------ estimates
    def _seconds_per_step(self) -> float:
        # The first step traces the graph; later ones are steady. Recent steps follow a
        # machine whose load changes.
        recent = self._step_seconds[1:][-50:] or self._step_seconds
        return float(np.median(recent))

    def _validation_estimate(self) -> float:
        """Seconds of the next validation pass."""
        later = self._validation_seconds[1:]
        if later:
            return float(np.mean(later[-3:]))
        step = self._seconds_per_step()
        estimate = VALIDATION_COST * self.validation_share * self.steps_per_epoch * step
        if not self._validation_seconds and self.validation_share:
            # The first pass traces the evaluation graph too, a forward pass only.
            estimate += EVALUATION_TRACING_SHARE * max(self._step_seconds[0] - step, 0.0)
        return estimate

    def _epoch_estimate(self) -> float:
        """Seconds of one more whole epoch, validation and per-epoch overheads included."""
        step = self._seconds_per_step()
        estimate = self.steps_per_epoch * step + self._validation_estimate()
        later = self.epoch_seconds[1:][-3:]
        if later:  # measured epochs also carry shuffling, callbacks and the like
            estimate = max(estimate, float(np.mean(later)))
        return estimate

    def _startup_seconds(self) -> float:
        """Seconds from the start of ``fit`` to the first step, graph tracing included."""
        first_step = self._step_seconds[0] - self._seconds_per_step()
        return self._train_began - self.started + max(first_step, 0.0)

    def _steps_that_fit(self, steps_left_in_epoch: int) -> int:
        """Training steps (those done included) whose end the budget reaches: the current
        epoch's ``steps_left_in_epoch`` more steps, whole epochs, then a partial one, each
        epoch followed by its validation pass."""
        step, validation = self._seconds_per_step(), self._validation_estimate()
        epoch = self._epoch_estimate()
        # What measured epochs cost beyond their timed steps and validation pass (Keras'
        # loop between steps, callbacks, shuffling), spread over their steps: the current
        # epoch, the whole ones and a partial one are then planned alike.
        step += max(epoch - self.steps_per_epoch * step - validation, 0.0) / self.steps_per_epoch
        left = self.started + self.seconds * (1 - MARGIN) - time.perf_counter()
        steps = self._step
        if steps_left_in_epoch:
            current = steps_left_in_epoch * step + validation
            if current > left:  # this epoch is the last one, cut short
                return steps + max(math.floor((left - validation) / step), 0)
            steps, left = steps + steps_left_in_epoch, left - current
        whole = max(math.floor(left / epoch), 0)
        left -= whole * epoch
        partial = math.floor((left - validation) / step)
        # Fewer than MIN_PARTIAL_STEPS would cost a validation pass for almost no training.
        partial = partial if partial >= MIN_PARTIAL_STEPS else 0
        return steps + whole * self.steps_per_epoch + partial

    # --------------------------------------------------------------------- planning
    def _set_plan(self, steps: int, *, least: int) -> None:
        steps = min(max(steps, least, 1), self.max_epochs * self.steps_per_epoch)
        if steps == self.planned_steps:
            return
        self.planned_steps = steps
        self.planned_epochs = math.ceil(steps / self.steps_per_epoch)
        self.plans.append((self._step, steps))
        if self.plan is not None:
            self.plan.replan(self._step, steps, round(self.warmup_share * steps))

    # -------------------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        self._train_began = self._epoch_began = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_step = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.plan is not None:
            self.model.optimizer.learning_rate = self.plan(self._step)
        self._step_began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._step_seconds.append(time.perf_counter() - self._step_began)
        self._step += 1
        self._epoch_step += 1
        if self.planned_steps is not None and self._step >= self.planned_steps:
            self.model.stop_training = True  # Keras ends the epoch here, then validates
            return
        left = self.steps_per_epoch - self._epoch_step
        if len(self._step_seconds) > PROBE_STEPS:
            # Both ways: a plan that only shrinks ratchets down with noise (or with first
            # steps slower than later ones), and a budget within one epoch has no epoch end
            # at which to take the time back. Re-planned at least MIN_PARTIAL_STEPS ahead,
            # the last steps still fall linearly to zero; a shorter plan never ends later
            # than the one it replaces.
            fit, planned = self._steps_that_fit(left), self.planned_steps
            if planned is None or abs(fit - planned) > REPLAN_TOLERANCE:
                least = self._step + MIN_PARTIAL_STEPS
                if planned is not None and fit < planned:
                    least = min(least, planned)
                self._set_plan(fit, least=least)

    def on_test_begin(self, logs=None):
        self._validation_began = time.perf_counter()

    def on_test_end(self, logs=None):
        self._validation_seconds.append(time.perf_counter() - self._validation_began)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.epoch_seconds.append(now - self._epoch_began)
        self._epoch_began = now
        self._epochs_done += 1
        over = now - self.started - self.seconds
        if over > 0 and self._epochs_done == 1:
            warnings.warn(
                f"time_budget={self.seconds:g} s is too short for this training: "
                f"{self._startup_seconds():.1f} s went to preparing the data and building and "
                f"compiling the network before the first step, and {self._step} steps "
                f"({self._step / self.steps_per_epoch:.0%} of an epoch) with their validation "
                f"took {self.epoch_seconds[0]:.1f} s. Trained those; raise time_budget, or "
                "train on fewer images.",
                TimeBudgetWarning,
                stacklevel=2,
            )
        if self.planned_steps is not None and self.planned_steps <= self._step:
            # The schedule has reached zero: extending it now would train at a rate of 0.
            self.model.stop_training = True
            return
        fit = self._steps_that_fit(0)
        if fit < self._step + MIN_PARTIAL_STEPS:
            # Nothing more fits (the machine slowed at this epoch's very end): stop, the
            # learning rate short of zero, rather than overrun the budget.
            self.model.stop_training = True
            return
        self._set_plan(fit, least=self._step + MIN_PARTIAL_STEPS)


# ------------------------------------------------------------ the estimator's hooks
def fit_epochs(estimator) -> int:
    """Epochs to ask Keras for: the recipe's, or with a budget the user's cap (or none)."""
    if estimator.time_budget is None:
        return estimator._setting("epochs")
    return estimator.epochs or UNBOUNDED_EPOCHS


def compiled_schedule(estimator) -> str:
    """The schedule compiled into the optimiser: with a budget ``TimeBudget`` drives the
    learning rate step by step instead, so the optimiser gets a settable constant one."""
    return "constant" if estimator.time_budget is not None else estimator._setting("lr_schedule")


def callbacks_for(estimator, n_train: int, validation) -> list[TimeBudget]:
    """``[TimeBudget(...)]`` for an estimator with a ``time_budget``, else ``[]``.

    Parameters
    ----------
    estimator : ImageClassifier
        Being fitted (its ``_fit_started`` clock running).
    n_train : int
        Training images per epoch.
    validation : tuple of arrays or None
        The validation images and labels.
    """
    if estimator.time_budget is None:
        return []
    setting = estimator._setting
    recipe_epochs = setting("epochs")
    n_validation = 0 if validation is None else len(validation[0])
    return [
        TimeBudget(
            estimator.time_budget,
            started=estimator._fit_started,
            steps_per_epoch=math.ceil(n_train / setting("batch_size")),
            validation_share=n_validation / n_train,
            max_epochs=estimator.epochs or UNBOUNDED_EPOCHS,
            initial_epochs=recipe_epochs,
            schedule=setting("lr_schedule"),
            peak_learning_rate=setting("learning_rate"),
            warmup_share=setting("warmup_epochs") / recipe_epochs,
        )
    ]


# ------------------------------------------------------------ the width a budget pays for
def probe_images(batch_size: int) -> int:
    """Training images ``training_step_seconds`` is given (later steps reuse them)."""
    return (PROBE_STEPS + 1) * batch_size


def training_step_seconds(
    model: keras.Model, X: np.ndarray, y: np.ndarray, *, batch_size: int, steps: int = PROBE_STEPS
) -> tuple[float, float]:
    """Seconds of ``model``'s first training step (which traces the graph) and the median of
    the ``steps`` after it, on batches of X and y (reused from the start if too few).

    Six steps came within 10% of the training step in 8 fits of 8 on a 2-core AVX2 EPYC, no
    worse than a window of at least 2 s (``benchmarks/width_probe.py``, RESULTS.md).
    """
    seconds: list[float] = []
    # As while training (allocator.HeldMemory): without it, a probe after the process's
    # first fit ran with every step's memory mapped afresh, and its steps took 1.2 to 1.3
    # times as long as the training steps (AVX2 EPYC; twice in a 15-minute fit on a Zen 4).
    allocator.hold()
    try:
        for step in range(steps + 1):
            rows = np.arange(step * batch_size, (step + 1) * batch_size) % len(X)
            began = time.perf_counter()
            model.train_on_batch(X[rows], y[rows])
            seconds.append(time.perf_counter() - began)
    finally:
        allocator.release()
    return seconds[0], float(np.median(seconds[1:]))


def choose_width(
    widths: Sequence[int],
    time_width: Callable[[int], tuple[float, float]],
    deadline: float,
    *,
    min_epochs: float = WIDER_NETWORK_MIN_EPOCHS,
    max_epochs: int | None = None,
) -> tuple[int, dict[int, float]]:
    """The widest of ``widths`` whose estimated epochs before ``deadline`` reach
    ``min_epochs``, else the narrowest.

    Parameters
    ----------
    widths : sequence of int
        Candidate widths.
    time_width : callable
        ``time_width(width)`` builds that network and times it: ``(startup, epoch)``, the
        seconds from building it to its first step done and the seconds of one epoch. It is
        called for the narrowest width, then for wider ones only while they could still
        reach ``min_epochs``: twice the width does four times the arithmetic (measured 2.7
        to 3 times the time per epoch), so at least twice the time is assumed without
        timing it.
    deadline : float
        ``time.perf_counter()`` value by which training must end.
    min_epochs : float
    max_epochs : int or None
        The user's cap on the epochs, if any.

    Returns
    -------
    width : int
    epochs : dict of int to float
        Epochs estimated for each width timed, capped at ``max_epochs``.

    Examples
    --------
    >>> import time
    >>> epoch_seconds = {16: 10.0, 32: 30.0}
    >>> in_15_minutes = time.perf_counter() + 900
    >>> choose_width([16, 32], lambda w: (0.0, epoch_seconds[w]), in_15_minutes)[0]
    32
    >>> choose_width([16, 32], lambda w: (0.0, epoch_seconds[w]), in_15_minutes - 600)[0]
    16
    """
    widths = sorted(widths)
    epochs: dict[int, float] = {}
    chosen = widths[0]
    for width in widths:
        if epochs and epochs[widths[0]] * widths[0] / width < min_epochs:
            break  # cannot reach min_epochs even at the assumed least cost: not timed
        startup, epoch = time_width(width)
        estimate = max(deadline - time.perf_counter() - startup, 0.0) / epoch
        epochs[width] = float(min(estimate, max_epochs)) if max_epochs else estimate
        if width != widths[0]:
            if epochs[width] < min_epochs:
                break  # a wider one would get fewer still
            chosen = width
    return chosen, epochs
