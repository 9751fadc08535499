"""``sklcifar train`` with --checkpoint-dir, --checkpoint-every and --init."""

from __future__ import annotations

import pytest

from sklcifar.checkpoints import read_checkpoint_epoch
from sklcifar.persistence import final_classifier, load_model
from tests.test_cli import run

TINY = (
    "train --data {archive} --classifier convnet --subset 40 --epochs 2 --random-state 1 "
    "--validation-fraction 0.25 --param depth=1 --param filters=4 --param 'dense=(8,)' "
    "--param precision=float32 "
)


@pytest.fixture
def archive(make_cifar_archive):
    """A CIFAR-10 archive in the official format: 60 train and 20 test images."""
    return make_cifar_archive(kind="cifar10", n_per_class_train=6, n_per_class_test=2)


def test_train_resumes_from_the_checkpoint_in_its_folder(capsys, archive, tmp_path):
    paths = {"archive": archive, "dir": tmp_path / "ckpt", "out": tmp_path / "m.joblib"}
    command = TINY + "--checkpoint-dir {dir} --out {out} --force"
    code, _, err = run(capsys, command, **paths)
    assert code == 0, err
    assert read_checkpoint_epoch(tmp_path / "ckpt") == 2
    first = final_classifier(load_model(tmp_path / "m.joblib")).history_

    code, _, err = run(capsys, command, **paths)
    assert code == 0, err
    assert f"resuming from {tmp_path / 'ckpt'}: 2 epochs done" in err
    assert final_classifier(load_model(tmp_path / "m.joblib")).history_ == first

    # Another configuration on the same folder: one line naming what differs.
    code, _, err = run(capsys, command.replace("--epochs 2", "--epochs 3"), **paths)
    assert code == 2
    assert "belongs to another fit" in err and "epochs=2 (now 3)" in err


def test_train_init_fine_tunes_a_saved_model(capsys, archive, tmp_path):
    base = tmp_path / "base.joblib"
    code, _, err = run(capsys, TINY + "--out {base}", archive=archive, base=base)
    assert code == 0, err
    code, out, err = run(
        capsys,
        "train --data {archive} --subset 40 --init {base} --epochs 1 --param learning_rate=1e-4 "
        "--out {out}",
        archive=archive,
        base=base,
        out=tmp_path / "tuned.joblib",
    )
    assert code == 0, err
    assert "trained convnet (1 epoch) on 40 images" in out
    tuned = final_classifier(load_model(tmp_path / "tuned.joblib"))
    saved = final_classifier(load_model(base))
    assert tuned.init == str(base)
    assert len(tuned.history_["loss"]) == 1 and tuned.learning_rate == 1e-4
    assert tuned.architecture_ == saved.architecture_  # the saved model's network


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--init {base} --preset m7", "with --init the network is the model's"),
        ("--init {base} --classifier fastnet", "is a convnet; a fine-tuned model keeps"),
        ("--init {base} --out {base} --force", "is also an input"),
        ("--checkpoint-every 2", "--checkpoint-every needs --checkpoint-dir"),
        ("--checkpoint-dir {dir} --minutes 5", "cannot be combined with --minutes"),
        (
            "--checkpoint-dir {dir} --checkpoint-every 0",
            "argument --checkpoint-every: must be a number of epochs",
        ),
        ("--checkpoint-dir {dir} --checkpoint-every 5parsecs", "such as '90s'"),
    ],
)
def test_train_refuses_bad_long_fit_flags(capsys, tiny_model_path, tmp_path, flags, message):
    command = "train --data {archive} " + flags
    code, _, err = run(
        capsys, command, archive=tmp_path / "none", base=tiny_model_path, dir=tmp_path
    )
    assert code == 2
    assert message in err
