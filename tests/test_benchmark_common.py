"""The benchmark scripts' shared helpers (benchmarks/_common.py) and their command lines."""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import pytest

from sklcifar.datasets import load_cifar
from sklcifar.persistence import save_model
from sklcifar.pipelines import make_pipeline

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common(load_benchmark):
    """benchmarks/_common.py as a module (the scripts import it from their own folder)."""
    return load_benchmark("_common")


def test_results_table_prints_markdown_and_rewrites_the_csv_after_each_row(
    common, tmp_path, capsys
):
    path = tmp_path / "rows.csv"
    table = common.ResultsTable(["model", "loop", "img/s"], text_columns=2, csv_path=path)
    assert capsys.readouterr().out == "| model | loop | img/s |\n|---|---|---:|\n"
    table.add({"model": "a", "images_per_s": 812.5}, ["a", "keras.fit", "812"])
    assert capsys.readouterr().out == "| a | keras.fit | 812 |\n"
    # A run stopped here keeps its first row, with the machine it was measured on.
    (first,) = csv.DictReader(path.open())
    assert first["model"] == "a" and first["images_per_s"] == "812.5" and first["cpu"]
    table.add({"model": "b", "images_per_s": 90.0}, ["b", "sklcifar", "90"])
    assert [row["model"] for row in csv.DictReader(path.open())] == ["a", "b"]


def test_results_table_without_csv_and_with_a_wrong_row(common, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = common.ResultsTable(["variant", "img/s"])
    table.add({"variant": "default"}, ["default", "100"])
    assert capsys.readouterr().out.splitlines()[1:] == ["|---|---:|", "| default | 100 |"]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="has 2 cells; got 3"):
        table.add({}, ["default", "100", "extra"])


def test_tta_views_scores_a_saved_model_in_each_mode(
    make_cifar_archive, tmp_path, capsys, load_benchmark
):
    archive = make_cifar_archive("cifar10", n_per_class_train=4, n_per_class_test=2)
    train = load_cifar(archive, split="train")
    model = make_pipeline("fastnet", width=2, epochs=1, batch_size=8, validation_fraction=0)
    save_model(model.fit(train.images, train.target), tmp_path / "model.joblib")
    module = load_benchmark("tta_views")
    module.main(
        ["--model", str(tmp_path / "model.joblib"), "--data", str(archive)]
        + ["--out", str(tmp_path / "out")]
    )
    rows = list(csv.DictReader((tmp_path / "out" / "tta_views.csv").open()))
    assert [(row["tta"], row["margin"]) for row in rows] == [
        ("False", ""),
        ("True", "1.0"),
        ("True", "0.5"),
        ("multicrop", "1.0"),
        ("multicrop", "0.5"),
    ]
    assert all(0 <= float(row["test_accuracy"]) <= 1 for row in rows) and rows[0]["cpu"]
    assert [row["same_as_every_view"] != "" for row in rows] == [False, False, True, False, True]
    assert all(0 <= float(row["same_as_every_view"]) <= 1 for row in rows[2::2])
    assert [row["skipped"] != "" for row in rows] == [False, False, True, False, True]
    assert all(0 <= float(row["skipped"]) <= 1 for row in rows[2::2])
    assert all(float(row["images_per_s"]) > 0 for row in rows)
    assert "| multicrop |" in capsys.readouterr().out
    assert {row["compile"] for row in rows} == {"graph"} and {row["batch"] for row in rows} == {
        "512"  # the recipe's batch of 8, raised to the smallest prediction batch
    }
    assert {(row["network"], row["call"]) for row in rows} == {("folded", "traced")}
    # Prediction batches, XLA, the unfolded network and keras.Model.predict: every mode at
    # every batch, compiled both ways, each row folded and as trained, each called both ways.
    module.main(
        ["--model", str(tmp_path / "model.joblib"), "--data", str(archive), "--repeats", "1"]
        + ["--batch-sizes", "512,1024", "--xla", "--unfolded", "--keras-predict"]
        + ["--tta-margins", "0.3"]
        + ["--out", str(tmp_path / "out")]
    )
    rows = list(csv.DictReader((tmp_path / "out" / "tta_views.csv").open()))
    assert [(row["network"], row["call"], row["tta"], row["batch"]) for row in rows[:5]] == [
        ("folded", "traced", "False", "512"),
        ("folded", "keras.predict", "False", "512"),
        ("as trained", "traced", "False", "512"),
        ("as trained", "keras.predict", "False", "512"),
        ("folded", "traced", "False", "1024"),
    ]
    assert len(rows) == 48 and rows[-1]["compile"] == "xla"
    assert all(float(row["images_per_s"]) > 0 for row in rows)
    # One image: the time a user waits for an answer.
    module.main(
        ["--model", str(tmp_path / "model.joblib"), "--data", str(archive), "--images", "1"]
        + ["--repeats", "1", "--out", str(tmp_path / "one")]
    )
    rows = list(csv.DictReader((tmp_path / "one" / "tta_views.csv").open()))
    assert len(rows) == 5 and {row["test_accuracy"] for row in rows} <= {"0.0", "1.0"}
    with pytest.raises(SystemExit):
        module.main(["--model", str(tmp_path / "model.joblib"), "--images", "0", "--out", "x"])


