"""Tests of the ``sklcifar`` command line (run in-process) and of sklcifar.persistence."""

import csv
import json
import shlex
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import Pipeline

from sklcifar import ConvNetClassifier
from sklcifar.cli import main
from sklcifar.datasets import load_cifar, stratified_subset
from sklcifar.persistence import ModelFileError, final_classifier, load_model, save_model
from sklcifar.perturbations import corrupt, pixel_noise
from sklcifar.pipelines import make_pipeline
from sklcifar.robustness import evaluate_robustness
from sklcifar.transformers import Grayscale


def run(capsys, command: str, **paths) -> tuple[int, str, str]:
    """``main`` on a shell-like command line whose ``{name}`` fields are ``paths``."""
    code = main(shlex.split(command.format(**paths)))
    out, err = capsys.readouterr()
    return code, out, err


def assert_png(path):
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.fixture
def archive(make_cifar_archive):
    """A synthetic CIFAR-10 archive with 100 test images of random pixels."""
    return make_cifar_archive(kind="cifar10", n_per_class_train=6, n_per_class_test=10)


@pytest.fixture
def test_split(archive):
    return load_cifar(archive, split="test", return_X_y=True)


def expected_score(model_path, images, labels) -> dict:
    """Accuracy and log-loss of a saved model as the API computes them."""
    model = load_model(model_path)
    proba = model.predict_proba(images)
    return {
        "accuracy": accuracy_score(labels, model.predict(images)),
        "log_loss": log_loss(
            labels, proba / proba.sum(axis=1, keepdims=True), labels=model.classes_
        ),
    }


# ----------------------------------------------------------------------------- train
def test_train_saves_a_fitted_pipeline(capsys, archive, tmp_path):
    code, out, err = run(
        capsys,
        "train --data {archive} --classifier convnet --subset 40 --epochs 1 "
        "--validation-fraction 0.25 --random-state 1 --param depth=1 --param filters=4 "
        "--param 'dense=(8,)' --param optimizer=sgd --out {model}",
        archive=archive,
        model=tmp_path / "tiny.joblib",
    )
    assert code == 0, err
    model = load_model(tmp_path / "tiny.joblib")
    assert isinstance(model, Pipeline)
    classifier = model.named_steps["classifier"]
    assert isinstance(classifier, ConvNetClassifier)
    params = classifier.get_params()
    assert (params["depth"], params["filters"], params["dense"]) == (1, 4, (8,))
    assert (params["optimizer"], params["epochs"], params["random_state"]) == ("sgd", 1, 1)
    assert classifier.n_train_ == 30  # 40 images, a quarter held out for validation
    assert len(classifier.history_["val_loss"]) == 1
    X_test, y_test = load_cifar(archive, split="test", return_X_y=True)
    accuracy = model.score(X_test, y_test)
    assert "trained convnet (1 epoch) on 40 images in " in out
    assert f"test accuracy {accuracy:.4f} on 100 images; saved {tmp_path / 'tiny.joblib'}" in out


# ----------------------------------------------------------------------------- score
@pytest.mark.parametrize(
    ("options", "corruption", "severity", "perturbed"),
    [
        ("", "clean", 0, lambda X: X),
        (
            "--corruption gaussian_noise --severity 2 --random-state 5",
            "gaussian_noise",
            2,
            lambda X: corrupt(X, "gaussian_noise", 2, random_state=5),
        ),
        (
            "--corruption pixel_noise --noise-fraction 0.2",
            "pixel_noise",
            0,
            # The seed's noise acts on the grey images the classifier sees.
            lambda X: pixel_noise(Grayscale().fit_transform(X), 0.2, random_state=0),
        ),
    ],
)
def test_score_json_is_the_api_score(
    capsys, tiny_model_path, archive, test_split, options, corruption, severity, perturbed
):
    code, out, err = run(
        capsys,
        "score {model} --data {archive} --json " + options,
        model=tiny_model_path,
        archive=archive,
    )
    assert code == 0, err
    result = json.loads(out)
    X, y = test_split
    expected = expected_score(tiny_model_path, perturbed(X), y)
    assert result == {
        "accuracy": expected["accuracy"],
        "log_loss": pytest.approx(expected["log_loss"], rel=1e-12),
        "n_images": 100,
        "corruption": corruption,
        "severity": severity,
        "model": str(tiny_model_path),
    }


