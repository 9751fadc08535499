"""The robust recipe against the default recipe, same budget, side by side in one run.

Trains ``make_pipeline("fastnet", augment=...)`` (Grayscale, then FastNet with the fast
recipe) twice on the same gray CIFAR-10 training images, with the same seed and the same
budget: the recipe's epochs, ``--epochs N``, or ``--minutes M`` (``time_budget``, for a CPU
too slow for the recipe's epochs; the robust recipe then trains the fewer epochs its
costlier batches leave it):

- ``default``: the fast recipe's augmentation, flip + 2-pixel shift;
- ``robust``: ``sklcifar.estimators.ROBUST_AUGMENT``, flip + shift + ``RobustMix``
  (AugMix and PRIME chains, and the seed's pixel noise at 2-4% on half the images);
- ``jsd``: the same with AugMix's Jensen-Shannon consistency loss (``consistency=12``:
  three views per image, about three times the compute per epoch);
- ``mix_all``, ``mix_half``, ``augmix``, ``prime``, ``mix_falling``,
  ``mix_falling_half``: variants of the mixture (below);
- ``default_wide``, ``robust_wide``: the two recipes on a FastNet of width 24;
- ``robust_no_smoothing``, ``robust_light_regularisation``: the robust recipe without
  label smoothing, and also with half the weight decay;
- ``robust_severity_3``, ``robust_severity_2``, ``robust_severity_0_5``: the mixture's
  operations at other severities; ``robust_noise_only``: the seed's noise without the
  chains; ``robust_noise_quarter`` (and ``_no_smoothing``): the noise on a quarter of the
  images.

Both are scored with ``evaluate_robustness`` on the same stratified test images: clean,
the seed's 3% pixel noise on the grey images, and the 15 CIFAR-C corruptions x 5
severities on the RGB images. Prints the machine, then one row per recipe: clean
accuracy, drop under the seed's noise, mean over the 75 corruption cells (and as % of
clean), per-family means (noise, blur, weather, digital), mCE and relative mCE against
the default recipe, training seconds. Writes robust_training.csv (with the machine),
robust_training.md, robust_training.png (the two models side by side) and each
model's robustness table to --out.

    python benchmarks/robust_training.py --out runs/robust_training
    python benchmarks/robust_training.py --minutes 8 --report-images 5000 --out runs/robust_8min
    python benchmarks/robust_training.py --subset 1000 --epochs 1 --report-images 200 \\
        --out /tmp/robust_quick        # a smoke test
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import DEFAULT_DATA, machine_header, train_and_test_images, write_csv

from sklcifar.augmix import AUGMIX_OPERATIONS, PRIME_OPERATIONS
from sklcifar.corruption_error import compare_reports, comparison_markdown
from sklcifar.estimators import FAST_RECIPE, ROBUST_AUGMENT
from sklcifar.files import atomic_write, check_output_path
from sklcifar.pipelines import make_pipeline
from sklcifar.plots import plot_robustness_comparison, save_figure
from sklcifar.robustness import evaluate_robustness
from sklcifar.transformers import RobustMix

#: Classifier parameters of each recipe.
RECIPES = {
    "default": {"augment": ("flip", "shift")},
    "robust": {"augment": ROBUST_AUGMENT},
    "jsd": {"augment": ROBUST_AUGMENT, "consistency": 12.0},
    # The robust mixture on every image or on half of them (clean accuracy against
    # robustness), and its two halves alone, to see what each brings.
    "mix_all": {"augment": ("flip", "shift", RobustMix(mix_probability=1.0))},
    "mix_half": {"augment": ("flip", "shift", RobustMix(mix_probability=0.5))},
    "augmix": {"augment": ("flip", "shift", RobustMix(operations=AUGMIX_OPERATIONS))},
    "prime": {"augment": ("flip", "shift", RobustMix(operations=PRIME_OPERATIONS))},
    # The mixed share falling over the schedule, from every image to none or to half, so
    # that the last, low-learning-rate steps fit images nearer the clean ones; the noise
    # stays on half the images throughout.
    "mix_falling": {"augment": ("flip", "shift", RobustMix(final_mix_probability=0.0))},
    "mix_falling_half": {"augment": ("flip", "shift", RobustMix(final_mix_probability=0.5))},
    # Both recipes on a wider FastNet (1.5x the filters, about 2.2x the arithmetic): does
    # the robust recipe's clean cost shrink with capacity?
    "default_wide": {"augment": ("flip", "shift"), "width": 24},
    "robust_wide": {"augment": ROBUST_AUGMENT, "width": 24},
    # The robust recipe with less of the recipe's other regularisers: the mixture already
    # softens the targets and regularises, so label smoothing and weight decay tuned for
    # flips and shifts alone may now cost clean accuracy.
    "robust_no_smoothing": {"augment": ROBUST_AUGMENT, "label_smoothing": 0.0},
    "robust_light_regularisation": {
        "augment": ROBUST_AUGMENT,
        "label_smoothing": 0.0,
        "weight_decay": FAST_RECIPE["weight_decay"] / 2,
    },
    # The mixture's operations at AugMix's default severity 3 (which gives PRIME's primitives
    # PRIME's CIFAR ranges; ROBUST_AUGMENT's until 2026-12-03) and at 2, against the default
    # 1 of "robust": clean accuracy against corruption robustness.
    "robust_severity_3": {"augment": ("flip", "shift", RobustMix(severity=3))},
    "robust_severity_2": {"augment": ("flip", "shift", RobustMix(severity=2))},
    # Milder still, and the seed's noise alone (no chains): how much of the clean cost
    # is the chains' and how much the noise's.
    "robust_severity_0_5": {"augment": ("flip", "shift", RobustMix(severity=0.5))},
    "robust_noise_only": {"augment": ("flip", "shift", RobustMix(width=0))},
    # The seed's noise on a quarter of the images instead of half (the noise alone costs
    # about a point of clean accuracy, and the chains also harden the network against it),
    # and that without label smoothing (the mixture already softens the targets).
    "robust_noise_quarter": {"augment": ("flip", "shift", RobustMix(noise_probability=0.25))},
    "robust_noise_quarter_no_smoothing": {
        "augment": ("flip", "shift", RobustMix(noise_probability=0.25)),
        "label_smoothing": 0.0,
    },
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 archive")
    parser.add_argument("--subset", type=int, help="stratified training subset (default: all)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs",
        type=int,
        default=FAST_RECIPE["epochs"],
        help="both recipes (default: %(default)s)",
    )
    budget.add_argument(
        "--minutes", type=float, help="train each recipe to this time budget instead"
    )
    parser.add_argument(
        "--report-images",
        type=int,
        default=2000,
        help="stratified test images (default: %(default)s)",
    )
    parser.add_argument(
        "--recipes",
        type=recipe_names,
        default="default,robust",
        help=f"comma-separated, from {', '.join(RECIPES)}; 'default' is the baseline "
        "of mCE (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    args = parser.parse_args(argv)
    budget = {"time_budget": 60 * args.minutes} if args.minutes else {"epochs": args.epochs}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("robust_training.csv", "robust_training.md", "robust_training.png"):
        check_output_path(args.out / name, overwrite=True)
    print(machine_header(), flush=True)
    X, y, X_test, y_test = train_and_test_images(
        args.data, subset=args.subset, test_images=args.report_images, seed=args.seed
    )
    print(
        f"# {len(y)} gray training images, "
        + (f"{args.minutes:g} minutes" if args.minutes else f"{args.epochs} epochs")
        + " each, "
        f"{len(y_test)} test images, seed {args.seed}",
        flush=True,
    )
    reports, seconds, epochs = {}, {}, {}
    for name in args.recipes:
        pipeline = make_pipeline("fastnet", random_state=args.seed, **budget, **RECIPES[name])
        start = time.perf_counter()
        pipeline.fit(X, y)
        seconds[name] = time.perf_counter() - start
        reports[name] = evaluate_robustness(pipeline, X_test, y_test, random_state=args.seed)
        with atomic_write(args.out / f"robustness_{name}.md", "w", overwrite=True) as file:
            file.write(reports[name].to_markdown())
        epochs[name] = pipeline[-1].epochs_
        print(f"# {name}: {epochs[name]} epochs in {seconds[name]:.0f} s", flush=True)
    rows = compare_reports(reports, baseline="default")
    for row in rows:
        row["train_seconds"] = round(seconds[row["model"]], 1)
        row["epochs"] = epochs[row["model"]]
    table = comparison_markdown(
        [{k: v for k, v in r.items() if k not in ("train_seconds", "epochs")} for r in rows]
    )
    print(table, end="")
    with atomic_write(args.out / "robust_training.md", "w", overwrite=True) as file:
        file.write(f"{machine_header()}\n\n{table}")
    write_csv(args.out / "robust_training.csv", rows)
    save_figure(
        plot_robustness_comparison(reports), args.out / "robust_training.png", overwrite=True
    )


def recipe_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in RECIPES]
    if unknown or "default" not in names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct names from {', '.join(RECIPES)}, 'default' among them; got {text!r}"
        )
    return names


if __name__ == "__main__":
    main()
