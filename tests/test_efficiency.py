"""Model FLOPs and the machine's matmul rate (sklcifar.efficiency)."""

import math

import keras
import pytest

from sklcifar.architectures import build_fastnet
from sklcifar.efficiency import forward_flops, matmul_flops_per_second


def test_default_fastnet_does_23_7_million_multiply_adds_per_image():
    # The figure the efficiency analysis of issue 11 starts from.
    model = build_fastnet((32, 32, 1), 10, width=16)
    assert forward_flops(model) == 2 * 23_741_696


def test_nested_networks_and_strided_convolutions_are_counted():
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(5, 3, strides=2, padding="same")]
    )
    outer = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandomFlip(), inner])
    assert forward_flops(outer) == forward_flops(inner) == 2 * (4 * 4) * 5 * (3 * 3 * 3)


def test_matmul_rate_is_a_positive_rate():
    rate = matmul_flops_per_second("float32", size=64, min_seconds=0.01)
    assert rate > 0 and math.isfinite(rate)


def test_matmul_rate_rejects_unknown_precisions():
    with pytest.raises(ValueError, match="dtype must be one of"):
        matmul_flops_per_second("float8", size=8, min_seconds=0.0)
