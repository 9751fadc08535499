"""Tests of sklcifar.search: trials, the study loop, storage and reliability.

Trials train tiny networks (depth 2, 4 filters, 1-2 epochs) on a few random images, so
each takes a couple of seconds. The space language is tested in test_search_space.py,
the command line in test_search_command.py, several PostgreSQL workers in
test_search_postgres.py.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from sklcifar.search import (
    KerasPruningCallback,
    NoisyValidation,
    best_estimator_params,
    build_pipeline,
    check_storage_url,
    data_schedule,
    default_trial,
    describe_fidelity,
    make_pruner,
    open_storage,
    refit_best,
    refit_trial,
    run_search,
    standard_error,
    suggest_params,
    write_search_report,
)
from sklcifar.search.fidelity import fit_in_stages
from sklcifar.search.trial import _ValidationClock

REPO = Path(__file__).resolve().parents[1]
# Parameters that keep every trial tiny, and on the seed's recipe (batch 32 or more).
TINY = {"depth": 2, "filters": 4, "dense": [8], "training": "seed", "noise_fraction": 0.0}


@pytest.fixture(scope="module")
def images():
    """60 random 16x16 RGB images in 3 balanced classes."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(60, 16, 16, 3), dtype=np.uint8)
    return X, np.repeat(np.arange(3), 20)


def _states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


# ----------------------------------------------------------------------- pruners, fidelity
def test_make_pruner_names():
    assert isinstance(make_pruner("hyperband", 6), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("halving", 6), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("median", 6), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("none", 6), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="pruner must be one of"):
        make_pruner("asha", 6)


def test_fidelity_schedule_matches_optunas_brackets():
    for epochs in (1, 3, 6, 9, 27, 30):
        pruner = make_pruner("hyperband", epochs)
        study = optuna.create_study(direction="maximize", pruner=pruner)
        study.ask()
        pruner._try_initialization(study)  # Optuna counts its brackets lazily
        assert len(describe_fidelity("hyperband", epochs)["brackets"]) == pruner._n_brackets
    assert describe_fidelity("halving", 27)["brackets"] == [[2, 6, 18]]
    assert "every trial runs 4 epochs" in describe_fidelity("none", 4)["text"]


# ---------------------------------------------------------------------------- pruning
def test_pruning_callback_reports_each_epoch_and_raises_pruned(images):
    X, y = images
    # The threshold pruner prunes any accuracy below 2, i.e. at the first report.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(2.0))
    trial = study.ask()
    pipeline = build_pipeline(
        "convnet", TINY, epochs=3, random_state=0, callbacks=[KerasPruningCallback(trial)]
    )
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        pipeline.fit(X, y)
    study.tell(trial, state=TrialState.PRUNED)
    assert list(study.trials[0].intermediate_values) == [1]


def test_noisy_objective_is_logged_every_epoch_and_prunes(images):
    X, y = images
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(2.0))
    trial = study.ask()
    pruning = KerasPruningCallback(trial, monitor="val_noisy_accuracy")
    pipeline = build_pipeline("convnet", {**TINY, "noise_fraction": 0.05}, epochs=3)
    assert list(pipeline.named_steps) == ["grayscale", "noise", "classifier"]
    classifier = pipeline.named_steps["classifier"]
    classifier.set_params(callbacks=[NoisyValidation(classifier), pruning], random_state=0)
    with pytest.raises(optuna.TrialPruned, match="val_noisy_accuracy=.* after epoch 1"):
        pipeline.fit(X, y)
    # Without pruning, the history holds both scores and their mean at every epoch.
    classifier.set_params(callbacks=[NoisyValidation(classifier)], epochs=2)
    history = pipeline.fit(X, y).named_steps["classifier"].history_
    assert len(history["val_noisy_accuracy"]) == 2
    mean = (np.array(history["val_accuracy"]) + history["val_noisy_accuracy"]) / 2
    np.testing.assert_allclose(history["val_balanced_accuracy"], mean)


def test_pruning_callback_needs_a_validation_metric(images):
    X, y = images
    trial = optuna.create_study().ask()
    pipeline = build_pipeline(
        "convnet",
        TINY,
        epochs=1,
        validation_fraction=0.0,
        callbacks=[KerasPruningCallback(trial)],
    )
    with pytest.raises(KeyError, match="validation_fraction"):
        pipeline.fit(X, y)


