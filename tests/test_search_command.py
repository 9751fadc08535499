"""``sklcifar search`` and its benchmark wrapper, benchmarks/search.py, on synthetic
CIFAR-10 archives (120 train images) with tiny networks."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from sklcifar.cli import build_parser, main
from sklcifar.persistence import load_model
from sklcifar.search.command import _check_output

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--families", "convnet", "--param", "depth=2", "--param", "filters=4"]
TINY_ARGS += ["--param", "dense=[8]", "--param", "training=seed"]


@pytest.fixture
def cifar10_archive(make_cifar_archive):
    """Synthetic CIFAR-10: 12 random train and 2 test images per class."""
    return make_cifar_archive("cifar10", n_per_class_train=12, n_per_class_test=2)


@pytest.fixture(scope="module")
def search_benchmark(load_benchmark):
    """benchmarks/search.py as a module (a script, not part of the package)."""
    return load_benchmark("search")


def test_search_command_searches_refits_on_the_whole_split_and_resumes(
    cifar10_archive, tmp_path, capsys
):
    out = tmp_path / "run"
    args = ["search", "--data", str(cifar10_archive), "--subset", "100", "--epochs", "1"]
    args += ["--validation-images", "20"]
    args += [*TINY_ARGS, "--output", str(out), "--no-progress", "--pruner", "none"]
    args += ["--refit-epochs", "1", "--objective", "balanced", "--report-images", "20"]
    assert main([*args, "--n-trials", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"]["complete"] == 1 and summary["search_images"] == 100
    assert summary["validation_images"] == 20
    trials = csv.DictReader((out / "trials.csv").open())
    assert [row["validation_images"] for row in trials] == ["20"]
    assert summary["refit"] == {**summary["refit"], "images": 120, "epochs": 1}
    assert set(summary["test_accuracy"]) == {"clean", "pixel_noise"}
    assert summary["objective"] == "balanced" and "machine" in summary
    for name in ("study.db", "best_params.json", "trials.csv", "model.joblib", "robustness.md"):
        assert (out / name).is_file()
    assert len(list(out.glob("*.png"))) == 3  # Optuna's history and coordinates, robustness
    assert summary["robustness"]["images"] == 20
    capsys.readouterr()
    # Rerunning resumes the study in the output folder, replacing the earlier outputs only
    # with --force (checked before any work); other settings are refused.
    written = {path.name: path.read_bytes() for path in out.iterdir()}
    assert main([*args, "--n-trials", "2", "--search-only"]) == 2
    err = capsys.readouterr().err
    assert "trials.csv already exists; refusing to overwrite it" in err and "--force" in err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == written
    assert main([*args, "--n-trials", "2", "--search-only", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"]["complete"] == 2
    assert main([*args, "--n-trials", "3", "--objective", "noisy", "--force"]) == 2
    assert "another objective" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::sklcifar.time_budget.TimeBudgetWarning")
def test_a_trial_that_beat_the_default_duels_it_on_the_whole_split_before_the_refit(
    cifar10_archive, tmp_path, capsys, monkeypatch
):
    import sklcifar.search.command as command

    # Tiny ConvNets stand in for the default and a challenger: trial 0 plays the default,
    # trial 1 the configuration the trials chose.
    monkeypatch.setattr(command, "default_complete_trial", lambda study: study.trials[0])
    monkeypatch.setattr(command, "refit_trial", lambda study, **kwargs: study.trials[1])
    out = tmp_path / "run"
    args = ["search", "--data", str(cifar10_archive), "--subset", "60", "--epochs", "1"]
    args += ["--validation-images", "40", "--n-trials", "2", "--duel-seconds", "3"]
    args += [*TINY_ARGS, "--output", str(out), "--no-progress", "--pruner", "none"]
    args += ["--refit-epochs", "1", "--no-robustness-report"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    duel = summary["duel"]
    assert (duel["default"]["trial"], duel["challenger"]["trial"]) == (0, 1)
    assert duel["seconds"] == 3 and duel["objective"] == "accuracy"
    # Scored on the 40 validation images, the refit trains the winner.
    score = duel["challenger"]["score"]
    assert round(score * 40, 6).is_integer()
    assert summary["refit"]["trial"] == duel["winner"]
    # --duel-seconds 0: the trials' choice is refit without a duel.
    assert main([*args, "--duel-seconds", "0", "--force"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["duel"] is None and summary["refit"]["trial"] == 1


def test_only_the_files_a_run_would_replace_need_force(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "study.db").write_bytes(b"")  # a study is resumed without asking
    (out / "model.joblib").write_bytes(b"")

    def args(*extra: str) -> argparse.Namespace:
        return build_parser().parse_args(["search", "--output", str(out), *extra])

    _check_output(args("--search-only"))  # writes no model
    with pytest.raises(FileExistsError, match="model.joblib already exists"):
        _check_output(args())
    _check_output(args("--force"))


def test_search_declares_the_data_options_as_the_other_subcommands():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    def option(command: str, flag: str) -> argparse.Action:
        actions = commands.choices[command]._actions
        return next(action for action in actions if flag in action.option_strings)

    for flag in ("--data", "--label-mode", "--force"):
        search, train = option("search", flag), option("train", flag)
        assert (search.type, search.choices, search.default) == (
            train.type,
            train.choices,
            train.default,
        )
    assert option("search", "--label-mode").help == option("train", "--label-mode").help
    assert option("train", "--data").required and not option("search", "--data").required


def test_refit_minutes_uses_the_time_budget(cifar10_archive, tmp_path):
    out = tmp_path / "run"
    args = ["search", "--data", str(cifar10_archive), "--subset", "all", "--epochs", "1"]
    args += [*TINY_ARGS, "--output", str(out), "--no-progress", "--n-trials", "1"]
    args += ["--refit-minutes", "0.1", "--no-robustness-report", "--validation-images", "0"]
    assert main(args) == 0
    refit = json.loads((out / "summary.json").read_text())["refit"]
    # The saved refit trained to the 6 s budget (how long it took depends on the machine
    # and what runs beside it, so that is not asserted).
    assert refit["epochs"] >= 1 and refit["estimated_epochs"] is not None
    assert load_model(out / "model.joblib")[-1].time_budget == 6.0


def test_show_space_prints_the_space_the_fidelity_and_a_user_space(tmp_path, capsys):
    assert main(["search", "--show-space", "--param", "depth=3", "--epochs", "9"]) == 0
    out = capsys.readouterr().out
    assert "kernel_order" in out and "fixed:" in out and "fastnet:" in out
    assert "judged after epochs 2, 6" in out
    assert "fidelity: epochs+data" in out and "epochs 1-2 on 1/9, epochs 3-6 on 1/3" in out
    assert main(["search", "--show-space", "--fidelity", "epochs"]) == 0
    assert "all of them in every epoch (fidelity epochs)" in capsys.readouterr().out
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"resnet": {"width": {"choices": [4, 8]}}}))
    assert main(["search", "--show-space", "--space", str(space), "--families", "resnet"]) == 0
    assert "width              one of 4, 8" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--storage", "redis://localhost/0"], "not one of Optuna's RDB storages"),
        (["--storage", "postgresql+psycopg://u:pw@127.0.0.1:1/db"], "cannot connect"),
        (["--subset", "15", "--validation-images", "20"], "two images per class"),
        (["--families", "resnet50"], "cannot be searched"),
        (["--param", "nonsense=1"], "not parameters"),
        (["--param", "=1"], "expected KEY=VALUE"),
        (["--space", "missing.toml"], "does not exist"),
        (["--max-retry", "-1"], "--max-retry must be >= 0"),
        (["--heartbeat-interval", "10", "--grace-period", "10"], "must exceed"),
        (["--n-trials", "0"], "must be a positive integer"),
        (["--timeout", "0"], "must be a positive number"),
        (["--validation-images", "-1"], "must be 0 or a positive integer"),
        (["--subset", "100", "--validation-images", "30"], "more than the train split's 120"),
        (["--refit-epochs", "2", "--refit-minutes", "1"], "not allowed with"),
        (["--duel-seconds", "-5"], "must be 0 or positive seconds"),
    ],
)
def test_bad_input_fails_in_one_line_before_writing_a_study(
    cifar10_archive, tmp_path, capsys, extra, match
):
    out = tmp_path / "run"
    argv = ["search", "--data", str(cifar10_archive), "--output", str(out), "--no-progress"]
    assert main([*argv, "--families", "convnet", *extra]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert not (out / "study.db").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (
            ["--param", "filters=-4"],
            "fixed parameters ['filters'] are invalid for the 'convnet' classifier: The "
            "'filters' parameter of ConvNetClassifier must be an int in the range [1, inf) or "
            "None. Got -4 instead.",
        ),
        (
            ["--show-space", "--param", "filters=-4"],
            "'filters' parameter of ConvNetClassifier must be an int",
        ),
        (["--param", "noise_fraction=2"], "fixed parameters ['noise_fraction'] are invalid"),
        (
            ["--subset", "40", "--validation-images", "0"],
            "--validation-images 0 splits each trial's 40 images by its validation_fraction "
            "0.1: 4 to score it, 36 to train on, but each side needs an image of each of the "
            "10 classes of CIFAR-10 (the fewest of a CIFAR set); give --validation-images 10 "
            "or more, or --subset 100 or more",
        ),
        (["--validation-images", "0", "--param", "validation_fraction=0"], "holds out none"),
        (["--validation-images", "5"], "--validation-images 5 is too few for the 10 classes"),
        (["--subset", "15"], "--subset 15 is too small for the 10 classes"),
        (["--seed", "-1"], "argument --seed: must be 0 or a positive integer; got '-1'"),
    ],
)
def test_input_errors_come_in_one_line_before_the_data_is_loaded(tmp_path, capsys, extra, match):
    # A missing archive: loading it would fail with "does not exist" instead.
    argv = ["search", "--data", str(tmp_path / "missing.tar.gz"), "--no-progress"]
    out = tmp_path / "run"
    assert main([*argv, "--output", str(out), "--families", "convnet", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert match in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not out.exists()


def test_image_counts_are_checked_against_the_loaded_classes_before_any_trial(
    make_cifar_archive, tmp_path, capsys, monkeypatch
):
    from sklcifar.search import command

    monkeypatch.setattr(command, "run_search", lambda *args, **kwargs: pytest.fail("trials ran"))
    # 200 train images of CIFAR-100's 20 superclasses: enough for CIFAR-10's 10 classes
    # before loading, too few for 20 after.
    archive = make_cifar_archive("cifar100", n_per_class_train=2)
    out = tmp_path / "run"
    argv = ["search", "--data", str(archive), "--output", str(out), "--families", "convnet"]
    assert main([*argv, "--subset", "100", "--validation-images", "0"]) == 2
    err = capsys.readouterr().err
    assert "10 to score it, 90 to train on" in err and "of the 20 classes of " in err
    assert "--subset 200 or more" in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--subset", "30"]) == 2
    assert "--subset 30 is too small for the 20 classes" in capsys.readouterr().err
    assert not out.exists()


def test_output_that_is_a_file(cifar10_archive, tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    assert main(["search", "--data", str(cifar10_archive), "--output", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert out.read_text() == "not a folder"


def test_benchmark_wraps_the_command(search_benchmark, tmp_path, capsys):
    assert search_benchmark.main(["--show-space", "--families", "fastnet"]) == 0
    assert "fast_learning_rate" in capsys.readouterr().out
    assert search_benchmark.main(["--n-trials", "0", "--output", str(tmp_path / "run")]) == 2
    assert "must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_benchmark_comparison_trains_baselines_for_the_search_time(
    search_benchmark, cifar10_archive, tmp_path
):
    args = argparse.Namespace(
        data=cifar10_archive, label_mode="coarse", seed=0, noise_fraction=0.03
    )
    summary = {"total_seconds": 3.0, "test_accuracy": {"clean": 0.5, "pixel_noise": 0.4}}
    result = search_benchmark.compare(args, summary, ("m1",))
    assert result["budget_seconds"] == 3.0 and "cpu" in result["machine"]
    row = result["models"]["m1"]
    assert row["epochs"] >= 1 and set(row["test_accuracy"]) == {"clean", "pixel_noise"}
    assert result["models"]["search"]["test_accuracy"]["clean"] == 0.5


def test_refit_trials_refits_each_named_trial_of_a_finished_search(
    cifar10_archive, tmp_path, capsys, load_benchmark
):
    out = tmp_path / "run"
    args = ["search", "--data", str(cifar10_archive), "--subset", "100", "--epochs", "1"]
    args += ["--validation-images", "20", *TINY_ARGS, "--output", str(out)]
    assert (
        main([*args, "--no-progress", "--pruner", "none", "--n-trials", "2", "--search-only"]) == 0
    )
    module = load_benchmark("refit_trials")
    capsys.readouterr()
    common = [str(out), "--data", str(cifar10_archive), "--refit-epochs", "1"]
    module.main([*common, "--trials", "1,0", "--csv", str(tmp_path / "refits.csv")])
    rows = list(csv.DictReader((tmp_path / "refits.csv").open()))
    assert [row["trial"] for row in rows] == ["1", "0"] and rows[0]["cpu"]
    assert [row["epochs"] for row in rows] == ["1", "1"]
    assert all(0 <= float(row[key]) <= 1 for row in rows for key in ("test_clean", "test_noisy"))
    assert "whole train split for 1 epochs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        module.main([*common, "--trials", "2"])
    assert "the study has no trial [2]" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="it has no study.db"):
        module.main([str(tmp_path), "--trials", "0"])