def test_score_prints_one_line(capsys, tiny_model_path, archive, test_split):
    code, out, _ = run(
        capsys,
        "score {model} --data {archive} --corruption fog --severity 3",
        model=tiny_model_path,
        archive=archive,
    )
    expected = expected_score(
        tiny_model_path, corrupt(test_split[0], "fog", 3, random_state=0), test_split[1]
    )
    assert code == 0
    assert out == (
        f"{tiny_model_path} on {archive} (fog, severity 3, 100 images): "
        f"accuracy {expected['accuracy']:.4f}, log-loss {expected['log_loss']:.4f}\n"
    )


# --------------------------------------------------------------------------- perturb
def test_perturb_writes_an_npz_that_score_reads(
    capsys, tiny_model_path, archive, test_split, tmp_path
):
    paths = {"model": tiny_model_path, "archive": archive, "npz": tmp_path / "contrast3"}
    code, out, err = run(
        capsys,
        "perturb --data {archive} --corruption contrast --severity 3 --random-state 1 --out {npz}",
        **paths,
    )
    assert code == 0, err
    assert out == f"wrote 100 images (contrast, severity 3) to {paths['npz']}\n"
    X, y = test_split
    with np.load(paths["npz"]) as data:  # written where asked, without an added ".npz"
        assert sorted(data.files) == ["images", "labels", "target_names"]
        np.testing.assert_array_equal(data["images"], corrupt(X, "contrast", 3, random_state=1))
        np.testing.assert_array_equal(data["labels"], y)
        assert data["target_names"].tolist() == [f"class_{i}" for i in range(10)]

    code, from_npz, _ = run(capsys, "score {model} --data {npz} --json", **paths)
    assert code == 0
    code, from_archive, _ = run(
        capsys,
        "score {model} --data {archive} --json --corruption contrast --severity 3 --random-state 1",
        **paths,
    )
    assert code == 0
    from_npz, from_archive = json.loads(from_npz), json.loads(from_archive)
    assert from_npz["accuracy"] == from_archive["accuracy"]
    assert from_npz["log_loss"] == from_archive["log_loss"]
    assert (from_npz["corruption"], from_npz["n_images"]) == ("clean", 100)


# ---------------------------------------------------------------------------- report
def test_report_writes_the_api_numbers(capsys, tiny_model_path, archive, test_split, tmp_path):
    out_dir = tmp_path / "report"
    code, out, err = run(
        capsys,
        "report {model} --data {archive} --out {out} --subset 50 --severities 1,3 "
        "--corruptions fog,contrast,gaussian_noise",
        model=tiny_model_path,
        archive=archive,
        out=out_dir,
    )
    assert code == 0, err
    X, y = stratified_subset(*test_split, 50, random_state=0)
    expected = evaluate_robustness(
        load_model(tiny_model_path),
        X,
        y,
        corruptions=("fog", "contrast", "gaussian_noise"),
        severities=(1, 3),
        random_state=0,
    )
    assert len(expected.rows) == 2 + 3 * 2 + 1
    assert out == expected.to_markdown()
    summary = json.loads((out_dir / "robustness.json").read_text())
    assert summary["rows"] == [dict(row) for row in expected.rows]
    assert summary["n_images"] == 50 and summary["model"] == str(tiny_model_path)
    assert summary["mean_corruption_accuracy"] == expected.mean_corruption_accuracy
    with (out_dir / "robustness.csv").open(newline="") as file:
        accuracies = [float(row["accuracy"]) for row in csv.DictReader(file)]
    assert accuracies == [row["accuracy"] for row in expected.rows]
    assert expected.to_markdown() in (out_dir / "robustness.md").read_text()
    for name in ("robustness.png", "confusion_matrix.png", "training_curves.png"):
        assert_png(out_dir / name)