# ----------------------------------------------------------------------------- search
def test_a_new_study_tries_the_default_classifier_first(images):
    X, y = images
    study = run_search(X, y, families=["convnet", "fastnet"], n_trials=1, epochs=1, seed=0)
    (first,) = study.get_trials()
    assert first.params == default_trial(["convnet", "fastnet"])
    assert first.user_attrs["start"] == "default"
    assert first.user_attrs["classifier"] == "fastnet"


class _SlowEpochEnd(keras.callbacks.Callback):
    """An epoch-end pass of 0.2 s, as NoisyValidation's prediction of the noisy images."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.2)


def test_validation_clock_counts_validation_passes_not_training():
    zeros = np.zeros((64, 1))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    clock = _ValidationClock()
    model.fit(zeros, zeros, epochs=2, callbacks=[_SlowEpochEnd(), clock], verbose=0)
    assert clock.seconds == 0.0  # no validation: nothing to leave out of a refit's speed
    model.fit(
        zeros,
        zeros,
        epochs=2,
        validation_data=(zeros, zeros),
        callbacks=[_SlowEpochEnd(), clock],
        verbose=0,
    )
    assert 0.4 <= clock.seconds < 5  # the two epoch-end passes and the validation


def test_run_search_refit_and_report(images, tmp_path):
    X, y = images
    study = run_search(X, y, fixed=TINY, n_trials=2, epochs=2, pruner="none", seed=0)
    assert _states(study) == {"COMPLETE": 2}
    best = study.best_trial
    assert best.user_attrs["classifier"] == "convnet"
    assert 1 <= best.user_attrs["best_epoch"] <= 2
    assert best.value == max(best.intermediate_values.values())
    assert best.user_attrs["train_images"] == 54 and best.user_attrs["epoch_seconds"] > 0
    assert study.user_attrs["fidelity"]["text"].splitlines() == [
        "none: every trial runs 2 epochs",
        "training images: all of them in every epoch (the none pruner judges at no rungs)",
    ]

    family, params = best_estimator_params(study)
    assert {k: params[k] for k in TINY} == TINY
    assert params["learning_rate"] == best.params["seed_learning_rate"]

    model = refit_best(study, X, y, random_state=0)
    clf = model.named_steps["classifier"]
    assert clf.validation_fraction == 0.0 and clf.epochs == best.user_attrs["best_epoch"]
    assert len(clf.history_["loss"]) == best.user_attrs["best_epoch"]

    paths = write_search_report(study, tmp_path)
    assert sorted(paths) == [
        "best_params",
        "optimization_history",
        "parallel_coordinate",
        "param_importances",
        "trials",
    ]
    assert all(path.stat().st_size > 0 for path in paths.values())
    saved = __import__("json").loads(paths["best_params"].read_text())
    assert saved["params"] == params and saved["trial"] == best.number
    assert saved["objective"] == "accuracy"
    rows = paths["trials"].read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("number,state,value,best_epoch")


def test_run_search_balanced_objective_with_a_searched_noise_step(images):
    X, y = images
    fixed = {k: v for k, v in TINY.items() if k != "noise_fraction"}
    study = run_search(X, y, fixed=fixed, objective="balanced", n_trials=1, epochs=1, pruner="none")
    trial = study.best_trial
    assert 0 <= trial.params["noise_fraction"] <= 0.06
    clean, noisy = trial.user_attrs["val_accuracy"], trial.user_attrs["val_noisy_accuracy"]
    assert trial.value == pytest.approx((clean + noisy) / 2)


def test_run_search_resumes_a_stored_study_and_refuses_other_settings(images, tmp_path):
    X, y = images
    url = f"sqlite:///{tmp_path / 'study.db'}"
    options = {"fixed": TINY, "epochs": 1, "pruner": "none", "storage": url, "study_name": "s"}
    run_search(X, y, n_trials=1, **options)
    # Resumed with the same seed, the sampler does not replay the first suggestions.
    study = run_search(X, y, n_trials=2, **options)
    assert _states(study) == {"COMPLETE": 2}
    assert study.trials[1].params != study.trials[0].params
    # A study made with other settings is not resumed, and gains no trial.
    other_space = {"convnet": {"depth": {"int": [2, 3]}}}
    for change, match in [
        ({"epochs": 2}, "another epochs"),
        ({"pruner": "hyperband"}, "another pruner .*'none', now 'hyperband'"),
        ({"objective": "noisy"}, "another objective"),
        ({"space": other_space}, "another space"),
    ]:
        with pytest.raises(ValueError, match=match):
            run_search(X, y, n_trials=5, **{**options, **change})
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2


def test_run_search_timeout_stops_starting_trials(images):
    X, y = images
    start = time.monotonic()
    study = run_search(X, y, fixed=TINY, n_trials=50, epochs=1, timeout=3, pruner="none")
    assert 1 <= len(study.trials) < 50
    assert time.monotonic() - start < 60  # generous: the machine may be busy


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_trials": 0}, "n_trials must be at least 1"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"pruner": "asha"}, "pruner must be one of"),
        ({"fidelity": "images"}, "fidelity must be one of"),
        ({"objective": "robust"}, "objective must be one of"),
        ({"max_retry": -1}, "max_retry must be >= 0"),
        ({"families": ["resnet50"]}, "cannot be searched"),
        ({"space": {"convnet": {"depth": 3}}}, "must be a table"),
        ({"fixed": {"filters": -4}}, r"\['filters'\] are invalid for the 'convnet'.*Got -4"),
        ({"fixed": {"noise_fraction": 2}}, "PixelNoise must be a float in the range"),
    ],
)
def test_run_search_rejects_bad_arguments_before_creating_a_study(images, tmp_path, options, match):
    X, y = images
    with pytest.raises(ValueError, match=match):
        run_search(X, y, storage=f"sqlite:///{tmp_path / 'study.db'}", **options)
    assert not (tmp_path / "study.db").exists()


# ------------------------------------------------------------------------- reliability
def test_storage_without_heartbeats_is_refused(images, tmp_path):
    X, y = images
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    with pytest.raises(ValueError, match="records no heartbeats"):
        run_search(X, y, fixed=TINY, n_trials=1, epochs=1, storage=storage)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval must be"),
        ({"heartbeat_interval": 10, "grace_period": 10}, "must exceed heartbeat_interval"),
        ({"heartbeat_interval": 10, "grace_period": 5}, "must exceed heartbeat_interval"),
        ({"max_retry": -1}, "max_retry must be >= 0"),
    ],
)
def test_open_storage_refuses_unsafe_heartbeat_settings(tmp_path, options, match):
    with pytest.raises(ValueError, match=match):
        open_storage(f"sqlite:///{tmp_path / 'study.db'}", **options)
    assert not (tmp_path / "study.db").exists()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_stale_trial_of_a_dead_worker_is_failed_and_retried(images, tmp_path):
    """A trial whose heartbeat stopped (its worker died) is failed and rerun, same params."""
    X, y = images
    url = f"sqlite:///{tmp_path / 'study.db'}"
    options = {"fixed": TINY, "epochs": 1, "pruner": "none", "study_name": "s"}
    run_search(X, y, n_trials=1, storage=url, **options)
    # A "worker" that starts a trial, records one heartbeat and dies.
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="s", storage=storage)
    dead = study.ask()
    suggest_params(dead, fixed=TINY)
    storage.record_heartbeat(dead._trial_id)
    time.sleep(3.5)

    study = run_search(X, y, n_trials=2, storage=storage, **options)
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.COMPLETE
    assert trials[dead.number].state == TrialState.FAIL
    retry = trials[-1]
    assert retry.system_attrs["failed_trial"] == dead.number
    assert retry.state == TrialState.COMPLETE and retry.params == trials[dead.number].params
    assert _states(study) == {"COMPLETE": 2, "FAIL": 1}


def _kill_first_training() -> threading.Thread:
    def kill():
        # Kill the first training process once it is well into training.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for child in multiprocessing.active_children():
                time.sleep(1.5)
                os.kill(child.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


@pytest.mark.parametrize("max_retry", [2, 0])
def test_killed_training_process_is_retried_up_to_max_retry(images, max_retry):
    """The out-of-memory killer takes the largest process: a trial's training process."""
    X, y = images
    killer = _kill_first_training()
    # Enough epochs that the first training is still running when the killer strikes.
    study = run_search(X, y, fixed=TINY, n_trials=1, epochs=80, pruner="none", max_retry=max_retry)
    killer.join()
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["training_exitcode"] == -signal.SIGKILL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert _states(study) == {"COMPLETE": 1, "FAIL": 1}
    if max_retry:
        assert retries[0].state == TrialState.COMPLETE and retries[0].params == trials[0].params
    else:
        assert retries == []


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [d for c in map(int, children) for d in (c, *_descendants(c))]


