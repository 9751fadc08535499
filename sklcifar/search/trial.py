"""One trial: fit a suggested pipeline in a training process of its own, relaying its
per-epoch validation score to the Optuna trial that may prune it.

The score is the objective the search maximises (``OBJECTIVES``): the validation accuracy
on clean images ("accuracy"), on the validation images with the seed study's pixel noise
applied to the grey images the classifier sees ("noisy", ``sklcifar.perturbations``), or
their mean ("balanced"). It is computed after every epoch, so pruning works for each.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import resource
import signal
import socket
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import optuna
from optuna.trial import Trial
from sklearn.pipeline import Pipeline

from ..perturbations import SEED_NOISE_FRACTION, pixel_noise
from ..pipelines import make_pipeline
from ..transformers import PixelNoise
from .fidelity import fit_in_stages
from .space import NOISE_FRACTION, Param, _parameters, suggest_params

#: What a trial maximises, by name: the epoch-log key it reads.
OBJECTIVES = {
    "accuracy": "val_accuracy",
    "noisy": "val_noisy_accuracy",
    "balanced": "val_balanced_accuracy",
}


def objective_score(objective: str, clean: float, noisy: float) -> float:
    """What ``objective`` makes of a clean accuracy and one under the seed's noise.

    Examples
    --------
    >>> from sklcifar.search.trial import objective_score
    >>> objective_score("balanced", 0.8, 0.6)
    0.7
    """
    return {"accuracy": clean, "noisy": noisy, "balanced": (clean + noisy) / 2}[objective]


def build_pipeline(family: str, params: Mapping[str, Any], **extra) -> Pipeline:
    """The grayscale pipeline of ``family`` with estimator ``params`` and ``extra``; a
    ``noise_fraction`` above 0 puts a ``PixelNoise`` step on the grey images in front of
    the classifier (drawn afresh every epoch).

    Examples
    --------
    >>> from sklcifar.search.trial import build_pipeline
    >>> list(build_pipeline("convnet", {"noise_fraction": 0.03}).named_steps)
    ['grayscale', 'noise', 'classifier']
    """
    params = dict(params)
    fraction = params.pop(NOISE_FRACTION, 0.0)
    pipeline = make_pipeline(family, **params, **extra)
    if fraction:
        noise = PixelNoise(fraction, random_state=extra.get("random_state"))
        pipeline.steps.insert(len(pipeline.steps) - 1, ("noise", noise))
    return pipeline


def check_fixed_values(families: Sequence[str], fixed: Mapping[str, Any]) -> None:
    """Refuse fixed values a family's pipeline would refuse when a trial fits it.

    Each family's pipeline is built with the fixed parameters it has (the others at their
    defaults) and its steps check their parameters as ``fit`` does, so that a bad value
    stops the search before any data is loaded rather than failing every trial. Run
    ``space._resolve_space`` first: it checks the names.

    Parameters
    ----------
    families : sequence of str
        Classifier families searched.
    fixed : mapping
        Estimator parameters (and ``noise_fraction``) held at a value.

    Raises
    ------
    ValueError
        Naming the family and the estimator's own message about the value.

    Examples
    --------
    >>> from sklcifar.search.trial import check_fixed_values
    >>> check_fixed_values(["convnet"], {"filters": -4})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: fixed parameters ['filters'] are invalid for the 'convnet' ...Got -4 instead.
    """
    for family in families:
        own = {name: value for name, value in fixed.items() if name in _parameters(family)}
        if not own:
            continue
        try:
            # Past the grayscale step, which no fixed value reaches (and which has no checks).
            for _, step in build_pipeline(family, own).steps[1:]:
                step._validate_params()
        # scikit-learn's InvalidParameterError is both; the architecture checks raise either.
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"fixed parameters {sorted(own)} are invalid for the {family!r} classifier: {error}"
            ) from None


class NoisyValidation(keras.callbacks.Callback):
    """Add the validation accuracy under the seed's pixel noise to the epoch logs.

    Reads the validation images the classifier held out (grey, as it sees them), applies
    ``pixel_noise`` once with a fixed seed, and after every epoch adds
    ``val_noisy_accuracy`` and ``val_balanced_accuracy`` (the mean with the clean
    ``val_accuracy``) to the logs, which later callbacks and ``history_`` see.

    Parameters
    ----------
    classifier : sklcifar.base.ImageClassifier
        The classifier being fitted (with a validation split).
    fraction : float, default=SEED_NOISE_FRACTION
    random_state : int, default=0
    """

    def __init__(self, classifier, fraction: float = SEED_NOISE_FRACTION, random_state: int = 0):
        super().__init__()
        self.classifier = classifier
        self.fraction = fraction
        self.random_state = random_state

    def on_train_begin(self, logs=None):
        rows = getattr(self.classifier, "_validation_rows", None)
        if rows is None:
            raise ValueError(
                "the noisy and balanced objectives need a validation split "
                "(validation_fraction > 0)."
            )
        images, labels = rows
        noisy = pixel_noise(images, self.fraction, random_state=self.random_state)
        self._images = self.classifier.feature_encoder_.transform(noisy)
        self._labels = np.asarray(self.classifier.target_encoder_.transform(labels)).ravel()

    def on_epoch_end(self, epoch, logs=None):
        proba = self.model.predict(self._images, batch_size=512, verbose=0)
        noisy = float(np.mean(np.argmax(proba, axis=1) == self._labels))
        logs["val_noisy_accuracy"] = noisy
        logs["val_balanced_accuracy"] = objective_score(
            "balanced", float(logs["val_accuracy"]), noisy
        )


class _ValidationClock(keras.callbacks.Callback):
    """Seconds from each validation pass to the end of the epoch's callbacks before this
    one (``NoisyValidation``'s pass): a refit trains without them, so its speed is the
    trial's training time without them."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self._began = None

    def on_test_begin(self, logs=None):
        self._began = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self._began is not None:
            self.seconds += time.monotonic() - self._began
            self._began = None


class KerasPruningCallback(keras.callbacks.Callback):
    """Report a validation metric to an Optuna trial after each epoch; prune when told.

    Steps are epochs completed (1, 2, ...), the resource Hyperband counts, over all the
    fits the callback sees (a trial trained in stages, ``fidelity.fit_in_stages``).

    Parameters
    ----------
    trial : optuna.trial.Trial
    monitor : str, default="val_accuracy"
        A key of the epoch logs.
    """

    def __init__(self, trial: Trial, monitor: str = "val_accuracy"):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.step = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"KerasPruningCallback monitors {self.monitor!r}, but the epoch logs hold "
                f"{sorted(logs)}; is a validation split set (validation_fraction > 0)?"
            )
        value = float(logs[self.monitor])
        self.step += 1
        self.trial.report(value, step=self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor}={value:.4f} after epoch {self.step}")


