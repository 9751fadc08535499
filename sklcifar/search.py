"""Hyper-parameter search over sklcifar classifiers with Optuna.

``run_search(X, y, ...)`` tunes classifier families on training images. Each trial
suggests the estimator's own parameters from ``SEARCH_SPACES`` (so ``best_params`` go
straight into ``set_params``) and fits the grayscale pipeline in a process of its own
(TensorFlow never frees a network it trained, so memory stays flat only this way). The
estimator holds out a stratified validation split (``StratifiedShuffleSplit``, its
``validation_fraction``); the validation accuracy is reported after every epoch, and the
trial is pruned when the pruner (median by default, Hyperband on request) judges it
hopeless.

Studies live in an Optuna RDB storage (``open_storage``): an SQLite file on one machine,
or PostgreSQL (or MySQL) when workers on several machines share one study by name.
Rerunning a search resumes its study. Workers record a heartbeat; once the heartbeat of
a trial whose worker died (killed, out of memory) is stale, the trial is marked failed
and queued again with the same parameters, as is a trial whose training process was
killed (the out-of-memory killer's choice). Together the workers finish ``n_trials``
trials (complete or pruned), and each waits for the others' last trials, so the study
ends complete even when a worker dies near the end.

``refit_best`` refits the best pipeline on all the search's images, and
``write_search_report`` writes the best parameters (JSON), every trial (CSV) and Optuna's
plots (PNG). ``benchmarks/search.py`` is the command line over these functions.

Examples
--------
>>> from sklcifar.search import describe_space
>>> print(describe_space().splitlines()[1])
  depth              int 3..5
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import multiprocessing
import os
import pickle
import resource
import socket
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import sqlalchemy
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, Trial, TrialState
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from .architectures import DROPOUT_PLACEMENTS, KERNEL_ORDERS, L2_PLACEMENTS
from .pipelines import CLASSIFIERS, make_pipeline

__all__ = [
    "MAX_RETRY",
    "PRUNERS",
    "CONVNET_SPACE",
    "SEARCH_SPACES",
    "KerasPruningCallback",
    "TrainingProcessDied",
    "Param",
    "best_estimator_params",
    "check_storage_url",
    "describe_space",
    "make_pruner",
    "objective",
    "open_storage",
    "refit_best",
    "run_search",
    "suggest_params",
    "write_search_report",
]


# ------------------------------------------------------------------------- search space
@dataclass(frozen=True)
class Param:
    """One searched estimator parameter and its Optuna distribution.

    Parameters
    ----------
    name : str
        The estimator's parameter name, so a trial's params go straight into ``set_params``.
    distribution : optuna.distributions.BaseDistribution
        Int, float (``log=True`` for a log scale) or categorical.
    when : (str, tuple) or None
        ``(other, values)``: suggest only when the parameter ``other``, listed earlier,
        took one of ``values`` (e.g. a dropout rate only where dropout is placed).
    """

    name: str
    distribution: BaseDistribution
    when: tuple[str, tuple] | None = None

    def suggest(self, trial: Trial) -> Any:
        """Ask ``trial`` for a value (the stored one when the trial is a retry)."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            return trial.suggest_categorical(self.name, dist.choices)
        if isinstance(dist, IntDistribution):
            return trial.suggest_int(self.name, dist.low, dist.high, step=dist.step, log=dist.log)
        return trial.suggest_float(self.name, dist.low, dist.high, step=dist.step, log=dist.log)

    def describe(self) -> str:
        """One line: name, range or choices, and the condition."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            text = "one of " + ", ".join(map(str, dist.choices))
        else:
            kind = "int" if isinstance(dist, IntDistribution) else "float"
            text = f"{kind} {dist.low:g}..{dist.high:g}"
            if dist.step not in (None, 1):
                text += f" step {dist.step:g}"
            if dist.log:
                text += " (log scale)"
        if self.when is not None:
            text += f"  if {self.when[0]} in {', '.join(map(str, self.when[1]))}"
        return f"{self.name:<18} {text}"


def _training_space(
    learning_rate: tuple[float, float], batch_size: tuple[int, int]
) -> tuple[Param, ...]:
    """Learning rate and batch size (both on a log scale) in ranges that suit an optimiser."""
    return (
        Param("learning_rate", FloatDistribution(*learning_rate, log=True)),
        Param("batch_size", IntDistribution(*batch_size, log=True)),
    )


# The seed study's design questions as ConvNetClassifier parameters: depth from m1 (3
# blocks) to m12 (5), kernel order (m4 against m5), where dropout goes and how strong it
# is (m6-m12), where L2 goes and how strong it is (m8-m11); Adam's learning rate and the
# batch size. Filters and dense widths keep the estimator's defaults.
CONVNET_SPACE: tuple[Param, ...] = (
    Param("depth", IntDistribution(3, 5)),
    Param("kernel_order", CategoricalDistribution(KERNEL_ORDERS)),
    Param("dropout_placement", CategoricalDistribution(DROPOUT_PLACEMENTS)),
    Param("conv_dropout", FloatDistribution(0.1, 0.5), when=("dropout_placement", ("conv", "all"))),
    Param(
        "dense_dropout", FloatDistribution(0.1, 0.6), when=("dropout_placement", ("dense", "all"))
    ),
    Param("l2_placement", CategoricalDistribution(L2_PLACEMENTS)),
    Param("l2", FloatDistribution(1e-6, 1e-2, log=True), when=("l2_placement", ("dense", "all"))),
    *_training_space(learning_rate=(1e-4, 1e-2), batch_size=(32, 128)),
)

# FastNet and ResNet train with the fast recipe (Nesterov SGD, warm-up then linear decay,
# decoupled weight decay), around its learning rate 0.2 and batch 512.
_FAST_TRAINING: tuple[Param, ...] = (
    Param("weight_decay", FloatDistribution(1e-5, 1e-3, log=True)),
    *_training_space(learning_rate=(0.02, 0.5), batch_size=(128, 512)),
)
_WIDTH = Param("width", CategoricalDistribution((8, 16, 32)))

#: Searchable classifier families (names in ``sklcifar.pipelines.CLASSIFIERS``) and their
#: parameters. A new family joins the search by adding its entry here. A name shared by
#: families must keep one kind of distribution (and the same choices when categorical):
#: Optuna allows one per parameter name in a study.
SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "convnet": CONVNET_SPACE,
    "fastnet": (_WIDTH, *_FAST_TRAINING),
    "resnet": (Param("depth", IntDistribution(8, 20, step=6)), _WIDTH, *_FAST_TRAINING),
}

# Set by the search itself for every trial, so not searchable or fixable.
_RESERVED = ("epochs", "random_state", "callbacks", "verbose")


def _resolve_space(
    families: Sequence[str], fixed: Mapping[str, Any]
) -> dict[str, tuple[Param, ...]]:
    """Check families and fixed parameters; each family's searched parameters."""
    families = list(families)
    if not families or len(set(families)) != len(families):
        raise ValueError(f"families must be distinct family names; got {families!r}.")
    searchable = sorted(set(SEARCH_SPACES) & set(CLASSIFIERS))
    unknown = [f for f in families if f not in searchable]
    if unknown:
        raise ValueError(
            f"families {unknown} cannot be searched: searchable families are {searchable} "
            "(a family needs a classifier in sklcifar.pipelines.CLASSIFIERS and a search "
            "space in sklcifar.search.SEARCH_SPACES)."
        )
    reserved = sorted(set(fixed) & set(_RESERVED))
    if reserved:
        raise ValueError(f"{reserved} are set by the search itself and cannot be fixed.")
    for family in families:
        valid = CLASSIFIERS[family]().get_params(deep=False)
        bad = sorted(set(fixed) - set(valid))
        if bad:
            raise ValueError(
                f"fixed parameters {bad} are not parameters of the {family!r} classifier "
                f"({CLASSIFIERS[family].__name__}); valid names: {sorted(valid)}."
            )
    spaces = {
        family: tuple(p for p in SEARCH_SPACES[family] if p.name not in fixed)
        for family in families
    }
    seen: dict[str, tuple[str, BaseDistribution]] = {}
    for family, params in spaces.items():
        for param in params:
            other, dist = seen.setdefault(param.name, (family, param.distribution))
            try:
                check_distribution_compatibility(dist, param.distribution)
            except ValueError:
                raise ValueError(
                    f"{param.name!r} is searched as {dist} for {other!r} but as "
                    f"{param.distribution} for {family!r}; one study needs one kind of "
                    "distribution per name. Search these families separately, or fix "
                    f"{param.name!r} with a value."
                ) from None
    return spaces


