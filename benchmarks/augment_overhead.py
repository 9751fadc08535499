"""Training throughput with and without per-epoch augmentation (target: <= 15% slower).

The default classifier trains a few epochs on real grayscale CIFAR-10 images with
augmentation off, with the default flip + shift, and with flip + shift + the seed's 3%
pixel noise; the first epoch is warm-up.

    python benchmarks/augment_overhead.py [--data ARCHIVE] [--images 8192] [--csv FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import EpochTimer, ResultsTable, grayscale_cifar, images_per_second, machine_header

from sklcifar import FastNetClassifier, training
from sklcifar.transformers import PixelNoise, RandomFlip, RandomShift

# (augmentation, threads preparing batches)
SETTINGS = {
    "none": ((), 1),
    "flip+shift, 1 thread": ((RandomFlip(), RandomShift(2)), 1),
    "flip+shift, 2 threads": ((RandomFlip(), RandomShift(2)), 2),
    "flip+shift+pixel_noise, 2 threads": ((RandomFlip(), RandomShift(2), PixelNoise()), 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--csv", type=Path, help="also write the rows, with the machine, here")
    args = parser.parse_args()
    print(machine_header(), flush=True)
    X, y = grayscale_cifar(args.data, "train")
    X, y = X[: args.images], y[: args.images]
    print(f"# {len(X)} images, {args.epochs} epochs (first is warm-up)")
    table = ResultsTable(["augmentation", "train img/s", "slowdown vs none"], csv_path=args.csv)
    baseline = None
    for name, (augment, workers) in SETTINGS.items():
        training.AUGMENT_WORKERS = workers
        timer = EpochTimer()
        FastNetClassifier(
            epochs=args.epochs,
            augment=augment,
            validation_fraction=0,
            callbacks=[timer],
            random_state=0,
        ).fit(X, y)
        rate = images_per_second(len(X), timer.seconds)
        baseline = baseline or rate
        table.add(
            {"augmentation": name, "train_images_per_s": round(rate, 1)},
            [name, f"{rate:.0f}", f"{100 * (baseline / rate - 1):+.1f}%"],
        )


if __name__ == "__main__":
    main()
