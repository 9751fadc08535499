"""The fidelity schedule of a search: how much training a trial gets before it is judged.

A pruner judges trials at rungs (Hyperband by default: successive halving on epochs in
several brackets, keeping the best third at each rung). With the fidelity
``"epochs+data"`` (the default) a trial's training images grow at the rungs too: until
the first rung it trains on a stratified ``1 / REDUCTION_FACTOR**k`` of its images (k the
number of rungs), and each rung multiplies them by ``REDUCTION_FACTOR``, up to all of
them after the last rung, so the many trials that stop early cost less still. The
validation images stay the same throughout, so scores at a rung compare across trials.
``"epochs"`` trains every epoch on all images.

``make_pruner`` and ``data_schedule`` set the schedule, ``describe_fidelity`` spells it
out (``--show-space``, the study's "fidelity" attribute), and ``fit_in_stages`` trains a
trial along it.

Examples
--------
>>> from sklcifar.search.fidelity import data_schedule
>>> data_schedule("hyperband", 9)  # 2 epochs on 1/9 of the images, 4 on 1/3, 3 on all
[[2, 9], [4, 3], [3, 1]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import optuna
from sklearn.pipeline import Pipeline

from ..time_budget import LearningRatePlan

#: Pruner names; "hyperband" (successive halving on epochs in several brackets) is the default.
PRUNERS = ("hyperband", "halving", "median", "none")
#: What grows along the rungs: epochs alone, or epochs and training images (the default).
FIDELITIES = ("epochs+data", "epochs")
#: Successive halving keeps the best 1 / REDUCTION_FACTOR of the trials at each rung.
REDUCTION_FACTOR = 3
#: Epochs before the first judgement: the fast recipe warms up over 2 epochs, and after
#: one epoch every trial is still near chance, so a first rung there would prune at random.
MIN_EPOCHS = 2


def _min_epochs(epochs: int) -> int:
    return min(MIN_EPOCHS, epochs)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` for trials of ``epochs`` epochs.

    "hyperband" runs successive halving from ``MIN_EPOCHS`` up to ``epochs`` in several
    brackets (each trial falls in one: the first bracket judges after 2 epochs, the next
    after 3, ...), keeping the best third at each rung. "halving" is the first bracket
    alone. "median" stops a trial whose accuracy is below the median of earlier trials at
    the same epoch, from half-way on, after 3 trials ran to the end. "none" never prunes.
    ``describe_fidelity`` spells the schedule out.
    """
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=_min_epochs(epochs),
            max_resource=epochs,
            reduction_factor=REDUCTION_FACTOR,
        )
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=_min_epochs(epochs), reduction_factor=REDUCTION_FACTOR
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 2))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {PRUNERS}; got {name!r}.")


def _rungs(epochs: int, first: int) -> list[int]:
    """Epochs at which successive halving judges a trial, from rung ``first`` on."""
    rungs, step = [], _min_epochs(epochs) * REDUCTION_FACTOR**first
    while step < epochs:
        rungs.append(step)
        step *= REDUCTION_FACTOR
    return rungs


def data_schedule(pruner: str, epochs: int, fidelity: str = "epochs+data") -> list[list[int]]:
    """The stages of a trial's training: ``[epochs, divisor]`` pairs, in order.

    A stage trains its epochs on ``1 / divisor`` of the trial's training images. With
    ``"epochs+data"`` and a pruner with rungs ("hyperband", "halving") the stages end at
    the rungs of the first bracket (the same for every trial); otherwise there is one
    stage on all images.

    Raises
    ------
    ValueError
        For an unknown pruner or fidelity.
    """
    make_pruner(pruner, epochs)  # checks the name
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity must be one of {FIDELITIES}; got {fidelity!r}.")
    rungs = []
    if fidelity == "epochs+data" and pruner in ("hyperband", "halving"):
        rungs = _rungs(epochs, 0)
    ends = [0, *rungs, epochs]
    return [
        [ends[i + 1] - ends[i], REDUCTION_FACTOR ** (len(rungs) - i)] for i in range(len(rungs) + 1)
    ]


def _describe_data(stages: list[list[int]], pruner: str, fidelity: str) -> str:
    if len(stages) == 1:
        if fidelity == "epochs":
            reason = "fidelity epochs"
        elif pruner in ("hyperband", "halving"):
            reason = "no rung comes before the last epoch"
        else:
            reason = f"the {pruner} pruner judges at no rungs"
        return f"training images: all of them in every epoch ({reason})"
    first, parts = 1, []
    for epochs, divisor in stages:
        span = f"epoch {first}" if epochs == 1 else f"epochs {first}-{first + epochs - 1}"
        parts.append(f"{span} on {'all' if divisor == 1 else f'1/{divisor}'}")
        first += epochs
    return "training images grow at the rungs: " + ", ".join(parts) + " of a trial's images"


