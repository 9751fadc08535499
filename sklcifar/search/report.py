"""Results of a study: the best parameters, the refit pipeline, and the files
``write_search_report`` writes."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sklearn.metrics import accuracy_score
from sklearn.pipeline import Pipeline

from ..files import atomic_path, atomic_write
from ..perturbations import SEED_NOISE_FRACTION, pixel_noise
from .storage import _experimental_ok
from .trial import build_pipeline, objective_score

#: A time-budgeted refit trains a configuration for at least this share of the epochs its
#: trial had: with fewer passes it is no longer the model the trials judged (a wide network
#: that won after 6 epochs on a subset may get one epoch of the whole split in the budget).
REFIT_MIN_EPOCH_SHARE = 0.5


def best_estimator_params(
    study: optuna.Study, trial: FrozenTrial | None = None
) -> tuple[str, dict[str, Any]]:
    """The classifier family and parameters (fixed ones included) of ``trial``, by default
    the best trial.

    ``sklcifar.search.trial.build_pipeline(family, params)`` takes them as they are;
    without a ``noise_fraction`` so do ``make_pipeline(family, **params)`` and
    ``set_params(**params)``.
    """
    trial = study.best_trial if trial is None else trial
    return trial.user_attrs["classifier"], dict(trial.user_attrs["estimator_params"])


def estimated_refit_epochs(trial: FrozenTrial, n_images: int, time_budget: float) -> float:
    """Epochs over ``n_images`` that ``time_budget`` seconds give ``trial``'s configuration,
    at the training speed its trial measured (start-up included, so an underestimate)."""
    images = trial.user_attrs["images_per_epoch"]
    seconds = trial.user_attrs["epoch_seconds"] * len(images)
    return time_budget * sum(images) / seconds / n_images


def standard_error(trial: FrozenTrial) -> float | None:
    """The standard error of ``trial``'s validation score, ``sqrt(p (1 - p) / n)`` over its
    ``n`` validation images; None when the trial did not record them."""
    n = trial.user_attrs.get("validation_images")
    if not n or trial.value is None:
        return None
    return _accuracy_error(trial.value, n)


def _accuracy_error(accuracy: float, n_images: int) -> float:
    return math.sqrt(accuracy * (1 - accuracy) / n_images)


def refit_trial(
    study: optuna.Study, *, n_images: int | None = None, time_budget: float | None = None
) -> FrozenTrial:
    """The trial whose configuration a refit should train.

    Among the complete trials that the refit can train (with a time budget, those the
    budget trains for at least ``REFIT_MIN_EPOCH_SHARE`` of the study's trial epochs over
    ``n_images``, ``estimated_refit_epochs``; else all), the best one, unless the study's
    default trial (the package's default classifier, which the study tries first) is
    among them and scores within one standard error of it (``standard_error``): a
    one-standard-error rule, since a configuration judged on a small subset for a few
    epochs must beat the default clearly to be trusted on the whole split. The best
    trial when the budget trains none.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if time_budget is not None and n_images is not None:
        needed = REFIT_MIN_EPOCH_SHARE * study.user_attrs["search_settings"]["epochs"]
        complete = [
            t for t in complete if estimated_refit_epochs(t, n_images, time_budget) >= needed
        ]
    if not complete:
        return study.best_trial
    best = max(complete, key=lambda t: t.value)
    default = default_complete_trial(study)
    if default is not None and default.number not in {t.number for t in complete}:
        default = None  # the budget cannot train it
    error = standard_error(best)
    if default is not None and error is not None and best.value - default.value <= error:
        return default
    return best


def default_complete_trial(study: optuna.Study) -> FrozenTrial | None:
    """The study's complete trial of the package's default configuration (the one
    ``run_search`` enqueues first), or None."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return next((t for t in complete if t.user_attrs.get("start") == "default"), None)


def clean_and_noisy_accuracy(
    model: Pipeline, X, y, *, noise_fraction: float = SEED_NOISE_FRACTION, seed: int = 0
) -> dict[str, float]:
    """Accuracy of a fitted grayscale pipeline on clean images X and with the seed's pixel
    noise on their grey copies (``sklcifar.perturbations.pixel_noise``)."""
    grey = model.named_steps["grayscale"].transform(X)
    noisy = pixel_noise(grey, noise_fraction, random_state=seed)
    return {
        "clean": float(accuracy_score(y, model.predict(X))),
        "pixel_noise": float(accuracy_score(y, model.predict(noisy))),
    }


def duel(
    study: optuna.Study,
    default: FrozenTrial,
    challenger: FrozenTrial,
    X,
    y,
    validation: tuple[np.ndarray, np.ndarray],
    *,
    seconds: float,
    random_state: int | None = 0,
    noise_fraction: float = SEED_NOISE_FRACTION,
) -> dict[str, Any]:
    """Train the default configuration and ``challenger``'s on the whole training split
    for ``seconds`` each, and keep the challenger only if it wins by more than a standard
    error.

    Trials on a small subset for a few epochs judge configurations in another regime than
    the refit's (measured: a ConvNet that beat the default by two standard errors in its
    trial lost 7.5 points to it after 12 minutes on the whole split; small subsets favour
    small batches). The duel asks the refit's question on the refit's data, at the same
    wall time for both (the classifiers' ``time_budget``), only shorter; each is scored on
    the study's validation images by the study's objective.

    Parameters
    ----------
    study : optuna.Study
        A study made by ``run_search``.
    default : FrozenTrial
        The trial of the default configuration (``default_complete_trial``).
    challenger : FrozenTrial
        The trial whose configuration would be refit instead of the default.
    X, y
        Training images (the train split without the validation images) and labels.
    validation : (X_val, y_val)
        The images and labels the study's trials were scored on.
    seconds : float
        Training time of each contestant, learning-rate schedule included.
    random_state : int or None
    noise_fraction : float
        Pixel noise of the "noisy" and "balanced" objectives.

    Returns
    -------
    result : dict
        ``seconds``, ``objective``, ``default`` and ``challenger`` (trial number, epochs,
        clean and noisy validation accuracy, score), ``standard_error`` of the
        challenger's score and the ``winner``'s trial number.
    """
    objective = study.user_attrs["search_settings"]["objective"]
    X_val, y_val = validation
    contestants = {}
    for name, trial in (("default", default), ("challenger", challenger)):
        family, params = best_estimator_params(study, trial)
        model = build_pipeline(
            family, params, time_budget=seconds, validation_fraction=0.0, random_state=random_state
        ).fit(X, y)
        accuracy = clean_and_noisy_accuracy(
            model, X_val, y_val, noise_fraction=noise_fraction, seed=random_state or 0
        )
        contestants[name] = {
            "trial": trial.number,
            "epochs": len(model.named_steps["classifier"].history_["loss"]),
            "validation_accuracy": accuracy,
            "score": objective_score(objective, accuracy["clean"], accuracy["pixel_noise"]),
        }
    score = contestants["challenger"]["score"]
    error = _accuracy_error(score, len(y_val))
    wins = score - contestants["default"]["score"] > error
    return {
        "seconds": seconds,
        "objective": objective,
        **contestants,
        "standard_error": error,
        "winner": (challenger if wins else default).number,
    }


def refit_best(
    study: optuna.Study,
    X,
    y,
    *,
    epochs: int | None = None,
    time_budget: float | None = None,
    random_state: int | None = 0,
    trial: FrozenTrial | None = None,
) -> Pipeline:
    """Fit a trial's pipeline (by default ``refit_trial``'s choice) on all of X, y.

    The trials' validation images are trained on too (``validation_fraction=0``), so
    training length is set, not found by early stopping: ``time_budget`` seconds (the
    classifiers' own ``time_budget``: the whole learning-rate schedule fits them, at most
    ``epochs`` epochs if given), or else ``epochs``, or else the best trial's
    ``best_epoch``.

    Parameters
    ----------
    study : optuna.Study
        A study made by ``run_search`` with at least one complete trial.
    X, y
        Training images and labels: the whole training split, or the search's images.
    epochs : int or None
    time_budget : float or None
        Seconds.
    random_state : int or None
    trial : FrozenTrial or None
        The trial to refit; None for ``refit_trial(study, n_images=len(y),
        time_budget=time_budget)``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Fitted.
    """
    if trial is None:
        trial = refit_trial(study, n_images=len(y), time_budget=time_budget)
    family, params = best_estimator_params(study, trial)
    if epochs is None and time_budget is None:
        epochs = trial.user_attrs["best_epoch"]
    return build_pipeline(
        family,
        params,
        epochs=epochs,
        time_budget=time_budget,
        validation_fraction=0.0,
        random_state=random_state,
    ).fit(X, y)


def _write_trials_csv(study: optuna.Study, path: Path) -> None:
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for t in trials for name in t.params})
    fields = ["number", "state", "value", "best_epoch", "epochs_reported", "duration_s"]
    fields += ["validation_images"]
    fields += ["retry_of", "worker", "classifier", *(f"param_{name}" for name in names)]
    with atomic_write(path, "w", overwrite=True) as file, _experimental_ok():
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for t in trials:
            writer.writerow(
                {
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value,
                    "best_epoch": t.user_attrs.get("best_epoch"),
                    "epochs_reported": len(t.intermediate_values),
                    "validation_images": t.user_attrs.get("validation_images"),
                    "duration_s": None if t.duration is None else t.duration.total_seconds(),
                    "retry_of": RetryHeartbeatStaleTrialCallback.retried_trial_number(t),
                    "worker": t.user_attrs.get("worker"),
                    "classifier": t.user_attrs.get("classifier"),
                    **{f"param_{name}": value for name, value in t.params.items()},
                }
            )


#: Optuna's matplotlib plots written by write_search_report, and the complete trials each
#: needs (importances compare at least two).
PLOTS = {
    "optimization_history": (optuna.visualization.matplotlib.plot_optimization_history, 1),
    "param_importances": (optuna.visualization.matplotlib.plot_param_importances, 2),
    "parallel_coordinate": (optuna.visualization.matplotlib.plot_parallel_coordinate, 1),
}


def write_search_report(
    study: optuna.Study, folder: str | Path, *, plots: bool = True
) -> dict[str, Path]:
    """Write a study's best parameters, trials and plots into ``folder``.

    Files (replaced atomically): ``best_params.json`` (family, parameters, best epoch,
    objective, validation score and accuracies, trial number), ``trials.csv`` (one row
    per trial: state, value, epochs reported, duration, the trial it retries, worker,
    parameters) and, with ``plots``,
    ``optimization_history.png``, ``param_importances.png`` and
    ``parallel_coordinate.png`` (each when the study has enough complete trials).

    Returns
    -------
    paths : dict of str to Path
        The files written, by name without suffix.
    """
    import matplotlib.pyplot as plt

    folder = Path(folder)
    paths = {"trials": folder / "trials.csv"}
    _write_trials_csv(study, paths["trials"])
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if n_complete:
        family, params = best_estimator_params(study)
        attrs = study.best_trial.user_attrs
        best = {
            "classifier": family,
            "params": params,
            "best_epoch": attrs["best_epoch"],
            "objective": study.user_attrs["search_settings"]["objective"],
            "validation_score": study.best_value,
            "validation_accuracy": attrs["val_accuracy"],
            "validation_noisy_accuracy": attrs.get("val_noisy_accuracy"),
            "trial": study.best_trial.number,
            "study_name": study.study_name,
        }
        paths["best_params"] = folder / "best_params.json"
        with atomic_write(paths["best_params"], "w", overwrite=True) as file:
            file.write(json.dumps(best, indent=2) + "\n")
    for name, (plot, needed) in PLOTS.items():
        if not plots or n_complete < needed:
            continue
        with _experimental_ok():
            ax = plot(study)
        paths[name] = folder / f"{name}.png"
        with atomic_path(paths[name], overwrite=True) as tmp:
            ax.figure.savefig(tmp, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
    return paths