class _ParentTrial:
    """The trial as a training process sees it: reports and pruning questions travel over
    a pipe to the search process, which holds the real trial."""

    def __init__(self, conn):
        self.conn = conn

    def report(self, value: float, step: int) -> None:
        self.conn.send(("report", value, step))

    def should_prune(self) -> bool:
        self.conn.send(("should_prune",))
        return self.conn.recv()


def _train(conn, family: str, params: dict, settings: dict, X, y, validation) -> None:
    """Body of a training process: fit the pipeline, send its history or what stopped it.

    When the search process is gone the next message fails, and this process ends
    quietly (no traceback): it has nobody left to report to.
    """
    # Ctrl-C reaches the whole process group; the search process stops this one itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        objective = settings["objective"]
        pruning = KerasPruningCallback(_ParentTrial(conn), monitor=OBJECTIVES[objective])
        seed = settings["random_state"] or 0
        pipeline = build_pipeline(
            family, params, random_state=settings["random_state"], callbacks=[pruning]
        )
        classifier = pipeline.named_steps["classifier"]
        validation_clock = _ValidationClock()
        callbacks = [validation_clock, pruning]
        if objective != "accuracy":
            callbacks.insert(0, NoisyValidation(classifier, random_state=seed))
        classifier.set_params(callbacks=callbacks)
        start = time.monotonic()
        images = fit_in_stages(
            pipeline, X, y, settings["stages"], random_state=seed, validation=validation
        )
        seconds = time.monotonic() - start
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        facts = {
            "peak_memory_mib": round(peak_mib),
            "train_images": int(classifier.n_train_),
            "images_per_epoch": [int(n) for n in images],
            "epoch_seconds": (seconds - validation_clock.seconds)
            / len(classifier.history_["loss"]),
            "validation_images": len(validation[1])
            if validation is not None
            else len(classifier._validation_split(np.asarray(y), seed)[1]),
        }
        conn.send(("done", classifier.history_, facts))
    except (BrokenPipeError, ConnectionError, EOFError):
        os._exit(1)  # the search process is gone
    except optuna.TrialPruned as pruned:
        _send_or_exit(conn, ("pruned", str(pruned)))
    except Exception as error:
        try:
            conn.send(("error", error, traceback.format_exc()))
        except (pickle.PicklingError, TypeError, AttributeError):
            _send_or_exit(conn, ("error", RuntimeError(repr(error)), traceback.format_exc()))
        except (BrokenPipeError, ConnectionError):
            os._exit(1)


def _send_or_exit(conn, message) -> None:
    try:
        conn.send(message)
    except (BrokenPipeError, ConnectionError):
        os._exit(1)


class TrainingProcessDied(RuntimeError):
    """A trial's training process ended without an answer (killed, out of memory)."""


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a training process, chained to it."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


