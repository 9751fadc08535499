"""Training and prediction throughput per architecture and precision, against the machine's peak.

The run first measures the machine's matrix-product rate with TensorFlow (a 2048 x 2048
``tf.matmul``) in float32 and, where the CPU has native bf16, in bfloat16. Then each
configuration trains a few epochs on real grayscale CIFAR-10 images twice, side by side:

- ``sklcifar``: the estimator's own loop (its recipe's batch size, per-epoch augmentation
  in worker threads, validation off);
- ``keras.fit``: plain ``keras.Model.fit`` of the same network on in-memory float32 arrays
  (no augmentation, Nesterov SGD, the same batch size), the gap between the two being what
  the package's loop costs.

The first epoch of each is warm-up. Every row reports the training images/s, the model's
training GFLOP per image (3 x the forward pass's conv and dense FLOPs,
``sklcifar.efficiency``), the GFLOP/s that makes and its share of the matmul peak in the
row's precision and in the machine's best precision. The estimator then predicts the
10,000 test images with and without flip test-time augmentation (the recipe's: with its
``tta_margin``, only images the network is unsure of get the mirror image; a network
trained this briefly is unsure of more images than a fully trained one, so the TTA figure
is lower than the trained model's, which ``tta_views.py`` measures).

    python benchmarks/speed.py [--data ARCHIVE] [--only fastnet16,m12]
        [--precisions float32,bfloat16] [--epochs 3] [--images 8192] [--csv FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import (
    EpochTimer,
    ResultsTable,
    grayscale_cifar,
    images_per_second,
    machine_header,
    plain_keras_fit,
)

from sklcifar import ConvNetClassifier, FastNetClassifier, ResNetClassifier, training
from sklcifar.efficiency import TRAINING_FLOPS_FACTOR, forward_flops, matmul_flops_per_second

# name -> (classifier, training images per epoch: fewer for the slow ones)
CONFIGS = {
    "m12": (lambda: ConvNetClassifier(preset="m12"), 2048),
    "fastnet16": (lambda: FastNetClassifier(width=16), 8192),
    "fastnet24": (lambda: FastNetClassifier(width=24), 6144),
    "fastnet32": (lambda: FastNetClassifier(width=32), 4096),
    "resnet20": (lambda: ResNetClassifier(depth=20), 4096),
}


def default_precisions() -> str:
    """float32, plus bfloat16 where the CPU has native bf16 (emulated bf16 is slow)."""
    return "float32,bfloat16" if training.cpu_supports_bf16() else "float32"


def efficiency(row: dict, peaks: dict[str, float]) -> dict:
    """Achieved GFLOP/s and its share of the row's precision's peak and of the best one
    (``peaks`` in GFLOP/s per precision)."""
    achieved = row["train_images_per_s"] * row["training_gflop_per_image"]
    return {
        "achieved_gflops": achieved,
        "share_of_precision_peak": achieved / peaks[row["precision"]],
        "share_of_best_peak": achieved / max(peaks.values()),
    }


def measure(name: str, precision: str, X, y, X_test, *, epochs: int, images: int | None):
    """The two rows (sklcifar loop, keras.fit) of one configuration and precision."""
    make, n_images = CONFIGS[name]
    n_images = min(images or n_images, len(X))
    X, y = X[:n_images], y[:n_images]
    timer = EpochTimer()
    clf = make().set_params(
        epochs=epochs, validation_fraction=0, precision=precision, callbacks=[timer], random_state=0
    )
    clf.fit(X, y)
    common = {
        "architecture": name,
        "precision": precision,
        "parameters": clf.model_.count_params(),
        "batch_size": clf._setting("batch_size"),
        "training_gflop_per_image": TRAINING_FLOPS_FACTOR * forward_flops(clf.model_) / 1e9,
    }
    package = {
        **common,
        "loop": "sklcifar",
        "train_images_per_s": images_per_second(n_images, timer.seconds),
    }
    for tta in (False, True):
        clf.set_params(tta=tta)
        # Warm-up on the same images: a timed call must not trace a new last-batch shape.
        clf.predict_proba(X_test)
        start = time.perf_counter()
        clf.predict_proba(X_test)
        package[f"predict_images_per_s{'_tta' if tta else ''}"] = len(X_test) / (
            time.perf_counter() - start
        )
    keras_timer = EpochTimer()
    plain_keras_fit(clf, X, y, epochs=epochs, callbacks=[keras_timer])
    plain = {
        **common,
        "loop": "keras.fit",
        "train_images_per_s": images_per_second(n_images, keras_timer.seconds),
    }
    return [package, plain]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument("--only", default=",".join(CONFIGS), help="comma-separated names")
    parser.add_argument(
        "--precisions",
        default=default_precisions(),
        help="comma-separated (default here: %(default)s)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="per run, the first is warm-up")
    parser.add_argument(
        "--images", type=int, default=None, help="training images (default: per architecture)"
    )
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--csv", type=Path, help="also write the rows, with the machine, here")
    args = parser.parse_args()
    names = args.only.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"--only takes names from {sorted(CONFIGS)}; got {unknown}")
    print(machine_header(), flush=True)
    peaks = {  # GFLOP/s
        precision: matmul_flops_per_second(precision, size=args.matmul_size) / 1e9
        for precision in args.precisions.split(",")
    }
    for precision, peak in peaks.items():
        print(f"# matmul peak {precision}: {peak:.1f} GFLOP/s ({args.matmul_size}^2)")
    X, y = grayscale_cifar(args.data, "train")
    X_test, _ = grayscale_cifar(args.data, "test")
    table = ResultsTable(
        [
            "architecture",
            "precision",
            "loop",
            "parameters",
            "batch",
            "train img/s",
            "GFLOP/img",
            "GFLOP/s",
            "% of its peak",
            "% of best peak",
            "predict img/s",
            "with TTA",
        ],
        text_columns=3,
        csv_path=args.csv,
    )
    for name in names:
        for precision in peaks:
            for r in measure(name, precision, X, y, X_test, epochs=args.epochs, images=args.images):
                r.update(efficiency(r, peaks), matmul_peak_gflops=peaks[precision])
                predict = (
                    [f"{r['predict_images_per_s']:.0f}", f"{r['predict_images_per_s_tta']:.0f}"]
                    if "predict_images_per_s" in r
                    else ["-", "-"]
                )
                cells = [
                    name,
                    precision,
                    r["loop"],
                    f"{r['parameters']:,}",
                    f"{r['batch_size']}",
                    f"{r['train_images_per_s']:.0f}",
                    f"{r['training_gflop_per_image']:.3f}",
                    f"{r['achieved_gflops']:.1f}",
                    f"{100 * r['share_of_precision_peak']:.0f}%",
                    f"{100 * r['share_of_best_peak']:.0f}%",
                    *predict,
                ]
                table.add(r, cells)


if __name__ == "__main__":
    main()