def _running(pid: int) -> bool:
    """Not ended (an ended process may stay a zombie until an init process reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


SEARCH_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from sklcifar.search import run_search

    if __name__ == "__main__":
        rng = np.random.default_rng(0)
        X = rng.integers(0, 256, size=(60, 16, 16, 3), dtype=np.uint8)
        fixed = {"depth": 2, "filters": 4, "dense": [8], "training": "seed"}
        run_search(X, np.repeat(np.arange(3), 20), fixed=fixed, n_trials=1, epochs=10000)
    """
)


def test_training_processes_end_quietly_when_the_search_dies(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    search = subprocess.Popen(
        [sys.executable, str(script)], stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        deadline = time.monotonic() + 120
        # The forkserver's child is the training process.
        while not any(_descendants(p) for p in _descendants(search.pid)):
            assert search.poll() is None, search.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no training process started"
            time.sleep(0.2)
        time.sleep(2)  # well into training
        orphans = _descendants(search.pid)
        os.kill(search.pid, signal.SIGKILL)
        # stderr reaches its end once every process holding it (the forkserver and the
        # training process inherit it) has ended.
        stderr = search.communicate(timeout=60)[1]
    finally:
        if search.poll() is None:
            search.kill()
    assert "Traceback" not in stderr, stderr[-3000:]
    deadline = time.monotonic() + 30
    while [pid for pid in orphans if _running(pid)]:
        assert time.monotonic() < deadline, [pid for pid in orphans if _running(pid)]
        time.sleep(0.2)


# --------------------------------------------------------------------------- storage
@pytest.mark.parametrize(
    ("url", "error", "match"),
    [
        ("redis://localhost:6379/0", ValueError, "not one of Optuna's RDB storages"),
        ("just words", ValueError, "not a database URL"),
        ("postgresql+psycopg://u:secret@host:notaport/db", ValueError, "not a database URL"),
        ("postgresql+nosuchdriver://u:secret@localhost/db", ValueError, "cannot be loaded"),
        ("sqlite:///{tmp}/missing/study.db", ValueError, "does not exist"),
        ("sqlite:///{tmp}", ValueError, "is a folder"),
        ("sqlite:///{tmp}/notes.txt", ValueError, "is not an SQLite database"),
        # Nothing listens on port 1: refused at once.
        ("postgresql+psycopg://u:secret@127.0.0.1:1/db", ConnectionError, "cannot connect"),
    ],
)
def test_check_storage_url_errors(tmp_path, url, error, match):
    (tmp_path / "notes.txt").write_text("not a database")
    with pytest.raises(error, match=match) as info:
        check_storage_url(url.format(tmp=tmp_path))
    assert "secret" not in str(info.value)


def test_check_storage_url_accepts_sqlite_and_writes_nothing(tmp_path):
    check_storage_url(f"sqlite:///{tmp_path / 'study.db'}")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- data fidelity
def test_data_schedule_follows_the_first_brackets_rungs():
    assert data_schedule("hyperband", 9) == [[2, 9], [4, 3], [3, 1]]
    assert data_schedule("halving", 6) == [[2, 3], [4, 1]]
    assert data_schedule("hyperband", 2) == [[2, 1]]  # no rung before the last epoch
    assert data_schedule("hyperband", 9, "epochs") == [[9, 1]]
    assert data_schedule("median", 9) == data_schedule("none", 9) == [[9, 1]]
    with pytest.raises(ValueError, match="fidelity must be one of"):
        data_schedule("hyperband", 9, "images")
    text = describe_fidelity("hyperband", 9)["text"].splitlines()[1]
    assert text == (
        "training images grow at the rungs: epochs 1-2 on 1/9, epochs 3-6 on 1/3, "
        "epochs 7-9 on all of a trial's images"
    )
    epochs_only = describe_fidelity("hyperband", 9, "epochs")["text"]
    assert "all of them in every epoch (fidelity epochs)" in epochs_only


class _StepsAndRates(keras.callbacks.Callback):
    """Records the training steps of each epoch and the learning rate of each step."""

    def on_train_begin(self, logs=None):
        self.steps = getattr(self, "steps", [])
        self.rates = getattr(self, "rates", [])

    def on_epoch_begin(self, epoch, logs=None):
        self.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_fit_in_stages_grows_nested_training_images_and_plans_one_schedule(images):
    X, y = images  # 54 training and 6 validation images in 3 classes
    record = _StepsAndRates()
    fast = {**TINY, "training": "fast", "batch_size": 8, "learning_rate": 0.1}
    pipeline = build_pipeline("convnet", fast, random_state=0, callbacks=[record])
    images_per_epoch = fit_in_stages(pipeline, X, y, [[2, 3], [4, 1]], random_state=0)
    assert images_per_epoch == [18, 18, 54, 54, 54, 54]
    assert record.steps == [3, 3, 7, 7, 7, 7]  # ceil(images / 8): what it trained on
    clf = pipeline.named_steps["classifier"]
    assert len(clf.history_["val_accuracy"]) == 6  # one network, validated every epoch
    # Warm-up over the first 2 epochs' 6 steps, then linear decay to zero over all 34.
    rates = np.array(record.rates)
    assert rates[0] == pytest.approx(0.01) and rates.argmax() == 6
    assert rates[-1] == pytest.approx(0.1 / 28) and np.all(np.diff(rates[6:]) < 0)


def test_search_trials_train_on_images_that_grow_at_the_rungs(images, tmp_path):
    X, y = images
    url = f"sqlite:///{tmp_path / 'study.db'}"
    options = {"fixed": TINY, "epochs": 3, "pruner": "halving", "storage": url, "study_name": "s"}
    study = run_search(X, y, n_trials=1, **options)
    trial = study.best_trial
    assert trial.user_attrs["images_per_epoch"] == [18, 18, 54]
    assert study.user_attrs["search_settings"]["fidelity"] == "epochs+data"
    assert study.user_attrs["fidelity"]["data_stages"] == [[2, 3], [1, 1]]
    assert list(trial.intermediate_values) == [1, 2, 3]
    with pytest.raises(ValueError, match="another fidelity .*'epochs\\+data', now 'epochs'"):
        run_search(X, y, n_trials=2, fidelity="epochs", **options)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 1


def _finished_trial(value, images_per_second, number, **user_attrs):
    return optuna.trial.create_trial(
        value=value,
        params={},
        distributions={},
        user_attrs={
            "classifier": "fastnet",
            "estimator_params": {"number": number},
            "images_per_epoch": [1000, 1000],
            "epoch_seconds": 1000 / images_per_second,
            "best_epoch": 2,
            **user_attrs,
        },
    )


def test_the_refit_keeps_the_default_unless_a_trial_beats_it_by_a_standard_error():
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("search_settings", {"epochs": 6})
    # 400 validation images: the best score's standard error is sqrt(.4 * .6 / 400) = 0.0245.
    default = {"start": "default", "validation_images": 400}
    study.add_trial(_finished_trial(0.38, 1000, number=0, **default))
    study.add_trial(_finished_trial(0.40, 1000, number=1, validation_images=400))
    assert standard_error(study.best_trial) == pytest.approx(0.0245, abs=1e-4)
    assert refit_trial(study).number == 0  # 2 points better: within one standard error
    study.add_trial(_finished_trial(0.404, 100, number=2, validation_images=400))
    assert refit_trial(study).number == 0  # 2.4 points: within 0.404's error (0.0245)
    study.add_trial(_finished_trial(0.43, 100, number=3, validation_images=400))
    assert refit_trial(study).number == 3  # 5 points better: the search found something
    # A budget that cannot train trial 3 for 3 epochs of 10,000 images falls back to the
    # best of those it can, and the rule again keeps the default.
    assert refit_trial(study, n_images=10_000, time_budget=60).number == 0
    # Without validation counts (studies of older versions) there is no error: the best.
    old = optuna.create_study(direction="maximize")
    old.add_trial(_finished_trial(0.38, 1000, number=0, start="default"))
    old.add_trial(_finished_trial(0.39, 1000, number=1))
    assert standard_error(old.best_trial) is None and refit_trial(old).number == 1


def test_search_trials_score_on_the_validation_images_given(images, tmp_path):
    X, y = images
    rows = np.arange(len(y))
    held_out = rows % 10 == 0  # 2 images of each class
    options = {"fixed": TINY, "epochs": 1, "pruner": "none", "n_trials": 1}
    study = run_search(X[~held_out], y[~held_out], validation=(X[held_out], y[held_out]), **options)
    trial = study.best_trial
    # Every image of X trains; the trial is scored on the 6 given.
    assert (
        trial.user_attrs["images_per_epoch"] == [54] and trial.user_attrs["validation_images"] == 6
    )
    study = run_search(X, y, **options)  # 10% of X held out: 6 of 60
    assert study.best_trial.user_attrs["images_per_epoch"] == [54]
    assert study.best_trial.user_attrs["validation_images"] == 6


def test_a_timed_refit_trains_the_best_configuration_the_budget_can_train():
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("search_settings", {"epochs": 6})
    study.add_trial(_finished_trial(0.60, images_per_second=100, number=0))  # best, slow
    study.add_trial(_finished_trial(0.55, images_per_second=1000, number=1))
    study.add_trial(_finished_trial(0.40, images_per_second=5000, number=2))
    # 60 s at 1,000 images/s is 6 epochs of 10,000 images; at 100 images/s 0.6.
    assert refit_trial(study, n_images=10_000, time_budget=60).number == 1
    assert refit_trial(study, n_images=10_000, time_budget=600).number == 0
    assert refit_trial(study, n_images=10_000).number == 0  # epochs, not time: the best
    # No configuration trains 3 epochs in 1 s: the best trial.
    assert refit_trial(study, n_images=10_000, time_budget=1).number == 0


def _contestant(value, number, **params):
    return optuna.trial.create_trial(
        value=value,
        params={},
        distributions={},
        user_attrs={
            "classifier": "convnet",
            "estimator_params": {**TINY, "learning_rate": 0.01, **params},
            "validation_images": 40,
            "best_epoch": 1,
            **({"start": "default"} if number == 0 else {}),
        },
    )


@pytest.mark.filterwarnings("ignore::sklcifar.time_budget.TimeBudgetWarning")
@pytest.mark.parametrize(
    ("objective", "challenger_gain", "winner"),
    [("accuracy", 0.05, 0), ("accuracy", 0.30, 1), ("noisy", 0.30, 1), ("balanced", 0.05, 0)],
)
def test_a_duel_on_the_whole_split_keeps_the_challenger_only_if_it_wins_clearly(
    images, monkeypatch, objective, challenger_gain, winner
):
    import sklcifar.search.report as report

    X, y = images
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("search_settings", {"epochs": 2, "objective": objective})
    study.add_trial(_contestant(0.40, number=0))
    study.add_trial(_contestant(0.60, number=1, filters=8))
    trained = []

    def accuracy(model, X_val, y_val, **kwargs):
        classifier = model.named_steps["classifier"]
        trained.append((classifier.filters, classifier.n_train_, len(y_val)))
        # The challenger (8 filters) gains on the objective's images only.
        gain = challenger_gain if classifier.filters == 8 else 0.0
        clean = 0.5 + (gain if objective != "noisy" else 0.0)
        noisy = 0.5 + (gain if objective != "accuracy" else 0.0)
        return {"clean": clean, "pixel_noise": noisy}

    monkeypatch.setattr(report, "clean_and_noisy_accuracy", accuracy)
    rows = np.arange(len(y)) % 3 == 0  # 20 validation images
    default, challenger = study.trials
    result = report.duel(
        study, default, challenger, X[~rows], y[~rows], (X[rows], y[rows]), seconds=2.0
    )
    # Both trained on every image given (no validation split), scored on the 20 others.
    assert trained == [(4, 40, 20), (8, 40, 20)]
    assert result["default"]["trial"] == 0 and result["challenger"]["trial"] == 1
    assert result["default"]["epochs"] >= 1 and result["objective"] == objective
    # The challenger's score 0.55 has a standard error of 0.111 on 20 images: a gain of 5
    # points (2.5 balanced) keeps the default, one of 30 (15 balanced) is a clear win.
    score = result["challenger"]["score"]
    assert result["standard_error"] == pytest.approx(np.sqrt(score * (1 - score) / 20))
    assert result["winner"] == winner


@pytest.mark.filterwarnings("ignore::sklcifar.time_budget.TimeBudgetWarning")
def test_a_real_duel_scores_both_contestants_on_the_validation_images(images):
    from sklcifar.search.report import duel

    X, y = images
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("search_settings", {"epochs": 2, "objective": "balanced"})
    study.add_trial(_contestant(0.40, number=0))
    study.add_trial(_contestant(0.60, number=1, filters=8))
    rows = np.arange(len(y)) % 3 == 0
    validation = (X[rows], y[rows])
    result = duel(study, *study.trials, X[~rows], y[~rows], validation, seconds=2.0)
    for name in ("default", "challenger"):
        accuracy = result[name]["validation_accuracy"]
        # Accuracies over 20 images, their mean the balanced score.
        assert all(round(value * 20, 6).is_integer() for value in accuracy.values())
        assert result[name]["score"] == pytest.approx(np.mean(list(accuracy.values())))
    challenger_wins = (
        result["challenger"]["score"] - result["default"]["score"] > result["standard_error"]
    )
    assert result["winner"] == (1 if challenger_wins else 0)
