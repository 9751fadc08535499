"""The .sklcifar format: round trips, and crafted files that must not run anything."""

from __future__ import annotations

import copy
import json
import pickle
import shutil
import zipfile

import joblib
import keras
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from sklcifar import ConvNetClassifier, FastNetClassifier
from sklcifar.cli import main
from sklcifar.datasets import load_cifar
from sklcifar.estimators import VersionMismatchWarning
from sklcifar.persistence import ModelFileError, load_model, save_model
from sklcifar.transformers import Grayscale, RandomFlip, Standardize


def images(n_per_class=12, size=8, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(2 * n_per_class, size, size, channels), dtype=np.uint8)
    return X, np.repeat(["cat", "dog"], n_per_class)


def tiny_convnet(**params):
    return ConvNetClassifier(depth=2, filters=4, dense=(8,), epochs=1, random_state=0, **params)


@pytest.fixture(scope="module")
def fitted_pipeline():
    X, y = images()
    steps = [
        ("gray", Grayscale()),
        ("standardize", Standardize()),
        ("classifier", tiny_convnet(augment=[RandomFlip(0.5)], dense_dropout=0.1)),
    ]
    return Pipeline(steps).fit(X, y)


# ---------------------------------------------------------------------- round trips
def comparable(estimator):
    """Parameters with nested estimators as (class, parameters): equal when equal."""

    def plain(value):
        if isinstance(value, list | tuple):
            return type(value)(plain(v) for v in value)
        if hasattr(value, "get_params"):
            return type(value), comparable(value)
        return value

    return {k: plain(v) for k, v in estimator.get_params(deep=False).items()}


def test_pipeline_round_trip_predicts_the_same(fitted_pipeline, tmp_path):
    X, _ = images(seed=1)
    path = save_model(fitted_pipeline, tmp_path / "model.sklcifar")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_pipeline.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted_pipeline.predict(X))
    classifier = loaded.named_steps["classifier"]
    assert comparable(classifier) == comparable(fitted_pipeline.named_steps["classifier"])
    assert list(classifier.classes_) == ["cat", "dog"]
    original = fitted_pipeline.named_steps["classifier"]
    assert classifier.image_shape_ == original.image_shape_ == (8, 8, 1)
    assert classifier.input_scale_ == original.input_scale_  # standardised: a float range
    assert set(classifier.saved_versions_) == {"sklcifar", "keras", "tensorflow"}
    np.testing.assert_array_equal(
        loaded.named_steps["standardize"].mean_, fitted_pipeline.named_steps["standardize"].mean_
    )


def test_the_file_is_json_and_a_keras_network(fitted_pipeline, tmp_path):
    path = save_model(fitted_pipeline, tmp_path / "model.sklcifar")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["model.json", "network.keras"]
        document = json.loads(archive.read("model.json"))
    assert document["format"] == {"name": "sklcifar-model", "version": 1}
    assert {"sklcifar", "keras", "tensorflow", "scikit-learn"} <= set(document["versions"])
    steps = document["model"]["estimator"]["params"]["steps"]
    names = [step["tuple"][1]["estimator"]["class"] for step in steps]
    assert names == [
        "sklcifar.transformers.Grayscale",
        "sklcifar.transformers.Standardize",
        "sklcifar.estimators.ConvNetClassifier",
    ]


def test_bare_classifier_round_trip(tmp_path):
    X, y = images(size=16, channels=1)
    clf = FastNetClassifier(width=2, epochs=1, batch_size=8, random_state=0).fit(X / 255.0, y)
    loaded = load_model(save_model(clf, tmp_path / "fast.sklcifar"))
    assert isinstance(loaded, FastNetClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X / 255.0), clf.predict_proba(X / 255.0))


def test_a_fastnet_file_from_before_the_stem_parameter_loads_with_the_conv_stem(tmp_path):
    X, y = images(size=16, channels=1)
    clf = FastNetClassifier(width=2, epochs=1, batch_size=8, stem="conv", random_state=0)
    path = save_model(clf.fit(X, y), tmp_path / "fast.sklcifar")
    old = tmp_path / "old.sklcifar"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        document = json.loads(source.read("model.json"))
        del document["model"]["estimator"]["params"]["stem"]  # as files saved before it
        target.writestr("model.json", json.dumps(document))
        target.writestr("network.keras", source.read("network.keras"))
    loaded = load_model(old)
    # Its network has the conv stem, and so does a clone refit from its parameters.
    assert loaded.get_params()["stem"] == "conv"
    assert "prep_conv" in [layer.name for layer in loaded.model_.layers]
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_other_versions_warn(fitted_pipeline, tmp_path):
    path = save_model(fitted_pipeline, tmp_path / "model.sklcifar")
    edited = tmp_path / "old.sklcifar"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        document = json.loads(source.read("model.json"))
        document["versions"]["keras"] = "2.0.0"
        target.writestr("model.json", json.dumps(document))
        target.writestr("network.keras", source.read("network.keras"))
    with pytest.warns(VersionMismatchWarning, match="keras 2.0.0"):
        load_model(edited)


