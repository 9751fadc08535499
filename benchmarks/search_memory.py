"""Resident memory of a search process across trials: ``python benchmarks/search_memory.py``.

Runs ``sklcifar.search.run_search`` for 20 trials (default search space, 1 epoch each,
pruning off, study in memory) on a stratified 500-image subset of CIFAR's train split,
and reads the search process's resident set size (VmRSS) after each trial, beside the
peak of the trial's own training process. TensorFlow keeps the variables of every network
a process has trained, ``keras.backend.clear_session()`` or not (keras-team/keras#17458:
about +70 MiB per trial here when trials trained in the search process), so each trial
trains in a process of its own. Prints one row per trial and the growth over the last 15
trials. Figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import optuna
from _common import machine_header

from sklcifar.datasets import default_source, load_cifar, stratified_subset
from sklcifar.search import run_search

# Trials before memory is expected to settle (TensorFlow's lazy start-up, first graphs).
WARM_UP = 5


def resident_mib() -> float:
    """This process's resident set size in MiB, from /proc/self/status."""
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kib / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--subset", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="default: default_source()")
    args = parser.parse_args(argv)
    print(machine_header(), flush=True)

    X, y = load_cifar(args.data or default_source(), split="train", return_X_y=True)
    X, y = stratified_subset(X, y, args.subset, random_state=args.seed)
    rows: list[tuple[int, str, float, float]] = []

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        peak = trial.user_attrs.get("peak_memory_mib", float("nan"))
        rows.append((trial.number, trial.state.name, resident_mib(), peak))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = resident_mib()
    run_search(
        X,
        y,
        n_trials=args.trials,
        epochs=args.epochs,
        pruner="none",
        seed=args.seed,
        callbacks=[record],
    )

    print(f"RSS before the search (data loaded): {start:.0f} MiB")
    print("| trial | state | search process RSS (MiB) | training process peak (MiB) |")
    print("|---:|---|---:|---:|")
    for number, state, mib, peak in rows:
        print(f"| {number} | {state} | {mib:.0f} | {peak:.0f} |")
    settled = np.array([mib for _, _, mib, _ in rows[WARM_UP:]])
    slope = np.polyfit(np.arange(len(settled)), settled, 1)[0] if len(settled) > 1 else 0.0
    print(
        f"after trial {WARM_UP - 1}: {settled[0]:.0f} MiB -> {settled[-1]:.0f} MiB after the "
        f"last ({settled[-1] - settled[0]:+.0f} MiB over {len(settled)} trials, "
        f"fitted slope {slope:+.1f} MiB per trial); training processes peaked at "
        f"{max(peak for *_, peak in rows):.0f} MiB"
    )


if __name__ == "__main__":
    main()
