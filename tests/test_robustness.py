"""Tests of sklcifar.robustness: the perturbed test sets, the report's numbers and formats."""

import csv
import json
import re

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score

from sklcifar.perturbations import CORRUPTIONS, corrupt, pixel_noise
from sklcifar.robustness import SEVERITIES, evaluate_robustness, perturb

SEED = 3


@pytest.fixture(scope="module")
def report(tiny_pipeline, cifar10_test_small):
    """The full report (15 corruptions x 5 severities) of the tiny pipeline."""
    X, y = cifar10_test_small
    return evaluate_robustness(tiny_pipeline, X, y, random_state=SEED)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def dummy(images):
    return DummyClassifier(strategy="most_frequent").fit(images, np.arange(12) % 3)


# --------------------------------------------------------------------------- perturb
@pytest.mark.parametrize(
    ("name", "severity", "expected"),
    [
        ("pixel_noise", 0, lambda X: pixel_noise(X, 0.1, random_state=SEED)),
        ("fog", 4, lambda X: corrupt(X, "fog", 4, random_state=SEED)),
        ("clean", 0, lambda X: X),
    ],
)
def test_perturb_is_the_perturbations_function(images, name, severity, expected):
    out = perturb(images, name, severity, noise_fraction=0.1, random_state=SEED)
    np.testing.assert_array_equal(out, expected(images))
    assert out.dtype == images.dtype and out is not images