@pytest.mark.parametrize(
    ("text", "expected"), [("512,2048", [512, 2048]), ("4096", [4096]), ("512, 1024,", [512, 1024])]
)
def test_tta_views_reads_prediction_batches(load_benchmark, text, expected):
    assert load_benchmark("tta_views").batch_sizes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("256,512", "prediction batches are at least 512 images; got '256,512'"),
        ("512,big", "expected integers separated by commas, e.g. 512,2048; got '512,big'"),
        (",", "expected at least one integer, e.g. 512,2048"),
    ],
)
def test_tta_views_refuses_prediction_batches_it_cannot_run(load_benchmark, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        load_benchmark("tta_views").batch_sizes(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,1.5", "tta margins lie in [0, 1]; got '1,1.5'"),
        ("1,half", "expected numbers separated by commas, e.g. 1,0.5; got '1,half'"),
        ("", "expected at least one number, e.g. 1,0.5"),
    ],
)
def test_tta_views_refuses_margins_outside_0_to_1(load_benchmark, text, message):
    assert load_benchmark("tta_views").tta_margins("1, 0.5,") == [1.0, 0.5]
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        load_benchmark("tta_views").tta_margins(text)


@pytest.fixture
def small_cifar10(make_cifar_archive) -> Path:
    """A CIFAR-10 archive of 200 training and 20 test images in the official layout."""
    return make_cifar_archive("cifar10", n_per_class_train=20, n_per_class_test=2)


def test_time_to_accuracy_trains_the_fastnet_recipes_with_the_given_parameters(
    small_cifar10, tmp_path, capsys, load_benchmark
):
    out = tmp_path / "tta"
    load_benchmark("time_to_accuracy").main(
        ["--data", str(small_cifar10), "--recipes", "default", "--default-minutes", "0.05"]
        + ["--fastnet-param", "width=2", "--fastnet-param", "batch_size=8", "--out", str(out)]
    )
    (row,) = csv.DictReader((out / "time_to_accuracy.csv").open())
    assert row["recipe"] == "default" and row["scored"] == "end of a time-budgeted fit"
    assert row["params"] == str({"width": 2, "batch_size": 8}) and row["cpu"]
    assert 0 <= float(row["test_accuracy"]) <= 1 and int(row["epoch"]) >= 1
    assert (out / "time_to_accuracy.png").stat().st_size > 0
    assert "default with time_budget=3 s" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        load_benchmark("time_to_accuracy").main(["--fastnet-param", "widht=2", "--out", str(out)])
    assert "FastNetClassifier has no parameter widht" in capsys.readouterr().err


