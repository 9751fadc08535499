"""Tests of sklcifar.search and its command line, benchmarks/search.py.

Trials train tiny networks (depth 2, 4 filters, 1-2 epochs) on a few random images, so
each takes a couple of seconds. The PostgreSQL worker tests are in
test_search_postgres.py.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from sklcifar.pipelines import make_pipeline
from sklcifar.search import (
    SEARCH_SPACES,
    KerasPruningCallback,
    Param,
    best_estimator_params,
    check_storage_url,
    describe_space,
    make_pruner,
    open_storage,
    refit_best,
    run_search,
    suggest_params,
    write_search_report,
)

REPO = Path(__file__).resolve().parents[1]
# Estimator parameters that keep every trial tiny.
TINY = {"depth": 2, "filters": 4, "dense": [8]}
TINY_ARGS = ["--set", "depth=2", "--set", "filters=4", "--set", "dense=[8]"]


def _load_cli():
    spec = importlib.util.spec_from_file_location("search_cli", REPO / "benchmarks" / "search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cli():
    """benchmarks/search.py as a module (it is a script, not part of the package)."""
    return _load_cli()


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


# ------------------------------------------------------------------------- search space
def test_describe_space_lists_every_parameter_once():
    text = describe_space()
    for param in SEARCH_SPACES["convnet"]:
        assert sum(line.split()[0] == param.name for line in text.splitlines()) == 1
    assert "learning_rate      float 0.0001..0.01 (log scale)" in text
    every = describe_space(list(SEARCH_SPACES))
    assert every.startswith("classifier") and "int 8..20 step 6" in every
    searched, fixed = describe_space(fixed={"depth": 3}).split("fixed:")
    assert "depth" not in searched and "depth" in fixed


@pytest.mark.parametrize(
    ("families", "fixed", "match"),
    [
        (("resnet50",), {}, "cannot be searched"),
        (("convnet", "convnet"), {}, "distinct"),
        (("convnet",), {"no_such_param": 1}, "not parameters of the 'convnet'"),
        (("convnet",), {"epochs": 3}, "set by the search itself"),
    ],
)
def test_space_rejects_unknown_families_and_parameters(families, fixed, match):
    with pytest.raises(ValueError, match=match):
        describe_space(families, fixed)


def test_space_rejects_one_name_with_two_kinds_of_distribution(monkeypatch):
    monkeypatch.setitem(SEARCH_SPACES, "fastnet", (Param("width", IntDistribution(8, 32)),))
    with pytest.raises(ValueError, match="one kind of distribution per name"):
        describe_space(["fastnet", "resnet"])
    describe_space(["fastnet", "resnet"], fixed={"width": 16})  # fixed, it is not searched


def test_suggest_params_are_estimator_parameters_and_respect_conditions():
    trial = optuna.trial.FixedTrial(
        {
            "depth": 4,
            "kernel_order": "decreasing",
            "dropout_placement": "conv",
            "conv_dropout": 0.3,
            "l2_placement": "none",
            "learning_rate": 1e-3,
            "batch_size": 64,
        }
    )
    family, params = suggest_params(trial, fixed={"filters": 8})
    assert family == "convnet"
    # Dense dropout and L2 strength are not suggested where they are not placed.
    assert "dense_dropout" not in params and "l2" not in params
    assert params["conv_dropout"] == 0.3 and params["filters"] == 8
    clf = make_pipeline(family).named_steps["classifier"].set_params(**params)
    assert clf.resolved_architecture()["kernel_order"] == "decreasing"


def test_make_pruner_names():
    assert isinstance(make_pruner("median", 6), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 6), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", 6), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="pruner must be one of"):
        make_pruner("asha", 6)


# ---------------------------------------------------------------------------- pruning
def test_pruning_callback_reports_each_epoch_and_raises_pruned(images):
    X, y = images
    # The threshold pruner prunes any accuracy below 2, i.e. at the first report.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(2.0))
    trial = study.ask()
    pipeline = make_pipeline(
        "convnet", **TINY, epochs=3, random_state=0, callbacks=[KerasPruningCallback(trial)]
    )
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        pipeline.fit(X, y)
    study.tell(trial, state=TrialState.PRUNED)
    assert list(study.trials[0].intermediate_values) == [1]


def test_pruning_callback_needs_a_validation_metric(images):
    X, y = images
    trial = optuna.create_study().ask()
    pipeline = make_pipeline(
        "convnet",
        **TINY,
        epochs=1,
        validation_fraction=0.0,
        callbacks=[KerasPruningCallback(trial)],
    )
    with pytest.raises(KeyError, match="validation_fraction"):
        pipeline.fit(X, y)


# ----------------------------------------------------------------------------- search
def test_run_search_refit_and_report(images, tmp_path):
    X, y = images
    study = run_search(X, y, fixed=TINY, n_trials=3, epochs=2, pruner="none", seed=0)
    assert _states(study) == {"COMPLETE": 3}
    best = study.best_trial
    assert best.user_attrs["classifier"] == "convnet"
    assert 1 <= best.user_attrs["best_epoch"] <= 2
    assert best.value == max(best.intermediate_values.values())

    family, params = best_estimator_params(study)
    assert params == {**TINY, **best.params}
    make_pipeline(family).named_steps["classifier"].set_params(**params)  # accepted as is

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
    saved = json.loads(paths["best_params"].read_text())
    assert saved["params"] == params and saved["trial"] == best.number
    rows = paths["trials"].read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("number,state,value,best_epoch")


def test_run_search_resumes_a_stored_study(images, tmp_path):
    X, y = images
    url = f"sqlite:///{tmp_path / 'study.db'}"
    options = {"fixed": TINY, "epochs": 1, "pruner": "none", "storage": url, "study_name": "s"}
    run_search(X, y, n_trials=2, **options)
    study = run_search(X, y, n_trials=3, seed=1, **options)
    assert _states(study) == {"COMPLETE": 3}
    # Resumed with the same seed, the sampler does not replay the first suggestions.
    again = run_search(X, y, n_trials=4, **options)
    assert again.trials[3].params != again.trials[0].params
    # A study made with other settings is not resumed, and gains no trial.
    with pytest.raises(ValueError, match="was made with"):
        run_search(X, y, n_trials=5, **{**options, "epochs": 2})
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 4


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
        ({"families": ["resnet50"]}, "cannot be searched"),
    ],
)
def test_run_search_rejects_bad_arguments_before_creating_a_study(images, tmp_path, options, match):
    X, y = images
    with pytest.raises(ValueError, match=match):
        run_search(X, y, storage=f"sqlite:///{tmp_path / 'study.db'}", **options)
    assert not (tmp_path / "study.db").exists()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_stale_trial_of_a_dead_worker_is_failed_and_retried(images, tmp_path):
    """A trial whose heartbeat stopped (its worker died) is failed and rerun, same params."""
    X, y = images
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_search(X, y, fixed=TINY, n_trials=1, epochs=1, storage=url, study_name="s")
    # A "worker" that starts a trial, records one heartbeat and dies.
    storage = open_storage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.load_study(study_name="s", storage=storage)
    dead = study.ask()
    suggest_params(dead, fixed=TINY)
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)

    study = run_search(X, y, fixed=TINY, n_trials=2, epochs=1, storage=storage, study_name="s")
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.COMPLETE
    assert trials[dead.number].state == TrialState.FAIL
    retry = trials[-1]
    assert retry.system_attrs["failed_trial"] == dead.number
    assert retry.state == TrialState.COMPLETE and retry.params == trials[dead.number].params
    assert _states(study) == {"COMPLETE": 2, "FAIL": 1}


def test_killed_training_process_is_failed_and_retried(images):
    """The out-of-memory killer takes the largest process: a trial's training process."""
    X, y = images

    def kill_first_training():
        # Kill the first training process once it is well into training.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for child in multiprocessing.active_children():
                time.sleep(1.5)
                os.kill(child.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_training)
    killer.start()
    # Enough epochs that the first training is still running when the killer strikes.
    study = run_search(X, y, fixed=TINY, n_trials=2, epochs=80, pruner="none")
    killer.join()
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["training_exitcode"] == -signal.SIGKILL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == TrialState.COMPLETE and retry.params == trials[0].params
    assert _states(study) == {"COMPLETE": 2, "FAIL": 1}