def describe_space(
    families: Sequence[str] = ("convnet",), fixed: Mapping[str, Any] | None = None
) -> str:
    """The searched parameters of each family, one per line, as ``--show-space`` prints them.

    Parameters
    ----------
    families : sequence of str
        Classifier families to search (keys of ``SEARCH_SPACES``).
    fixed : mapping or None
        Estimator parameters held at a value instead of searched.

    Returns
    -------
    text : str
    """
    fixed = dict(fixed or {})
    lines = []
    if len(families) > 1:
        lines.append(f"classifier           one of {', '.join(families)}")
    for family, params in _resolve_space(families, fixed).items():
        lines.append(f"{family}:")
        lines += [f"  {p.describe()}" for p in params]
    if fixed:
        lines.append("fixed:")
        lines += [f"  {name:<18} {value!r}" for name, value in sorted(fixed.items())]
    return "\n".join(lines)


def suggest_params(
    trial: Trial, families: Sequence[str] = ("convnet",), fixed: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Suggest a classifier family and its estimator parameters for ``trial``.

    With several families the family is itself a categorical parameter, "classifier".

    Returns
    -------
    family : str
    params : dict
        Estimator parameters: the suggested ones and the ``fixed`` ones.
    """
    fixed = dict(fixed or {})
    spaces = _resolve_space(families, fixed)
    family = (
        families[0] if len(families) == 1 else trial.suggest_categorical("classifier", families)
    )
    params = dict(fixed)
    for param in spaces[family]:
        if param.when is None or params.get(param.when[0]) in param.when[1]:
            params[param.name] = param.suggest(trial)
    return family, params


# -------------------------------------------------------------------------------- trials
class KerasPruningCallback(keras.callbacks.Callback):
    """Report a validation metric to an Optuna trial after each epoch; prune when told.

    Steps are epochs completed (1, 2, ...), the resource Hyperband counts.

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

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"KerasPruningCallback monitors {self.monitor!r}, but the epoch logs hold "
                f"{sorted(logs)}; is a validation split set (validation_fraction > 0)?"
            )
        value = float(logs[self.monitor])
        self.trial.report(value, step=epoch + 1)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor}={value:.4f} after epoch {epoch + 1}")


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