def test_unstorable_parameter_is_named_and_nothing_written(tmp_path):
    X, y = images()
    clf = tiny_convnet(callbacks=[keras.callbacks.TerminateOnNaN()]).fit(X, y)
    with pytest.raises(TypeError, match=r"model\.callbacks\[0\] is a .*TerminateOnNaN.*\.joblib"):
        save_model(clf, tmp_path / "model.sklcifar")
    assert list(tmp_path.iterdir()) == []


def test_a_classifier_as_parameter_is_refused(fitted_pipeline, tmp_path):
    model = copy.copy(fitted_pipeline.named_steps["classifier"])
    model.init = fitted_pipeline.named_steps["classifier"]  # fine-tuning from a classifier
    with pytest.raises(TypeError, match=r"model\.init is a ConvNetClassifier"):
        save_model(model, tmp_path / "model.sklcifar")


def test_unknown_suffix_is_refused(fitted_pipeline, tmp_path):
    with pytest.raises(ModelFileError, match=r"must end in \.sklcifar .* or \.joblib"):
        save_model(fitted_pipeline, tmp_path / "model.bin")
    with pytest.raises(ModelFileError, match=r"must end in \.sklcifar"):
        (tmp_path / "model.bin").write_bytes(b"x")
        load_model(tmp_path / "model.bin")


# ------------------------------------------------------------- crafted, malicious files
class Payload:
    """Unpickling this writes a marker file: stands for any code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_joblib_file_runs_its_payload_which_is_why_the_docs_warn(tmp_path):
    marker = tmp_path / "ran"
    joblib.dump(Payload(marker), tmp_path / "evil.joblib")
    with pytest.raises(ModelFileError, match="holds a NoneType"):
        load_model(tmp_path / "evil.joblib")
    assert marker.exists()  # the risk the documentation states


def test_a_pickle_named_sklcifar_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "ran"
    joblib.dump(Payload(marker), tmp_path / "evil.joblib")
    shutil.copy(tmp_path / "evil.joblib", tmp_path / "evil.sklcifar")
    with pytest.raises(ModelFileError, match="is not a .sklcifar model file"):
        load_model(tmp_path / "evil.sklcifar")
    assert main(["score", str(tmp_path / "evil.sklcifar"), "--data", str(tmp_path)]) == 2
    assert "is not a .sklcifar model file" in capsys.readouterr().err
    assert not marker.exists()


def write_document(path, model_entry, network=b""):
    with zipfile.ZipFile(path, "w") as archive:
        document = {"format": {"name": "sklcifar-model", "version": 1}, "model": model_entry}
        archive.writestr("model.json", json.dumps(document))
        archive.writestr("network.keras", network)
    return path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("os.system", "may only name sklcifar's and scikit-learn's own estimator classes"),
        ("builtins.exec", "may only name sklcifar's and scikit-learn's own"),
        ("sklearn.utils.Bunch", "not a scikit-learn estimator class"),
        ("sklcifar.persistence.save_model", "not a scikit-learn estimator class"),
        ("sklcifar.transformers.NoSuchThing", "does not exist here"),
    ],
)
def test_json_naming_other_callables_is_refused(tmp_path, name, message):
    entry = {"estimator": {"class": name, "params": {"command": "touch ran"}, "fitted": {}}}
    path = write_document(tmp_path / "evil.sklcifar", entry)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)
    assert not (tmp_path / "ran").exists()


def test_a_keras_lambda_layer_is_refused(fitted_pipeline, tmp_path):
    marker = tmp_path / "ran"
    inputs = keras.Input((8, 8, 1))
    code = f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x)[1]"
    outputs = keras.layers.Lambda(eval(code))(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "evil.keras")
    path = save_model(fitted_pipeline, tmp_path / "model.sklcifar")
    evil = tmp_path / "evil.sklcifar"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(evil, "w") as target:
        target.writestr("model.json", source.read("model.json"))
        target.write(tmp_path / "evil.keras", "network.keras")
    marker.unlink(missing_ok=True)  # building the model above ran the lambda once
    with pytest.raises(ModelFileError, match="safe mode"):
        load_model(evil)
    assert not marker.exists()


def test_a_crafted_cifar_pickle_runs_nothing(make_cifar_archive, tmp_path):
    folder = make_cifar_archive("cifar10", fmt="folder")
    marker = tmp_path / "ran"
    (folder / "batches.meta").write_bytes(pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(ValueError, match=r"batches\.meta is not a CIFAR pickle: it names"):
        load_cifar(folder, split="test")
    assert not marker.exists()


def test_the_restricted_unpickler_reads_the_generated_cifar100_archive(
    make_cifar_archive, synthetic_cifar
):
    bunch = load_cifar(make_cifar_archive("cifar100"), split="train", label_mode="fine")
    expected = synthetic_cifar("cifar100")["train"]
    np.testing.assert_array_equal(bunch.target, expected["fine_labels"])
