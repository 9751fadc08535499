"""Where the package's training loop loses against plain Keras: one factor at a time.

The default classifier (``FastNetClassifier()``, its recipe) trains a few epochs on real
grayscale CIFAR-10 images under one changed setting per row, each row in a fresh process
(TensorFlow's thread pools are fixed once it starts, and no row inherits another's warm
caches), one after the other in the same run so that the rows compare. The first epoch is
warm-up. Each row reports

- ``train img/s``: training steps only (the clock stops for validation);
- ``epoch img/s``: training images over the whole epoch's wall time, validation included,
  the figure a time budget pays.

Rows (``--only`` picks some): the default; plain ``keras.Model.fit`` on in-memory arrays
(no augmentation) at batch 512 and 256, and with XLA; the estimator with ``jit_compile``;
augmentation prepared by 1 thread (the main one: no overlap) or 3, in the graph
(``augment_in_graph``) or none; the robust mixture (``ROBUST_AUGMENT``) with numpy's BLAS
limited to one thread while it runs (the package's setting) or not; batch 512; no
validation split; TensorFlow intra-/inter-op threads 1/1, 2/1, 1/2; weight EMA; float32
where the default picks bf16; glibc's allocator as TensorFlow leaves it; TensorFlow's
Eigen kernels instead of oneDNN's; TensorFlow's graph optimiser (grappler) off; the
convolutions' input gradients by TensorFlow's ``Conv2DBackpropInput`` instead of the forward
convolutions of ``sklcifar.convolution.ForwardGradConv2D``. There is
no data-layout row: TensorFlow's CPU convolutions take channels-last images only.

    python benchmarks/throughput_factors.py [--images 8192] [--epochs 4] [--only a,b]
        [--csv FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# name -> (estimator parameters, settings: loop, augment_workers, intra/inter-op threads,
# robust: the robust recipe's augmentation, blas: numpy's BLAS threads during fit,
# hold_memory: False leaves glibc's malloc thresholds as TensorFlow sets them, env: the
# child's environment variables, read when TensorFlow loads, graph_options: TensorFlow's
# graph optimiser (grappler) options, keras_input_gradient: every convolution's input
# gradient by TensorFlow's Conv2DBackpropInput, as keras.layers.Conv2D computes it)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "keras.fit batch 512": ({"batch_size": 512}, {"loop": "keras"}),
    "keras.fit batch 256": ({"batch_size": 256}, {"loop": "keras"}),
    "keras.fit batch 512 jit": ({"batch_size": 512, "jit_compile": True}, {"loop": "keras"}),
    "jit_compile": ({"jit_compile": True}, {}),
    "augmentation: 1 thread": ({}, {"augment_workers": 1}),
    "augmentation: 3 threads": ({}, {"augment_workers": 3}),
    "augmentation: in graph": ({"augment_in_graph": True}, {}),
    "augmentation: none": ({"augment": ()}, {}),
    "robust mixture": ({}, {"robust": True}),
    "robust mixture BLAS unlimited": ({}, {"robust": True, "blas": None}),
    "batch 512": ({"batch_size": 512}, {}),
    "no validation split": ({"validation_fraction": 0}, {}),
    "threads intra 1 inter 1": ({}, {"threads": (1, 1)}),
    "threads intra 2 inter 1": ({}, {"threads": (2, 1)}),
    "threads intra 1 inter 2": ({}, {"threads": (1, 2)}),
    "weight EMA 0.99": ({"ema_momentum": 0.99}, {}),
    "float32": ({"precision": "float32"}, {}),
    "allocator: as TensorFlow leaves it": ({}, {"hold_memory": False}),
    "oneDNN off (Eigen kernels)": ({}, {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}),
    "graph optimiser off": ({}, {"graph_options": {"disable_meta_optimizer": True}}),
    "input gradient: Conv2DBackpropInput": ({}, {"keras_input_gradient": True}),
}


def run_variant(name: str, n_images: int, epochs: int, data: str | None) -> dict:
    """Train one variant in this process and return its row (the child's job)."""
    params, settings = VARIANTS[name]
    import tensorflow as tf

    if "threads" in settings:
        intra, inter = settings["threads"]
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    tf.config.optimizer.set_experimental_options(settings.get("graph_options", {}))
    from _common import grayscale_cifar, images_per_second, plain_keras_fit

    from sklcifar import FastNetClassifier, allocator, training
    from sklcifar.convolution import ForwardGradConv2D
    from sklcifar.estimators import ROBUST_AUGMENT

    if "augment_workers" in settings:
        training.AUGMENT_WORKERS = settings["augment_workers"]
    if "blas" in settings:
        training.AUGMENT_BLAS_THREADS = settings["blas"]
    if settings.get("keras_input_gradient"):
        ForwardGradConv2D.input_gradient_as_convolution = property(lambda layer: False)
    if settings.get("hold_memory") is False:
        allocator.hold = lambda: None
    if settings.get("robust"):
        params = {**params, "augment": ROBUST_AUGMENT}
    X, y = grayscale_cifar(data, "train")
    X, y = X[:n_images], y[:n_images]
    timer = epoch_wall_timer()
    # Unseeded with jit_compile: scikeras fits a seeded estimator under TensorFlow's op
    # determinism, where Keras trains without XLA (sklcifar.base, jit_compile).
    random_state = None if params.get("jit_compile") is True else 0
    clf = FastNetClassifier(epochs=epochs, random_state=random_state, callbacks=[timer], **params)
    if settings.get("loop") == "keras":
        # Build the same network through a one-epoch fit on a few images, then time
        # keras.Model.fit of a fresh copy on the in-memory arrays.
        clf.set_params(epochs=1, callbacks=None).fit(X[:1024], y[:1024])
        jit_compile = params.get("jit_compile", "auto")
        plain_keras_fit(clf, X, y, epochs=epochs, callbacks=[timer], jit_compile=jit_compile)
        n_train = len(X)
    else:
        clf.fit(X, y)
        n_train = clf.n_train_
        if params.get("jit_compile") is True and clf.model_.jit_compile is not True:
            raise RuntimeError(f"row {name!r} asked for XLA, and Keras trained without it")
    return {
        "variant": name,
        "batch_size": clf._setting("batch_size"),
        "train_images_per_s": images_per_second(n_train, timer.train_seconds),
        "epoch_images_per_s": images_per_second(n_train, timer.epoch_seconds),
    }


def epoch_wall_timer():
    """A Keras callback timing each epoch's training steps, and the whole epoch."""
    import keras  # not at the top: a child sets TensorFlow's threads before importing it

    class EpochWallTimer(keras.callbacks.Callback):
        """Per epoch: seconds of training steps, and of the whole epoch with validation."""

        def __init__(self):
            super().__init__()
            self.train_seconds: list[float] = []
            self.epoch_seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()
            self._trained = None

        def on_test_begin(self, logs=None):
            if self._trained is None:
                self._trained = time.perf_counter() - self._start

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.perf_counter() - self._start
            self.epoch_seconds.append(elapsed)
            self.train_seconds.append(elapsed if self._trained is None else self._trained)

    return EpochWallTimer()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=4, help="per row, the first is warm-up")
    parser.add_argument("--only", default=None, help="comma-separated variant names")
    parser.add_argument("--csv", type=Path, help="also write the rows, with the machine, here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(run_variant(args.child, args.images, args.epochs, args.data)))
        return
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"--only takes names from {list(VARIANTS)}; got {unknown}")

    from _common import ResultsTable, machine_header

    print(machine_header(), flush=True)
    print(f"# {args.images} images, {args.epochs} epochs per row (first is warm-up)")
    table = ResultsTable(
        ["variant", "train img/s", "epoch img/s (with validation)", "epoch speed vs first row"],
        csv_path=args.csv,
    )
    baseline = None
    for name in names:
        command = [sys.executable, __file__, "--child", name]
        command += ["--images", str(args.images), "--epochs", str(args.epochs)]
        if args.data:
            command += ["--data", args.data]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **VARIANTS[name][1].get("env", {})}
        child = subprocess.run(command, capture_output=True, text=True, env=env)
        if child.returncode:
            raise SystemExit(f"variant {name!r} failed:\n{child.stderr[-3000:]}")
        row = json.loads(child.stdout.strip().splitlines()[-1])
        baseline = baseline or row["epoch_images_per_s"]
        row["epoch_speed_vs_first_row"] = row["epoch_images_per_s"] / baseline
        cells = [
            name,
            f"{row['train_images_per_s']:.0f}",
            f"{row['epoch_images_per_s']:.0f}",
            f"{row['epoch_speed_vs_first_row']:.2f}x",
        ]
        table.add(row, cells)


if __name__ == "__main__":
    main()
