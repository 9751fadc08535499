"""Test accuracy against training wall time: the default pipeline beside the seed's m12.

Both recipes train on the same stratified 45,000 / 5,000 split of grayscale CIFAR-10's
training images. The default recipe trains once per budget of ``--default-minutes`` with
``FastNetClassifier(time_budget=...)``, which plans its steps so that the whole schedule
ends within the budget on this machine; its test accuracy is scored after each fit. (With
``--default-epochs N`` it instead trains N epochs and is scored after every epoch, the
clock stopped meanwhile.) The seed's m12 recipe trains until ``--budget-minutes`` have
passed, scored after every epoch with the clock stopped. "default" is
``FastNetClassifier()`` as it ships, "conv_stem" the same recipe with the first layer it
had before airbench's patch whitening (``stem="conv"``), trained to the same budgets, side
by side; "float32" and "bfloat16" the default recipe in one precision each, whatever
``precision="auto"`` picks on this CPU. ``--fastnet-param`` changes a parameter of all the
FastNet recipes, e.g. ``width=32``. (Before 2026-11-30 "default" and "conv_stem" were
named "whitened" and "default".)

    python benchmarks/time_to_accuracy.py --default-minutes 1,2,5,15 --budget-minutes 15 \
        --out benchmarks/out/tta
    python benchmarks/time_to_accuracy.py --recipes conv_stem,default --default-minutes 2,5 \
        --out benchmarks/out/whitening
    python benchmarks/time_to_accuracy.py --recipes default --default-minutes 0.75 \
        --fastnet-param batch_size=512 --fastnet-param learning_rate=0.2 --out /tmp/b512
    python benchmarks/time_to_accuracy.py --subset 2000 --default-minutes 0.5 \
        --budget-minutes 0.5 --out /tmp/quick

Writes DIR/time_to_accuracy.csv (the machine's CPU, flags and versions, then recipe,
budget_s, epoch, elapsed_s, test_accuracy with the recipe's test-time augmentation,
test_accuracy_no_tta, val_accuracy), DIR/time_to_accuracy.png, and prints the summary
(best accuracies, time for the default recipe to reach the m12 recipe's best).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _common import grayscale_cifar, machine_header, write_csv  # noqa: E402

from sklcifar import ConvNetClassifier, FastNetClassifier  # noqa: E402
from sklcifar.cli import _key_value  # noqa: E402
from sklcifar.datasets import stratified_subset  # noqa: E402
from sklcifar.files import atomic_path  # noqa: E402

#: Recipes by name, with their label in the figure.
RECIPES = {
    "default": "default recipe (one fit per budget)",
    "conv_stem": "default recipe, conv stem (one fit per budget)",
    "float32": "default recipe in float32 (one fit per budget)",
    "bfloat16": "default recipe in bf16 mixed precision (one fit per budget)",
    "m12": "m12",
}
#: FastNet parameters of the recipes trained to time budgets, over FastNetClassifier's own.
FASTNET_RECIPES = {
    "default": {},
    "conv_stem": {"stem": "conv"},
    "float32": {"precision": "float32"},
    "bfloat16": {"precision": "bfloat16"},
}


class TestCurve(keras.callbacks.Callback):
    """Scores the test set after each epoch with the clock stopped; stops at the budget."""

    def __init__(self, classifier, X_test, y_test, budget_s: float, recipe: str, rows: list):
        super().__init__()
        self.classifier, self.X_test, self.y_test = classifier, X_test, y_test
        self.budget_s, self.recipe, self.rows = budget_s, recipe, rows
        self.elapsed = 0.0

    def on_train_begin(self, logs=None):
        self.elapsed = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _stop_clock(self):
        if hasattr(self, "_start"):
            self.elapsed += time.perf_counter() - self._start
            del self._start

    def on_test_begin(self, logs=None):
        self._stop_clock()  # Keras validates inside the epoch: not training time

    def on_epoch_end(self, epoch, logs=None):
        self._stop_clock()
        self.rows.append(
            {
                "recipe": self.recipe,
                "scored": "every epoch",
                "budget_s": self.budget_s,
                "epoch": epoch + 1,
                "elapsed_s": round(self.elapsed, 2),
                **test_accuracies(self.classifier, self.X_test, self.y_test),
                "val_accuracy": (logs or {}).get("val_accuracy"),
            }
        )
        print(self.rows[-1], flush=True)
        if self.elapsed >= self.budget_s:
            self.model.stop_training = True


def test_accuracies(classifier, X_test, y_test) -> dict:
    """Test accuracy with the classifier's own test-time augmentation, and without it."""

    def accuracy(tta: bool) -> float:
        # set_params between epochs only changes how predict_proba averages.
        saved = classifier.tta
        classifier.set_params(tta=tta)
        try:
            return float((classifier.predict(X_test) == y_test).mean())
        finally:
            classifier.set_params(tta=saved)

    with_tta = classifier._setting("tta")
    return {
        "test_accuracy": accuracy(with_tta),
        "test_accuracy_no_tta": accuracy(False) if with_tta else None,
    }


def run_curve(recipe: str, classifier, X, y, X_test, y_test, budget_s: float, rows: list):
    """Train until the budget, scoring the test set after every epoch (clock stopped)."""
    curve = TestCurve(classifier, X_test, y_test, budget_s, recipe, rows)
    classifier.set_params(callbacks=[curve], random_state=0, validation_fraction=0.1)
    classifier.fit(X, y)