def describe_fidelity(pruner: str, epochs: int, fidelity: str = "epochs+data") -> dict[str, Any]:
    """The fidelity schedule of a search: which trials get how many epochs and images.

    Returns a JSON-able dict (stored in the study's user attribute "fidelity") with the
    pruner, the resource, its range, the rungs of each bracket, the ``data_stages``
    (``data_schedule``) and a ``text`` of two lines for ``--show-space``.

    Examples
    --------
    >>> describe_fidelity("hyperband", 9)["brackets"]
    [[2, 6], [6]]
    >>> print(describe_fidelity("halving", 6)["text"].splitlines()[1])
    training images grow at the rungs: epochs 1-2 on 1/3, epochs 3-6 on all of a trial's images
    """
    stages = data_schedule(pruner, epochs, fidelity)
    fidelity_facts: dict[str, Any] = {
        "pruner": pruner,
        "fidelity": fidelity,
        "resource": "epochs" if len(stages) == 1 else "epochs and training images",
        "max_epochs": epochs,
        "data_stages": stages,
    }
    if pruner in ("hyperband", "halving"):
        n_brackets = 1
        if pruner == "hyperband":
            # As Optuna counts them.
            n_brackets = math.floor(math.log(epochs / _min_epochs(epochs), REDUCTION_FACTOR)) + 1
        brackets = [_rungs(epochs, first) for first in range(n_brackets)]
        fidelity_facts.update(
            min_epochs=_min_epochs(epochs), reduction_factor=REDUCTION_FACTOR, brackets=brackets
        )
        shown = "; ".join(
            f"bracket {i}: "
            + (f"judged after epochs {', '.join(map(str, rungs))}" if rungs else "never judged")
            for i, rungs in enumerate(brackets)
        )
        text = (
            f"{pruner}: trials of up to {epochs} epochs; at each judging epoch a trial goes "
            f"on only if in the best 1/{REDUCTION_FACTOR} of its bracket so far ({shown})"
        )
    elif pruner == "median":
        text = (
            f"median: trials of up to {epochs} epochs; from epoch {max(1, epochs // 2)}, after "
            "3 trials ran to the end, a trial below the median of earlier ones stops"
        )
    else:
        text = f"none: every trial runs {epochs} epochs"
    fidelity_facts["text"] = text + "\n" + _describe_data(stages, pruner, fidelity)
    return fidelity_facts


class _PlannedLearningRate(keras.callbacks.Callback):
    """Set the optimiser's learning rate before every step from a plan spanning all the
    fits of a staged training (each fit alone would plan for its own steps only)."""

    def __init__(self, plan: LearningRatePlan):
        super().__init__()
        self.plan = plan
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.plan(self.step)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


def _nested_pools(y: np.ndarray, divisors: Sequence[int], seed: int) -> list[np.ndarray]:
    """Row indices of each stage's images: ``1 / divisor`` of every class (at least one
    image), each stage's rows holding the previous stage's."""
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)]
    return [
        np.sort(np.concatenate([rows[: math.ceil(len(rows) / divisor)] for rows in by_class]))
        for divisor in divisors
    ]


def fit_in_stages(
    pipeline: Pipeline,
    X,
    y,
    stages: Sequence[Sequence[int]],
    *,
    random_state: int = 0,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """Fit ``pipeline`` (grayscale step first, an sklcifar classifier last) along a data
    schedule; the number of images each epoch trained on.

    One stage is one ordinary ``fit``. With several, the classifier holds out its
    stratified validation split once (``validation_fraction``; none with ``validation``)
    and trains on growing, nested, stratified shares of the other images, continuing the
    same network (``warm_start``); its validation images stay the same. A warm-up and linear decay
    (the fast recipe's) is planned over the steps of all stages together, so the learning
    rate reaches zero at the last step, as in one fit.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        As ``sklcifar.search.trial.build_pipeline`` makes it; its classifier's
        ``callbacks`` (e.g. pruning) see every epoch of every stage.
    X : array of shape (n_images, height, width, channels)
    y : array of shape (n_images,)
    stages : sequence of [epochs, divisor]
        See ``data_schedule``; they set the classifier's ``epochs``.
    random_state : int, default=0
        Seeds the validation split and the draw of each stage's images.
    validation : (X_val, y_val) or None
        Validation images (as X) and labels, instead of a split of X.

    Returns
    -------
    images_per_epoch : list of int
        Training images of each epoch that ran.
    """
    classifier = pipeline.named_steps["classifier"]
    y = np.asarray(y)
    if validation is None:
        train, val = classifier._validation_split(y, random_state)
        X_val, y_val = X[val], y[val]
    else:
        train, (X_val, y_val) = np.arange(len(y)), validation
    # Validation images as the classifier sees them (grey; the noise step is training's).
    held_out = {
        "classifier__X_val": pipeline.named_steps["grayscale"].fit_transform(X_val),
        "classifier__y_val": np.asarray(y_val),
    }
    if len(stages) == 1:
        classifier.set_params(epochs=stages[0][0])
        pipeline.fit(X[train], y[train], **held_out)
        return [classifier.n_train_] * classifier.epochs_
    pools = [train[rows] for rows in _nested_pools(y[train], [d for _, d in stages], random_state)]
    callbacks = list(classifier.callbacks or [])
    if classifier._setting("lr_schedule") == "warmup_linear":
        batch_size = classifier._setting("batch_size")
        steps = [
            math.ceil(len(rows) / batch_size)
            for (epochs, _), rows in zip(stages, pools, strict=True)
            for _ in range(epochs)
        ]
        ends = np.concatenate([[0], np.cumsum(steps)])
        warmup = np.interp(classifier._setting("warmup_epochs"), np.arange(len(ends)), ends)
        plan = LearningRatePlan(classifier._setting("learning_rate"), round(warmup), int(ends[-1]))
        callbacks.append(_PlannedLearningRate(plan))
        classifier.set_params(lr_schedule="constant")
    classifier.set_params(callbacks=callbacks)
    images = []
    for stage, ((epochs, _), rows) in enumerate(zip(stages, pools, strict=True)):
        classifier.set_params(epochs=epochs, warm_start=stage > 0)
        pipeline.fit(X[rows], y[rows], **held_out)
        images += [classifier.n_train_] * classifier.epochs_
    return images
