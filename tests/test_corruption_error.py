"""Corruption error, mCE and relative mCE; comparisons of models; pixel noise's space."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline

from sklcifar.cli import main
from sklcifar.corruption_error import (
    FAMILIES,
    compare_reports,
    comparison_markdown,
    corruption_errors,
)
from sklcifar.datasets import load_cifar
from sklcifar.perturbations import CORRUPTIONS
from sklcifar.plots import plot_robustness_comparison
from sklcifar.robustness import RobustnessReport, evaluate_robustness
from sklcifar.transformers import Grayscale, Standardize


def report(clean: float, cells: dict, *, n_images: int = 100, test_set: str = "abc"):
    rows = [{"perturbation": "clean", "severity": 0, "accuracy": clean, "drop": 0.0}]
    rows.append({"perturbation": "pixel_noise", "severity": 0, "accuracy": clean, "drop": 0.0})
    for (name, severity), accuracy in cells.items():
        rows.append({"perturbation": name, "severity": severity, "accuracy": accuracy, "drop": 0.0})
    mean = float(np.mean(list(cells.values())))
    rows.append({"perturbation": "mean_corruption", "severity": 0, "accuracy": mean, "drop": 0})
    return RobustnessReport(tuple(rows), n_images, 0.03, 0, test_set)


MODEL = report(0.9, {("fog", 1): 0.8, ("fog", 2): 0.7, ("snow", 1): 0.9, ("snow", 2): 0.5})
BASE = report(0.8, {("fog", 1): 0.6, ("fog", 2): 0.4, ("snow", 1): 0.7, ("snow", 2): 0.5})


def test_ce_and_relative_ce_follow_hendrycks_and_dietterich():
    result = corruption_errors(MODEL, BASE)
    # CE = sum of errors / baseline's sum; rCE = sum of (error - clean error) likewise.
    assert result["ce"]["fog"] == pytest.approx((0.2 + 0.3) / (0.4 + 0.6))
    assert result["ce"]["snow"] == pytest.approx((0.1 + 0.5) / (0.3 + 0.5))
    assert result["relative_ce"]["fog"] == pytest.approx((0.1 + 0.2) / (0.2 + 0.4))
    assert result["relative_ce"]["snow"] == pytest.approx((0.0 + 0.4) / (0.1 + 0.3))
    assert result["mce"] == pytest.approx(np.mean([0.5, 0.75]))
    assert result["relative_mce"] == pytest.approx(np.mean([0.5, 1.0]))
    assert corruption_errors(BASE, BASE)["mce"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (report(0.8, {("fog", 1): 0.6, ("fog", 2): 0.4}, test_set="xyz"), "different test"),
        (report(0.8, {("fog", 1): 0.6}, n_images=50), "different test sets"),
        (report(0.8, {("fog", 1): 0.6, ("fog", 2): 0.4}), "different corruptions"),
        (
            report(0.8, {("fog", 1): 1.0, ("fog", 2): 1.0, ("snow", 1): 0.7, ("snow", 2): 0.5}),
            "no errors under",
        ),
    ],
)
def test_incomparable_baselines_are_refused(other, message):
    with pytest.raises(ValueError, match=message):
        corruption_errors(MODEL, other)


def test_comparison_rows_table_and_figure():
    rows = compare_reports({"robust": MODEL, "default": BASE}, baseline="default")
    assert [row["model"] for row in rows] == ["robust", "default"]
    assert rows[1]["mce"] == pytest.approx(1.0)
    assert rows[0]["weather"] == pytest.approx(np.mean([0.8, 0.7, 0.9, 0.5]))  # fog, snow
    assert "noise" not in rows[0]  # no noise corruption in these reports
    assert rows[0]["corruption_of_clean"] == pytest.approx(MODEL.mean_corruption_accuracy / 0.9)
    assert "| robust |" in comparison_markdown(rows)
    assert sum(len(names) for names in FAMILIES.values()) == len(CORRUPTIONS)
    ax = plot_robustness_comparison({"robust": MODEL, "default": BASE})
    assert len(ax.patches) == 2 * 5  # clean, noise, fog, snow, mean for two models
    with pytest.raises(ValueError, match="not among"):
        compare_reports({"a": MODEL}, baseline="b")


def test_report_round_trips_through_json():
    assert RobustnessReport.from_dict(json.loads(json.dumps(MODEL.to_dict()))) == MODEL
    with pytest.raises(ValueError, match="not a robustness report"):
        RobustnessReport.from_dict({"rows": []})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "expected a clean, a pixel_noise and a mean_corruption row"),
        (MODEL.rows[:1] + MODEL.rows[2:], "got the rows ('clean', 0), ('fog', 1)"),
        (MODEL.rows[:3] + MODEL.rows[2:], r"the row ('fog', 1) appears twice"),
        ([{"perturbation": "clean"}], "a row lacks ['severity', 'accuracy', 'drop']"),
        (
            [*MODEL.rows, {**MODEL.rows[0], "perturbation": "haze"}],
            "unknown perturbation 'haze'",
        ),
    ],
)
def test_report_from_dict_refuses_rows_no_report_holds(rows, message):
    # They would fail later as a bare KeyError, or count a cell twice.
    data = {**MODEL.to_dict(), "rows": [dict(row) for row in rows]}
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        RobustnessReport.from_dict(data)
    assert str(error.value).startswith("not a robustness report: ")


class RecordingDummy(DummyClassifier):
    def predict(self, X):
        type(self).seen.append(np.asarray(X))
        return super().predict(X)


def test_pixel_noise_acts_on_the_images_the_classifier_sees():
    rgb = np.zeros((10, 8, 8, 3), dtype=np.uint8)
    y = np.arange(10) % 2
    RecordingDummy.seen = []
    pipe = make_pipeline(Grayscale(), RecordingDummy()).fit(rgb, y)
    evaluate_robustness(pipe, rgb, y, corruptions=["fog"], severities=[1])
    noisy = next(images for images in RecordingDummy.seen if images.any())
    assert noisy.shape == (10, 8, 8, 1)  # grey, after Grayscale
    values = noisy[noisy > 0]
    assert values.max() > 200  # uniform over 0..255, not means of three RGB draws


def test_pixel_noise_on_standardised_images_is_refused():
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8), np.arange(10) % 2
    pipe = make_pipeline(Standardize(), DummyClassifier()).fit(X, y)
    with pytest.raises(ValueError, match="cannot tell.*before Standardize"):
        evaluate_robustness(pipe, X, y, corruptions=["fog"], severities=[1])


# ------------------------------------------------------------------ sklcifar report --baseline
def run(capsys, command: str) -> tuple[int, str, str]:
    code = main(shlex.split(command))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_with_a_baseline_model_and_report(
    capsys, tmp_path, tiny_model_path, make_cifar_archive
):
    archive = make_cifar_archive(kind="cifar10", n_per_class_train=2, n_per_class_test=4)
    common = f"--data {archive} --corruptions fog,snow --severities 1,2"
    code, out, err = run(
        capsys, f"report {tiny_model_path} {common} --out {tmp_path}/a --baseline {tiny_model_path}"
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "a" / "comparison.json").read_text())
    assert [row["mce"] for row in rows] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert (tmp_path / "a" / "comparison.png").read_bytes().startswith(b"\x89PNG")
    saved = tmp_path / "a" / "robustness.json"
    code, _, err = run(
        capsys, f"report {tiny_model_path} {common} --out {tmp_path}/b --baseline {saved}"
    )
    assert code == 0, err
    code, _, err = run(
        capsys,
        f"report {tiny_model_path} {common} --subset 20 --out {tmp_path}/c --baseline {saved}",
    )
    assert code == 2 and "different test sets" in err
    (tmp_path / "bad.json").write_text(json.dumps({"n_images": 40}))
    code, _, err = run(
        capsys,
        f"report {tiny_model_path} {common} --out {tmp_path}/d --baseline {tmp_path}/bad.json",
    )
    assert code == 2 and f"--baseline {tmp_path}/bad.json: not a robustness report" in err


def test_perturb_writes_grey_images_with_the_seeds_noise(capsys, tmp_path, make_cifar_archive):
    archive = make_cifar_archive(kind="cifar10", n_per_class_train=2, n_per_class_test=2)
    out = tmp_path / "noisy.npz"
    code, _, err = run(capsys, f"perturb --data {archive} --corruption pixel_noise --out {out}")
    assert code == 0, err
    with np.load(out) as data:
        noisy = data["images"]
    grey = Grayscale().fit_transform(load_cifar(archive, split="test").images)
    assert noisy.shape == grey.shape == (20, 32, 32, 1)
    changed = (noisy != grey).reshape(20, -1).sum(axis=1)
    assert changed.max() <= int(32 * 32 * 0.03) and changed.min() >= int(32 * 32 * 0.03) - 3
