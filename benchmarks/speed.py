"""Training and prediction throughput (images/s) per architecture and precision.

Each configuration trains a few epochs on real grayscale CIFAR-10 images with its own
recipe (batch size, augmentation), the first epoch being warm-up, then predicts 10,000
test images with and without flip test-time augmentation.

    python benchmarks/speed.py [--data ARCHIVE] [--only fastnet16,m12] [--precisions bfloat16]
"""

from __future__ import annotations

import argparse
import time

from _common import EpochTimer, grayscale_cifar, images_per_second, machine

from sklcifar import ConvNetClassifier, FastNetClassifier, ResNetClassifier

# name -> (classifier, training images per epoch: fewer for the slow ones)
CONFIGS = {
    "m12": (lambda: ConvNetClassifier(preset="m12"), 2048),
    "fastnet16": (lambda: FastNetClassifier(width=16), 8192),
    "fastnet24": (lambda: FastNetClassifier(width=24), 6144),
    "fastnet32": (lambda: FastNetClassifier(width=32), 4096),
    "resnet20": (lambda: ResNetClassifier(depth=20), 4096),
}


def measure(name: str, precision: str, X, y, X_test) -> dict:
    make, n_images = CONFIGS[name]
    timer = EpochTimer()
    clf = make().set_params(
        epochs=3, validation_fraction=0, precision=precision, callbacks=[timer], random_state=0
    )
    clf.fit(X[:n_images], y[:n_images])
    row = {
        "architecture": name,
        "precision": precision,
        "parameters": clf.model_.count_params(),
        "train_images_per_s": images_per_second(n_images, timer.seconds),
    }
    for tta in (False, True):
        clf.set_params(tta=tta)
        clf.predict_proba(X_test[:1024])  # warm-up
        start = time.perf_counter()
        clf.predict_proba(X_test)
        row[f"predict_images_per_s{'_tta' if tta else ''}"] = len(X_test) / (
            time.perf_counter() - start
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument("--only", default=",".join(CONFIGS), help="comma-separated names")
    parser.add_argument("--precisions", default="float32,bfloat16")
    args = parser.parse_args()
    X, y = grayscale_cifar(args.data, "train")
    X_test, _ = grayscale_cifar(args.data, "test")
    print(f"# {machine()}")
    print("| architecture | precision | parameters | train img/s | predict img/s | with TTA |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.only.split(","):
        for precision in args.precisions.split(","):
            r = measure(name, precision, X, y, X_test)
            print(
                f"| {name} | {precision} | {r['parameters']:,} | {r['train_images_per_s']:.0f} "
                f"| {r['predict_images_per_s']:.0f} | {r['predict_images_per_s_tta']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
