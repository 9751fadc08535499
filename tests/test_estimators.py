"""ImageClassifier / ConvNetClassifier: scikit-learn contract, training, saving, bad input."""

import subprocess
import sys
import textwrap

import joblib
import keras
import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    check_cv,
    cross_val_score,
)
from sklearn.pipeline import Pipeline

from sklcifar import ConvNetClassifier, FastNetClassifier, ResNetClassifier, inference
from sklcifar.estimators import VersionMismatchWarning
from sklcifar.transformers import Grayscale, PixelNoise, RandomFlip, ScaleToUnit, Standardize

# A network small enough to train in a fraction of a second on 8x8 images.
TINY = {"depth": 2, "filters": 4, "dense": (8,), "epochs": 1, "batch_size": 16}


def tiny(**params):
    return ConvNetClassifier(**{**TINY, "random_state": 0, **params})


class FamilyDefaults:
    """The smallest member of each classifier family, keeping its recipe's other defaults."""

    convnet = staticmethod(tiny)

    @staticmethod
    def fastnet(**kw):
        return FastNetClassifier(width=2, epochs=1, batch_size=16, **kw)

    @staticmethod
    def resnet(**kw):
        return ResNetClassifier(depth=8, width=2, epochs=1, batch_size=16, **kw)


def blobs(n_per_class=20, n_classes=2, size=8, channels=None, labels=None, seed=0):
    """Images whose class is visible (a bright band at a class-specific row)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    shape = (len(y), size, size) + ((channels,) if channels else ())
    X = rng.integers(0, 60, size=shape, dtype=np.uint8)
    for k in range(n_classes):
        X[y == k, (k * 2) % size] = 255
    if labels is not None:
        y = np.asarray(labels)[y]
    return X, y


# --------------------------------------------------------------------------- tags
def test_tags_make_it_a_classifier_with_stratified_cv():
    clf = tiny()
    assert is_classifier(clf)
    assert is_classifier(Pipeline([("clf", clf)]))
    _, y = blobs()
    assert isinstance(check_cv(5, y, classifier=is_classifier(clf)), StratifiedKFold)


def test_cross_val_score_cv5_uses_stratified_folds():
    # Sorted labels: unstratified 5-fold would give test folds of a single class.
    X, y = blobs(n_per_class=10, n_classes=2)
    seen = []

    def record(estimator, X_test, y_test):
        seen.append(np.bincount(y_test, minlength=2))
        return estimator.score(X_test, y_test)

    scores = cross_val_score(tiny(validation_fraction=0), X, y, cv=5, scoring=record)
    assert len(scores) == 5
    assert all((counts == [2, 2]).all() for counts in seen)


# ------------------------------------------------------------- scikit-learn checks
# scikit-learn's checks, and image-shaped versions of those that feed 2-D tabular data,
# run on every estimator in tests/test_estimator_checks.py.


# --------------------------------------------------------------- params and clone
NON_DEFAULT = {
    "preset": "m7",
    "depth": 3,
    "filters": 8,
    "kernel_order": (3, 4, 5),
    "padding": "valid",
    "batch_norm": False,
    "dense": (32, 16),
    "dropout_placement": "dense",
    "conv_dropout": (0.1, 0.2),
    "flatten_dropout": 0.25,
    "dense_dropout": 0.3,
    "l2_placement": "all",
    "l2": 1e-4,
    "epochs": 7,
    "batch_size": 64,
    "optimizer": "nesterov",
    "learning_rate": 0.05,
    "momentum": 0.8,
    "weight_decay": 5e-4,
    "lr_schedule": "warmup_linear",
    "warmup_epochs": 1.5,
    "label_smoothing": 0.1,
    "augment": ("flip", "shift"),
    "tta": True,
    "tta_margin": 0.7,
    "validation_fraction": 0.2,
    "patience": 3,
    "precision": "float32",
    "random_state": 7,
    "verbose": 1,
}


def test_clone_keeps_every_parameter():
    clf = ConvNetClassifier(**NON_DEFAULT)
    params = clone(clf).get_params()
    for name, value in NON_DEFAULT.items():
        assert params[name] == value, name


def test_grid_search_and_pipeline():
    X, y = blobs(n_per_class=12)
    pipe = Pipeline([("gray", Grayscale()), ("clf", tiny(validation_fraction=0))])
    search = GridSearchCV(pipe, {"clf__filters": [2, 4]}, cv=2).fit(X[..., None], y)
    assert search.best_params_["clf__filters"] in (2, 4)
    assert search.predict(X[..., None]).shape == y.shape


def test_preset_values_and_explicit_override():
    clf = ConvNetClassifier(preset="m12", dense=(64,), dense_dropout=0.1)
    arch = clf.resolved_architecture()
    assert arch["depth"] == 5 and arch["kernel_order"] == (3, 3, 3, 4, 5)
    assert arch["dense"] == (64,) and arch["dense_dropout"] == 0.1
    assert arch["flatten_dropout"] == 0.5


# --------------------------------------------------------------------- fitting
@pytest.mark.parametrize(
    ("channels", "dtype"), [(None, np.uint8), (1, np.uint8), (3, np.float32), (None, float)]
)
def test_fit_accepts_image_layouts_and_dtypes(channels, dtype):
    X, y = blobs(channels=channels)
    if dtype != np.uint8:
        X = (X / 255).astype(dtype)
    clf = tiny(epochs=2).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(clf.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(clf.history_["loss"]) == 2


def test_string_labels_and_classes():
    X, y = blobs(n_classes=3, labels=["cat", "dog", "emu"])
    clf = tiny(epochs=2).fit(X, y)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    # Labels come back through classes_ in the columns' order (whatever the accuracy).
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[clf.predict_proba(X).argmax(1)])
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)
    assert clf.predict_proba(X[:1]).shape == (1, 3)


def test_standardised_pipeline_trains_with_default_augmentation():
    X, y = blobs(size=16, channels=3)
    pipe = Pipeline(
        [
            ("gray", Grayscale()),
            ("scale", ScaleToUnit()),
            ("standardize", Standardize()),
            ("clf", FamilyDefaults.fastnet(random_state=0)),
        ]
    ).fit(X, y)
    assert pipe.predict(X).shape == y.shape


def test_validation_split_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    train, val = tiny(validation_fraction=0.2)._validation_split(y, seed=0)
    assert np.bincount(y[val]).tolist() == [12, 6, 2]
    assert sorted(np.concatenate([train, val])) == list(range(len(y)))


def test_validation_split_is_stratified_and_optional():
    X, y = blobs(n_per_class=20, n_classes=2)
    sizes = []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            sizes.append(self.params.get("steps"))

    tiny(batch_size=1, validation_fraction=0.25, callbacks=[Record()]).fit(X, y)
    no_val = tiny(batch_size=1, validation_fraction=0, callbacks=[Record()]).fit(X, y)
    assert sizes == [30, 40]
    assert "val_loss" not in no_val.history_


def test_early_stopping_restores_best_weights():
    # Random labels: the network memorises the training part and validation loss rises.
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, size=(120, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 2, size=120)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    clf = tiny(
        filters=16, dense=(64,), epochs=12, patience=3, learning_rate=0.01, callbacks=[Snapshot()]
    ).fit(X, y)
    val_loss = clf.history_["val_loss"]
    best = int(np.argmin(val_loss))
    assert best < len(val_loss) - 1, "validation loss never rose; test data too easy"
    assert len(val_loss) <= best + 1 + 3
    for restored, saved in zip(clf.model_.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(restored, saved)


def test_random_state_reproduces():
    X, y = blobs()
    first = tiny(epochs=2, augment=[RandomFlip()]).fit(X, y).predict_proba(X)
    second = tiny(epochs=2, augment=[RandomFlip()]).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)


def test_verbose_shows_progress(capsys):
    X, y = blobs()
    tiny(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "━" in out and "val_accuracy" in out


def test_augment_draws_fresh_images_every_epoch():
    X, y = blobs()
    seen = []

    class Spy(PixelNoise):
        def perturb(self, X, random_state=None):
            out = super().perturb(X, random_state=random_state)
            seen.append(out.copy())
            return out

    tiny(epochs=2, batch_size=len(X), validation_fraction=0, augment=[Spy(0.2)]).fit(X, y)
    assert len(seen) >= 2
    assert not np.array_equal(seen[0], seen[-1])


@pytest.mark.parametrize("family", ["convnet", "fastnet", "resnet"])
@pytest.mark.parametrize("ema_momentum", [None, 0.9])
def test_training_function_creates_no_variables_so_it_is_traced_once(family, ema_momentum):
    # TensorFlow traces a function that creates variables twice; the optimizer's slots
    # and the accuracy metric's counters are created with the model instead.
    import tensorflow as tf

    created_while_tracing = []

    def record(next_creator, **kwargs):
        if not tf.executing_eagerly():
            created_while_tracing.append(kwargs.get("name"))
        return next_creator(**kwargs)

    X, y = blobs(size=16)
    clf = getattr(FamilyDefaults, family)(random_state=0, ema_momentum=ema_momentum)
    with tf.variable_creator_scope(record):
        clf.fit(X, y)
    assert created_while_tracing == []
    assert set(clf.history_) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(clf.model_.optimizer.variables) > len(clf.model_.trainable_variables)


def test_precision_float32():
    X, y = blobs()
    fp32 = tiny(precision="float32").fit(X, y)
    assert fp32.dtype_policy_ == "float32"
    assert all(w.dtype == "float32" for w in fp32.model_.weights)


@pytest.mark.bf16
def test_precision_bfloat16():
    X, y = blobs()
    bf16 = tiny(precision="bfloat16").fit(X, y)
    assert bf16.dtype_policy_ == "mixed_bfloat16"
    assert bf16.model_.get_layer("block1_conv").compute_dtype == "bfloat16"
    assert bf16.predict_proba(X).dtype == np.float64


# ---------------------------------------------------------------------- saving
def test_a_seeded_fit_leaves_op_determinism_as_it_found_it(tmp_path):
    # In a fresh process, where scikeras' seeded context is TensorFlow's first question about
    # determinism (see sklcifar.base); afterwards Keras must still accept XLA.
    script = textwrap.dedent(
        """
        import numpy as np
        from tensorflow.python.framework import config
        from sklcifar import FastNetClassifier
        X = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
        clf = FastNetClassifier(width=2, epochs=1, random_state=0).fit(X, np.repeat([0, 1], 10))
        clf.model_.jit_compile = True
        print(config.is_op_determinism_enabled(), clf.model_.jit_compile)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", "True"]


