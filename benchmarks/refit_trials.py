"""Refit trials of a finished search for the refit's budget: did the search refit the right one?

The search refits one configuration (``refit_trial``'s rule, then the duel with the
default); the others' trials were short, on a subset. This refits each trial named by
``--trials`` exactly as the search's refit does (``refit_best(..., trial=...)``: the whole
train split, ``time_budget`` of ``--refit-minutes`` or ``--refit-epochs``, same seed) one
after the other in one run, and tests each clean and with the seed's 3% pixel noise
(``clean_and_noisy_accuracy``, the search's test figures), so a rule that chose another
trial can be judged by what the trials it passed over would have given.

Prints the machine, then one row per trial: its trial score, the epochs the budget gave
it, training seconds, test accuracy clean and noisy. Writes the rows (with the machine) to
--csv.

    python benchmarks/refit_trials.py runs/search --trials 0,13,23 --refit-minutes 20 \\
        --csv benchmarks/results/refit_trials.csv
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import optuna
from _common import ResultsTable, comma_separated_integers, machine_header

from sklcifar.datasets import default_source, load_cifar
from sklcifar.search.report import clean_and_noisy_accuracy, refit_best
from sklcifar.search.storage import open_storage


def load_search(folder: Path, study_name: str | None = None) -> optuna.Study:
    """The study a search wrote into ``folder`` (its ``study.db``); ``study_name`` may be
    None when the file holds one study."""
    database = folder / "study.db"
    if not database.is_file():
        raise SystemExit(f"{folder} is not a search's output folder: it has no study.db")
    storage = open_storage(f"sqlite:///{database}")
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except (KeyError, ValueError) as error:  # no such study; several and no name
        names = optuna.get_all_study_names(storage)
        raise SystemExit(f"{database}: {error} (its studies: {', '.join(names)})") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("search", type=Path, help="the search's --output folder")
    parser.add_argument(
        "--trials",
        type=partial(comma_separated_integers, example="0,13,23"),
        required=True,
        help="e.g. 0,13,23",
    )
    parser.add_argument("--study-name", help="needed when study.db holds several studies")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--refit-minutes", type=float, default=12.0)
    budget.add_argument("--refit-epochs", type=int, help="train each this many epochs instead")
    parser.add_argument("--data", help="CIFAR archive (default: $SKLCIFAR_DATA)")
    parser.add_argument("--label-mode", choices=("coarse", "fine"), default="coarse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)

    study = load_search(args.search, args.study_name)
    by_number = {trial.number: trial for trial in study.trials}
    missing = [n for n in args.trials if n not in by_number]
    if missing:
        parser.error(f"the study has no trial {missing}; it has 0..{len(study.trials) - 1}")
    unstarted = [n for n in args.trials if "estimator_params" not in by_number[n].user_attrs]
    if unstarted:
        parser.error(f"trials {unstarted} never built a classifier: nothing to refit")
    source = args.data or default_source()
    train = load_cifar(source, split="train", label_mode=args.label_mode)
    test = load_cifar(source, split="test", label_mode=args.label_mode)

    print(machine_header())
    time_budget = None if args.refit_epochs else args.refit_minutes * 60
    budget = (
        f"{args.refit_epochs} epochs" if args.refit_epochs else f"{args.refit_minutes:g} minutes"
    )
    print(f"# {args.search}: each trial refit on the whole train split for {budget}")
    table = ResultsTable(
        ["trial", "classifier", "trial score", "epochs", "train s", "test clean", "test noisy"],
        text_columns=2,
        csv_path=args.csv,
    )
    for number in args.trials:
        trial = by_number[number]
        start = time.monotonic()
        model = refit_best(
            study,
            train.images,
            train.target,
            epochs=args.refit_epochs,
            time_budget=time_budget,
            random_state=args.seed,
            trial=trial,
        )
        seconds = time.monotonic() - start
        epochs = model.named_steps["classifier"].epochs_
        accuracy = clean_and_noisy_accuracy(model, test.images, test.target, seed=args.seed)
        params = trial.user_attrs["estimator_params"]
        row = {
            "trial": number,
            "classifier": trial.user_attrs["classifier"],
            "params": json.dumps(params),
            "trial_score": trial.value,
            "epochs": epochs,
            "train_seconds": round(seconds, 1),
            "test_clean": accuracy["clean"],
            "test_noisy": accuracy["pixel_noise"],
        }
        cells = [
            str(number),
            f"{row['classifier']} {params}",
            "-" if trial.value is None else f"{100 * trial.value:.2f}",
            str(epochs),
            f"{seconds:,.0f}",
            f"{100 * accuracy['clean']:.2f}",
            f"{100 * accuracy['pixel_noise']:.2f}",
        ]
        table.add(row, cells)


if __name__ == "__main__":
    main()