def test_ensemble_averages_the_members_against_one_fit_of_all_their_epochs(
    small_cifar10, tmp_path, capsys, load_benchmark, monkeypatch
):
    import numpy as np

    module, path = load_benchmark("ensemble"), tmp_path / "ensemble.csv"
    built = []

    def narrow_pipeline(classifier, **params):
        built.append(make_pipeline(classifier, width=2, **params))
        return built[-1]

    monkeypatch.setattr(module, "make_pipeline", narrow_pipeline)
    args = ["--data", str(small_cifar10), "--members", "2", "--epochs", "1", "--csv", str(path)]
    module.main(args)
    rows = list(csv.DictReader(path.open()))
    assert [(row["model"], int(row["epochs"])) for row in rows] == [
        ("member, seed 0", 1),
        ("member, seed 1", 1),
        ("average of the 2 members", 2),
        ("one fit, seed 0", 2),
    ]
    assert [(p[-1].random_state, p[-1].epochs_) for p in built] == [(0, 1), (1, 1), (0, 2)]
    X_test, y_test = load_cifar(small_cifar10, split="test", return_X_y=True)
    average = np.mean([pipeline.predict_proba(X_test) for pipeline in built[:2]], axis=0)
    assert float(rows[2]["test"]) == np.mean(built[0].classes_[average.argmax(axis=1)] == y_test)
    assert float(rows[2]["train_seconds"]) == pytest.approx(
        sum(float(row["train_seconds"]) for row in rows[:2])
    )
    with pytest.raises(SystemExit):
        module.main(["--members", "1"])
    assert "expected --members >= 2" in capsys.readouterr().err


def test_robust_training_gives_both_recipes_the_same_time_budget(
    small_cifar10, tmp_path, capsys, load_benchmark, monkeypatch
):
    module, out = load_benchmark("robust_training"), tmp_path / "robust"
    built = []

    def recording_make_pipeline(classifier, **params):
        built.append(params)
        return make_pipeline(classifier, **params)

    monkeypatch.setattr(module, "make_pipeline", recording_make_pipeline)
    module.main(
        ["--data", str(small_cifar10), "--minutes", "0.1", "--report-images", "20"]
        + ["--out", str(out)]
    )
    rows = list(csv.DictReader((out / "robust_training.csv").open()))
    assert [row["model"] for row in rows] == ["default", "robust"]
    # Both fits got the same 6 s budget and no epoch count (the budget sets the epochs;
    # how long they took depends on the machine and what runs beside it, so it is not
    # asserted here).
    recipes = module.RECIPES
    assert built == [
        {"random_state": 0, "time_budget": 6.0, **recipes[name]} for name in ("default", "robust")
    ]
    assert all(int(row["epochs"]) >= 1 and float(row["train_seconds"]) > 0 for row in rows)
    printed = capsys.readouterr().out
    assert "0.1 minutes each" in printed and "| robust |" in printed
    with pytest.raises(SystemExit):
        module.main(["--epochs", "2", "--minutes", "1", "--out", str(out)])
    assert "not allowed with argument" in capsys.readouterr().err


def test_robust_training_recipes_are_valid_fastnet_settings(load_benchmark):
    from sklcifar.estimators import FAST_RECIPE

    recipes = load_benchmark("robust_training").RECIPES
    for name, params in recipes.items():
        classifier = make_pipeline("fastnet", **params).named_steps["classifier"]
        classifier._validate_params()  # what fit checks first
        assert {key: classifier.get_params()[key] for key in params} == params, name
    # The lighter-regularisation recipes differ from the robust one in those settings only.
    light = recipes["robust_light_regularisation"]
    assert light["label_smoothing"] == 0.0 < FAST_RECIPE["label_smoothing"]
    assert light["weight_decay"] == FAST_RECIPE["weight_decay"] / 2
    assert recipes["robust_no_smoothing"] == {**recipes["robust"], "label_smoothing": 0.0}


