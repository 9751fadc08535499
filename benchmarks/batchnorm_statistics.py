"""A robust-recipe FastNet scored with its BatchNorm statistics as trained, then re-estimated
on clean images (issue 8: is the robust recipe's clean cost in those statistics?).

Trains ``make_pipeline("fastnet", augment=ROBUST_AUGMENT)`` for ``--epochs`` on the gray
CIFAR-10 train split (or loads ``--load``), scores it with ``evaluate_robustness`` on
stratified test images, then replaces every BatchNorm layer's moving mean and variance by
the exact average over ``--calibration-images`` clean training images (batches through the
network in training mode, each layer's momentum set to a cumulative average) and scores
the same images again. Writes as_trained.md, clean_statistics.md and robust.joblib to --out.

    python benchmarks/batchnorm_statistics.py --epochs 6 --out runs/batchnorm_statistics
    python benchmarks/batchnorm_statistics.py --subset 1000 --epochs 1 --report-images 100 \\
        --calibration-images 500 --out /tmp/bn_quick      # a smoke test
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
from _common import DEFAULT_DATA, machine_header, train_and_test_images

from sklcifar.datasets import stratified_subset
from sklcifar.estimators import ROBUST_AUGMENT
from sklcifar.files import atomic_write
from sklcifar.persistence import load_model, save_model
from sklcifar.pipelines import make_pipeline
from sklcifar.robustness import evaluate_robustness


def recalibrate_batchnorm(model: keras.Model, images, batch_size: int = 500) -> int:
    """Set each BatchNorm layer's statistics to their exact average over ``images``."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for index, start in enumerate(range(0, len(images), batch_size)):
        for layer in layers:
            layer.momentum = index / (index + 1)  # cumulative average of the batches
        model(images[start : start + batch_size], training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    return len(layers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 archive")
    parser.add_argument("--subset", type=int, help="stratified training subset (default: all)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--report-images", type=int, default=2000)
    parser.add_argument("--calibration-images", type=int, default=10000)
    parser.add_argument("--load", type=Path, help="a saved robust model instead of training")
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine_header(), flush=True)
    X, y, X_test, y_test = train_and_test_images(
        args.data, subset=args.subset, test_images=args.report_images
    )
    if args.load:
        pipeline = load_model(args.load)
    else:
        pipeline = make_pipeline(
            "fastnet", random_state=0, epochs=args.epochs, augment=ROBUST_AUGMENT
        )
        start = time.perf_counter()
        pipeline.fit(X, y)
        print(f"# fit {time.perf_counter() - start:.0f} s, {pipeline[-1].epochs_} epochs")
        save_model(pipeline, args.out / "robust.joblib", overwrite=True)
    classifier = pipeline[-1]
    for name in ("as_trained", "clean_statistics"):
        if name == "clean_statistics":
            X_clean, _ = stratified_subset(X, y, args.calibration_images, random_state=1)
            # float32 in [0, 1] after the pipeline's preprocessing, as predict feeds the network
            images, _ = classifier._validate_data(X=pipeline[:-1].transform(X_clean))
            images = classifier.feature_encoder_.transform(images)
            count = recalibrate_batchnorm(classifier.model_, images)
            print(f"# {count} BatchNorm layers re-estimated on {len(images)} clean images")
        report = evaluate_robustness(pipeline, X_test, y_test, random_state=0)
        with atomic_write(args.out / f"{name}.md", "w", overwrite=True) as file:
            file.write(report.to_markdown())
        print(f"## {name}\n{report.to_markdown()}", flush=True)


if __name__ == "__main__":
    main()