def test_joblib_round_trip_in_a_fresh_process(tmp_path):
    X, y = blobs(channels=3)
    pipe = Pipeline([("gray", Grayscale()), ("clf", tiny(epochs=2))]).fit(X, y)
    path = tmp_path / "pipe.joblib"
    joblib.dump(pipe, path)
    np.save(tmp_path / "X.npy", X)
    expected = pipe.predict_proba(X)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), expected)

    script = textwrap.dedent(
        """
        import joblib, numpy as np, warnings
        warnings.simplefilter("error", category=UserWarning)
        pipe = joblib.load("pipe.joblib")
        np.save("out.npy", pipe.predict_proba(np.load("X.npy")))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-6, atol=1e-7)
    saved = joblib.load(path).named_steps["clf"].saved_versions_
    assert set(saved) == {"sklcifar", "keras", "tensorflow"}


def test_loading_under_other_versions_warns(tmp_path, monkeypatch):
    from sklcifar import versions

    X, y = blobs()
    clf = tiny().fit(X, y)
    real = versions.library_versions()
    monkeypatch.setattr(versions, "library_versions", lambda: {**real, "keras": "2.0.0"})
    joblib.dump(clf, tmp_path / "old.joblib")
    monkeypatch.setattr(versions, "library_versions", lambda: real)
    with pytest.warns(VersionMismatchWarning, match="keras 2.0.0"):
        loaded = joblib.load(tmp_path / "old.joblib")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_models_saved_before_a_parameter_existed_take_its_default(tmp_path):
    # FastNet's dropout, kernel_order, stem and tta_margin came after models had been saved
    # without them; the stem's default changed the network and the margin's the
    # predictions, so old models get the values they had.
    X, y = blobs()
    clf = FastNetClassifier(width=4, epochs=1, stem="conv", tta_margin=1, random_state=0)
    clf.fit(X, y)
    state = dict(clf.__getstate__())  # a copy: deleting from it must not change clf
    del state["dropout"], state["kernel_order"], state["stem"], state["tta_margin"]
    loaded = FastNetClassifier.__new__(FastNetClassifier)
    loaded.__setstate__(state)
    assert loaded.get_params()["dropout"] == 0.0
    assert loaded.get_params()["kernel_order"] == "constant"
    assert loaded.get_params()["stem"] == "conv"
    assert loaded.get_params()["tta_margin"] == 1.0  # every image, every view
    assert FastNetClassifier().stem == "patch_whitening"
    assert FastNetClassifier()._setting("tta_margin") == 0.5
    assert clone(loaded).get_params() == clone(clf).get_params()
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_fastnet_patch_whitening_stem_is_computed_from_the_training_images(tmp_path):
    from sklcifar.architectures import patch_whitening_kernel
    from sklcifar.persistence import load_model, save_model

    X, y = blobs(size=16, n_classes=3)
    clf = FastNetClassifier(
        width=4, epochs=2, stem="patch_whitening", validation_fraction=0, random_state=0
    )
    clf.fit(X, y)
    whiten = clf.model_.get_layer("whiten").get_weights()[0]
    # The kernel of the standardised training images, untouched by two epochs of training.
    images = X[..., None] / np.float32(255)
    mean, std = images.mean(axis=(0, 1, 2)), images.std(axis=(0, 1, 2)) + 1e-3
    expected = patch_whitening_kernel(images, mean, std)
    np.testing.assert_allclose(whiten, expected, rtol=1e-3, atol=1e-3)
    assert clone(clf).get_params()["stem"] == "patch_whitening"
    for name in ("model.joblib", "model.sklcifar"):
        loaded = load_model(save_model(clf, tmp_path / name))
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    with pytest.raises(ValueError, match="'stem' parameter of FastNetClassifier must be"):
        FastNetClassifier(stem="whiten").fit(X, y)


# ------------------------------------------------------------------- bad input
def fitted():
    X, y = blobs()
    return tiny().fit(X, y)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: tiny().fit(np.zeros((10, 64), np.uint8), [0, 1] * 5), "rank 2"),
        (lambda: fitted().predict(np.zeros((3, 10, 10), np.uint8)), r"fitted on images of shape"),
        (lambda: tiny().fit(blobs()[0], blobs()[1][:-1]), "40 images but y has 39 labels"),
        (
            lambda: tiny().fit(np.where(blobs()[0] > 100, np.nan, 0.5), blobs()[1]),
            "NaN or infinite",
        ),
        (lambda: tiny().fit(blobs()[0], np.zeros(40)), "single class"),
        (lambda: ConvNetClassifier(preset="m13").fit(*blobs()), "preset"),
        (lambda: tiny(kernel_order="spiral").fit(*blobs()), "kernel_order"),
        (lambda: tiny(kernel_order=(3,)).fit(*blobs()), "kernel_order"),
        (lambda: tiny(dropout_placement="all", conv_dropout=-0.1).fit(*blobs()), r"\[0, 1\)"),
        (lambda: tiny(dense_dropout=1.0).fit(*blobs()), r"dense_dropout must be in \[0, 1\)"),
        (lambda: tiny(l2=-1e-3).fit(*blobs()), "l2 must be >= 0"),
        (
            lambda: tiny(validation_fraction=0.5).fit(*blobs(n_per_class=1)),
            r"smallest class \(0 has 1 images in 2\)",
        ),
        (lambda: tiny(validation_fraction=0.99).fit(*blobs()), "validation_fraction"),
        (lambda: tiny().predict(blobs()[0]), "not fitted"),
        (lambda: tiny(augment=["spin"]).fit(*blobs()), "augment names"),
        (lambda: tiny().fit(blobs()[0].astype(np.int64) + 256, blobs()[1]), "0..255"),
    ],
    ids=[
        "rank",
        "size-at-predict",
        "length-mismatch",
        "nan",
        "single-class",
        "preset",
        "kernel-order-name",
        "kernel-order-length",
        "negative-dropout",
        "dropout-one",
        "negative-l2",
        "val-fraction-smallest-class",
        "val-fraction-too-large",
        "predict-before-fit",
        "augment-name",
        "int64-pixels",
    ],
)
def test_bad_input_raises_clear_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ------------------------------------------------------------------ real data
def test_real_cifar10_subset_learns_and_round_trips(cifar10_train, cifar10_test, tmp_path):
    from sklcifar.datasets import stratified_subset

    X, y = stratified_subset(cifar10_train.images, cifar10_train.target, 4000, random_state=0)
    pipe = Pipeline(
        [
            ("gray", Grayscale()),
            ("clf", ConvNetClassifier(depth=3, filters=16, dense=(64,), epochs=4, random_state=0)),
        ]
    ).fit(X, y)
    X_test, y_test = cifar10_test.images[:2000], cifar10_test.target[:2000]
    accuracy = pipe.score(X_test, y_test)
    assert accuracy > 0.25, accuracy  # chance is 0.10
    joblib.dump(pipe, tmp_path / "cifar.joblib")
    loaded = joblib.load(tmp_path / "cifar.joblib")
    np.testing.assert_array_equal(loaded.predict(X_test), pipe.predict(X_test))


# ------------------------------------------------------- every classifier family
FAMILIES = {name: getattr(FamilyDefaults, name) for name in ("convnet", "fastnet", "resnet")}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_trains_saves_and_runs_in_float32(family, tmp_path):
    X, y = blobs(size=16)
    clf = FAMILIES[family](precision="float32", random_state=0).fit(X, y)
    assert all(w.dtype == "float32" for w in clf.model_.weights)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_tta_is_neutral_on_mirror_symmetric_images(family):
    X, y = blobs(size=16)
    X = np.concatenate([X[:, :, :8], X[:, :, :8][:, :, ::-1]], axis=2)
    clf = FAMILIES[family](tta=False, random_state=0).fit(X, y)
    plain = clf.predict_proba(X)
    clf.set_params(tta=True)
    np.testing.assert_allclose(clf.predict_proba(X), plain, atol=1e-6)


def test_multicrop_tta_averages_six_views_with_the_shifts_at_half_weight():
    X, y = blobs(size=16)
    clf = FamilyDefaults.fastnet(tta="multicrop", tta_margin=1, random_state=0).fit(X, y)
    proba = clf.predict_proba(X[:6])
    images = clf.feature_encoder_.transform(clf._validate_data(X=X[:6])[0])  # as predict does
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    views = [images, padded[:, :-2, :-2], padded[:, 2:, 2:]]
    network = inference.prediction_network(clf.model_)  # predict's, BatchNorm folded
    each = [network.predict(v[:, :, ::step], verbose=0) for v in views for step in (1, -1)]
    expected = (each[0] + each[1] + (each[2] + each[3] + each[4] + each[5]) / 2) / 4
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(clf.set_params(tta=True).predict_proba(X[:6]), proba, atol=1e-6)
    with pytest.raises(ValueError, match="tta must be True, False, 'multicrop'"):
        clf.set_params(tta="five-crop").predict(X[:2])


@pytest.mark.parametrize("tta", [True, "multicrop"])
def test_tta_margin_gives_the_other_views_only_to_unsure_images(tta):
    X, y = blobs(size=16)
    clf = FamilyDefaults.fastnet(tta=tta, tta_margin=1, random_state=0).fit(X, y)
    every_view = clf.predict_proba(X)
    one_view = clf.set_params(tta=False).predict_proba(X)
    top_two = np.sort(one_view, axis=1)[:, -2:]
    lead = top_two[:, 1] - top_two[:, 0]
    margin = float(np.median(lead))  # half the images sure, half not
    proba = clf.set_params(tta=tta, tta_margin=margin).predict_proba(X)
    sure = lead > margin
    assert 0 < sure.sum() < len(X)
    np.testing.assert_allclose(proba[sure], one_view[sure], rtol=1e-6)
    np.testing.assert_allclose(proba[~sure], every_view[~sure], rtol=1e-5, atol=1e-7)
    assert not np.allclose(every_view[sure], one_view[sure], atol=1e-6)  # views differ
    np.testing.assert_allclose(clf.set_params(tta_margin=0).predict_proba(X), one_view, rtol=1e-6)


@pytest.mark.parametrize("margin", [-0.1, 1.5, "half", True])
def test_tta_margin_outside_0_to_1_is_refused_at_fit_and_at_predict(margin):
    X, y = blobs(size=16)
    with pytest.raises(ValueError, match="tta_margin"):
        FamilyDefaults.fastnet(tta_margin=margin).fit(X, y)
    clf = FamilyDefaults.fastnet(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"tta_margin must be a number in \[0, 1\]"):
        clf.set_params(tta_margin=margin).predict(X[:2])


def test_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="6 n"):
        ResNetClassifier(depth=21).fit(*blobs(size=16))


def test_fast_recipe_defaults_apply_and_can_be_overridden():
    clf = FastNetClassifier(epochs=3)
    assert clf.get_params()["optimizer"] is None  # stores what the user passed
    assert clf._setting("optimizer") == "nesterov" and clf._setting("epochs") == 3


def test_jit_compile_and_weight_averaging_reach_the_keras_model(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    y = np.repeat([0, 1], 20)
    compiled = {}
    keras_compile = keras.Model.compile

    def record_compile(model, **kwargs):
        # XLA compilation takes tens of seconds on a shared CPU: record, then compile without.
        compiled.update(kwargs)
        keras_compile(model, **{**kwargs, "jit_compile": False})

    monkeypatch.setattr(keras.Model, "compile", record_compile)
    clf = ConvNetClassifier(
        depth=1, filters=2, dense=(4,), epochs=1, jit_compile=True, ema_momentum=0.9
    ).fit(X, y)
    assert compiled["jit_compile"] is True and clf.model_.optimizer.use_ema
    assert clf.predict(X[:2]).shape == (2,)
    with pytest.raises(ValueError, match="jit_compile"):
        ConvNetClassifier(jit_compile="yes").fit(X, y)


@pytest.mark.parametrize("family", ["fastnet", "resnet"])
def test_residual_families_take_kernel_order_and_dropout(family):
    X, y = blobs(size=16)
    clf = FAMILIES[family](kernel_order=[2, 3, 4], dropout=0.25, random_state=0).fit(X, y)
    assert clf.model_.get_layer("head_dropout").rate == 0.25
    assert clf.predict(X[:2]).shape == (2,)
    with pytest.raises(ValueError, match="kernel_order as explicit sizes needs 3"):
        FAMILIES[family](kernel_order=[3, 3]).fit(X, y)
    with pytest.raises(ValueError, match="'dropout' parameter"):
        FAMILIES[family](dropout=1.5).fit(X, y)
    with pytest.raises(ValueError, match="'kernel_order' parameter"):
        FAMILIES[family](kernel_order="random").fit(X, y)