# ------------------------------------------------------------------------ bad inputs
@pytest.fixture
def bad_files(tmp_path):
    """Files that are not what a command expects, by name."""
    joblib.dump({"weights": [1, 2]}, tmp_path / "dict.joblib")
    (tmp_path / "random.joblib").write_bytes(np.random.default_rng(0).bytes(2000))
    joblib.dump(make_pipeline("convnet"), tmp_path / "unfitted.joblib")
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    for name, member in [("damaged", b"\x93NUMPY\x01\x00cut short"), ("raw", b"not an array")]:
        with zipfile.ZipFile(tmp_path / f"{name}.npz", "w") as archive:  # zips, not of arrays
            archive.writestr("images.npy", member)
            archive.writestr("labels.npy", member)
    labels = np.arange(10)
    images = np.zeros((10, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "small.npz", images=np.zeros((10, 28, 28), np.uint8), labels=labels)
    np.savez(tmp_path / "flat.npz", images=images.reshape(10, -1), labels=labels)
    np.savez(tmp_path / "short.npz", images=images, labels=labels[:9])
    np.savez(tmp_path / "unlabelled.npz", images=images)
    np.savez(tmp_path / "foreign.npz", images=images, labels=labels + 10)
    np.savez(tmp_path / "strings.npz", images=images, labels=labels.astype(str))
    np.savez(tmp_path / "floats.npz", images=images, labels=labels.astype(float))
    np.savez(tmp_path / "two_names.npz", images=images, labels=labels, target_names=["a", "b"])
    (tmp_path / "notes.txt").write_text("not a folder")
    return tmp_path


BAD_WITHOUT_MODEL = [
    (
        "perturb --data {archive} --corruption blur --severity 1 --out {tmp}/x.npz",
        "invalid choice: 'blur'",
    ),
    (
        "perturb --data {archive} --corruption fog --severity 0 --out {tmp}/x.npz",
        "invalid choice: 0",
    ),
    (
        "perturb --data {archive} --corruption fog --severity 6 --out {tmp}/x.npz",
        "invalid choice: 6",
    ),
    (
        "perturb --data {archive} --corruption pixel_noise --noise-fraction 1.5 --out {tmp}/x.npz",
        "argument --noise-fraction: must be a number in [0, 1]; got '1.5'",
    ),
    (
        "perturb --data {archive} --corruption fog --out {tmp}/x.npz",
        "--corruption fog needs --severity 1..5",
    ),
    (
        "perturb --data {archive} --corruption clean --severity 2 --out {tmp}/x.npz",
        "--severity applies to the CIFAR-C corruptions, not to clean",
    ),
    (
        "perturb --data {archive} --corruption fog --severity 2 --noise-fraction 0.1 "
        "--out {tmp}/x.npz",
        "--noise-fraction applies to --corruption pixel_noise, not to fog",
    ),
    ("perturb --data {tmp}/missing.tar.gz --corruption clean --out {tmp}/x.npz", "does not exist"),
    ("perturb --data {archive} --corruption clean --out {tmp}/no/x.npz", "does not exist"),
    (
        "score {tmp}/dict.joblib --data {archive}",
        "holds a dict; expected a fitted sklcifar classifier",
    ),
    ("score {tmp}/random.joblib --data {archive}", "is not a joblib file saved by sklcifar: "),
    ("score {tmp}/missing.joblib --data {archive}", "missing.joblib' does not exist"),
    ("score {tmp} --data {archive}", "is a folder, not a model file"),
    (
        "score {tmp}/unfitted.joblib --data {archive}",
        "holds an unfitted Pipeline ending in ConvNetClassifier",
    ),
    ("report {tmp}/dict.joblib --data {archive} --out {tmp}/r", "holds a dict"),
    (
        "train --data {archive} --classifier convnet --param nonsense=1",
        "convnet has no parameter 'nonsense'",
    ),
    (
        "train --data {archive} --param epochs --out {tmp}/m.joblib",
        "expected KEY=VALUE; got 'epochs'",
    ),
    ("train --data {archive} --epochs 2 --param epochs=3", "--param epochs=... repeats a value"),
    (
        "train --data {tmp}/missing.tar.gz --param random_state=3",
        "--param random_state: the seed has a flag of its own; give --random-state N",
    ),
    (
        "perturb --data {archive} --corruption clean --random-state -1 --out {tmp}/x.npz",
        "argument --random-state: must be 0 or a positive integer; got '-1'",
    ),
    (
        "train --data {tmp}/missing.tar.gz --random-state 1.5",
        "argument --random-state: must be 0 or a positive integer; got '1.5'",
    ),
    ("score {tmp}/missing.joblib --data {archive} --random-state -3", "got '-3'"),
    ("report {tmp}/missing.joblib --data {archive} --out {tmp}/r --random-state x", "got 'x'"),
    ("train --data {archive} --classifier fastnet --preset m12", "fastnet has none"),
    ("train --data {archive} --epochs 0", "argument --epochs: must be a positive integer; got '0'"),
    ("train --data {archive} --minutes -1", "argument --minutes: must be a positive number"),
    ("train --data {archive} --out {tmp}/no/such/m.joblib", "does not exist"),
    ("train --data {tmp}/missing.tar.gz --out {tmp}/m.joblib", "does not exist"),
    ("train", "the following arguments are required: --data"),
    ("fly --data {archive}", "invalid choice: 'fly'"),
]

BAD_WITH_MODEL = [
    (
        "score {model} --data {tmp}/small.npz",
        "holds images of 28x28 pixels, but the model was fitted on 32x32",
    ),
    (
        "score {model} --data {tmp}/flat.npz",
        "'images' has shape (10, 3072); expected (n_images, height, width)",
    ),
    (
        "score {model} --data {tmp}/short.npz",
        "'labels' has shape (9,); expected one label per image",
    ),
    ("score {model} --data {tmp}/unlabelled.npz", "lacks ['labels']"),
    ("score {model} --data {tmp}/broken.npz", "broken.npz is not an .npz file (not a zip"),
    ("score {model} --data {tmp}/damaged.npz", "damaged.npz is not a readable .npz file"),
    ("score {model} --data {tmp}/raw.npz", "['images', 'labels'] are not numpy arrays"),
    ("score {model} --data {tmp}/missing.npz", "missing.npz' does not exist"),
    ("score {model} --data {archive} --corruption fog --severity 6", "invalid choice: 6"),
    (
        "report {model} --data {archive} --out {tmp}/r --severities 0,1",
        "comma-separated list from 1, 2",
    ),
    ("report {model} --data {archive} --out {tmp}/r --corruptions fog,haze", "got 'fog,haze'"),
    (
        "report {model} --data {archive} --out {tmp}/r --corruptions fog,fog,brightness",
        "argument --corruptions: 'fog,fog,brightness' lists 'fog' more than once",
    ),
    (
        "report {model} --data {archive} --out {tmp}/r --severities 1,1",
        "argument --severities: '1,1' lists 1 more than once",
    ),
    (
        "report {model} --data {tmp}/foreign.npz --out {tmp}/r",
        "foreign.npz holds labels that are not among the classes of ",
    ),
    ("score {model} --data {tmp}/foreign.npz", "10, 11, 12, 13, 14, 15, 16, 17, 18, 19 (int)"),
    ("score {model} --data {tmp}/strings.npz", "strings.npz holds labels that are not among"),
    ("score {model} --data {tmp}/floats.npz", "0.0, 1.0, 2.0"),
    (
        "report {model} --data {tmp}/two_names.npz --out {tmp}/r",
        "two_names.npz holds 2 names but there are 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)",
    ),
    ("report {model} --data {archive} --out {tmp}/notes.txt", "--out must be a folder"),
]


def assert_usage_error(capsys, command, message, **paths):
    code, out, err = run(capsys, command, **paths)
    assert code == 2
    assert out == ""
    assert err.startswith("sklcifar") and err.count("\n") == 1, err  # one line, no traceback
    assert message in err


@pytest.mark.parametrize(("command", "message"), BAD_WITHOUT_MODEL)
def test_bad_input_exits_2_with_one_line(capsys, archive, bad_files, command, message):
    assert_usage_error(capsys, command, message, archive=archive, tmp=bad_files)


@pytest.mark.parametrize(("command", "message"), BAD_WITH_MODEL)
def test_bad_data_for_a_model_exits_2_with_one_line(
    capsys, tiny_model_path, archive, bad_files, command, message
):
    assert_usage_error(
        capsys, command, message, model=tiny_model_path, archive=archive, tmp=bad_files
    )


@pytest.mark.parametrize("data", ["foreign.npz", "two_names.npz"])
def test_report_on_foreign_labels_or_names_writes_nothing(capsys, tiny_model_path, bad_files, data):
    out_dir = bad_files / "r"
    command = "report {model} --data {data} --out {out} --corruptions fog --severities 1"
    code, _, err = run(capsys, command, model=tiny_model_path, data=bad_files / data, out=out_dir)
    assert code == 2, err
    assert list(out_dir.iterdir()) == []


def test_help_comes_from_the_docstrings(capsys):
    assert main(["report", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Write a robustness report of a saved model to a folder." in out
    assert "--severities" in out


# ----------------------------------------------------------------------- persistence
def test_save_and_load_round_trip(tiny_pipeline, cifar10_test_small, tmp_path):
    path = save_model(tiny_pipeline, tmp_path / "model.joblib")
    X, _ = cifar10_test_small
    np.testing.assert_array_equal(load_model(path).predict(X), tiny_pipeline.predict(X))
    classifier = load_model(path).named_steps["classifier"]
    assert set(classifier.saved_versions_) == {"sklcifar", "keras", "tensorflow"}
    bare = save_model(tiny_pipeline.named_steps["classifier"], tmp_path / "classifier.joblib")
    assert isinstance(load_model(bare), ConvNetClassifier)


def test_save_refuses_what_load_would_refuse(tmp_path):
    with pytest.raises(
        ModelFileError, match="holds an unfitted Pipeline ending in ConvNetClassifier"
    ):
        save_model(make_pipeline("convnet"), tmp_path / "model.joblib")
    with pytest.raises(ModelFileError, match="holds a list"):
        save_model([1, 2], tmp_path / "model.joblib")
    assert not (tmp_path / "model.joblib").exists()


def test_load_errors_name_the_file(bad_files):
    with pytest.raises(FileNotFoundError, match="missing.joblib"):
        load_model(bad_files / "missing.joblib")
    with pytest.raises(
        ModelFileError, match=r"random\.joblib is not a joblib file saved by sklcifar"
    ):
        load_model(bad_files / "random.joblib")
    with pytest.raises(ValueError, match=r"dict\.joblib holds a dict; expected a fitted sklcifar"):
        load_model(bad_files / "dict.joblib")


def test_train_minutes_is_the_classifiers_time_budget():
    from sklcifar.cli import _classifier_params, build_parser

    args = build_parser().parse_args(["train", "--data", "x", "--minutes", "2.5", "--epochs", "9"])
    params = _classifier_params(args)
    assert params["time_budget"] == 150.0 and params["epochs"] == 9
    args = build_parser().parse_args(["train", "--data", "x"])
    assert "time_budget" not in _classifier_params(args)


def test_train_minutes_reports_the_epochs_and_width_the_budget_chose(capsys, archive, tmp_path):
    code, out, err = run(
        capsys,
        "train --data {archive} --subset 40 --minutes 1 --epochs 1 --validation-fraction 0.25 "
        "--random-state 0 --out {model}",
        archive=archive,
        model=tmp_path / "budget.joblib",
    )
    assert code == 0, err
    # FastNet's width="auto" timed width 16; the cap of one epoch leaves 32 no chance.
    assert "trained fastnet (1 epoch, width 16) on 40 images in " in out
    classifier = final_classifier(load_model(tmp_path / "budget.joblib"))
    assert classifier.get_params()["width"] == "auto" and list(classifier.width_epochs_) == [16]