def _train(conn, family: str, params: dict, epochs: int, random_state, X, y) -> None:
    """Body of a training process: fit the pipeline, send its history or what stopped it.

    When the search process is gone, the next message fails and ends this process.
    """
    try:
        pipeline = make_pipeline(
            family,
            **params,
            epochs=epochs,
            random_state=random_state,
            callbacks=[KerasPruningCallback(_ParentTrial(conn))],
        )
        history = pipeline.fit(X, y).named_steps["classifier"].history_
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        conn.send(("done", history, peak_mib))
    except optuna.TrialPruned as pruned:
        conn.send(("pruned", str(pruned)))
    except Exception as error:
        try:
            conn.send(("error", error, traceback.format_exc()))
        except (pickle.PicklingError, TypeError, AttributeError):
            conn.send(("error", RuntimeError(repr(error)), traceback.format_exc()))


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
    trial: Trial, family: str, params: dict, epochs: int, random_state, X, y
) -> tuple[dict, float]:
    """Train in a new process, answering its reports; (history, peak resident MiB)."""
    context = _process_context()
    conn, child_conn = context.Pipe()
    process = context.Process(
        target=_train,
        args=(child_conn, family, params, epochs, random_state, X, y),
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
) -> float:
    """Fit one suggested pipeline and return its best validation accuracy.

    The pipeline trains in a process of its own, so that memory stays flat over a long
    search (TensorFlow does not free the networks a process has trained); it reports to
    ``trial`` after each epoch and stops when the trial is to be pruned. The estimator
    holds out the same stratified validation split in every trial (same
    ``random_state``), so trials are compared on the same images.

    The trial's user attributes record the ``classifier`` family, the ``best_epoch``
    (``refit_best`` trains that many epochs on all images), the ``worker`` (host and
    process) and the training process's ``peak_memory_mib``.

    Parameters
    ----------
    trial : optuna.trial.Trial
    X : array of shape (n_images, height, width, channels), uint8
    y : array of shape (n_images,)
    families, fixed
        See ``suggest_params``.
    epochs : int
        Epochs per trial (the pruners' maximum resource).
    random_state : int or None
        Seeds the validation split, weights and shuffling.

    Returns
    -------
    accuracy : float

    Raises
    ------
    optuna.TrialPruned
        When the pruner stopped the trial.
    TrainingProcessDied
        When the training process was killed.
    """
    family, params = suggest_params(trial, families, fixed)
    trial.set_user_attr("classifier", family)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("training_exitcode", None)
    history, peak_mib = _fit_in_process(trial, family, params, epochs, random_state, X, y)
    trial.set_user_attr("peak_memory_mib", round(peak_mib))
    scores = history["val_accuracy"]
    best = int(np.argmax(scores))
    trial.set_user_attr("best_epoch", best + 1)
    return float(scores[best])


