"""Several short fits averaged against one long fit of the same total epochs (issue 9).

Once the default recipe nears its plateau (about 30 epochs on the whole split), more of
the same training adds little: the search's hour-long target, beating the default
pipeline trained for the same hour, was a tie on two CPUs. This measures the other way
to spend the time: ``--members`` default pipelines (``make_pipeline("fastnet")``), each
with its own seed and ``--epochs`` epochs, their class probabilities averaged (soft
voting, as ``VotingClassifier(voting="soft")``), against one default pipeline trained
for all of those epochs, side by side in one run on the same images.

Prints the machine, then one row per model: epochs, training seconds, test accuracy
(each member, the average of the members, the single long fit). Writes the rows (with the
machine) to --csv.

    python benchmarks/ensemble.py --members 2 --epochs 8 --csv benchmarks/results/ensemble.csv
    python benchmarks/ensemble.py --subset 1000 --members 2 --epochs 1 --test-images 200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import DEFAULT_DATA, ResultsTable, machine_header, train_and_test_images

from sklcifar.pipelines import make_pipeline


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 archive")
    parser.add_argument("--subset", type=int, help="stratified training subset (default: all)")
    parser.add_argument("--test-images", type=int, help="stratified test images (default: all)")
    parser.add_argument("--members", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="per member (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the members get seed, seed + 1, ...")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    if args.members < 2 or args.epochs < 1:
        parser.error(
            f"expected --members >= 2 and --epochs >= 1; got {args.members}, {args.epochs}"
        )

    X, y, X_test, y_test = train_and_test_images(
        args.data, subset=args.subset, test_images=args.test_images, seed=args.seed
    )
    print(machine_header())
    print(f"# {len(y)} gray training images, {len(y_test)} test images")
    table = ResultsTable(["model", "epochs", "train s", "test"], csv_path=args.csv)

    def add_row(name: str, epochs: int, seconds: float, proba: np.ndarray) -> None:
        test = float(np.mean(classes[proba.argmax(axis=1)] == y_test))
        row = {"model": name, "epochs": epochs, "train_seconds": round(seconds, 1), "test": test}
        table.add(row, [name, str(epochs), f"{seconds:,.0f}", f"{100 * test:.2f}"])

    def fit_and_score(name: str, epochs: int, seed: int) -> np.ndarray:
        pipeline = make_pipeline("fastnet", epochs=epochs, random_state=seed)
        start = time.monotonic()
        pipeline.fit(X, y)
        seconds = time.monotonic() - start
        proba = pipeline.predict_proba(X_test)
        add_row(name, epochs, seconds, proba)
        return proba

    classes = np.unique(y)  # predict_proba's columns: the classifiers' classes_, sorted
    members = [
        fit_and_score(f"member, seed {args.seed + i}", args.epochs, args.seed + i)
        for i in range(args.members)
    ]
    total_epochs = args.members * args.epochs
    member_seconds = sum(row["train_seconds"] for row in table.rows)
    add_row(
        f"average of the {args.members} members",
        total_epochs,
        member_seconds,
        np.mean(members, axis=0),
    )
    fit_and_score(f"one fit, seed {args.seed}", total_epochs, args.seed)


if __name__ == "__main__":
    main()
