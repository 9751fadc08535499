"""ForwardGradConv2D: Keras' Conv2D with the input gradient computed as a convolution."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sklcifar.architectures import build_convnet, build_fastnet, build_resnet
from sklcifar.convolution import ForwardGradConv2D


def gradients(layer, images, seed=0):
    """Output, input gradient and kernel gradient of ``layer`` under a random linear loss."""
    images = tf.constant(images)
    weights = np.random.default_rng(seed).standard_normal(layer.compute_output_shape(images.shape))
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = layer(images)
        loss = tf.reduce_sum(outputs * weights.astype("float32"))
    image_gradient, kernel_gradient = tape.gradient(loss, [images, layer.kernel.value])
    return outputs.numpy(), image_gradient.numpy(), kernel_gradient.numpy()


def twin_layers(filters, kernel_size, **options):
    """A ForwardGradConv2D and a keras Conv2D with the same weights."""
    fast = ForwardGradConv2D(filters, kernel_size, **options)
    plain = keras.layers.Conv2D(filters, kernel_size, **options)
    return fast, plain


def graph_op_types(layer, images):
    """Op types of the traced graph that computes the layer's input gradient."""
    images = tf.constant(images)

    @tf.function
    def input_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, x)

    graph = input_gradient.get_concrete_function(images).graph
    types = {op.type for op in graph.get_operations()}
    for function in graph.as_graph_def().library.function:  # custom_gradient's bodies
        types |= {node.op for node in function.node_def}
    return types


@pytest.mark.parametrize(
    ("kernel_size", "shape", "channels", "filters"),
    [
        (3, (3, 3), 8, 6),
        (3, (15, 11), 4, 5),
        (5, (7, 9), 3, 2),
        (1, (4, 4), 3, 3),
        (2, (5, 5), 3, 4),
        (4, (7, 6), 2, 3),
        ((2, 3), (6, 8), 2, 4),
    ],
)
def test_same_outputs_and_gradients_as_keras(kernel_size, shape, channels, filters):
    images = np.random.default_rng(1).standard_normal((4, *shape, channels)).astype("float32")
    fast, plain = twin_layers(filters, kernel_size, padding="same", use_bias=False)
    fast.build(images.shape)
    plain.build(images.shape)
    plain.set_weights(fast.get_weights())
    assert fast.input_gradient_as_convolution
    for ours, theirs in zip(gradients(fast, images), gradients(plain, images), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_input_gradient_is_a_forward_convolution_not_conv2d_backprop_input():
    images = np.random.default_rng(2).standard_normal((2, 3, 3, 16)).astype("float32")
    fast, plain = twin_layers(16, 3, padding="same")
    assert "Conv2DBackpropInput" in graph_op_types(plain, images)
    types = graph_op_types(fast, images)
    assert "Conv2DBackpropInput" not in types
    assert "Conv2D" in types


@pytest.mark.parametrize(
    "options",
    [
        {"padding": "valid"},
        {"padding": "same", "strides": 2},
        {"padding": "same", "dilation_rate": 2},
        {"padding": "same", "groups": 2},
    ],
    ids=["valid", "strided", "dilated", "grouped"],
)
def test_other_convolutions_are_keras_own(options):
    options = {"kernel_size": 3, **options}
    images = np.random.default_rng(3).standard_normal((2, 8, 8, 4)).astype("float32")
    fast, plain = twin_layers(4, **options)
    fast.build(images.shape)
    plain.build(images.shape)
    plain.set_weights(fast.get_weights())
    assert not fast.input_gradient_as_convolution
    assert "Conv2DBackpropInput" in graph_op_types(fast, images)
    for ours, theirs in zip(gradients(fast, images), gradients(plain, images), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_bias_and_activation_still_apply():
    images = np.random.default_rng(4).standard_normal((2, 5, 5, 2)).astype("float32")
    fast, plain = twin_layers(3, 3, padding="same", activation="relu", bias_initializer="ones")
    fast.build(images.shape)
    plain.build(images.shape)
    plain.set_weights(fast.get_weights())
    np.testing.assert_allclose(fast(images), plain(images), rtol=1e-5, atol=1e-5)


def test_model_saves_and_loads(tmp_path):
    model = build_fastnet((16, 16, 1), 3, width=4)
    images = np.random.default_rng(5).random((3, 16, 16, 1)).astype("float32")
    path = tmp_path / "fastnet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("layer1_res1_conv"), ForwardGradConv2D)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.mark.parametrize(
    ("model", "layer"),
    [
        (lambda: build_fastnet((32, 32, 1), 10, width=4), "layer3_res1_conv"),
        (lambda: build_resnet((32, 32, 1), 10, width=4), "stage1_block1_conv1"),
        (lambda: build_convnet((32, 32, 1), 10, depth=2, filters=4, padding="same"), "block1_conv"),
    ],
    ids=["fastnet", "resnet", "convnet"],
)
def test_architectures_build_their_convolutions_with_it(model, layer):
    conv = model().get_layer(layer)
    assert isinstance(conv, ForwardGradConv2D)
    assert conv.input_gradient_as_convolution