def test_perturb_draws_chunks_in_turn_from_one_generator():
    # 1,000 images per chunk: the second chunk continues the first one's generator.
    X = np.random.default_rng(1).integers(0, 256, (1300, 4, 4), dtype=np.uint8)
    rng = np.random.default_rng(SEED)
    expected = np.concatenate(
        [pixel_noise(X[:1000], 0.5, random_state=rng), pixel_noise(X[1000:], 0.5, random_state=rng)]
    )
    out = perturb(X, "pixel_noise", noise_fraction=0.5, random_state=SEED)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("name", "severity", "noise_fraction", "message"),
    [
        ("blur", 1, 0.03, "unknown perturbation 'blur'"),
        ("fog", 0, 0.03, "must be 1..5; got 0"),
        ("fog", 6, 0.03, "must be 1..5; got 6"),
        ("fog", 2.0, 0.03, "must be an integer 1..5"),
        ("clean", 3, 0.03, "clean has no severity levels"),
        ("pixel_noise", 0, 1.5, "in [0, 1]; got 1.5"),
    ],
)
def test_perturb_rejects_bad_settings(images, name, severity, noise_fraction, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        perturb(images, name, severity, noise_fraction=noise_fraction)


# ---------------------------------------------------------------------------- report
def test_report_rows_are_clean_noise_cells_and_mean(report):
    keys = [(row["perturbation"], row["severity"]) for row in report.rows]
    cells = [(name, severity) for name in CORRUPTIONS for severity in SEVERITIES]
    assert keys == [("clean", 0), ("pixel_noise", 0), *cells, ("mean_corruption", 0)]
    assert all(list(row) == ["perturbation", "severity", "accuracy", "drop"] for row in report.rows)
    assert report.n_images == 200 and report.noise_fraction == 0.03
    assert report.random_state == SEED


def test_report_accuracies_are_the_estimators(report, tiny_pipeline, cifar10_test_small):
    X, y = cifar10_test_small
    clean = accuracy_score(y, tiny_pipeline.predict(X))
    assert report.clean_accuracy == clean
    # The seed's noise acts on the grey images the classifier sees, after Grayscale.
    grey = tiny_pipeline[:-1].transform(X)
    noisy = pixel_noise(grey, 0.03, random_state=SEED)
    assert report.noise_accuracy == accuracy_score(y, tiny_pipeline[-1].predict(noisy))
    blurred = corrupt(X, "motion_blur", 4, random_state=SEED)
    motion = report.row("motion_blur", 4)
    assert motion["accuracy"] == accuracy_score(y, tiny_pipeline.predict(blurred))
    assert motion["drop"] == clean - motion["accuracy"]


def test_report_mean_and_drops(report):
    grid = report.accuracy_grid()
    assert grid.corruptions == CORRUPTIONS and grid.severities == SEVERITIES
    cells = [row["accuracy"] for row in report.rows if row["perturbation"] in CORRUPTIONS]
    np.testing.assert_array_equal(grid.accuracy.ravel(), cells)
    assert report.mean_corruption_accuracy == pytest.approx(np.mean(cells), abs=1e-15)
    assert report.rows[-1]["accuracy"] == report.mean_corruption_accuracy
    assert report.mean_corruption_drop == report.clean_accuracy - report.mean_corruption_accuracy
    for row in report.rows:
        assert row["drop"] == report.clean_accuracy - row["accuracy"]
    assert report.row("clean")["drop"] == 0


def test_markdown_csv_and_dict_hold_the_numbers(report, tmp_path):
    lines = report.to_markdown().splitlines()
    assert lines[0] == "| perturbation | severity | accuracy | drop |"
    assert len(lines) == 2 + len(report.rows)
    for line, row in zip(lines[2:], report.rows, strict=True):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells == [
            row["perturbation"],
            str(row["severity"]),
            f"{row['accuracy']:.4f}",
            f"{row['drop']:.4f}",
        ]
    with report.to_csv(tmp_path / "report.csv").open(newline="") as file:
        read = list(csv.DictReader(file))
    assert [(r["perturbation"], int(r["severity"])) for r in read] == [
        (row["perturbation"], row["severity"]) for row in report.rows
    ]
    assert [float(r["accuracy"]) for r in read] == [row["accuracy"] for row in report.rows]
    assert [float(r["drop"]) for r in read] == [row["drop"] for row in report.rows]
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["rows"] == [dict(row) for row in report.rows]
    assert as_dict["clean_accuracy"] == report.clean_accuracy
    assert as_dict["mean_corruption_accuracy"] == report.mean_corruption_accuracy


def test_report_of_chosen_cells_and_generator_seed(dummy, images):
    y = np.arange(12) % 3
    report = evaluate_robustness(
        dummy, images, y, corruptions=["snow"], severities=[2], random_state=None
    )
    assert [row["perturbation"] for row in report.rows] == [
        "clean",
        "pixel_noise",
        "snow",
        "mean_corruption",
    ]
    assert report.random_state is None
    assert report.row("snow", 2)["accuracy"] == pytest.approx(1 / 3)
    seeded = evaluate_robustness(
        dummy, images, y, corruptions=["snow"], random_state=np.random.default_rng(0)
    )
    assert seeded.accuracy_grid().accuracy.shape == (1, 5)
    with pytest.raises(KeyError, match="no row for perturbation 'fog' at severity 1"):
        report.row("fog", 1)


class Exploding(DummyClassifier):
    def predict(self, X):
        raise AssertionError("predicted before checking the settings")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"corruptions": ["fog", "haze"]}, "corruptions holds 'haze', which is not a valid"),
        ({"severities": [0]}, r"severities holds 0, .*expected values from: 1, 2, 3, 4, 5"),
        ({"severities": [1, 6]}, "severities holds 6"),
        ({"severities": [2.0]}, "severities holds 2.0"),
        ({"severities": [True]}, "severities holds True"),
        ({"noise_fraction": 1.5}, r"noise_fraction must be a share of the pixels in \[0, 1\]"),
        ({"corruptions": []}, "corruptions is empty; give at least one"),
        # Repeats would weigh twice in mean_corruption and repeat rows.
        ({"corruptions": ["fog", "fog", "brightness"]}, "corruptions lists 'fog' more than once"),
        ({"severities": [1, 1]}, "severities lists 1 more than once"),
        # Only CIFAR-C corruptions: clean and pixel_noise are rows of every report already.
        (
            {"corruptions": ["pixel_noise"], "severities": [0]},
            "corruptions holds 'pixel_noise', which is not a valid value; expected values "
            "from: gaussian_noise,",
        ),
        ({"corruptions": ["clean"]}, "corruptions holds 'clean'"),
    ],
)
def test_report_rejects_bad_settings_before_predicting(images, settings, message):
    model = Exploding().fit(images, np.arange(12) % 3)
    with pytest.raises(ValueError, match=message):
        evaluate_robustness(model, images, np.arange(12) % 3, **settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"corruptions": "fog"}, r"corruptions must be a sequence .*not str 'fog' .*\['fog'\]"),
        ({"severities": 3}, r"severities must be a sequence .*not int 3 .*\[3\]"),
    ],
)
def test_report_refuses_one_name_or_level_outside_a_sequence(images, settings, message):
    model = Exploding().fit(images, np.arange(12) % 3)
    with pytest.raises(TypeError, match=message):
        evaluate_robustness(model, images, np.arange(12) % 3, **settings)


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        (np.arange(12) % 3 + 10, "10, 11, 12 (int)"),
        ((np.arange(12) % 3).astype(str), "'0', '1', '2' (str)"),
        ((np.arange(12) % 3).astype(float), "0.0, 1.0, 2.0 (float)"),
    ],
)
def test_report_refuses_labels_outside_the_models_classes(images, labels, shown):
    model = Exploding().fit(images, np.arange(12) % 3)
    expected = f"y holds labels that are not among the model's classes: {shown}; expected labels "
    with pytest.raises(ValueError, match=re.escape(expected + "from 0, 1, 2 (int)")):
        evaluate_robustness(model, images, labels)


def test_report_rejects_unfitted_and_mismatched_input(dummy, images):
    with pytest.raises(NotFittedError):
        evaluate_robustness(DummyClassifier(), images, np.arange(12) % 3)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        evaluate_robustness(dummy, images, np.arange(11) % 3)
    with pytest.raises(ValueError, match="empty"):
        evaluate_robustness(dummy, images[:0], np.arange(0))
