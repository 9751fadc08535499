"""A one-off experiment: split BatchNorm for the robust mixture (issue 8), side by side.

Does the robust recipe's clean cost shrink when the mixed images get BatchNorm layers of
their own? Merchant, Zoph and Cubuk (2020, "Does data augmentation benefit from split
BatchNorms?") and AdvProp (Xie et al., 2020) train strongly augmented images through
auxiliary BatchNorm layers and predict with the main ones. The package has no such option;
this script patches one in for its own fits (``split_batchnorm``: every BatchNorm of the
FastNet becomes a main/auxiliary pair; each training batch's first half gets flip, shift
and ``RobustMix``'s pixel noise alone (its chains off, ``width=0``) and goes through the
main layers, the second half the whole ``ROBUST_AUGMENT`` and the auxiliary layers;
validation and prediction use the main layers). Recipes, same seed and epochs:

- ``default``: flip + shift;
- ``mix_half``: flip + shift + ``RobustMix(mix_probability=0.5)``, the same images as
  ``split`` without the split;
- ``split``: the split described above.

Prints the machine and ``compare_reports``' table (clean, seed's noise, the 15
corruptions x 5 severities on stratified test images; mCE against ``default``); writes it
to --out.

    python benchmarks/split_batchnorm.py --subset 20000 --epochs 8 --out runs/split_batchnorm
    python benchmarks/split_batchnorm.py --subset 1000 --epochs 1 --report-images 100 \\
        --out /tmp/split_quick      # a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from pathlib import Path

import keras
import numpy as np
from _common import DEFAULT_DATA, machine_header, train_and_test_images
from sklearn.base import clone

from sklcifar import architectures, training
from sklcifar.corruption_error import compare_reports, comparison_markdown
from sklcifar.estimators import ROBUST_AUGMENT
from sklcifar.files import atomic_write
from sklcifar.pipelines import make_pipeline
from sklcifar.robustness import evaluate_robustness
from sklcifar.transformers import RobustMix

RECIPES = {
    "default": {"augment": ("flip", "shift")},
    "mix_half": {"augment": ("flip", "shift", RobustMix(mix_probability=0.5))},
    "split": {"augment": ROBUST_AUGMENT},
}


class SplitBatchNormalization(keras.layers.Layer):
    """Main BatchNorm for a training batch's first half, auxiliary for the second; main
    alone outside training."""

    def __init__(self, momentum: float, name: str | None = None):
        super().__init__(name=name)
        self.main = keras.layers.BatchNormalization(momentum=momentum, name="main")
        self.auxiliary = keras.layers.BatchNormalization(momentum=momentum, name="auxiliary")

    def build(self, shape):
        self.main.build(shape)
        self.auxiliary.build(shape)

    def call(self, x, training=None):
        if not training:
            return self.main(x, training=False)
        half = keras.ops.shape(x)[0] // 2
        return keras.ops.concatenate(
            [self.main(x[:half], training=True), self.auxiliary(x[half:], training=True)]
        )


class _SplitLayers:
    """``keras.layers`` with BatchNormalization replaced, for the architecture builders."""

    def __getattr__(self, name):
        if name == "BatchNormalization":
            return SplitBatchNormalization
        return getattr(keras.layers, name)


class _SplitBatches(training.AugmentedBatches):
    """Batches whose first half is unmixed (RobustMix's noise alone), second half mixed."""

    @functools.cached_property
    def _unmixed(self) -> list:
        # RobustMix with no chains (width 0) draws its pixel noise alone.
        return [
            clone(step).set_params(width=0) if isinstance(step, RobustMix) else step
            for step in self.augment
        ]

    def __getitem__(self, index):
        rows = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        half = len(rows) // 2
        images = self.images[rows]
        batch = np.concatenate(
            [
                self._perturbed(images[:half], self._unmixed, rng, None),
                self._perturbed(images[half:], self.augment, rng, None),
            ]
        )
        return batch, self.labels[rows]


@contextlib.contextmanager
def split_batchnorm():
    """Build and train the FastNets fitted inside with split BatchNorm."""
    saved = architectures.layers, training.AugmentedBatches
    architectures.layers, training.AugmentedBatches = _SplitLayers(), _SplitBatches
    try:
        yield
    finally:
        architectures.layers, training.AugmentedBatches = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 archive")
    parser.add_argument("--subset", type=int, help="stratified training subset (default: all)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--report-images", type=int, default=2000)
    parser.add_argument("--out", type=Path, required=True, help="folder for the table")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine_header(), flush=True)
    X, y, X_test, y_test = train_and_test_images(
        args.data, subset=args.subset, test_images=args.report_images
    )
    reports = {}
    for name, params in RECIPES.items():
        pipeline = make_pipeline("fastnet", random_state=0, epochs=args.epochs, **params)
        start = time.perf_counter()
        with split_batchnorm() if name == "split" else contextlib.nullcontext():
            pipeline.fit(X, y)
        print(f"# {name}: {time.perf_counter() - start:.0f} s", flush=True)
        reports[name] = evaluate_robustness(pipeline, X_test, y_test, random_state=0)
    table = comparison_markdown(compare_reports(reports, baseline="default"))
    print(table, end="")
    with atomic_write(args.out / "split_batchnorm.md", "w", overwrite=True) as file:
        file.write(f"{machine_header()}\n\n{table}")


if __name__ == "__main__":
    main()
