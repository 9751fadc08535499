"""The network that predicts: a fitted network with its BatchNorm folded into its convolutions.

At prediction a BatchNorm layer is a fixed per-channel scale ``s`` and shift ``t``. After
a convolution, directly or through a max pool, it folds into the convolution: kernel times
``s``, bias ``t`` (a pool keeps a per-channel shift, and keeps a scale only where it is
positive, as ``max(s * z) = s * max(z)`` needs ``s > 0``). A ReLU after it folds in too
(it commutes with max pooling). TensorFlow then runs convolution, bias and ReLU as one
oneDNN op instead of separate passes over the activations for the scale, the shift and
the ReLU (under bf16 two more: BatchNorm computes in float32 and casts back). Side by
side on a 2-core AMD EPYC with AVX-512 BF16, the default FastNet in bf16 predicted
1.3-1.8x as fast with one view and 1.15-1.4x with flip test-time augmentation
(benchmarks/RESULTS.md, "Prediction with the BatchNorm folded").

The same outputs as the fitted network up to rounding: float32's, or under bf16 bf16's
(there the benchmark's test accuracy on 10,000 images moved by at most 0.07 points).
BatchNorm layers that do not follow a convolution (the seed's conv -> ReLU -> BatchNorm,
the pre-activation ResNet's first BatchNorm of a block) stay as they are.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf  # the package runs on Keras' TensorFlow backend

from .convolution import ForwardGradConv2D

__all__ = ["FoldedConv2D", "fold_batch_norm", "predict", "prediction_network", "predictor"]


class FoldedConv2D(keras.layers.Layer):
    """Convolution, bias and optional ReLU as one op: a convolution with BatchNorm folded in.

    Prediction only (its weights are not trainable); ``fold_batch_norm`` builds it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.inference import FoldedConv2D
    >>> layer = FoldedConv2D(np.ones((3, 3, 1, 2)), np.zeros(2), padding="same", relu=True)
    >>> layer(np.ones((1, 4, 4, 1), dtype="float32")).shape
    TensorShape([1, 4, 4, 2])
    """

    def __init__(
        self, kernel, bias, *, padding: str, strides=1, dilation_rate=1, relu: bool, **kwargs
    ):
        super().__init__(trainable=False, **kwargs)
        self._kernel_values = np.asarray(kernel, dtype="float32")
        self._bias_values = np.asarray(bias, dtype="float32")
        self.padding = padding.upper()
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.relu = relu

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=self._kernel_values.shape, initializer="zeros", trainable=False, name="kernel"
        )
        self.bias = self.add_weight(
            shape=self._bias_values.shape, initializer="zeros", trainable=False, name="bias"
        )
        self.kernel.assign(self._kernel_values)
        self.bias.assign(self._bias_values)

    def call(self, inputs):
        # tf.nn's ops, not keras.ops: Conv2D -> BiasAdd -> Relu is the pattern TensorFlow's
        # graph optimiser fuses (Keras adds a bias with a broadcast AddV2).
        x = tf.nn.convolution(
            inputs,
            tf.cast(self.kernel, inputs.dtype),
            strides=self.strides,
            padding=self.padding,
            dilations=self.dilation_rate,
        )
        x = tf.nn.bias_add(x, tf.cast(self.bias, x.dtype))
        return tf.nn.relu(x) if self.relu else x


class _FoldedAway(keras.layers.Layer):
    """Stands where a layer folded into the convolution before it was: passes its input on."""

    def call(self, inputs, **kwargs):  # kwargs: the folded layer's own (BatchNorm's mask)
        return inputs


# Exact types, not subclasses: a subclass may compute something else in its call.
def _is_plain_relu(layer) -> bool:
    if type(layer) is keras.layers.ReLU:
        return layer.max_value is None and layer.negative_slope == 0 and layer.threshold == 0
    return type(layer) is keras.layers.Activation and layer.activation is keras.activations.relu


def _is_foldable_conv(layer) -> bool:
    return (
        type(layer) in (keras.layers.Conv2D, ForwardGradConv2D)  # the same forward pass
        and layer.data_format == "channels_last"
        and layer.groups == 1
        and layer.activation in (keras.activations.linear, keras.activations.relu)
    )


def _consumers(model: keras.Model) -> dict[str, list]:
    """Each layer's name -> the layers of ``model`` that take its output (in this model)."""
    consumers: dict[str, list] = {layer.name: [] for layer in model.layers}
    # The model's own graph (Keras' Functional._nodes_by_depth): a layer shared with another
    # model (the prediction network shares the layers it does not fold) has nodes there too.
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            for tensor in node.arguments.keras_tensors:
                producer = tensor._keras_history.operation
                if producer.name in consumers:
                    consumers[producer.name].append(node.operation)
    return consumers


