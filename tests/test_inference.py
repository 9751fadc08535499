"""The prediction network: BatchNorm and ReLU folded into the convolutions before them."""

import gc
import weakref

import keras
import numpy as np
import pytest

from sklcifar import inference
from sklcifar.architectures import build_convnet, build_fastnet, build_resnet
from sklcifar.estimators import FastNetClassifier
from sklcifar.inference import FoldedConv2D, fold_batch_norm, prediction_network
from sklcifar.persistence import load_model, save_model
from sklcifar.training import dtype_policy

IMAGES = np.random.default_rng(0).random((16, 16, 16, 1)).astype("float32")


def with_trained_statistics(model, seed=0, negative=()):
    """``model`` with random BatchNorm weights and statistics, as training leaves them
    (positive scales but for the layers named in ``negative``, whose first channel flips)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            gamma = rng.uniform(0.5, 1.5, channels)
            if layer.name in negative:
                gamma[0] = -gamma[0]
            layer.set_weights(
                [
                    gamma,
                    rng.normal(0, 0.5, channels),
                    rng.normal(0, 0.5, channels),
                    rng.uniform(0.5, 2.0, channels),
                ]
            )
    return model


def layer_types(model) -> dict[str, str]:
    return {layer.name: type(layer).__name__ for layer in model.layers}


def test_fastnet_folds_every_batchnorm_and_relu_and_predicts_the_same():
    whitening = np.random.default_rng(1).normal(size=(2, 2, 1, 8)).astype("float32")
    model = with_trained_statistics(
        build_fastnet(
            (16, 16, 1), 5, width=4, whitening_kernel=whitening, input_mean=[0.4], input_std=[0.2]
        )
    )
    folded = fold_batch_norm(model)
    types = layer_types(folded)
    assert "BatchNormalization" not in types.values() and "ReLU" not in types.values()
    # The whitening layer, the prep-less stages' convolutions and their residual pairs.
    assert types["whiten"] == types["layer1_conv"] == types["layer3_res2_conv"] == "FoldedConv2D"
    np.testing.assert_allclose(
        folded.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), atol=1e-5
    )
    assert layer_types(model)["layer1_bn"] == "BatchNormalization"  # the model is untouched


def test_a_negative_scale_stays_behind_a_max_pool_but_folds_without_one():
    # max(s * z) = s * max(z) only for s > 0: layer1's BatchNorm follows a pool, res1's not.
    model = with_trained_statistics(
        build_fastnet((16, 16, 1), 3, width=4), negative=("layer1_bn", "layer1_res1_bn")
    )
    types = layer_types(fold_batch_norm(model))
    assert types["layer1_bn"] == "BatchNormalization" and types["layer1_relu"] == "ReLU"
    assert types["layer1_conv"] == "ForwardGradConv2D"  # nothing folded into it
    assert types["layer1_res1_bn"] == "_FoldedAway" and types["layer1_res1_conv"] == "FoldedConv2D"
    np.testing.assert_allclose(
        fold_batch_norm(model).predict(IMAGES, verbose=0),
        model.predict(IMAGES, verbose=0),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("build", "kept"),
    [
        # The seed's conv -> ReLU -> BatchNorm: the ReLU folds, the BatchNorm stays.
        (lambda: build_convnet((16, 16, 1), 4, depth=2, filters=4, dense=(8,)), "block1_bn"),
        # Pre-activation blocks: each block's first BatchNorm follows an Add, not a conv.
        (lambda: build_resnet((16, 16, 1), 4, depth=8, width=4), "stage1_block1_pre_bn"),
    ],
    ids=["convnet", "resnet"],
)
def test_other_networks_fold_what_follows_a_convolution_and_keep_the_rest(build, kept):
    model = with_trained_statistics(build())
    folded = fold_batch_norm(model)
    types = layer_types(folded)
    assert "FoldedConv2D" in types.values() and types[kept] == "BatchNormalization"
    np.testing.assert_allclose(
        folded.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), atol=1e-5
    )


class Halving(keras.layers.Layer):
    """A layer that cannot be rebuilt from its config (its argument is not in it)."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs / self.factor


