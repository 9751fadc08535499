"""Every row of docs/bad_input.md: the bad input really gets the error the table shows.

The table is the source of the expected errors and messages; CASES says how to cause
each one. A row without a case, or a case without a row, fails the suite, so the table
cannot drift from the code.
"""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import joblib
import keras
import numpy as np
import pytest
from scipy import sparse

from sklcifar import ConvNetClassifier, FastNetClassifier, training
from sklcifar.cli import main
from sklcifar.datasets import load_cifar, load_cifar_c
from sklcifar.persistence import load_model, save_model
from sklcifar.perturbations import corrupt
from sklcifar.robustness import evaluate_robustness
from sklcifar.transformers import Grayscale, Standardize

TABLE = Path(__file__).resolve().parents[1] / "docs" / "bad_input.md"
_ROW = re.compile(r"^\| `([\w-]+)` \| .* \| (`?)([\w ]+?)\2 \| `(.+)` \|$", flags=re.MULTILINE)


def table_rows() -> dict[str, tuple[str, str]]:
    """case -> (error, message excerpt), read from docs/bad_input.md."""
    return {m.group(1): (m.group(3), m.group(4)) for m in _ROW.finditer(TABLE.read_text())}


TINY = {"depth": 2, "filters": 4, "dense": (8,), "epochs": 1, "random_state": 0}
RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, size=(20, 8, 8), dtype=np.uint8)
Y = np.repeat([0, 1], 10)


def clf(**params):
    return ConvNetClassifier(**{**TINY, **params})


@pytest.fixture(scope="module")
def fitted():
    return clf().fit(X, Y)


class Payload:
    """A pickle that would run code when loaded (it writes a file)."""

    def __reduce__(self):
        return exec, ("open('ran', 'w').write('ran')",)


def crafted_cifar(tmp_path, make_cifar_archive):
    import pickle

    folder = make_cifar_archive("cifar10", fmt="folder")
    (folder / "batches.meta").write_bytes(pickle.dumps(Payload(), protocol=2))
    load_cifar(folder, split="test")


def foreign_class(tmp_path):
    path = tmp_path / "evil.sklcifar"
    with zipfile.ZipFile(path, "w") as archive:
        entry = {"estimator": {"class": "os.system", "params": {}, "fitted": {}}}
        document = {"format": {"name": "sklcifar-model", "version": 1}, "model": entry}
        archive.writestr("model.json", json.dumps(document))
        archive.writestr("network.keras", b"")
    load_model(path)


def unstorable(fitted, tmp_path):
    model = copy.copy(fitted)
    model.callbacks = [keras.callbacks.TerminateOnNaN()]
    save_model(model, tmp_path / "model.sklcifar")


def scale_mismatch():
    ConvNetClassifier(**TINY).fit(X.astype(np.float32), Y).predict(X)


def existing(fitted, tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"previous")
    save_model(fitted, tmp_path / "model.joblib")


def precision_env(monkeypatch):
    monkeypatch.setenv("SKLCIFAR_PRECISION", "fp16")
    training.auto_precision()


def standardize_scale():
    Standardize().fit(X).transform(X / 255)


def cifar_c_labels(tmp_path):
    """A CIFAR-C folder of 5 x 10 images whose labels.npy is not one block repeated."""
    np.save(tmp_path / "fog.npy", np.zeros((50, 8, 8, 3), np.uint8))
    labels = np.tile(np.arange(10), 5)
    labels[10:20] = labels[10:20][::-1]  # severity 2 lists its labels in another order
    np.save(tmp_path / "labels.npy", labels)
    load_cifar_c(tmp_path, "fog", 1)


def npz_not_zip(fitted, tmp_path, capsys):
    save_model(fitted, tmp_path / "fitted.sklcifar")
    (tmp_path / "notes.npz").write_text("images and labels")
    command("score {tmp}/fitted.sklcifar --data {tmp}/notes.npz", tmp_path, capsys)


class CommandFailed(Exception):
    """``main`` returned 2; the message is what it printed on stderr."""


def command(line: str, tmp_path, capsys):
    data = tmp_path / "cifar.tar.gz"
    data.write_bytes(b"an archive")
    (tmp_path / "model.sklcifar").write_bytes(b"a model")
    code = main(line.format(data=data, tmp=tmp_path).split())
    err = capsys.readouterr().err
    if code == 2:
        raise CommandFailed(err)


