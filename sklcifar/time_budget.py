"""Training to a wall-clock budget: the whole learning-rate schedule fits the user's minutes.

A fixed epoch count tuned on one CPU is wrong on every other: the fast recipe's 16 epochs
take 8 minutes on an Intel CPU with AMX and over 40 on a 2-core AVX2 machine, where a
5-minute budget then stops training mid-schedule at a high learning rate. With
``time_budget=seconds`` an estimator instead

1. measures its own seconds per training step over the first steps (the first step, which
   traces the graph, left out) and plans how many epochs fit, validation passes and
   per-epoch overheads included;
2. drives the learning rate step by step along a plan whose warm-up keeps its share of the
   recipe's schedule and whose linear decay reaches zero at the last planned step;
3. re-plans at the end of every epoch from the measured epoch times (a machine slowed by
   other work gets fewer epochs, a faster one more) and shortens the plan within an epoch
   when it sees an overrun ahead, keeping the learning rate continuous.

``TimeBudget`` is the Keras callback doing this; ``LearningRatePlan`` is its piecewise-linear
schedule, with the plan changeable while training runs.
"""

from __future__ import annotations

import math
import time
import warnings

import keras
import numpy as np

__all__ = [
    "LearningRatePlan",
    "TimeBudget",
    "TimeBudgetWarning",
    "callbacks_for",
    "compiled_schedule",
    "fit_epochs",
]

# Steps timed before the first plan; the first step (graph tracing) is not counted.
PROBE_STEPS = 6
# Share of the budget kept free for what follows the last epoch (restoring weights,
# scikeras' bookkeeping) and for timing noise.
MARGIN = 0.03
# A validation image costs about a third of a training image (forward pass only); planned
# at half for the evaluation loop's own overheads, until validation passes are measured.
VALIDATION_COST = 0.5
# Epochs Keras is asked for when a budget decides (the callback stops training earlier).
UNBOUNDED_EPOCHS = 100_000
# The warm-up starts at this share of the peak learning rate (as training.WarmupLinearDecay).
WARMUP_START = 0.1


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
    """Plan the number of epochs, and the learning rate, to end training within a budget.

    The clock starts at ``started`` (``time.perf_counter()`` when ``fit`` began, so data
    preparation and model building count). After ``PROBE_STEPS`` timed steps the callback
    plans as many epochs as fit, validation passes and per-epoch overheads included. Each
    epoch's end re-plans from the measured times (more epochs or fewer); within an epoch,
    a projected overrun shortens the plan, at the least to end with the current epoch. The
    learning rate follows the plan, so it reaches zero at the last step of the last epoch.
    At least one epoch always runs, with a ``TimeBudgetWarning`` when even that does not fit.

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
    planned_epochs : int or None
        The current plan (None before the first).
    plans : list of (int, int)
        (epochs done, planned epochs) each time the plan was set or changed.
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
            # The first pass traces the evaluation graph too, a forward pass: about a third
            # of the training graph's tracing time.
            estimate += max(self._step_seconds[0] - step, 0.0) / 3
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

    def _epochs_that_fit(self, steps_left_in_epoch: int) -> int:
        """Epochs (done ones included) whose end the budget reaches, the current one
        finishing after ``steps_left_in_epoch`` more steps."""
        now = time.perf_counter()
        end = self.started + self.seconds * (1 - MARGIN)
        current = steps_left_in_epoch * self._seconds_per_step()
        if steps_left_in_epoch:
            current += self._validation_estimate()
        more = math.floor((end - now - current) / self._epoch_estimate())
        return self._epochs_done + (1 if steps_left_in_epoch else 0) + more

    # --------------------------------------------------------------------- planning
    def _set_plan(self, epochs: int, *, least: int) -> None:
        epochs = min(max(epochs, least, 1), self.max_epochs)
        if epochs == self.planned_epochs:
            return
        self.planned_epochs = epochs
        self.plans.append((self._epochs_done, epochs))
        if self.plan is not None:
            total = epochs * self.steps_per_epoch
            self.plan.replan(self._step, total, round(self.warmup_share * total))

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
        left = self.steps_per_epoch - self._epoch_step
        # Re-planned with two steps left or more, the last steps still fall linearly to zero.
        if left >= 2 and len(self._step_seconds) > PROBE_STEPS:
            fit = self._epochs_that_fit(left)
            if self.planned_epochs is None:
                self._set_plan(fit, least=1)
            elif fit < self.planned_epochs:  # falling behind: shorten, ending this epoch at least
                self._set_plan(fit, least=self._epochs_done + 1)

    def on_test_begin(self, logs=None):
        self._validation_began = time.perf_counter()

    def on_test_end(self, logs=None):
        self._validation_seconds.append(time.perf_counter() - self._validation_began)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.epoch_seconds.append(now - self._epoch_began)
        self._epoch_began = now
        self._epochs_done += 1
        fit = self._epochs_that_fit(0)
        if fit < 1 and self._epochs_done == 1:
            warnings.warn(
                f"time_budget={self.seconds:g} s is too short for this training: "
                f"{self._startup_seconds():.1f} s went to preparing the data and building and "
                "compiling the network before the first step, and the first epoch took "
                f"{self.epoch_seconds[0]:.1f} s. Trained one epoch; raise time_budget, or "
                "train on fewer images.",
                TimeBudgetWarning,
                stacklevel=2,
            )
        if self.planned_epochs is not None and self.planned_epochs <= self._epochs_done:
            # The schedule has reached zero: extending it now would train at a rate of 0.
            self.model.stop_training = True
            return
        if fit <= self._epochs_done:
            # Not one more epoch fits (the machine slowed at this epoch's very end): stop,
            # the learning rate short of zero, rather than overrun the budget by an epoch.
            self.model.stop_training = True
            return
        self._set_plan(fit, least=self._epochs_done + 1)


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