# --------------------------------------------------------------------------- storage
@pytest.mark.parametrize(
    ("url", "error", "match"),
    [
        ("redis://localhost:6379/0", ValueError, "not one of Optuna's RDB storages"),
        ("just words", ValueError, "not a database URL"),
        ("postgresql+nosuchdriver://u@localhost/db", ValueError, "cannot be loaded"),
        ("sqlite:///{tmp}/missing/study.db", ValueError, "does not exist"),
        # Nothing listens on port 1: refused at once.
        ("postgresql+psycopg://u:secret@127.0.0.1:1/db", ConnectionError, "cannot connect"),
    ],
)
def test_check_storage_url_errors(tmp_path, url, error, match):
    with pytest.raises(error, match=match) as info:
        check_storage_url(url.format(tmp=tmp_path))
    assert "secret" not in str(info.value)


def test_check_storage_url_accepts_sqlite_and_writes_nothing(tmp_path):
    check_storage_url(f"sqlite:///{tmp_path / 'study.db'}")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ command line
@pytest.fixture
def cifar10_archive(make_cifar_archive):
    """Synthetic CIFAR-10: 12 random train and 2 test images per class."""
    return make_cifar_archive("cifar10", n_per_class_train=12, n_per_class_test=2)


def test_cli_runs_a_search_and_resumes_it(cli, cifar10_archive, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(cifar10_archive), "--subset", "all", "--epochs", "1"]
    args += [*TINY_ARGS, "--output", str(out), "--no-progress", "--pruner", "none"]
    assert cli.main([*args, "--n-trials", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"]["complete"] == 2 and summary["images"] == 120
    assert set(summary["test_accuracy"]) == {"clean", "pixel_noise_3pct"}
    for name in ("study.db", "best_params.json", "trials.csv", "model.joblib", "robustness.md"):
        assert (out / name).is_file()
    assert len(list(out.glob("*.png"))) == 4  # Optuna's three and the robustness bars
    robustness = summary["robustness"]
    assert robustness["images"] == 20
    assert robustness["clean_accuracy"] == pytest.approx(summary["test_accuracy"]["clean"])
    # Rerunning resumes the study in the output folder.
    assert cli.main([*args, "--n-trials", "3"]) == 0
    assert json.loads((out / "summary.json").read_text())["trials"]["complete"] == 3


def test_cli_show_space(cli, capsys):
    assert cli.main(["--show-space", "--set", "depth=3"]) == 0
    out = capsys.readouterr().out
    assert "kernel_order" in out and "fixed:" in out
    assert "learning_rate" in cli.build_parser().format_help()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--storage", "redis://localhost/0"], "not one of Optuna's RDB storages"),
        (["--storage", "postgresql+psycopg://u:p@127.0.0.1:1/db"], "cannot connect"),
        (["--subset", "15"], "two images per class"),
        (["--families", "resnet50"], "cannot be searched"),
        (["--set", "nonsense=1"], "not parameters"),
    ],
)
def test_cli_bad_input_fails_before_writing_a_study(
    cli, cifar10_archive, tmp_path, capsys, extra, match
):
    out = tmp_path / "run"
    argv = ["--data", str(cifar10_archive), "--output", str(out), "--no-progress", *extra]
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (out / "study.db").exists()


def test_cli_output_that_is_a_file(cli, cifar10_archive, tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    assert cli.main(["--data", str(cifar10_archive), "--output", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert out.read_text() == "not a folder"


@pytest.mark.parametrize("flag", ["--n-trials", "--epochs", "--subset", "--timeout"])
def test_cli_rejects_zero_budgets(cli, tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as info:
        cli.main([flag, "0", "--output", str(tmp_path / "run")])
    assert info.value.code == 2
    assert "must be" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