def test_split_batchnorm_trains_the_mixed_half_through_auxiliary_layers(
    small_cifar10, tmp_path, capsys, load_benchmark
):
    import keras
    import numpy as np

    from sklcifar import architectures, training

    module = load_benchmark("split_batchnorm")
    # Training: the main layer's statistics come from the batch's first half alone, the
    # auxiliary layer's from the second; outside training the main layer alone.
    layer = module.SplitBatchNormalization(momentum=0.0)
    batch = np.concatenate([np.zeros((4, 2, 2, 3)), np.full((4, 2, 2, 3), 10.0)]).astype("float32")
    layer(batch, training=True)
    assert np.allclose(keras.ops.convert_to_numpy(layer.main.moving_mean), 0.0)
    assert np.allclose(keras.ops.convert_to_numpy(layer.auxiliary.moving_mean), 10.0)
    predicted = keras.ops.convert_to_numpy(layer(batch[4:], training=False))
    assert np.allclose(predicted, keras.ops.convert_to_numpy(layer.main(batch[4:])))
    assert not np.allclose(predicted, keras.ops.convert_to_numpy(layer.auxiliary(batch[4:])))

    X, y = load_cifar(small_cifar10, split="train", return_X_y=True)
    pipeline = make_pipeline("fastnet", epochs=1, width=2, augment=("robust",), random_state=0)
    with module.split_batchnorm():
        pipeline.fit(X, y)
    kinds = {type(layer) for layer in pipeline[-1].model_.layers}
    assert module.SplitBatchNormalization in kinds
    assert keras.layers.BatchNormalization not in kinds
    # The package is itself again afterwards.
    assert architectures.layers is keras.layers
    assert training.AugmentedBatches is not module._SplitBatches
    # The batches keep their images' shape and labels, in order.
    batches = module._SplitBatches(
        X[:8], y[:8], batch_size=8, augment=pipeline[-1]._augmentations(), seed=0
    )
    images, labels = batches[0]
    assert images.shape == X[:8].shape and list(labels) == list(y[:8])

    out = tmp_path / "split"
    module.main(
        ["--data", str(small_cifar10), "--epochs", "1", "--report-images", "20"]
        + ["--out", str(out)]
    )
    table = (out / "split_batchnorm.md").read_text()
    assert all(f"| {name} |" in table for name in ("default", "mix_half", "split"))


def test_conv_gradients_times_each_same_convolution_both_ways(tmp_path, capsys, load_benchmark):
    path = tmp_path / "conv.csv"
    load_benchmark("conv_gradients").main(
        ["--batch", "2", "--repeats", "1", "--steps", "1", "--csv", str(path)]
    )
    rows = list(csv.DictReader(path.open()))
    # FastNet's seven stride-1 "same" convolutions (not the "valid" whitening layer), then all.
    assert [row["layer"] for row in rows] == [
        "layer1_conv", "layer1_res1_conv", "layer1_res2_conv", "layer2_conv",
        "layer3_conv", "layer3_res1_conv", "layer3_res2_conv", "all",
    ]  # fmt: skip
    assert rows[5]["input"] == "3x3x128" and rows[5]["kernel"] == "3x3 -> 128"
    assert all(float(row["keras_ms"]) > 0 and float(row["forward_ms"]) > 0 for row in rows)
    assert rows[0]["cpu"]
    assert "| all of them |" in capsys.readouterr().out


def test_width_probe_compares_the_probes_step_with_the_fits_own(
    small_cifar10, tmp_path, capsys, load_benchmark
):
    out = tmp_path / "probe"
    load_benchmark("width_probe").main(
        ["--data", str(small_cifar10), "--subset", "200", "--budget", "5", "--fits", "1"]
        + ["--memory", "tensorflow", "--out", str(out)]
    )
    (row,) = csv.DictReader((out / "width_probe.csv").open())
    assert row["memory"] == "tensorflow"
    assert float(row["probe_step_s"]) > 0 and float(row["training_step_s"]) > 0
    ratio = float(row["probe_step_s"]) / float(row["training_step_s"])
    assert float(row["ratio"]) == pytest.approx(ratio, rel=0.01)
    assert int(row["epochs_run"]) >= 1 and float(row["epochs_estimated"]) >= 0
    assert "| fit | probe step ms |" in capsys.readouterr().out
    # Its patches are undone: the package is as before for the tests that follow.
    from sklcifar import allocator, estimators, time_budget

    assert estimators.AUTO_WIDTHS == (16, 32) and time_budget.allocator is allocator
    assert time_budget.training_step_seconds.__module__ == "sklcifar.time_budget"
