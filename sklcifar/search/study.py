"""The study loop: the trial budget shared by workers, progress, and ``run_search``
(the pruners and the fidelity schedule are in ``fidelity``)."""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from .fidelity import data_schedule, describe_fidelity, make_pruner
from .space import BUILTIN_SPACE, _resolve_space, default_trial, load_space, parse_space
from .storage import MAX_RETRY, _experimental_ok, open_storage
from .trial import OBJECTIVES, TrainingProcessDied, check_fixed_values
from .trial import objective as trial_objective


class _RequeueKilledTraining:
    """Study callback: queue again, with the same parameters, a trial whose training
    process was killed (the out-of-memory killer picks the largest process), as a dead
    worker's trial is, at most ``max_retry`` times."""

    def __init__(self, max_retry: int | None):
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and trial.user_attrs.get("training_exitcode") is not None:
            with _experimental_ok():
                RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)(study, trial)


def _finished(counts: Counter) -> int:
    return counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]


def _state_counts(study: optuna.Study) -> Counter:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


class _Budget:
    """Decides whether this worker runs another trial; as a study callback, stops it.

    The study's trial count is shared by all workers: a worker starts a trial only while
    finished, running and queued trials together fall short of ``n_trials`` (or to run a
    queued retry), and waits while other workers run the last ones, since a worker that
    dies leaves its trial to be retried by someone. With a ``timeout`` it starts no trial
    that would likely end after the deadline less ``reserve`` trial durations.
    """

    def __init__(self, n_trials: int, timeout: float | None, reserve: float, max_retry: int | None):
        self.n_trials = n_trials
        self.max_retry = MAX_RETRY if max_retry is None else max_retry
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.reserve = reserve

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def next_step(self, study: optuna.Study) -> str:
        """ "run" a trial, "wait" for other workers' trials, or "stop"."""
        left = self.time_left()
        if left is not None:
            durations = [
                t.duration.total_seconds()
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            ]
            if left <= 0 or left < max(durations, default=0.0) * (1 + self.reserve):
                return "stop"
        with _experimental_ok():
            optuna.storages.fail_stale_trials(study)
        counts = _state_counts(study)
        if _finished(counts) >= self.n_trials:
            return "stop"
        if counts[TrialState.FAIL] > self.n_trials * (self.max_retry + 1):
            # Trials that keep dying (a broken install, memory too small) would otherwise
            # be retried and replaced forever when there is no timeout.
            raise RuntimeError(
                f"{counts[TrialState.FAIL]} trials of study {study.study_name!r} failed; "
                "see their user attributes (training_exitcode) and the worker logs."
            )
        if (
            counts[TrialState.WAITING]
            or _finished(counts) + counts[TrialState.RUNNING] < self.n_trials
        ):
            return "run"
        return "wait"

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.next_step(study) != "run":
            study.stop()


class _ProgressBar:
    """A tqdm bar over the study's finished trials, all workers', as a study callback."""

    def __init__(self, study: optuna.Study, n_trials: int, enabled: bool):
        self.bar = tqdm(total=n_trials, unit="trial", desc=study.study_name, disable=not enabled)
        self(study, None)

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None) -> None:
        counts = _state_counts(study)
        self.bar.n = min(_finished(counts), self.bar.total)
        postfix = {"pruned": counts[TrialState.PRUNED]}
        if counts[TrialState.COMPLETE]:
            postfix["best"] = f"{study.best_value:.4f}"
        self.bar.set_postfix(postfix)

    def close(self) -> None:
        self.bar.close()


def _sampler_seed(seed: int, n_existing: int) -> int:
    # A worker joining a study with trials (a resume, a second machine) must not replay
    # the random start-up suggestions the first worker drew from the same seed.
    if n_existing == 0:
        return seed
    return int(np.random.SeedSequence([seed, n_existing]).generate_state(1)[0])


def _jsonable(value):
    # Study attributes are stored as JSON: compare settings as they read back.
    return json.loads(json.dumps(value))


def _check_storage(storage) -> None:
    # Without heartbeats a trial whose worker died stays RUNNING forever, and the other
    # workers, waiting for the study's last trials, would wait forever with it.
    if isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is None:
        raise ValueError(
            "the storage records no heartbeats, so a dead worker's trial would block the "
            "study forever; open it with sklcifar.search.open_storage(url) (or pass the URL)."
        )