# ------------------------------------------------------------------------------ storage
_BACKENDS = ("sqlite", "postgresql", "mysql")
_URL_EXAMPLES = (
    "sqlite:///runs/study.db, postgresql+psycopg://user:password@host:5432/db, "
    "mysql+pymysql://user:password@host/db"
)
# Seconds before an unreachable database server counts as down.
_CONNECT_TIMEOUT = 10
#: Times a trial whose worker or training process died is run again.
MAX_RETRY = 2
# Tries at opening a storage whose tables another worker may be creating.
_CREATE_ATTEMPTS = 3


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    # Optuna has called heartbeats, trial retries, stale-trial checks and its matplotlib
    # plots "experimental" since 2.x while documenting them as the way to do these things;
    # the warning would repeat on every trial.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


def check_storage_url(url: str) -> None:
    """Check an Optuna RDB storage URL without creating anything.

    The scheme must name SQLite, PostgreSQL or MySQL with an installed driver; an SQLite
    file's folder must exist; a database server must accept a connection.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL such as ``sqlite:///runs/study.db`` or
        ``postgresql+psycopg://user:password@host:5432/db``.

    Raises
    ------
    ValueError
        If the URL is malformed, its scheme unknown or its driver missing, or the SQLite
        folder does not exist.
    ConnectionError
        If the database server cannot be reached or refuses the login.
    """
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(
            f"storage {url!r} is not a database URL; expected one like {_URL_EXAMPLES}."
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in _BACKENDS:
        raise ValueError(
            f"storage scheme {parsed.drivername!r} (in {shown!r}) is not one of Optuna's RDB "
            f"storages ({', '.join(_BACKENDS)}); expected a URL like {_URL_EXAMPLES}."
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise ValueError(
            f"storage {shown!r}: the driver for {parsed.drivername!r} cannot be loaded "
            f"({error}). For PostgreSQL install psycopg (pip install 'psycopg[binary]') and "
            "write postgresql+psycopg://..."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).parent
            if not folder.is_dir():
                raise ValueError(f"storage {shown!r}: folder {str(folder)!r} does not exist.")
        return
    engine = sqlalchemy.create_engine(
        parsed,
        poolclass=sqlalchemy.pool.NullPool,
        connect_args={"connect_timeout": _CONNECT_TIMEOUT},
    )
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.DBAPIError as error:
        raise ConnectionError(
            f"cannot connect to storage {shown!r}: {str(error.orig).strip()}"
        ) from None
    finally:
        engine.dispose()


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = 10,
    grace_period: int | None = 60,
    max_retry: int | None = MAX_RETRY,
) -> RDBStorage:
    """Open an Optuna RDB storage with heartbeats and retry of dead workers' trials.

    A running trial records a heartbeat every ``heartbeat_interval`` seconds. When a
    worker next asks for a trial, any trial without a heartbeat for ``grace_period``
    seconds is marked failed and queued again with the same parameters, at most
    ``max_retry`` times.

    Parameters
    ----------
    url : str
        See ``check_storage_url`` (checked first).
    heartbeat_interval : int, default=10
    grace_period : int or None, default=60
        Keep it well above ``heartbeat_interval``: a live trial declared dead would
        crash its worker. None means twice the interval.
    max_retry : int or None, default=MAX_RETRY
        None retries without limit.

    Returns
    -------
    storage : optuna.storages.RDBStorage
    """
    check_storage_url(url)
    server = sqlalchemy.engine.make_url(url).get_backend_name() != "sqlite"
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with _experimental_ok():
                return RDBStorage(
                    url,
                    engine_kwargs=(
                        {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT}} if server else None
                    ),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=max_retry
                    ),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Workers started together on a new database race to create Optuna's tables;
            # the loser finds the winner's tables when it tries again.
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 + np.random.default_rng().random())


