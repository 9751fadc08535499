"""Network builders: the seed study's presets, kernel orders, placements."""

import keras
import numpy as np
import pytest
from keras import layers, models

from sklcifar import ConvNetClassifier
from sklcifar.architectures import (
    CONVNET_PRESETS,
    build_convnet,
    build_fastnet,
    build_resnet,
    kernel_sizes,
    patch_whitening_kernel,
)


def preset_model(name, n_classes=20):
    clf = ConvNetClassifier(preset=name)
    clf._check_architecture()
    return clf._build_network((32, 32, 1), n_classes, input_mean=None, input_std=None)


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def seed_m1():
    # Copied from the seed report.
    return models.Sequential(
        [
            layers.Input(shape=(32, 32, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(128, (3, 3), activation="relu"),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(20, activation="softmax"),
        ]
    )


def seed_m7():
    # Copied from the seed report.
    return models.Sequential(
        [
            layers.Input(shape=(32, 32, 1)),
            layers.Conv2D(32, (2, 2), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.2),
            layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            layers.Conv2D(128, (4, 4), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.4),
            layers.Conv2D(256, (5, 5), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(20, activation="softmax"),
        ]
    )


def seed_m12():
    # Copied from the seed report.
    return models.Sequential(
        [
            layers.Input(shape=(32, 32, 1)),
            layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.2),
            layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            layers.Conv2D(128, (3, 3), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.4),
            layers.Conv2D(256, (4, 4), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.4),
            layers.Conv2D(512, (5, 5), activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(20, activation="softmax"),
        ]
    )


def layer_signature(model):
    """(layer type, output shape, dropout rate / kernel size) for each layer but the input."""
    out = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer | layers.Normalization):
            continue
        detail = getattr(layer, "rate", None) or getattr(layer, "kernel_size", None)
        # Keras' own layer class: the package's ForwardGradConv2D is the seed's Conv2D.
        keras_class = next(c for c in type(layer).__mro__ if c.__module__.startswith("keras"))
        out.append((keras_class.__name__, tuple(layer.output.shape[1:]), detail))
    return out


def test_m12_has_the_seed_reports_parameter_count():
    assert trainable(preset_model("m12")) == 6_587_732


@pytest.mark.parametrize(
    ("name", "reference"), [("m1", seed_m1), ("m7", seed_m7), ("m12", seed_m12)]
)
def test_presets_with_code_in_the_report_match_it_layer_by_layer(name, reference):
    ours, theirs = preset_model(name), reference()
    assert layer_signature(ours) == layer_signature(theirs)
    assert trainable(ours) == trainable(theirs)


@pytest.mark.parametrize("name", sorted(CONVNET_PRESETS))
def test_every_preset_builds_and_predicts(name):
    model = preset_model(name, n_classes=20)
    out = model(np.zeros((2, 32, 32, 1), "float32"))
    assert out.shape == (2, 20)
    assert model.layers[-1].dtype_policy.name == "float32"


def test_m7_nbn_differs_from_m7_only_by_batch_norm():
    bn = [
        layer for layer in preset_model("m7").layers if "BatchNormalization" in type(layer).__name__
    ]
    assert len(bn) == 4
    assert not any("bn" in layer.name for layer in preset_model("m7_nbn").layers)


def test_kernel_orders():
    assert kernel_sizes("constant", 4) == (3, 3, 3, 3)
    assert kernel_sizes("increasing", 4) == (2, 3, 4, 5)
    assert kernel_sizes("decreasing", 4) == (5, 4, 3, 2)
    assert kernel_sizes((3, 3, 5), 3) == (3, 3, 5)
    with pytest.raises(ValueError, match="kernel_order"):
        kernel_sizes("sideways", 3)


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("none", set()),
        ("dense", {"dense1", "dense2"}),
        ("all", {"block1_conv", "block2_conv", "dense1", "dense2"}),
    ],
)
def test_l2_placement(placement, expected):
    model = build_convnet((16, 16, 1), 3, depth=2, dense=(8, 8), l2_placement=placement, l2=0.1)
    regularised = {
        layer.name for layer in model.layers if getattr(layer, "kernel_regularizer", None)
    }
    assert regularised == expected


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("none", set()),
        ("conv", {"block1_dropout"}),
        ("dense", {"flatten_dropout", "dense1_dropout"}),
        ("all", {"block1_dropout", "flatten_dropout", "dense1_dropout"}),
    ],
)
def test_dropout_placement(placement, expected):
    model = build_convnet(
        (16, 16, 1), 3, depth=2, dense=(8,), dropout_placement=placement, flatten_dropout=0.5
    )
    assert {
        layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)
    } == expected


# ------------------------------------------------------------- residual families' design
def _seeded(build, **params):
    keras.utils.set_random_seed(0)
    return build((16, 16, 1), 3, **params)


