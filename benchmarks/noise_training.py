"""The seed study's noise experiment on grayscale CIFAR-10, with per-epoch noise.

One classifier is trained twice on the same images: with the default augmentation, and
with the seed's 3% pixel noise added to it as per-epoch augmentation (fresh noise every
epoch instead of the seed's one static noisy copy). Both are scored on the clean test set
and on the test set with 3% of each image's pixels replaced by noise (fixed seed).

    python benchmarks/noise_training.py [--data ARCHIVE] [--subset 20000] [--epochs 8] [--csv FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import ResultsTable, grayscale_cifar, machine_header

from sklcifar import FastNetClassifier
from sklcifar.datasets import stratified_subset
from sklcifar.perturbations import SEED_NOISE_FRACTION, pixel_noise
from sklcifar.transformers import PixelNoise, RandomFlip, RandomShift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument("--subset", type=int, default=20000, help="stratified training subset")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--fraction", type=float, default=SEED_NOISE_FRACTION, help="share of noisy pixels"
    )
    parser.add_argument("--csv", type=Path, help="also write the rows, with the machine, here")
    args = parser.parse_args()
    print(machine_header(), flush=True)
    X, y = grayscale_cifar(args.data, "train")
    X, y = stratified_subset(X, y, args.subset, random_state=0)
    X_test, y_test = grayscale_cifar(args.data, "test")
    X_noisy = pixel_noise(X_test, args.fraction, random_state=0)
    print(f"# {len(X)} training images, {args.epochs} epochs")
    table = ResultsTable(
        ["training augmentation", "clean test acc.", "noisy test acc.", "drop", "train s"],
        csv_path=args.csv,
    )
    settings = {
        "flip+shift": (RandomFlip(), RandomShift(2)),
        f"flip+shift+pixel_noise({args.fraction})": (
            RandomFlip(),
            RandomShift(2),
            PixelNoise(args.fraction),
        ),
    }
    for name, augment in settings.items():
        start = time.perf_counter()
        clf = FastNetClassifier(epochs=args.epochs, augment=augment, random_state=0).fit(X, y)
        seconds = time.perf_counter() - start
        clean, noisy = clf.score(X_test, y_test), clf.score(X_noisy, y_test)
        row = {
            "augmentation": name,
            "clean_accuracy": clean,
            "noisy_accuracy": noisy,
            "train_seconds": round(seconds, 1),
        }
        table.add(
            row, [name, f"{clean:.4f}", f"{noisy:.4f}", f"{clean - noisy:.4f}", f"{seconds:.0f}"]
        )


if __name__ == "__main__":
    main()
