"""save_model/load_model: format by suffix, no overwrite by default, nothing lost on faults."""

from __future__ import annotations

import errno
import textwrap
import zipfile

import joblib
import numpy as np
import pytest

from sklcifar import ConvNetClassifier
from sklcifar.persistence import load_model, model_format, save_model


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(24, 8, 8), dtype=np.uint8)
    y = np.repeat([0, 1], 12)
    clf = ConvNetClassifier(depth=2, filters=4, dense=(8,), epochs=1, random_state=0)
    return clf.fit(X, y), X


def test_format_by_suffix():
    assert model_format("m.sklcifar") == "safe"
    assert model_format("m.joblib") == model_format("M.PKL") == "joblib"


@pytest.mark.parametrize("name", ["model.joblib", "model.sklcifar"])
def test_existing_file_needs_overwrite(fitted, tmp_path, name):
    clf, X = fitted
    path = save_model(clf, tmp_path / name)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(clf, path)
    assert path.read_bytes() == before
    save_model(clf, path, overwrite=True)
    np.testing.assert_array_equal(load_model(path).predict(X), clf.predict(X))


def test_full_disk_during_joblib_save_keeps_the_previous_model(fitted, tmp_path, monkeypatch):
    clf, X = fitted
    path = save_model(clf, tmp_path / "model.joblib")

    def dump_until_the_disk_is_full(value, filename, **kwargs):
        with open(filename, "wb") as file:
            file.write(b"\x00" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(joblib, "dump", dump_until_the_disk_is_full)
    with pytest.raises(OSError, match="No space left"):
        save_model(clf, path, overwrite=True)
    np.testing.assert_array_equal(load_model(path).predict(X), clf.predict(X))
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]  # no partial file left


def test_full_disk_during_safe_save_keeps_the_previous_model(fitted, tmp_path, monkeypatch):
    clf, X = fitted
    path = save_model(clf, tmp_path / "model.sklcifar")

    def write_until_the_disk_is_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", write_until_the_disk_is_full)
    with pytest.raises(OSError, match="No space left"):
        save_model(clf, path, overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path).predict(X), clf.predict(X))
    assert [p.name for p in tmp_path.iterdir()] == ["model.sklcifar"]


def test_a_kill_during_save_keeps_the_previous_model(fitted, tmp_path, kill_when_ready):
    clf, X = fitted
    path = save_model(clf, tmp_path / "model.joblib")
    ready = tmp_path / "ready"
    # Another process re-saves the model and is killed half-way through writing it.
    script = textwrap.dedent(
        f"""
        import pathlib, time
        import joblib
        from sklcifar.persistence import load_model, save_model

        def slow_dump(value, filename, **kwargs):
            with open(filename, "wb") as file:
                file.write(b"half a model")
                file.flush()
                pathlib.Path({str(ready)!r}).touch()
                time.sleep(120)

        model = load_model({str(path)!r})
        joblib.dump = slow_dump
        save_model(model, {str(path)!r}, overwrite=True)
        """
    )
    kill_when_ready(script, ready)
    np.testing.assert_array_equal(load_model(path).predict(X), clf.predict(X))
