"""How close training comes to the machine's own limit: model FLOPs and matmul peak.

A network's training throughput in images/s says little across CPUs; as a share of what
the machine's matrix units can do it says how much is left. ``forward_flops`` counts a
Keras model's arithmetic from its conv and dense layers, ``matmul_flops_per_second``
measures the machine's matrix-product rate with TensorFlow in a given precision, and

    share of peak = 3 x forward_flops(model) x images/s / matmul_flops_per_second(...)

(a training step costs about three forward passes: the forward, and the backward pass's
gradients with respect to activations and to weights). ``benchmarks/speed.py`` reports it.
"""

from __future__ import annotations

import math
import time

import keras

__all__ = ["MATMUL_DTYPES", "TRAINING_FLOPS_FACTOR", "forward_flops", "matmul_flops_per_second"]

# Training FLOPs per image over forward FLOPs per image.
TRAINING_FLOPS_FACTOR = 3
# Precisions whose matmul rate can be measured (the ones sklcifar trains in).
MATMUL_DTYPES = ("float32", "bfloat16")


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested network (e.g. behind augmentation)
            yield from _layers(layer)
        else:
            yield layer


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one image's forward pass through conv and dense layers.

    Counts 2 operations (a multiply and an add) per multiply-add of every ``Conv2D``
    (including depthwise/grouped ones) and ``Dense`` layer: the matrix work that dominates
    CNN training. Batch norm, activations, pooling and biases are left out.

    Parameters
    ----------
    model : keras.Model
        A built model with fixed image shapes.

    Examples
    --------
    >>> import keras
    >>> from sklcifar.efficiency import forward_flops
    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 1)),
    ...     keras.layers.Conv2D(4, 3, padding="same"),  # 8*8 outputs x 4 x (3*3*1) MACs
    ...     keras.layers.Flatten(),
    ...     keras.layers.Dense(10),  # 256 x 10 MACs
    ... ])
    >>> forward_flops(model) == 2 * (8 * 8 * 4 * 9 + 256 * 10)
    True
    """
    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape  # (kh, kw, in / groups, out)
            out_positions = math.prod(layer.output.shape[1:-1])
            total += 2 * out_positions * math.prod(kernel)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.kernel.shape)
    return total


def matmul_flops_per_second(
    dtype: str = "float32", *, size: int = 2048, min_seconds: float = 2.0
) -> float:
    """The machine's matrix-product rate: FLOP/s of a ``size`` x ``size`` ``tf.matmul``.

    Runs TensorFlow's matmul (oneDNN kernels on a CPU, using all the cores TensorFlow is
    allowed) once to warm up, then repeatedly for at least ``min_seconds``.

    Parameters
    ----------
    dtype : {"float32", "bfloat16"}
        bfloat16 is fast only where the CPU has native bf16 (AVX-512 BF16, AMX).
    size : int
        Side of the square matrices.
    min_seconds : float
        Least measuring time.
    """
    import tensorflow as tf

    if dtype not in MATMUL_DTYPES:
        raise ValueError(f"dtype must be one of {MATMUL_DTYPES}; got {dtype!r}.")
    a = tf.random.stateless_uniform((size, size), seed=(0, 1), dtype="float32")
    a = tf.cast(a, dtype)
    b = tf.cast(tf.transpose(a), dtype)
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()  # warm-up: kernel selection and thread pool start
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or runs < 3:
        product().numpy()
        runs += 1
    return 2 * size**3 * runs / elapsed
