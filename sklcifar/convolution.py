"""A Conv2D whose input gradient is itself a convolution, for small feature maps on CPUs.

The gradient of a stride-1, "same"-padded convolution with respect to its input is a
convolution of the output gradient with the kernel flipped in space and its channel axes
swapped. TensorFlow computes it with ``Conv2DBackpropInput``, whose CPU kernels are slow
on small maps: on a 2-core AMD EPYC (AVX2), at batch 128, a forward and backward pass of
FastNet's convolutions on 3x3 maps of 128 channels took 34 ms with it against 7-8 ms
without, 21.6 against 14.7 ms on 15x15x32 (``benchmarks/conv_gradients.py``;
``benchmarks/RESULTS.md``, "The input gradient as a convolution").
``ForwardGradConv2D`` computes it as that forward convolution; the kernel's gradient stays
TensorFlow's. Other convolutions (strides, dilation, groups, "valid" padding, channels-first
data) train exactly as ``keras.layers.Conv2D`` does.
"""

from __future__ import annotations

import keras
import tensorflow as tf  # the package trains on Keras' TensorFlow backend

__all__ = ["ForwardGradConv2D", "same_convolution"]


@tf.custom_gradient
def same_convolution(images, kernel):
    """Stride-1 "same" convolution (NHWC) whose input gradient is a forward convolution."""

    def gradients(output_gradient):
        # Flip in space, swap in/out channels: the transposed convolution as a forward one,
        # padded on the opposite sides (they differ for even kernels).
        flipped = tf.transpose(tf.reverse(kernel, axis=[0, 1]), perm=[0, 1, 3, 2])
        padding = [[0, 0]] + [_same_padding(side)[::-1] for side in kernel.shape[:2]] + [[0, 0]]
        image_gradient = tf.nn.conv2d(output_gradient, flipped, strides=1, padding=padding)
        kernel_gradient = tf.raw_ops.Conv2DBackpropFilter(
            input=images,
            filter_sizes=tf.shape(kernel),
            out_backprop=output_gradient,
            strides=[1, 1, 1, 1],
            padding="SAME",
        )
        return image_gradient, kernel_gradient

    return tf.nn.conv2d(images, kernel, strides=1, padding="SAME"), gradients


def _same_padding(kernel_side: int) -> list[int]:
    """TensorFlow's "SAME" padding at stride 1: [before, after], the odd pixel after."""
    before = (kernel_side - 1) // 2
    return [before, kernel_side - 1 - before]


@keras.saving.register_keras_serializable(package="sklcifar")
class ForwardGradConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` that trains faster on small maps: same weights, same outputs.

    Where the convolution is stride-1, "same"-padded, undilated, ungrouped and
    channels-last, the gradient with respect to the layer's input is computed
    as a forward convolution (``same_convolution``); otherwise the layer is Keras' own.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.convolution import ForwardGradConv2D
    >>> layer = ForwardGradConv2D(4, 3, padding="same")
    >>> layer(np.zeros((2, 5, 5, 1), dtype="float32")).shape
    TensorShape([2, 5, 5, 4])
    >>> layer.input_gradient_as_convolution
    True
    """

    @property
    def input_gradient_as_convolution(self) -> bool:
        """Whether this layer's input gradient is computed as a forward convolution."""
        return (
            self.padding == "same"
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and self.data_format == "channels_last"
        )

    def convolution_op(self, inputs, kernel):
        if not self.input_gradient_as_convolution:
            return super().convolution_op(inputs, kernel)
        inputs = tf.convert_to_tensor(inputs)
        return same_convolution(inputs, tf.cast(tf.convert_to_tensor(kernel), inputs.dtype))