def _scale_and_shift(norm) -> tuple[np.ndarray, np.ndarray] | None:
    """A channels-last BatchNormalization's inference transform ``x * scale + shift``."""
    if norm.axis not in (-1, len(norm.input.shape) - 1):
        return None
    mean, variance = (
        np.asarray(w, dtype="float64") for w in (norm.moving_mean, norm.moving_variance)
    )
    scale = 1.0 / np.sqrt(variance + norm.epsilon)
    if norm.gamma is not None:
        scale = scale * np.asarray(norm.gamma, dtype="float64")
    shift = -mean * scale
    if norm.beta is not None:
        shift = shift + np.asarray(norm.beta, dtype="float64")
    return scale, shift


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of a functional ``model`` for prediction, its BatchNorm folded where it can be.

    Each ``Conv2D`` without an activation (``ForwardGradConv2D`` included) that feeds
    only a BatchNormalization, directly or through a ``MaxPooling2D`` (then only if every
    scale is positive), becomes a ``FoldedConv2D`` with the BatchNorm in its kernel and
    bias, and the BatchNorm an identity; a plain ReLU that is the only consumer of such a
    BatchNorm, or of a convolution, folds in too, and a convolution with a ReLU activation
    becomes a ``FoldedConv2D`` of its own. Every other layer is shared with ``model``
    (the same layer, the same weights); the model computes what it computed before.

    Parameters
    ----------
    model : keras.Model
        A fitted functional network (built with ``keras.Model(inputs, outputs)``).

    Returns
    -------
    keras.Model
        Not compiled; ``predict`` runs it.
    """
    consumers = _consumers(model)

    def only_consumer(layer):
        found = consumers.get(layer.name, [])
        return found[0] if len(found) == 1 else None

    folds: dict[str, dict] = {}  # conv name -> its folded kernel, bias and ReLU
    folded_away: set[str] = set()  # the BatchNorm and ReLU layers folded into a conv
    for conv in model.layers:
        if not _is_foldable_conv(conv):
            continue
        kernel = np.asarray(conv.kernel, dtype="float64")
        bias = (
            np.asarray(conv.bias, dtype="float64") if conv.use_bias else np.zeros(kernel.shape[-1])
        )
        if conv.activation is keras.activations.relu:
            # The seed's conv -> ReLU -> BatchNorm: only the bias and ReLU fold into one op.
            folds[conv.name] = {"kernel": kernel, "bias": bias, "relu": True}
            continue
        # Each step below changes what the layer before passes on, so each layer on the
        # way must have no other consumer.
        last = only_consumer(conv)
        if type(last) is not keras.layers.MaxPooling2D:
            last = conv
        following = only_consumer(last)
        if type(following) is keras.layers.BatchNormalization:
            transform = _scale_and_shift(following)
            if transform is not None and (last is conv or np.all(transform[0] > 0)):
                scale, shift = transform
                kernel, bias = kernel * scale, bias * scale + shift
                folded_away.add(following.name)
                last = following
                following = only_consumer(following)
        relu = _is_plain_relu(following)
        if relu:
            folded_away.add(following.name)
        elif last is conv or type(last) is keras.layers.MaxPooling2D:
            continue  # nothing folds into this convolution
        folds[conv.name] = {"kernel": kernel, "bias": bias, "relu": relu}

    def clone(layer):
        if layer.name in folds:
            return FoldedConv2D(
                **folds[layer.name],
                padding=layer.padding,
                strides=layer.strides,
                dilation_rate=layer.dilation_rate,
                name=layer.name,
                dtype=layer.dtype_policy,
            )
        if layer.name in folded_away:
            return _FoldedAway(name=layer.name, dtype=layer.dtype_policy)
        return layer  # shared: the same weights, and no need to rebuild it from its config

    return keras.models.clone_model(model, clone_function=clone)


# model -> (its weights and jit_compile when folded, the folded network); weak, so a
# network's folded copy goes with it.
_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prediction_network(model: keras.Model) -> keras.Model:
    """``fold_batch_norm(model)``, built once and again only when the model's weights change.

    Weights are compared, not counted in steps, so that anything that sets them (a
    further fit, restored best weights, re-estimated BatchNorm statistics) is seen.
    """
    weights = model.get_weights()
    cached = _FOLDED.get(model)
    if (
        cached is not None
        and cached[1] == model.jit_compile
        and len(cached[0]) == len(weights)
        and all(np.array_equal(a, b) for a, b in zip(cached[0], weights, strict=True))
    ):
        return cached[2]
    folded = fold_batch_norm(model)
    folded.jit_compile = model.jit_compile
    _FOLDED[model] = (weights, model.jit_compile, folded)
    return folded


# network -> (its jit_compile when traced, the traced call); weak, as above.
_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predictor(model: keras.Model) -> Callable[[np.ndarray, int], np.ndarray]:
    """``predict`` for one model, with its folded copy looked up once for several calls.

    Looking it up compares the model's weights with the copy's (a few milliseconds for the
    default FastNet): a prediction that calls the network twice (``tta_margin``) pays that
    once.
    """
    network = prediction_network(model)
    cached = _CALLS.get(network)
    if cached is None or cached[0] != network.jit_compile:
        reference = weakref.ref(network)  # the function must not keep its network alive
        call = tf.function(
            lambda batch: reference()(batch, training=False),
            jit_compile=bool(network.jit_compile),
            reduce_retracing=True,  # one trace serves every batch length
        )
        cached = _CALLS[network] = (network.jit_compile, call)
    call = cached[1]

    def predict_batches(images: np.ndarray, batch_size: int) -> np.ndarray:
        starts = range(0, len(images), batch_size)
        return np.concatenate([call(images[i : i + batch_size]).numpy() for i in starts])

    # The traced call refers to its network weakly (its cache must not keep the network
    # alive); the predictor holds it for as long as the predictor is used.
    predict_batches.network = network
    return predict_batches


def predict(model: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The fitted network's outputs for ``images``: its folded copy, batch by batch.

    One traced function per network calls it on each batch. ``keras.Model.predict`` builds
    a dataset and an epoch loop at every call, which cost about 0.1 s a call on a 2-core
    CPU: a tenth of predicting the 10,000 CIFAR test images, and most of the time of
    predicting a few images.
    """
    return predictor(model)(images, batch_size)