def run_search(
    X,
    y,
    *,
    families: Sequence[str] = ("convnet",),
    fixed: Mapping[str, Any] | None = None,
    space: Mapping | None = None,
    objective: str = "accuracy",
    n_trials: int = 12,
    epochs: int = 6,
    timeout: float | None = None,
    pruner: str = "hyperband",
    fidelity: str = "epochs+data",
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    seed: int = 0,
    reserve: float = 0.0,
    max_retry: int | None = MAX_RETRY,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    show_progress_bar: bool = False,
) -> optuna.Study:
    """Search classifier parameters on images X, y; resume the study if it exists.

    Parameters
    ----------
    X : array of shape (n_images, height, width, channels), uint8
        Training images; each trial holds out a stratified validation split of them
        unless ``validation`` is given.
    y : array of shape (n_images,)
    families : sequence of str, default=("convnet",)
        Classifier families to search (see ``describe_space``).
    fixed : mapping or None
        Estimator parameters held at a value instead of searched (e.g. ``{"filters": 16}``).
    space : mapping or None
        A search-space definition (``sklcifar.search.space``; e.g. from ``load_space``);
        None for ``BUILTIN_SPACE``.
    objective : {"accuracy", "noisy", "balanced"}, default="accuracy"
        What trials maximise (``sklcifar.search.trial.OBJECTIVES``).
    n_trials : int, default=12
        Finished (complete or pruned) trials the study should hold, counting those of
        earlier runs and of other workers.
    epochs : int, default=6
        Epochs of a trial that is never pruned (the fidelity's maximum).
    timeout : float or None
        Seconds for this call; no trial starts that would likely end after it.
    pruner : {"hyperband", "halving", "median", "none"}, default="hyperband"
        See ``sklcifar.search.fidelity.make_pruner``.
    fidelity : {"epochs+data", "epochs"}, default="epochs+data"
        Whether a trial's training images grow at the pruner's rungs along with its
        epochs, or every epoch trains on all of them (``fidelity.data_schedule``;
        ``describe_fidelity`` spells the schedule out).
    validation : (X_val, y_val) or None
        Images (as X, kept out of it) and labels every trial is scored on; None holds out
        the classifiers' stratified ``validation_fraction`` of X. More validation images
        make the trials' scores comparable: with 400, one accuracy has a standard error
        of about 2.4 points, as large as the gaps between good configurations.
    storage : str, optuna storage or None
        A storage URL (opened with ``open_storage``: heartbeats, retries), a storage with
        heartbeats, or None for memory only.
    study_name : str or None
        Name of the study to create or resume; None makes a new unique one.
    seed : int, default=0
        Seeds the TPE sampler and every trial's estimator. Workers started together on
        one study should get different seeds.
    reserve : float, default=0
        Time to keep at the end of ``timeout``, in durations of the longest trial.
    max_retry : int or None, default=MAX_RETRY
        Retries of a trial whose training process was killed (None: no limit); pass the
        same value as to ``open_storage``, which retries trials of dead workers.
    callbacks : sequence of callables
        Extra study callbacks ``f(study, frozen_trial)`` called after each trial.
    show_progress_bar : bool, default=False

    Returns
    -------
    study : optuna.Study
        Maximises the objective. Trials carry user attributes (see ``objective``); the
        study carries its "search_settings" and its "fidelity" schedule.

    Raises
    ------
    ValueError
        For invalid arguments, or a study of that name made with other settings (another
        space, objective, pruner, fidelity, epochs, families or fixed parameters; nothing is
        created then).

    Notes
    -----
    Trials train in processes forked from a server process (multiprocessing's
    "forkserver"), which imports the calling script as ``__mp_main__``: a script calling
    ``run_search`` must do so under ``if __name__ == "__main__":``.
    """
    fixed = dict(fixed or {})
    definition = load_space(BUILTIN_SPACE if space is None else space)
    parsed = parse_space(definition)
    _resolve_space(families, fixed, parsed)
    check_fixed_values(families, fixed)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}; got {objective!r}.")
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1; got {n_trials!r}.")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs!r}.")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive seconds or None; got {timeout!r}.")
    if max_retry is not None and max_retry < 0:
        raise ValueError(f"max_retry must be >= 0 or None; got {max_retry!r}.")
    schedule = describe_fidelity(pruner, epochs, fidelity)
    settings = _jsonable(
        {
            "families": list(families),
            "epochs": epochs,
            "fixed": fixed,
            "pruner": pruner,
            "fidelity": fidelity,
            "objective": objective,
            "space": definition,
        }
    )
    study_pruner = make_pruner(pruner, epochs)
    if isinstance(storage, str):
        storage = open_storage(storage, max_retry=max_retry)
    _check_storage(storage)

    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        pruner=study_pruner,
        load_if_exists=True,
    )
    stored = study.user_attrs.get("search_settings")
    if stored is None and study.get_trials(deepcopy=False):
        raise ValueError(f"study {study.study_name!r} exists but was not made by run_search.")
    if stored is not None and stored != settings:
        differ = [k for k in settings if stored.get(k) != settings[k]]
        shown = "; ".join(
            f"{k}: stored {stored.get(k)!r}, now {settings[k]!r}"
            for k in differ
            if k != "space"  # too long to print; --show-space prints each
        )
        raise ValueError(
            f"study {study.study_name!r} was made with another {', '.join(differ)} "
            f"({shown or 'another search space'}); rerun with the stored settings to resume "
            "it, or choose another study name."
        )
    if not study.get_trials(deepcopy=False):
        # The default configuration first: the search then cannot end with one it judged
        # worse than the package's default classifier.
        start = default_trial(families, fixed, parsed)
        if start is not None:
            study.enqueue_trial(start, user_attrs={"start": "default"}, skip_if_exists=True)
    study.set_user_attr("search_settings", settings)
    study.set_user_attr("fidelity", schedule)
    # The seed is not stored with the study: seed the sampler for this worker.
    study.sampler = optuna.samplers.TPESampler(
        seed=_sampler_seed(seed, len(study.get_trials(deepcopy=False))),
        n_startup_trials=max(2, min(10, n_trials // 3)),
    )

    func = functools.partial(
        trial_objective,
        X=X,
        y=y,
        families=families,
        fixed=fixed,
        epochs=epochs,
        random_state=seed,
        objective=objective,
        space=parsed,
        stages=data_schedule(pruner, epochs, fidelity),
        validation=validation,
    )
    budget = _Budget(n_trials, timeout, reserve, max_retry)
    progress = _ProgressBar(study, n_trials, show_progress_bar)
    poll = getattr(storage, "heartbeat_interval", None) or 1
    requeue = _RequeueKilledTraining(max_retry)
    try:
        while (step := budget.next_step(study)) != "stop":
            if step == "wait":
                time.sleep(poll)
                continue
            study.optimize(
                func,
                timeout=budget.time_left(),
                catch=(TrainingProcessDied,),
                callbacks=[requeue, budget, progress, *callbacks],
            )
    finally:
        progress.close()
    return study