@pytest.mark.parametrize(
    ("build", "params", "n_params", "weight_sum", "outputs"),
    [
        # Taken from the builders before kernel_order and dropout existed.
        (
            build_fastnet,
            {"width": 4},
            26324,
            1768.6512,
            [[0.338952, 0.325324, 0.335725], [0.339815, 0.324500, 0.335685]],
        ),
        (
            build_resnet,
            {"depth": 8, "width": 4},
            5095,
            572.64663,
            [[0.333859, 0.343947, 0.322194], [0.327800, 0.347137, 0.325063]],
        ),
    ],
)
def test_residual_defaults_keep_the_networks_they_had(build, params, n_params, weight_sum, outputs):
    model = _seeded(build, **params)
    assert model.count_params() == n_params
    assert not any(isinstance(layer, layers.Dropout) for layer in model.layers)
    weights = sum(float(np.abs(w.numpy()).sum()) for w in model.weights)
    assert weights == pytest.approx(weight_sum, rel=1e-6)  # same layers, same seeded draws
    images = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(model(images, training=False), outputs, atol=1e-5)
    explicit = _seeded(build, **params, kernel_order="constant", dropout=0.0)
    np.testing.assert_array_equal(explicit(images), model(images))
    # The full-size defaults: FastNet width 16, ResNet-20.
    assert build_fastnet((32, 32, 1), 10).count_params() == 413776
    assert build_resnet((32, 32, 1), 10).count_params() == 273370


def test_residual_kernel_order_and_head_dropout():
    fastnet = build_fastnet((16, 16, 1), 3, width=4, kernel_order="decreasing", dropout=0.3)
    sizes = {n: fastnet.get_layer(n).kernel_size[0] for n in ("prep_conv", "layer1_res2_conv")}
    assert sizes == {"prep_conv": 4, "layer1_res2_conv": 4}
    assert fastnet.get_layer("layer2_conv").kernel_size == (3, 3)
    assert fastnet.get_layer("layer3_res1_conv").kernel_size == (2, 2)
    assert fastnet.get_layer("head_dropout").rate == 0.3
    names = [layer.name for layer in fastnet.layers]
    assert names.index("pool") + 1 == names.index("head_dropout") == names.index("logits") - 1
    resnet = build_resnet((16, 16, 1), 3, depth=14, width=4, kernel_order="increasing")
    assert resnet.get_layer("stem_conv").kernel_size == (2, 2)
    assert resnet.get_layer("stage2_block2_conv1").kernel_size == (3, 3)
    assert resnet.get_layer("stage3_block1_shortcut").kernel_size == (1, 1)
    assert resnet.get_layer("stage3_block2_conv2").kernel_size == (4, 4)
    with pytest.raises(ValueError, match=r"needs 3 positive integers \(one per stage\)"):
        build_fastnet((16, 16, 1), 3, kernel_order=(3, 3))
    with pytest.raises(ValueError, match="dropout must be a rate in"):
        build_resnet((16, 16, 1), 3, dropout=1.0)


def _smooth_images(n=40, side=12, channels=1, seed=0):
    """Images whose neighbouring pixels are correlated (as in photographs), in 0..255."""
    rng = np.random.default_rng(seed)
    noise = rng.random((n, side + 1, side + 1, channels))
    return 255 * (noise[:, :-1, :-1] + noise[:, 1:, :-1] + noise[:, :-1, 1:]) / 3


@pytest.mark.parametrize("channels", [1, 3])
def test_patch_whitening_decorrelates_the_patches_of_its_images(channels):
    images = _smooth_images(channels=channels)
    mean, std = images.mean(axis=(0, 1, 2)), images.std(axis=(0, 1, 2))
    kernel = patch_whitening_kernel(images, mean, std)
    d = 4 * channels
    assert kernel.shape == (2, 2, channels, 2 * d) and kernel.dtype == np.float32
    np.testing.assert_allclose(kernel[..., d:], -kernel[..., :d])  # and the negatives
    x = (images - mean) / std
    windows = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(1, 2))
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, d)
    raw = np.cov(patches.T, bias=True)
    assert np.abs(raw - np.diag(np.diag(raw))).max() > 0.3  # correlated before
    out = patches @ kernel[..., :d].reshape(d, d)
    # Decorrelated, unit variance (up to the epsilon on each eigenvalue); largest first.
    np.testing.assert_allclose(out.T @ out / len(out), np.eye(d), atol=0.02)


def test_fastnet_with_a_whitening_stem_keeps_its_kernel_fixed():
    images = _smooth_images(n=8, side=32)
    kernel = patch_whitening_kernel(images)
    model = build_fastnet((32, 32, 1), 10, width=4, whitening_kernel=kernel)
    whiten = model.get_layer("whiten")
    # No padding, as airbench: 32x32 -> 31x31, then 15, 7 and 3 pixels.
    assert not whiten.trainable and whiten.output.shape == (None, 31, 31, 8)
    assert model.get_layer("layer3_pool").output.shape[1:3] == (3, 3)
    np.testing.assert_array_equal(whiten.get_weights()[0], kernel)
    assert "prep_conv" not in [layer.name for layer in model.layers]
    assert model.predict(images[:2], verbose=0).shape == (2, 10)
    with pytest.raises(ValueError, match=r"whitening_kernel must have shape \(2, 2, 3"):
        build_fastnet((32, 32, 3), 10, width=4, whitening_kernel=kernel)
    # 8x8 images cannot lose a pixel and still be halved three times: "same" padding.
    small = build_fastnet((8, 8, 1), 10, width=4, whitening_kernel=kernel)
    assert small.get_layer("whiten").output.shape == (None, 8, 8, 8)
    assert build_fastnet((9, 9, 1), 10, width=4, whitening_kernel=kernel).get_layer(
        "whiten"
    ).output.shape == (None, 8, 8, 8)
