"""Test accuracy against training wall time: the default pipeline beside the seed's m12.

Both recipes train on the same stratified 45,000 / 5,000 split of grayscale CIFAR-10's
training images under the same wall-clock budget; after every epoch the clock stops, the
10,000 test images are scored (not counted as training time), and a row is written.

    python benchmarks/time_to_accuracy.py --budget-minutes 15 --out benchmarks/out/tta15
    python benchmarks/time_to_accuracy.py --subset 5000 --budget-minutes 1 --out /tmp/quick

Writes DIR/time_to_accuracy.csv (recipe, epoch, elapsed_s, test_accuracy with the recipe's
test-time augmentation, test_accuracy_no_tta, val_accuracy),
DIR/time_to_accuracy.png, and prints the summary (best accuracies, time for the default
recipe to reach the m12 recipe's best).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _common import grayscale_cifar, machine  # noqa: E402

from sklcifar import ConvNetClassifier, FastNetClassifier  # noqa: E402
from sklcifar.datasets import stratified_subset  # noqa: E402


class TestCurve(keras.callbacks.Callback):
    """Scores the test set after each epoch with the clock stopped; stops at the budget."""

    def __init__(self, classifier, X_test, y_test, budget_s: float, recipe: str, rows: list):
        super().__init__()
        self.classifier, self.X_test, self.y_test = classifier, X_test, y_test
        self.budget_s, self.recipe, self.rows = budget_s, recipe, rows
        self.elapsed = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _stop_clock(self):
        if hasattr(self, "_start"):
            self.elapsed += time.perf_counter() - self._start
            del self._start

    def on_test_begin(self, logs=None):
        self._stop_clock()  # Keras validates inside the epoch: not training time

    def _accuracy(self, tta: bool) -> float:
        # set_params between epochs only changes how predict_proba averages.
        saved = self.classifier.tta
        self.classifier.set_params(tta=tta)
        try:
            return float((self.classifier.predict(self.X_test) == self.y_test).mean())
        finally:
            self.classifier.set_params(tta=saved)

    def on_epoch_end(self, epoch, logs=None):
        self._stop_clock()
        with_tta = self.classifier._setting("tta")
        self.rows.append(
            {
                "recipe": self.recipe,
                "epoch": epoch + 1,
                "elapsed_s": round(self.elapsed, 2),
                "test_accuracy": self._accuracy(with_tta),
                "test_accuracy_no_tta": self._accuracy(False) if with_tta else None,
                "val_accuracy": (logs or {}).get("val_accuracy"),
            }
        )
        print(self.rows[-1], flush=True)
        if self.elapsed >= self.budget_s:
            self.model.stop_training = True


def run(recipe: str, classifier, X, y, X_test, y_test, budget_s: float, rows: list) -> None:
    curve = TestCurve(classifier, X_test, y_test, budget_s, recipe, rows)
    classifier.set_params(callbacks=[curve], random_state=0, validation_fraction=0.1)
    classifier.fit(X, y)


def summarise(rows: list[dict]) -> list[str]:
    best = {
        r: max((row for row in rows if row["recipe"] == r), key=lambda row: row["test_accuracy"])
        for r in ("default", "m12")
        if any(row["recipe"] == r for row in rows)
    }
    lines = [
        f"{r}: best test accuracy {b['test_accuracy']:.4f} after {b['elapsed_s']:.0f} s "
        f"(epoch {b['epoch']})"
        for r, b in best.items()
    ]
    if len(best) == 2:
        target = best["m12"]["test_accuracy"]
        reached = [
            row for row in rows if row["recipe"] == "default" and row["test_accuracy"] >= target
        ]
        if reached:
            t = reached[0]["elapsed_s"]
            ratio = best["m12"]["elapsed_s"] / t
            lines.append(
                f"default reached m12's best ({target:.4f}) after {t:.0f} s: {ratio:.1f}x less "
                f"time than m12 needed ({best['m12']['elapsed_s']:.0f} s)"
            )
        else:
            lines.append(f"default never reached m12's best ({target:.4f})")
    return lines


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe in ("default", "m12"):
        points = [row for row in rows if row["recipe"] == recipe]
        if points:
            ax.plot(
                [p["elapsed_s"] / 60 for p in points],
                [p["test_accuracy"] for p in points],
                marker="o",
                label=recipe,
            )
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Grayscale CIFAR-10: test accuracy against training time")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="CIFAR-10 archive (default: shared/data)")
    parser.add_argument("--budget-minutes", type=float, default=15.0)
    parser.add_argument("--subset", type=int, default=None, help="stratified training subset")
    parser.add_argument(
        "--default-epochs",
        type=int,
        default=None,
        help="epochs of the default recipe (its schedule needs them up front; default: the "
        "recipe's own)",
    )
    parser.add_argument(
        "--default-width", type=int, default=None, help="FastNet width (default: its own)"
    )
    parser.add_argument("--recipes", default="default,m12")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    X, y = grayscale_cifar(args.data, "train")
    X_test, y_test = grayscale_cifar(args.data, "test")
    if args.subset:
        X, y = stratified_subset(X, y, args.subset, random_state=0)
    budget_s = args.budget_minutes * 60
    print(f"# {machine()}; {len(X)} training images (10% held out), budget {budget_s:.0f} s")

    recipes = {
        "default": FastNetClassifier(epochs=args.default_epochs).set_params(
            **({"width": args.default_width} if args.default_width else {})
        ),
        # The seed's recipe: Adam, batch 32, early stopping; the budget ends it first.
        "m12": ConvNetClassifier(preset="m12", epochs=200, patience=10),
    }
    rows: list[dict] = []
    for name in args.recipes.split(","):
        run(name, recipes[name], X, y, X_test, y_test, budget_s, rows)
        with open(args.out / "time_to_accuracy.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        plot(rows, args.out / "time_to_accuracy.png")
    for line in summarise(rows):
        print(line)


if __name__ == "__main__":
    main()