@functools.cache
def _process_context() -> multiprocessing.context.BaseContext:
    # Each trial trains in a process of its own: TensorFlow keeps the variables of every
    # network a process has trained, clear_session() or not (keras-team/keras#17458), so
    # one process would grow by about three times the weights per trial. Training
    # processes fork from a server that imported TensorFlow once, so each starts in a
    # fraction of a second.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _fit_in_process(
    trial: Trial, family: str, params: dict, settings: dict, X, y, validation
) -> tuple[dict, dict]:
    """Train in a new process, answering its reports; (history, facts about the run)."""
    context = _process_context()
    conn, child_conn = context.Pipe()
    process = context.Process(
        target=_train,
        args=(child_conn, family, params, settings, X, y, validation),
        daemon=True,
    )
    process.start()
    child_conn.close()
    answered = False
    try:
        while True:
            try:
                kind, *body = conn.recv()
            except EOFError:
                process.join()
                trial.set_user_attr("training_exitcode", process.exitcode)
                raise TrainingProcessDied(
                    f"the training process of trial {trial.number} ended with exit code "
                    f"{process.exitcode} (killed, or out of memory?)"
                ) from None
            if kind == "report":
                trial.report(*body)
            elif kind == "should_prune":
                conn.send(trial.should_prune())
            else:
                answered = True
                break
    finally:
        conn.close()
        if not answered:  # interrupted: stop training now
            process.kill()
        process.join()
    if kind == "pruned":
        raise optuna.TrialPruned(body[0])
    if kind == "error":
        error, text = body
        raise error from _RemoteTraceback(text)
    return body[0], body[1]


def objective(
    trial: Trial,
    X,
    y,
    *,
    families: Sequence[str] = ("convnet",),
    fixed: Mapping[str, Any] | None = None,
    epochs: int = 6,
    random_state: int | None = 0,
    objective: str = "accuracy",
    space: Mapping[str, tuple[Param, ...]] | None = None,
    stages: Sequence[Sequence[int]] | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Fit one suggested pipeline and return its best validation score.

    The pipeline trains in a process of its own, so that memory stays flat over a long
    search (TensorFlow does not free the networks a process has trained); it reports to
    ``trial`` after each epoch and stops when the trial is to be pruned. Every trial is
    scored on the same validation images: ``validation`` if given, else the same
    stratified split of X (same ``random_state``).

    The trial's user attributes record the ``classifier`` family, its
    ``estimator_params``, the ``best_epoch``, the validation accuracy clean and noisy at
    that epoch, the ``worker`` (host and process), the training process's
    ``peak_memory_mib``, ``train_images`` (in the last epoch), ``images_per_epoch``,
    ``epoch_seconds`` (the mean, validation passes left out: for sizing a refit, which has
    none) and ``validation_images`` (for the score's standard error).

    Parameters
    ----------
    trial : optuna.trial.Trial
    X : array of shape (n_images, height, width, channels), uint8
    y : array of shape (n_images,)
    families, fixed, space
        See ``suggest_params``.
    epochs : int
        Epochs per trial (the pruners' maximum resource).
    random_state : int or None
        Seeds the validation split, weights, shuffling and the validation noise.
    objective : {"accuracy", "noisy", "balanced"}, default="accuracy"
        See ``OBJECTIVES``.
    stages : sequence of [epochs, divisor] or None
        The data schedule (``sklcifar.search.fidelity.data_schedule``), its epochs adding
        up to ``epochs``; None trains every epoch on all images.
    validation : (X_val, y_val) or None
        Validation images (as X) and labels to score every trial on, kept out of X; None
        holds out the classifier's ``validation_fraction`` of X.

    Returns
    -------
    score : float

    Raises
    ------
    optuna.TrialPruned
        When the pruner stopped the trial.
    TrainingProcessDied
        When the training process was killed.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}; got {objective!r}.")
    stages = [[epochs, 1]] if stages is None else [list(stage) for stage in stages]
    if sum(n for n, _ in stages) != epochs:
        raise ValueError(f"stages {stages} must add up to epochs={epochs} epochs.")
    family, params = suggest_params(trial, families, fixed, space)
    trial.set_user_attr("classifier", family)
    trial.set_user_attr("estimator_params", params)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("training_exitcode", None)
    settings = {"objective": objective, "stages": stages, "random_state": random_state}
    history, facts = _fit_in_process(trial, family, params, settings, X, y, validation)
    for name, value in facts.items():
        trial.set_user_attr(name, value)
    scores = history[OBJECTIVES[objective]]
    best = int(np.argmax(scores))
    trial.set_user_attr("best_epoch", best + 1)
    trial.set_user_attr("val_accuracy", history["val_accuracy"][best])
    if "val_noisy_accuracy" in history:
        trial.set_user_attr("val_noisy_accuracy", history["val_noisy_accuracy"][best])
    return float(scores[best])