def test_a_biased_convolution_folds_and_a_shared_output_does_not():
    inputs = keras.Input((8, 8, 2))
    halved = Halving(2.0, name="halving")(inputs)  # shared with the model, not rebuilt
    biased = keras.layers.Conv2D(3, 3, padding="same", use_bias=True, name="biased")(halved)
    x = keras.layers.BatchNormalization(name="biased_bn")(biased)
    x = keras.layers.Activation("relu", name="biased_relu")(x)
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")(x)
    # The shared convolution's output feeds the BatchNorm and the sum: folding the
    # BatchNorm into it would change what the sum receives.
    y = keras.layers.BatchNormalization(name="shared_bn")(shared)
    outputs = keras.layers.Add(name="add")([shared, y])
    model = with_trained_statistics(keras.Model(inputs, outputs))
    model.get_layer("biased").bias.assign(np.array([0.3, -0.2, 0.5]))
    folded = fold_batch_norm(model)
    types = layer_types(folded)
    assert types["biased"] == "FoldedConv2D" and types["biased_relu"] == "_FoldedAway"
    assert types["shared"] == "Conv2D" and types["shared_bn"] == "BatchNormalization"
    images = np.random.default_rng(2).random((4, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(
        folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5
    )


def test_bf16_networks_fold_within_bf16_rounding():
    with dtype_policy("mixed_bfloat16"):
        model = with_trained_statistics(build_fastnet((16, 16, 1), 5, width=4))
    folded = fold_batch_norm(model)
    assert folded.get_layer("layer2_conv").dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(
        folded.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), atol=0.05
    )


def test_the_prediction_network_is_built_again_only_when_the_weights_change():
    model = with_trained_statistics(build_fastnet((16, 16, 1), 3, width=4))
    first = prediction_network(model)
    assert prediction_network(model) is first
    norm = model.get_layer("layer2_bn")
    norm.moving_mean.assign(norm.moving_mean + 1.0)  # as re-estimated statistics would
    second = prediction_network(model)
    assert second is not first
    np.testing.assert_allclose(
        second.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), atol=1e-5
    )
    model.jit_compile = True  # the model's XLA switch carries over
    assert prediction_network(model).jit_compile is True


def test_the_classifier_predicts_with_the_folded_network(monkeypatch):
    rng = np.random.default_rng(3)
    X, y = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8), np.repeat([0, 1], 20)
    clf = FastNetClassifier(width=2, epochs=1, precision="float32", tta=False, random_state=0)
    clf.fit(X, y)
    seen = []
    monkeypatch.setattr(
        inference, "prediction_network", lambda model: seen.append(model) or fold_batch_norm(model)
    )
    folded = clf.predict_proba(X)
    assert seen == [clf.model_]
    monkeypatch.setattr(inference, "prediction_network", lambda model: model)
    np.testing.assert_allclose(folded, clf.predict_proba(X), atol=1e-5)


def test_predict_runs_the_folded_network_in_batches_through_one_trace():
    model = with_trained_statistics(build_fastnet((16, 16, 1), 3, width=4))
    expected = fold_batch_norm(model).predict(IMAGES, verbose=0)
    for batch_size in (5, 16, 64):  # a ragged last batch, one batch, more room than images
        outputs = inference.predict(model, IMAGES, batch_size)
        np.testing.assert_allclose(outputs, expected, atol=1e-6)
    np.testing.assert_allclose(inference.predict(model, IMAGES[:1], 5), expected[:1], atol=1e-6)
    call = inference._CALLS[prediction_network(model)][1]
    assert call.experimental_get_tracing_count() <= 2  # not one trace per batch length
    model.jit_compile = True  # the model's XLA switch reaches the traced call
    np.testing.assert_allclose(inference.predict(model, IMAGES, 8), expected, atol=1e-5)
    assert inference._CALLS[prediction_network(model)][0] is True


def test_predict_keeps_no_network_alive():
    model = with_trained_statistics(build_fastnet((16, 16, 1), 3, width=4))
    inference.predict(model, IMAGES, 8)
    folded = weakref.ref(prediction_network(model))
    call = weakref.ref(inference._CALLS[folded()][1])
    del model
    gc.collect()  # the model: its cache entry goes, which frees its folded copy's cycle...
    gc.collect()  # ...for the next collection, and the copy's traced call with it
    assert folded() is None and call() is None


@pytest.mark.parametrize("name", ["model.joblib", "model.sklcifar"])
def test_a_classifier_saved_after_predicting_loads_and_predicts_the_same(tmp_path, name):
    # The prediction network shares the unfolded layers: the saved network must not see it.
    rng = np.random.default_rng(4)
    X, y = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8), np.repeat([0, 1], 20)
    clf = FastNetClassifier(width=2, epochs=1, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    save_model(clf, tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert [layer.name for layer in loaded.model_.layers] == [
        layer.name for layer in clf.model_.layers
    ]
    np.testing.assert_allclose(loaded.predict_proba(X), before, atol=1e-6)


def test_folded_convolution_runs_as_a_layer():
    layer = FoldedConv2D(-np.ones((1, 1, 1, 2)), np.array([1.0, -1.0]), padding="valid", relu=True)
    out = layer(np.full((1, 2, 2, 1), 0.5, dtype="float32")).numpy()
    np.testing.assert_allclose(out[..., 0], 0.5)  # -0.5 + 1
    np.testing.assert_allclose(out[..., 1], 0.0)  # ReLU(-0.5 - 1)
