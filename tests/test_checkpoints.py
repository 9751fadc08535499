"""Checkpoints during fit and resuming from them (sklcifar.checkpoints)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from sklcifar import ConvNetClassifier
from sklcifar.checkpoints import (
    CHECKPOINT_FILE,
    CheckpointError,
    checkpoint_interval,
    read_checkpoint_epoch,
)
from sklcifar.datasets import stratified_subset

# Every piece of state a resume must restore: dropout (random-generator state), per-epoch
# augmentation, Nesterov momentum, a warm-up schedule (its position), early stopping.
# float32 so that no CPU's bf16 arithmetic enters the comparison.
PARAMS = {
    "depth": 2,
    "filters": 4,
    "dense": (8,),
    "dropout_placement": "all",
    "conv_dropout": 0.2,
    "dense_dropout": 0.3,
    "augment": ("flip", "shift"),
    "optimizer": "nesterov",
    "learning_rate": 0.05,
    "lr_schedule": "warmup_linear",
    "warmup_epochs": 1.0,
    "patience": 3,
    "batch_size": 64,
    "epochs": 4,
    "precision": "float32",
    "random_state": 0,
}

# Fits PARAMS on the images of an .npz with checkpoints and saves the final weights; with
# "hang" it stops moving after the second epoch's checkpoint, to be killed there.
CHILD = textwrap.dedent(
    """
    import sys, time
    import keras, numpy as np, tensorflow as tf
    from sklcifar import ConvNetClassifier
    from tests.test_checkpoints import PARAMS

    tf.config.experimental.enable_op_determinism()  # the same sums on any CPU, any run
    data_path, folder, out, mode = sys.argv[1:]

    class Hang(keras.callbacks.Callback):  # runs after the checkpoint callback
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                time.sleep(600)

    with np.load(data_path) as data:
        X, y = data["X"], data["y"]
    callbacks = [Hang()] if mode == "hang" else None
    clf = ConvNetClassifier(**PARAMS, checkpoint_dir=folder, callbacks=callbacks).fit(X, y)
    np.savez(out, *clf.model_.get_weights(), history=repr(clf.history_))
    """
)


@pytest.fixture(scope="module")
def images(cifar10_train):
    """300 real CIFAR-10 images (3 classes, grey) and their labels."""
    keep = np.isin(cifar10_train.target, [0, 1, 2])
    X, y = stratified_subset(
        cifar10_train.images[keep], cifar10_train.target[keep], 300, random_state=0
    )
    return X.mean(axis=-1).astype(np.uint8), y


def _child(tmp_path, data_path, folder, out, mode) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, str(script), str(data_path), str(folder), str(out), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _weights(path):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)], str(saved["history"])


def test_a_killed_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, images):
    data_path = tmp_path / "data.npz"
    np.savez(data_path, X=images[0], y=images[1])
    killed = tmp_path / "killed"

    victim = _child(tmp_path, data_path, killed, tmp_path / "never.npz", "hang")
    whole = _child(tmp_path, data_path, tmp_path / "whole", tmp_path / "whole.npz", "run")
    deadline = time.monotonic() + 300
    while read_checkpoint_epoch(killed) != 2:
        assert victim.poll() is None, victim.stdout.read().decode()
        assert time.monotonic() < deadline, "no checkpoint of epoch 2 within 300 s"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    runs = {
        "resumed": _child(tmp_path, data_path, killed, tmp_path / "resumed.npz", "run"),
        "uninterrupted": whole,
    }
    for name, process in runs.items():
        output = process.communicate(timeout=300)[0].decode()
        assert process.returncode == 0, f"{name}: {output}"
    resumed, resumed_history = _weights(tmp_path / "resumed.npz")
    whole, whole_history = _weights(tmp_path / "whole.npz")
    assert resumed_history == whole_history
    assert len(resumed) == len(whole) > 0
    for a, b in zip(resumed, whole, strict=True):
        np.testing.assert_array_equal(a, b)
    # Only the checkpoint is left: no temporary file of an interrupted write.
    assert sorted(os.listdir(killed)) == [CHECKPOINT_FILE]


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self, folder=None):
        super().__init__()
        self.folder, self.epochs, self.checkpoints = folder, [], []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.checkpoints.append(read_checkpoint_epoch(self.folder))


def _tiny(**params):
    return ConvNetClassifier(**{**PARAMS, "epochs": 2, "augment": (), **params})


def test_a_finished_fit_rerun_returns_its_model_without_training(tmp_path, images):
    X, y = images
    first = _tiny(checkpoint_dir=tmp_path).fit(X, y)
    counter = _CountEpochs()
    again = _tiny(checkpoint_dir=tmp_path, callbacks=[counter]).fit(X, y)
    assert counter.epochs == []
    assert again.history_ == first.history_
    assert again.epochs_ == first.epochs_ == 2
    np.testing.assert_array_equal(again.predict_proba(X[:20]), first.predict_proba(X[:20]))


def test_checkpoints_are_written_every_n_epochs_and_at_the_end(tmp_path, images):
    X, y = images
    counter = _CountEpochs(tmp_path)
    _tiny(
        epochs=3, patience=None, checkpoint_dir=tmp_path, checkpoint_every=2, callbacks=[counter]
    ).fit(X, y)
    assert counter.checkpoints == [None, 2, 3]


def test_timed_checkpoints_wait_for_their_interval(tmp_path, images):
    X, y = images
    counter = _CountEpochs(tmp_path)
    _tiny(
        epochs=2, patience=None, checkpoint_dir=tmp_path, checkpoint_every="1h", callbacks=[counter]
    ).fit(X, y)
    assert counter.checkpoints == [None, 2]


def test_a_checkpoint_of_another_fit_is_refused(tmp_path, images):
    X, y = images
    _tiny(epochs=1, checkpoint_dir=tmp_path).fit(X, y)
    with pytest.raises(CheckpointError, match=r"learning_rate=0\.05 \(now 0\.01\)"):
        _tiny(epochs=1, learning_rate=0.01, checkpoint_dir=tmp_path).fit(X, y)
    with pytest.raises(CheckpointError, match="the training data"):
        _tiny(epochs=1, checkpoint_dir=tmp_path).fit(X[::-1], y[::-1])
    with pytest.raises(CheckpointError, match="initial weights"):
        _tiny(epochs=1, random_state=1, checkpoint_dir=tmp_path).fit(X, y)


def test_an_unreadable_checkpoint_is_refused(tmp_path, images):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable sklcifar checkpoint"):
        _tiny(epochs=1, checkpoint_dir=tmp_path).fit(*images)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"random_state": None}, "needs an integer random_state"),
        ({"checkpoint_every": "0min"}, "a duration such as '90s'"),
        ({"checkpoint_every": "5 parsecs"}, "got '5 parsecs'"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"time_budget": 60}, "cannot be combined with time_budget"),
    ],
)
def test_bad_checkpoint_settings_are_refused(tmp_path, images, params, message):
    with pytest.raises(ValueError, match=message):
        _tiny(epochs=1, checkpoint_dir=tmp_path, **params).fit(*images)


def test_a_checkpoint_folder_that_is_a_file_is_refused(tmp_path, images):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        _tiny(epochs=1, checkpoint_dir=tmp_path / "file").fit(*images)


@pytest.mark.parametrize(
    ("every", "interval"),
    [
        (3, ("epochs", 3)),
        ("90s", ("seconds", 90.0)),
        ("10min", ("seconds", 600.0)),
        ("1.5h", ("seconds", 5400.0)),
    ],
)
def test_checkpoint_intervals_are_epochs_or_durations(every, interval):
    assert checkpoint_interval(every) == interval
