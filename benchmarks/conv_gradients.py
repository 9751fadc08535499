"""Each convolution of a network: its gradients by Keras' Conv2D against ForwardGradConv2D.

For every convolution of the chosen network (built for 32x32 grey images) this times one
forward and backward pass of that layer alone, on random inputs of its own input shape
(the values do not change the arithmetic), the input and the kernel gradient both, once
as ``keras.layers.Conv2D`` computes them (TensorFlow's ``Conv2DBackpropInput``) and once as
``sklcifar.convolution.ForwardGradConv2D`` does, side by side in one process, best of
``--repeats`` rounds of ``--steps`` passes after a warm-up.

    python benchmarks/conv_gradients.py [--network fastnet16|m12] [--batch 128]
        [--repeats 5] [--steps 20] [--csv FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from _common import ResultsTable, machine_header

from sklcifar import allocator
from sklcifar.architectures import CONVNET_PRESETS, build_convnet, build_fastnet
from sklcifar.convolution import ForwardGradConv2D

NETWORKS = {
    "fastnet16": lambda: build_fastnet(
        (32, 32, 1), 10, width=16, whitening_kernel=np.ones((2, 2, 1, 8), dtype="float32")
    ),
    "m12": lambda: build_convnet((32, 32, 1), 20, **CONVNET_PRESETS["m12"]),
}


def pass_seconds(layer: keras.layers.Layer, images: tf.Tensor, *, repeats: int, steps: int):
    """Best seconds of one forward and backward pass (input and kernel gradients)."""

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(layer(images))
        return tape.gradient(loss, [images, layer.kernel.value])

    for _ in range(3):
        forward_backward()[0].numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            gradients = forward_backward()
        gradients[0].numpy()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--network", choices=sorted(NETWORKS), default="fastnet16")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--csv", type=Path, help="also write the rows, with the machine, here")
    args = parser.parse_args(argv)
    print(machine_header(), flush=True)
    print(f"# {args.network}, batch {args.batch}, best of {args.repeats} x {args.steps} passes")
    allocator.hold()  # as during a fit: memory kept between steps
    table = ResultsTable(
        ["layer", "input", "kernel", "Conv2D ms", "ForwardGradConv2D ms", "speed-up"],
        text_columns=3,
        csv_path=args.csv,
    )
    rng = np.random.default_rng(0)
    total = {"keras": 0.0, "forward": 0.0}
    for layer in NETWORKS[args.network]().layers:
        if not isinstance(layer, ForwardGradConv2D) or not layer.input_gradient_as_convolution:
            continue  # Keras' own computation either way
        shape = (args.batch, *layer.input.shape[1:])
        images = tf.constant(rng.standard_normal(shape).astype("float32"))
        config = {**layer.get_config(), "name": None}
        seconds = {}
        for kind, cls in (("keras", keras.layers.Conv2D), ("forward", ForwardGradConv2D)):
            seconds[kind] = pass_seconds(
                cls.from_config(config), images, repeats=args.repeats, steps=args.steps
            )
            total[kind] += seconds[kind]
        row = {
            "layer": layer.name,
            "input": "x".join(map(str, shape[1:])),
            "kernel": "x".join(map(str, layer.kernel_size)) + f" -> {layer.filters}",
            "keras_ms": 1000 * seconds["keras"],
            "forward_ms": 1000 * seconds["forward"],
            "speedup": seconds["keras"] / seconds["forward"],
        }
        table.add(row, [*list(row.values())[:3], *_cells(seconds)])
    table.add(
        {"layer": "all", "keras_ms": 1000 * total["keras"], "forward_ms": 1000 * total["forward"]},
        ["all of them", "", "", *_cells(total)],
    )


def _cells(seconds: dict[str, float]) -> list[str]:
    keras_s, forward_s = seconds["keras"], seconds["forward"]
    return [f"{1000 * keras_s:.2f}", f"{1000 * forward_s:.2f}", f"{keras_s / forward_s:.2f}x"]


if __name__ == "__main__":
    main()
