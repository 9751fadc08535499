"""The width probe against training: does FastNet's width="auto" time its steps right?

``width="auto"`` with a ``time_budget`` times a few training steps of each candidate width
before building its network (``time_budget.training_step_seconds``) and estimates the
epochs the budget gives it. This runs ``--fits`` budgeted fits one after another in one
process (as a search or a benchmark does: the later fits are those that went wrong, when
TensorFlow's allocator settings of the first fit were left on), with the candidates cut
to width 16 so that every fit trains the width it timed, and compares the probe's median
step with the median training step of the same fit::

    python benchmarks/width_probe.py --out benchmarks/out/width_probe
    python benchmarks/width_probe.py --memory tensorflow --out benchmarks/out/width_probe

``--memory tensorflow`` times the probe without ``allocator.hold`` (as before it held the
memory). Prints the machine and a markdown table; writes DIR/width_probe.csv. Figures:
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import keras
from _common import DEFAULT_DATA, ResultsTable, grayscale_cifar, machine_header

from sklcifar import FastNetClassifier, estimators, time_budget
from sklcifar.datasets import stratified_subset


class StepTimer(keras.callbacks.Callback):
    """Seconds of each training step (the batch's preparation excluded)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 archive")
    parser.add_argument("--subset", type=int, default=6000, help="stratified training images")
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per fit")
    parser.add_argument("--fits", type=int, default=3, help="fits, one after another")
    parser.add_argument(
        "--memory",
        choices=("held", "tensorflow"),
        default="held",
        help="the probe's allocator: held as while training (the package's), or as "
        "TensorFlow leaves it",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(machine_header(), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    X, y = grayscale_cifar(args.data)
    X, y = stratified_subset(X, y, args.subset, random_state=0)

    probes = []  # (first step, median step, seconds) of each call
    timed = time_budget.training_step_seconds

    def recorded(*call_args, **kwargs):
        start = time.perf_counter()
        first, step = timed(*call_args, **kwargs)
        probes.append((first, step, time.perf_counter() - start))
        return first, step

    patches = [
        mock.patch.object(estimators, "AUTO_WIDTHS", (16,)),
        mock.patch.object(time_budget, "training_step_seconds", recorded),
    ]
    if args.memory == "tensorflow":
        # Only the probe's reference: training keeps holding the memory.
        untouched = SimpleNamespace(hold=lambda: None, release=lambda: None)
        patches.append(mock.patch.object(time_budget, "allocator", untouched))
    table = ResultsTable(
        ["fit", "probe step ms", "training step ms", "ratio", "probe s", "epochs est", "run"],
        csv_path=args.out / "width_probe.csv",
    )
    # Undone on return: the tests call main in their own process.
    with contextlib.ExitStack() as undo:
        for patch in patches:
            undo.enter_context(patch)
        for fit in range(args.fits):
            steps = StepTimer()
            classifier = FastNetClassifier(
                time_budget=args.budget, random_state=fit, verbose=0, callbacks=[steps]
            ).fit(X, y)
            if len(steps.seconds) < 2:
                parser.error(
                    f"fit {fit + 1} ran {len(steps.seconds)} training step(s); the first traces "
                    "the graph, so at least 2 are needed: give more --subset or --budget"
                )
            _, probe_step, probe_seconds = probes[-1]
            training_step = statistics.median(steps.seconds[1:])  # the first traces the graph
            row = {
                "fit": fit + 1,
                "memory": args.memory,
                "probe_step_s": round(probe_step, 4),
                "training_step_s": round(training_step, 4),
                "ratio": round(probe_step / training_step, 3),
                "probe_s": round(probe_seconds, 2),
                "epochs_estimated": round(classifier.width_epochs_[16], 2),
                "epochs_run": classifier.epochs_,
            }
            table.add(
                row,
                [
                    str(fit + 1),
                    f"{probe_step * 1000:.0f}",
                    f"{training_step * 1000:.0f}",
                    f"{row['ratio']:.2f}",
                    f"{probe_seconds:.1f}",
                    f"{row['epochs_estimated']:.2f}",
                    str(classifier.epochs_),
                ],
            )


if __name__ == "__main__":
    main()