CASES = {
    "no-images": lambda f, t, c, m, a: clf().fit(X[:0], Y[:0]),
    "empty-images": lambda f, t, c, m, a: clf().fit(X[:, :, :0], Y),
    "rank-2": lambda f, t, c, m, a: clf().fit(X.reshape(len(X), -1), Y),
    "single-image-rank": lambda f, t, c, m, a: f.predict(X[0]),
    "two-channels": lambda f, t, c, m, a: Grayscale().fit(np.zeros((4, 8, 8, 2), np.uint8)),
    "nan-pixels": lambda f, t, c, m, a: clf().fit(np.where(X > 200, np.nan, 0.5), Y),
    "int-out-of-range": lambda f, t, c, m, a: clf().fit(X.astype(np.int64) + 45, Y),
    "bool-pixels": lambda f, t, c, m, a: clf().fit(X > 100, Y),
    "ragged": lambda f, t, c, m, a: clf().fit([np.zeros((8, 8)), np.zeros((4, 4))], [0, 1]),
    "sparse": lambda f, t, c, m, a: clf().fit(sparse.csr_matrix(X.reshape(20, -1)), Y),
    "float-range-noise": lambda f, t, c, m, a: corrupt(X / 255 * 300, "fog", 1),
    "labels-length": lambda f, t, c, m, a: clf().fit(X, Y[:-1]),
    "one-class": lambda f, t, c, m, a: clf().fit(X, np.zeros(20, int)),
    "continuous-y": lambda f, t, c, m, a: clf().fit(X, np.linspace(0, 1, 20)),
    "weights-length": lambda f, t, c, m, a: clf().fit(X, Y, sample_weight=np.ones(19)),
    "weights-negative": lambda f, t, c, m, a: clf().fit(X, Y, sample_weight=-np.ones(20)),
    "weights-zero": lambda f, t, c, m, a: clf().fit(X, Y, sample_weight=np.zeros(20)),
    "predict-unfitted": lambda f, t, c, m, a: clf().predict(X),
    "score-unfitted": lambda f, t, c, m, a: clf().score(X, Y),
    "predict-size": lambda f, t, c, m, a: f.predict(np.zeros((2, 16, 16), np.uint8)),
    "predict-scale": lambda f, t, c, m, a: scale_mismatch(),
    "too-deep": lambda f, t, c, m, a: clf(depth=5).fit(X, Y),
    "dense-zero": lambda f, t, c, m, a: clf(dense=(0,)).fit(X, Y),
    "fastnet-small": lambda f, t, c, m, a: FastNetClassifier(width=2, epochs=1).fit(
        X[:, :4, :4], Y
    ),
    "fastnet-width": lambda f, t, c, m, a: FastNetClassifier(width="wide").fit(X, Y),
    "unknown-keyword": lambda f, t, c, m, a: ConvNetClassifier(depht=3),
    "diverged": lambda f, t, c, m, a: clf(l2=1e38, l2_placement="all", precision="float32").fit(
        X, Y
    ),
    "precision-env": lambda f, t, c, m, a: precision_env(m),
    "report-foreign-labels": lambda f, t, c, m, a: evaluate_robustness(f, X, Y + 10),
    "report-severity-twice": lambda f, t, c, m, a: evaluate_robustness(f, X, Y, severities=[1, 1]),
    "report-one-corruption": lambda f, t, c, m, a: evaluate_robustness(f, X, Y, corruptions="fog"),
    "standardize-scale": lambda f, t, c, m, a: standardize_scale(),
    "save-existing": lambda f, t, c, m, a: existing(f, t),
    "save-overwrite-string": lambda f, t, c, m, a: save_model(f, t / "m.sklcifar", overwrite="no"),
    "save-suffix": lambda f, t, c, m, a: save_model(f, t / "model.bin"),
    "save-unstorable": lambda f, t, c, m, a: unstorable(f, t),
    "load-pickle-as-safe": lambda f, t, c, m, a: (
        joblib.dump(Payload(), t / "model.sklcifar"),
        load_model(t / "model.sklcifar"),
    ),
    "load-foreign-class": lambda f, t, c, m, a: foreign_class(t),
    "cifar-crafted-pickle": lambda f, t, c, m, a: crafted_cifar(t, a),
    "cifar-c-labels": lambda f, t, c, m, a: cifar_c_labels(t),
    "cli-npz-not-zip": lambda f, t, c, m, a: npz_not_zip(f, t, c),
    "cli-abbreviation": lambda f, t, c, m, a: command("train --data {data} --epoch 3", t, c),
    "cli-output-is-input": lambda f, t, c, m, a: command(
        "perturb --data {data} --corruption clean --out {data} --force", t, c
    ),
    "cli-output-exists": lambda f, t, c, m, a: command(
        "train --data {data} --out {tmp}/model.sklcifar", t, c
    ),
    "cli-output-folder": lambda f, t, c, m, a: command(
        "train --data {data} --out {tmp}/missing/model.sklcifar", t, c
    ),
}


def test_the_table_and_the_cases_name_the_same_rows():
    rows = table_rows()
    assert len(rows) >= 25
    assert sorted(rows) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_table_row_is_what_the_user_sees(
    case, fitted, tmp_path, capsys, monkeypatch, make_cifar_archive
):
    error, excerpt = table_rows()[case]
    monkeypatch.chdir(tmp_path)  # a payload that ran would leave ./ran
    with pytest.raises(Exception) as raised:
        CASES[case](fitted, tmp_path, capsys, monkeypatch, make_cifar_archive)
    expected = CommandFailed.__name__ if error == "exit status 2" else error
    assert type(raised.value).__name__ == expected, raised.value
    assert excerpt in str(raised.value)
    assert not (tmp_path / "ran").exists()
