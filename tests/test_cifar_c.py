"""Official CIFAR-10-C / CIFAR-100-C folders (sklcifar.datasets.load_cifar_c, the CLI)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from sklcifar.cli import main
from sklcifar.datasets import load_cifar, load_cifar_c
from sklcifar.persistence import load_model


@pytest.fixture
def archive(make_cifar_archive):
    return make_cifar_archive(kind="cifar10", n_per_class_train=2, n_per_class_test=4)


@pytest.fixture
def cifar_c(tmp_path, archive):
    """A CIFAR-10-C folder in the release's layout for the archive's 40 test images:
    fog.npy and snow.npy of 5 x 40 images (severity s: the clean images + s), labels.npy."""
    X, y = load_cifar(archive, split="test", return_X_y=True)
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    for name in ("fog", "snow"):
        np.save(folder / f"{name}.npy", np.concatenate([X + s for s in range(1, 6)]))
    np.save(folder / "labels.npy", np.tile(y, 5))
    return folder


def test_load_cifar_c_reads_one_severity(cifar_c, archive):
    X, y = load_cifar(archive, split="test", return_X_y=True)
    data = load_cifar_c(cifar_c, "fog", 3)
    np.testing.assert_array_equal(data.images, X + 3)
    np.testing.assert_array_equal(data.target, y)
    assert (data.corruption, data.severity) == ("fog", 3)


@pytest.mark.parametrize(
    ("corruption", "severity", "message"),
    [
        ("fog", 0, "from 1 to 5; got 0"),
        ("fog", 6, "got 6"),
        ("fog", 2.0, "an integer"),
        ("smog", 1, "unknown corruption 'smog'"),
        ("frost", 1, "does not exist"),
    ],
)
def test_bad_requests_are_refused(cifar_c, corruption, severity, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_cifar_c(cifar_c, corruption, severity)


def test_bad_files_are_refused(cifar_c):
    np.save(cifar_c / "fog.npy", np.zeros((7, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 of shape \(5 \* n"):
        load_cifar_c(cifar_c, "fog", 1)
    np.save(cifar_c / "fog.npy", np.zeros((10, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="expected uint8 of shape"):
        load_cifar_c(cifar_c, "fog", 1)
    np.save(cifar_c / "labels.npy", np.zeros(199, dtype=np.int64))
    with pytest.raises(ValueError, match=r"one label per image of snow.npy, shape \(200,\)"):
        load_cifar_c(cifar_c, "snow", 1)
    np.save(cifar_c / "labels.npy", np.arange(200))
    with pytest.raises(ValueError, match="does not repeat one block of 40 labels"):
        load_cifar_c(cifar_c, "snow", 1)
    np.save(cifar_c / "labels.npy", np.zeros(200))
    with pytest.raises(ValueError, match="float64 labels; expected integer"):
        load_cifar_c(cifar_c, "snow", 1)
    (cifar_c / "labels.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="not a .npy file"):
        load_cifar_c(cifar_c, "snow", 1)


def run(capsys, command: str) -> tuple[int, str, str]:
    code = main(shlex.split(command))
    out, err = capsys.readouterr()
    return code, out, err


def test_score_and_report_read_the_folder(capsys, tmp_path, cifar_c, archive, tiny_model_path):
    code, out, err = run(
        capsys, f"score {tiny_model_path} --data {cifar_c} --corruption snow --severity 2 --json"
    )
    assert code == 0, err
    model = load_model(tiny_model_path)
    X, y = load_cifar_c(cifar_c, "snow", 2, return_X_y=True)
    assert json.loads(out)["accuracy"] == model.score(X, y)
    code, _, err = run(
        capsys,
        f"report {tiny_model_path} --data {archive} --cifar-c {cifar_c} --corruptions fog "
        f"--severities 4 --subset 20 --out {tmp_path}/r",
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "r" / "robustness.json").read_text())["rows"]
    fog = next(row for row in rows if row["perturbation"] == "fog")
    assert rows[0]["accuracy"] - fog["accuracy"] == fog["drop"]
    code, _, err = run(capsys, f"score {tiny_model_path} --data {cifar_c} --corruption pixel_noise")
    assert code == 2 and "CIFAR-C folder" in err
