"""Test-time augmentation: accuracy against prediction speed, one saved model, three modes.

Scores a fitted pipeline (``sklcifar train`` or ``sklcifar search`` wrote it) on the
CIFAR test split with ``tta=False`` (one view), ``True`` (the image and its mirror image)
and ``"multicrop"`` (those and two diagonal one-pixel shifts of both, airbench's six
views), timing each prediction of the whole split after a warm-up::

    python benchmarks/tta_views.py --model runs/search/model.joblib --out benchmarks/out/tta

Prints the machine and a markdown table (test accuracy, images/s, seconds); writes
DIR/tta_views.csv with the machine's facts. Figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import DEFAULT_DATA, ResultsTable, machine_header

from sklcifar.datasets import load_cifar
from sklcifar.persistence import load_model

MODES = (False, True, "multicrop")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved pipeline")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR archive (its test split)")
    parser.add_argument("--label-mode", default="coarse", help="CIFAR-100 label mode")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(machine_header(), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    classifier = model.steps[-1][1]
    test = load_cifar(args.data, split="test", label_mode=args.label_mode)
    table = ResultsTable(
        ["tta", "test_accuracy", "images_per_s", "seconds"], csv_path=args.out / "tta_views.csv"
    )
    for mode in MODES:
        classifier.set_params(tta=mode)
        model.predict(test.images[:512])  # warm-up: builds the prediction function
        start = time.perf_counter()
        predicted = model.predict(test.images)
        seconds = time.perf_counter() - start
        row = {
            "tta": str(mode),
            "test_accuracy": round(float((predicted == test.target).mean()), 4),
            "images_per_s": round(len(test.target) / seconds),
            "seconds": round(seconds, 1),
        }
        table.add(row, [str(value) for value in row.values()])


if __name__ == "__main__":
    main()