def run_budgeted(
    recipe: str, classifier, X, y, X_test, y_test, budget_s: float, rows: list
) -> None:
    """One fit with ``time_budget=budget_s``, scored once at its end."""
    classifier.set_params(time_budget=budget_s, random_state=0, validation_fraction=0.1)
    start = time.perf_counter()
    classifier.fit(X, y)
    elapsed = time.perf_counter() - start
    rows.append(
        {
            "recipe": recipe,
            "scored": "end of a time-budgeted fit",
            "budget_s": budget_s,
            "epoch": classifier.epochs_,
            "elapsed_s": round(elapsed, 2),
            **test_accuracies(classifier, X_test, y_test),
            "val_accuracy": classifier.history_.get("val_accuracy", [None])[-1],
            # The width that ran, and with width="auto" the epochs estimated for each timed.
            "width": classifier.width_,
            "width_epochs": " ".join(f"{w}:{e:.1f}" for w, e in classifier.width_epochs_.items()),
        }
    )
    print(rows[-1], flush=True)


def summarise(rows: list[dict]) -> list[str]:
    best = {
        r: max((row for row in rows if row["recipe"] == r), key=lambda row: row["test_accuracy"])
        for r in RECIPES
        if any(row["recipe"] == r for row in rows)
    }
    lines = [
        f"{r}: best test accuracy {b['test_accuracy']:.4f} after {b['elapsed_s']:.0f} s "
        f"(epoch {b['epoch']})"
        for r, b in best.items()
    ]
    lines += [
        f"{row['recipe']} with time_budget={row['budget_s']:.0f} s: width {row['width']}, "
        f"{row['epoch']} epochs in {row['elapsed_s']:.0f} s, test accuracy "
        f"{row['test_accuracy']:.4f}"
        for row in rows
        if row["scored"] == "end of a time-budgeted fit"
    ]
    if "m12" not in best:
        return lines
    target = best["m12"]["test_accuracy"]
    for recipe in best.keys() - {"m12"}:
        reached = [
            row for row in rows if row["recipe"] == recipe and row["test_accuracy"] >= target
        ]
        if reached:
            t = min(row["elapsed_s"] for row in reached)
            ratio = best["m12"]["elapsed_s"] / t
            lines.append(
                f"{recipe} reached m12's best ({target:.4f}) after {t:.0f} s: {ratio:.1f}x "
                f"less time than m12 needed ({best['m12']['elapsed_s']:.0f} s)"
            )
        else:
            lines.append(f"{recipe} never reached m12's best ({target:.4f})")
    return lines


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe, label in RECIPES.items():
        points = sorted(
            (row for row in rows if row["recipe"] == recipe), key=lambda row: row["elapsed_s"]
        )
        if points:
            ax.plot(
                [p["elapsed_s"] / 60 for p in points],
                [p["test_accuracy"] for p in points],
                marker="o",
                label=label,
            )
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Grayscale CIFAR-10: test accuracy against training time")
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(path, overwrite=True) as temporary:  # a rerun replaces the figure
        fig.savefig(temporary, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument(
        "--budget-minutes", type=float, default=15.0, help="m12's budget (and the default's)"
    )
    parser.add_argument(
        "--default-minutes",
        default=None,
        help="comma-separated time budgets of the default recipe, one fit each (default: "
        "--budget-minutes)",
    )
    parser.add_argument("--subset", type=int, default=None, help="stratified training subset")
    parser.add_argument(
        "--default-epochs",
        type=int,
        default=None,
        help="train the default recipe for this many epochs instead of to time budgets, "
        "scored after every epoch",
    )
    parser.add_argument(
        "--fastnet-param",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a FastNetClassifier parameter of the default recipes, e.g. width=32 "
        "(repeatable; recorded in the CSV's params column)",
    )
    parser.add_argument(
        "--recipes",
        default="default,m12",
        help=f"comma-separated, of {', '.join(RECIPES)} (default %(default)s)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    changed = dict(args.fastnet_param)
    unknown = sorted(changed.keys() - FastNetClassifier().get_params().keys())
    if unknown:
        parser.error(f"--fastnet-param: FastNetClassifier has no parameter {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine_header(), flush=True)

    X, y = grayscale_cifar(args.data, "train")
    X_test, y_test = grayscale_cifar(args.data, "test")
    if args.subset:
        X, y = stratified_subset(X, y, args.subset, random_state=0)
    budget_s = args.budget_minutes * 60
    print(f"# {len(X)} training images (10% held out), m12 budget {budget_s:.0f} s")
    default_budgets = [
        float(m) * 60 for m in (args.default_minutes or str(args.budget_minutes)).split(",")
    ]

    def fastnet(recipe: str):
        return FastNetClassifier(**{**FASTNET_RECIPES[recipe], **changed})

    rows: list[dict] = []

    def save():
        with_params = [{**row, "params": {} if row["recipe"] == "m12" else changed} for row in rows]
        write_csv(args.out / "time_to_accuracy.csv", with_params)
        plot(rows, args.out / "time_to_accuracy.png")

    for name in args.recipes.split(","):
        if name not in RECIPES:
            parser.error(f"--recipes takes {', '.join(RECIPES)}; got {name!r}")
        if name == "m12":
            # The seed's recipe: Adam, batch 32, early stopping; the budget ends it first.
            m12 = ConvNetClassifier(preset="m12", epochs=200, patience=10)
            run_curve("m12", m12, X, y, X_test, y_test, budget_s, rows)
        elif args.default_epochs:
            classifier = fastnet(name).set_params(epochs=args.default_epochs)
            run_curve(name, classifier, X, y, X_test, y_test, budget_s, rows)
        else:
            for default_budget in default_budgets:
                run_budgeted(name, fastnet(name), X, y, X_test, y_test, default_budget, rows)
                save()
        save()
    for line in summarise(rows):
        print(line)


if __name__ == "__main__":
    main()