# ------------------------------------------------------------------------------- search
PRUNERS = ("median", "hyperband", "none")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` for trials of ``epochs`` epochs.

    "median" stops a trial whose accuracy is below the median of earlier trials at the
    same epoch, from half-way on (the first epochs' validation accuracy is noisy while
    BatchNorm statistics settle), after 3 trials ran to the end. "hyperband" runs
    successive halving from 1 epoch up to ``epochs``, keeping a third at each rung.
    "none" never prunes.
    """
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 2))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs, reduction_factor=3
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {PRUNERS}; got {name!r}.")


def _requeue_killed_training(study: optuna.Study, trial: FrozenTrial) -> None:
    """Study callback: queue again, with the same parameters, a trial whose training
    process was killed (the out-of-memory killer picks the largest process), as a dead
    worker's trial is, at most ``MAX_RETRY`` times."""
    if trial.state == TrialState.FAIL and trial.user_attrs.get("training_exitcode") is not None:
        with _experimental_ok():
            RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, trial)


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

    def __init__(self, n_trials: int, timeout: float | None, reserve: float):
        self.n_trials = n_trials
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
        if counts[TrialState.FAIL] > self.n_trials * (MAX_RETRY + 1):
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


def run_search(
    X,
    y,
    *,
    families: Sequence[str] = ("convnet",),
    fixed: Mapping[str, Any] | None = None,
    n_trials: int = 12,
    epochs: int = 6,
    timeout: float | None = None,
    pruner: str = "median",
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    seed: int = 0,
    reserve: float = 0.0,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    show_progress_bar: bool = False,
) -> optuna.Study:
    """Search classifier parameters on images X, y; resume the study if it exists.

    Parameters
    ----------
    X : array of shape (n_images, height, width, channels), uint8
        Training images; each trial holds out a stratified validation split of them.
    y : array of shape (n_images,)
    families : sequence of str, default=("convnet",)
        Classifier families to search (see ``describe_space``).
    fixed : mapping or None
        Estimator parameters held at a value instead of searched (e.g. ``{"filters": 16}``).
    n_trials : int, default=12
        Finished (complete or pruned) trials the study should hold, counting those of
        earlier runs and of other workers.
    epochs : int, default=6
        Epochs per trial.
    timeout : float or None
        Seconds for this call; no trial starts that would likely end after it.
    pruner : {"median", "hyperband", "none"}, default="median"
        See ``make_pruner``.
    storage : str, optuna storage or None
        A storage URL (opened with ``open_storage``: heartbeats, retries), a storage, or
        None for memory only.
    study_name : str or None
        Name of the study to create or resume; None makes a new unique one.
    seed : int, default=0
        Seeds the TPE sampler and every trial's estimator. Workers started together on
        one study should get different seeds.
    reserve : float, default=0
        Time to keep at the end of ``timeout``, in durations of the longest trial (e.g.
        1.5 to leave room for refitting the best pipeline).
    callbacks : sequence of callables
        Extra study callbacks ``f(study, frozen_trial)`` called after each trial.
    show_progress_bar : bool, default=False

    Returns
    -------
    study : optuna.Study
        Maximises validation accuracy. Trials carry the user attributes "classifier"
        and "best_epoch"; the study carries its "search_settings".

    Raises
    ------
    ValueError
        For invalid arguments, or a study of that name made with other settings (nothing
        is created then).

    Notes
    -----
    Trials train in processes forked from a server process (multiprocessing's
    "forkserver"), which imports the calling script as ``__mp_main__``: a script calling
    ``run_search`` must do so under ``if __name__ == "__main__":``.
    """
    fixed = dict(fixed or {})
    _resolve_space(families, fixed)
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1; got {n_trials!r}.")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs!r}.")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive seconds or None; got {timeout!r}.")
    settings = _jsonable({"families": list(families), "epochs": epochs, "fixed": fixed})
    study_pruner = make_pruner(pruner, epochs)
    if isinstance(storage, str):
        storage = open_storage(storage)

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
        raise ValueError(
            f"study {study.study_name!r} was made with {stored}, not {settings}; rerun with "
            "those settings to resume it, or choose another study name."
        )
    study.set_user_attr("search_settings", settings)
    # The seed is not stored with the study: seed the sampler for this worker.
    study.sampler = optuna.samplers.TPESampler(
        seed=_sampler_seed(seed, len(study.get_trials(deepcopy=False))),
        n_startup_trials=max(2, min(10, n_trials // 3)),
    )

    func = functools.partial(
        objective, X=X, y=y, families=families, fixed=fixed, epochs=epochs, random_state=seed
    )
    budget = _Budget(n_trials, timeout, reserve)
    progress = _ProgressBar(study, n_trials, show_progress_bar)
    poll = getattr(storage, "heartbeat_interval", None) or 1
    try:
        while (step := budget.next_step(study)) != "stop":
            if step == "wait":
                time.sleep(poll)
                continue
            study.optimize(
                func,
                timeout=budget.time_left(),
                catch=(TrainingProcessDied,),
                callbacks=[_requeue_killed_training, budget, progress, *callbacks],
            )
    finally:
        progress.close()
    return study


# -------------------------------------------------------------------------------- results
def best_estimator_params(study: optuna.Study) -> tuple[str, dict[str, Any]]:
    """The best trial's classifier family and estimator parameters (fixed ones included).

    ``make_pipeline(family, **params)`` or ``set_params(**params)`` take them as they are.
    """
    trial = study.best_trial
    params = {**study.user_attrs["search_settings"]["fixed"], **trial.params}
    params.pop("classifier", None)
    return trial.user_attrs["classifier"], params


def refit_best(study: optuna.Study, X, y, *, random_state: int | None = 0) -> Pipeline:
    """Fit the best trial's pipeline on all of X, y for its best number of epochs.

    The trials' validation images are trained on too (``validation_fraction=0``), so
    the number of epochs comes from the best trial (its ``best_epoch``) instead of early
    stopping.

    Parameters
    ----------
    study : optuna.Study
        A study made by ``run_search`` with at least one complete trial.
    X, y
        The search's images and labels.
    random_state : int or None

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Fitted.
    """
    family, params = best_estimator_params(study)
    return make_pipeline(
        family,
        **params,
        epochs=study.best_trial.user_attrs["best_epoch"],
        validation_fraction=0.0,
        random_state=random_state,
    ).fit(X, y)


def _write_trials_csv(study: optuna.Study, path: Path) -> None:
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for t in trials for name in t.params})
    fields = ["number", "state", "value", "best_epoch", "epochs_reported", "duration_s"]
    fields += ["retry_of", "worker", "classifier", *(f"param_{name}" for name in names)]
    with path.open("w", newline="") as file, _experimental_ok():
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
                    "duration_s": None if t.duration is None else t.duration.total_seconds(),
                    "retry_of": RetryHeartbeatStaleTrialCallback.retried_trial_number(t),
                    "worker": t.user_attrs.get("worker"),
                    "classifier": t.user_attrs.get("classifier"),
                    **{f"param_{name}": value for name, value in t.params.items()},
                }
            )


# Optuna's matplotlib plots written by write_search_report, and the complete trials each
# needs (importances compare at least two).
_PLOTS = {
    "optimization_history": (optuna.visualization.matplotlib.plot_optimization_history, 1),
    "param_importances": (optuna.visualization.matplotlib.plot_param_importances, 2),
    "parallel_coordinate": (optuna.visualization.matplotlib.plot_parallel_coordinate, 1),
}


def write_search_report(
    study: optuna.Study, folder: str | Path, *, plots: bool = True
) -> dict[str, Path]:
    """Write a study's best parameters, trials and plots into ``folder``.

    Files: ``best_params.json`` (family, estimator parameters, refit epochs, validation
    accuracy, trial number), ``trials.csv`` (one row per trial: state, value, epochs
    reported, duration, the trial it retries, worker, parameters) and, with ``plots``,
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
        best = {
            "classifier": family,
            "params": params,
            "refit_epochs": study.best_trial.user_attrs["best_epoch"],
            "validation_accuracy": study.best_value,
            "trial": study.best_trial.number,
            "study_name": study.study_name,
        }
        paths["best_params"] = folder / "best_params.json"
        paths["best_params"].write_text(json.dumps(best, indent=2) + "\n")
    for name, (plot, needed) in _PLOTS.items():
        if not plots or n_complete < needed:
            continue
        with _experimental_ok():
            ax = plot(study)
        paths[name] = folder / f"{name}.png"
        ax.figure.savefig(paths[name], dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
    return paths
